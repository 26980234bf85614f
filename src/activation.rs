//! Hidden and output activations, and the hidden derivatives written from the outputs
//! (as scikit-learn does, so that the forward pass can overwrite Z with Y in place).

use crate::error::{Error, Result};
use crate::real::Real;
use crate::simd::multiversion;

/// Activation of the hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `phi(z) = z`.
    Identity,
    /// The sigmoid `1 / (1 + e^-z)`.
    Logistic,
    /// `tanh(z)`.
    Tanh,
    /// `max(z, 0)`.
    Relu,
}

/// Activation of the output layer; each is the canonical link of one loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputActivation {
    Identity,
    Logistic,
    Softmax,
    Exp,
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// By scikit-learn's name.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "identity" => Ok(Self::Identity),
            "logistic" => Ok(Self::Logistic),
            "tanh" => Ok(Self::Tanh),
            "relu" => Ok(Self::Relu),
            _ => Err(Error::Value(format!("unknown activation {name:?}"))),
        }
    }
}

impl OutputActivation {
    /// Applies the activation to a row-major block whose rows have `width` values.
    pub fn apply<T: Real>(self, values: &mut [T], width: usize) {
        apply_output(self, values, width)
    }
}

multiversion! {
    fn apply_output<T: Real>(activation: OutputActivation, values: &mut [T], width: usize) {
        match activation {
            OutputActivation::Identity => {}
            OutputActivation::Logistic => values.iter_mut().for_each(|v| *v = logistic(*v)),
            OutputActivation::Exp => T::exp_in_place(values),
            OutputActivation::Softmax => softmax(values, width.max(1)),
        }
    }
}

multiversion! {
    /// Multiplies each error signal in `delta` by phi'(z), written through the outputs
    /// `y = phi(z)` (as scikit-learn does), and the column sums of the results into
    /// `sums`, in the same pass (a row-major block with rows of `sums.len()`).
    pub(crate) fn scale_by_derivative_and_sum<T: Real>(
        activation: Activation,
        outputs: &[T],
        delta: &mut [T],
        sums: &mut [T],
    ) {
        match activation {
            Activation::Identity => scale_and_sum(outputs, delta, sums, |d, _| d),
            Activation::Logistic => {
                scale_and_sum(outputs, delta, sums, |d, y| d * y * (T::one() - y))
            }
            Activation::Tanh => scale_and_sum(outputs, delta, sums, |d, y| d * (T::one() - y * y)),
            Activation::Relu => scale_and_sum(outputs, delta, sums, |d, y| {
                if y == T::zero() {
                    T::zero()
                } else {
                    d
                }
            }),
        }
    }
}

/// `delta = scaled(delta, y)` over a row-major block with the column sums of the new
/// values in `sums`. Each new value is summed from the register it is stored from: read
/// back after the store, it stalled on store forwarding.
#[inline(always)]
fn scale_and_sum<T: Real>(
    outputs: &[T],
    delta: &mut [T],
    sums: &mut [T],
    scaled: impl Fn(T, T) -> T,
) {
    let width = sums.len();
    if width == 0 {
        return;
    }
    sums.fill(T::zero());
    add_sums_by_column_blocks(sums, delta.len() / width, |i, cols, acc| {
        let r = i * width + cols.start..i * width + cols.end;
        for ((a, d), &y) in acc.iter_mut().zip(&mut delta[r.clone()]).zip(&outputs[r]) {
            let v = scaled(*d, y);
            *d = v;
            *a += v;
        }
    });
}

multiversion! {
    /// Adds `bias` to every row of the row-major block `z` (rows of `bias.len()`).
    pub(crate) fn add_bias<T: Real>(z: &mut [T], bias: &[T]) {
        for row in z.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
    }
}

multiversion! {
    /// Replaces every row `z` by `phi(z + bias)`, in one pass: each value is written once
    /// (a separate activation pass re-read the row just stored and, for relu, compiled to
    /// masked stores).
    pub(crate) fn add_bias_and_activate<T: Real>(z: &mut [T], bias: &[T], activation: Activation) {
        match activation {
            Activation::Identity => map_rows(z, bias, |v| v),
            Activation::Logistic => map_rows(z, bias, logistic),
            Activation::Tanh => map_rows(z, bias, T::tanh_vec),
            Activation::Relu => map_rows(z, bias, relu),
        }
    }
}

/// `v = phi(v + b)` over every row. Plain `for` loops: through `for_each`, LLVM left the
/// f64 tanh loop in an out-of-line `fold` compiled for the baseline instruction set.
#[inline(always)]
fn map_rows<T: Real>(z: &mut [T], bias: &[T], phi: impl Fn(T) -> T) {
    for row in z.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = phi(*v + b);
        }
    }
}

multiversion! {
    /// Adds the column sums of the row-major block `block` (rows of `sums.len()`).
    pub(crate) fn add_column_sums<T: Real>(sums: &mut [T], block: &[T]) {
        let width = sums.len();
        if width == 0 {
            return;
        }
        add_sums_by_column_blocks(sums, block.len() / width, |i, cols, acc| {
            let row = &block[i * width + cols.start..i * width + cols.end];
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        });
    }
}

/// Adds to `sums` the column sums of `rows` rows of `sums.len()` values, a block of
/// [`SUM_COLUMNS`] columns at a time whose running sums stay in registers over all the
/// rows (summed in `sums` itself, each row's additions waited for the previous row's
/// stores). Rows are added in order, as numpy does. `add_row(i, cols, acc)` adds the
/// columns `cols` of row `i` into `acc`.
#[inline(always)]
fn add_sums_by_column_blocks<T: Real>(
    sums: &mut [T],
    rows: usize,
    mut add_row: impl FnMut(usize, std::ops::Range<usize>, &mut [T]),
) {
    let width = sums.len();
    let whole = width / SUM_COLUMNS * SUM_COLUMNS;
    for start in (0..whole).step_by(SUM_COLUMNS) {
        let cols = start..start + SUM_COLUMNS;
        let mut acc = [T::zero(); SUM_COLUMNS];
        acc.copy_from_slice(&sums[cols.clone()]);
        for i in 0..rows {
            add_row(i, cols.clone(), &mut acc);
        }
        sums[cols].copy_from_slice(&acc);
    }
    if whole < width {
        // the last few columns, summed in place
        let rest = &mut sums[whole..];
        for i in 0..rows {
            add_row(i, whole..width, rest);
        }
    }
}

/// `max(z, 0)` written as `z < 0` so that NaN propagates, as in np.maximum.
#[inline(always)]
fn relu<T: Real>(z: T) -> T {
    if z < T::zero() {
        T::zero()
    } else {
        z
    }
}

/// The logistic sigmoid, in the overflow-free form of scipy's `expit`: `1 / (1 + e^-z)`
/// for `z >= 0`, `e^z / (1 + e^z)` below (as selects, so that it vectorises).
#[inline(always)]
pub(crate) fn logistic<T: Real>(z: T) -> T {
    let e = (-z.abs()).exp_vec();
    let numerator = if z >= T::zero() { T::one() } else { e };
    numerator / (T::one() + e)
}

/// Rows at most this wide take the transposed path of [`softmax`]...
const NARROW_ROW: usize = 16;

/// ...a tile of this many rows at a time.
const TILE_ROWS: usize = 32;

/// Columns per block of [`add_column_sums`]: four 512-bit vectors of f64.
const SUM_COLUMNS: usize = 32;

/// The running row maximum: NaN as soon as one value is NaN, as numpy's `max`.
#[inline(always)]
fn max_or_nan<T: Real>(m: T, v: T) -> T {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

/// Row-wise softmax of a row-major block, with the exponentials taken over the whole
/// block in one loop (rows are too short for a vector loop of their own).
#[inline(always)]
fn softmax<T: Real>(values: &mut [T], width: usize) {
    if width <= NARROW_ROW {
        return softmax_narrow(values, width);
    }
    for row in values.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(T::neg_infinity(), max_or_nan);
        row.iter_mut().for_each(|v| *v -= max);
    }
    let whole_rows = values.len() / width * width;
    T::exp_in_place(&mut values[..whole_rows]);
    for row in values.chunks_exact_mut(width) {
        let mut sum = T::zero();
        for &v in row.iter() {
            sum += v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// [`softmax`] of rows of at most [`NARROW_ROW`] values (a classifier's few classes): each
/// tile of rows is transposed, so that every step runs across [`TILE_ROWS`] rows at once in
/// vector registers, instead of over a row's few values. The same operations per row as
/// the wide path, except a multiplication by the reciprocal of the sum (a vector division
/// costs several times more, for a difference in the last bit from numpy's `/`).
#[inline(always)]
fn softmax_narrow<T: Real>(values: &mut [T], width: usize) {
    // column `c` of a tile at `cols[c * TILE_ROWS..]`; rows past a short tile's end are
    // computed too (whole columns vectorise) and never written back
    let mut cols = [T::zero(); NARROW_ROW * TILE_ROWS];
    let mut stat = [T::zero(); TILE_ROWS];
    for tile in values.chunks_mut(width * TILE_ROWS) {
        tile_to_columns(tile, width, &mut cols);
        let cols = &mut cols[..width * TILE_ROWS];
        stat.copy_from_slice(&cols[..TILE_ROWS]);
        for col in cols.chunks_exact(TILE_ROWS).skip(1) {
            stat.iter_mut()
                .zip(col)
                .for_each(|(m, &v)| *m = max_or_nan(*m, v));
        }
        for col in cols.chunks_exact_mut(TILE_ROWS) {
            col.iter_mut().zip(&stat).for_each(|(v, &m)| *v -= m);
        }
        T::exp_in_place(cols);
        // (a row's sum starts from its first value: `0 + v` is `v` for every v >= 0)
        stat.copy_from_slice(&cols[..TILE_ROWS]);
        for col in cols.chunks_exact(TILE_ROWS).skip(1) {
            stat.iter_mut().zip(col).for_each(|(s, &v)| *s += v);
        }
        stat.iter_mut().for_each(|s| *s = T::one() / *s);
        for col in cols.chunks_exact_mut(TILE_ROWS) {
            col.iter_mut().zip(&stat).for_each(|(v, &r)| *v *= r);
        }
        columns_to_tile(&cols[..], width, tile);
    }
}

// The two transposes are kept out of line, in baseline code: inlined into the vector
// kernel, they were turned into gathers and scatters, slower than plain moves.

#[inline(never)]
fn tile_to_columns<T: Real>(tile: &[T], width: usize, cols: &mut [T; NARROW_ROW * TILE_ROWS]) {
    for (i, row) in tile.chunks_exact(width).enumerate() {
        for (col, &v) in cols.chunks_exact_mut(TILE_ROWS).zip(row) {
            col[i] = v;
        }
    }
}

#[inline(never)]
fn columns_to_tile<T: Real>(cols: &[T], width: usize, tile: &mut [T]) {
    for (i, row) in tile.chunks_exact_mut(width).enumerate() {
        for (v, col) in row.iter_mut().zip(cols.chunks_exact(TILE_ROWS)) {
            *v = col[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_is_stable_at_extremes() {
        assert_eq!(logistic(-1000.0_f64), 0.0);
        assert_eq!(logistic(1000.0_f64), 1.0);
        assert!((logistic(0.3_f64) - 1.0 / (1.0 + (-0.3_f64).exp())).abs() < 1e-16);
        assert!((logistic(-0.3_f64) - (-0.3_f64).exp() / (1.0 + (-0.3_f64).exp())).abs() < 1e-16);
        assert!(logistic(f64::NAN).is_nan());
    }

    #[test]
    fn column_sums_add_rows_in_order() {
        for width in [1, 10, 32, 70] {
            let block: Vec<f64> = (0..37 * width)
                .map(|i| ((i * 13) % 29) as f64 * 0.1 - 1.3)
                .collect();
            let mut want: Vec<f64> = (0..width).map(|j| j as f64 * 0.25).collect();
            let mut got = want.clone();
            for row in block.chunks_exact(width) {
                want.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
            }
            add_column_sums(&mut got, &block);
            assert_eq!(got, want, "width {width}");
        }
    }

    /// The derivative pass against the definition, and its column sums bit for bit
    /// against [`add_column_sums`] of the scaled block, for widths around the blocks.
    #[test]
    fn derivative_pass_scales_and_sums() {
        let derivative = |a: Activation, y: f64| match a {
            Activation::Identity => 1.0,
            Activation::Logistic => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Relu => f64::from(y != 0.0),
        };
        for a in [
            Activation::Identity,
            Activation::Logistic,
            Activation::Tanh,
            Activation::Relu,
        ] {
            for width in [1, 10, 32, 70, 100] {
                let rows = 37;
                let y: Vec<f64> = (0..rows * width)
                    .map(|i| match a {
                        Activation::Relu if i % 3 == 0 => 0.0,
                        Activation::Relu => (i % 17) as f64 * 0.3,
                        _ => ((i * 7) % 19) as f64 / 19.0 - 0.4,
                    })
                    .collect();
                let delta: Vec<f64> = (0..rows * width)
                    .map(|i| ((i * 13) % 29) as f64 * 0.1 - 1.3)
                    .collect();
                let mut got = delta.clone();
                let mut sums = vec![f64::NAN; width];
                scale_by_derivative_and_sum(a, &y, &mut got, &mut sums);
                for ((&g, &d), &y) in got.iter().zip(&delta).zip(&y) {
                    assert!((g - d * derivative(a, y)).abs() <= 1e-15 * d.abs(), "{a:?}");
                }
                let mut want = vec![0.0; width];
                add_column_sums(&mut want, &got);
                assert_eq!(sums, want, "{a:?}, width {width}");
            }
        }
        let mut nan = vec![f64::NAN, 1.0];
        let mut sums = [0.0; 2];
        scale_by_derivative_and_sum(Activation::Relu, &[1.0, 0.0], &mut nan, &mut sums);
        assert!(nan[0].is_nan() && nan[1] == 0.0 && sums[0].is_nan() && sums[1] == 0.0);
    }

    /// The narrow path (rows of at most 16, tiles of 32 rows) against the definition.
    #[test]
    fn narrow_softmax_matches_the_definition() {
        for width in [2, 10, 16, 17] {
            let rows = 70;
            let z: Vec<f64> = (0..rows * width)
                .map(|i| ((i * 37) % 23) as f64 * 0.7 - 8.0)
                .collect();
            let mut got = z.clone();
            OutputActivation::Softmax.apply(&mut got, width);
            for (zr, pr) in z.chunks_exact(width).zip(got.chunks_exact(width)) {
                let max = zr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = zr.iter().map(|&v| (v - max).exp()).sum();
                for (&v, &p) in zr.iter().zip(pr) {
                    let want = (v - max).exp() / sum;
                    assert!(
                        (p - want).abs() <= 4.0 * f64::EPSILON * want,
                        "{p} vs {want}"
                    );
                }
            }
        }
        let mut v = vec![1.0, f64::NAN, 2.0, f64::INFINITY, 0.0, 1.0];
        OutputActivation::Softmax.apply(&mut v, 3);
        assert!(v.iter().all(|p| p.is_nan()));
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut v = vec![1.0_f64, 2.0, 3.0, 1000.0, 1000.0, 0.0];
        OutputActivation::Softmax.apply(&mut v, 3);
        assert!((v[0] + v[1] + v[2] - 1.0).abs() < 1e-15);
        assert!((v[3] - 0.5).abs() < 1e-15 && v[5] == 0.0);
    }

    #[test]
    fn relu_keeps_nan() {
        let mut v = vec![f64::NAN, -1.0, 2.0];
        add_bias_and_activate(&mut v, &[0.0, 0.0, 0.0], Activation::Relu);
        assert!(v[0].is_nan() && v[1] == 0.0 && v[2] == 2.0);
    }
}
