//! Runtime selection of vector instructions for the elementwise kernels.
//!
//! Wheels are built for the baseline x86-64 (SSE2). [`multiversion!`] compiles a kernel
//! three times (AVX-512, AVX2, baseline) and picks the widest the CPU supports, checking
//! every feature that build enables. The results are bit-identical on every path: Rust
//! never contracts `a * b + c` into a fused multiply-add by itself, and the explicit
//! `mul_add`s (in `exp`) are exactly rounded everywhere: FMA instructions on the vector
//! paths, libm's `fma` on the baseline one (slower there, and not vectorised).

/// Defines `fn name<T: Real>(args) -> ret` whose body is compiled per instruction set.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<$t:ident: Real>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$t: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$t: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512<$t: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<$t: $crate::real::Real>($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            {
                match $crate::simd::level() {
                    // SAFETY: the CPU has the instructions `avx512` is compiled for.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above, for `avx2`.
                    $crate::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use multiversion;

/// The instruction sets [`multiversion!`] compiles for, each with every feature its build
/// enables.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Level {
    /// AVX-512 F, DQ and VL, with AVX2 and FMA.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    Baseline,
}

/// The environment variable that lowers the [`Level`] the kernels use below the CPU's
/// (`avx2` or `baseline`): every level gives the same bits, and this is how the tests
/// check it on a CPU that has them all (or how to rule a level's kernels out).
pub(crate) const LEVEL_VARIABLE: &str = "MLP_RS_CPU";

/// The name of the [`Level`] the kernels use (`avx512`, `avx2` or `baseline`), for
/// reports and tests.
pub fn level_name() -> &'static str {
    match level() {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2",
        Level::Baseline => "baseline",
    }
}

/// Whether the CPU has AMX-BF16 and AMX-TILE (CPUID leaf 7, EDX bits 22 and 24), as
/// the CPU says; whether the OS grants the tiles is `bf16::amx`'s question. Also a sign of
/// an Intel Xeon core with two 512-bit FMA ports, where `gemm` is strong enough to
/// change which kernel pays (`zeros`). Asked once per process: CPUID traps to the
/// hypervisor in a virtual machine (1 % of a one-thread C1 epoch when asked per product).
pub(crate) fn cpu_has_amx_bf16() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: every x86-64 CPU has CPUID (a safe fn in the Rust this was built
            // with, an `unsafe fn` up to at least 1.93; the crate supports 1.89)
            #[allow(unused_unsafe)]
            let leaf7 = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
            (leaf7.edx >> 22) & 1 == 1 && (leaf7.edx >> 24) & 1 == 1
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// This CPU's [`Level`], detected once (lowered by [`LEVEL_VARIABLE`]).
pub(crate) fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cpu = detected_level();
        match std::env::var(LEVEL_VARIABLE).as_deref() {
            Ok("baseline") => Level::Baseline,
            Ok("avx2") if cpu != Level::Baseline => Level::Avx2,
            _ => cpu,
        }
    })
}

/// The [`Level`] the CPU has, whatever [`LEVEL_VARIABLE`] says: for choices that
/// change no value a model holds but must be the same at every level (see
/// `zeros::balanced_cut`).
pub(crate) fn detected_level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx2") && has!("fma") {
            Level::Avx512
        } else if has!("avx2") && has!("fma") {
            Level::Avx2
        } else {
            Level::Baseline
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Baseline
    }
}

/// Asks the cache for the line holding `at`, to be read or written soon: a hint, which
/// never faults and changes nothing the program sees (nothing off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch of any address is defined (see above).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
