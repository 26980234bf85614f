//! The data layer: where samples come from (a dense matrix or CSR parts), their targets
//! and weights ([`Dataset`]), and the gather of one batch of rows into reused contiguous
//! buffers.

use crate::error::{ensure_shape, Error, Result};
use crate::memory;
use crate::real::Real;
use ndarray::ArrayView2;

/// The column indices of a CSR matrix, in the integer width scipy stored them (int32
/// usually: read as they are, never copied to a wider type).
#[derive(Debug, Clone, Copy)]
pub enum Columns<'a> {
    /// 32-bit indices (scipy's default).
    I32(&'a [i32]),
    /// 64-bit indices (large matrices).
    I64(&'a [i64]),
}

impl<'a> From<&'a [i32]> for Columns<'a> {
    fn from(indices: &'a [i32]) -> Self {
        Columns::I32(indices)
    }
}

impl<'a> From<&'a [i64]> for Columns<'a> {
    fn from(indices: &'a [i64]) -> Self {
        Columns::I64(indices)
    }
}

impl Columns<'_> {
    fn len(&self) -> usize {
        match self {
            Columns::I32(c) => c.len(),
            Columns::I64(c) => c.len(),
        }
    }

    /// Whether every index lies in `0..n_cols`.
    fn within(&self, n_cols: usize) -> bool {
        match self {
            Columns::I32(c) => c.iter().all(|&j| j >= 0 && (j as usize) < n_cols),
            Columns::I64(c) => c.iter().all(|&j| j >= 0 && (j as usize) < n_cols),
        }
    }

    /// Writes the columns of entries `lo..hi` into `out`.
    fn copy_into(&self, lo: usize, hi: usize, out: &mut [usize]) {
        match self {
            Columns::I32(c) => out
                .iter_mut()
                .zip(&c[lo..hi])
                .for_each(|(o, &j)| *o = j as usize),
            Columns::I64(c) => out
                .iter_mut()
                .zip(&c[lo..hi])
                .for_each(|(o, &j)| *o = j as usize),
        }
    }

    fn get(&self, e: usize) -> usize {
        match self {
            Columns::I32(c) => c[e] as usize,
            Columns::I64(c) => c[e] as usize,
        }
    }
}

/// A read-only matrix of samples.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a, T> {
    /// Any strides; gathering copies rows out in order.
    Dense(ArrayView2<'a, T>),
    /// Compressed sparse rows, as scipy lays them out.
    Csr {
        /// The stored values, row after row.
        data: &'a [T],
        /// The column of each stored value.
        indices: Columns<'a>,
        /// Where each row starts in `data` (`n_rows + 1` entries).
        indptr: &'a [i64],
        /// Number of columns (features).
        n_cols: usize,
    },
}

impl<'a, T: Real> Rows<'a, T> {
    /// Checks the CSR invariants once, so that gathering can index without panicking.
    pub fn csr(
        data: &'a [T],
        indices: impl Into<Columns<'a>>,
        indptr: &'a [i64],
        n_cols: usize,
    ) -> Result<Self> {
        let indices = indices.into();
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
        if !indices.within(n_cols) {
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

    /// Number of rows (samples).
    pub fn n_rows(&self) -> usize {
        match self {
            Rows::Dense(x) => x.nrows(),
            Rows::Csr { indptr, .. } => indptr.len() - 1,
        }
    }

    /// Number of columns (features).
    pub fn n_cols(&self) -> usize {
        match self {
            Rows::Dense(x) => x.ncols(),
            Rows::Csr { n_cols, .. } => *n_cols,
        }
    }

    /// Gathers the rows `which` (all `< n_rows`): the entries of CSR rows into `sparse`
    /// when given, else the rows into `dense`, row-major.
    pub(crate) fn gather_into(
        &self,
        which: impl ExactSizeIterator<Item = usize> + Clone,
        dense: &mut [T],
        sparse: Option<&mut SparseBatch<T>>,
    ) -> Result<()> {
        match (self, sparse) {
            (
                Rows::Csr {
                    data,
                    indices,
                    indptr,
                    ..
                },
                Some(batch),
            ) => batch.gather((data, *indices, indptr), which),
            _ => {
                self.gather_rows(which, dense);
                Ok(())
            }
        }
    }

    /// Whether the rows are CSR parts (trained and predicted from sparse batches).
    pub fn is_sparse(&self) -> bool {
        matches!(self, Rows::Csr { .. })
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
    pub fn gather_rows(&self, which: impl ExactSizeIterator<Item = usize> + Clone, out: &mut [T]) {
        let width = self.n_cols();
        let out = &mut out[..which.len() * width];
        match self {
            Rows::Dense(x) => {
                let mut ahead = which.clone().skip(PREFETCH_AHEAD);
                for (dst, r) in out.chunks_exact_mut(width).zip(which) {
                    if let Some(next) = ahead.next() {
                        prefetch_row(x.row(next).as_ptr(), width);
                    }
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
                    for (e, &v) in (lo..hi).zip(&data[lo..hi]) {
                        // Duplicate entries add up, as in scipy's own products.
                        dst[indices.get(e)] += v;
                    }
                }
            }
        }
    }
}

/// A shuffled batch reads X's rows in random order; where X is larger than the caches
/// each row is a miss that the copy would wait for, so the row this many places ahead is
/// requested while the current one is copied (tabular W1, 8 MB of X, engine alone: the
/// gather's share of an epoch 8 % -> 5 %, the epoch 2-3 % faster).
const PREFETCH_AHEAD: usize = 4;

/// Asks the cache for the start of a row (its first 256 bytes: the hardware prefetcher
/// follows a longer row by itself once it is read in order).
#[inline]
fn prefetch_row<T>(row: *const T, width: usize) {
    let bytes = (width * std::mem::size_of::<T>()).min(256);
    for offset in (0..bytes).step_by(64) {
        crate::simd::prefetch(row.cast::<u8>().wrapping_add(offset));
    }
}

/// Training targets: a dense `n x n_outputs` matrix (regression, binary and multilabel
/// classification), or one class index per sample (multiclass), expanded to one-hot rows
/// batch by batch so that a one-hot matrix of the whole data never exists.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, T> {
    /// One row of `n_outputs` values per sample.
    Dense(ArrayView2<'a, T>),
    /// One class index per sample.
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
        which: impl ExactSizeIterator<Item = usize> + Clone,
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

/// Samples with their targets (already binarized for classifiers) and optional weights.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, T> {
    /// The samples, one row each.
    pub x: Rows<'a, T>,
    /// Their targets.
    pub y: Targets<'a, T>,
    /// One weight per sample; `None` weighs every sample 1.
    pub sample_weight: Option<&'a [T]>,
}

/// Rows of a CSR matrix gathered for one batch: row `i` holds the entries
/// `indptr[i]..indptr[i + 1]` of `indices` (columns) and `values`, in X's order. A sparse
/// X trains and predicts from these, never from dense rows `n_features` wide.
#[derive(Debug, Default)]
pub struct SparseBatch<T> {
    /// Where each row starts (one more entry than rows).
    pub indptr: Vec<usize>,
    /// The column of each entry.
    pub indices: Vec<usize>,
    /// The value of each entry.
    pub values: Vec<T>,
}

impl<T: Real> SparseBatch<T> {
    /// The rows `which` of the CSR matrix `(data, indices, indptr)` (checked by
    /// [`Rows::csr`]); the buffers grow to the largest batch seen, fallibly.
    fn gather(
        &mut self,
        (data, indices, indptr): (&[T], Columns<'_>, &[i64]),
        which: impl ExactSizeIterator<Item = usize> + Clone,
    ) -> Result<()> {
        let nnz: usize = which
            .clone()
            .map(|r| (indptr[r + 1] - indptr[r]) as usize)
            .sum();
        let what = || format!("the entries of a sparse batch ({nnz})");
        memory::grow(&mut self.values, nnz, T::zero(), what)?;
        memory::grow(&mut self.indices, nnz, 0, what)?;
        memory::grow(&mut self.indptr, which.len() + 1, 0, what)?;
        let mut at = 0;
        self.indptr[0] = 0;
        for (i, r) in which.enumerate() {
            let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
            let len = hi - lo;
            self.values[at..at + len].copy_from_slice(&data[lo..hi]);
            indices.copy_into(lo, hi, &mut self.indices[at..at + len]);
            at += len;
            self.indptr[i + 1] = at;
        }
        Ok(())
    }

    /// Row `i`'s columns and values.
    pub(crate) fn row(&self, i: usize) -> (&[usize], &[T]) {
        let (lo, hi) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[lo..hi], &self.values[lo..hi])
    }
}

/// Where a gather writes one batch: row-major inputs (or, for a sparse X with `sparse`
/// given, its entries) and targets, each row's class (for class targets) and weight.
/// Sized for at least the rows gathered.
pub(crate) struct BatchBuffers<'w, T> {
    pub x: &'w mut [T],
    pub sparse: Option<&'w mut SparseBatch<T>>,
    pub y: &'w mut [T],
    pub n_outputs: usize,
    pub classes: &'w mut [usize],
    pub w: &'w mut [T],
}

/// What a gather found besides the rows themselves.
pub(crate) struct Gathered<T> {
    /// The sum of the rows' weights (their count when unweighted).
    pub weight_sum: T,
    /// Whether the targets are one-hot rows whose classes were written too.
    pub one_hot: bool,
}

impl<T: Real> Dataset<'_, T> {
    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.x.n_rows()
    }

    /// Checks that X has `n_inputs` features and that the targets (`n_outputs` wide) and
    /// the weights have one entry per sample; `what` names the data in the message.
    pub fn check(&self, what: &str, n_inputs: usize, n_outputs: usize) -> Result<()> {
        let n = self.n_samples();
        ensure_shape(self.x.n_cols() == n_inputs, || {
            format!(
                "{what}: X has {} features, the network expects {n_inputs}",
                self.x.n_cols()
            )
        })?;
        self.y
            .check(n, n_outputs)
            .map_err(|e| Error::Shape(format!("{what}: {e}")))?;
        if let Some(w) = self.sample_weight {
            ensure_shape(w.len() == n, || {
                format!("{what}: {} sample weights for {n} samples", w.len())
            })?;
        }
        Ok(())
    }

    /// Gathers the rows `which` (all `< n_samples`, checked by the caller) into `dst`:
    /// their targets and weights, and with `with_x` their samples (a score's second pass
    /// needs only the targets).
    pub(crate) fn gather_rows(
        &self,
        which: impl ExactSizeIterator<Item = usize> + Clone,
        with_x: bool,
        dst: BatchBuffers<'_, T>,
    ) -> Result<Gathered<T>> {
        if with_x {
            self.x.gather_into(which.clone(), dst.x, dst.sparse)?;
        }
        let count = which.len();
        self.y.gather_rows(which.clone(), dst.n_outputs, dst.y);
        let one_hot = match self.y {
            Targets::Classes(c) => {
                for (slot, r) in dst.classes.iter_mut().zip(which.clone()) {
                    *slot = c[r] as usize;
                }
                true
            }
            Targets::Dense(_) => false,
        };
        let weight_sum = match self.sample_weight {
            Some(w) => {
                let mut sum = T::zero();
                for (slot, r) in dst.w.iter_mut().zip(which) {
                    *slot = w[r];
                    sum += w[r];
                }
                sum
            }
            None => T::from_f64(count as f64),
        };
        Ok(Gathered {
            weight_sum,
            one_hot,
        })
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
            &[0_i32, 2, 2, 0, 1][..],
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
        assert!(Rows::<f64>::csr(&[1.0], &[5_i64][..], &[0, 1], 3).is_err());
        assert!(Rows::<f64>::csr(&[1.0], &[0_i32][..], &[0, 2], 3).is_err());
    }
}
