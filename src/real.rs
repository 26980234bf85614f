//! The floating-point types the engine is generic over (f32 and f64).

use std::fmt::Debug;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A float the engine can train in. Implemented for `f32` and `f64` only, because the
/// GEMM kernels and NumPy both specialise on exactly those two.
pub trait Real:
    num_traits::Float
    + crate::gemm::SmallGemm
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
    ($t:ty, $exp:path, $exp_lanes:path, $tanh:path) => {
        impl Real for $t {
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
    crate::exp::exp_f32,
    crate::exp::exp_f32_lanes,
    crate::exp::tanh_f32
);
impl_real!(
    f64,
    crate::exp::exp_f64,
    crate::exp::exp_f64_lanes,
    crate::exp::tanh_f64
);
