//! The first layer's weight gradient `X^T D` over the rows of a dense X with many zeros
//! (images: half of Fashion-MNIST's pixels are 0), for AVX-512 CPUs.
//!
//! Row `k` of the gradient sums `x[r][k] · d[r]` over a part's rows `r`. The kernel takes
//! the inputs four at a time: each group of four lists the rows where any of its inputs
//! is non-zero, and sums over those rows alone (~62 % of them on Fashion-MNIST, where a
//! 784 x 100 x 100 f32 gradient ran 1.4x and a 784 x 512 x 128 one 1.5x faster than on
//! `gemm`, lists included). A skipped row would add `0 · d`, a zero: every value is
//! the same sum in the same order as `gemm`'s and `nano-gemm`'s microkernels compute it
//! (rows ascending, fused multiply-adds from zero, then one addition to `dst` when
//! accumulating; `gemm` blocks the rows by 512, more than [`MAX_ROWS`]), so the results
//! are the same bits, whichever computes them (the tests compare). The one exception,
//! `0 · inf`, is NaN: error signals that are not all finite go to `gemm`.
//!
//! The forward product `X W` of rows that are mostly zeros (one-hot categories) skips
//! them too, on AVX2 CPUs as well: [`forward`].

use crate::error::{ensure_shape, Result};
use crate::real::Real;
use crate::reduce::all_finite;
use ndarray::ArrayView2;
use std::any::TypeId;
use std::cell::RefCell;

mod blocks;
mod forward;

pub(crate) use blocks::sums_alike;
pub(crate) use forward::{forward, Forward};

/// Most rows a call takes: the part of a batch (`batch::PART_ROWS` is 128), with room;
/// the row lists stay small (groups x rows indices).
pub(crate) const MAX_ROWS: usize = 256;

/// Fewest multiply-adds a call takes (of either product): on smaller products (digits' 32 x 64 x 32 and
/// 200 x 64 x 32 of C4 and W5) `nano-gemm` takes a few microseconds and the lists and
/// checks cost as much as they save (C4 4 % slower with them, W5 1 %).
const MIN_WORK: usize = 1 << 20;

/// Inputs per group: four rows of the gradient share each error signal row loaded.
const GROUP: usize = 4;

/// Rows sampled to decide whether the zeros pay for the lists (of either product)...
const SAMPLE_ROWS: usize = 4;

/// ...which they do when at least this share of the sampled groups is all zero (a
/// group's rows cost the same either way; the lists cost ~10 % of the kernel)...
const MIN_ZERO_GROUPS: f64 = 0.25;

/// ...or this share on a CPU with AMX (an Intel Xeon core: two 512-bit FMA ports, where
/// `gemm` runs ~1.8x Zen 4's f32 rate a core, and where the lists' first reads of rows
/// gathered by another core stall: 18 % of the kernel's time on two threads, 5 % on
/// one). There, C1 float32 on two threads (bench/epoch.rs on Fashion-MNIST, whose
/// pixels were also zeroed below a threshold) took 1.10x, 1.035x, 1.01x and 0.96x the
/// time of `gemm` at 38 %, 50 %, 57 % and 75 % all-zero groups.
const MIN_ZERO_GROUPS_AMX: f64 = 0.6;

/// One first-layer weight gradient: rows `first..first + dst.len() / width` of
/// `x[..n]^T d[..n]`, with `x` row-major (`n x x_cols`) and `d` row-major (`n x width`).
pub(crate) struct Gradient<'a, T> {
    pub x: &'a [T],
    pub x_cols: usize,
    pub first: usize,
    pub d: &'a [T],
    pub width: usize,
    pub n: usize,
}

thread_local! {
    /// Each group's rows (`groups x n`, rows ascending) and their counts: reused, so
    /// that a batch allocates nothing once a thread has seen its first.
    static LISTS: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Writes (or, with `accumulate`, adds) the gradient `g` into `dst` when the kernel
/// applies (an AVX-512 CPU, f32 or f64, at most [`MAX_ROWS`] rows, at least
/// [`MIN_WORK`] multiply-adds, two gradient rows and columns, finite error signals) and the sampled rows have enough all-zero groups; returns whether it did
/// (`dst` is untouched when not).
pub(crate) fn weight_gradient<T: Real>(
    g: &Gradient<'_, T>,
    dst: &mut [T],
    accumulate: bool,
) -> Result<bool> {
    let k = dst.len().checked_div(g.width).unwrap_or(0);
    ensure_shape(
        k * g.width == dst.len()
            && g.first + k <= g.x_cols
            && g.x.len() >= g.n * g.x_cols
            && g.d.len() >= g.n * g.width,
        || "zero-skipping gradient: buffers do not fit".into(),
    )?;
    if !takes(g, k) {
        return Ok(false);
    }
    // SAFETY: the CPU has AVX-512 F (`takes`); the shapes were checked above.
    Ok(unsafe { run(g, dst, accumulate) })
}

/// Whether the kernel takes `g` (`k` gradient rows): see [`weight_gradient`].
fn takes<T: Real>(g: &Gradient<'_, T>, k: usize) -> bool {
    takes_chunk(g.n, k, g.width)
        && cpu_has_kernels()
        && pays(g, k)
        && all_finite(&g.d[..g.n * g.width])
}

/// The kernel of `T` on `g`; false for a type without one.
///
/// # Safety
/// The CPU has AVX-512 F; the shapes fit (as [`weight_gradient`] checks).
unsafe fn run<T: Real>(g: &Gradient<'_, T>, dst: &mut [T], accumulate: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is f32; the caller's contract.
            unsafe { x86::gradient_f32(&cast(g), cast_mut(dst), accumulate) };
            return true;
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, for f64.
            unsafe { x86::gradient_f64(&cast(g), cast_mut(dst), accumulate) };
            return true;
        }
    }
    false
}

/// The kernels need AVX-512 F: the engine's AVX-512 level.
fn cpu_has_kernels() -> bool {
    crate::simd::level() == crate::simd::Level::Avx512
}

/// Whether at least [`min_zero_groups`] of the groups of the first [`SAMPLE_ROWS`] rows
/// are all zero. (Any answer gives the same bits; this one only picks the faster way.)
fn pays<T: Real>(g: &Gradient<'_, T>, k: usize) -> bool {
    let rows = g.n.min(SAMPLE_ROWS);
    let mut zero = 0;
    for r in 0..rows {
        let row = &g.x[r * g.x_cols + g.first..r * g.x_cols + g.first + k];
        zero += zero_groups(row).filter(|&all_zero| all_zero).count();
    }
    zero as f64 >= min_zero_groups() * (rows * k.div_ceil(GROUP)) as f64
}

/// Whether each group of [`GROUP`] inputs of `row` is all zero, group by group.
fn zero_groups<T: Real>(row: &[T]) -> impl Iterator<Item = bool> + '_ {
    row.chunks(GROUP)
        .map(|group| group.iter().all(|&v| v == T::zero()))
}

/// [`MIN_ZERO_GROUPS`] or, on a CPU with AMX, [`MIN_ZERO_GROUPS_AMX`].
fn min_zero_groups() -> f64 {
    static SHARE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *SHARE.get_or_init(|| {
        if crate::simd::cpu_has_amx_bf16() {
            MIN_ZERO_GROUPS_AMX
        } else {
            MIN_ZERO_GROUPS
        }
    })
}

/// Rows of X sampled for [`balanced_cut`], spread through it: few, as every fit and
/// `partial_fit` call samples (Fashion-MNIST's cut is the same from 64 rows as from
/// 256, or from all 60,000 but for one group).
const CUT_SAMPLE_ROWS: usize = 64;

/// A group's work besides its multiply-adds, as a share of its rows: the list's pass
/// over all of them and the update of its weight rows. With it C1's chunks balance
/// where they were measured to (below).
const GROUP_OVERHEAD: f64 = 0.1;

/// Where to cut a first layer's weight gradient (a row per input of `x`) into two
/// chunks of equal work for this kernel, sampled from rows of `x`: a multiple of
/// [`GROUP`], or `None` for the middle.
///
/// The kernel sums over the rows where a group's inputs are not all zero, and images
/// have more such rows in their lower half (Fashion-MNIST's pixels 0..392 are non-zero
/// in 46 % of the images, 392..784 in 54 %): the update's two halves waited for each
/// other (C1's gradient of 100 rows, features 0..392 / 392..784: 52.9 / 59.1 us; cut
/// at 408: balanced). `None` on a CPU without AVX-512, where the kernel never runs;
/// when fewer than [`MIN_ZERO_GROUPS`] of the sampled groups are zero (the kernel's
/// own test); or when the cut would move less than two groups from the middle.
///
/// Results differ from an even cut's only in how the update sums the weights' squares
/// (the loss's L2 term, in its last bits). So the cut depends on X and on whether the
/// CPU has AVX-512 alone, not on `MLP_RS_CPU` (every level fits the same bits) nor on
/// AMX (an AMX host fits a non-AMX host's bits): on AMX hosts, whose kernel takes only
/// sparser X ([`MIN_ZERO_GROUPS_AMX`]), it may cut where `gemm`'s work is even.
pub(crate) fn balanced_cut<T: Real>(x: ArrayView2<'_, T>) -> Option<usize> {
    let (rows, groups) = (x.nrows(), x.ncols().div_ceil(GROUP));
    if rows == 0 || groups < 4 || crate::simd::detected_level() != crate::simd::Level::Avx512 {
        return None;
    }
    let step = rows.div_ceil(CUT_SAMPLE_ROWS);
    let (mut busy, mut zero, mut sampled) = (vec![0_usize; groups], 0_usize, 0_usize);
    for row in x.rows().into_iter().step_by(step) {
        let row = row
            .as_slice()
            .map_or_else(|| row.to_vec().into(), std::borrow::Cow::from);
        for (count, all_zero) in busy.iter_mut().zip(zero_groups(&row)) {
            if all_zero {
                zero += 1;
            } else {
                *count += 1;
            }
        }
        sampled += 1;
    }
    if (zero as f64) < MIN_ZERO_GROUPS * (sampled * groups) as f64 {
        return None;
    }
    let work = |count: usize| count as f64 / sampled as f64 + GROUP_OVERHEAD;
    let total: f64 = busy.iter().map(|&c| work(c)).sum();
    let (mut before, mut cut) = (0.0, 0);
    for (g, &count) in busy.iter().enumerate() {
        // the boundary nearest half of the work
        if (2.0 * (before + work(count)) - total).abs() >= (2.0 * before - total).abs() {
            cut = g;
            break;
        }
        before += work(count);
    }
    let even = groups / 2;
    (cut.abs_diff(even) >= 2).then_some(GROUP * cut)
}

/// Whether the kernel takes a chunk of `rows` weight rows, `width` columns, over parts
/// of `part_rows` rows (the shape tests of [`takes`], which calls it): where it does
/// not, `gemm`'s work is even and [`balanced_cut`] has nothing to balance.
pub(crate) fn takes_chunk(part_rows: usize, rows: usize, width: usize) -> bool {
    // (one gradient row or column: `gemm` takes a matrix-vector path, summed another way)
    part_rows * rows * width >= MIN_WORK && rows >= 2 && width >= 2 && part_rows <= MAX_ROWS
}

/// `g` with `T` as `U`.
///
/// # Safety
/// `T` is `U`.
#[cfg(target_arch = "x86_64")]
unsafe fn cast<'a, T, U>(g: &Gradient<'a, T>) -> Gradient<'a, U> {
    // SAFETY: the caller's contract.
    let (x, d) = unsafe { (same(g.x), same(g.d)) };
    Gradient {
        x,
        x_cols: g.x_cols,
        first: g.first,
        d,
        width: g.width,
        n: g.n,
    }
}

/// `s` as `U`.
///
/// # Safety
/// `T` is `U`.
#[cfg(target_arch = "x86_64")]
unsafe fn same<T, U>(s: &[T]) -> &[U] {
    // SAFETY: the caller's contract: same type, so same layout and length.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<U>(), s.len()) }
}

/// `dst` as `U`.
///
/// # Safety
/// `T` is `U`.
#[cfg(target_arch = "x86_64")]
unsafe fn cast_mut<T, U>(dst: &mut [T]) -> &mut [U] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<U>(), dst.len()) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Gradient, GROUP, LISTS};
    use crate::register::store;
    use std::arch::x86_64::*;

    /// Most registers of error signals per pass over the lists: four groups of four
    /// accumulators each, plus the four loaded, stay in registers (five or six were
    /// slower on 100 and 512 columns; `bench/profile.md`).
    const VECTORS: usize = 4;

    /// The kernel for one float type: `$lanes` per register, `$m` the lane mask type,
    /// `$v` the register type and its operations.
    macro_rules! kernel {
        ($name:ident, $t:ty, $lanes:expr, $m:ty, $v:ty, $zero:ident, $set1:ident,
         $fmadd:ident, $load:ident, $nonzero:ident,
         $mask:ident) => {
            /// [`super::weight_gradient`] in this type.
            ///
            /// # Safety
            /// The CPU has AVX-512 F; the shapes fit (checked by the caller).
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name(g: &Gradient<'_, $t>, dst: &mut [$t], accumulate: bool) {
                LISTS.with_borrow_mut(|(lists, counts)| {
                    let k = dst.len() / g.width;
                    // SAFETY: the caller's contract.
                    unsafe { list_rows(g, k, lists, counts) };
                    let mut c0 = 0;
                    while c0 < g.width {
                        let cols = (g.width - c0).min(VECTORS * $lanes);
                        let part = Part {
                            lists,
                            counts,
                            c0,
                            cols,
                            k,
                            accumulate,
                        };
                        // SAFETY: the caller's contract; columns c0..c0 + cols exist.
                        unsafe {
                            match cols.div_ceil($lanes) {
                                4 => columns::<4>(g, &part, dst),
                                3 => columns::<3>(g, &part, dst),
                                2 => columns::<2>(g, &part, dst),
                                _ => columns::<1>(g, &part, dst),
                            }
                        }
                        c0 += cols;
                    }
                });

                /// Each group's rows with a non-zero input, rows ascending.
                #[inline(always)]
                unsafe fn list_rows(
                    g: &Gradient<'_, $t>,
                    k: usize,
                    lists: &mut Vec<u32>,
                    counts: &mut Vec<u32>,
                ) {
                    let groups = k.div_ceil(GROUP);
                    lists.resize(groups * g.n, 0);
                    counts.clear();
                    counts.resize(groups, 0);
                    for r in 0..g.n {
                        // SAFETY: row r's columns first..first + k lie within x.
                        let row = unsafe { g.x.as_ptr().add(r * g.x_cols + g.first) };
                        let mut c = 0;
                        while c < k {
                            // SAFETY: lanes past k are masked off.
                            let v: $v = unsafe { $load($mask(k - c), row.add(c)) };
                            // NaN counts as non-zero
                            let live = $nonzero(v) as u32;
                            // every group in the register writes row r into its next
                            // slot (a free one: a count never passes r) and counts it
                            // only when live: no branch on the data
                            for q in 0..$lanes / GROUP {
                                let group = c / GROUP + q;
                                if group == groups {
                                    break;
                                }
                                let is_live = (live >> (GROUP * q)) & 0xf != 0;
                                // SAFETY: group < groups; its count <= r < n.
                                unsafe {
                                    let count = counts.get_unchecked_mut(group);
                                    *lists.get_unchecked_mut(group * g.n + *count as usize) =
                                        r as u32;
                                    *count += u32::from(is_live);
                                }
                            }
                            c += $lanes;
                        }
                    }
                }

                /// Columns `c0..c0 + cols` of every gradient row, from the lists.
                #[inline(always)]
                unsafe fn columns<const V: usize>(
                    g: &Gradient<'_, $t>,
                    p: &Part<'_>,
                    dst: &mut [$t],
                ) {
                    let masks: [$m; V] =
                        std::array::from_fn(|v| $mask(p.cols.saturating_sub(v * $lanes)));
                    let full = p.k / GROUP;
                    for group in 0..full {
                        // SAFETY: the caller's contract.
                        unsafe { group_rows::<V, GROUP>(g, p, &masks, group, dst) };
                    }
                    // SAFETY: as above.
                    unsafe {
                        match p.k - full * GROUP {
                            3 => group_rows::<V, 3>(g, p, &masks, full, dst),
                            2 => group_rows::<V, 2>(g, p, &masks, full, dst),
                            1 => group_rows::<V, 1>(g, p, &masks, full, dst),
                            _ => {}
                        }
                    }
                }

                /// Gradient rows `GROUP * group..` (`Q` of them), columns of `p`: each
                /// a sum over the group's listed rows, in registers.
                #[inline(always)]
                unsafe fn group_rows<const V: usize, const Q: usize>(
                    g: &Gradient<'_, $t>,
                    p: &Part<'_>,
                    masks: &[$m; V],
                    group: usize,
                    dst: &mut [$t],
                ) {
                    let mut acc = [[$zero(); V]; Q];
                    let rows = &p.lists[group * g.n..group * g.n + p.counts[group] as usize];
                    let first = g.first + group * GROUP;
                    for &r in rows {
                        let r = r as usize;
                        // SAFETY (loads): row r < n of d and of x; masked lanes are
                        // not read; inputs first..first + Q lie within the row.
                        unsafe {
                            let d = g.d.as_ptr().add(r * g.width + p.c0);
                            let dv: [$v; V] =
                                std::array::from_fn(|v| $load(masks[v], d.add(v * $lanes)));
                            let x = g.x.as_ptr().add(r * g.x_cols + first);
                            for (i, acc) in acc.iter_mut().enumerate() {
                                let b = $set1(*x.add(i));
                                for v in 0..V {
                                    acc[v] = $fmadd(b, dv[v], acc[v]);
                                }
                            }
                        }
                    }
                    for (i, acc) in acc.iter().enumerate() {
                        let row = (group * GROUP + i) * g.width + p.c0;
                        // SAFETY: gradient row group * GROUP + i < k, columns within.
                        unsafe {
                            let out = dst.as_mut_ptr().add(row);
                            for v in 0..V {
                                let lanes = p.cols.saturating_sub(v * $lanes).min($lanes);
                                store(out.add(v * $lanes), acc[v], lanes, p.accumulate);
                            }
                        }
                    }
                }
            }
        };
    }

    /// One pass over the lists: error signal columns `c0..c0 + cols`, gradient rows `k`.
    struct Part<'a> {
        lists: &'a [u32],
        counts: &'a [u32],
        c0: usize,
        cols: usize,
        k: usize,
        accumulate: bool,
    }

    /// The mask of the first `lanes` of a register's 16 f32 lanes (all 16 past that).
    #[inline(always)]
    pub(super) fn lanes_ps(lanes: usize) -> u16 {
        ((1u32 << lanes.min(16)) - 1) as u16
    }

    /// [`lanes_ps`] for f64's 8 lanes.
    #[inline(always)]
    pub(super) fn lanes_pd(lanes: usize) -> u8 {
        ((1u32 << lanes.min(8)) - 1) as u8
    }

    /// The lanes of `v` that are not zero (NaN counts as non-zero).
    #[inline(always)]
    pub(super) fn nonzero_ps(v: __m512) -> u16 {
        // SAFETY: called from the AVX-512 kernels only.
        unsafe { _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps()) }
    }

    /// [`nonzero_ps`] for f64.
    #[inline(always)]
    pub(super) fn nonzero_pd(v: __m512d) -> u8 {
        // SAFETY: as above.
        unsafe { _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_pd()) }
    }

    kernel!(
        gradient_f32,
        f32,
        16,
        u16,
        __m512,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_maskz_loadu_ps,
        nonzero_ps,
        lanes_ps
    );
    kernel!(
        gradient_f64,
        f64,
        8,
        u8,
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_maskz_loadu_pd,
        nonzero_pd,
        lanes_pd
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::{matmul_with, Kernel};
    use crate::parallel::Par;
    use ndarray::{s, Array2};

    /// Inputs with runs of zeros (like an image's background) and error signals.
    fn data<T: Real>(n: usize, f: usize, width: usize) -> (Array2<T>, Array2<T>) {
        let x = Array2::from_shape_fn((n, f), |(i, j)| {
            // ~70 % of the groups all zero: enough for either host's share
            let on = (i * 7 + j / 16) % 5 < 1 || (i + j) % 47 == 0;
            T::from_f64(if on {
                ((i * 31 + j * 17) % 97) as f64 * 0.013 - 0.4
            } else {
                0.0
            })
        });
        let d = Array2::from_shape_fn((n, width), |(i, j)| {
            T::from_f64((((i * 7 + j * 3) % 89) as f64 * 0.37).cos())
        });
        (x, d)
    }

    /// The gradient rows `first..first + k` by `kernel`, and by the zero-skipping one,
    /// both written then accumulated once more. `policy`: through [`weight_gradient`]
    /// (which must take the product), else the kernel directly (small shapes too).
    fn both<T: Real>(
        kernel: Kernel,
        (x, d): (&Array2<T>, &Array2<T>),
        (first, k): (usize, usize),
        policy: bool,
    ) -> (Vec<T>, Vec<T>) {
        let (n, width) = d.dim();
        let mut want = Array2::<T>::zeros((k, width));
        let input = x.slice(s![.., first..first + k]);
        for accumulate in [false, true] {
            matmul_with(
                kernel,
                want.view_mut(),
                input.t(),
                d.view(),
                accumulate,
                Par::Sequential,
            )
            .unwrap();
        }
        let g = Gradient {
            x: x.as_slice().unwrap(),
            x_cols: x.ncols(),
            first,
            d: d.as_slice().unwrap(),
            width,
            n,
        };
        let mut got = vec![T::nan(); k * width];
        for accumulate in [false, true] {
            let took = if policy {
                weight_gradient(&g, &mut got, accumulate).unwrap()
            } else {
                // SAFETY: an AVX-512 CPU (checked by the caller); the shapes fit.
                unsafe { run(&g, &mut got, accumulate) }
            };
            assert!(took, "{n}x{}x{width} not taken", x.ncols());
        }
        (want.into_raw_vec_and_offset().0, got)
    }

    fn same_bits<T: Real>() {
        if !cpu_has_kernels() {
            return;
        }
        // rows x inputs x width, first row of the gradient, its rows, whether large
        // enough for `weight_gradient` to take
        let shapes = [
            (100, 784, 100, 0, 784, true),
            (128, 784, 512, 392, 392, true),
            (MAX_ROWS, 790, 37, 5, 783, true),
            (37, 50, 7, 3, 45, false),
            (1, 10, 1, 0, 10, false),
            (MAX_ROWS, 64, 33, 1, 62, false),
            (200, 20, 100, 0, 20, false),
        ];
        for (n, f, width, first, k, policy) in shapes {
            let (x, d) = data::<T>(n, f, width);
            for kernel in [Kernel::Gemm, Kernel::Nano] {
                let (want, got) = both(kernel, (&x, &d), (first, k), policy);
                assert_same_bits(&want, &got, &format!("{kernel:?} {n}x{f}x{width} {first}"));
            }
        }
    }

    /// Asserts that `got` holds the same values as `want`, bit for bit.
    pub(super) fn assert_same_bits<T: Real>(want: &[T], got: &[T], what: &str) {
        assert_eq!(want.len(), got.len(), "{what}");
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            let (wb, gb) = (Real::to_f64(*w).to_bits(), Real::to_f64(*g).to_bits());
            assert!(wb == gb, "{what} [{i}]: {w:?} vs {g:?}");
        }
    }

    /// Same bits as `gemm` and `nano-gemm`, f32 and f64, with the inputs' tails (groups
    /// of fewer than four, registers of fewer lanes) and a gradient's chunks of rows.
    #[test]
    fn same_bits_as_the_gemm_kernels() {
        same_bits::<f32>();
        same_bits::<f64>();
    }

    /// Declined: dense rows (nothing to skip), non-finite error signals (`0 · inf` is
    /// NaN), too many rows, too little work; `dst` is untouched then. Taken otherwise.
    #[test]
    fn declines_when_it_would_not_pay_or_differ() {
        if !cpu_has_kernels() {
            return;
        }
        fn gradient<'a>(x: &'a Array2<f64>, d: &'a Array2<f64>) -> Gradient<'a, f64> {
            Gradient {
                x: x.as_slice().unwrap(),
                x_cols: x.ncols(),
                first: 0,
                d: d.as_slice().unwrap(),
                width: d.ncols(),
                n: x.nrows(),
            }
        }
        let (x, mut d) = data::<f64>(128, 784, 100);
        let mut dst = vec![7.0; 784 * 100];
        let dense = x.mapv(|v| v + 2.0);
        assert!(!weight_gradient(&gradient(&dense, &d), &mut dst, false).unwrap());
        let (big, big_d) = data::<f64>(MAX_ROWS + 1, 784, 100);
        assert!(!weight_gradient(&gradient(&big, &big_d), &mut dst, false).unwrap());
        let (small, small_d) = data::<f64>(128, 784, 10);
        let few = &mut dst[..10 * 10];
        assert!(!weight_gradient(&gradient(&small, &small_d), few, false).unwrap());
        d[[127, 99]] = f64::INFINITY;
        assert!(!weight_gradient(&gradient(&x, &d), &mut dst, false).unwrap());
        assert!(dst.iter().all(|&v| v == 7.0));
        d[[127, 99]] = 1.0;
        assert!(weight_gradient(&gradient(&x, &d), &mut dst, false).unwrap());
        let wrong = Gradient {
            first: 1,
            ..gradient(&x, &d)
        };
        assert!(weight_gradient(&wrong, &mut dst, false).is_err());
    }

    /// `takes_chunk` says what the kernel decides on half of 784 inputs (images, so
    /// that the zeros pay): taken at C1's part of 100 rows and 100 units, declined at 8
    /// units (too little work) and at one.
    #[test]
    fn takes_chunk_as_the_kernel_decides() {
        if !cpu_has_kernels() {
            return;
        }
        for (rows, width, taken) in [(100, 100, true), (100, 8, false), (100, 1, false)] {
            let (x, d) = data::<f32>(rows, 784, width);
            let g = Gradient {
                x: x.as_slice().unwrap(),
                x_cols: 784,
                first: 0,
                d: d.as_slice().unwrap(),
                width,
                n: rows,
            };
            let mut dst = vec![0.0; 392 * width];
            assert_eq!(
                weight_gradient(&g, &mut dst, false).unwrap(),
                taken,
                "{width}"
            );
            assert_eq!(takes_chunk(rows, 392, width), taken, "{width}");
        }
        assert!(!takes_chunk(MAX_ROWS + 1, 392, 100), "too many rows");
    }

    /// The first layer is cut where the rows that are not all zero in a group halve
    /// (plus each group's overhead): at a group's edge, past the middle when the later
    /// inputs are busier; not when they are as busy, nor when nothing is skipped.
    #[test]
    fn cuts_where_the_work_halves() {
        if crate::simd::detected_level() != crate::simd::Level::Avx512 {
            let image =
                Array2::from_shape_fn((10, 784), |(i, j)| f32::from(u8::from(j > 600 && i > 2)));
            assert_eq!(balanced_cut(image.view()), None);
            return;
        }
        // (rows `step` apart sampled, 64 of them) inputs 0..400 non-zero in an eighth
        // of the sampled rows, 400..800 in three eighths: work 0.225 and 0.475 a group
        // with the overhead, 70 in all, half of it nearest after the first 100 + 26
        // groups (34.85; 35.325 after 27)
        let n = 64 * 16;
        let step = n / CUT_SAMPLE_ROWS;
        let image = Array2::from_shape_fn((n, 800), |(i, j)| {
            let busy = if j < 400 {
                (i / step).is_multiple_of(8)
            } else {
                i / step % 8 < 3
            };
            if busy {
                1.0_f32
            } else {
                0.0
            }
        });
        assert_eq!(balanced_cut(image.view()), Some(4 * 126));
        assert_eq!(balanced_cut(image.mapv(f64::from).view()), Some(504));
        let even = Array2::from_shape_fn((1000, 800), |(i, j)| {
            f32::from(u8::from((i + j / 4) % 5 == 0))
        });
        assert_eq!(balanced_cut(even.view()), None, "as busy everywhere");
        assert_eq!(
            balanced_cut(image.mapv(|v| v + 1.0).view()),
            None,
            "no zeros"
        );
        assert_eq!(balanced_cut(image.slice(s![..0, ..])), None, "no rows");
        // (`balanced_cut` reads X alone: `takes_chunk` tells whether the kernel runs)
        assert_eq!(
            balanced_cut(image.slice(s![.., ..12])),
            None,
            "three groups"
        );
    }
}
