//! Reductions in a fixed order of independent lanes: they vectorise, and their result
//! depends on the values alone (never on threads or instruction set).

use crate::real::Real;
use crate::simd::multiversion;

/// Independent accumulators of [`sum_of_squares`], so that it vectorises.
pub(crate) const SQUARE_LANES: usize = 16;

/// Sum of squares with independent lanes, so that it vectorises.
#[inline(always)]
pub(crate) fn sum_of_squares<T: Real>(values: &[T]) -> f64 {
    let mut acc = [T::zero(); SQUARE_LANES];
    let mut chunks = values.chunks_exact(SQUARE_LANES);
    for chunk in &mut chunks {
        add_squares(&mut acc, chunk);
    }
    total_of_squares(&acc, chunks.remainder())
}

#[inline(always)]
pub(crate) fn add_squares<T: Real>(acc: &mut [T; SQUARE_LANES], values: &[T]) {
    for (a, &v) in acc.iter_mut().zip(values) {
        *a += v * v;
    }
}

#[inline(always)]
pub(crate) fn total_of_squares<T: Real>(acc: &[T; SQUARE_LANES], tail: &[T]) -> f64 {
    let tail: f64 = tail.iter().map(|&v| Real::to_f64(v * v)).sum();
    acc.iter().map(|&a| Real::to_f64(a)).sum::<f64>() + tail
}

multiversion! {
    /// Whether every value is finite: a sum of `v * 0` is NaN exactly when some `v` is
    /// NaN or infinite, taken in independent lanes so that it vectorises (one
    /// accumulator would be a chain of dependent additions, ~4 cycles a value). Compiled
    /// per instruction set: its callers (the zero-skipping kernels' checks of a part's
    /// error signals and of a prediction's weights) are not, and the baseline build's
    /// two f64 lanes took ~40 us for 78,400 values on the Intel host.
    pub(crate) fn all_finite<T: Real>(values: &[T]) -> bool {
        let mut acc = [T::zero(); SQUARE_LANES];
        let mut chunks = values.chunks_exact(SQUARE_LANES);
        for chunk in &mut chunks {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a += v * T::zero();
            }
        }
        let tail = chunks
            .remainder()
            .iter()
            .fold(T::zero(), |a, &v| a + v * T::zero());
        acc.iter().fold(tail, |a, &b| a + b) == T::zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NaN and either infinity are found in any lane, in the tail past the lanes, and
    /// in both float types; large finite values pass.
    #[test]
    fn all_finite_finds_nan_and_infinity_anywhere() {
        fn check<T: Real>() {
            let mut values: Vec<T> = (0..1003).map(|i| T::from_f64(i as f64 - 500.0)).collect();
            values[7] = T::from_f64(3e38); // near f32's largest
            assert!(all_finite(&values));
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                for at in [0, 15, 16, 500, 991, 1002] {
                    let kept = values[at];
                    values[at] = T::from_f64(bad);
                    assert!(!all_finite(&values), "{bad} at {at}");
                    values[at] = kept;
                }
            }
            assert!(all_finite::<T>(&[]));
        }
        check::<f32>();
        check::<f64>();
    }
}
