//! Matrix products with bfloat16 operands and float32 accumulation (the estimators'
//! `matmul_precision="bfloat16"`): `dst (+)= a · b` where every element of `a` and `b`
//! is first rounded to bfloat16 (round to nearest, ties to even).
//!
//! The operands are packed once per product: `a` in panels of [`MR`] rows and `b` in
//! panels of [`NR`] columns, both as pairs of consecutive `k` (two bfloat16 in a 32-bit
//! word), the layout of the `vdpbf16ps` instruction, which adds two products to each
//! f32 lane. Three kernels compute the tiles, chosen at run time:
//!
//! - AMX (`tdpbf16ps` on 16 x 16 tiles), where the CPU has `amx_bf16` and the OS
//!   grants the tile state (see [`amx`]); its `A` operand is rows of pairs, not panels;
//! - AVX512-BF16 (`vdpbf16ps`), where the CPU has it;
//! - a portable one everywhere else, which does what `vdpbf16ps` specifies in the same
//!   order: per pair, `acc += a1 * b1`, then `acc += a0 * b0`, each product exact in
//!   f32, each sum rounded to nearest even, denormal inputs and results flushed to zero.
//!   The two agree bit for bit (tested where the CPU has the instruction). AMX sums
//!   each tile step's 32 products in its own way: its results differ from theirs in the
//!   last bits (see [`amx`]).
//!
//! Each output element sums its `k` pairs in order, whichever thread computes its tile:
//! results do not depend on the number of threads.

use crate::error::{ensure_product, ensure_shape, Result};
use crate::memory::Line;
use crate::parallel::{Par, SendPtr};
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

mod amx;
mod rows;
mod skip;
pub(crate) use rows::{matmul_rows, matmul_t_rows, Bf16Rows};

/// Rows of a packed panel of `a` (and of a tile).
pub(crate) const MR: usize = 8;
/// Columns of a packed panel of `b` (and of a tile): two 512-bit vectors of f32.
pub(crate) const NR: usize = 32;

/// How many pairs ahead [`PackTarget::rows`] asks for the words it will write.
const PACK_AHEAD: usize = 8;

/// `x` rounded to bfloat16 (nearest, ties to even), as the top 16 bits of an f32. NaN
/// stays a (quiet) NaN.
#[inline(always)]
pub(crate) fn round(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16;
    // a select, so that packing loops vectorise
    let nan = (bits & 0x7FFF_FFFF) > 0x7F80_0000;
    (if nan { (bits >> 16) | 0x40 } else { rounded }) as u16
}

/// Whether a bfloat16 is infinite or NaN (its exponent all ones).
#[inline(always)]
fn not_finite(h: u16) -> bool {
    h & 0x7F80 == 0x7F80
}

/// The f32 value of a bfloat16.
#[inline(always)]
pub(crate) fn widen(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Whether this CPU runs the AVX512-BF16 kernel (not when `MLP_RS_CPU` lowers the
/// kernels below AVX-512).
fn has_avx512_bf16() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            crate::simd::level() == crate::simd::Level::Avx512
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The kernel a product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// `tdpbf16ps` on AMX tiles.
    Amx,
    /// `vdpbf16ps` on 512-bit registers.
    Avx512,
    /// Portable Rust, the same results as `Avx512`.
    Portable,
}

impl Bf16Kernel {
    /// The fastest kernel this CPU has.
    pub fn best() -> Self {
        if amx::available() {
            Bf16Kernel::Amx
        } else if has_avx512_bf16() {
            Bf16Kernel::Avx512
        } else {
            Bf16Kernel::Portable
        }
    }

    /// `self`, or the best kernel below it when the CPU lacks it.
    fn or_below(self) -> Self {
        match self {
            Bf16Kernel::Amx if !amx::available() => Bf16Kernel::Avx512.or_below(),
            Bf16Kernel::Avx512 if !has_avx512_bf16() => Bf16Kernel::Portable,
            kernel => kernel,
        }
    }

    /// The kernel's name, for reports: `amx`, `avx512_bf16` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Kernel::Amx => "amx",
            Bf16Kernel::Avx512 => "avx512_bf16",
            Bf16Kernel::Portable => "portable",
        }
    }
}

/// `dst = a · b` (or `dst += a · b`) with bfloat16 operands, f32 accumulation, on the
/// fastest kernel of this CPU.
pub fn matmul(
    dst: ArrayViewMut2<'_, f32>,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    matmul_with(Bf16Kernel::best(), dst, a, b, accumulate, par)
}

/// [`matmul`] on a given kernel (tests compare them); a kernel the CPU lacks falls back
/// to the best one below it.
pub fn matmul_with(
    kernel: Bf16Kernel,
    mut dst: ArrayViewMut2<'_, f32>,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    let (m, n) = dst.dim();
    let k = a.ncols();
    ensure_product("bf16 matmul", (m, n), a.dim(), b.dim())?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let kernel = kernel.or_below();
    let pairs = k.div_ceil(2);
    let (mut packed_a, mut packed_b) = PACKED.take();
    pack_b(b, pairs, &mut packed_b);
    let operand = pack_operand(kernel, a, pairs, &mut packed_a);
    product(
        kernel,
        dst.view_mut(),
        (operand, &packed_b),
        pairs,
        accumulate,
        par,
    );
    PACKED.set((packed_a, packed_b));
    Ok(())
}

/// Words in memory aligned to 64 bytes, a cache line: a packed panel's pair of 32
/// columns is then two whole lines, and no 512-bit load of it spans two (on Zen 4 such
/// split loads ran the zero-skipping kernel, 7 loads of `B` a step, at ~0.65x).
/// Resized as a `Vec` is, new words zero.
#[derive(Default, Debug, Clone)]
pub(crate) struct Words {
    lines: Vec<Line>,
    len: usize,
}

impl Words {
    const fn new() -> Self {
        Words {
            lines: Vec::new(),
            len: 0,
        }
    }

    /// `len` words: the first ones kept, new ones zero (as `Vec::resize(len, 0)`).
    pub(crate) fn resize(&mut self, len: usize) {
        let old = self.len;
        self.lines.resize(len.div_ceil(16), Line::ZERO);
        self.len = len;
        if len > old {
            self[old..].fill(0);
        }
    }
}

impl std::ops::Deref for Words {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        // SAFETY: the lines hold at least `len` words (16 a line, aligned for u32s), as
        // plain bytes (`repr(C)`).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }
}

impl std::ops::DerefMut for Words {
    fn deref_mut(&mut self) -> &mut [u32] {
        // SAFETY: as above; borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

/// The `b` operand of several products packed once (a layer's weights, shared by the
/// parts of a batch).
#[derive(Default, Debug)]
pub(crate) struct PackedB {
    words: Words,
    k: usize,
    n: usize,
    /// Whether every word is finite, once asked ([`PackedB::all_finite`]): 0 not known
    /// yet, 1 yes, 2 no.
    finite: AtomicU8,
}

impl PartialEq for PackedB {
    fn eq(&self, other: &Self) -> bool {
        (&self.words[..], self.k, self.n) == (&other.words[..], other.k, other.n)
    }
}

impl PackedB {
    /// Packs `b` (k x n) as [`matmul`] packs it, in the buffer already there.
    pub(crate) fn repack(&mut self, b: ArrayView2<'_, f32>) {
        pack_b(b, b.nrows().div_ceil(2), &mut self.words);
        (self.k, self.n) = b.dim();
        *self.finite.get_mut() = 0;
    }

    /// Whether every value is finite ([`not_finite`]), checked once per packing: the
    /// zero-skipping products need it (`0 · inf` is NaN).
    fn all_finite(&self) -> bool {
        match self.finite.load(Ordering::Relaxed) {
            0 => {
                // (no early exit, so that the loop vectorises)
                let bad = |w: u32| u8::from(not_finite(w as u16) | not_finite((w >> 16) as u16));
                let all = self.words.iter().fold(0, |n, &w| n | bad(w)) == 0;
                // (two threads may both check: they store the same answer)
                self.finite
                    .store(if all { 1 } else { 2 }, Ordering::Relaxed);
                all
            }
            known => known == 1,
        }
    }

    /// The shape of the packed operand, (k, n).
    pub(crate) fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// This operand's buffer as a [`PackTarget`] for a `k x n` matrix; `None` unless it
    /// holds one of that shape already (packed by [`PackedB::repack`]).
    pub(crate) fn target(&mut self, (k, n): (usize, usize)) -> Option<PackTarget> {
        // Words known finite stay so unless a repacked chunk holds a value that is not
        // (`PackTarget::rows` marks it; `columns` forgets): the zero-skipping products
        // then need not read the whole operand again every batch (the scan was 1.5 %
        // of a one-thread C1 bfloat16 epoch's samples, 3.3 % of a two-thread one's,
        // both threads scanning). Otherwise not known.
        let finite = self.finite.get_mut();
        if *finite != 1 {
            *finite = 0;
        }
        let target = PackTarget {
            words: SendPtr(self.words.as_mut_ptr()),
            k,
            n,
            finite: SendPtr(&mut self.finite),
        };
        (self.dim() == (k, n) && self.words.len() == target.len()).then_some(target)
    }
}

/// A [`PackedB`] of a `k x n` matrix `B` repacked piece by piece, from several threads
/// (the optimizer's tasks, each right after updating its chunk of a weight matrix):
/// the same words as [`PackedB::repack`] writes.
#[derive(Clone, Copy)]
pub(crate) struct PackTarget {
    words: SendPtr<u32>,
    k: usize,
    n: usize,
    /// The operand's [`PackedB::finite`], which a chunk with a value that is not
    /// finite marks so.
    finite: SendPtr<AtomicU8>,
}

impl PackTarget {
    /// The words of the whole packed operand.
    fn len(self) -> usize {
        self.n.div_ceil(NR) * self.k.div_ceil(2) * NR
    }

    /// Rows `first..first + rows.nrows()` of `B`, from `rows`: `first` even, and the
    /// rows end at an even row or at `k` (whole pairs).
    ///
    /// # Safety
    /// The buffer lives, and no other thread touches these rows' pairs meanwhile.
    pub(crate) unsafe fn rows(self, rows: ArrayView2<'_, f32>, first: usize) {
        let (m, n) = rows.dim();
        let end = first + m;
        assert!(first.is_multiple_of(2) && n == self.n && end <= self.k);
        assert!(end.is_multiple_of(2) || end == self.k);
        #[cfg(target_arch = "x86_64")]
        if crate::simd::level() == crate::simd::Level::Avx512 {
            // SAFETY: the CPU has the features `rows_avx512` is compiled for; the
            // caller's contract.
            return unsafe { self.rows_avx512(rows, first) };
        }
        // SAFETY: the caller's contract.
        unsafe { self.rows_body(rows, first) }
    }

    /// [`PackTarget::rows`] compiled for AVX-512 (as [`pack_avx512`] is: the scalar
    /// build of the same loop took 1.5x as long).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
    unsafe fn rows_avx512(self, rows: ArrayView2<'_, f32>, first: usize) {
        // SAFETY: the caller's.
        unsafe { self.rows_body(rows, first) }
    }

    /// [`PackTarget::rows`]'s loop (checked by it).
    #[inline(always)]
    unsafe fn rows_body(self, rows: ArrayView2<'_, f32>, first: usize) {
        let (end, pairs) = (first + rows.nrows(), self.k.div_ceil(2));
        let contiguous = |i: usize| {
            rows.row(i)
                .to_slice()
                .expect("PackTarget::rows: rows in order")
        };
        let pairs_here = first / 2..end.div_ceil(2);
        let mut finite = true;
        for q in pairs_here.clone() {
            // The panels' words were read by every part's product of the last batch,
            // on both cores: each first write waits for the other core's copy of its
            // line to be dropped. Asking for this chunk's lines a few pairs ahead
            // overlaps those waits (a two-thread C1 epoch's packing: 13 % -> 3 % of
            // the samples in one phase of the AMD host; 2.5 % without it in another).
            if q + PACK_AHEAD < pairs_here.end {
                for p in 0..self.n.div_ceil(NR) {
                    let ahead = self
                        .words
                        .get()
                        .wrapping_add((p * pairs + q + PACK_AHEAD) * NR);
                    crate::simd::prefetch(ahead);
                    crate::simd::prefetch(ahead.wrapping_add(16));
                }
            }
            let lo = contiguous(2 * q - first);
            // (an odd `k`'s last pair has only its low value)
            let hi = (2 * q + 1 < end).then(|| contiguous(2 * q + 1 - first));
            for (p, lo) in lo.chunks(NR).enumerate() {
                // SAFETY: pair q (< pairs) of panel p (< n / NR), inside the buffer,
                // this call's alone (the caller's contract). (A last panel's lanes past
                // `n` keep the zeros of the whole packing.)
                let out = unsafe {
                    std::slice::from_raw_parts_mut(
                        self.words.get().add((p * pairs + q) * NR),
                        lo.len(),
                    )
                };
                finite &= pair_words(out, lo, hi.map(|hi| &hi[p * NR..]));
            }
        }
        if !finite {
            // SAFETY: the operand lives (the caller's contract).
            unsafe { (*self.finite.get()).store(2, Ordering::Relaxed) };
        }
    }

    /// Columns `first..first + cols.nrows()` of `B`, from `cols` (row `j` holds column
    /// `first + j`, `k` values: a chunk of rows of the `W` whose `W^T` is `B`): `first`
    /// a multiple of [`NR`], and the columns end at a multiple of it or at `n` (whole
    /// panels).
    ///
    /// # Safety
    /// As [`PackTarget::rows`], for these columns' panels.
    pub(crate) unsafe fn columns(self, cols: ArrayView2<'_, f32>, first: usize) {
        let end = first + cols.nrows();
        assert!(first.is_multiple_of(NR) && cols.ncols() == self.k && end <= self.n);
        assert!(end.is_multiple_of(NR) || end == self.n);
        let pairs = self.k.div_ceil(2);
        let (p0, p1) = (first / NR, end.div_ceil(NR));
        // SAFETY: panels p0..p1 (<= n / NR), inside the buffer, this call's alone.
        let out = unsafe {
            std::slice::from_raw_parts_mut(
                self.words.get().add(p0 * pairs * NR),
                (p1 - p0) * pairs * NR,
            )
        };
        pack_lanes_into(cols, NR, pairs, out);
        // SAFETY: as above. (Not checked here: no zero-skipping product reads `W^T`.)
        unsafe { (*self.finite.get()).store(0, Ordering::Relaxed) };
    }
}

/// [`matmul`] with `b` already packed: the same bits.
pub(crate) fn matmul_packed(
    mut dst: ArrayViewMut2<'_, f32>,
    a: ArrayView2<'_, f32>,
    b: &PackedB,
    accumulate: bool,
    par: Par,
) -> Result<()> {
    let (m, n) = dst.dim();
    ensure_shape(a.nrows() == m && a.ncols() == b.k && b.n == n, || {
        "bf16 matmul: the packed operand does not fit".into()
    })?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let pairs = b.k.div_ceil(2);
    let (mut packed_a, spare) = PACKED.take();
    let kernel = Bf16Kernel::best();
    let operand = pack_operand(kernel, a, pairs, &mut packed_a);
    product(
        kernel,
        dst.view_mut(),
        (operand, &b.words),
        pairs,
        accumulate,
        par,
    );
    PACKED.set((packed_a, spare));
    Ok(())
}

thread_local! {
    /// The packed operands of the products of this thread, reused (grown, never
    /// shrunk). Taken out while a product runs: a thread that, waiting for its own
    /// tiles, runs another product of the pool finds none and packs into new ones.
    static PACKED: std::cell::Cell<(Words, Words)> =
        const { std::cell::Cell::new((Words::new(), Words::new())) };
}

/// `a` packed into `buffer` as `kernel` reads it: rows of pairs for AMX (its tiles load
/// 16 rows' words), panels of [`MR`] rows for the others.
fn pack_operand<'a>(
    kernel: Bf16Kernel,
    a: ArrayView2<'_, f32>,
    pairs: usize,
    buffer: &'a mut Words,
) -> OperandA<'a> {
    if kernel == Bf16Kernel::Amx {
        buffer.resize(a.nrows() * pairs);
        pack_rows(a, pairs, buffer);
        OperandA::Dense {
            words: buffer,
            stride: pairs,
        }
    } else {
        pack_a(a, pairs, buffer);
        OperandA::Packed(buffer)
    }
}

/// Where the tiles find `A`'s words: packed panels, or rows of pairs read in place.
#[derive(Clone, Copy)]
pub(crate) enum OperandA<'a> {
    /// Packed by [`pack_a`] for `pairs` pairs.
    Packed(&'a [u32]),
    /// Row `i` of the product at `words[i * stride..]`, `pairs` words (see [`pack_rows`]).
    Dense { words: &'a [u32], stride: usize },
    /// Row `i` of the product is row `which[i]` of `words`, rows `stride` words apart
    /// (X rounded once: see [`Bf16Rows`]).
    Rows {
        words: &'a [u32],
        stride: usize,
        which: &'a [usize],
    },
}

/// `dst (+)= A B` from `A`'s words and the packed `B`, tile by tile.
fn product(
    kernel: Bf16Kernel,
    mut dst: ArrayViewMut2<'_, f32>,
    (a, packed_b): (OperandA<'_>, &[u32]),
    pairs: usize,
    accumulate: bool,
    par: Par,
) {
    let m = dst.nrows();
    let out = Dst::new(&mut dst, accumulate);
    let rows = match a {
        OperandA::Packed(words) => {
            // (the kernel reads `pairs - q0` pairs of the panel from there)
            assert!(words.len() >= m.div_ceil(MR) * pairs * MR);
            let at = |mp: usize, q0: usize| Packed(words[(mp * pairs + q0) * MR..].as_ptr());
            // (AMX reads rows, never panels: `pack_operand` gives it rows)
            let kernel = match kernel {
                Bf16Kernel::Amx => Bf16Kernel::Avx512,
                kernel => kernel,
            };
            return product_tiles(kernel, out, (at, packed_b), pairs, par);
        }
        OperandA::Dense { words, stride } => {
            assert!(stride >= pairs && m * stride <= words.len());
            WordRows {
                words,
                stride,
                which: None,
            }
        }
        OperandA::Rows {
            words,
            stride,
            which,
        } => {
            assert!(which.len() == m && stride >= pairs);
            assert!(which.iter().all(|&i| (i + 1) * stride <= words.len()));
            WordRows {
                words,
                stride,
                which: Some(which),
            }
        }
    };
    if kernel == Bf16Kernel::Amx {
        return amx::product(out, rows, packed_b, pairs, par);
    }
    let panel = |mp: usize, q0: usize| {
        // a last panel's missing rows repeat its first one (their sums are not written)
        RowMajor(std::array::from_fn(|r| {
            let i = if mp * MR + r < m {
                mp * MR + r
            } else {
                mp * MR
            };
            rows.words[rows.start(i) + q0..].as_ptr()
        }))
    };
    product_tiles(kernel, out, (panel, packed_b), pairs, par)
}

/// Rows of `A` as rows of pairs: row `i` at `words[start(i)..]`.
#[derive(Clone, Copy)]
struct WordRows<'a> {
    words: &'a [u32],
    stride: usize,
    /// Row `i` is row `which[i]` of `words` (else row `i`).
    which: Option<&'a [usize]>,
}

impl WordRows<'_> {
    /// Where row `i` starts in `words`.
    fn start(&self, i: usize) -> usize {
        self.which.map_or(i, |w| w[i]) * self.stride
    }
}

/// The destination of a product, handed out tile by tile to the threads.
#[derive(Clone, Copy)]
struct Dst {
    out: SendPtr<f32>,
    strides: (isize, isize),
    m: usize,
    n: usize,
    accumulate: bool,
}

impl Dst {
    fn new(dst: &mut ArrayViewMut2<'_, f32>, accumulate: bool) -> Self {
        let (m, n) = dst.dim();
        Dst {
            out: SendPtr(dst.as_mut_ptr()),
            strides: (dst.strides()[0], dst.strides()[1]),
            m,
            n,
            accumulate,
        }
    }

    /// The tile of row panel `mp` ([`MR`] rows) and column panel `np` ([`NR`] columns).
    fn tile(&self, mp: usize, np: usize) -> TileOut {
        let (i, j) = ((mp * MR) as isize, (np * NR) as isize);
        TileOut {
            // SAFETY: the tile's first element lies inside `dst` (callers ask only for
            // the tiles of its panels).
            ptr: unsafe {
                self.out
                    .get()
                    .offset(i * self.strides.0 + j * self.strides.1)
            },
            strides: self.strides,
            rows: MR.min(self.m - mp * MR),
            cols: NR.min(self.n - np * NR),
            accumulate: self.accumulate,
        }
    }
}

/// [`product`] with `A`'s panel `mp` from pair `q0` on given by `panel(mp, q0)`.
fn product_tiles<P: Panel>(
    kernel: Bf16Kernel,
    dst: Dst,
    (panel, packed_b): (impl Fn(usize, usize) -> P + Sync, &[u32]),
    pairs: usize,
    par: Par,
) {
    let (m, n) = (dst.m, dst.n);
    let (m_panels, n_panels) = (m.div_ceil(MR), n.div_ceil(NR));
    let strides = dst.strides;
    let groups = m_panels.div_ceil(GROUP);
    let tile_out = |mp: usize, np: usize| dst.tile(mp, np);
    // A task: one panel of B's columns against a group of A's row panels, k-block by
    // k-block, so that each block of B stays in L1 while the group's rows use it. The
    // tiles' partial sums wait in memory between blocks: an exact f32 store and load,
    // so every element still sums its pairs in order (the bits of one long pass).
    let task = |t: usize| {
        let (group, np) = (t % groups, t / groups);
        let panels = group * GROUP..((group + 1) * GROUP).min(m_panels);
        // this thread's tiles, reused: the first block starts its sums from zero, so
        // whatever a tile held before is never read (zeroing 8 KB per task was 3 % of
        // a bfloat16 C1 epoch)
        let mut tiles = TILES
            .take()
            .unwrap_or_else(|| Box::new([[0.0; MR * NR]; GROUP]));
        if pairs == 0 {
            tiles.iter_mut().for_each(|t| t.fill(0.0));
        }
        // the last block's sums go from the kernel straight into a row-major `dst`
        // (through the tile in memory, a 512-bit store read back in pieces, they took
        // ~5 % of a bfloat16 C2 epoch)
        let direct = strides.1 == 1 && pairs > 0;
        for q0 in (0..pairs).step_by(KC) {
            let q1 = (q0 + KC).min(pairs);
            let pb = &packed_b[(np * pairs + q0) * NR..(np * pairs + q1) * NR];
            let cols = NR.min(n - np * NR);
            for (mp, acc) in panels.clone().zip(tiles.iter_mut()) {
                let out = (direct && q1 == pairs).then(|| tile_out(mp, np));
                // (panel and destination by reference: copied by value in 16-byte
                // pieces, they stalled on the 8-byte stores that had just built them)
                let a = (&panel(mp, q0), pb);
                run_kernel(kernel, a, (q1 - q0, q0 == 0), acc, (cols, out.as_ref()));
            }
        }
        if !direct {
            for (mp, acc) in panels.zip(tiles.iter()) {
                // SAFETY: the tile's elements, inside `dst` (by `tile_out`'s bounds),
                // are this task's alone.
                unsafe { tile_out(mp, np).write(acc) };
            }
        }
        TILES.set(Some(tiles));
    };
    let tasks = groups * n_panels;
    match par {
        Par::Rayon if tasks > 1 => (0..tasks).into_par_iter().for_each(task),
        _ => (0..tasks).for_each(task),
    }
}

/// Where a tile's finished sums go: `rows` x `cols` values of `dst` from `ptr`, through
/// its (row, column) strides, added to the values there with `accumulate`. Each tile
/// has its own.
#[derive(Clone, Copy)]
struct TileOut {
    ptr: *mut f32,
    strides: (isize, isize),
    rows: usize,
    cols: usize,
    accumulate: bool,
}

impl TileOut {
    /// The tile `acc`'s sums written out (the portable kernel's way, and any strides).
    ///
    /// # Safety
    /// The elements lie inside `dst`, which nothing else touches meanwhile.
    unsafe fn write(self, acc: &[f32; MR * NR]) {
        let (rs, cs) = self.strides;
        for (r, values) in acc.chunks_exact(NR).take(self.rows).enumerate() {
            // SAFETY (each block): the caller's.
            let first = unsafe { self.ptr.offset(r as isize * rs) };
            if cs == 1 {
                let row = unsafe { std::slice::from_raw_parts_mut(first, self.cols) };
                store(row, &values[..self.cols], self.accumulate);
            } else {
                for (c, &v) in values[..self.cols].iter().enumerate() {
                    let p = unsafe { first.offset(c as isize * cs) };
                    unsafe { *p = if self.accumulate { *p + v } else { v } };
                }
            }
        }
    }

    /// The tile's elements of `dst` into `acc` (zeros past its rows and columns).
    ///
    /// # Safety
    /// As [`TileOut::write`]'s.
    unsafe fn read(self, acc: &mut [f32; MR * NR]) {
        let (rs, cs) = self.strides;
        for (r, values) in acc.chunks_exact_mut(NR).enumerate() {
            values.fill(0.0);
            if r >= self.rows {
                continue;
            }
            for (c, v) in values[..self.cols].iter_mut().enumerate() {
                // SAFETY: the caller's.
                *v = unsafe { *self.ptr.offset(r as isize * rs + c as isize * cs) };
            }
        }
    }
}

thread_local! {
    /// The tiles of a task's group of row panels (see [`product_tiles`]).
    static TILES: std::cell::Cell<Option<Box<[[f32; MR * NR]; GROUP]>>> =
        const { std::cell::Cell::new(None) };
}

/// Pairs of `k` per block (a block of B's panel: 16 KB, in L1)...
const KC: usize = 128;
/// ...and row panels of A per task.
const GROUP: usize = 8;

/// A tile's row into `dst` (added to it with `accumulate`).
#[inline(always)]
fn store(dst: &mut [f32], values: &[f32], accumulate: bool) {
    if accumulate {
        dst.iter_mut().zip(values).for_each(|(d, &v)| *d += v);
    } else {
        dst.copy_from_slice(values);
    }
}

/// `a` (m x k) in panels of [`MR`] rows: panel `p`, pair `q`, row `r` at
/// `(p * pairs + q) * MR + r`, holding `(a[r][2q], a[r][2q + 1])` as bfloat16 (low,
/// high); rows and `k` past the end are zero.
fn pack_a(a: ArrayView2<'_, f32>, pairs: usize, packed: &mut Words) {
    pack_lanes(a, MR, pairs, packed)
}

/// `b` (k x n) in panels of [`NR`] columns: panel `p`, pair `q`, column `c` at
/// `(p * pairs + q) * NR + c`, holding `(b[2q][c], b[2q + 1][c])` as bfloat16: `b^T`
/// packed as `a` is, [`NR`] lanes wide.
fn pack_b(b: ArrayView2<'_, f32>, pairs: usize, packed: &mut Words) {
    pack_lanes(b.t(), NR, pairs, packed)
}

/// `src` (lanes x k) in panels of `width` lanes, pairs of `k` in a word (see
/// [`pack_a`]). Two layouts read contiguously: `k` contiguous within a lane (a
/// row-major `a`), or lanes contiguous for each `k` (a transposed `a`, a row-major `b`).
fn pack_lanes(src: ArrayView2<'_, f32>, width: usize, pairs: usize, packed: &mut Words) {
    packed.resize(src.nrows().div_ceil(width) * pairs * width);
    pack_lanes_into(src, width, pairs, packed)
}

/// Zeros in the lanes past `lanes` of a last, partial panel of `width` lanes (every
/// word of the real lanes is written by the packing: zeroing the whole buffer was 3 %
/// of a bfloat16 C1 epoch as `memset`).
pub(super) fn zero_padding(lanes: usize, width: usize, pairs: usize, packed: &mut [u32]) {
    let panels = lanes.div_ceil(width);
    let used = lanes - (panels.max(1) - 1) * width;
    if panels > 0 && used < width {
        for q in 0..pairs {
            packed[((panels - 1) * pairs + q) * width + used..][..width - used].fill(0);
        }
    }
}

/// [`pack_lanes`] into a buffer of the right size.
fn pack_lanes_into(src: ArrayView2<'_, f32>, width: usize, pairs: usize, packed: &mut [u32]) {
    let (lanes, _) = src.dim();
    let panels = lanes.div_ceil(width);
    assert!(packed.len() == panels * pairs * width);
    zero_padding(lanes, width, pairs, packed);
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: the CPU has the features `pack_avx512` is compiled for.
        unsafe { pack_avx512(src, width, pairs, packed) };
        return;
    }
    pack_body(src, width, pairs, packed);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
unsafe fn pack_avx512(src: ArrayView2<'_, f32>, width: usize, pairs: usize, packed: &mut [u32]) {
    // A row-major `a` in panels of 8 rows: its whole blocks in vectors, the rest below.
    let done = if width.is_multiple_of(8) && src.strides()[1] == 1 {
        // SAFETY: the CPU has the features `rows8::pack` is compiled for.
        unsafe { rows8::pack(src, width, pairs, packed) }
    } else {
        0
    };
    pack_from(src, width, pairs, packed, done)
}

#[inline(always)]
fn pack_body(src: ArrayView2<'_, f32>, width: usize, pairs: usize, packed: &mut [u32]) {
    pack_from(src, width, pairs, packed, 0)
}

/// [`pack_body`] where, in a row-major `src`, the first `done` pairs of every whole
/// panel are already packed.
#[inline(always)]
fn pack_from(
    src: ArrayView2<'_, f32>,
    width: usize,
    pairs: usize,
    packed: &mut [u32],
    done: usize,
) {
    let (lanes, k) = src.dim();
    let word = |lo: f32, hi: f32| u32::from(round(lo)) | (u32::from(round(hi)) << 16);
    if src.strides()[0] == 1 && k > 0 {
        // lanes contiguous for each k: whole panels of words at once
        let column = |j: usize| src.column(j).to_slice();
        for q in 0..pairs {
            let (Some(lo), hi) = (column(2 * q), (2 * q + 1 < k).then(|| column(2 * q + 1))) else {
                return pack_indexed(src, width, pairs, packed);
            };
            for (p, chunk) in lo.chunks(width).enumerate() {
                let out = &mut packed[(p * pairs + q) * width..][..chunk.len()];
                // (whether finite: asked of a packed operand when needed)
                let _ = pair_words(out, chunk, hi.flatten().map(|hi| &hi[p * width..]));
            }
        }
    } else if src.strides()[1] == 1 {
        // k contiguous within a lane: a lane's words in turn
        for i in 0..lanes {
            let (p, r) = (i / width, i % width);
            let row = src.row(i);
            let Some(row) = row.to_slice() else {
                return pack_indexed(src, width, pairs, packed);
            };
            let base = p * pairs * width + r;
            let first = if (p + 1) * width <= lanes { done } else { 0 };
            let mut pairs_of = row[2 * first..].chunks_exact(2);
            for (q, pair) in (first..).zip(&mut pairs_of) {
                packed[base + q * width] = word(pair[0], pair[1]);
            }
            if let [last] = pairs_of.remainder() {
                packed[base + (pairs - 1) * width] = word(*last, 0.0);
            }
        }
    } else {
        pack_indexed(src, width, pairs, packed)
    }
}

/// The words of one pair of `k` for consecutive lanes: `lo` rounded in the low halves,
/// `hi` (the next `k`, none past an odd `k`'s end) in the high halves. Returns whether
/// every half is finite.
#[inline(always)]
fn pair_words(out: &mut [u32], lo: &[f32], hi: Option<&[f32]>) -> bool {
    // (checked on the rounded halves: a finite f32 near the largest rounds to infinity)
    let inf = |h: u16| u8::from(not_finite(h));
    let mut bad = 0;
    match hi {
        Some(hi) => {
            for ((o, &l), &h) in out.iter_mut().zip(lo).zip(&hi[..lo.len()]) {
                let (l, h) = (round(l), round(h));
                bad |= inf(l) | inf(h);
                *o = u32::from(l) | (u32::from(h) << 16);
            }
        }
        None => {
            for (o, &l) in out.iter_mut().zip(lo) {
                let l = round(l);
                bad |= inf(l);
                *o = u32::from(l);
            }
        }
    }
    bad == 0
}

/// Packing of row-major lanes (an `a`, or the `W^T` of an error product) on AVX-512:
/// blocks of 8 rows x 8 pairs, each row's 16 values rounded at once (the bits of
/// [`round`], NaN included) and the block transposed into the panel's layout. The
/// scalar loop took a quarter of a bfloat16 C1 epoch (`a`), and ~3 % of a C2 epoch
/// (`W^T`, 32 lanes wide).
#[cfg(target_arch = "x86_64")]
mod rows8 {
    use super::ArrayView2;
    use std::arch::x86_64::*;

    /// Packs the whole 8 x 8 blocks of `src` (rows x k, rows contiguous) into `packed`
    /// in panels of `width` lanes (a multiple of 8; laid out as `pack_lanes` says);
    /// returns the pairs done in each whole panel (0 when a row is not contiguous).
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VL and AVX2; `packed` holds the panels of `src`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    pub(super) unsafe fn pack(
        src: ArrayView2<'_, f32>,
        width: usize,
        pairs: usize,
        packed: &mut [u32],
    ) -> usize {
        let (lanes, k) = src.dim();
        // pairs with both values, in whole blocks of 8
        let blocks = k / 16;
        let rows: Option<Vec<&[f32]>> = src.rows().into_iter().map(|r| r.to_slice()).collect();
        let Some(rows) = rows else { return 0 };
        assert!(width.is_multiple_of(8) && packed.len() >= lanes.div_ceil(width) * pairs * width);
        // each whole panel as blocks of 8 of its lanes (a panel of `b`, 32 lanes wide,
        // as four)
        for (p, eighth) in (0..lanes / width).flat_map(|p| (0..width / 8).map(move |e| (p, e))) {
            let first = p * width + 8 * eighth;
            let panel = &rows[first..first + 8];
            for b in 0..blocks {
                // SAFETY: each row holds k >= 16 (b + 1) values; the panel's words
                // for pairs 8b..8b + 8, lanes 8 eighth.. + 8, lie inside `packed`
                // (asserted above).
                unsafe {
                    let w: [__m256i; 8] =
                        std::array::from_fn(|r| round16(panel[r].as_ptr().add(16 * b)));
                    let out = packed
                        .as_mut_ptr()
                        .add((p * pairs + 8 * b) * width + 8 * eighth);
                    for (q, v) in transpose(w).into_iter().enumerate() {
                        _mm256_storeu_si256(out.add(q * width).cast(), v);
                    }
                }
            }
        }
        8 * blocks
    }

    /// Rows of `src` (rows x k, rows contiguous) rounded into rows of `pairs` words in
    /// `dst`, 16 values at a time; returns the pairs done in every row (0 when a row
    /// is not contiguous).
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW and AVX2; `dst` holds `rows * pairs` words.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) unsafe fn round_rows(
        src: ArrayView2<'_, f32>,
        pairs: usize,
        dst: &mut [u32],
    ) -> usize {
        let (n, k) = src.dim();
        let blocks = k / 16;
        assert!(dst.len() >= n * pairs);
        if src.strides()[1] != 1 && k > 1 {
            return 0;
        }
        for (i, row) in src.rows().into_iter().enumerate() {
            let row = row.as_ptr();
            for b in 0..blocks {
                // SAFETY: the row holds k >= 16 (b + 1) values (contiguous, checked
                // above); its words 8b..8b + 8 lie inside `dst` (asserted above).
                unsafe {
                    let words = round16(row.add(16 * b));
                    _mm256_storeu_si256(dst.as_mut_ptr().add(i * pairs + 8 * b).cast(), words);
                }
            }
        }
        8 * blocks
    }

    /// 16 values at `x` rounded to bfloat16 as [`super::round`] does, in order: 8
    /// words of (even, odd) pairs.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn round16(x: *const f32) -> __m256i {
        // SAFETY: the caller's: 16 values at `x`.
        let bits = unsafe { _mm512_loadu_si512(x.cast()) };
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let biased = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb);
        let rounded = _mm512_srli_epi32::<16>(biased);
        let magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFF_FFFF));
        let nan = _mm512_cmpgt_epu32_mask(magnitude, _mm512_set1_epi32(0x7F80_0000));
        let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(0x40));
        _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet))
    }

    /// 16 values at `x` rounded as [`round16`] rounds them, each in the low half of a
    /// 32-bit lane (the high half zero).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn round16_wide(x: *const f32) -> __m512i {
        // SAFETY: the caller's: 16 values at `x`.
        unsafe { _mm512_cvtepu16_epi32(round16(x)) }
    }

    /// Rows of pairs ([`super::pack_rows`]'s layout) of a `src` whose lanes are
    /// contiguous (a transposed matrix, e.g. the activations of a weight gradient):
    /// whole blocks of 16 lanes x 16 pairs rounded and transposed in registers (the
    /// scalar loop took a tenth of a bfloat16 C2 epoch on AMX). Returns the lanes and
    /// the pairs done: every pair of the lanes done, every lane of the pairs done.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW; `dst` holds `lanes * pairs` words.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn transpose_rows(
        src: ArrayView2<'_, f32>,
        pairs: usize,
        dst: &mut [u32],
    ) -> (usize, usize) {
        let (lanes, k) = src.dim();
        if src.strides()[0] != 1 {
            return (0, 0);
        }
        let (lane_blocks, pair_blocks) = (lanes / 16, k / 32);
        assert!(dst.len() >= lanes * pairs && pairs >= 16 * pair_blocks);
        let (base, step) = (src.as_ptr(), src.strides()[1]);
        for qb in 0..pair_blocks {
            for jb in 0..lane_blocks {
                let words: [__m512i; 16] = std::array::from_fn(|t| {
                    let column = (2 * (16 * qb + t)) as isize * step;
                    // SAFETY: lanes 16 jb.. + 16 of columns 2q and 2q + 1 (< k), each
                    // column's lanes contiguous.
                    unsafe {
                        let at = base.offset(column).add(16 * jb);
                        let hi = round16_wide(at.offset(step));
                        _mm512_or_si512(round16_wide(at), _mm512_slli_epi32::<16>(hi))
                    }
                });
                for (j, row) in transpose16(words).into_iter().enumerate() {
                    let at = (16 * jb + j) * pairs + 16 * qb;
                    // SAFETY: inside `dst` (asserted above).
                    unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(at).cast(), row) };
                }
            }
        }
        (16 * lane_blocks, 16 * pair_blocks)
    }

    /// The 16 x 16 words of `v` (row `i` in `v[i]`) transposed: 32-bit and 64-bit
    /// interleaves within 128-bit lanes, then two rounds of 128-bit lane shuffles.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn transpose16(v: [__m512i; 16]) -> [__m512i; 16] {
        let t: [__m512i; 16] = std::array::from_fn(|i| match i % 2 {
            0 => _mm512_unpacklo_epi32(v[i], v[i + 1]),
            _ => _mm512_unpackhi_epi32(v[i - 1], v[i]),
        });
        // u[4 i + c], lane l: column 4 l + c of rows 4 i..4 i + 4
        let u: [__m512i; 16] = std::array::from_fn(|i| {
            let (base, c) = (i - i % 4, i % 4);
            let (x, y) = (t[base + c / 2], t[base + 2 + c / 2]);
            match c % 2 {
                0 => _mm512_unpacklo_epi64(x, y),
                _ => _mm512_unpackhi_epi64(x, y),
            }
        });
        // row 4 l + c of the result: lane l of u[c], u[4 + c], u[8 + c], u[12 + c]
        std::array::from_fn(|r| {
            let (l, c) = (r / 4, r % 4);
            let (w0, w1) = match l / 2 {
                0 => (
                    _mm512_shuffle_i32x4::<0x44>(u[c], u[4 + c]),
                    _mm512_shuffle_i32x4::<0x44>(u[8 + c], u[12 + c]),
                ),
                _ => (
                    _mm512_shuffle_i32x4::<0xEE>(u[c], u[4 + c]),
                    _mm512_shuffle_i32x4::<0xEE>(u[8 + c], u[12 + c]),
                ),
            };
            match l % 2 {
                0 => _mm512_shuffle_i32x4::<0x88>(w0, w1),
                _ => _mm512_shuffle_i32x4::<0xDD>(w0, w1),
            }
        })
    }

    /// The 8 x 8 words of `r` (row `i` in `r[i]`) transposed.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose(r: [__m256i; 8]) -> [__m256i; 8] {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        [
            _mm256_permute2x128_si256::<0x20>(u0, u4),
            _mm256_permute2x128_si256::<0x20>(u1, u5),
            _mm256_permute2x128_si256::<0x20>(u2, u6),
            _mm256_permute2x128_si256::<0x20>(u3, u7),
            _mm256_permute2x128_si256::<0x31>(u0, u4),
            _mm256_permute2x128_si256::<0x31>(u1, u5),
            _mm256_permute2x128_si256::<0x31>(u2, u6),
            _mm256_permute2x128_si256::<0x31>(u3, u7),
        ]
    }
}

/// `src` (rows x k) as rows of pairs, row `i`'s pair `q` at `i * pairs + q`: [`pack_a`]'s
/// words in panels of one row.
fn pack_rows(src: ArrayView2<'_, f32>, pairs: usize, dst: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: the CPU has the features `pack_rows_avx512` is compiled for.
        unsafe { pack_rows_avx512(src, pairs, dst) };
        return;
    }
    pack_from(src, 1, pairs, dst, 0)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
unsafe fn pack_rows_avx512(src: ArrayView2<'_, f32>, pairs: usize, dst: &mut [u32]) {
    let (lanes, k) = src.dim();
    if src.strides()[0] == 1 && lanes > 1 && k > 1 {
        // SAFETY: the CPU has the features `rows8::transpose_rows` is compiled for.
        let (lanes_done, pairs_done) = unsafe { rows8::transpose_rows(src, pairs, dst) };
        let word = |j: usize, q: usize| {
            let hi = if 2 * q + 1 < k {
                src[[j, 2 * q + 1]]
            } else {
                0.0
            };
            u32::from(round(src[[j, 2 * q]])) | (u32::from(round(hi)) << 16)
        };
        for q in 0..pairs {
            let first = if q < pairs_done { lanes_done } else { 0 };
            for j in first..lanes {
                dst[j * pairs + q] = word(j, q);
            }
        }
        return;
    }
    // SAFETY: the CPU has the features `rows8::round_rows` is compiled for.
    let done = unsafe { rows8::round_rows(src, pairs, dst) };
    pack_from(src, 1, pairs, dst, done)
}

/// Any layout, element by element.
fn pack_indexed(src: ArrayView2<'_, f32>, width: usize, pairs: usize, packed: &mut [u32]) {
    let (lanes, k) = src.dim();
    for i in 0..lanes {
        let (p, r) = (i / width, i % width);
        for q in 0..pairs {
            let lo = round(src[[i, 2 * q]]);
            let hi = if 2 * q + 1 < k {
                round(src[[i, 2 * q + 1]])
            } else {
                0
            };
            packed[(p * pairs + q) * width + r] = u32::from(lo) | (u32::from(hi) << 16);
        }
    }
}

/// Where a tile reads `A`'s words: row `r`'s pair `q` of one panel, counted from the
/// tile's first pair.
///
/// # Safety
/// An implementor is valid for the `MR` rows and the pairs the tile runs over.
pub(crate) trait Panel: Copy {
    /// Row `r`'s pair `q`.
    ///
    /// # Safety
    /// `r < MR` and `q` below the pairs the panel was made for.
    unsafe fn word(self, q: usize, r: usize) -> u32;
}

/// A panel packed by [`pack_a`]: the `MR` rows' words of a pair side by side.
#[derive(Clone, Copy)]
pub(crate) struct Packed(*const u32);

impl Panel for Packed {
    #[inline(always)]
    unsafe fn word(self, q: usize, r: usize) -> u32 {
        // SAFETY: the caller's.
        unsafe { *self.0.add(q * MR + r) }
    }
}

/// `MR` rows of words read where they lie (rows of pairs, e.g. X rounded once).
#[derive(Clone, Copy)]
pub(crate) struct RowMajor([*const u32; MR]);

impl Panel for RowMajor {
    #[inline(always)]
    unsafe fn word(self, q: usize, r: usize) -> u32 {
        // SAFETY: the caller's.
        unsafe { *self.0[r].add(q) }
    }
}

/// One tile's sums over `pairs` pairs of `k`, on `kernel`: continued from `acc`, or
/// from zero when `fresh` (`acc`'s values are then ignored); only the first `cols`
/// columns of the tile are wanted. They are left in `acc`, or with `out` written there
/// (and `acc` left stale).
fn run_kernel<P: Panel>(
    kernel: Bf16Kernel,
    (a, b): (&P, &[u32]),
    (pairs, fresh): (usize, bool),
    acc: &mut [f32; MR * NR],
    (cols, out): (usize, Option<&TileOut>),
) {
    #[cfg(target_arch = "x86_64")]
    if kernel == Bf16Kernel::Avx512 {
        // SAFETY: the CPU has AVX-512 F and BF16 (checked by `matmul_with`); the panels
        // hold `pairs * MR` and `pairs * NR` words; `out`'s elements are the tile's own.
        unsafe {
            if cols <= NR / 4 {
                avx512::tile8(a, b, (pairs, fresh), acc, out);
            } else if cols <= NR / 2 {
                avx512::tile::<1, P>(a, b, (pairs, fresh), acc, out);
            } else {
                avx512::tile::<2, P>(a, b, (pairs, fresh), acc, out);
            }
        }
        return;
    }
    let _ = (kernel, cols);
    if fresh {
        acc.fill(0.0);
    }
    portable_tile(a, b, pairs, acc);
    if let Some(out) = out {
        // SAFETY: `out`'s elements are the tile's own (`product_tiles`).
        unsafe { out.write(acc) };
    }
}

/// A denormal flushed to (signed) zero, as `vdpbf16ps` does with its inputs and
/// results.
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0_f32.copysign(x)
    } else {
        x
    }
}

/// The tile of `vdpbf16ps`'s arithmetic, one f32 lane per output element.
fn portable_tile<P: Panel>(a: &P, b: &[u32], pairs: usize, acc: &mut [f32; MR * NR]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: the CPU has the features `portable_avx512` is compiled for.
        unsafe { portable_avx512(a, b, pairs, acc) };
        return;
    }
    portable_body(a, b, pairs, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn portable_avx512<P: Panel>(a: &P, b: &[u32], pairs: usize, acc: &mut [f32; MR * NR]) {
    portable_body(a, b, pairs, acc)
}

#[inline(always)]
fn portable_body<P: Panel>(a: &P, b: &[u32], pairs: usize, acc: &mut [f32; MR * NR]) {
    for q in 0..pairs {
        // each pair of `b` widened (and flushed) once for the tile's rows
        let mut b0 = [0.0_f32; NR];
        let mut b1 = [0.0_f32; NR];
        for ((lo, hi), &bw) in b0
            .iter_mut()
            .zip(b1.iter_mut())
            .zip(&b[q * NR..(q + 1) * NR])
        {
            *lo = flush(widen(bw as u16));
            *hi = flush(widen((bw >> 16) as u16));
        }
        for r in 0..MR {
            // SAFETY: the panel holds `pairs` pairs of `MR` rows (`run_kernel`'s caller).
            let word = unsafe { a.word(q, r) };
            let a0 = flush(widen(word as u16));
            let a1 = flush(widen((word >> 16) as u16));
            let out = &mut acc[r * NR..(r + 1) * NR];
            for ((o, &lo), &hi) in out.iter_mut().zip(&b0).zip(&b1) {
                // (a * b is exact for bfloat16 operands: the sums alone round)
                let s = flush(*o + a1 * hi);
                *o = flush(s + a0 * lo);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Panel, TileOut, MR, NR};
    use crate::register::store;
    use std::arch::x86_64::*;

    /// One tile on `vdpbf16ps`: MR x 16 `REGS` accumulators (MR x `REGS` registers)
    /// continuing from `out`, each pair of `k` one instruction per register. `REGS` is
    /// 2 (the NR columns), or 1 for a last panel of at most 16 columns (C1's 100 columns
    /// end in a panel of 4: half the work of a whole tile is skipped).
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BF16; `a` holds `pairs * MR` words, `b` `pairs * NR`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile<const REGS: usize, P: Panel>(
        a: &P,
        b: &[u32],
        (pairs, fresh): (usize, bool),
        out: &mut [f32; MR * NR],
        direct: Option<&TileOut>,
    ) {
        debug_assert!(b.len() >= pairs * NR && REGS * 16 <= NR);
        // continuing the sums in `out` (blocks of k follow one another), or from zero
        let o = out.as_ptr();
        // SAFETY: `out` holds MR x NR values.
        let mut acc: [[__m512; REGS]; MR] = std::array::from_fn(|r| {
            std::array::from_fn(|h| {
                if fresh {
                    _mm512_setzero_ps()
                } else {
                    unsafe { _mm512_loadu_ps(o.add(r * NR + 16 * h)) }
                }
            })
        });
        let b = b.as_ptr();
        for q in 0..pairs {
            // SAFETY: within the panels (see above).
            let bv: [__m512bh; REGS] = std::array::from_fn(|h| unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    b.add(q * NR + 16 * h).cast(),
                ))
            });
            for (r, row) in acc.iter_mut().enumerate() {
                // SAFETY: within the panel.
                let word = unsafe { a.word(q, r) };
                let av = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(word as i32));
                for (v, &bh) in row.iter_mut().zip(&bv) {
                    *v = _mm512_dpbf16_ps(*v, av, bh);
                }
            }
        }
        match direct {
            // SAFETY: the caller's: `d`'s elements are the tile's.
            Some(d) => unsafe { write(&acc, d) },
            None => {
                for (r, row) in acc.iter().enumerate() {
                    for (h, &v) in row.iter().enumerate() {
                        // SAFETY: `out` holds MR x NR values.
                        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(r * NR + 16 * h), v) };
                    }
                }
            }
        }
    }

    /// [`tile`] for a last panel of at most 8 columns, on 256-bit registers: on Zen 4 a
    /// 512-bit `vdpbf16ps` is two 256-bit halves, so the 8 columns cost half of
    /// `tile::<1>`'s 16 (C1's 100 columns end in a panel of 4). The same sums, lane by
    /// lane.
    ///
    /// # Safety
    /// As [`tile`]'s, and the CPU has AVX-512 VL.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    pub(super) unsafe fn tile8<P: Panel>(
        a: &P,
        b: &[u32],
        (pairs, fresh): (usize, bool),
        out: &mut [f32; MR * NR],
        direct: Option<&TileOut>,
    ) {
        debug_assert!(b.len() >= pairs * NR);
        let o = out.as_ptr();
        // SAFETY: `out` holds MR x NR values.
        let mut acc: [__m256; MR] = std::array::from_fn(|r| {
            if fresh {
                _mm256_setzero_ps()
            } else {
                unsafe { _mm256_loadu_ps(o.add(r * NR)) }
            }
        });
        let b = b.as_ptr();
        for q in 0..pairs {
            // SAFETY: within the panels (see above).
            let bv = unsafe {
                std::mem::transmute::<__m256i, __m256bh>(_mm256_loadu_si256(b.add(q * NR).cast()))
            };
            for (r, v) in acc.iter_mut().enumerate() {
                // SAFETY: within the panel.
                let word = unsafe { a.word(q, r) };
                let av = std::mem::transmute::<__m256i, __m256bh>(_mm256_set1_epi32(word as i32));
                *v = _mm256_dpbf16_ps(*v, av, bv);
            }
        }
        for (r, &v) in acc.iter().enumerate() {
            match direct {
                Some(d) if r < d.rows => {
                    // SAFETY: the caller's: the row's first `cols` values are the tile's.
                    unsafe {
                        let p = d.ptr.offset(r as isize * d.strides.0);
                        store(p, v, d.cols.min(8), d.accumulate);
                    }
                }
                Some(_) => {}
                // SAFETY: `out` holds MR x NR values.
                None => unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(r * NR), v) },
            }
        }
    }

    /// A tile's sums into `d` (added to what is there with `d.accumulate`: `dst + v`,
    /// the operands in the order of [`super::store`], so NaNs keep the same payload).
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `d`'s rows x cols elements are the caller's to write, its
    /// columns contiguous.
    #[inline(always)]
    unsafe fn write<const REGS: usize>(acc: &[[__m512; REGS]; MR], d: &TileOut) {
        for (r, row) in acc.iter().enumerate().take(d.rows) {
            for (h, &v) in row.iter().enumerate() {
                let lanes = d.cols.saturating_sub(16 * h).min(16);
                if lanes == 0 {
                    continue;
                }
                // SAFETY: the caller's: the row's columns from 16 h are the tile's.
                unsafe {
                    let p = d.ptr.offset(r as isize * d.strides.0).add(16 * h);
                    store(p, v, lanes, d.accumulate);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn filled(r: usize, c: usize, seed: f32) -> Array2<f32> {
        Array2::from_shape_fn((r, c), |(i, j)| ((i * 31 + j * 17) as f32 * seed).sin())
    }

    /// The zero-skipping products ask whether `B` is finite once per packing, and again
    /// after the optimizer's repacking in place.
    #[test]
    fn finiteness_is_asked_again_after_a_repacking() {
        let mut b = filled(6, 40, 0.3);
        let mut packed = PackedB::default();
        packed.repack(b.view());
        assert!(packed.all_finite());
        b[[2, 5]] = f32::NAN;
        let target = packed.target((6, 40)).unwrap();
        // SAFETY (each): the buffer lives and nothing else touches it.
        unsafe { target.rows(b.view(), 0) };
        assert!(!packed.all_finite());
        // the chunk holding the NaN repacked finite: asked again, finite
        b[[2, 5]] = 3.0;
        let target = packed.target((6, 40)).unwrap();
        unsafe { target.rows(b.slice(ndarray::s![2..4, ..]), 2) };
        assert!(packed.all_finite());
        // a finite value that rounds to an infinite bfloat16, repacked alone
        b[[4, 0]] = f32::MAX;
        let target = packed.target((6, 40)).unwrap();
        unsafe { target.rows(b.slice(ndarray::s![4.., ..]), 4) };
        assert!(!packed.all_finite());
        b[[2, 5]] = f32::INFINITY;
        packed.repack(b.view());
        assert!(!packed.all_finite());
        (b[[2, 5]], b[[4, 0]]) = (1.0, 2.0);
        packed.repack(b.view());
        assert!(packed.all_finite());
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(round(1.0), 0x3F80);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even 1.0
        assert_eq!(round(1.0 + 1.0 / 256.0), 0x3F80);
        // just above the tie rounds up
        assert_eq!(round(f32::from_bits(0x3F80_8001)), 0x3F81);
        // 1 + 3 * 2^-8 ties to the even 1 + 2^-6
        assert_eq!(round(f32::from_bits(0x3F81_8000)), 0x3F82);
        assert!(widen(round(f32::NAN)).is_nan());
        assert_eq!(widen(round(f32::INFINITY)), f32::INFINITY);
        assert_eq!(widen(round(-2.5)), -2.5);
    }

    /// `got` within the bound of f32 sums of a float64 reference of `a b` with the
    /// operands rounded to bfloat16 (exact products: only the sums differ).
    fn assert_near_reference(got: &Array2<f32>, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) {
        let ((m, k), n) = (a.dim(), b.ncols());
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|p| {
                        f64::from(widen(round(a[[i, p]]))) * f64::from(widen(round(b[[p, j]])))
                    })
                    .sum();
                let bound = 1e-6 * (k as f64) * (1.0 + exact.abs());
                let diff = (f64::from(got[[i, j]]) - exact).abs();
                assert!(diff <= bound, "({m},{n},{k}) [{i},{j}]: {diff} > {bound}");
            }
        }
    }

    /// The portable kernel against a float64 reference with the operands rounded to
    /// bfloat16: exact products, so only the f32 sums differ (a tight bound).
    #[test]
    fn portable_matches_a_rounded_reference() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 64),
            (100, 10, 784),
            (9, 40, 3),
        ] {
            let a = filled(m, k, 0.37);
            let b = filled(k, n, 0.11);
            let mut got = Array2::from_elem((m, n), f32::NAN);
            matmul_with(
                Bf16Kernel::Portable,
                got.view_mut(),
                a.view(),
                b.view(),
                false,
                Par::Sequential,
            )
            .unwrap();
            assert_near_reference(&got, a.view(), b.view());
            let mut twice = got.clone();
            matmul_with(
                Bf16Kernel::Portable,
                twice.view_mut(),
                a.view(),
                b.view(),
                true,
                Par::Sequential,
            )
            .unwrap();
            assert_eq!(twice, &got + &got);
        }
    }

    /// Every packing path gives the words of the element-by-element one: rows of 8 and
    /// other widths, partial panels and blocks, odd `k`, and the values where rounding
    /// is delicate (ties, NaN, infinities, denormals, the largest finite values).
    #[test]
    fn packing_paths_agree_with_the_plain_one() {
        let special = [
            f32::NAN,
            -f32::NAN,
            // signalling NaNs whose payload lies in the bits that rounding drops
            f32::from_bits(0x7F80_0001),
            f32::from_bits(0xFF80_0001),
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::from_bits(1),
            -f32::MIN_POSITIVE / 3.0,
            1.0 + 1.0 / 256.0,
            f32::from_bits(0x3F81_8000),
            -0.0,
        ];
        for &(lanes, k) in &[
            (8, 16),
            (16, 32),
            (13, 37),
            (8, 15),
            (24, 784),
            (3, 40),
            (17, 1),
            // whole panels of `b` (32 lanes) and a partial one after them
            (32, 40),
            (70, 33),
            // whole 16 x 16 blocks of a transposed matrix and partial ones around them
            (48, 64),
            (37, 70),
        ] {
            let mut src = filled(lanes, k, 0.29);
            for (i, v) in src.iter_mut().enumerate().step_by(7) {
                *v = special[i % special.len()];
            }
            let pairs = k.div_ceil(2);
            for width in [MR, NR] {
                let mut want = vec![0; lanes.div_ceil(width) * pairs * width];
                pack_indexed(src.view(), width, pairs, &mut want);
                // a reused buffer full of stale words: every word must be rewritten
                let mut got = Words::new();
                got.resize(want.len() + 5);
                got.fill(u32::MAX);
                pack_lanes(src.view(), width, pairs, &mut got);
                assert_eq!(&got[..], &want[..], "rows ({lanes}, {k}) width {width}");
                got.fill(u32::MAX);
                let transposed = src.t().as_standard_layout().into_owned();
                pack_lanes(transposed.t(), width, pairs, &mut got);
                assert_eq!(&got[..], &want[..], "columns ({lanes}, {k}) width {width}");
                assert_eq!(got.as_ptr() as usize % 64, 0, "aligned");
            }
            // rows of pairs (AMX's `A`), from rows and from columns (transposed blocks)
            let mut want = vec![0; lanes * pairs];
            pack_indexed(src.view(), 1, pairs, &mut want);
            let transposed = src.t().as_standard_layout().into_owned();
            for (view, how) in [(src.view(), "rows"), (transposed.t(), "columns")] {
                let mut got = vec![u32::MAX; want.len()];
                pack_rows(view, pairs, &mut got);
                assert_eq!(got, want, "pack_rows {how} ({lanes}, {k})");
            }
        }
    }

    /// Transposed views, threads: the same bits; and the AVX512-BF16 kernel equals the
    /// portable one bit for bit where the CPU has it.
    #[test]
    fn kernels_threads_and_layouts_agree() {
        for &(m, n, k) in &[(128, 100, 784), (31, 70, 33), (8, 32, 2)] {
            let a = filled(m, k, 0.23);
            let b = filled(k, n, 0.41);
            let reference = run(Bf16Kernel::Portable, a.view(), b.view(), Par::Sequential);
            if has_avx512_bf16() {
                let simd = run(Bf16Kernel::Avx512, a.view(), b.view(), Par::Sequential);
                assert_eq!(simd, reference);
            }
            for kernel in [Bf16Kernel::Portable, Bf16Kernel::best()] {
                let own = run(kernel, a.view(), b.view(), Par::Sequential);
                let added = layouts_and_threads_agree(kernel, a.view(), b.view(), &own);
                if kernel != Bf16Kernel::Amx {
                    // the sums first, then added to the destination
                    assert_eq!(added, own.mapv(|v| 0.5 + v), "{kernel:?}");
                }
            }
        }
    }

    fn run(
        kernel: Bf16Kernel,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        par: Par,
    ) -> Array2<f32> {
        let mut out = Array2::zeros((a.nrows(), b.ncols()));
        matmul_with(kernel, out.view_mut(), a, b, false, par).unwrap();
        out
    }

    /// `kernel`'s product of `a` and `b` added to a destination of 0.5s, on one thread.
    fn run_added(
        kernel: Bf16Kernel,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
    ) -> Array2<f32> {
        let mut out = Array2::from_elem((a.nrows(), b.ncols()), 0.5_f32);
        matmul_with(kernel, out.view_mut(), a, b, true, Par::Sequential).unwrap();
        out
    }

    /// `kernel`'s product `want` of `a` and `b` again from a transposed `a` and on 3
    /// threads, and added to a row-major and to a transposed destination: the same bits.
    /// Returns the sums added to 0.5.
    fn layouts_and_threads_agree(
        kernel: Bf16Kernel,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        want: &Array2<f32>,
    ) -> Array2<f32> {
        let (m, n) = want.dim();
        let seq = Par::Sequential;
        let at = a.t().as_standard_layout().into_owned();
        assert_eq!(run(kernel, at.t(), b, seq), want, "{kernel:?} A^T");
        let threaded = crate::parallel::with_threads(3, |par| run(kernel, a, b, par)).unwrap();
        assert_eq!(&threaded, want, "{kernel:?} threads");
        let added = run_added(kernel, a, b);
        // a transposed destination (its tiles written element by element), added to
        let mut out_t = Array2::from_elem((n, m), 0.5_f32);
        let dst = out_t.view_mut().reversed_axes();
        matmul_with(kernel, dst, a, b, true, seq).unwrap();
        assert_eq!(out_t.t(), added, "{kernel:?} dst^T");
        // rows in reverse (a negative row stride)
        let mut reversed = Array2::from_elem((m, n), 0.5_f32);
        let dst = reversed.slice_mut(ndarray::s![..;-1, ..]);
        matmul_with(kernel, dst, a, b, true, seq).unwrap();
        assert_eq!(
            reversed.slice(ndarray::s![..;-1, ..]),
            added,
            "{kernel:?} rows reversed"
        );
        let threaded = crate::parallel::with_threads(3, |par| {
            let mut out = Array2::from_elem((m, n), 0.5_f32);
            matmul_with(kernel, out.view_mut(), a, b, true, par).unwrap();
            out
        });
        assert_eq!(threaded.unwrap(), added, "{kernel:?} threads, added to");
        added
    }

    /// AMX, where the CPU has it: a last block of at most 16 rows, which takes half the
    /// tiles, gives its rows the bits they have in a whole block (with and without a
    /// narrow last panel; sums started from zero and added to the destination).
    #[test]
    fn amx_short_blocks_match_whole_ones() {
        if Bf16Kernel::Amx.or_below() != Bf16Kernel::Amx {
            return;
        }
        for &(n, k) in &[(100, 784), (10, 100), (48, 33)] {
            let a = filled(64, k, 0.29);
            let b = filled(k, n, 0.17);
            let whole = run(Bf16Kernel::Amx, a.view(), b.view(), Par::Sequential);
            let whole_added = run_added(Bf16Kernel::Amx, a.view(), b.view());
            for live in [1, 4, 16, 17] {
                let rows = ndarray::s![..32 + live, ..];
                let short = run(Bf16Kernel::Amx, a.slice(rows), b.view(), Par::Sequential);
                assert_eq!(short, whole.slice(rows), "{n} x {k}, {live} rows");
                let added = run_added(Bf16Kernel::Amx, a.slice(rows), b.view());
                let want = whole_added.slice(rows);
                assert_eq!(added, want, "{n} x {k}, {live} rows, added");
            }
        }
    }

    /// AMX, where the CPU has it: within the bound of the f32 sums of the rounded
    /// operands (as the portable kernel, whose bits it does not share), on shapes with
    /// whole and partial blocks of rows, columns and steps of `k` (and `k` < one step);
    /// the same bits for transposed operands, destinations and threads.
    #[test]
    fn amx_matches_a_rounded_reference() {
        if Bf16Kernel::Amx.or_below() != Bf16Kernel::Amx {
            return;
        }
        for &(m, n, k) in &[
            (128, 100, 784),
            (31, 70, 33),
            (8, 32, 2),
            (64, 64, 64),
            (33, 17, 100),
            (200, 10, 5),
        ] {
            let a = filled(m, k, 0.37);
            let b = filled(k, n, 0.11);
            let got = run(Bf16Kernel::Amx, a.view(), b.view(), Par::Sequential);
            assert_near_reference(&got, a.view(), b.view());
            // added to the destination: the sums continue from its values
            let added = layouts_and_threads_agree(Bf16Kernel::Amx, a.view(), b.view(), &got);
            for (&sum, &plain) in added.iter().zip(&got) {
                let bound = 1e-6 * (k as f64) * (1.5 + f64::from(plain).abs());
                assert!((f64::from(sum) - 0.5 - f64::from(plain)).abs() <= bound);
            }
        }
    }
}
