//! Hidden and output activations, and the hidden derivatives written from the outputs
//! (as scikit-learn does, so that the forward pass can overwrite Z with Y in place).

use crate::error::{Error, Result};
use crate::real::Real;
use crate::simd::multiversion;

/// Activation of the hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Logistic,
    Tanh,
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

impl Activation {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "identity" => Ok(Self::Identity),
            "logistic" => Ok(Self::Logistic),
            "tanh" => Ok(Self::Tanh),
            "relu" => Ok(Self::Relu),
            _ => Err(Error::Value(format!("unknown activation {name:?}"))),
        }
    }

    /// Replaces each pre-activation `z` by `phi(z)`.
    #[inline(always)]
    pub fn apply<T: Real>(self, values: &mut [T]) {
        match self {
            Self::Identity => {}
            Self::Logistic => values.iter_mut().for_each(|v| *v = logistic(*v)),
            Self::Tanh => values.iter_mut().for_each(|v| *v = v.tanh()),
            // `z < 0` (not `max`) so that NaN propagates as in np.maximum.
            Self::Relu => values
                .iter_mut()
                .for_each(|v| *v = if *v < T::zero() { T::zero() } else { *v }),
        }
    }

    /// Multiplies `delta` by phi'(z), expressed through the outputs `y = phi(z)`.
    pub fn scale_by_derivative<T: Real>(self, outputs: &[T], delta: &mut [T]) {
        scale_by_derivative(self, outputs, delta)
    }

    #[inline(always)]
    fn scale_by_derivative_inline<T: Real>(self, outputs: &[T], delta: &mut [T]) {
        let pairs = delta.iter_mut().zip(outputs);
        match self {
            Self::Identity => {}
            Self::Logistic => pairs.for_each(|(d, &y)| *d = *d * y * (T::one() - y)),
            Self::Tanh => pairs.for_each(|(d, &y)| *d *= T::one() - y * y),
            // A select, not a conditional store, so that it vectorises.
            Self::Relu => {
                pairs.for_each(|(d, &y)| *d = if y == T::zero() { T::zero() } else { *d })
            }
        }
    }
}

impl OutputActivation {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "identity" => Ok(Self::Identity),
            "logistic" => Ok(Self::Logistic),
            "softmax" => Ok(Self::Softmax),
            "exp" => Ok(Self::Exp),
            _ => Err(Error::Value(format!("unknown output activation {name:?}"))),
        }
    }

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
            OutputActivation::Exp => values.iter_mut().for_each(|v| *v = v.exp_vec()),
            OutputActivation::Softmax => softmax(values, width.max(1)),
        }
    }
}

multiversion! {
    fn scale_by_derivative<T: Real>(activation: Activation, outputs: &[T], delta: &mut [T]) {
        activation.scale_by_derivative_inline(outputs, delta)
    }
}

multiversion! {
    /// Adds `bias` to every row of the row-major block `z` (rows of `bias.len()`).
    pub fn add_bias<T: Real>(z: &mut [T], bias: &[T]) {
        for row in z.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
    }
}

multiversion! {
    /// Adds `bias` to every row of `z`, then applies the hidden activation, row by row
    /// while the row is in cache.
    pub fn add_bias_and_activate<T: Real>(z: &mut [T], bias: &[T], activation: Activation) {
        for row in z.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
            activation.apply(row);
        }
    }
}

multiversion! {
    /// Adds the column sums of the row-major block `block` (rows of `sums.len()`).
    pub fn add_column_sums<T: Real>(sums: &mut [T], block: &[T]) {
        for row in block.chunks_exact(sums.len()) {
            sums.iter_mut().zip(row).for_each(|(s, &d)| *s += d);
        }
    }
}

/// The logistic sigmoid, in the overflow-free form of scipy's `expit`: `1 / (1 + e^-z)`
/// for `z >= 0`, `e^z / (1 + e^z)` below (as selects, so that it vectorises).
#[inline(always)]
pub fn logistic<T: Real>(z: T) -> T {
    let e = (-z.abs()).exp_vec();
    let numerator = if z >= T::zero() { T::one() } else { e };
    numerator / (T::one() + e)
}

/// Row-wise softmax of a row-major block, with the exponentials taken over the whole
/// block in one loop (rows are too short for a vector loop of their own).
#[inline(always)]
fn softmax<T: Real>(values: &mut [T], width: usize) {
    for row in values.chunks_exact_mut(width) {
        let max =
            row.iter().copied().fold(
                T::neg_infinity(),
                |m, v| {
                    if v > m || v.is_nan() {
                        v
                    } else {
                        m
                    }
                },
            );
        row.iter_mut().for_each(|v| *v -= max);
    }
    let whole_rows = values.len() / width * width;
    values[..whole_rows]
        .iter_mut()
        .for_each(|v| *v = v.exp_vec());
    for row in values.chunks_exact_mut(width) {
        let mut sum = T::zero();
        for &v in row.iter() {
            sum += v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
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
    fn softmax_rows_sum_to_one() {
        let mut v = vec![1.0_f64, 2.0, 3.0, 1000.0, 1000.0, 0.0];
        OutputActivation::Softmax.apply(&mut v, 3);
        assert!((v[0] + v[1] + v[2] - 1.0).abs() < 1e-15);
        assert!((v[3] - 0.5).abs() < 1e-15 && v[5] == 0.0);
    }

    #[test]
    fn relu_keeps_nan() {
        let mut v = vec![f64::NAN, -1.0, 2.0];
        Activation::Relu.apply(&mut v);
        assert!(v[0].is_nan() && v[1] == 0.0 && v[2] == 2.0);
    }
}
