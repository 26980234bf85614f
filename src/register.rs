//! The AVX-512 registers the kernels keep a row's sums in (512 and 256 bits, f32 and
//! f64), and how sums reach memory: the first `lanes` values of a row, a whole register
//! loaded and stored plainly and only a partial one masked (on Zen 4 a masked store
//! costs more than a plain one, next to a kernel's other traffic: with every register
//! masked, the bfloat16 skipping kernel's sums took 147 us against 124, a C1 bfloat16
//! weight gradient's tiles ~3 % longer, the float32 zero-skipping gradient ~3 %).
//! Adding to memory computes `dst + v` in that order, as the portable kernels do, so
//! that a NaN keeps the same payload on every path.
//!
//! One generic [`store`] and [`load`] for the zero-skipping kernels (`zeros`) and the
//! bfloat16 ones (`bf16`), which had each written their own for their types.

use std::arch::x86_64::*;

/// A register of [`Register::LANES`] values of [`Register::Elem`].
///
/// # Safety (every method)
/// The CPU has AVX-512 F and VL (the kernels' callers run them under those features,
/// and these are inlined into them); the lanes read or written lie in memory the caller
/// may read or write.
pub(crate) trait Register: Copy {
    type Elem;
    const LANES: usize;
    unsafe fn loadu(at: *const Self::Elem) -> Self;
    /// The first `lanes` values (at most [`Register::LANES`]), zeros past them.
    unsafe fn maskz_loadu(lanes: usize, at: *const Self::Elem) -> Self;
    unsafe fn storeu(self, at: *mut Self::Elem);
    /// The first `lanes` values (at most [`Register::LANES`]) alone.
    unsafe fn mask_storeu(self, lanes: usize, at: *mut Self::Elem);
    unsafe fn add(self, other: Self) -> Self;
}

macro_rules! register {
    ($v:ty, $t:ty, $lanes:expr, $m:ty, $loadu:ident, $maskz:ident, $storeu:ident,
     $mstore:ident, $add:ident) => {
        impl Register for $v {
            type Elem = $t;
            const LANES: usize = $lanes;

            #[inline(always)]
            unsafe fn loadu(at: *const $t) -> Self {
                // SAFETY: the caller's (the trait's contract).
                unsafe { $loadu(at) }
            }

            #[inline(always)]
            unsafe fn maskz_loadu(lanes: usize, at: *const $t) -> Self {
                // SAFETY: the caller's; masked lanes are not read.
                unsafe { $maskz(mask(lanes) as $m, at) }
            }

            #[inline(always)]
            unsafe fn storeu(self, at: *mut $t) {
                // SAFETY: the caller's.
                unsafe { $storeu(at, self) }
            }

            #[inline(always)]
            unsafe fn mask_storeu(self, lanes: usize, at: *mut $t) {
                // SAFETY: the caller's; masked lanes are not written.
                unsafe { $mstore(at, mask(lanes) as $m, self) }
            }

            #[inline(always)]
            unsafe fn add(self, other: Self) -> Self {
                // SAFETY: the caller's.
                unsafe { $add(self, other) }
            }
        }
    };
}

register!(
    __m512,
    f32,
    16,
    __mmask16,
    _mm512_loadu_ps,
    _mm512_maskz_loadu_ps,
    _mm512_storeu_ps,
    _mm512_mask_storeu_ps,
    _mm512_add_ps
);
register!(
    __m256,
    f32,
    8,
    __mmask8,
    _mm256_loadu_ps,
    _mm256_maskz_loadu_ps,
    _mm256_storeu_ps,
    _mm256_mask_storeu_ps,
    _mm256_add_ps
);
register!(
    __m512d,
    f64,
    8,
    __mmask8,
    _mm512_loadu_pd,
    _mm512_maskz_loadu_pd,
    _mm512_storeu_pd,
    _mm512_mask_storeu_pd,
    _mm512_add_pd
);
register!(
    __m256d,
    f64,
    4,
    __mmask8,
    _mm256_loadu_pd,
    _mm256_maskz_loadu_pd,
    _mm256_storeu_pd,
    _mm256_mask_storeu_pd,
    _mm256_add_pd
);

/// The mask of a register's first `lanes` lanes (at most 16).
#[inline(always)]
fn mask(lanes: usize) -> u32 {
    (1_u32 << lanes) - 1
}

/// Writes the first `lanes` values of `v` to `at` (added to what is there with
/// `accumulate`): a whole register plainly, a partial one masked.
///
/// # Safety
/// As [`Register`]'s, for `lanes` (at most `V::LANES`) values at `at`.
#[inline(always)]
pub(crate) unsafe fn store<V: Register>(at: *mut V::Elem, v: V, lanes: usize, accumulate: bool) {
    // SAFETY (each): the caller's; masked lanes are neither read nor written.
    unsafe {
        let whole = lanes == V::LANES;
        let v = match (accumulate, whole) {
            (false, _) => v,
            (true, true) => V::loadu(at).add(v),
            (true, false) => V::maskz_loadu(lanes, at).add(v),
        };
        if whole {
            v.storeu(at);
        } else {
            v.mask_storeu(lanes, at);
        }
    }
}

/// The first `lanes` values at `at`, zeros past them (a whole register loaded plainly,
/// as [`store`] stores it).
///
/// # Safety
/// As [`Register`]'s, for `lanes` (at most `V::LANES`) values at `at`.
#[inline(always)]
pub(crate) unsafe fn load<V: Register>(at: *const V::Elem, lanes: usize) -> V {
    // SAFETY (both): the caller's; masked lanes are not read.
    unsafe {
        match lanes == V::LANES {
            true => V::loadu(at),
            false => V::maskz_loadu(lanes, at),
        }
    }
}
