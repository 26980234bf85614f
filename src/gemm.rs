//! The one place that calls the GEMM crate: shape/stride adapters from ndarray views, and
//! the fixed chunking of the output that lets several threads share a product while the
//! result stays bit-identical for any number of threads.

use crate::error::{ensure_shape, Result};
use crate::parallel::{Par, SendPtr};
use crate::real::Real;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Products smaller than this many multiply-adds run as one chunk: splitting them costs
/// more in synchronisation than it gains.
const MIN_CHUNK_WORK: usize = 1 << 18;
/// Upper bound on the chunks of one product (enough to balance a handful of threads).
const MAX_CHUNKS: usize = 16;
/// Chunk edges are multiples of this, to keep the kernels on their full-width paths.
const CHUNK_ALIGN: usize = 16;

/// `dst = a · b` (or `dst += a · b` with `accumulate`), any strides (transposed views are
/// fine). The output is cut into chunks along its longer side, sized from the shapes only.
pub fn matmul<T: Real>(
    mut dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    let (m, n) = dst.dim();
    let k = a.ncols();
    ensure_shape(a.nrows() == m && b.nrows() == k && b.ncols() == n, || {
        format!(
            "matmul shapes do not fit: ({m}, {n}) = ({}, {}) x ({}, {})",
            a.nrows(),
            a.ncols(),
            b.nrows(),
            b.ncols()
        )
    })?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(T::zero());
        }
        return Ok(());
    }
    let [drs, dcs] = [dst.strides()[0], dst.strides()[1]];
    let [ars, acs] = [a.strides()[0], a.strides()[1]];
    let [brs, bcs] = [b.strides()[0], b.strides()[1]];
    let dptr = SendPtr(dst.as_mut_ptr());
    let aptr = SendPtr(a.as_ptr() as *mut T);
    let bptr = SendPtr(b.as_ptr() as *mut T);

    let split_rows = m >= n;
    let long = if split_rows { m } else { n };
    let chunks = (m * n * k / MIN_CHUNK_WORK).clamp(1, MAX_CHUNKS);
    let size = long.div_ceil(chunks).div_ceil(CHUNK_ALIGN) * CHUNK_ALIGN;
    let count = long.div_ceil(size);

    par.for_each(count, |c| {
        let start = c * size;
        let len = size.min(long - start);
        // SAFETY: the views outlive this call, the chunks cover disjoint parts of `dst`, and
        // every offset stays inside the views' extents checked above.
        unsafe {
            let (dp, ap, bp, mm, nn) = if split_rows {
                let off = start as isize;
                (
                    dptr.get().offset(off * drs),
                    aptr.get().offset(off * ars),
                    bptr.get(),
                    len,
                    n,
                )
            } else {
                let off = start as isize;
                (
                    dptr.get().offset(off * dcs),
                    aptr.get(),
                    bptr.get().offset(off * bcs),
                    m,
                    len,
                )
            };
            gemm::gemm(
                mm,
                nn,
                k,
                dp,
                dcs,
                drs,
                accumulate,
                ap,
                acs,
                ars,
                bp,
                bcs,
                brs,
                T::one(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let mut c = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum();
            }
        }
        c
    }

    fn filled(r: usize, c: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((r, c), |(i, j)| ((i * 31 + j * 17) as f64 * seed).sin())
    }

    #[test]
    fn matches_naive_for_transposes_and_chunks() {
        for &(m, n, k) in &[
            (3, 5, 7),
            (300, 40, 90),
            (40, 300, 90),
            (1, 1, 1),
            (257, 129, 33),
        ] {
            let a = filled(m, k, 0.37);
            let b = filled(k, n, 0.11);
            let want = naive(&a, &b);
            let at = a.t().to_owned();
            for par in [Par::Sequential, Par::Rayon] {
                let mut got = Array2::zeros((m, n));
                matmul(got.view_mut(), at.t(), b.view(), false, par).unwrap();
                assert!((&got - &want).iter().all(|d| d.abs() < 1e-9));
                matmul(got.view_mut(), a.view(), b.view(), true, par).unwrap();
                assert!((&got - &(2.0 * &want)).iter().all(|d| d.abs() < 1e-9));
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let a = Array2::<f64>::zeros((2, 3));
        let mut d = Array2::<f64>::zeros((2, 2));
        assert!(matmul(d.view_mut(), a.view(), a.view(), false, Par::Sequential).is_err());
    }
}
