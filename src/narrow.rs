//! Matrix products with few output columns in f64 (an output layer of up to 16 units: a
//! classifier's classes), for AVX-512 CPUs.
//!
//! `nano-gemm` runs its vectors along those columns in whole 512-bit registers: 10 columns
//! take two registers, 16 lanes computed for 10 used. Here the columns past the first
//! eight go in a register just wide enough for them (128 bits for 10 columns). A 512-bit
//! multiply-add costs two 256-bit ones on AMD's Zen 4 and the narrower ones proportionally
//! less, so the 10-column products of a layer's forward pass and weight gradient take
//! about a quarter less time. Each value sums the same products in the same order as
//! `nano-gemm` (`k` ascending, fused multiply-adds from zero, then one addition to `dst`
//! when accumulating), so the results are the same bits.
//!
//! The same layer's error goes down to a relu layer below it through a product with
//! few (`k`) terms; [`relu_error`] does that product, the relu derivative and the
//! intercept sums in one pass.

/// Widest product handled: two vector parts of up to eight columns.
pub(crate) const MAX_COLUMNS: usize = 16;

/// Whether [`matmul`] runs on this CPU for `n` columns.
pub(crate) fn applies(n: usize) -> bool {
    (1..=MAX_COLUMNS).contains(&n) && cpu_has_kernels()
}

/// The kernels need AVX-512 F and VL with FMA: the engine's AVX-512 level.
fn cpu_has_kernels() -> bool {
    crate::simd::level() == crate::simd::Level::Avx512
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`): `dst` (`m x n`) and `b` (`k x n`)
/// with unit column strides and row strides `drs`, `brs`; `a` (`m x k`) with any strides.
pub(crate) struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub dst: *mut f64,
    pub drs: isize,
    pub a: *const f64,
    pub ars: isize,
    pub acs: isize,
    pub b: *const f64,
    pub brs: isize,
    pub accumulate: bool,
}

/// Computes `p`.
///
/// # Safety
/// [`applies`]`(p.n)` must hold, and the three pointers must be valid for the shapes and
/// strides given, `dst` not overlapping `a` or `b`.
pub(crate) unsafe fn matmul(p: &Product) {
    debug_assert!(applies(p.n));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract.
    unsafe {
        match p.n - if p.n > 8 { 8 } else { 0 } {
            1..=2 => x86::run_xmm_tail(p),
            3..=4 => x86::run_ymm_tail(p),
            _ => x86::run_zmm_tail(p),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
        unreachable!("narrow::matmul where narrow::applies is false");
    }
}

/// The error signals of a relu hidden layer under a layer of `k` <= [`MAX_COLUMNS`]
/// units, in one pass over them (f64): `delta = (y != 0) * (d W^T)` and the column sums
/// of `delta` into `sums` (added to zeros), where `d` is `rows x k`, `wt` is `W^T`
/// (`k x width`) and `y`, `delta` are `rows x width`, all row-major. Each value is the
/// first product then fused multiply-adds in `k`'s order, as `nano-gemm` sums, and each
/// column's sum adds the rows in order, as `activation::scale_by_derivative_and_sum`
/// does: the bits of those two passes (a NaN may differ in sign). For k = 3 (the tabular W1) the product alone ran
/// at ~9 GFLOPS in `nano-gemm`, and the derivative's pass re-read all it had stored.
pub(crate) struct ReluError<'a> {
    pub rows: usize,
    pub width: usize,
    pub k: usize,
    pub d: &'a [f64],
    pub wt: &'a [f64],
    pub y: &'a [f64],
}

/// Computes `e` into `delta` and `sums`.
///
/// # Safety
/// [`applies`] holds for `e.k` (the CPU has the kernels).
pub(crate) unsafe fn relu_error(e: &ReluError<'_>, delta: &mut [f64], sums: &mut [f64]) {
    let (rows, width, k) = (e.rows, e.width, e.k);
    assert!(
        applies(k)
            && e.d.len() >= rows * k
            && e.wt.len() >= k * width
            && e.y.len() >= rows * width
            && delta.len() >= rows * width
            && sums.len() == width
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract, and the lengths checked above.
    unsafe {
        x86::relu_error(e, delta, sums)
    };
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (delta, sums);
        unreachable!("narrow::relu_error where narrow::applies is false");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Product;
    use std::arch::x86_64::*;

    /// Rows of `dst` computed together, sharing each row of `b` loaded. Eight independent
    /// accumulators hide the multiply-add's latency (4 cycles, two a cycle): with four,
    /// a 3-column product ran at 24 GFLOPS instead of 31.5 (`bench/small_gemm.rs`, W1).
    const ROWS: usize = 8;

    /// One kernel per register width of the tail columns (those past the first eight,
    /// or all of them when there are at most eight): `$v` the vector type, `$zero`,
    /// `$set1`, `$fmadd`, `$add` its operations, `$load` / `$store` masked by a lane mask.
    macro_rules! kernel {
        ($name:ident, $v:ty, $zero:ident, $set1:ident, $fmadd:ident, $add:ident,
         $load:ident, $store:ident) => {
            /// # Safety
            /// As for [`super::matmul`].
            #[target_feature(enable = "avx512f,avx512vl,fma")]
            pub(super) unsafe fn $name(p: &Product) {
                /// `R` rows of `dst` from row `i`; `HEAD`: a full 512-bit part for
                /// columns 0..8 before the tail (compile-time, so that the inner loop
                /// has no branches and the accumulators stay in registers).
                #[inline(always)]
                unsafe fn rows<const R: usize, const HEAD: bool>(p: &Product, i: usize, mask: u8) {
                    let first = if HEAD { 8 } else { 0 };
                    let mut acc_head = [_mm512_setzero_pd(); R];
                    let mut acc_tail = [$zero(); R];
                    let a = p.a.offset(i as isize * p.ars);
                    for kk in 0..p.k as isize {
                        let b = p.b.offset(kk * p.brs);
                        let b_tail: $v = $load(mask, b.add(first));
                        if HEAD {
                            let b_head = _mm512_loadu_pd(b);
                            for r in 0..R {
                                let x = *a.offset(r as isize * p.ars + kk * p.acs);
                                acc_head[r] =
                                    _mm512_fmadd_pd(b_head, _mm512_set1_pd(x), acc_head[r]);
                                acc_tail[r] = $fmadd(b_tail, $set1(x), acc_tail[r]);
                            }
                        } else {
                            for r in 0..R {
                                let x = *a.offset(r as isize * p.ars + kk * p.acs);
                                acc_tail[r] = $fmadd(b_tail, $set1(x), acc_tail[r]);
                            }
                        }
                    }
                    for r in 0..R {
                        let d = p.dst.offset((i + r) as isize * p.drs);
                        if HEAD {
                            let mut v = acc_head[r];
                            if p.accumulate {
                                v = _mm512_add_pd(_mm512_loadu_pd(d), v);
                            }
                            _mm512_storeu_pd(d, v);
                        }
                        let mut v = acc_tail[r];
                        if p.accumulate {
                            v = $add($load(mask, d.add(first)), v);
                        }
                        $store(d.add(first), mask, v);
                    }
                }

                #[inline(always)]
                unsafe fn all_rows<const HEAD: bool>(p: &Product, mask: u8) {
                    let full = p.m / ROWS * ROWS;
                    for i in (0..full).step_by(ROWS) {
                        rows::<ROWS, HEAD>(p, i, mask);
                    }
                    let mut i = full;
                    if p.m - i >= ROWS / 2 {
                        rows::<{ ROWS / 2 }, HEAD>(p, i, mask);
                        i += ROWS / 2;
                    }
                    for i in i..p.m {
                        rows::<1, HEAD>(p, i, mask);
                    }
                }

                if p.n > 8 {
                    all_rows::<true>(p, ((1u16 << (p.n - 8)) - 1) as u8);
                } else {
                    all_rows::<false>(p, ((1u16 << p.n) - 1) as u8);
                }
            }
        };
    }

    kernel!(
        run_xmm_tail,
        __m128d,
        _mm_setzero_pd,
        _mm_set1_pd,
        _mm_fmadd_pd,
        _mm_add_pd,
        _mm_maskz_loadu_pd,
        _mm_mask_storeu_pd
    );
    kernel!(
        run_ymm_tail,
        __m256d,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_maskz_loadu_pd,
        _mm256_mask_storeu_pd
    );
    kernel!(
        run_zmm_tail,
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd
    );

    /// [`super::relu_error`], eight columns to a register, up to four registers of
    /// columns at a time whose sums stay in registers over all the rows.
    ///
    /// # Safety
    /// As for [`super::relu_error`], lengths checked.
    #[target_feature(enable = "avx512f,avx512vl,fma")]
    pub(super) unsafe fn relu_error(e: &super::ReluError<'_>, delta: &mut [f64], sums: &mut [f64]) {
        let mut start = 0;
        while start < e.width {
            let cols = (e.width - start).min(32);
            // SAFETY: columns start..start + cols lie within every row.
            unsafe {
                match cols.div_ceil(8) {
                    4 => columns::<4>(e, delta, sums, start, cols),
                    3 => columns::<3>(e, delta, sums, start, cols),
                    2 => columns::<2>(e, delta, sums, start, cols),
                    _ => columns::<1>(e, delta, sums, start, cols),
                }
            }
            start += cols;
        }
    }

    /// Columns `start..start + cols` (`cols` <= 8 `V`) of [`relu_error`] over every row.
    #[inline(always)]
    unsafe fn columns<const V: usize>(
        e: &super::ReluError<'_>,
        delta: &mut [f64],
        sums: &mut [f64],
        start: usize,
        cols: usize,
    ) {
        // lanes of each register within `cols` (the last may be partial)
        let masks: [u8; V] = std::array::from_fn(|v| {
            let lanes = cols.saturating_sub(8 * v).min(8);
            ((1u16 << lanes) - 1) as u8
        });
        let mut acc = [_mm512_setzero_pd(); V];
        let (d, wt, y, out) = (
            e.d.as_ptr(),
            e.wt.as_ptr(),
            e.y.as_ptr(),
            delta.as_mut_ptr(),
        );
        for i in 0..e.rows {
            let row = i * e.width + start;
            // SAFETY (all loads and stores): within the rows and columns checked by
            // the caller; masked lanes are not touched.
            unsafe {
                let first = _mm512_set1_pd(*d.add(i * e.k));
                let mut p: [__m512d; V] = std::array::from_fn(|v| {
                    let w = _mm512_maskz_loadu_pd(masks[v], wt.add(start + 8 * v));
                    _mm512_mul_pd(first, w)
                });
                for j in 1..e.k {
                    let dj = _mm512_set1_pd(*d.add(i * e.k + j));
                    for (v, pv) in p.iter_mut().enumerate() {
                        let w =
                            _mm512_maskz_loadu_pd(masks[v], wt.add(j * e.width + start + 8 * v));
                        *pv = _mm512_fmadd_pd(dj, w, *pv);
                    }
                }
                for (v, (pv, av)) in p.iter().zip(acc.iter_mut()).enumerate() {
                    let yv = _mm512_maskz_loadu_pd(masks[v], y.add(row + 8 * v));
                    // relu's derivative through its outputs: 0 where y == 0 (NaN passes)
                    let live = _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(yv, _mm512_setzero_pd());
                    let value = _mm512_maskz_mov_pd(live, *pv);
                    _mm512_mask_storeu_pd(out.add(row + 8 * v), masks[v], value);
                    *av = _mm512_add_pd(*av, value);
                }
            }
        }
        for (v, av) in acc.iter().enumerate() {
            // SAFETY: columns within `sums` (its length is the width).
            unsafe { _mm512_mask_storeu_pd(sums.as_mut_ptr().add(start + 8 * v), masks[v], *av) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ArrayView2};

    fn filled(r: usize, c: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((r, c), |(i, j)| ((i * 31 + j * 17) as f64 * seed).sin())
    }

    /// `dst (+)= a b` summed as the module promises: `k` ascending, fused multiply-adds
    /// from zero, then one addition.
    fn reference(a: ArrayView2<f64>, b: ArrayView2<f64>, dst: &mut Array2<f64>, accumulate: bool) {
        for ((i, j), d) in dst.indexed_iter_mut() {
            let mut acc = 0.0_f64;
            for kk in 0..a.ncols() {
                acc = a[[i, kk]].mul_add(b[[kk, j]], acc);
            }
            *d = if accumulate { *d + acc } else { acc };
        }
    }

    #[test]
    fn sums_in_order_for_every_tail_width() {
        if !cpu_has_kernels() {
            return;
        }
        for n in 1..=MAX_COLUMNS {
            for &(m, k) in &[(1, 1), (3, 7), (5, 64), (32, 64), (64, 32), (37, 10)] {
                let a = filled(m, k, 0.37);
                // `a` as a transposed view: strided rows
                let at = a.t().as_standard_layout().into_owned();
                let b = filled(k, n, 0.11);
                for accumulate in [false, true] {
                    for a_view in [a.view(), at.t()] {
                        let mut want = filled(m, n, 0.05);
                        let mut got = want.clone();
                        reference(a_view, b.view(), &mut want, accumulate);
                        let (ars, acs) = (a_view.strides()[0], a_view.strides()[1]);
                        let product = Product {
                            m,
                            n,
                            k,
                            dst: got.as_mut_ptr(),
                            drs: n as isize,
                            a: a_view.as_ptr(),
                            ars,
                            acs,
                            b: b.as_ptr(),
                            brs: n as isize,
                            accumulate,
                        };
                        // SAFETY: shapes and strides of live arrays; the CPU was checked.
                        unsafe { matmul(&product) };
                        assert_eq!(got, want, "m {m} n {n} k {k} accumulate {accumulate}");
                    }
                }
            }
        }
    }

    /// nano-gemm sums in the same order, so products do not change bits between the two.
    #[test]
    fn nano_gemm_sums_in_the_same_order() {
        for &(m, n, k) in &[(32, 10, 64), (64, 10, 32), (37, 17, 10), (5, 20, 64)] {
            let a = filled(m, k, 0.37);
            let b = filled(k, n, 0.11);
            let mut want = Array2::zeros((m, n));
            reference(a.view(), b.view(), &mut want, false);
            let mut got = Array2::zeros((m, n));
            let plan = nano_gemm::Plan::new_f64(n, m, k);
            // SAFETY: the transposed problem of row-major arrays, as `gemm::matmul` runs it.
            unsafe {
                plan.execute_unchecked(
                    n,
                    m,
                    k,
                    got.as_mut_ptr(),
                    1,
                    n as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    a.as_ptr(),
                    1,
                    k as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                );
            }
            assert_eq!(got, want, "m {m} n {n} k {k}");
        }
    }
}
