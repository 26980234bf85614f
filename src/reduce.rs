//! Reductions in a fixed order of independent lanes: they vectorise, and their result
//! depends on the values alone (never on threads or instruction set).

use crate::real::Real;

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

/// Whether every value is finite: a sum of `v * 0` is NaN exactly when some `v` is NaN
/// or infinite, taken in independent lanes so that it vectorises (one accumulator would
/// be a chain of dependent additions, ~4 cycles a value).
#[inline(always)]
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
