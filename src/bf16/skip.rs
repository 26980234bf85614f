//! The first layer's two products summed over the non-zero words of `A` alone, on the
//! AVX512-BF16 and portable kernels (AMX keeps its tiles): the forward product `X W`
//! (a row's pairs of pixels, zero in 45 % of Fashion-MNIST's) and the weight gradient
//! `X^T D` (a pixel's pairs of rows, zero in 34 %), where the tiles' panels of eight
//! rows skip next to nothing.
//!
//! Rows of `A` (rows of pairs, as the AMX kernel reads them) go in twos (`2t`, `2t + 1`
//! of the product; a last odd row alone): a pair of `k` is listed when either row's
//! word is non-zero (28 % of the pairs are skipped on Fashion-MNIST, either product),
//! and each listed pair's `B` registers (up to [`MAX_REGS`] of 16 columns; wider
//! products in groups of those) serve both rows. On C1's shapes, one thread, medians
//! of 15 alternations on Zen 4: the forward product 88.5 -> 79.5 us, the gradient
//! (transposing X's columns included) 81 -> 72 us against the tiles. (One row at a
//! time skipped more but loaded a register of `B` for every `vdpbf16ps`, and ran
//! slower than the tiles.) On dense rows the lists cost more than they save: X decides
//! once per fit whether its products skip (`rows::MIN_ZERO_PAIRS`).
//!
//! A skipped pair would add `0 · b`, a zero, to sums that started from zero: every
//! element is the same chain of `vdpbf16ps` steps as the tiles', in the same order, so
//! the results are the tiles' bits (the tests compare) but for the sign of a zero sum
//! after an underflow flushed to -0 (and, in the portable kernels, which of two NaNs
//! a sum keeps: the compiler's choice, as it is between builds), and `0 · inf`: a `B`
//! that is not all finite goes to the tiles. The portable kernel skips the same pairs (its own chain step for
//! step), so that the two agree bit for bit everywhere. The twos are the product's own
//! rows, whatever the threads: the results do not depend on their number.

use super::{flush, store, widen, PackedB, WordRows, NR};
use crate::parallel::{Par, SendPtr};
use rayon::prelude::*;
use std::ops::Range;

/// Most 16-column registers a row's sums take at a time (128 columns: C1's 100 in one
/// group, C2's 512 in four).
const MAX_REGS: usize = 8;

/// Rows per task when the product has threads of its own (even: every task's twos are
/// the product's).
const ROWS_PER_TASK: usize = 64;

/// Most pairs of `k` a task sums in one block, when its sums can wait in `dst` between
/// blocks (not when accumulating into it): 48 pairs of eight registers of `B` are 24
/// KB, in L1 for all of the task's rows. (The first layer's forward product of 784
/// pixels, 200 KB of `B` streamed again for every two rows, took longer than the tiles
/// that skip nothing.)
const BLOCK_PAIRS: usize = 48;

/// Most pairs summed in one block all the same (a weight gradient's 50 pairs of rows
/// in two blocks of 25 took 1.2x as long as in one).
const WHOLE_PAIRS: usize = 64;

/// Twos of rows listed at a time.
const TWOS: usize = ROWS_PER_TASK / 2;

/// The blocks of `k` (pairs) of a product: the same for all its tasks.
fn blocks(pairs: usize, accumulate: bool) -> impl Iterator<Item = Range<usize>> {
    let count = if accumulate || pairs <= WHOLE_PAIRS {
        1
    } else {
        pairs.div_ceil(BLOCK_PAIRS)
    };
    let len = pairs.div_ceil(count);
    (0..count).map(move |b| (b * len).min(pairs)..((b + 1) * len).min(pairs))
}

/// A product `dst (+)= A B`: `m` rows of `A` (rows of `pairs` words) against `B`
/// packed for `pairs` pairs; `dst` row-major with row stride `ld`.
pub(super) struct Product<'a> {
    pub a: WordRows<'a>,
    pub m: usize,
    pub pairs: usize,
    pub b: &'a PackedB,
    pub dst: SendPtr<f32>,
    pub ld: usize,
    pub accumulate: bool,
}

impl Product<'_> {
    /// Row `i`'s words.
    fn words(&self, i: usize) -> &[u32] {
        &self.a.words[self.a.start(i)..][..self.pairs]
    }

    /// Where column register `r` of pair 0 starts in `B`'s panels.
    fn register_start(&self, r: usize) -> usize {
        (r / 2 * self.pairs) * NR + (r % 2) * 16
    }

    /// The columns of the register group `(first, count)`.
    fn columns(&self, (first, count): (usize, usize)) -> usize {
        (self.b.n - 16 * first).min(16 * count)
    }

    /// `dst`'s row `i` from column `16 first` on.
    fn out(&self, i: usize, first: usize) -> *mut f32 {
        // (a pointer computed, not dereferenced: its users are unsafe)
        self.dst.get().wrapping_add(i * self.ld + 16 * first)
    }
}

/// Computes `p` on the AVX512-BF16 kernel (`simd`, where the CPU has it) or the portable
/// one.
///
/// # Safety
/// `p.a` holds the `m` rows of `pairs` words, `p.b` is packed for `pairs` pairs, and
/// `dst`'s `m` rows of `b.n` values (row stride `ld`) are the caller's to write.
pub(super) unsafe fn product(p: &Product<'_>, simd: bool, par: Par) {
    assert!(p.b.words.len() >= p.b.n.div_ceil(NR) * p.pairs * NR);
    let task = |t: usize| {
        let rows = t * ROWS_PER_TASK..((t + 1) * ROWS_PER_TASK).min(p.m);
        // SAFETY: the caller's; each task writes its own rows.
        unsafe { task_rows(p, rows, simd) }
    };
    let tasks = p.m.div_ceil(ROWS_PER_TASK);
    match par {
        Par::Rayon if tasks > 1 => (0..tasks).into_par_iter().for_each(task),
        _ => (0..tasks).for_each(task),
    }
}

/// The groups of registers `(first, count)` a row's `n` sums take in turn.
fn groups(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let all = n.div_ceil(16);
    (0..all)
        .step_by(MAX_REGS)
        .map(move |first| (first, MAX_REGS.min(all - first)))
}

/// Rows `rows` (from an even row) of `p`.
///
/// # Safety
/// As [`product`]'s, for these rows.
unsafe fn task_rows(p: &Product<'_>, rows: Range<usize>, simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: the caller's (the CPU has AVX-512 F, VL and BF16 with `simd`).
        return unsafe { avx512::task_rows(p, rows) };
    }
    let _ = simd;
    for row in rows.clone().step_by(2) {
        let two = row + 1 < rows.end;
        for group in groups(p.b.n) {
            // SAFETY: the caller's.
            unsafe { portable_rows(p, (row, two), group) };
        }
    }
}

/// Columns `16 first..` (`count` registers) of rows `row` (and `row + 1` with `two`) on
/// `vdpbf16ps`'s arithmetic, one f32 per column, in its order (see
/// [`super::portable_body`]), over the pairs where either row's word is non-zero.
///
/// # Safety
/// As [`product`]'s.
unsafe fn portable_rows(p: &Product<'_>, rows: (usize, bool), group: (usize, usize)) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: the caller's; the CPU has the features `portable_avx512` is compiled
        // for.
        return unsafe { portable_avx512(p, rows, group) };
    }
    // SAFETY: the caller's.
    unsafe { portable_body(p, rows, group) }
}

/// [`portable_rows`] compiled for AVX-512 (a CPU without AVX512-BF16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn portable_avx512(p: &Product<'_>, rows: (usize, bool), group: (usize, usize)) {
    // SAFETY: the caller's.
    unsafe { portable_body(p, rows, group) }
}

#[inline(always)]
unsafe fn portable_body(p: &Product<'_>, (row, two): (usize, bool), group: (usize, usize)) {
    let cols = p.columns(group);
    let regs = cols.div_ceil(16);
    let words = [p.words(row), p.words(if two { row + 1 } else { row })];
    let mut acc = [[0.0_f32; 16 * MAX_REGS]; 2];
    for q in 0..p.pairs {
        if words[0][q] | words[1][q] == 0 {
            continue;
        }
        for (sums, rows_words) in acc.iter_mut().zip(&words).take(1 + usize::from(two)) {
            let word = rows_words[q];
            let (a0, a1) = (flush(widen(word as u16)), flush(widen((word >> 16) as u16)));
            for (r, sums) in sums.chunks_exact_mut(16).take(regs).enumerate() {
                let b = &p.b.words[p.register_start(group.0 + r) + q * NR..][..16];
                for (o, &bw) in sums.iter_mut().zip(b) {
                    let s = flush(*o + a1 * flush(widen((bw >> 16) as u16)));
                    *o = flush(s + a0 * flush(widen(bw as u16)));
                }
            }
        }
    }
    for (r, sums) in acc.iter().take(1 + usize::from(two)).enumerate() {
        // SAFETY: the caller's: the row's columns lie in `dst`.
        let out = unsafe { std::slice::from_raw_parts_mut(p.out(row + r, group.0), cols) };
        store(out, &sums[..cols], p.accumulate);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{blocks, groups, Product, Range, MAX_REGS, NR, TWOS};
    use crate::register::{load, store};
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    thread_local! {
        /// A task's lists (see [`Lists`]), reused.
        static LISTS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    /// The pairs of a block that twos of rows sum over (their `q`), listed for all the
    /// twos before any sums (a list read right after its 512-bit stores waited for
    /// them), each list `stride` long.
    struct Lists<'a> {
        buffer: &'a mut [u32],
        stride: usize,
        counts: [usize; TWOS],
    }

    impl Lists<'_> {
        /// The list of two `t`.
        fn list(&self, t: usize) -> *const u32 {
            self.buffer[t * self.stride..].as_ptr()
        }
    }

    /// [`super::task_rows`] on `vdpbf16ps`: block of `k` by block, [`TWOS`] twos of rows
    /// at a time listed, then summed group of registers by group.
    ///
    /// # Safety
    /// As [`super::product`]'s, and the CPU has AVX-512 F, VL and BF16.
    #[target_feature(enable = "avx512f,avx512vl,avx512bf16")]
    pub(super) unsafe fn task_rows(p: &Product<'_>, rows: Range<usize>) {
        let stride = blocks(p.pairs, p.accumulate)
            .map(|b| b.len())
            .max()
            .unwrap_or(0);
        let stride = stride.next_multiple_of(16) + 16;
        LISTS.with_borrow_mut(|buffer| {
            if buffer.len() < stride * TWOS {
                buffer.resize(stride * TWOS, 0);
            }
            let mut lists = Lists {
                buffer,
                stride,
                counts: [0; TWOS],
            };
            let twos = rows.len().div_ceil(2);
            let two = |t: usize| (rows.start + 2 * t, rows.start + 2 * t + 1 < rows.end);
            for (b, block) in blocks(p.pairs, p.accumulate).enumerate() {
                for sub in (0..twos).step_by(TWOS) {
                    let some = sub..(sub + TWOS).min(twos);
                    for t in some.clone() {
                        // SAFETY: the CPU has AVX-512 F.
                        unsafe { list(p, two(t), (&mut lists, t - sub), block.clone()) };
                    }
                    for group in groups(p.b.n) {
                        for t in some.clone() {
                            // SAFETY: the caller's.
                            unsafe { run(p, two(t), (&lists, t - sub), (group, b > 0)) };
                        }
                    }
                }
            }
        });
    }

    /// Lists the pairs of `block` where row `row` or, with `two`, row `row + 1` has a
    /// non-zero word, as list `t`.
    ///
    /// # Safety
    /// The CPU has AVX-512 F.
    #[inline(always)]
    unsafe fn list(
        p: &Product<'_>,
        (row, two): (usize, bool),
        (lists, t): (&mut Lists<'_>, usize),
        block: Range<usize>,
    ) {
        let first = p.words(row).as_ptr();
        let second = if two { p.words(row + 1) } else { p.words(row) }.as_ptr();
        let stride = lists.stride;
        assert!(block.len() + 16 <= stride);
        let out = lists.buffer[t * stride..][..stride].as_mut_ptr();
        let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut n = 0;
        for at in block.clone().step_by(16) {
            let valid = (((1_u32 << (block.end - at).min(16)) - 1) & 0xFFFF) as __mmask16;
            // SAFETY: the valid lanes lie in the rows; each list has room for 16 words
            // past the block's pairs (asserted).
            unsafe {
                let v = _mm512_maskz_loadu_epi32(valid, first.add(at).cast());
                let v2 = _mm512_maskz_loadu_epi32(valid, second.add(at).cast());
                let either = _mm512_or_si512(v, v2);
                let kept = _mm512_test_epi32_mask(either, either);
                let q = _mm512_add_epi32(_mm512_set1_epi32(at as i32), iota);
                // (compressed in a register and stored whole: Zen 4's compress into
                // memory is slow)
                let kept_q = _mm512_maskz_compress_epi32(kept, q);
                _mm512_storeu_si512(out.add(n).cast(), kept_q);
                n += kept.count_ones() as usize;
            }
        }
        lists.counts[t] = n;
    }

    /// Rows `row` (and `row + 1` with `two`) of the register group `(first, count)`
    /// over two `t`'s pairs, into `dst`. A last register of at most 8 columns runs on
    /// 256 bits: on Zen 4 a 512-bit `vdpbf16ps` is two 256-bit halves (C1's 100 columns
    /// end in a register of 4).
    ///
    /// # Safety
    /// As [`super::product`]'s, and the CPU has AVX-512 F, VL and BF16.
    #[inline(always)]
    unsafe fn run(
        p: &Product<'_>,
        (row, two): (usize, bool),
        lists: (&Lists<'_>, usize),
        ((first, count), resume): ((usize, usize), bool),
    ) {
        let half = p.columns((first, count)) <= 16 * (count - 1) + 8;
        macro_rules! by_count {
            ($p:literal, $h:literal) => {
                // SAFETY (each): the caller's.
                unsafe {
                    match count {
                        1 => sums::<1, $p, $h>(p, row, lists, (first, resume)),
                        2 => sums::<2, $p, $h>(p, row, lists, (first, resume)),
                        3 => sums::<3, $p, $h>(p, row, lists, (first, resume)),
                        4 => sums::<4, $p, $h>(p, row, lists, (first, resume)),
                        5 => sums::<5, $p, $h>(p, row, lists, (first, resume)),
                        6 => sums::<6, $p, $h>(p, row, lists, (first, resume)),
                        7 => sums::<7, $p, $h>(p, row, lists, (first, resume)),
                        _ => sums::<MAX_REGS, $p, $h>(p, row, lists, (first, resume)),
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

    /// `R` registers of sums (the last one 256-bit with `HALF`) for each of `P` rows
    /// from `row`, over two `t`'s pairs: from zero, or with `resume` from the sums of
    /// the blocks before, in `dst`.
    #[inline(always)]
    unsafe fn sums<const R: usize, const P: usize, const HALF: bool>(
        p: &Product<'_>,
        row: usize,
        (lists, t): (&Lists<'_>, usize),
        (first, resume): (usize, bool),
    ) {
        let b = p.b.words.as_ptr();
        // SAFETY: the registers' panels lie in `B` (asserted by `product`).
        let starts: [*const u32; R] =
            std::array::from_fn(|r| unsafe { b.add(p.register_start(first + r)) });
        let wide = if HALF { R - 1 } else { R };
        let tail = p.columns((first, R)) - 16 * (R - 1);
        let qs = lists.list(t);
        // (the words broadcast from the rows, read by the listing: in L1)
        let words = [p.words(row).as_ptr(), p.words(row + P - 1).as_ptr()];
        let mut acc = [[_mm512_setzero_ps(); R]; P];
        let mut last = [_mm256_setzero_ps(); P];
        if resume {
            for (r, (sums, half)) in acc.iter_mut().zip(last.iter_mut()).enumerate() {
                // SAFETY: the caller's: the rows' columns lie in `dst`.
                unsafe { read::<R, HALF>(p.out(row + r, first), tail, sums, half) };
            }
        }
        for i in 0..lists.counts[t] {
            // SAFETY: `i` is below the list's count; pair `q` lies in each panel.
            unsafe {
                let q = *qs.add(i) as usize;
                let a: [__m512i; P] = std::array::from_fn(|r| {
                    _mm512_broadcastd_epi32(_mm_loadu_si32(words[r].add(q).cast()))
                });
                for (r, &start) in starts.iter().enumerate().take(wide) {
                    let v = bh(_mm512_loadu_si512(start.add(q * NR).cast()));
                    for (sums, &a) in acc.iter_mut().zip(&a) {
                        sums[r] = _mm512_dpbf16_ps(sums[r], bh(a), v);
                    }
                }
                if HALF {
                    let v = _mm256_loadu_si256(starts[R - 1].add(q * NR).cast());
                    let v = std::mem::transmute::<__m256i, __m256bh>(v);
                    for (s, &a) in last.iter_mut().zip(&a) {
                        let a = std::mem::transmute::<__m256i, __m256bh>(_mm512_castsi512_si256(a));
                        *s = _mm256_dpbf16_ps(*s, a, v);
                    }
                }
            }
        }
        for (r, (sums, &half)) in acc.iter().zip(&last).enumerate() {
            // SAFETY: the caller's: the rows' columns lie in `dst`.
            unsafe { write::<R, HALF>(p.out(row + r, first), tail, sums, half, p.accumulate) };
        }
    }

    #[inline(always)]
    unsafe fn bh(v: __m512i) -> __m512bh {
        // SAFETY: the same 512 bits.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// A row's sums of the blocks before from `out`: whole registers but for the last,
    /// which has `tail` lanes (zeros past them) and is `half` with `HALF`. (Registers
    /// counted at compile time, so that the sums stay in registers: with the lanes of
    /// each worked out at run time, C2's went through the stack.)
    #[inline(always)]
    unsafe fn read<const R: usize, const HALF: bool>(
        out: *const f32,
        tail: usize,
        sums: &mut [__m512; R],
        half: &mut __m256,
    ) {
        for (r, v) in sums.iter_mut().enumerate() {
            // SAFETY (each): the caller's: the row's columns lie in `dst`.
            match (r + 1 == R, HALF) {
                (false, _) => *v = unsafe { load(out.add(16 * r), 16) },
                (true, false) => *v = unsafe { load(out.add(16 * r), tail) },
                (true, true) => *half = unsafe { load(out.add(16 * r), tail) },
            }
        }
    }

    /// A row's sums into `out` (added to what is there with `accumulate`), registers
    /// as [`read`] reads them.
    #[inline(always)]
    unsafe fn write<const R: usize, const HALF: bool>(
        out: *mut f32,
        tail: usize,
        sums: &[__m512; R],
        half: __m256,
        accumulate: bool,
    ) {
        for (r, &v) in sums.iter().enumerate() {
            // SAFETY (each): the caller's: the row's columns lie in `dst`.
            match (r + 1 == R, HALF) {
                (false, _) => unsafe { store(out.add(16 * r), v, 16, accumulate) },
                (true, false) => unsafe { store(out.add(16 * r), v, tail, accumulate) },
                (true, true) => unsafe { store(out.add(16 * r), half, tail, accumulate) },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{has_avx512_bf16, matmul_with, pack_rows, Bf16Kernel};
    use super::*;
    use ndarray::{Array2, ArrayView2};

    /// Values in runs of zeros (whole pairs, single halves and -0 among them), so that
    /// twos of rows skip some pairs, list others for one row alone, and list all.
    fn sparse(r: usize, c: usize, seed: f32) -> Array2<f32> {
        Array2::from_shape_fn((r, c), |(i, j)| match (i * 5 + j / 3) % 9 {
            0..=3 => 0.0,
            4 if j % 2 == 0 => -0.0,
            _ => ((i * 31 + j * 17) as f32 * seed).sin(),
        })
    }

    /// `a b` (+ `dst` with `accumulate`) on the skipping kernel, `a`'s rows as rows of
    /// pairs.
    fn skipped(
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        dst: &Array2<f32>,
        how: (bool, bool, Par),
    ) -> Array2<f32> {
        let (simd, accumulate, par) = how;
        let pairs = a.ncols().div_ceil(2);
        let mut words = vec![0; a.nrows() * pairs];
        pack_rows(a, pairs, &mut words);
        let mut packed = PackedB::default();
        packed.repack(b);
        let mut out = dst.clone();
        let p = Product {
            a: WordRows {
                words: &words,
                stride: pairs,
                which: None,
            },
            m: a.nrows(),
            pairs,
            b: &packed,
            dst: SendPtr(out.as_mut_ptr()),
            ld: b.ncols(),
            accumulate,
        };
        // SAFETY: `words` holds the rows, `packed` the pairs, `out` the rows of `dst`.
        unsafe { product(&p, simd, par) };
        out
    }

    fn bits(a: &Array2<f32>) -> Array2<u32> {
        a.mapv(f32::to_bits)
    }

    /// The tiles' bits, on every shape the kernel treats apart: one block of pairs and
    /// several (the forward product's), one group of registers and two, a last register
    /// of at most 8 columns and one of 9 to 15, an odd last row, more rows than a task,
    /// both kernels.
    #[test]
    fn skipping_gives_the_tiles_bits() {
        let shapes = [
            (37, 70, 100),
            (20, 301, 40),
            (9, 784, 200),
            (67, 50, 16),
            (3, 5, 1),
            (130, 97, 24),
            (11, 120, 90),
            (6, 33, 47),
        ];
        for (m, k, n) in shapes {
            let a = sparse(m, k, 0.23);
            let b = sparse(k, n, 0.41).mapv(|v| if v == 0.0 { 0.5 } else { v });
            let dst = Array2::from_shape_fn((m, n), |(i, j)| (i + 2 * j) as f32 * 0.25);
            let kernel = if has_avx512_bf16() {
                Bf16Kernel::Avx512
            } else {
                Bf16Kernel::Portable
            };
            for accumulate in [false, true] {
                let mut want = dst.clone();
                matmul_with(
                    kernel,
                    want.view_mut(),
                    a.view(),
                    b.view(),
                    accumulate,
                    Par::Sequential,
                )
                .unwrap();
                for simd in [false, has_avx512_bf16()] {
                    let got = skipped(
                        a.view(),
                        b.view(),
                        &dst,
                        (simd, accumulate, Par::Sequential),
                    );
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "({m}, {k}, {n}) {accumulate} {simd}"
                    );
                }
                let threaded = crate::parallel::with_threads(2, |par| {
                    skipped(
                        a.view(),
                        b.view(),
                        &dst,
                        (has_avx512_bf16(), accumulate, par),
                    )
                })
                .unwrap();
                assert_eq!(bits(&threaded), bits(&want), "({m}, {k}, {n}) threads");
            }
        }
    }

    /// Where skipping changes bits (sums that underflow to -0 before a skipped pair), the
    /// two kernels still agree: the portable one skips the same pairs.
    #[test]
    fn both_kernels_skip_alike() {
        if !has_avx512_bf16() {
            return;
        }
        // products near the smallest normal: sums flushed to -0 and +0, denormal halves
        let tiny = |i: usize, j: usize| match (i + j) % 4 {
            0 => -1.0e-20,
            1 => 1.0e-19,
            2 => f32::from_bits(0x0040_0000),
            _ => -3.0e-19,
        };
        let a = sparse(21, 90, 0.3).mapv(|v| v * 1.0e-19);
        let a = Array2::from_shape_fn(
            a.dim(),
            |(i, j)| if a[[i, j]] == 0.0 { 0.0 } else { tiny(i, j) },
        );
        let b = Array2::from_shape_fn((90, 35), |(i, j)| tiny(i, j + 1));
        let dst = Array2::from_elem((21, 35), -0.0_f32);
        for accumulate in [false, true] {
            let how = |simd| (simd, accumulate, Par::Sequential);
            let simd = skipped(a.view(), b.view(), &dst, how(true));
            let portable = skipped(a.view(), b.view(), &dst, how(false));
            assert_eq!(bits(&simd), bits(&portable), "{accumulate}");
            assert!(simd.iter().any(|v| v.to_bits() == 0x8000_0000), "a -0 sum");
        }
    }
}
