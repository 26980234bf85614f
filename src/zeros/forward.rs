//! The first layer's forward product `X W` over rows that are mostly zeros (one-hot
//! encoded categories, bags of words held dense), for AVX-512 CPUs.
//!
//! Each row lists its non-zero inputs (one AVX-512 compare and compress per register of
//! inputs) and sums the weight rows of those alone, up to eight registers of outputs
//! at a time. A skipped input would add `0 · w`, a zero, so every output is the same
//! sum in the same order as `gemm`'s and `nano-gemm`'s (inputs ascending, fused
//! multiply-adds from zero) as long as `gemm` takes the sum in one block: it does for at
//! most [`MAX_INPUTS`] inputs (its k-blocks are 512 long or more; Fashion-MNIST's 784
//! pixels are summed in two blocks of 392, which this kernel does not mirror).
//! Weights that are not all finite (`0 · inf` is NaN) go to `gemm`.
//!
//! Each multiply-add loads its own weights (one register a multiply-add, where `gemm`
//! reuses each loaded register over several rows), so the lists pay only for rows that
//! are mostly zeros: [`MIN_ZERO_INPUTS`].

use super::{cpu_has_kernels, MIN_WORK, SAMPLE_ROWS};
use crate::error::{ensure_shape, Result};
use crate::real::Real;
use crate::reduce::all_finite;
use std::any::TypeId;
use std::cell::RefCell;

/// Most inputs a product takes: see the module's documentation.
pub(crate) const MAX_INPUTS: usize = 512;

/// The lists pay when at least this share of the sampled rows' inputs is zero.
const MIN_ZERO_INPUTS: f64 = 0.6;

/// One first-layer forward product: `z = x[..n] w`, with `x` row-major (`n x inputs`),
/// `w` row-major (`inputs x width`) and `z` row-major (`n x width`).
pub(crate) struct Forward<'a, T> {
    pub x: &'a [T],
    pub inputs: usize,
    pub w: &'a [T],
    pub width: usize,
    pub n: usize,
}

thread_local! {
    /// A row's non-zero inputs (with a register's worth of room for the compress),
    /// reused.
    static LIVE: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Writes the product `f` into `z` when the kernel applies (an AVX-512 CPU, f32 or f64,
/// at most [`MAX_INPUTS`] inputs, at least [`MIN_WORK`] multiply-adds, two rows and
/// two outputs, finite weights)
/// and the sampled rows are mostly zeros; returns whether it did (`z` is untouched
/// when not).
pub(crate) fn forward<T: Real>(f: &Forward<'_, T>, z: &mut [T]) -> Result<bool> {
    ensure_shape(
        f.x.len() >= f.n * f.inputs && f.w.len() >= f.inputs * f.width && z.len() >= f.n * f.width,
        || "zero-skipping forward product: buffers do not fit".into(),
    )?;
    // (one row or one output: `gemm` takes a matrix-vector path, summed another way)
    let takes = f.n * f.inputs * f.width >= MIN_WORK
        && f.n >= 2
        && f.width >= 2
        && f.inputs <= MAX_INPUTS
        && cpu_has_kernels()
        && mostly_zeros(f)
        && all_finite(&f.w[..f.inputs * f.width]);
    if !takes {
        return Ok(false);
    }
    let z = &mut z[..f.n * f.width];
    // SAFETY: the CPU has AVX-512 F (`takes`); the shapes were checked above.
    Ok(unsafe { run(f, z) })
}

/// Whether at least [`MIN_ZERO_INPUTS`] of the first [`SAMPLE_ROWS`] rows' inputs are
/// zero. (Any answer gives the same bits; this one only picks the faster way.)
fn mostly_zeros<T: Real>(f: &Forward<'_, T>) -> bool {
    let sample = &f.x[..f.n.min(SAMPLE_ROWS) * f.inputs];
    let zeros = sample.iter().filter(|&&v| v == T::zero()).count();
    zeros as f64 >= MIN_ZERO_INPUTS * sample.len() as f64
}

/// The kernel of `T` on `f`; false for a type without one.
///
/// # Safety
/// The CPU has AVX-512 F; the shapes fit (as [`forward`] checks), `z` holds `n` rows.
unsafe fn run<T: Real>(f: &Forward<'_, T>, z: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let z_ptr = z.as_mut_ptr();
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is f32; the caller's contract.
            unsafe {
                let z = std::slice::from_raw_parts_mut(z_ptr.cast(), z.len());
                x86::forward_f32(&cast(f), z);
            }
            return true;
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, for f64.
            unsafe {
                let z = std::slice::from_raw_parts_mut(z_ptr.cast(), z.len());
                x86::forward_f64(&cast(f), z);
            }
            return true;
        }
    }
    false
}

/// `f` with `T` as `U`.
///
/// # Safety
/// `T` is `U`.
#[cfg(target_arch = "x86_64")]
unsafe fn cast<'a, T, U>(f: &Forward<'a, T>) -> Forward<'a, U> {
    // SAFETY: the caller's contract.
    let (x, w) = unsafe { (super::same(f.x), super::same(f.w)) };
    Forward {
        x,
        inputs: f.inputs,
        w,
        width: f.width,
        n: f.n,
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::x86::{nonzero_pd, nonzero_ps};
    use super::{Forward, LIVE};
    use std::arch::x86_64::*;

    /// Most registers of outputs per pass over a row's list (eight accumulators; the
    /// weights come from memory in each multiply-add).
    const VECTORS: usize = 8;

    /// The kernel for one float type: `$lanes` per register, `$m` the lane mask type,
    /// `$v` the register type and its operations.
    macro_rules! kernel {
        ($name:ident, $t:ty, $lanes:expr, $m:ty, $v:ty, $zero:ident, $set1:ident,
         $fmadd:ident, $load:ident, $store:ident, $cmp:ident) => {
            /// [`super::forward`] in this type.
            ///
            /// # Safety
            /// The CPU has AVX-512 F; the shapes fit; `z` holds `n` rows.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name(f: &Forward<'_, $t>, z: &mut [$t]) {
                LIVE.with_borrow_mut(|live| {
                    live.resize(f.inputs + 16, 0);
                    for r in 0..f.n {
                        // SAFETY: row r < n lies within x.
                        let row = unsafe { f.x.as_ptr().add(r * f.inputs) };
                        // SAFETY: the row has `inputs` values; `live` has room.
                        let count = unsafe { nonzero_inputs(row, f.inputs, live) };
                        let live = &live[..count];
                        let mut c0 = 0;
                        while c0 < f.width {
                            let cols = (f.width - c0).min(VECTORS * $lanes);
                            let out = &mut z[r * f.width + c0..r * f.width + c0 + cols];
                            // SAFETY: weight columns c0..c0 + cols exist in every row.
                            unsafe {
                                match cols.div_ceil($lanes) {
                                    8 => columns::<8>(f, row, live, c0, out),
                                    7 => columns::<7>(f, row, live, c0, out),
                                    6 => columns::<6>(f, row, live, c0, out),
                                    5 => columns::<5>(f, row, live, c0, out),
                                    4 => columns::<4>(f, row, live, c0, out),
                                    3 => columns::<3>(f, row, live, c0, out),
                                    2 => columns::<2>(f, row, live, c0, out),
                                    _ => columns::<1>(f, row, live, c0, out),
                                }
                            }
                            c0 += cols;
                        }
                    }
                });

                /// Lane mask of the first `lanes` lanes.
                #[inline(always)]
                fn mask(lanes: usize) -> $m {
                    ((1u32 << lanes.min($lanes)) - 1) as $m
                }

                /// Writes the row's non-zero inputs, ascending, into `live`; their count.
                #[inline(always)]
                unsafe fn nonzero_inputs(row: *const $t, inputs: usize, live: &mut [u32]) -> usize {
                    let iota =
                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                    let mut count = 0;
                    let mut c = 0;
                    while c < inputs {
                        // SAFETY: lanes past `inputs` are masked off; `live` has a
                        // register's room past `inputs` for the full-width store.
                        unsafe {
                            let v: $v = $load(mask(inputs - c), row.add(c));
                            // NaN counts as non-zero
                            let nonzero = $cmp(v) as u16;
                            let index = _mm512_add_epi32(iota, _mm512_set1_epi32(c as i32));
                            let packed = _mm512_maskz_compress_epi32(nonzero, index);
                            _mm512_storeu_si512(live.as_mut_ptr().add(count).cast(), packed);
                            count += nonzero.count_ones() as usize;
                        }
                        c += $lanes;
                    }
                    count
                }

                /// Outputs `c0..c0 + out.len()` of one row from its non-zero inputs.
                #[inline(always)]
                unsafe fn columns<const V: usize>(
                    f: &Forward<'_, $t>,
                    row: *const $t,
                    live: &[u32],
                    c0: usize,
                    out: &mut [$t],
                ) {
                    let masks: [$m; V] =
                        std::array::from_fn(|v| mask(out.len().saturating_sub(v * $lanes)));
                    let mut acc = [$zero(); V];
                    for &i in live {
                        let i = i as usize;
                        // SAFETY: input i < inputs; weight row i's columns c0.. within
                        // the width (masked past it).
                        unsafe {
                            let b = $set1(*row.add(i));
                            let w = f.w.as_ptr().add(i * f.width + c0);
                            for v in 0..V {
                                acc[v] = $fmadd(b, $load(masks[v], w.add(v * $lanes)), acc[v]);
                            }
                        }
                    }
                    for v in 0..V {
                        // SAFETY: masked to the columns of `out`.
                        unsafe { $store(out.as_mut_ptr().add(v * $lanes), masks[v], acc[v]) };
                    }
                }
            }
        };
    }

    kernel!(
        forward_f32,
        f32,
        16,
        u16,
        __m512,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps,
        nonzero_ps
    );
    kernel!(
        forward_f64,
        f64,
        8,
        u8,
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd,
        nonzero_pd
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_same_bits;
    use super::*;
    use crate::gemm::{matmul_with, Kernel};
    use crate::parallel::Par;
    use ndarray::Array2;

    /// Rows of one-hot encoded categories (a few ones each, the rest zero) with a few
    /// numeric inputs, and weights.
    fn data<T: Real>(n: usize, inputs: usize, width: usize) -> (Array2<T>, Array2<T>) {
        let x = Array2::from_shape_fn((n, inputs), |(i, j)| {
            let hot = (i * 7 + j * 13) % 9 == 0 || j % 17 == 3;
            T::from_f64(if hot {
                ((i + 3 * j) % 11) as f64 * 0.21 - 0.9
            } else {
                0.0
            })
        });
        let w = Array2::from_shape_fn((inputs, width), |(i, j)| {
            T::from_f64((((i * 7 + j * 3) % 89) as f64 * 0.37).cos())
        });
        (x, w)
    }

    fn product<T: Real>(x: &Array2<T>, w: &Array2<T>, policy: bool) -> Vec<T> {
        let (n, inputs) = x.dim();
        let width = w.ncols();
        let f = Forward {
            x: x.as_slice().unwrap(),
            inputs,
            w: w.as_slice().unwrap(),
            width,
            n,
        };
        let mut z = vec![T::nan(); n * width];
        let took = if policy {
            forward(&f, &mut z).unwrap()
        } else {
            // SAFETY: an AVX-512 CPU (checked by the caller); the shapes fit.
            unsafe { run(&f, &mut z) }
        };
        assert!(took, "{n}x{inputs}x{width} not taken");
        z
    }

    fn same_bits<T: Real>() {
        if !cpu_has_kernels() {
            return;
        }
        // rows x inputs x width, whether large enough for `forward` to take
        let shapes = [
            (200, 300, 100, true),
            (128, MAX_INPUTS, 129, true),
            (256, 97, 200, true),
            (100, 300, 7, false),
            (3, 37, 2, false),
            (64, 40, 33, false),
        ];
        for (n, inputs, width, policy) in shapes {
            let (x, w) = data::<T>(n, inputs, width);
            let got = product(&x, &w, policy);
            for kernel in [Kernel::Gemm, Kernel::Nano] {
                let mut want = Array2::<T>::zeros((n, width));
                matmul_with(
                    kernel,
                    want.view_mut(),
                    x.view(),
                    w.view(),
                    false,
                    Par::Sequential,
                )
                .unwrap();
                let want = want.into_raw_vec_and_offset().0;
                assert_same_bits(&want, &got, &format!("{kernel:?} {n}x{inputs}x{width}"));
            }
        }
    }

    /// Same bits as `gemm` and `nano-gemm`, f32 and f64, with tails of inputs and of
    /// outputs (registers of fewer lanes, several passes over a row's list).
    #[test]
    fn same_bits_as_the_gemm_kernels() {
        same_bits::<f32>();
        same_bits::<f64>();
    }

    /// Declined: more inputs than `gemm` sums in one block, dense rows, weights that are
    /// not finite, too little work; `z` is untouched then.
    #[test]
    fn declines_when_it_would_not_pay_or_differ() {
        if !cpu_has_kernels() {
            return;
        }
        fn product(x: &Array2<f64>, w: &Array2<f64>, z: &mut [f64]) -> bool {
            let f = Forward {
                x: x.as_slice().unwrap(),
                inputs: x.ncols(),
                w: w.as_slice().unwrap(),
                width: w.ncols(),
                n: x.nrows(),
            };
            forward(&f, z).unwrap()
        }
        let mut z = vec![7.0; 200 * 100];
        let (long, long_w) = data::<f64>(200, MAX_INPUTS + 1, 100);
        assert!(!product(&long, &long_w, &mut z));
        let (x, mut w) = data::<f64>(200, 300, 100);
        assert!(!product(&x.mapv(|v| v + 1.0), &w, &mut z));
        assert!(!product(
            &x.slice(ndarray::s![..5, ..]).to_owned(),
            &w,
            &mut z
        ));
        w[[299, 99]] = f64::NAN;
        assert!(!product(&x, &w, &mut z));
        assert!(z.iter().all(|&v| v == 7.0));
        w[[299, 99]] = 0.5;
        assert!(product(&x, &w, &mut z));
        let f = Forward {
            x: x.as_slice().unwrap(),
            inputs: 300,
            w: &w.as_slice().unwrap()[1..],
            // one weight short
            width: 100,
            n: 200,
        };
        assert!(forward(&f, &mut z).is_err());
    }
}
