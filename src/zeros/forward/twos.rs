//! [`super::forward`]'s kernel for rows with some zeros but not mostly zeros (images:
//! half of Fashion-MNIST's pixels), on AVX-512 CPUs.
//!
//! One row at a time loads a register of weights for every multiply-add, where `gemm`
//! reuses each loaded register over several rows: that pays only for rows that are
//! mostly zeros. Here rows go in twos (a last odd row alone): an input is listed when
//! either row's value is non-zero, and each loaded register of weights serves both
//! rows. The weights are packed, a sub-block at a time, into 64-byte aligned panels of up to
//! [`MAX_REGS`] registers of outputs (a row of 100 f32 weights is 400 bytes: three of
//! every four 512-bit loads of it in place would straddle two cache lines, which Zen 4
//! loads at about half the rate), and summed a sub-block of at most [`SUB_INPUTS`]
//! inputs at a time, so that the sub-block's panel stays in L1 for all the rows; the
//! sums wait in an aligned buffer between sub-blocks (an exact store and load). A
//! group's last register of at most half the lanes runs on 256 bits (Zen 4 runs a
//! 512-bit multiply-add as two 256-bit halves; C1's 100 f32 columns end in 4 lanes).
//!
//! Every output is the one-row kernel's chain (and so the product kernel's): within
//! each of the blocks of inputs `gemm` sums alone, fused multiply-adds from zero over
//! the non-zero inputs ascending (a skipped input would add `0 · w`, a zero), the
//! block's sum written (the first) or added to the output.

use super::Forward;
use crate::memory::Lines;
use std::cell::RefCell;

/// Most registers of outputs a row's sums take at a time (two rows: 16 accumulators,
/// two broadcast inputs and a register of weights, of 32).
const MAX_REGS: usize = 8;

/// Most inputs summed in one sub-block: 48 inputs of eight registers of f32 weights are
/// 24 KB, in L1 with the rows' values and sums.
const SUB_INPUTS: usize = 48;

/// How far apart the lists of the twos are: a sub-block's inputs and a register's
/// worth more (the listing stores whole registers).
const LIST_STRIDE: usize = SUB_INPUTS + 16;

/// Rows whose sums are kept at once (the sums of 128 rows of eight registers: 64 KB a
/// group, in L2).
const CHUNK_ROWS: usize = 128;

/// A thread's buffers, reused so that a batch allocates nothing once a thread has seen
/// its first.
struct Scratch {
    /// A sub-block's weights, packed: group by group, each `inputs x (registers x lanes)`.
    packed: Lines,
    /// The running sums of a chunk of rows, `rows x (registers x lanes)`.
    sums: Lines,
    /// Each two's (or odd row's) non-zero inputs in a sub-block, `SUB_INPUTS + 16` apart.
    lists: Vec<u32>,
    /// How many inputs each list holds.
    counts: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            packed: Lines::new(),
            sums: Lines::new(),
            lists: Vec::new(),
            counts: Vec::new(),
        })
    };
}

/// The groups of registers of a row of `regs` registers: `(first, count)`, as even as
/// they come, at most [`MAX_REGS`] each.
fn groups(regs: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = regs.div_ceil(MAX_REGS);
    (0..count).map(move |g| {
        let first = regs * g / count;
        (first, regs * (g + 1) / count - first)
    })
}

/// The sub-blocks of the block of inputs `start..end`: as even as they come, at most
/// [`SUB_INPUTS`] each.
fn sub_blocks(start: usize, end: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = (end - start).div_ceil(SUB_INPUTS);
    (0..count).map(move |s| {
        (
            start + (end - start) * s / count,
            start + (end - start) * (s + 1) / count,
        )
    })
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{f32s::forward as forward_f32, f64s::forward as forward_f64};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::super::x86::{lanes_pd, lanes_ps, nonzero_pd, nonzero_ps};
    use super::SUB_INPUTS;
    use super::{groups, sub_blocks, Forward, Scratch, CHUNK_ROWS, LIST_STRIDE, SCRATCH};
    use crate::register::store;
    use std::arch::x86_64::*;

    /// The kernel for one float type: `$lanes` per register, `$v` the register type
    /// and its operations, `$h...` the 256-bit register's.
    macro_rules! kernel {
        ($module:ident, $t:ty, $lanes:expr, $v:ty, $zero:ident, $set1:ident,
         $fmadd:ident, $load:ident, $mload:ident, $store:ident, $cmp:ident, $mask:ident,
         $hzero:ident, $hcast:ident, $hfmadd:ident, $hload:ident, $hstore:ident) => {
            pub(crate) mod $module {
                use super::*;

                /// [`super::super::forward`] in this type, summing blocks of `block` inputs;
                /// false (nothing written) when memory for the buffers runs out.
                ///
                /// # Safety
                /// The CPU has AVX-512 F and VL and FMA (the engine's AVX-512 level); the
                /// shapes fit; `z` holds `n` rows.
                #[target_feature(enable = "avx512f,avx512vl,fma")]
                pub(crate) unsafe fn forward(
                    f: &Forward<'_, $t>,
                    z: &mut [$t],
                    block: usize,
                ) -> bool {
                    SCRATCH.with_borrow_mut(|s| {
                        let regs = f.width.div_ceil($lanes);
                        let rows = f.n.min(CHUNK_ROWS);
                        if !s.packed.room::<$t>(SUB_INPUTS * regs * $lanes)
                            || !s.sums.room::<$t>(rows * regs * $lanes)
                        {
                            return false;
                        }
                        s.lists.resize(rows.div_ceil(2) * LIST_STRIDE, 0);
                        s.counts.resize(rows.div_ceil(2), 0);
                        for first in (0..f.n).step_by(CHUNK_ROWS) {
                            let n = (f.n - first).min(CHUNK_ROWS);
                            // SAFETY: the caller's contract; the buffers were sized above.
                            unsafe { chunk(f, (first, n), z, block, s) };
                        }
                        true
                    })
                }

                /// Copies the weights of inputs `k0..k1` into `packed`, group by group of
                /// registers, each group `(k1 - k0) x (count x lanes)`, the last register's
                /// lanes past the width zero.
                ///
                /// # Safety
                /// `packed` holds `(k1 - k0) x regs` registers; the inputs exist.
                #[inline(always)]
                unsafe fn pack(
                    f: &Forward<'_, $t>,
                    regs: usize,
                    (k0, k1): (usize, usize),
                    packed: *mut $t,
                ) {
                    for (r0, count) in groups(regs) {
                        let c0 = r0 * $lanes;
                        let cols = (f.width - c0).min(count * $lanes);
                        for k in k0..k1 {
                            // SAFETY: row k's columns c0..c0 + cols exist; the group's
                            // panel row lies within `packed`.
                            unsafe {
                                let src = f.w.as_ptr().add(k * f.width + c0);
                                let dst = packed.add((k1 - k0) * c0 + (k - k0) * count * $lanes);
                                for v in 0..count {
                                    let lanes = cols.saturating_sub(v * $lanes);
                                    let x: $v = $mload($mask(lanes), src.add(v * $lanes));
                                    $store(dst.add(v * $lanes), x);
                                }
                            }
                        }
                    }
                }

                /// Rows `first..first + n` of the product: block of `gemm`'s by block,
                /// sub-block by sub-block, each listed for every two and then summed
                /// group of registers by group.
                ///
                /// # Safety
                /// As [`forward`]'s; the scratch buffers sized for `n` rows.
                #[inline(always)]
                unsafe fn chunk(
                    f: &Forward<'_, $t>,
                    (first, n): (usize, usize),
                    z: &mut [$t],
                    block: usize,
                    s: &mut Scratch,
                ) {
                    let regs = f.width.div_ceil($lanes);
                    let packed = s.packed.ptr::<$t>();
                    let rows = Rows {
                        x: f.x.as_ptr().wrapping_add(first * f.inputs),
                        inputs: f.inputs,
                        n,
                        sums: s.sums.ptr::<$t>(),
                        padded: regs * $lanes,
                        out: z.as_mut_ptr().wrapping_add(first * f.width),
                        width: f.width,
                    };
                    for b0 in (0..f.inputs).step_by(block) {
                        let b1 = (b0 + block).min(f.inputs);
                        let last_sub = (b1 - b0).div_ceil(SUB_INPUTS) - 1;
                        for (sub, (k0, k1)) in sub_blocks(b0, b1).enumerate() {
                            // SAFETY: a sub-block has at most SUB_INPUTS inputs; the
                            // rows hold the inputs; `lists` has room for every two.
                            unsafe {
                                pack(f, regs, (k0, k1), packed);
                                list_twos(&rows, (k0, k1), s);
                            }
                            let step = Step {
                                first: sub == 0,
                                last: (sub == last_sub).then_some(b0 > 0),
                            };
                            for (r0, count) in groups(regs) {
                                // SAFETY: the group's panel is in `packed`, its first
                                // row input k0's; the rows' sums and outputs exist.
                                unsafe {
                                    let w = packed.add((k1 - k0) * r0 * $lanes).cast_const();
                                    group(&rows, (w, k0), (r0, count), s, step);
                                }
                            }
                        }
                    }
                }

                /// Lists the inputs `k0..k1` of every two of `rows` (see [`list`]).
                ///
                /// # Safety
                /// The rows hold the inputs; `s.lists` has room for every two.
                #[inline(always)]
                unsafe fn list_twos(rows: &Rows<$t>, (k0, k1): (usize, usize), s: &mut Scratch) {
                    for t in 0..rows.n.div_ceil(2) {
                        let pair = [rows.x(2 * t), rows.x((2 * t + 1).min(rows.n - 1))];
                        // SAFETY: the caller's; each list has room for a sub-block
                        // and a register.
                        s.counts[t] = unsafe {
                            let at = s.lists.as_mut_ptr().add(t * LIST_STRIDE);
                            list(pair, 2 * t + 1 < rows.n, (k0, k1), at)
                        };
                    }
                }

                /// Sums one group of `count` registers from register `r0` of every
                /// two of `rows` over its list, with the group's panel `w` (from input
                /// `k0`).
                ///
                /// # Safety
                /// The panel holds the listed inputs; the rows' sums and outputs exist.
                #[inline(always)]
                unsafe fn group(
                    rows: &Rows<$t>,
                    (w, k0): (*const $t, usize),
                    (r0, count): (usize, usize),
                    s: &Scratch,
                    step: Step,
                ) {
                    let c0 = r0 * $lanes;
                    let w = (w, k0, (rows.width - c0).min(count * $lanes));
                    // a last register of at most half the lanes runs on 256 bits: on
                    // Zen 4 a 512-bit multiply-add is two 256-bit halves (C1's 100
                    // columns end in a register of 4)
                    let half = w.2 <= (count - 1) * $lanes + $lanes / 2;
                    for t in 0..rows.n.div_ceil(2) {
                        let list = &s.lists[t * LIST_STRIDE..][..s.counts[t]];
                        let at = |r: usize| {
                            let r = (2 * t + r).min(rows.n - 1);
                            (
                                rows.x(r),
                                rows.sums.wrapping_add(r * rows.padded + c0),
                                rows.out.wrapping_add(r * rows.width + c0),
                            )
                        };
                        let two = 2 * t + 1 < rows.n;
                        let rows = [at(0), at(1)];
                        macro_rules! by_count {
                            ($r:literal, $h:literal) => {
                                // SAFETY (each): the caller's.
                                unsafe {
                                    match count {
                                        8 => sums_of::<$r, 8, $h>(rows, list, w, step),
                                        7 => sums_of::<$r, 7, $h>(rows, list, w, step),
                                        6 => sums_of::<$r, 6, $h>(rows, list, w, step),
                                        5 => sums_of::<$r, 5, $h>(rows, list, w, step),
                                        4 => sums_of::<$r, 4, $h>(rows, list, w, step),
                                        3 => sums_of::<$r, 3, $h>(rows, list, w, step),
                                        2 => sums_of::<$r, 2, $h>(rows, list, w, step),
                                        _ => sums_of::<$r, 1, $h>(rows, list, w, step),
                                    }
                                }
                            };
                        }
                        match (two, half) {
                            (true, false) => by_count!(2, false),
                            (true, true) => by_count!(2, true),
                            (false, false) => by_count!(1, false),
                            (false, true) => by_count!(1, true),
                        }
                    }
                }

                /// Lists, at `out`, the inputs `k0..k1` where either row of `pair` (the
                /// first alone unless `two`) is non-zero, ascending; returns their count.
                ///
                /// # Safety
                /// The rows hold inputs `k0..k1`; `out` has room for `k1 - k0` indices and
                /// a register's worth more.
                #[inline(always)]
                unsafe fn list(
                    pair: [*const $t; 2],
                    two: bool,
                    (k0, k1): (usize, usize),
                    out: *mut u32,
                ) -> usize {
                    let iota =
                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                    let mut count = 0;
                    let mut c = k0;
                    while c < k1 {
                        // SAFETY: lanes past k1 are masked off; the caller's contract.
                        unsafe {
                            let mask = $mask(k1 - c);
                            let mut live = $cmp($mload(mask, pair[0].add(c))) as u16;
                            if two {
                                live |= $cmp($mload(mask, pair[1].add(c))) as u16;
                            }
                            let index = _mm512_add_epi32(iota, _mm512_set1_epi32(c as i32));
                            let packed = _mm512_maskz_compress_epi32(live, index);
                            _mm512_storeu_si512(out.add(count).cast(), packed);
                            count += live.count_ones() as usize;
                        }
                        c += $lanes;
                    }
                    count
                }

                /// Sums one group of `V` registers of outputs of `R` rows (row, its
                /// running sums, its outputs) over the listed inputs, with the group's
                /// panel `w` (from input `k0`) and its `cols` outputs.
                ///
                /// # Safety
                /// The pointers hold the group's registers; the panel holds the inputs.
                #[inline(always)]
                unsafe fn sums_of<const R: usize, const V: usize, const HALF: bool>(
                    rows: [(*const $t, *mut $t, *mut $t); 2],
                    list: &[u32],
                    (w, k0, cols): (*const $t, usize, usize),
                    step: Step,
                ) {
                    // with HALF the last register is a 256-bit one (`half`)
                    let wide = if HALF { V - 1 } else { V };
                    let mut acc = [[$zero(); V]; R];
                    let mut half = [$hzero(); R];
                    if !step.first {
                        for r in 0..R {
                            // SAFETY: the caller's contract (aligned: whole registers
                            // of a row of whole registers).
                            unsafe {
                                for v in 0..wide {
                                    acc[r][v] = $load(rows[r].1.add(v * $lanes));
                                }
                                if HALF {
                                    half[r] = $hload(rows[r].1.add(wide * $lanes));
                                }
                            }
                        }
                    }
                    for &k in list {
                        // SAFETY: the caller's contract.
                        unsafe {
                            let panel = w.add((k as usize - k0) * V * $lanes);
                            let x: [$v; R] =
                                std::array::from_fn(|r| $set1(*rows[r].0.add(k as usize)));
                            for v in 0..wide {
                                let weights = $load(panel.add(v * $lanes));
                                for r in 0..R {
                                    acc[r][v] = $fmadd(x[r], weights, acc[r][v]);
                                }
                            }
                            if HALF {
                                let weights = $hload(panel.add(wide * $lanes));
                                for r in 0..R {
                                    half[r] = $hfmadd($hcast(x[r]), weights, half[r]);
                                }
                            }
                        }
                    }
                    match step.last {
                        None => {
                            for r in 0..R {
                                // SAFETY: as above.
                                unsafe {
                                    for v in 0..wide {
                                        $store(rows[r].1.add(v * $lanes), acc[r][v]);
                                    }
                                    if HALF {
                                        $hstore(rows[r].1.add(wide * $lanes), half[r]);
                                    }
                                }
                            }
                        }
                        Some(add) => {
                            for r in 0..R {
                                let out = rows[r].2;
                                // SAFETY: the row's outputs hold `cols` values (the last
                                // register's lanes past them are masked off).
                                unsafe {
                                    for v in 0..wide {
                                        let lanes = cols.saturating_sub(v * $lanes).min($lanes);
                                        store(out.add(v * $lanes), acc[r][v], lanes, add);
                                    }
                                    if HALF {
                                        let lanes = cols - wide * $lanes;
                                        store(out.add(wide * $lanes), half[r], lanes, add);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
    }

    /// A chunk's rows: their inputs (`n` rows of `inputs`), their running sums (rows
    /// of `padded` values, aligned) and their outputs (rows of `width`).
    struct Rows<T> {
        x: *const T,
        inputs: usize,
        n: usize,
        sums: *mut T,
        padded: usize,
        out: *mut T,
        width: usize,
    }

    impl<T> Rows<T> {
        /// Row `r`'s inputs.
        fn x(&self, r: usize) -> *const T {
            self.x.wrapping_add(r * self.inputs)
        }
    }

    /// Where a sub-block stands in its block: `first` starts the sums from zero;
    /// `last` writes them out (adding them to the outputs when `Some(true)`: a later
    /// block of `gemm`'s) instead of keeping them for the next sub-block.
    #[derive(Clone, Copy)]
    struct Step {
        first: bool,
        last: Option<bool>,
    }

    kernel!(
        f32s,
        f32,
        16,
        __m512,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_load_ps,
        _mm512_maskz_loadu_ps,
        _mm512_store_ps,
        nonzero_ps,
        lanes_ps,
        _mm256_setzero_ps,
        _mm512_castps512_ps256,
        _mm256_fmadd_ps,
        _mm256_load_ps,
        _mm256_store_ps
    );
    kernel!(
        f64s,
        f64,
        8,
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_load_pd,
        _mm512_maskz_loadu_pd,
        _mm512_store_pd,
        nonzero_pd,
        lanes_pd,
        _mm256_setzero_pd,
        _mm512_castpd512_pd256,
        _mm256_fmadd_pd,
        _mm256_load_pd,
        _mm256_store_pd
    );
}
