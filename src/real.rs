//! The floating-point types the engine is generic over (f32 and f64): their math
//! ([`Real`]) and the `nano-gemm` entry points the small products need ([`SmallGemm`]).

use std::fmt::Debug;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A float the engine can train in. Implemented for `f32` and `f64` only, because the
/// GEMM kernels and NumPy both specialise on exactly those two.
pub trait Real:
    num_traits::Float
    + SmallGemm
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Debug
    + Default
    + Send
    + Sync
    + 'static
{
    /// NumPy's name of the type (`float32`, `float64`), for messages.
    const DTYPE: &'static str;
    /// Lossy conversion from f64 (hyperparameters are given in f64, like NumPy scalars).
    fn from_f64(x: f64) -> Self;
    /// Exact widening (or identity) to f64, used for every reduction the engine reports.
    fn to_f64(self) -> f64;
    /// `e^self` within 1 ulp, inlined so that loops calling it vectorise
    /// (see [`crate::exp`]).
    fn exp_vec(self) -> Self;
    /// [`Real::exp_vec`] of every value, in blocks of four vectors' worth of values that
    /// run in lockstep (see [`crate::exp::exp_f64_lanes`]): 10-20 % faster than calling
    /// it value by value (measured on 320 f64 values).
    fn exp_in_place(values: &mut [Self]);
    /// `tanh(self)` within 2 ulp, inlined so that loops calling it vectorise (see
    /// [`crate::exp::tanh_f64`]).
    fn tanh_vec(self) -> Self;
}

/// Values per block of [`Real::exp_in_place`]: four 512-bit vectors.
const EXP_BLOCK_BYTES: usize = 256;

/// `impl Real` for one float type from its functions in [`crate::exp`].
macro_rules! impl_real {
    ($t:ty, $dtype:literal, $exp:path, $exp_lanes:path, $tanh:path) => {
        impl Real for $t {
            const DTYPE: &'static str = $dtype;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp_vec(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn exp_in_place(values: &mut [Self]) {
                const BLOCK: usize = EXP_BLOCK_BYTES / std::mem::size_of::<$t>();
                let mut blocks = values.chunks_exact_mut(BLOCK);
                for block in &mut blocks {
                    let x: [$t; BLOCK] = std::array::from_fn(|i| block[i]);
                    block.copy_from_slice(&$exp_lanes(x));
                }
                blocks
                    .into_remainder()
                    .iter_mut()
                    .for_each(|v| *v = $exp(*v));
            }
            #[inline(always)]
            fn tanh_vec(self) -> Self {
                $tanh(self)
            }
        }
    };
}

impl_real!(
    f32,
    "float32",
    crate::exp::exp_f32,
    crate::exp::exp_f32_lanes,
    crate::exp::tanh_f32
);
impl_real!(
    f64,
    "float64",
    crate::exp::exp_f64,
    crate::exp::exp_f64_lanes,
    crate::exp::tanh_f64
);

/// `nano-gemm`'s plan constructor for each float type, and a reusable per-thread buffer.
pub trait SmallGemm: Sized {
    /// With `unit_rows`, the plan assumes unit row strides for dst and the left operand
    /// and skips its checks for them.
    fn small_plan(m: usize, n: usize, k: usize, unit_rows: bool) -> nano_gemm::Plan<Self>;

    /// Runs `f` on this thread's buffer of `len` values (allocated at first use only).
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! small_gemm {
    ($t:ty, $plan:ident, $unit_rows_plan:ident) => {
        impl SmallGemm for $t {
            fn small_plan(m: usize, n: usize, k: usize, unit_rows: bool) -> nano_gemm::Plan<Self> {
                if unit_rows {
                    nano_gemm::Plan::$unit_rows_plan(m, n, k)
                } else {
                    nano_gemm::Plan::$plan(m, n, k)
                }
            }

            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local! {
                    static SCRATCH: std::cell::RefCell<Vec<$t>> =
                        const { std::cell::RefCell::new(Vec::new()) };
                }
                SCRATCH.with_borrow_mut(|buf| {
                    if buf.len() < len {
                        buf.resize(len, 0.0);
                    }
                    f(&mut buf[..len])
                })
            }
        }
    };
}

small_gemm!(f32, new_f32, new_colmajor_lhs_and_dst_f32);
small_gemm!(f64, new_f64, new_colmajor_lhs_and_dst_f64);
