//! Where training rows come from (a dense row-major matrix or CSR parts) and the gather of
//! one batch of rows into a reused contiguous buffer.

use crate::error::{ensure_shape, Error, Result};
use crate::real::Real;
use ndarray::ArrayView2;

/// A read-only matrix of samples.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a, T> {
    /// Any strides; gathering copies rows out in order.
    Dense(ArrayView2<'a, T>),
    /// Compressed sparse rows, as scipy lays them out.
    Csr {
        data: &'a [T],
        indices: &'a [i64],
        indptr: &'a [i64],
        n_cols: usize,
    },
}

impl<'a, T: Real> Rows<'a, T> {
    /// Checks the CSR invariants once, so that gathering can index without panicking.
    pub fn csr(
        data: &'a [T],
        indices: &'a [i64],
        indptr: &'a [i64],
        n_cols: usize,
    ) -> Result<Self> {
        ensure_shape(!indptr.is_empty() && data.len() == indices.len(), || {
            "CSR matrix: data and indices differ in length, or indptr is empty".into()
        })?;
        let nnz = data.len() as i64;
        let mut prev = 0i64;
        if indptr[0] != 0 {
            return Err(Error::Value("CSR matrix: indptr must start at 0".into()));
        }
        for &p in &indptr[1..] {
            if p < prev || p > nnz {
                return Err(Error::Value(
                    "CSR matrix: indptr is not non-decreasing within nnz".into(),
                ));
            }
            prev = p;
        }
        if prev != nnz {
            return Err(Error::Value(
                "CSR matrix: indptr does not end at nnz".into(),
            ));
        }
        if indices.iter().any(|&j| j < 0 || j as usize >= n_cols) {
            return Err(Error::Value(
                "CSR matrix: a column index is out of range".into(),
            ));
        }
        Ok(Rows::Csr {
            data,
            indices,
            indptr,
            n_cols,
        })
    }

    pub fn n_rows(&self) -> usize {
        match self {
            Rows::Dense(x) => x.nrows(),
            Rows::Csr { indptr, .. } => indptr.len() - 1,
        }
    }

    pub fn n_cols(&self) -> usize {
        match self {
            Rows::Dense(x) => x.ncols(),
            Rows::Csr { n_cols, .. } => *n_cols,
        }
    }

    /// Copies the contiguous rows `start..start + len` into `out`, row-major.
    pub fn gather_range(&self, start: usize, len: usize, out: &mut [T]) {
        self.gather_rows(start..start + len, out)
    }

    /// The rows `start..start + len` as one row-major slice, when X holds them so.
    pub fn contiguous(&self, start: usize, len: usize) -> Option<&'a [T]> {
        match self {
            Rows::Dense(x) => x.slice_move(ndarray::s![start..start + len, ..]).to_slice(),
            Rows::Csr { .. } => None,
        }
    }

    /// Copies the rows `which` (all `< n_rows`, checked by the caller) into `out`, row-major.
    pub fn gather_rows(&self, which: impl ExactSizeIterator<Item = usize>, out: &mut [T]) {
        let width = self.n_cols();
        let out = &mut out[..which.len() * width];
        match self {
            Rows::Dense(x) => {
                for (dst, r) in out.chunks_exact_mut(width).zip(which) {
                    let row = x.row(r);
                    match row.as_slice() {
                        Some(s) => dst.copy_from_slice(s),
                        None => dst.iter_mut().zip(row.iter()).for_each(|(d, &v)| *d = v),
                    }
                }
            }
            Rows::Csr {
                data,
                indices,
                indptr,
                ..
            } => {
                out.fill(T::zero());
                for (dst, r) in out.chunks_exact_mut(width).zip(which) {
                    let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
                    for (&j, &v) in indices[lo..hi].iter().zip(&data[lo..hi]) {
                        // Duplicate entries add up, as in scipy's own products.
                        dst[j as usize] += v;
                    }
                }
            }
        }
    }
}

/// Training targets: a dense `n x n_outputs` matrix (regression, binary and multilabel
/// classification), or one class index per sample (multiclass), expanded to one-hot rows
/// batch by batch so that a one-hot matrix of the whole data never exists.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, T> {
    Dense(ArrayView2<'a, T>),
    Classes(&'a [i64]),
}

impl<T: Real> Targets<'_, T> {
    /// Checks the targets against `n` samples and `width` outputs (class indices must
    /// be below `width`).
    pub fn check(&self, n: usize, width: usize) -> Result<()> {
        match self {
            Targets::Dense(y) => ensure_shape(y.dim() == (n, width), || {
                format!("y has shape {:?}, expected ({n}, {width})", y.dim())
            }),
            Targets::Classes(c) => {
                ensure_shape(c.len() == n, || {
                    format!("{} class indices for {n} samples", c.len())
                })?;
                if c.iter().any(|&k| k < 0 || k as usize >= width) {
                    return Err(Error::Value(format!(
                        "class indices must lie in [0, {width})"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Writes the target rows `which` (row-major, `width` values each) into `out`.
    pub fn gather_rows(
        &self,
        which: impl ExactSizeIterator<Item = usize>,
        width: usize,
        out: &mut [T],
    ) {
        match self {
            Targets::Dense(y) => Rows::Dense(*y).gather_rows(which, out),
            Targets::Classes(c) => {
                let out = &mut out[..which.len() * width];
                out.fill(T::zero());
                for (row, r) in out.chunks_exact_mut(width).zip(which) {
                    row[c[r] as usize] = T::one();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn dense_and_csr_gather_alike() {
        let x = array![[1.0_f64, 0.0, 2.0], [0.0, 0.0, 3.0], [4.0, 5.0, 0.0]];
        let csr = Rows::csr(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[0, 2, 2, 0, 1],
            &[0, 2, 3, 5],
            3,
        )
        .unwrap();
        let mut a = vec![0.0; 6];
        let mut b = vec![9.0; 6];
        Rows::Dense(x.view()).gather_rows([2, 0].into_iter(), &mut a);
        csr.gather_rows([2, 0].into_iter(), &mut b);
        assert_eq!(a, b);
        assert_eq!(a, vec![4.0, 5.0, 0.0, 1.0, 0.0, 2.0]);
        let one_hot = Targets::<f64>::Classes(&[2, 0]);
        assert!(one_hot.check(2, 3).is_ok() && one_hot.check(2, 2).is_err());
        one_hot.gather_rows([1, 0].into_iter(), 3, &mut a);
        assert_eq!(&a[..6], &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        let xt = x.t();
        Rows::Dense(xt).gather_rows([1].into_iter(), &mut a);
        assert_eq!(&a[..3], &[0.0, 0.0, 5.0]);
    }

    #[test]
    fn bad_csr_is_an_error() {
        assert!(Rows::<f64>::csr(&[1.0], &[5], &[0, 1], 3).is_err());
        assert!(Rows::<f64>::csr(&[1.0], &[0], &[0, 2], 3).is_err());
    }
}
