//! [`super::forward`]'s kernel in portable code, for CPUs with AVX2 and FMA but not
//! AVX-512 (AMD's Zen 2 and 3, Intel's client cores): the same lists and blocks, the
//! sums written with `mul_add`, which is a fused multiply-add there, vectorised by the
//! compiler across a pass's outputs. So each output is the same chain as `gemm`'s AVX2
//! microkernels compute (the check of [`super::blocks`] confirms it on the CPU).

use super::{block_starts, Forward, LISTS};
use crate::real::Real;

/// Outputs per pass over a row's list: a whole number of 256-bit registers of either
/// type (four of f32, eight of f64), kept in registers across the list.
const COLUMNS: usize = 32;

/// [`super::forward`]'s product on AVX2 with FMA, summing blocks of `block` inputs.
///
/// # Safety
/// The CPU has AVX2 and FMA; the shapes fit (as [`super::forward`] checks), `z` holds
/// `n` rows.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward_avx2<T: Real>(f: &Forward<'_, T>, z: &mut [T], block: usize) {
    forward(f, z, block);
}

/// The kernel (see the module's documentation).
#[inline(always)]
fn forward<T: Real>(f: &Forward<'_, T>, z: &mut [T], block: usize) {
    LISTS.with_borrow_mut(|(live, starts)| {
        for r in 0..f.n {
            let row = &f.x[r * f.inputs..(r + 1) * f.inputs];
            nonzero_inputs(row, live);
            block_starts(live, f.inputs, block, starts);
            let out = &mut z[r * f.width..(r + 1) * f.width];
            let (passes, tail) = out.as_chunks_mut::<COLUMNS>();
            for (p, out) in passes.iter_mut().enumerate() {
                columns(f, row, (live, starts), p * COLUMNS, out);
            }
            columns(f, row, (live, starts), f.width - tail.len(), tail);
        }
    });
}

/// Writes the row's non-zero inputs (NaN counts as non-zero), ascending, into `live`:
/// eight at a time as a bit mask (which the compiler makes a vector compare), then the
/// mask's bits, so that the branches follow the non-zero inputs rather than every input.
#[inline(always)]
fn nonzero_inputs<T: Real>(row: &[T], live: &mut Vec<u32>) {
    live.clear();
    let (chunks, tail) = row.as_chunks::<8>();
    let mut add = |first: usize, mut mask: u32| {
        while mask != 0 {
            live.push(first as u32 + mask.trailing_zeros());
            mask &= mask - 1;
        }
    };
    for (c, chunk) in chunks.iter().enumerate() {
        let mask = (0..8).fold(0, |m, k| m | u32::from(chunk[k] != T::zero()) << k);
        add(c * 8, mask);
    }
    let mask = (0..tail.len()).fold(0, |m, k| m | u32::from(tail[k] != T::zero()) << k);
    add(row.len() - tail.len(), mask);
}

/// Outputs `c0..c0 + out.len()` of one row from its non-zero inputs `live`, block by
/// block (`starts`: where each block starts among them, and their end): each block
/// summed from zero, then written (the first) or added to `out`, as `gemm` does.
/// The whole passes are [`COLUMNS`] long, a length the compiler sees once this is
/// inlined, so that their sums stay in registers.
#[inline(always)]
fn columns<T: Real>(
    f: &Forward<'_, T>,
    row: &[T],
    (live, starts): (&[u32], &[usize]),
    c0: usize,
    out: &mut [T],
) {
    let cols = out.len();
    for (b, range) in starts.windows(2).enumerate() {
        let mut acc = [T::zero(); COLUMNS];
        let acc = &mut acc[..cols];
        for &i in &live[range[0]..range[1]] {
            let (x, w) = (row[i as usize], &f.w[i as usize * f.width + c0..][..cols]);
            acc.iter_mut()
                .zip(w)
                .for_each(|(a, &w)| *a = x.mul_add(w, *a));
        }
        if b == 0 {
            out.copy_from_slice(acc);
        } else {
            out.iter_mut().zip(acc.iter()).for_each(|(o, &a)| *o += a);
        }
    }
}
