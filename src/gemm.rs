//! The one place that calls the GEMM crates: shape/stride adapters from ndarray views.
//!
//! Two kernels, chosen by shape alone (measured in `bench/gemm_choice.md`): `gemm` for
//! the large products, `nano-gemm` (no packing, masked microkernels) for small ones and
//! for the narrow products of an output layer with a few units, where `gemm`'s packing
//! and dispatch cost more than the arithmetic.
//!
//! Threads: `gemm` splits a product over output tiles and packs each operand once for all
//! threads. Its k-blocking comes from the shapes and cache sizes only, never from the
//! thread count, so every output element is accumulated in the same order whatever the
//! number of threads: results are bit-identical (checked by the tests below).

use crate::bf16;
use crate::error::{ensure_product, ensure_shape, Result};
use crate::narrow;
use crate::parallel::Par;
use crate::real::Real;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use std::any::TypeId;

/// Products of at most this many multiply-adds go to `nano-gemm`, on one thread (waking
/// other threads would cost more than they save; up to this size `nano-gemm` also beats
/// `gemm`'s packing on one thread, e.g. the tabular W1's 100x100x20: see
/// `bench/gemm_choice.md`)...
const SMALL_WORK: usize = 1 << 19;

/// ...and so do those with a dimension this short...
const NARROW: usize = 16;

/// ...up to this many multiply-adds (an output layer of a few units over a block of rows);
/// larger narrow products keep `gemm` and its threads.
const NARROW_WORK: usize = 1 << 21;

/// ...except products whose every side is at least this long and that have at least
/// [`SQUARE_WORK`] multiply-adds (f64: [`SQUARE_WORK_F64`]): on the Intel host `gemm`'s
/// microkernels run those 10-30 % faster than `nano-gemm`'s (the products of W2, W5 and
/// C4's hidden layer, one thread; on the AMD host they tie: `bench/gemm_choice.md`). The
/// same bits: such a product has at most 512 inputs (`SMALL_WORK / SQUARE_SIDE^2`),
/// which both kernels sum in one chain per output.
const SQUARE_SIDE: usize = 32;
const SQUARE_WORK: usize = 1 << 17;
/// In f64 `gemm` is faster from smaller products (on the Intel host, one thread: 32 x 32
/// x 64 77.9 against 67.9 GFLOPS, 64 x 32 x 32 75.9 / 72.4, 32 x 32 x 32 76.1 / 68.8),
/// where in f32 `nano-gemm` still is (142.9 / 149.4, 130.5 / 146.7, 112.1 / 124.6).
const SQUARE_WORK_F64: usize = 1 << 15;

/// Largest operand, in values, that [`matmul`] copies for `nano-gemm` itself.
const OPERAND_COPY: usize = 1 << 14;

/// The two matrix-product kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The `gemm` crate: packed operands, threads when the call has them.
    Gemm,
    /// `nano-gemm`: no packing, one thread.
    Nano,
}

impl Kernel {
    /// The kernel for an `m x n x k` product: by shape alone, never by thread count, so
    /// that results stay bit-identical.
    pub fn for_shape<T: Real>(m: usize, n: usize, k: usize) -> Self {
        let (work, side) = (m * n * k, m.min(n).min(k));
        let square_work = match std::mem::size_of::<T>() {
            8 => SQUARE_WORK_F64,
            _ => SQUARE_WORK,
        };
        let square = side >= SQUARE_SIDE && work >= square_work;
        if (work <= SMALL_WORK && !square) || (side <= NARROW && work <= NARROW_WORK) {
            Kernel::Nano
        } else {
            Kernel::Gemm
        }
    }
}

/// How a product treats its operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// In the model's own type (f32 or f64), as scikit-learn computes.
    #[default]
    Exact,
    /// f32 operands rounded to bfloat16, products accumulated in f32 (f64 products stay
    /// exact); see [`crate::bf16`].
    Bf16,
}

/// [`matmul`] with the operands treated as `precision` says.
pub(crate) fn matmul_in<T: Real>(
    precision: Precision,
    dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    if precision == Precision::Bf16 && TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: `T` is f32; the views keep their shapes, strides and lifetimes.
        let (dst, a, b) = unsafe { (as_f32_mut(dst), as_f32(a), as_f32(b)) };
        return bf16::matmul(dst, a, b, accumulate, par);
    }
    matmul(dst, a, b, accumulate, par)
}

/// [`bf16::matmul_packed`] for f32 `T` (an error for f64, which never packs).
pub(crate) fn matmul_prepacked<T: Real>(
    dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: &bf16::PackedB,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    ensure_f32::<T>()?;
    // SAFETY: `T` is f32 (checked above).
    let (dst, a) = unsafe { (as_f32_mut(dst), as_f32(a)) };
    bf16::matmul_packed(dst, a, b, accumulate, par)
}

/// [`bf16::matmul_rows`] for f32 `T`: the first layer's forward product from X's rows
/// rounded once.
pub(crate) fn matmul_rows<T: Real>(
    dst: ArrayViewMut2<'_, T>,
    x: &bf16::Bf16Rows,
    which: &[usize],
    w: &bf16::PackedB,
    par: Par,
) -> Result<()> {
    ensure_f32::<T>()?;
    // SAFETY: `T` is f32 (checked above).
    bf16::matmul_rows(unsafe { as_f32_mut(dst) }, x, which, w, par)
}

/// [`bf16::matmul_t_rows`] for f32 `T`: rows `first..` of the first layer's weight
/// gradient from X's rows rounded once.
pub(crate) fn matmul_t_rows<T: Real>(
    dst: ArrayViewMut2<'_, T>,
    x: &bf16::Bf16Rows,
    rows: (&[usize], usize),
    d: &bf16::PackedB,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    ensure_f32::<T>()?;
    // SAFETY: `T` is f32 (checked above).
    bf16::matmul_t_rows(unsafe { as_f32_mut(dst) }, x, rows, d, accumulate, par)
}

/// `v` as f32 when `T` is f32 (X of a bfloat16 fit).
pub(crate) fn f32_view<'a, T: Real>(v: ArrayView2<'a, T>) -> Option<ArrayView2<'a, f32>> {
    // SAFETY: `T` is f32 when the check passes.
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| unsafe { as_f32(v) })
}

fn ensure_f32<T: Real>() -> Result<()> {
    ensure_shape(TypeId::of::<T>() == TypeId::of::<f32>(), || {
        "bfloat16 products take f32 operands".into()
    })
}

/// The same view as f32.
///
/// # Safety
/// `T` is f32.
unsafe fn as_f32<'a, T>(v: ArrayView2<'a, T>) -> ArrayView2<'a, f32> {
    let (rows, cols) = v.dim();
    let (rs, cs) = (v.strides()[0], v.strides()[1]);
    let ptr = v.as_ptr().cast::<f32>();
    // SAFETY: the caller's contract; a view's strides fit its data.
    unsafe { ArrayView2::from_shape_ptr((rows, cols).strides((rs as usize, cs as usize)), ptr) }
}

/// The same mutable view as f32.
///
/// # Safety
/// `T` is f32.
unsafe fn as_f32_mut<'a, T>(mut v: ArrayViewMut2<'a, T>) -> ArrayViewMut2<'a, f32> {
    let (rows, cols) = v.dim();
    let (rs, cs) = (v.strides()[0], v.strides()[1]);
    let ptr = v.as_mut_ptr().cast::<f32>();
    // SAFETY: as above; the view is borrowed mutably, so no alias exists.
    unsafe { ArrayViewMut2::from_shape_ptr((rows, cols).strides((rs as usize, cs as usize)), ptr) }
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`), any strides (transposed views are
/// fine), with the kernel [`Kernel::for_shape`] picks.
pub fn matmul<T: Real>(
    dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    let kernel = Kernel::for_shape::<T>(dst.nrows(), dst.ncols(), a.ncols());
    matmul_with(kernel, dst, a, b, accumulate, par)
}

/// [`matmul`] with a given kernel (the benchmark of the choice calls it directly).
pub fn matmul_with<T: Real>(
    kernel: Kernel,
    mut dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    let (m, n) = dst.dim();
    let k = a.ncols();
    ensure_product("matmul", (m, n), a.dim(), b.dim())?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(T::zero());
        }
        return Ok(());
    }
    // SAFETY (all three): the views are valid for their shapes and strides, checked to
    // fit together above; `dst` is borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        match kernel {
            Kernel::Nano if narrow_applies(&dst, &b) => narrow_product(dst, a, b, accumulate),
            Kernel::Nano => nano_product(dst, a, b, accumulate),
            Kernel::Gemm => gemm_product(dst, a, b, accumulate, par),
        }
    }
    Ok(())
}

/// Whether [`narrow_product`] takes the product: f64 (ten f32 columns already fill a
/// 512-bit register well enough), unit column strides for `dst` and `b`, a narrow `dst`.
fn narrow_applies<T: Real>(dst: &ArrayViewMut2<'_, T>, b: &ArrayView2<'_, T>) -> bool {
    TypeId::of::<T>() == TypeId::of::<f64>()
        && dst.strides()[1] == 1
        && b.strides()[1] == 1
        && narrow::applies(dst.ncols())
}

/// The product on [`narrow`]'s AVX-512 kernels.
///
/// # Safety
/// As in [`matmul_with`], and `T` is f64 with [`narrow_applies`] true.
unsafe fn narrow_product<T: Real>(
    mut dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
) {
    let product = narrow::Product {
        m: dst.nrows(),
        n: dst.ncols(),
        k: a.ncols(),
        dst: dst.as_mut_ptr().cast(),
        drs: dst.strides()[0],
        a: a.as_ptr().cast(),
        ars: a.strides()[0],
        acs: a.strides()[1],
        b: b.as_ptr().cast(),
        brs: b.strides()[0],
        accumulate,
    };
    // SAFETY: the caller's contract: `T` is f64, and the views fit `narrow`'s.
    unsafe { narrow::matmul(&product) };
}

/// The product on `nano-gemm`, one thread. Its fast path wants unit row strides for
/// `dst` and the left operand; for row-major buffers the transposed problem
/// `dst^T = b^T a^T` has them.
///
/// # Safety
/// As in [`matmul_with`].
unsafe fn nano_product<T: Real>(
    mut dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
) {
    let ((m, n), k) = (dst.dim(), a.ncols());
    let [drs, dcs] = [dst.strides()[0], dst.strides()[1]];
    let [ars, acs] = [a.strides()[0], a.strides()[1]];
    let [brs, bcs] = [b.strides()[0], b.strides()[1]];
    let alpha = if accumulate { T::one() } else { T::zero() };
    let dst = dst.as_mut_ptr();
    // The transposed problem's left operand is `b^T`, given by its row and column strides.
    let run = |lhs: *const T, lhs_rs: isize, lhs_cs: isize| {
        let plan = T::small_plan(n, m, k, dcs == 1 && lhs_rs == 1);
        // SAFETY: the caller's contract (`lhs` is `b`, or a copy of it with the strides
        // given); `alpha == 0` never reads `dst`.
        unsafe {
            plan.execute_unchecked(
                n,
                m,
                k,
                dst,
                dcs,
                drs,
                lhs,
                lhs_rs,
                lhs_cs,
                a.as_ptr(),
                acs,
                ars,
                alpha,
                T::one(),
                false,
                false,
            );
        }
    };
    let bt = b.t();
    let transposed = bt.as_slice().filter(|_| bcs != 1 && dcs == 1);
    match transposed.filter(|_| k * n <= OPERAND_COPY) {
        // `b` is a transposed row-major matrix (a layer's weights in the error pass):
        // nano-gemm would copy it value by value into a 32 KB stack tile that evicts the
        // rest of the L1 cache; transposing it into a reused buffer costs far less.
        Some(bt) => T::with_scratch(k * n, |copy| {
            // contiguous writes, strided reads: strided stores stall far more
            for (kk, row) in copy.chunks_exact_mut(n).enumerate() {
                let column = bt[kk..].iter().step_by(k);
                row.iter_mut().zip(column).for_each(|(d, &v)| *d = v);
            }
            run(copy.as_ptr(), 1, n as isize);
        }),
        None => run(b.as_ptr(), bcs, brs),
    }
}

/// The product on `gemm`, over the call's threads.
///
/// # Safety
/// As in [`matmul_with`].
unsafe fn gemm_product<T: Real>(
    mut dst: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
    par: Par,
) {
    let ((m, n), k) = (dst.dim(), a.ncols());
    let parallelism = if par == Par::Rayon {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    let (dcs, drs) = (dst.strides()[1], dst.strides()[0]);
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dcs,
            drs,
            accumulate,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
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
            // nano-gemm: small, and narrow but large
            (32, 64, 64),
            (500, 10, 300),
            (10, 500, 300),
            (200, 300, 8),
        ] {
            let a = filled(m, k, 0.37);
            let b = filled(k, n, 0.11);
            let want = naive(&a, &b);
            let at = a.t().as_standard_layout().into_owned();
            for par in [Par::Sequential, Par::Rayon] {
                let mut got = Array2::zeros((m, n));
                for kernel in [Kernel::Gemm, Kernel::Nano] {
                    matmul_with(kernel, got.view_mut(), at.t(), b.view(), false, par).unwrap();
                    assert!((&got - &want).iter().all(|d| d.abs() < 1e-9), "{kernel:?}");
                }
                matmul(got.view_mut(), at.t(), b.view(), false, par).unwrap();
                assert!((&got - &want).iter().all(|d| d.abs() < 1e-9));
                matmul(got.view_mut(), a.view(), b.view(), true, par).unwrap();
                assert!((&got - &(2.0 * &want)).iter().all(|d| d.abs() < 1e-9));
                // `b` as a transposed row-major matrix (copied for nano-gemm)
                let bt = b.t().as_standard_layout().into_owned();
                for kernel in [Kernel::Gemm, Kernel::Nano] {
                    matmul_with(kernel, got.view_mut(), a.view(), bt.t(), false, par).unwrap();
                    assert!((&got - &want).iter().all(|d| d.abs() < 1e-9), "{kernel:?}");
                    matmul_with(kernel, got.view_mut(), a.view(), bt.t(), true, par).unwrap();
                    assert!((&got - &(2.0 * &want)).iter().all(|d| d.abs() < 1e-9));
                }
            }
        }
    }

    /// The determinism the engine relies on: the same bits for any number of threads.
    #[test]
    fn thread_count_does_not_change_bits() {
        for &(m, n, k) in &[
            (200, 100, 784),
            (784, 100, 200),
            (256, 512, 784),
            (37, 300, 1000),
            (1000, 3, 517),
            (4000, 3, 517), // narrow but large: gemm with threads
        ] {
            let a = filled(m, k, 0.37).mapv(|v| v as f32);
            let b = filled(k, n, 0.11).mapv(|v| v as f32);
            let mut reference = Array2::zeros((m, n));
            matmul(
                reference.view_mut(),
                a.view(),
                b.view(),
                false,
                Par::Sequential,
            )
            .unwrap();
            for threads in [2, 3, 4, 7] {
                let mut got = Array2::zeros((m, n));
                crate::parallel::with_threads(threads, |par| {
                    matmul(got.view_mut(), a.view(), b.view(), false, par)
                })
                .unwrap()
                .unwrap();
                assert_eq!(got, reference, "({m}, {n}, {k}) with {threads} threads");
            }
        }
    }

    /// `nano-gemm` and `gemm` sum alike where [`Kernel::for_shape`] picks `gemm` for a
    /// product of `nano-gemm`'s size (every side at least [`SQUARE_SIDE`]), in every
    /// layout the engine's products take (`a^T` for a weight gradient, `b^T` for an
    /// error signal), so that the choice never changes a model.
    #[test]
    fn square_products_sum_alike_on_both_kernels() {
        // the kernels picked for f32 and for f64
        let picks = |m, n, k| {
            (
                Kernel::for_shape::<f32>(m, n, k),
                Kernel::for_shape::<f64>(m, n, k),
            )
        };
        fn check<T: Real + std::fmt::Debug>(m: usize, n: usize, k: usize, cast: fn(f64) -> T) {
            let a = filled(m, k, 0.37).mapv(cast);
            let b = filled(k, n, 0.11).mapv(cast);
            let at = a.t().to_owned();
            let bt = b.t().to_owned();
            let layouts = [(a.view(), b.view()), (at.t(), b.view()), (a.view(), bt.t())];
            for (i, (a, b)) in layouts.into_iter().enumerate() {
                let mut got = [Array2::zeros((m, n)), Array2::zeros((m, n))];
                for (dst, kernel) in got.iter_mut().zip([Kernel::Nano, Kernel::Gemm]) {
                    matmul_with(kernel, dst.view_mut(), a, b, false, Par::Sequential).unwrap();
                }
                assert_eq!(got[0], got[1], "{m} x {n} x {k}, layout {i}");
            }
        }
        for &(m, n, k) in &[
            (100, 64, 50),
            (50, 64, 100),
            (100, 32, 64),
            (32, 64, 64),
            (32, 32, 512),
        ] {
            assert_eq!(
                picks(m, n, k),
                (Kernel::Gemm, Kernel::Gemm),
                "{m} x {n} x {k}"
            );
            check::<f64>(m, n, k, |v| v);
            check::<f32>(m, n, k, |v| v as f32);
        }
        // smaller products: gemm in f64 only (C4's halves)
        for &(m, n, k) in &[(32, 32, 64), (64, 32, 32), (32, 32, 32)] {
            assert_eq!(
                picks(m, n, k),
                (Kernel::Nano, Kernel::Gemm),
                "{m} x {n} x {k}"
            );
            check::<f64>(m, n, k, |v| v);
        }
        // (below the square sides: nano-gemm, as before)
        for &(m, n, k) in &[(100, 100, 20), (31, 64, 64), (32, 32, 31)] {
            assert_eq!(
                picks(m, n, k),
                (Kernel::Nano, Kernel::Nano),
                "{m} x {n} x {k}"
            );
        }
    }

    /// Overwriting never reads the old contents, so stale NaNs cannot leak in.
    #[test]
    fn overwrite_ignores_old_values() {
        for &(m, n, k) in &[(8, 10, 8), (300, 200, 100)] {
            let a = filled(m, k, 0.3);
            let b = filled(k, n, 0.7);
            let mut got = Array2::from_elem((m, n), f64::NAN);
            matmul(got.view_mut(), a.view(), b.view(), false, Par::Sequential).unwrap();
            assert!((&got - &naive(&a, &b)).iter().all(|d| d.abs() < 1e-9));
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let a = Array2::<f64>::zeros((2, 3));
        let mut d = Array2::<f64>::zeros((2, 2));
        assert!(matmul(d.view_mut(), a.view(), a.view(), false, Par::Sequential).is_err());
    }
}
