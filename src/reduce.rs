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
