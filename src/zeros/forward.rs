//! The first layer's forward product `X W` over rows with many zeros: one row at a
//! time for rows that are mostly zeros (one-hot encoded categories, bags of words held
//! dense), on CPUs with AVX-512 or AVX2 and FMA ([`portable`]); rows in twos for rows
//! with some zeros (images: half of Fashion-MNIST's pixels), on AVX-512 ([`twos`]).
//!
//! Each row lists its non-zero inputs (one AVX-512 compare and compress per register of
//! inputs) and sums the weight rows of those alone, up to eight registers of outputs
//! at a time. A skipped input would add `0 · w`, a zero, so every output is the same
//! sum in the same order as the product kernel's on that shape: inputs ascending, fused
//! multiply-adds from zero, in the blocks of inputs that kernel sums one at a time
//! ([`blocks`]: one block up to 512 inputs, more above, e.g. two of 392 for 784), each
//! block's sum written or added to the output in turn. So the results are the same bits
//! (the tests compare; the one difference possible is the sign of a zero output after
//! an underflow to -0). Weights that are not all finite (`0 · inf` is NaN) go to `gemm`.
//!
//! Each multiply-add loads its own weights (one register a multiply-add, where `gemm`
//! reuses each loaded register over several rows), so the lists pay only for rows that
//! are mostly zeros: [`MIN_ZERO_INPUTS`]. Rows with fewer zeros go in twos, each loaded
//! register serving both ([`twos`], from [`MIN_TWOS_ZEROS`]), the same sums.

use super::blocks::{self, Path};
use super::{MIN_WORK, SAMPLE_ROWS};
use crate::error::{ensure_shape, Result};
use crate::gemm::matmul_with;
use crate::memory;
use crate::parallel::Par;
use crate::real::Real;
use crate::reduce::all_finite;
use crate::simd::{self, Level};
use ndarray::{ArrayView2, ArrayViewMut2};
use std::any::TypeId;
use std::cell::RefCell;

/// The lists pay when at least this share of the sampled rows' inputs is zero. (At 0.6,
/// four sampled rows of Fashion-MNIST, ~50 % zeros, passed often enough that the kernel
/// took 4.5 % of a C1 float32 epoch on the Intel host and the epoch ran 0.135 s against
/// 0.124 at 0.75; one-hot rows, 96-98 % zeros, pass either way.)
const MIN_ZERO_INPUTS: f64 = 0.75;

/// Rows in twos ([`twos`]) pay from this share of inputs zero in both rows of a two.
/// On Zen 4, alone, one thread, against `gemm`: 100 rows of Fashion-MNIST x 784 x 100
/// f32 (34 % of the inputs zero in both rows of a two) 0.77x the time; 128 x 256 x 128
/// and 128 x 512 x 256 f32 with zeros at random (a relu layer's activations), 25 % in
/// both rows 0.83x, 16 % 0.90-0.92x, 9 % 0.97-0.99x.
const MIN_TWOS_ZEROS: f64 = 0.1;

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
    /// A row's non-zero inputs (with a register's worth of room for the compress) and
    /// where each block of inputs starts among them: reused, so that a batch allocates
    /// nothing once a thread has seen its first.
    static LISTS: RefCell<(Vec<u32>, Vec<usize>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Writes the product `f` into `z` when the kernel applies (a CPU with AVX-512, or AVX2
/// and FMA; f32 or f64; at least [`MIN_WORK`] multiply-adds, two rows and two outputs,
/// finite weights, the sampled rows mostly zeros, the blocks of inputs checked on this
/// CPU); returns whether it did (`z` is untouched when not). `finite`: the caller knows the weights are finite
/// (a fit's, whose squared norm is: reading them all again costs up to ~5 % of the
/// kernel).
pub(crate) fn forward<T: Real>(f: &Forward<'_, T>, z: &mut [T], finite: bool) -> Result<bool> {
    ensure_shape(
        f.x.len() >= f.n * f.inputs && f.w.len() >= f.inputs * f.width && z.len() >= f.n * f.width,
        || "zero-skipping forward product: buffers do not fit".into(),
    )?;
    // (one row or one output: `gemm` takes a matrix-vector path, summed another way)
    let takes = f.n * f.inputs * f.width >= MIN_WORK
        && f.n >= 2
        && f.width >= 2
        && simd::level() != Level::Baseline;
    let Some(kind) = takes.then(|| Kind::of(f)).flatten() else {
        return Ok(false);
    };
    if !(finite || all_finite(&f.w[..f.inputs * f.width])) {
        return Ok(false);
    }
    let path = Path::of::<T>(f.n, f.inputs, f.width);
    let block = path.block(f.inputs);
    if !blocks::checked::<T>(f.inputs, path, || agrees(f, path, block)) {
        return Ok(false);
    }
    // SAFETY: the shapes were checked above.
    Ok(unsafe { run(f, &mut z[..f.n * f.width], block, kind) })
}

/// Which kernel sums a product's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One row at a time (rows mostly zeros).
    Rows,
    /// Rows in twos sharing each loaded register of packed weights ([`twos`]; AVX-512).
    Twos,
}

impl Kind {
    /// The kernel for `f`'s rows by their zeros among the first [`SAMPLE_ROWS`] rows:
    /// at least [`MIN_ZERO_INPUTS`] of the inputs zero, one row at a time; at least
    /// [`MIN_TWOS_ZEROS`] zero in both rows of a two, in twos (AVX-512); else none
    /// (`gemm`). (Any answer gives the same bits; this one only picks the faster way.)
    fn of<T: Real>(f: &Forward<'_, T>) -> Option<Kind> {
        let rows = f.n.min(SAMPLE_ROWS);
        let sample = &f.x[..rows * f.inputs];
        let zero = |v: &T| *v == T::zero();
        let share = |count: usize, of: usize| count as f64 / of as f64;
        if share(sample.iter().filter(|v| zero(v)).count(), sample.len()) >= MIN_ZERO_INPUTS {
            return Some(Kind::Rows);
        }
        let (even, odd) = (
            sample.chunks(f.inputs).step_by(2),
            sample.chunks(f.inputs).skip(1).step_by(2),
        );
        let both = even
            .zip(odd)
            .map(|(a, b)| a.iter().zip(b).filter(|(a, b)| zero(a) && zero(b)).count())
            .sum::<usize>();
        let twos = rows / 2 * f.inputs;
        (twos > 0 && share(both, twos) >= MIN_TWOS_ZEROS && twos_here()).then_some(Kind::Twos)
    }
}

/// Whether this CPU takes rows in twos: AVX-512, but not (yet) a CPU with AMX, an Intel
/// Xeon core, whose two 512-bit FMA ports make `gemm` ~1.8x Zen 4's f32 rate a core and
/// where the kernel has not been measured (the first layer's zero-skipping gradient did
/// not pay there: `super::MIN_ZERO_GROUPS_AMX`).
fn twos_here() -> bool {
    simd::level() == Level::Avx512 && !simd::cpu_has_amx_bf16()
}

/// Whether the kernel, summing blocks of `block` inputs, gives the bits of the product
/// kernel of `path` on a product of `f`'s inputs and width (rows mostly zeros, values
/// of many magnitudes, so that another split of the sums would round differently).
/// False for a type without a kernel.
fn agrees<T: Real>(f: &Forward<'_, T>, path: Path, block: usize) -> bool {
    let ((n, width), inputs) = (path.probe_shape(f.n, f.width), f.inputs);
    let value = |seed: u64, i: usize| {
        let h = (seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let h = h ^ (h >> 29);
        let unit = (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        T::from_f64(unit * f64::from(1 << (h % 7)))
    };
    // (out of memory: no check, no kernel)
    let buffer = |len: usize| memory::filled(len, T::zero(), || "a product's check".into());
    let (Ok(mut x), Ok(mut w), Ok(mut want), Ok(mut got)) = (
        buffer(n * inputs),
        buffer(inputs * width),
        buffer(n * width),
        buffer(n * width),
    ) else {
        return false;
    };
    let live = |i: usize| i.is_multiple_of(3) || i % 7 == 1;
    x.iter_mut()
        .enumerate()
        .filter(|(i, _)| live(*i))
        .for_each(|(i, v)| *v = value(1, i));
    w.iter_mut().enumerate().for_each(|(i, v)| *v = value(2, i));
    let views = (
        ArrayViewMut2::from_shape((n, width), &mut want[..]),
        ArrayView2::from_shape((n, inputs), &x[..]),
        ArrayView2::from_shape((inputs, width), &w[..]),
    );
    let (Ok(dst), Ok(a), Ok(b)) = views else {
        return false;
    };
    if matmul_with(path.kernel(), dst, a, b, false, Par::Sequential).is_err() {
        return false;
    }
    let probe = Forward {
        x: &x,
        inputs,
        w: &w,
        width,
        n,
    };
    let bits = |v: &T| Real::to_f64(*v).to_bits();
    // (twos run on AVX-512 alone)
    let twos = simd::level() == Level::Avx512;
    let kinds = [Kind::Rows, Kind::Twos].into_iter();
    kinds.filter(|&k| k == Kind::Rows || twos).all(|kind| {
        got.fill(T::nan());
        // SAFETY: the caller checked the CPU; the buffers fit the shapes.
        let ran = unsafe { run(&probe, &mut got, block, kind) };
        ran && want.iter().map(bits).eq(got.iter().map(bits))
    })
}

/// The kernel of `T` on `f` for this CPU (AVX-512's own, or the portable one on AVX2
/// with FMA), summing blocks of `block` inputs; false without either (older CPUs: their
/// `gemm` sums without fused multiply-adds) or for a type without a kernel.
///
/// # Safety
/// The shapes fit (as [`forward`] checks), `z` holds `n` rows.
unsafe fn run<T: Real>(f: &Forward<'_, T>, z: &mut [T], block: usize, kind: Kind) -> bool {
    #[cfg(target_arch = "x86_64")]
    match simd::level() {
        // SAFETY (both): the CPU has the instructions; the caller's contract.
        Level::Avx512 => unsafe { run_avx512(f, z, block, kind) },
        Level::Avx2 => {
            unsafe { portable::forward_avx2(f, z, block) };
            true
        }
        Level::Baseline => false,
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// [`run`]'s AVX-512 kernels.
///
/// # Safety
/// The CPU has AVX-512 F; the shapes fit, `z` holds `n` rows.
unsafe fn run_avx512<T: Real>(f: &Forward<'_, T>, z: &mut [T], block: usize, kind: Kind) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let z_ptr = z.as_mut_ptr();
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is f32; the caller's contract.
            unsafe {
                let z = std::slice::from_raw_parts_mut(z_ptr.cast(), z.len());
                return match kind {
                    Kind::Rows => {
                        x86::forward_f32(&cast(f), z, block);
                        true
                    }
                    Kind::Twos => twos::forward_f32(&cast(f), z, block),
                };
            }
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, for f64.
            unsafe {
                let z = std::slice::from_raw_parts_mut(z_ptr.cast(), z.len());
                return match kind {
                    Kind::Rows => {
                        x86::forward_f64(&cast(f), z, block);
                        true
                    }
                    Kind::Twos => twos::forward_f64(&cast(f), z, block),
                };
            }
        }
    }
    false
}

/// Where each block of `block` inputs starts among a row's non-zero inputs `live`
/// (ascending), and their end, into `starts`: the kernels sum each block on its own.
#[cfg(target_arch = "x86_64")]
fn block_starts(live: &[u32], inputs: usize, block: usize, starts: &mut Vec<usize>) {
    starts.clear();
    starts.extend(
        (0..inputs)
            .step_by(block)
            .map(|first| live.partition_point(|&i| (i as usize) < first)),
    );
    starts.push(live.len());
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
mod portable;
#[cfg(target_arch = "x86_64")]
mod twos;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::x86::{lanes_pd, lanes_ps, nonzero_pd, nonzero_ps};
    use super::{block_starts, Forward, LISTS};
    use std::arch::x86_64::*;

    /// Most registers of outputs per pass over a row's list (eight accumulators; the
    /// weights come from memory in each multiply-add).
    const VECTORS: usize = 8;

    /// The kernel for one float type: `$lanes` per register, `$m` the lane mask type,
    /// `$v` the register type and its operations.
    macro_rules! kernel {
        ($name:ident, $t:ty, $lanes:expr, $m:ty, $v:ty, $zero:ident, $set1:ident,
         $fmadd:ident, $add:ident, $load:ident, $store:ident, $cmp:ident, $mask:ident) => {
            /// [`super::forward`] in this type, summing blocks of `block` inputs.
            ///
            /// # Safety
            /// The CPU has AVX-512 F; the shapes fit; `z` holds `n` rows.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name(f: &Forward<'_, $t>, z: &mut [$t], block: usize) {
                LISTS.with_borrow_mut(|(live, starts)| {
                    live.resize(f.inputs + 16, 0);
                    for r in 0..f.n {
                        // SAFETY: row r < n lies within x.
                        let row = unsafe { f.x.as_ptr().add(r * f.inputs) };
                        // SAFETY: the row has `inputs` values; `live` has room.
                        let count = unsafe { nonzero_inputs(row, f.inputs, live) };
                        let live = &live[..count];
                        block_starts(live, f.inputs, block, starts);
                        let mut c0 = 0;
                        while c0 < f.width {
                            let cols = (f.width - c0).min(VECTORS * $lanes);
                            let out = &mut z[r * f.width + c0..r * f.width + c0 + cols];
                            // SAFETY: weight columns c0..c0 + cols exist in every row.
                            unsafe {
                                match cols.div_ceil($lanes) {
                                    8 => columns::<8>(f, row, (live, starts), c0, out),
                                    7 => columns::<7>(f, row, (live, starts), c0, out),
                                    6 => columns::<6>(f, row, (live, starts), c0, out),
                                    5 => columns::<5>(f, row, (live, starts), c0, out),
                                    4 => columns::<4>(f, row, (live, starts), c0, out),
                                    3 => columns::<3>(f, row, (live, starts), c0, out),
                                    2 => columns::<2>(f, row, (live, starts), c0, out),
                                    _ => columns::<1>(f, row, (live, starts), c0, out),
                                }
                            }
                            c0 += cols;
                        }
                    }
                });

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
                            let v: $v = $load($mask(inputs - c), row.add(c));
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

                /// Outputs `c0..c0 + out.len()` of one row from its non-zero inputs
                /// `live`, block by block of inputs (`starts`: where each block starts
                /// among them, and their end): each block summed from zero, then
                /// written (the first) or added to `out`, as `gemm` does.
                #[inline(always)]
                unsafe fn columns<const V: usize>(
                    f: &Forward<'_, $t>,
                    row: *const $t,
                    (live, starts): (&[u32], &[usize]),
                    c0: usize,
                    out: &mut [$t],
                ) {
                    let masks: [$m; V] =
                        std::array::from_fn(|v| $mask(out.len().saturating_sub(v * $lanes)));
                    for (b, range) in starts.windows(2).enumerate() {
                        let mut acc = [$zero(); V];
                        for &i in &live[range[0]..range[1]] {
                            let i = i as usize;
                            // SAFETY: input i < inputs; weight row i's columns c0..
                            // within the width (masked past it).
                            unsafe {
                                let x = $set1(*row.add(i));
                                let w = f.w.as_ptr().add(i * f.width + c0);
                                for v in 0..V {
                                    acc[v] = $fmadd(x, $load(masks[v], w.add(v * $lanes)), acc[v]);
                                }
                            }
                        }
                        for v in 0..V {
                            // SAFETY: masked to the columns of `out`.
                            unsafe {
                                let at = out.as_mut_ptr().add(v * $lanes);
                                let sum = match b {
                                    0 => acc[v],
                                    _ => $add($load(masks[v], at), acc[v]),
                                };
                                $store(at, masks[v], sum);
                            }
                        }
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
        _mm512_add_ps,
        _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps,
        nonzero_ps,
        lanes_ps
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
        _mm512_add_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd,
        nonzero_pd,
        lanes_pd
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_same_bits;
    use super::*;
    use ndarray::Array2;

    /// Rows of one-hot encoded categories (a few ones each, the rest zero) with a few
    /// numeric inputs.
    fn one_hot<T: Real>(n: usize, inputs: usize) -> Array2<T> {
        Array2::from_shape_fn((n, inputs), |(i, j)| {
            let hot = (i * 7 + j * 13) % 9 == 0 || j % 17 == 3;
            T::from_f64(if hot {
                ((i + 3 * j) % 11) as f64 * 0.21 - 0.9
            } else {
                0.0
            })
        })
    }

    /// Image-like rows: a border of zeros (28-pixel lines) and zeros scattered inside.
    fn images<T: Real>(n: usize, inputs: usize) -> Array2<T> {
        Array2::from_shape_fn((n, inputs), |(i, j)| {
            let (line, col) = (j / 28, j % 28);
            let border = !(4..24).contains(&col) || !(3..=24).contains(&line);
            let hole = (i * 5 + j * 3) % 11 < 2;
            T::from_f64(if border || hole {
                0.0
            } else {
                ((i * 31 + j * 17) % 97) as f64 * 0.013 + 0.01
            })
        })
    }

    fn weights<T: Real>(inputs: usize, width: usize) -> Array2<T> {
        Array2::from_shape_fn((inputs, width), |(i, j)| {
            T::from_f64((((i * 7 + j * 3) % 89) as f64 * 0.37).cos())
        })
    }

    /// The product on the path `gemm::matmul` takes for its shape.
    fn reference<T: Real>(x: &Array2<T>, w: &Array2<T>) -> Vec<T> {
        let (n, inputs) = x.dim();
        let mut want = Array2::<T>::zeros((n, w.ncols()));
        let kernel = Path::of::<T>(n, inputs, w.ncols()).kernel();
        matmul_with(
            kernel,
            want.view_mut(),
            x.view(),
            w.view(),
            false,
            Par::Sequential,
        )
        .unwrap();
        want.into_raw_vec_and_offset().0
    }

    fn forward_of<'a, T>(x: &'a Array2<T>, w: &'a Array2<T>) -> Forward<'a, T> {
        Forward {
            x: x.as_slice().unwrap(),
            inputs: x.ncols(),
            w: w.as_slice().unwrap(),
            width: w.ncols(),
            n: x.nrows(),
        }
    }

    /// Whether the CPU runs a kernel (AVX-512, or AVX2 with FMA).
    fn has_kernel() -> bool {
        simd::level() != Level::Baseline
    }

    /// The kernels this CPU runs: AVX-512's and the portable one (on AVX2 and FMA).
    #[cfg(target_arch = "x86_64")]
    fn kernels() -> Vec<(Level, Kind, &'static str)> {
        let mut all = vec![(Level::Avx2, Kind::Rows, "portable")];
        if simd::level() == Level::Avx512 {
            all.push((Level::Avx512, Kind::Rows, "avx512"));
            all.push((Level::Avx512, Kind::Twos, "avx512 twos"));
        }
        all
    }

    /// The kernel of `level` directly (any shape, any zeros), with the blocks of the
    /// shape's path.
    #[cfg(target_arch = "x86_64")]
    fn kernel<T: Real>(x: &Array2<T>, w: &Array2<T>, (level, kind): (Level, Kind)) -> Vec<T> {
        let f = forward_of(x, w);
        let block = Path::of::<T>(f.n, f.inputs, f.width).block(f.inputs);
        let mut z = vec![T::nan(); f.n * f.width];
        // SAFETY: the CPU has the level's instructions (`kernels`); the shapes fit.
        unsafe {
            match level {
                Level::Avx512 => assert!(run_avx512(&f, &mut z, block, kind)),
                _ => portable::forward_avx2(&f, &mut z, block),
            }
        }
        z
    }

    #[cfg(target_arch = "x86_64")]
    fn same_bits<T: Real>() {
        if !has_kernel() {
            return;
        }
        // rows x inputs x width: one block of inputs (gemm and nano-gemm), two of 392
        // (gemm), 512 + 272 (gemm's small path), three of 500, one of 900 (nano-gemm),
        // tails of rows, outputs and registers
        let shapes = [
            (200, 300, 100),
            (128, 512, 129),
            (256, 97, 200),
            (100, 300, 7),
            (3, 37, 2),
            (64, 40, 33),
            (101, 784, 100),
            (64, 784, 64),
            (65, 784, 64),
            (30, 1500, 130),
            (2, 900, 5),
            (7, 784, 512),
        ];
        for (n, inputs, width) in shapes {
            let w = weights::<T>(inputs, width);
            for (name, x) in [
                ("one-hot", one_hot::<T>(n, inputs)),
                ("images", images(n, inputs)),
            ] {
                let want = reference(&x, &w);
                for (level, kind, kernel_name) in kernels() {
                    let what = format!("{kernel_name}: {name} {n}x{inputs}x{width}");
                    assert_same_bits(&want, &kernel(&x, &w, (level, kind)), &what);
                }
            }
        }
    }

    /// Same bits as the product kernel of the shape's path (`gemm`'s blocks of inputs
    /// or one chain), f32 and f64.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn same_bits_as_the_gemm_kernels() {
        same_bits::<f32>();
        same_bits::<f64>();
    }

    /// Through [`forward`], with the weights checked or known finite: one-hot rows of
    /// more inputs than one block (1,000 and 784: two blocks; 600 on the small path).
    #[test]
    fn takes_one_hot_rows_of_many_inputs() {
        if !has_kernel() {
            return;
        }
        for (n, inputs, width) in [(200, 1000, 100), (100, 784, 100), (64, 600, 64)] {
            let (x, w) = (one_hot::<f64>(n, inputs), weights::<f64>(inputs, width));
            for finite in [false, true] {
                let mut z = vec![f64::NAN; n * width];
                assert!(forward(&forward_of(&x, &w), &mut z, finite).unwrap());
                assert_same_bits(&reference(&x, &w), &z, &format!("{n}x{inputs}x{width}"));
            }
        }
    }

    /// Through [`forward`]: image-like rows in twos where this CPU takes them, one-hot
    /// rows one at a time, dense rows on `gemm`; the same bits either way.
    #[test]
    fn picks_a_kernel_by_the_zeros() {
        if !has_kernel() {
            return;
        }
        let w = weights::<f32>(784, 100);
        let (images, one_hot) = (images::<f32>(101, 784), one_hot::<f32>(101, 784));
        let twos = twos_here().then_some(Kind::Twos);
        assert_eq!(Kind::of(&forward_of(&images, &w)), twos);
        assert_eq!(Kind::of(&forward_of(&one_hot, &w)), Some(Kind::Rows));
        let dense = images.mapv(|v| v + 1.0);
        assert_eq!(Kind::of(&forward_of(&dense, &w)), None);
        for x in [images, one_hot] {
            let mut z = vec![f32::NAN; 101 * 100];
            let taken = forward(&forward_of(&x, &w), &mut z, false).unwrap();
            assert!(taken || twos.is_none());
            if taken {
                assert_same_bits(&reference(&x, &w), &z, "through forward");
            }
        }
    }

    /// The check of the blocks of inputs fails for blocks summed otherwise.
    #[test]
    fn the_check_catches_other_blocks() {
        if !has_kernel() {
            return;
        }
        let (x, w) = (one_hot::<f32>(100, 784), weights::<f32>(784, 100));
        let f = forward_of(&x, &w);
        assert_eq!(Path::of::<f32>(100, 784, 100), Path::Gemm);
        assert!(agrees(&f, Path::Gemm, 392));
        assert!(!agrees(&f, Path::Gemm, 784));
        assert!(!agrees(&f, Path::Gemm, 512));
        assert!(agrees(&f, Path::Nano, 784));
        assert!(!agrees(&f, Path::Nano, 392));
        let (x, w) = (one_hot::<f64>(64, 784), weights::<f64>(784, 64));
        let f = forward_of(&x, &w);
        assert_eq!(Path::of::<f64>(64, 784, 64), Path::GemmSmall);
        assert!(agrees(&f, Path::GemmSmall, 512));
        assert!(!agrees(&f, Path::GemmSmall, 392));
    }

    /// Declined: dense rows, weights that are not finite (unless known finite), too
    /// little work; `z` is untouched then.
    #[test]
    fn declines_when_it_would_not_pay_or_differ() {
        if !has_kernel() {
            return;
        }
        fn product(x: &Array2<f64>, w: &Array2<f64>, z: &mut [f64]) -> bool {
            forward(&forward_of(x, w), z, false).unwrap()
        }
        let mut z = vec![7.0; 200 * 100];
        let (x, mut w) = (one_hot::<f64>(200, 300), weights::<f64>(300, 100));
        assert!(!product(&x.mapv(|v| v + 1.0), &w, &mut z));
        let short = x.slice(ndarray::s![..5, ..]).to_owned();
        assert!(!product(&short, &w, &mut z));
        w[[299, 99]] = f64::NAN;
        assert!(!product(&x, &w, &mut z));
        assert!(z.iter().all(|&v| v == 7.0));
        let known = forward(&forward_of(&x, &w), &mut z, true).unwrap();
        assert!(known, "the caller's word is taken");
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
        assert!(forward(&f, &mut z, false).is_err());
    }
}
