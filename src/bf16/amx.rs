//! The AMX kernel of the bfloat16 products (`tdpbf16ps`; Intel Xeon from the 4th
//! generation on, CPU flag `amx_bf16`).
//!
//! A block of 32 rows x 32 columns of `dst` lives in four tiles of 16 x 16 f32 sums
//! (tmm0-3) while its `k` goes by in steps of 16 pairs: two tiles of `A` (tmm4-5, 16
//! rows x 16 pairs each, the block's rows of pairs copied step by step) and two of `B`
//! (tmm6-7), loaded straight from [`super::pack_b`]'s panels: a pair's 32 columns
//! there are the two tiles' rows side by side, the layout `tdpbf16ps` takes for `B`.
//! A last block of at most 16 rows, or a last panel of at most 16 columns, runs on half
//! the tiles (a quarter when both), the same sums for the rows and columns it has.
//! The last `pairs % 16` pairs are a step padded with zeros (a second tile
//! configuration would clear the sums; `vdpbf16ps` for them took a third of the AMX
//! time of a C1 epoch). A whole block of a row-major `dst` is loaded into (when the
//! product adds to it) and stored from the tiles in place.
//!
//! Stable Rust has no AMX intrinsics: the instructions are written with `asm!`
//! (tract-linalg does the same). Linux gives a process the tile state only when it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); a task configures the tiles
//! on its thread and releases them when done, so idle threads carry no tile state.
//!
//! Bits: each output element sums its pairs in order, 16 pairs a step, continuing from
//! `dst`'s value when the product adds to it, whatever thread computes its block, so
//! results do not depend on the number of threads. How one `tdpbf16ps` sums its 32
//! products into an element is AMX's own: not `vdpbf16ps`'s pair-by-pair rounding (nor
//! an exact sum rounded once, which matched 89 % of 2,000 dot products of 64 bfloat16
//! pairs), so results differ from the other two kernels' in the last bits.

use super::{Dst, TileOut, WordRows, MR, NR};
use crate::parallel::Par;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::OnceLock;

/// Rows of a block of `dst`: two tiles of 16.
const MB: usize = 32;
/// Pairs of `k` per step: a tile row of 16 words (64 bytes).
const KT: usize = 16;

/// Whether products run on AMX: the CPU has it, the OS grants the tile state, and
/// `MLP_RS_CPU` does not name a level without it (`avx512`, `avx2`, `baseline`). Asked
/// once per process.
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let variable = std::env::var(crate::simd::LEVEL_VARIABLE);
        let lowered = matches!(variable.as_deref(), Ok("avx512" | "avx2" | "baseline"));
        !lowered && granted()
    })
}

/// The CPU has AMX-BF16 and the OS gives this process the tile state. (AVX512-BF16 is
/// required too: every AMX CPU has it, and the kernels are chosen in the order AMX,
/// AVX512-BF16, portable, so a product AMX cannot take falls to `vdpbf16ps`.)
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn granted() -> bool {
    if crate::simd::level() != crate::simd::Level::Avx512 || !super::has_avx512_bf16() {
        return false;
    }
    if !crate::simd::cpu_has_amx_bf16() {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a system call taking two integers and no memory.
    let asked = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    // SAFETY: the CPU has XSAVE and the OS enabled it (it runs AVX-512, checked above).
    asked == 0 && (unsafe { xcr0() } >> 17) & 0b11 == 0b11
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn granted() -> bool {
    false
}

/// XCR0: the state components the OS saves (bits 17 and 18: the tiles' configuration
/// and data).
///
/// # Safety
/// The CPU has XSAVE, enabled by the OS.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller's.
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// `dst (+)= A B`, `A` from rows of pairs, `B` packed by [`super::pack_b`] for `pairs`
/// pairs. Tasks are blocks of 32 rows (with the columns split in up to 4 groups when
/// the blocks are few, so that two threads share small products).
///
/// Only called when [`available`] says so.
pub(super) fn product(dst: Dst, a: WordRows<'_>, packed_b: &[u32], pairs: usize, par: Par) {
    let (blocks, n_panels) = (dst.m.div_ceil(MB), dst.n.div_ceil(NR));
    assert!(packed_b.len() >= n_panels * pairs * NR);
    let groups = n_panels.min(4_usize.div_ceil(blocks));
    let per_group = n_panels.div_ceil(groups);
    let tasks = blocks * n_panels.div_ceil(per_group);
    let task = |t: usize| {
        let (block, group) = (t % blocks, t / blocks);
        let panels = group * per_group..((group + 1) * per_group).min(n_panels);
        run_block(dst, a, (packed_b, pairs), block, panels);
    };
    match par {
        Par::Rayon if tasks > 1 => (0..tasks).into_par_iter().for_each(task),
        _ => (0..tasks).for_each(task),
    }
}

/// A task's buffers, reused by the thread.
struct Scratch {
    /// The block's rows of `A` step by step (see [`pack_block`]).
    rows: Vec<u32>,
    /// The sums of the task's panels that are not written in place, 32 x [`NR`] f32
    /// each (four [`MR`] x [`NR`] tiles of [`super::TileOut`] in a row).
    sums: Vec<f32>,
    /// The last `pairs % 16` pairs of a panel of `B` (16 pairs of [`NR`] words),
    /// padded with zeros to a whole step.
    rest_b: [u32; KT * NR],
}

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> =
        const { std::cell::Cell::new(None) };
}

/// Steps of `k` per chunk: the block's rows of a chunk (32 x 128 pairs, 16 KB) stay in
/// L1 while every column panel of the task uses them; the panels' sums wait in `dst`
/// (or `sums`) between chunks, an exact store and load.
const CHUNK: usize = 8;

/// Block `block` (32 rows) of `dst` against the column panels `panels`.
fn run_block(
    dst: Dst,
    a: WordRows<'_>,
    (packed_b, pairs): (&[u32], usize),
    block: usize,
    panels: Range<usize>,
) {
    let mut scratch = SCRATCH.take().unwrap_or_else(|| {
        Box::new(Scratch {
            rows: Vec::new(),
            sums: Vec::new(),
            rest_b: [0; KT * NR],
        })
    });
    let Scratch { rows, sums, rest_b } = &mut *scratch;
    let first = block * MB;
    let live = MB.min(dst.m - first);
    prefetch_rows(a, first + MB..(first + 2 * MB).min(dst.m), pairs);
    pack_block(a, (first, live), pairs, rows);
    let (steps, done) = (pairs / KT, pairs / KT * KT);
    // B's last pairs, zero-padded to a step: zeros times zeros add nothing to the sums
    rest_b[(pairs - done) * NR..].fill(0);
    // whole blocks of a row-major `dst` go to (and from) the tiles in place; the others
    // through `sums`, holding `dst`'s values first when the product adds to them: the
    // sums of every block continue from `dst`'s values alike
    let groups =
        |np: usize| (0..live.div_ceil(MR)).map(move |g| dst.tile(block * (MB / MR) + g, np));
    let in_place = |np: usize| {
        let out = dst.tile(block * (MB / MR), np);
        live == MB && out.cols == NR && out.strides.1 == 1 && out.strides.0 > 0
    };
    sums.resize(panels.len() * MB * NR, 0.0);
    for (np, sums) in panels.clone().zip(sums.chunks_exact_mut(MB * NR)) {
        if !in_place(np) && dst.accumulate {
            for (tile, acc) in groups(np).zip(sums.chunks_exact_mut(MR * NR)) {
                // SAFETY: the tile's elements are this task's alone.
                unsafe { tile.read(acc.try_into().expect("MR x NR sums")) };
            }
        }
    }
    // SAFETY: `available` said the CPU has AMX and the OS granted the tile state.
    unsafe { configure() };
    let chunks = steps.div_ceil(CHUNK).max(1);
    for chunk in 0..chunks {
        let (s0, s1) = (chunk * CHUNK, ((chunk + 1) * CHUNK).min(steps));
        for (np, sums) in panels.clone().zip(sums.chunks_exact_mut(MB * NR)) {
            let b = &packed_b[np * pairs * NR..(np + 1) * pairs * NR];
            let rest = (chunk + 1 == chunks && done < pairs).then(|| {
                rest_b[..(pairs - done) * NR].copy_from_slice(&b[done * NR..]);
                rest_b.as_ptr()
            });
            let out = dst.tile(block * (MB / MR), np);
            let load = dst.accumulate || chunk > 0;
            let c = match in_place(np) {
                true => (out.ptr, out.strides.0 as usize * 4, load),
                false => (sums.as_mut_ptr(), NR * 4, load),
            };
            // SAFETY: configured above; `rows` holds the block's steps (the rest's
            // too); `b` holds `pairs >= done` pairs of NR words, `rest_b` a whole step;
            // `c` 32 x 32 f32 (`sums`, or the block's own elements of `dst`, which
            // nothing else touches meanwhile).
            unsafe {
                let (a, b) = (rows.as_ptr().add(s0 * MB * KT), b[s0 * KT * NR..].as_ptr());
                run_tiles((live, out.cols), a, b, (s1 - s0, rest), c);
            }
        }
    }
    // SAFETY: configured above.
    unsafe { release() };
    for (np, sums) in panels.zip(sums.chunks_exact(MB * NR)) {
        if in_place(np) {
            continue;
        }
        for (tile, acc) in groups(np).zip(sums.chunks_exact(MR * NR)) {
            let acc: &[f32; MR * NR] = acc.try_into().expect("MR x NR sums");
            let tile = TileOut {
                accumulate: false,
                ..tile
            };
            // SAFETY: the tile's elements are this task's alone.
            unsafe { tile.write(acc) };
        }
    }
    SCRATCH.set(Some(scratch));
}

/// The kernel for a block of `live` rows against a panel of `cols` columns: half the
/// tiles for a last block of at most 16 rows or a last panel of at most 16 columns
/// (C1's 100 columns end in a panel of 4, its output layer has 10; its parts of 100
/// rows end in a block of 4), a quarter for both.
///
/// # Safety
/// As [`tiles`]'s (`c.0` holding the block's `live` rows of `cols` f32 at least).
unsafe fn run_tiles(
    (live, cols): (usize, usize),
    a: *const u32,
    b: *const u32,
    steps: (usize, Option<*const u32>),
    c: (*mut f32, usize, bool),
) {
    // SAFETY: the caller's.
    unsafe {
        match (live <= MB / 2, cols <= NR / 2) {
            (false, false) => tiles(a, b, steps, c),
            (false, true) => tiles_narrow(a, b, steps, c),
            (true, false) => tiles_short(a, b, steps, c),
            (true, true) => tile_one(a, b, steps, c),
        }
    }
}

/// Asks for the rows `rows` of `a` in L2 when they are picked by a batch (scattered
/// rows of X, from memory): the next block's rows arrive while this block computes (the
/// copy of a block's rows, waiting on memory, took 8 % of a C1 epoch).
fn prefetch_rows(a: WordRows<'_>, rows: Range<usize>, pairs: usize) {
    #[cfg(target_arch = "x86_64")]
    if a.which.is_some() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        for i in rows {
            let row = &a.words[a.start(i)..][..pairs];
            for line in row.chunks(16) {
                // SAFETY: a hint about an address inside `words`.
                unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
            }
        }
    }
}

/// The block's 32 rows (`live` of them from row `first`, then zero rows) step by step:
/// step `s`'s 16 words of row `r` at `(s * 32 + r) * 16`, `ceil(pairs / 16)` steps (the
/// last one padded with zeros). Each step's two tiles of `A` are then 2 KB in a row. A
/// block of at most 16 rows fills only the first tile of each step, the one its
/// kernels read ([`run_tiles`]).
fn pack_block(a: WordRows<'_>, (first, live): (usize, usize), pairs: usize, packed: &mut Vec<u32>) {
    let steps = pairs.div_ceil(KT);
    packed.resize(steps * MB * KT, 0);
    let rows = if live <= MB / 2 { MB / 2 } else { MB };
    for r in 0..rows {
        let row = match r < live {
            true => &a.words[a.start(first + r)..][..pairs],
            false => &[],
        };
        let mut words = row.chunks_exact(KT);
        for (s, chunk) in (&mut words).enumerate() {
            let at = (s * MB + r) * KT;
            packed[at..at + KT].copy_from_slice(chunk);
        }
        // a partial last step, or a zero row
        let whole = row.len() / KT;
        for s in whole..steps {
            let at = (s * MB + r) * KT;
            let tail = if s == whole { words.remainder() } else { &[] };
            packed[at..at + tail.len()].copy_from_slice(tail);
            packed[at + tail.len()..at + KT].fill(0);
        }
    }
}

/// The tiles' shapes: all eight 16 rows of 64 bytes (palette 1).
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: Config = Config {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// Loads the tile configuration on this thread.
///
/// # Safety
/// The CPU has AMX and the OS granted this process the tile state.
#[inline]
unsafe fn configure() {
    // SAFETY: the caller's; `CONFIG` is 64 readable bytes.
    unsafe {
        std::arch::asm!(
            "ldtilecfg [{config}]",
            config = in(reg) &CONFIG,
            options(nostack, readonly, preserves_flags)
        )
    };
}

/// Returns the tiles to their initial state (no tile state to save on a switch).
///
/// # Safety
/// As [`configure`]'s.
#[inline]
unsafe fn release() {
    // SAFETY: the caller's.
    unsafe { std::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
}

/// Defines a tile kernel: sums of `steps` steps of 16 pairs, then of one step with
/// `B` from `rest` when given (the loop's body once more), into `c.0` (rows `c.1` bytes
/// apart; `c1` is the row 16 rows down), added to the values there with `c.2`. `A` at
/// `a`, laid out by [`pack_block`] (each step's two tiles of 16 rows 1 KB apart); pairs
/// of `B` at `b`, [`NR`] words each (a packed panel: each pair's two tiles of 16
/// columns 64 bytes apart); the rest's `B` 16 pairs of [`NR`] words. The kernels
/// differ in the tiles of sums they keep (`load` and `zero` start them, `store` writes
/// them) and in the multiply-adds of a step (`step`, reading `{a}` and `{b}`).
macro_rules! tile_kernel {
    (
        $(#[$doc:meta])*
        $name:ident,
        load: [$($load:literal),*],
        zero: [$($zero:literal),*],
        step: [$($step:literal),*],
        store: [$($store:literal),*] $(,)?
    ) => {
        $(#[$doc])*
        #[inline]
        unsafe fn $name(
            a: *const u32,
            b: *const u32,
            (steps, rest): (usize, Option<*const u32>),
            (c, c_stride, accumulate): (*mut f32, usize, bool),
        ) {
            let rest = rest.unwrap_or(std::ptr::null());
            // SAFETY: the caller's.
            unsafe {
                std::arch::asm!(
                    "test {load}, {load}",
                    "jz 5f",
                    $($load,)*
                    "jmp 6f",
                    "5:",
                    $($zero,)*
                    "6:",
                    "test {n}, {n}",
                    "jz 3f",
                    ".p2align 6",
                    "2:",
                    $($step,)*
                    "add {a}, 2048",
                    "add {b}, {b_step}",
                    "dec {n}",
                    "jnz 2b",
                    "3:",
                    // the rest: the loop's body once more, on `rest`'s step of B
                    "test {rb}, {rb}",
                    "jz 4f",
                    "mov {b}, {rb}",
                    "xor {rb:e}, {rb:e}",
                    "mov {n:e}, 1",
                    "jmp 2b",
                    "4:",
                    $($store,)*
                    // (an assembler comment naming `c1`, which the kernels of 16 rows
                    // of sums never read: asm! takes no unused operand)
                    "/* rows 16-31 of the sums: {c1} */",
                    a = inout(reg) a => _,
                    row = in(reg) KT * 4,
                    b = inout(reg) b => _,
                    wide = in(reg) NR * 4,
                    b_step = const KT * NR * 4,
                    n = inout(reg) steps => _,
                    rb = inout(reg) rest => _,
                    c = in(reg) c,
                    c1 = in(reg) c.cast::<u8>().wrapping_add(16 * c_stride),
                    sc = in(reg) c_stride,
                    load = in(reg) usize::from(accumulate),
                    options(nostack)
                )
            };
        }
    };
}

tile_kernel!(
    /// 32 x 32 sums (four tiles of sums, two of `A`, two of `B`).
    ///
    /// # Safety
    /// The tiles are configured ([`configure`]); `a` holds `steps` steps (and one more
    /// with `rest`), `b` `16 * steps` pairs of [`NR`] words; `c.0` 32 rows of 32 f32.
    tiles,
    load: [
        "tileloadd tmm0, [{c} + {sc} * 1]",
        "tileloadd tmm1, [{c} + {sc} * 1 + 64]",
        "tileloadd tmm2, [{c1} + {sc} * 1]",
        "tileloadd tmm3, [{c1} + {sc} * 1 + 64]"
    ],
    zero: ["tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3"],
    step: [
        "tileloadd tmm4, [{a} + {row} * 1]",
        "tileloadd tmm6, [{b} + {wide} * 1]",
        "tileloadd tmm7, [{b} + {wide} * 1 + 64]",
        "tdpbf16ps tmm0, tmm4, tmm6",
        "tileloadd tmm5, [{a} + {row} * 1 + 1024]",
        "tdpbf16ps tmm1, tmm4, tmm7",
        "tdpbf16ps tmm2, tmm5, tmm6",
        "tdpbf16ps tmm3, tmm5, tmm7"
    ],
    store: [
        "tilestored [{c} + {sc} * 1], tmm0",
        "tilestored [{c} + {sc} * 1 + 64], tmm1",
        "tilestored [{c1} + {sc} * 1], tmm2",
        "tilestored [{c1} + {sc} * 1 + 64], tmm3"
    ],
);

tile_kernel!(
    /// [`tiles`] for the first 16 columns only (two tiles of sums, one of `B`): the
    /// other 16 columns of `c` are left as they are.
    ///
    /// # Safety
    /// As [`tiles`]'s.
    tiles_narrow,
    load: ["tileloadd tmm0, [{c} + {sc} * 1]", "tileloadd tmm2, [{c1} + {sc} * 1]"],
    zero: ["tilezero tmm0", "tilezero tmm2"],
    step: [
        "tileloadd tmm4, [{a} + {row} * 1]",
        "tileloadd tmm6, [{b} + {wide} * 1]",
        "tdpbf16ps tmm0, tmm4, tmm6",
        "tileloadd tmm5, [{a} + {row} * 1 + 1024]",
        "tdpbf16ps tmm2, tmm5, tmm6"
    ],
    store: ["tilestored [{c} + {sc} * 1], tmm0", "tilestored [{c1} + {sc} * 1], tmm2"],
);

tile_kernel!(
    /// [`tiles`] for the first 16 rows only (two tiles of sums, one of `A`): the other
    /// 16 rows of `c` are left as they are.
    ///
    /// # Safety
    /// As [`tiles`]'s, with `c.0` 16 rows of 32 f32.
    tiles_short,
    load: ["tileloadd tmm0, [{c} + {sc} * 1]", "tileloadd tmm1, [{c} + {sc} * 1 + 64]"],
    zero: ["tilezero tmm0", "tilezero tmm1"],
    step: [
        "tileloadd tmm4, [{a} + {row} * 1]",
        "tileloadd tmm6, [{b} + {wide} * 1]",
        "tileloadd tmm7, [{b} + {wide} * 1 + 64]",
        "tdpbf16ps tmm0, tmm4, tmm6",
        "tdpbf16ps tmm1, tmm4, tmm7"
    ],
    store: ["tilestored [{c} + {sc} * 1], tmm0", "tilestored [{c} + {sc} * 1 + 64], tmm1"],
);

tile_kernel!(
    /// [`tiles`] for the first 16 rows and 16 columns only (one tile of sums).
    ///
    /// # Safety
    /// As [`tiles`]'s, with `c.0` 16 rows of 16 f32.
    tile_one,
    load: ["tileloadd tmm0, [{c} + {sc} * 1]"],
    zero: ["tilezero tmm0"],
    step: [
        "tileloadd tmm4, [{a} + {row} * 1]",
        "tileloadd tmm6, [{b} + {wide} * 1]",
        "tdpbf16ps tmm0, tmm4, tmm6"
    ],
    store: ["tilestored [{c} + {sc} * 1], tmm0"],
);
