//! The AMX kernel of the bfloat16 products (`tdpbf16ps`; Intel Xeon from the 4th
//! generation on, CPU flag `amx_bf16`).
//!
//! A block of 32 rows x 32 columns of `dst` lives in four tiles of 16 x 16 f32 sums
//! (tmm0-3) while its `k` goes by in steps of 16 pairs: two tiles of `A` (tmm4-5, 16
//! rows x 16 pairs each, loaded from rows of pairs) and two of `B` (tmm6-7), loaded
//! straight from [`super::pack_b`]'s panels: a pair's 32 columns there are the two
//! tiles' rows side by side, the layout `tdpbf16ps` takes for `B`. The last
//! `pairs % 16` pairs of a block are copied into a step padded with zeros (a second
//! tile configuration would clear the sums; `vdpbf16ps` for them took a third of the
//! AMX time of a C1 epoch).
//!
//! Stable Rust has no AMX intrinsics: the instructions are written with `asm!`
//! (tract-linalg does the same). Linux gives a process the tile state only when it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); a task configures the tiles
//! on its thread and releases them when done, so idle threads carry no tile state.
//!
//! Bits: each output element sums its pairs in order, 16 pairs a step, whatever thread
//! computes its block, so results do not depend on the number of threads. How one
//! `tdpbf16ps` sums its 32 products into an element is AMX's own: not `vdpbf16ps`'s
//! pair-by-pair rounding, so results differ from the other two kernels' in the last
//! bits (measured by the tests).

use super::{Dst, WordRows, MR, NR};
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

/// The CPU has AMX-BF16 (and what the rest of a product runs on: AVX512-BF16) and the
/// OS gives this process the tile state.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn granted() -> bool {
    if crate::simd::level() != crate::simd::Level::Avx512 || !super::has_avx512_bf16() {
        return false;
    }
    // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    if (leaf7.edx >> 22) & 1 == 0 || (leaf7.edx >> 24) & 1 == 0 {
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
    /// The block's rows when they must be gathered (or padded).
    rows: Vec<u32>,
    /// A panel's sums, 32 x [`NR`] f32 (four [`MR`] x [`NR`] tiles of
    /// [`super::TileOut`] in a row).
    sums: [f32; MB * NR],
    /// The block's last `pairs % 16` pairs of `A` (32 rows of 16 words) and of a panel
    /// of `B` (16 pairs of [`NR`] words), padded with zeros to a whole step.
    rest_a: [u32; MB * KT],
    rest_b: [u32; KT * NR],
}

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> =
        const { std::cell::Cell::new(None) };
}

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
            sums: [0.0; MB * NR],
            rest_a: [0; MB * KT],
            rest_b: [0; KT * NR],
        })
    });
    let Scratch {
        rows,
        sums,
        rest_a,
        rest_b,
    } = &mut *scratch;
    let first = block * MB;
    let live = MB.min(dst.m - first);
    prefetch_rows(a, first + MB..(first + 2 * MB).min(dst.m), pairs);
    let (words, stride) = block_rows(a, (first, live), pairs, rows);
    let (steps, done) = (pairs / KT, pairs / KT * KT);
    // the last pairs, zero-padded to a step: zeros times zeros add nothing to the sums
    if done < pairs {
        for (r, row) in rest_a.chunks_exact_mut(KT).enumerate() {
            // SAFETY: row r of the block holds `pairs` words from `words`.
            let src =
                unsafe { std::slice::from_raw_parts(words.add(r * stride + done), pairs - done) };
            row[..pairs - done].copy_from_slice(src);
            row[pairs - done..].fill(0);
        }
        rest_b[(pairs - done) * NR..].fill(0);
    }
    // SAFETY: `available` said the CPU has AMX and the OS granted the tile state.
    unsafe { configure() };
    for np in panels {
        let b = &packed_b[np * pairs * NR..(np + 1) * pairs * NR];
        let rest = (done < pairs).then(|| {
            rest_b[..(pairs - done) * NR].copy_from_slice(&b[done * NR..]);
            (rest_a.as_ptr(), rest_b.as_ptr())
        });
        // SAFETY: configured above; `words` holds 32 rows of at least `done` words,
        // `stride` apart; `b` holds `pairs >= done` pairs of NR words; the rest's
        // buffers a whole step; `sums` 32 x NR.
        unsafe {
            tiles(
                (words, stride * 4),
                b.as_ptr(),
                (steps, rest),
                sums.as_mut_ptr(),
            )
        };
        let groups = sums.chunks_exact(MR * NR).take(live.div_ceil(MR));
        for (g, acc) in groups.enumerate() {
            let acc: &[f32; MR * NR] = acc.try_into().expect("MR x NR sums");
            // SAFETY: the tile's elements are this task's alone.
            unsafe { dst.tile(block * (MB / MR) + g, np).write(acc) };
        }
    }
    // SAFETY: configured above.
    unsafe { release() };
    SCRATCH.set(Some(scratch));
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

/// Where the block's 32 rows start and how many words apart: in place when they are 32
/// consecutive rows, else copied into `scratch` (rows picked by a batch, or a last
/// block of fewer rows, padded with zero rows).
fn block_rows(
    a: WordRows<'_>,
    (first, live): (usize, usize),
    pairs: usize,
    scratch: &mut Vec<u32>,
) -> (*const u32, usize) {
    if a.which.is_none() && live == MB {
        return (a.words[a.start(first)..].as_ptr(), a.stride);
    }
    scratch.resize(MB * pairs, 0);
    for (r, row) in scratch.chunks_exact_mut(pairs.max(1)).enumerate() {
        match r < live {
            true => row.copy_from_slice(&a.words[a.start(first + r)..][..pairs]),
            false => row.fill(0),
        }
    }
    (scratch.as_ptr(), pairs)
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

/// 32 x 32 sums of `steps` steps of 16 pairs, then of one step from `rest`'s buffers
/// when given, into `c` (rows of [`NR`] f32): rows of `A` at `a.0`, `a.1` bytes apart;
/// pairs of `B` at `b`, [`NR`] words each (a packed panel); the rest's `A` 32 rows of 16
/// words, its `B` 16 pairs of [`NR`] words.
///
/// # Safety
/// The tiles are configured ([`configure`]); `a` holds 32 rows of `16 * steps` words,
/// `b` `16 * steps` pairs of [`NR`] words; `c` 32 x [`NR`] f32.
#[inline]
unsafe fn tiles(
    (a, a_stride): (*const u32, usize),
    b: *const u32,
    (steps, rest): (usize, Option<(*const u32, *const u32)>),
    c: *mut f32,
) {
    let (rest_a, rest_b) = rest.unwrap_or((std::ptr::null(), std::ptr::null()));
    // SAFETY: the caller's.
    unsafe {
        std::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "test {n}, {n}",
            "jz 3f",
            "2:",
            "tileloadd tmm4, [{a} + {sa} * 1]",
            "tileloadd tmm6, [{b} + {row} * 1]",
            "tileloadd tmm7, [{b} + {row} * 1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm5, [{a1} + {sa} * 1]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 64",
            "add {a1}, 64",
            "add {b}, {b_step}",
            "dec {n}",
            "jnz 2b",
            "3:",
            "test {ra}, {ra}",
            "jz 4f",
            // the rest: A's rows 64 bytes apart
            "mov {sa}, 64",
            "tileloadd tmm4, [{ra} + {sa} * 1]",
            "tileloadd tmm6, [{rb} + {row} * 1]",
            "tileloadd tmm7, [{rb} + {row} * 1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm5, [{ra} + {sa} * 1 + 1024]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "4:",
            "tilestored [{c} + {row} * 1], tmm0",
            "tilestored [{c} + {row} * 1 + 64], tmm1",
            "tilestored [{c1} + {row} * 1], tmm2",
            "tilestored [{c1} + {row} * 1 + 64], tmm3",
            a = inout(reg) a => _,
            a1 = inout(reg) a.cast::<u8>().add(16 * a_stride) => _,
            sa = inout(reg) a_stride => _,
            b = inout(reg) b => _,
            row = in(reg) NR * 4,
            b_step = const KT * NR * 4,
            n = inout(reg) steps => _,
            ra = in(reg) rest_a,
            rb = in(reg) rest_b,
            c = in(reg) c,
            c1 = in(reg) c.add(16 * NR),
            options(nostack)
        )
    };
}
