//! Products with a sparse first layer input (CSR rows gathered in a [`SparseBatch`]),
//! computed as scipy computes `X @ W` and `X.T @ D` for CSR `X` (what scikit-learn's
//! `safe_sparse_dot` calls): each stored entry adds a scaled row, in the entries' order.
//! The work is the entries times the layer width, never rows times `n_features`.

use crate::data::SparseBatch;
use crate::error::{ensure_shape, Result};
use crate::real::Real;
use crate::simd::multiversion;

/// `z = X W` for the first `n` rows of `batch`, with `W` row-major (`n_features x width`)
/// and `z` row-major (`n x width`): scipy's `csr_matvecs`.
pub(crate) fn forward<T: Real>(
    z: &mut [T],
    batch: &SparseBatch<T>,
    w: &[T],
    width: usize,
    n: usize,
) -> Result<()> {
    ensure_shape(z.len() >= n * width && batch.indptr.len() > n, || {
        "sparse product: buffers do not fit the batch".into()
    })?;
    forward_rows(&mut z[..n * width], batch, w, width);
    Ok(())
}

multiversion! {
    fn forward_rows<T: Real>(z: &mut [T], batch: &SparseBatch<T>, w: &[T], width: usize) {
        for (i, row) in z.chunks_exact_mut(width).enumerate() {
            row.fill(T::zero());
            let (columns, values) = batch.row(i);
            for (&j, &v) in columns.iter().zip(values) {
                let w_row = &w[j * width..(j + 1) * width];
                for (out, &x) in row.iter_mut().zip(w_row) {
                    *out += v * x;
                }
            }
        }
    }
}

/// Rows `first..first + dst.len() / width` of `X^T D` over the first `n` rows of
/// `batch`, with `D` row-major (`n x width`), written into (or, with `accumulate`,
/// added to) the row-major `dst`: scipy's `csc_matvecs` of `X.T`, row by row of X.
pub(crate) fn weight_gradient<T: Real>(
    dst: &mut [T],
    batch: &SparseBatch<T>,
    first: usize,
    deltas: &[T],
    width: usize,
    n: usize,
    accumulate: bool,
) -> Result<()> {
    ensure_shape(
        deltas.len() >= n * width && batch.indptr.len() > n && dst.len().is_multiple_of(width),
        || "sparse gradient: buffers do not fit the batch".into(),
    )?;
    if !accumulate {
        dst.fill(T::zero());
    }
    scatter_rows(dst, batch, first, &deltas[..n * width], width);
    Ok(())
}

multiversion! {
    fn scatter_rows<T: Real>(
        dst: &mut [T],
        batch: &SparseBatch<T>,
        first: usize,
        deltas: &[T],
        width: usize,
    ) {
        let end = first + dst.len() / width;
        for (i, d_row) in deltas.chunks_exact(width).enumerate() {
            let (columns, values) = batch.row(i);
            for (&j, &v) in columns.iter().zip(values) {
                if j < first || j >= end {
                    continue;
                }
                let out = &mut dst[(j - first) * width..(j - first + 1) * width];
                for (o, &d) in out.iter_mut().zip(d_row) {
                    *o += v * d;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, Rows, Targets};
    use crate::gemm::matmul;
    use crate::parallel::Par;
    use ndarray::Array2;

    /// Both products against the dense ones of the same rows.
    #[test]
    fn products_match_the_dense_ones() {
        let (n, f, h) = (7, 40, 9);
        let dense = Array2::from_shape_fn((n, f), |(i, j)| {
            if (i * 3 + j * 7) % 5 == 0 {
                (i + j) as f64 * 0.1 - 1.0
            } else {
                0.0
            }
        });
        let (mut data, mut indices, mut indptr) = (vec![], vec![], vec![0_i64]);
        for row in dense.rows() {
            for (j, &v) in row.iter().enumerate().filter(|(_, &v)| v != 0.0) {
                data.push(v);
                indices.push(j as i64);
            }
            indptr.push(data.len() as i64);
        }
        let x = Rows::csr(&data, &indices[..], &indptr, f).unwrap();
        let labels = vec![0_i64; n];
        let set = Dataset {
            x,
            y: Targets::Classes(&labels),
            sample_weight: None,
        };
        let layout = crate::network::Layout::new(vec![f, h, 2]).unwrap();
        let passes = crate::workspace::Passes::Forward;
        let mut ws =
            crate::workspace::Workspace::<f64>::for_rows(&layout, n, passes, &x, false).unwrap();
        let rows: Vec<usize> = (0..n).rev().collect();
        ws.gather(&set, &rows).unwrap();
        let batch = ws.sparse.as_ref().unwrap();
        let w = Array2::from_shape_fn((f, h), |(i, j)| ((i * 5 + j) % 7) as f64 * 0.3 - 1.0);
        let reversed = Array2::from_shape_fn((n, f), |(i, j)| dense[[n - 1 - i, j]]);

        let mut z = vec![f64::NAN; n * h];
        forward(&mut z, batch, w.as_slice().unwrap(), h, n).unwrap();
        let mut want = Array2::zeros((n, h));
        matmul(
            want.view_mut(),
            reversed.view(),
            w.view(),
            false,
            Par::Sequential,
        )
        .unwrap();
        for (a, b) in z.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }

        let d = Array2::from_shape_fn((n, h), |(i, j)| (i as f64 - j as f64) * 0.25);
        let mut grad = Array2::zeros((f, h));
        matmul(
            grad.view_mut(),
            reversed.t(),
            d.view(),
            false,
            Par::Sequential,
        )
        .unwrap();
        for (first, rows) in [(0, f), (13, 20)] {
            let mut got = vec![f64::NAN; rows * h];
            let ds = d.as_slice().unwrap();
            weight_gradient(&mut got, batch, first, ds, h, n, false).unwrap();
            weight_gradient(&mut got, batch, first, ds, h, n, true).unwrap();
            for (k, &g) in got.iter().enumerate() {
                let want = 2.0 * grad[[first + k / h, k % h]];
                assert!((g - want).abs() < 1e-12, "{g} vs {want}");
            }
        }
    }
}
