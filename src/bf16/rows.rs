//! X rounded to bfloat16 once per fit, and the first layer's two products read from it.
//! A bfloat16 fit's first layer is where its time went outside the tiles: each batch
//! copied its f32 rows (gather), rounded and packed them for the forward product, and
//! rounded and packed them again, transposed, for the weight gradient. From these rows
//! the forward product reads its operand where it lies (no copy, no packing) and the
//! weight gradient interleaves two rows' halves into `X^T`'s pairs (no rounding). The
//! words are those [`super::matmul`] packs from the gathered f32 rows and the tiles sum
//! them in the same order: the same bits.

use super::{product, skip, Bf16Kernel, OperandA, PackedB, WordRows, Words, MR, PACKED};
use crate::error::{ensure_shape, Result};
use crate::memory;
use crate::parallel::{Par, SendPtr};
use ndarray::{ArrayView2, ArrayViewMut2};

/// Rows of X as pairs of bfloat16: row `i` is `pairs` words, word `q` holding
/// `(x[i][2q], x[i][2q + 1])` (low, high; the high half zero past an odd last feature).
pub(crate) struct Bf16Rows {
    words: Vec<u32>,
    pairs: usize,
    n_cols: usize,
    /// Whether the first layer's products skip zero pairs ([`skip`]): X has enough of
    /// them ([`MIN_ZERO_PAIRS`]). Decided once per fit from X alone, so that every
    /// kernel and thread count takes the same path.
    skips: bool,
}

/// Rows rounded per task when X is converted.
const ROWS_PER_TASK: usize = 512;

/// Twos of rows sampled for [`Bf16Rows::skips`]...
const SAMPLED_TWOS: usize = 64;

/// ...whose words must be zero in both rows at least this often for the skipping
/// products to pay: on dense X they took 1.1x the tiles' time (their lists, and fewer
/// rows sharing each loaded register). C1's products, one thread, X random with
/// independent zeros, tiles / skipping (us): at 0 % of such words forward 89 / 99,
/// gradient 81 / 90; 6 %: 90 / 98, 82 / 87; 13 %: 89 / 96, 81 / 84; 24 %: 90 / 84,
/// 82 / 74; Fashion-MNIST (27 %): 88 / 80, 81 / 70.
const MIN_ZERO_PAIRS: f64 = 0.2;

impl Bf16Rows {
    /// `x` rounded to bfloat16 (as [`super::round`] does), on `par`'s threads. Its size,
    /// half of the f32 X, is a [`crate::error::Error::Memory`] when it does not fit.
    pub(crate) fn new(x: ArrayView2<'_, f32>, par: Par) -> Result<Self> {
        let (n, k) = x.dim();
        let pairs = k.div_ceil(2);
        let what = || format!("X rounded to bfloat16 ({n} x {k})");
        let len = memory::product(n, pairs, what)?;
        let mut words = memory::zeroed_large(len, what)?;
        let out = SendPtr(words.as_mut_ptr());
        par.try_for_each(n.div_ceil(ROWS_PER_TASK), |t| {
            let rows = t * ROWS_PER_TASK..((t + 1) * ROWS_PER_TASK).min(n);
            // SAFETY: task `t` alone writes rows `rows`, which lie inside `words`.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(
                    out.get().add(rows.start * pairs),
                    rows.len() * pairs,
                )
            };
            super::pack_rows(x.slice(ndarray::s![rows, ..]), pairs, dst);
            Ok::<(), crate::error::Error>(())
        })?;
        let mut rows = Self {
            words,
            pairs,
            n_cols: k,
            skips: false,
        };
        rows.skips = rows.zero_pairs() >= MIN_ZERO_PAIRS;
        Ok(rows)
    }

    /// The share of the words that are zero in both rows of a two, over twos of rows
    /// spread through X.
    fn zero_pairs(&self) -> f64 {
        let twos = self.n_rows() / 2;
        let step = twos.div_ceil(SAMPLED_TWOS).max(1);
        let (mut zero, mut all) = (0_usize, 0_usize);
        for t in (0..twos).step_by(step) {
            let (a, b) = (self.row(2 * t), self.row(2 * t + 1));
            zero += a.iter().zip(b).filter(|&(&a, &b)| a | b == 0).count();
            all += a.len();
        }
        zero as f64 / all.max(1) as f64
    }

    /// Whether the first layer's products skip zero pairs (see the field).
    pub(crate) fn skips(&self) -> bool {
        self.skips
    }

    fn n_rows(&self) -> usize {
        self.words.len().checked_div(self.pairs).unwrap_or(0)
    }

    fn row(&self, i: usize) -> &[u32] {
        &self.words[i * self.pairs..(i + 1) * self.pairs]
    }

    /// Row `i` as bfloat16 values, feature `f` at `f` (the padding of an odd row last).
    fn halves(&self, i: usize) -> &[u16] {
        let row = self.row(i);
        // SAFETY: the words of the row seen as twice as many halves (u16 needs less
        // alignment than u32); on x86-64, as on every little-endian target, the low
        // half, feature 2q, comes first.
        unsafe { std::slice::from_raw_parts(row.as_ptr().cast(), 2 * row.len()) }
    }

    fn check_rows(&self, which: &[usize]) -> Result<()> {
        let n = self.n_rows();
        ensure_shape(which.iter().all(|&i| i < n), || {
            format!("bf16 rows: a row index is not below {n}")
        })
    }
}

/// `dst = X[which] · W`: the first layer's forward product of the rows `which`, read
/// where they lie, with `W` packed once for the batch.
pub(crate) fn matmul_rows(
    dst: ArrayViewMut2<'_, f32>,
    x: &Bf16Rows,
    which: &[usize],
    w: &PackedB,
    par: Par,
) -> Result<()> {
    x.check_rows(which)?;
    ensure_shape(dst.dim() == (which.len(), w.n) && w.k == x.n_cols, || {
        format!(
            "bf16 rows: {} rows of {} features times {} x {} into {:?}",
            which.len(),
            x.n_cols,
            w.k,
            w.n,
            dst.dim()
        )
    })?;
    if which.is_empty() || w.n == 0 {
        return Ok(());
    }
    let kernel = Bf16Kernel::best();
    if skips(kernel, (x, &dst), w) {
        let rows = WordRows {
            words: &x.words,
            stride: x.pairs,
            which: Some(which),
        };
        // SAFETY: the rows lie in `x` (checked), `w` is packed for X's pairs
        // (checked), and `dst`'s rows are ours.
        unsafe { skip_product(kernel, dst, rows, (x.pairs, w), false, par) };
        return Ok(());
    }
    let rows = OperandA::Rows {
        words: &x.words,
        stride: x.pairs,
        which,
    };
    let operands = (rows, &w.words[..]);
    product(kernel, dst, operands, x.pairs, false, par);
    Ok(())
}

/// `dst (+)= X[which][:, first..first + dst.nrows()]^T · D`: rows `first..` of the
/// first layer's weight gradient from the rows `which` and their error signals `D`,
/// packed once for all of the gradient's chunks.
pub(crate) fn matmul_t_rows(
    dst: ArrayViewMut2<'_, f32>,
    x: &Bf16Rows,
    (which, first): (&[usize], usize),
    d: &PackedB,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    x.check_rows(which)?;
    let (lanes, n) = dst.dim();
    let fits = d.dim() == (which.len(), n) && first.saturating_add(lanes) <= x.n_cols;
    ensure_shape(fits, || {
        format!(
            "bf16 rows: features {first}..{} of {} rows ({} features) times {:?} into {:?}",
            first.saturating_add(lanes),
            which.len(),
            x.n_cols,
            d.dim(),
            dst.dim()
        )
    })?;
    if lanes == 0 || n == 0 {
        return Ok(());
    }
    let kernel = Bf16Kernel::best();
    let pairs = which.len().div_ceil(2);
    let (mut packed_x, spare) = PACKED.take();
    // AMX loads rows of pairs (a panel one lane wide), and so does the zero-skipping
    // kernel; the others panels of MR lanes
    let skips = skips(kernel, (x, &dst), d);
    let width = if kernel == Bf16Kernel::Amx || skips {
        1
    } else {
        MR
    };
    pack_columns(x, (which, first), (lanes, width), pairs, &mut packed_x);
    if skips {
        let rows = WordRows {
            words: &packed_x,
            stride: pairs,
            which: None,
        };
        // SAFETY: `packed_x` holds the lanes' rows of pairs, `d` the error signals of
        // the same pairs (checked above), and `dst`'s rows are ours.
        unsafe { skip_product(kernel, dst, rows, (pairs, d), accumulate, par) };
        PACKED.set((packed_x, spare));
        return Ok(());
    }
    let operand = match width {
        1 => OperandA::Dense {
            words: &packed_x,
            stride: pairs,
        },
        _ => OperandA::Packed(&packed_x),
    };
    product(kernel, dst, (operand, &d.words[..]), pairs, accumulate, par);
    PACKED.set((packed_x, spare));
    Ok(())
}

/// Whether a first-layer product of `x`'s rows on `kernel` into `dst` with `b` skips
/// `A`'s zero words (see [`skip`]): `x` has enough of them, not on AMX (whose tiles
/// take 16 rows at a time), `dst` row-major, `b` finite.
fn skips(kernel: Bf16Kernel, (x, dst): (&Bf16Rows, &ArrayViewMut2<'_, f32>), b: &PackedB) -> bool {
    x.skips && kernel != Bf16Kernel::Amx && dst.strides()[1] == 1 && b.all_finite()
}

/// `dst (+)= A B` on [`skip`]'s kernels, `A`'s rows of `pairs` words in `rows`.
///
/// # Safety
/// As [`skip::product`]'s: `rows` holds `dst.nrows()` rows of `pairs` words and `b` is
/// packed for `pairs` pairs of `dst.ncols()` columns.
unsafe fn skip_product(
    kernel: Bf16Kernel,
    mut dst: ArrayViewMut2<'_, f32>,
    rows: WordRows<'_>,
    (pairs, b): (usize, &PackedB),
    accumulate: bool,
    par: Par,
) {
    let p = skip::Product {
        a: rows,
        m: dst.nrows(),
        pairs,
        b,
        dst: SendPtr(dst.as_mut_ptr()),
        ld: dst.strides()[0] as usize,
        accumulate,
    };
    // SAFETY: the caller's.
    unsafe { skip::product(&p, kernel == Bf16Kernel::Avx512, par) }
}

/// Features `first..first + lanes` of the rows `which` (checked) packed as
/// [`super::pack_a`] packs `X[which]^T` in panels `width` lanes wide ([`MR`], or 1: rows
/// of pairs): lanes are features, pairs are rows `2q, 2q + 1` (the high half zero for
/// an odd last row).
fn pack_columns(
    x: &Bf16Rows,
    (which, first): (&[usize], usize),
    (lanes, width): (usize, usize),
    pairs: usize,
    packed: &mut Words,
) {
    packed.resize(lanes.div_ceil(width) * pairs * width);
    super::zero_padding(lanes, width, pairs, packed);
    let pair = |q: usize| {
        let lo = &x.halves(which[2 * q])[first..first + lanes];
        let hi = which
            .get(2 * q + 1)
            .map(|&i| &x.halves(i)[first..first + lanes]);
        (lo, hi)
    };
    let word = |lo: u16, hi: Option<u16>| u32::from(lo) | (u32::from(hi.unwrap_or(0)) << 16);
    if width == 1 {
        // rows of pairs: whole blocks of 16 lanes x 16 pairs transposed in registers,
        // then the pairs and the lanes after them
        let (lanes_done, pairs_done) = transpose_simd(x, (which, first), lanes, pairs, packed);
        for q in 0..pairs {
            let (lo, hi) = pair(q);
            let from = if q < pairs_done { lanes_done } else { 0 };
            for j in from..lanes {
                packed[j * pairs + q] = word(lo[j], hi.map(|h| h[j]));
            }
        }
        return;
    }
    debug_assert_eq!(width, MR, "panels of MR lanes, or rows of pairs");
    for q in 0..pairs {
        let (lo, hi) = pair(q);
        let done = interleave_simd(lo, hi, (q, pairs), packed);
        for j in done..lanes {
            packed[((j / width) * pairs + q) * width + j % width] = word(lo[j], hi.map(|h| h[j]));
        }
    }
}

/// [`pack_columns`]'s words of pair `q` for whole blocks of 16 lanes on AVX-512;
/// returns the lanes done.
fn interleave_simd(
    lo: &[u16],
    hi: Option<&[u16]>,
    (q, pairs): (usize, usize),
    packed: &mut [u32],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: the CPU has AVX-512 F.
        return unsafe { interleave_avx512(lo, hi, (q, pairs), packed) };
    }
    let _ = (lo, hi, q, pairs, packed);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn interleave_avx512(
    lo: &[u16],
    hi: Option<&[u16]>,
    (q, pairs): (usize, usize),
    packed: &mut [u32],
) -> usize {
    use std::arch::x86_64::*;
    let blocks = lo.len() / 16;
    assert!(hi.is_none_or(|h| h.len() == lo.len()) && packed.len() >= 2 * blocks * pairs * MR);
    let out = packed.as_mut_ptr();
    for b in 0..blocks {
        // SAFETY: 16 halves at 16 b in `lo` (and `hi`); panels 2b and 2b + 1 hold the
        // pair's 8 words each inside `packed` (asserted above).
        unsafe {
            let low = _mm512_cvtepu16_epi32(_mm256_loadu_si256(lo.as_ptr().add(16 * b).cast()));
            let high = match hi {
                Some(h) => _mm512_cvtepu16_epi32(_mm256_loadu_si256(h.as_ptr().add(16 * b).cast())),
                None => _mm512_setzero_si512(),
            };
            let words = _mm512_or_si512(low, _mm512_slli_epi32::<16>(high));
            let first = out.add((2 * b * pairs + q) * MR);
            _mm256_storeu_si256(first.cast(), _mm512_castsi512_si256(words));
            let second = out.add(((2 * b + 1) * pairs + q) * MR);
            _mm256_storeu_si256(second.cast(), _mm512_extracti64x4_epi64::<1>(words));
        }
    }
    16 * blocks
}

/// [`pack_columns`]'s rows of pairs (`width` 1) for whole blocks of 16 lanes and of 16
/// pairs (each of two rows) on AVX-512; returns the lanes and the pairs done (every
/// lane of the pairs done, every pair of the lanes done).
fn transpose_simd(
    x: &Bf16Rows,
    (which, first): (&[usize], usize),
    lanes: usize,
    pairs: usize,
    packed: &mut [u32],
) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: the CPU has AVX-512 F.
        return unsafe { transpose_avx512(x, (which, first), lanes, pairs, packed) };
    }
    let _ = (x, which, first, lanes, pairs, packed);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn transpose_avx512(
    x: &Bf16Rows,
    (which, first): (&[usize], usize),
    lanes: usize,
    pairs: usize,
    packed: &mut [u32],
) -> (usize, usize) {
    use std::arch::x86_64::*;
    // pairs of two rows only (an odd last row is left to the caller)
    let (lane_blocks, pair_blocks) = (lanes / 16, which.len() / 2 / 16);
    assert!(packed.len() >= lanes * pairs && pairs >= 16 * pair_blocks);
    for qb in 0..pair_blocks {
        let halves: [(&[u16], &[u16]); 16] = std::array::from_fn(|t| {
            let q = 16 * qb + t;
            let row = |i: usize| &x.halves(which[i])[first..first + lanes];
            (row(2 * q), row(2 * q + 1))
        });
        for jb in 0..lane_blocks {
            // word t of lane j: pair 16 qb + t of feature first + 16 jb + j
            let words: [__m512i; 16] = std::array::from_fn(|t| {
                let (lo, hi) = halves[t];
                // SAFETY: 16 halves at 16 jb in both rows (lanes >= 16 (jb + 1)).
                unsafe {
                    let load = |h: &[u16]| {
                        _mm512_cvtepu16_epi32(_mm256_loadu_si256(h.as_ptr().add(16 * jb).cast()))
                    };
                    _mm512_or_si512(load(lo), _mm512_slli_epi32::<16>(load(hi)))
                }
            });
            for (j, row) in super::rows8::transpose16(words).into_iter().enumerate() {
                let at = (16 * jb + j) * pairs + 16 * qb;
                // SAFETY: 16 words of lane 16 jb + j from pair 16 qb, inside `packed`
                // (asserted above).
                unsafe { _mm512_storeu_si512(packed.as_mut_ptr().add(at).cast(), row) };
            }
        }
    }
    (16 * lane_blocks, 16 * pair_blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::{matmul_with, round, widen};
    use ndarray::Array2;

    fn data(n: usize, k: usize) -> Array2<f32> {
        let special = [
            f32::NAN,
            f32::INFINITY,
            -0.0,
            f32::from_bits(1),
            1.0 + 1.0 / 256.0,
        ];
        // (blocks of zeros in both rows of a two: the products skip pairs of them)
        Array2::from_shape_fn((n, k), |(i, j)| match (i * 7 + j * 3) % 41 {
            s @ 0..=4 => special[s],
            _ if (j / 8 + i / 2) % 2 == 0 => 0.0,
            _ => ((i * 31 + j * 17) as f32 * 0.37).sin(),
        })
    }

    #[test]
    fn rows_hold_the_rounded_values() {
        let x = data(37, 15);
        let rows = Bf16Rows::new(x.view(), Par::Sequential).unwrap();
        for i in 0..37 {
            let halves = rows.halves(i);
            assert_eq!(halves.len(), 16);
            for j in 0..15 {
                assert_eq!(halves[j], round(x[[i, j]]), "({i}, {j})");
            }
            assert_eq!(halves[15], 0, "odd padding");
        }
        let threaded =
            crate::parallel::with_threads(2, |par| Bf16Rows::new(x.view(), par).unwrap()).unwrap();
        assert_eq!(threaded.words, rows.words);
        assert!(widen(rows.halves(0)[0]).is_nan());
    }

    /// `v`'s bits, any NaN as one: X holds NaNs and infinities here, and which NaN a
    /// sum of two keeps is the compiler's choice in the portable kernels (LLVM may swap
    /// an addition's operands), not a result.
    fn bits(v: f32) -> u32 {
        if v.is_nan() {
            f32::NAN.to_bits()
        } else {
            v.to_bits()
        }
    }

    /// Both products equal [`matmul_with`] on the gathered f32 rows, bit for bit, on
    /// every kernel: odd features and rows, offsets and widths off the blocks of 8 and 16.
    #[test]
    fn products_equal_the_gathered_ones() {
        for &(n_rows, k, batch, units) in &[(300, 784, 100, 100), (50, 37, 31, 70), (9, 1, 9, 3)] {
            let x = data(n_rows, k);
            let rows = Bf16Rows::new(x.view(), Par::Sequential).unwrap();
            assert!(rows.skips || k < 784, "the skipping products tested");
            let which: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % n_rows).collect();
            let gathered = Array2::from_shape_fn((batch, k), |(i, j)| x[[which[i], j]]);
            let mut w = data(k, units).mapv(|v| if v.is_finite() { v } else { 0.5 });
            if n_rows == 50 {
                // weights not all finite: no skipping (`0 · inf` is NaN)
                w[[k / 2, units / 2]] = f32::INFINITY;
            }
            let mut packed = PackedB::default();
            packed.repack(w.view());
            assert_eq!(packed.all_finite(), n_rows != 50);
            let mut want = Array2::zeros((batch, units));
            let kernel = Bf16Kernel::best();
            let seq = Par::Sequential;
            matmul_with(
                kernel,
                want.view_mut(),
                gathered.view(),
                w.view(),
                false,
                seq,
            )
            .unwrap();
            let mut got = Array2::from_elem((batch, units), f32::NAN);
            matmul_rows(got.view_mut(), &rows, &which, &packed, seq).unwrap();
            assert_eq!(got.mapv(bits), want.mapv(bits), "forward {k}");

            let d = data(batch, units).mapv(|v| if v.is_finite() { v } else { -0.25 });
            let mut packed_d = PackedB::default();
            packed_d.repack(d.view());
            for (first, lanes) in [(0, k), (k / 3, k - k / 3), (k / 2, k.div_ceil(4))] {
                let cols = gathered.slice(ndarray::s![.., first..first + lanes]);
                let mut want = Array2::from_elem((lanes, units), 1.5_f32);
                let mut got = want.clone();
                // (`got` first: the reference's packing would leave the same words in
                // the thread's buffer, hiding a word `matmul_t_rows` does not write)
                matmul_t_rows(got.view_mut(), &rows, (&which, first), &packed_d, true, seq)
                    .unwrap();
                matmul_with(kernel, want.view_mut(), cols.t(), d.view(), true, seq).unwrap();
                let bits = |a: &Array2<f32>| a.mapv(bits);
                assert_eq!(bits(&got), bits(&want), "gradient {k} {first} {lanes}");
            }
        }
    }

    /// X decides once whether its products skip: dense rows do not.
    #[test]
    fn rows_with_few_zero_pairs_keep_the_tiles() {
        let dense = Array2::from_shape_fn((300, 64), |(i, j)| 1.0 + (i + j) as f32);
        assert!(!Bf16Rows::new(dense.view(), Par::Sequential).unwrap().skips);
        let mut sparse = dense.clone();
        sparse.slice_mut(ndarray::s![.., ..16]).fill(0.0);
        assert!(Bf16Rows::new(sparse.view(), Par::Sequential).unwrap().skips);
        sparse.slice_mut(ndarray::s![.., ..16]).fill(-0.0);
        assert!(
            !Bf16Rows::new(sparse.view(), Par::Sequential).unwrap().skips,
            "-0 words"
        );
    }

    #[test]
    fn bad_rows_and_shapes_are_errors() {
        let x = data(5, 6);
        let rows = Bf16Rows::new(x.view(), Par::Sequential).unwrap();
        let mut packed = PackedB::default();
        packed.repack(data(6, 2).view());
        let mut out = Array2::zeros((2, 2));
        assert!(matmul_rows(out.view_mut(), &rows, &[0, 5], &packed, Par::Sequential).is_err());
        assert!(matmul_rows(out.view_mut(), &rows, &[0], &packed, Par::Sequential).is_err());
        let mut d = PackedB::default();
        d.repack(Array2::zeros((2, 2)).view());
        let seq = Par::Sequential;
        let t = matmul_t_rows(out.view_mut(), &rows, (&[0, 1], 5), &d, false, seq);
        assert!(t.is_err(), "features past the end");
        let t = matmul_t_rows(out.view_mut(), &rows, (&[0, 1, 2], 0), &d, false, seq);
        assert!(t.is_err(), "error signals of other rows");
    }
}
