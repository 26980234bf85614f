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
}

impl Real for f32 {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn exp_vec(self) -> Self {
        crate::exp::exp_f32(self)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp_vec(self) -> Self {
        crate::exp::exp_f64(self)
    }
}
