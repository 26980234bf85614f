//! Stochastic optimizers with scikit-learn's update rules: SGD (classical or Nesterov
//! momentum; constant, invscaling or adaptive learning rate) and Adam. Their tensors
//! (velocities, moments) live in caller-owned buffers in the parameters' `2L` layout.

use crate::error::{Error, Result};
use crate::parallel::{Par, SendPtr};
use crate::real::Real;
use crate::simd::multiversion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Constant,
    InvScaling,
    Adaptive,
}

impl Schedule {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "constant" => Ok(Self::Constant),
            "invscaling" => Ok(Self::InvScaling),
            "adaptive" => Ok(Self::Adaptive),
            _ => Err(Error::Value(format!("unknown learning_rate {name:?}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solver {
    Sgd {
        momentum: f64,
        nesterov: bool,
        schedule: Schedule,
        power_t: f64,
    },
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
    },
}

/// The optimizer's scalar state; tensors are passed separately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scalars {
    pub learning_rate_init: f64,
    /// The current rate (scikit-learn's `_optimizer.learning_rate`).
    pub learning_rate: f64,
    /// Adam's step count.
    pub step: u64,
}

/// How raw gradients `G` become the loss gradient inside the update:
/// `(G + alpha W) / weight_sum` for the first `n_coefs` tensors (the coefficient
/// matrices), `G / weight_sum` for the rest (the intercepts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradScale {
    pub alpha: f64,
    pub weight_sum: f64,
    pub n_coefs: usize,
}

impl GradScale {
    /// Gradients used as they are.
    pub const NONE: GradScale = GradScale {
        alpha: 0.0,
        weight_sum: 1.0,
        n_coefs: 0,
    };
}

/// Elements per chunk of an update (fixed: the chunking must not depend on threads).
const UPDATE_CHUNK: usize = 1 << 14;

/// The per-element rule of one step, with its scalars converted to `T` once.
#[derive(Clone, Copy)]
enum Rule<T> {
    Sgd {
        mu: T,
        lr: T,
        nesterov: bool,
    },
    Adam {
        b1: T,
        b2: T,
        c1: T,
        c2: T,
        lr: T,
        eps: T,
    },
}

impl<T: Real> Rule<T> {
    fn new(solver: &Solver, scalars: &Scalars) -> Self {
        let lr = T::from_f64(scalars.learning_rate);
        match *solver {
            Solver::Sgd {
                momentum, nesterov, ..
            } => Rule::Sgd {
                mu: T::from_f64(momentum),
                lr,
                nesterov,
            },
            Solver::Adam {
                beta_1,
                beta_2,
                epsilon,
            } => Rule::Adam {
                b1: T::from_f64(beta_1),
                b2: T::from_f64(beta_2),
                c1: T::from_f64(1.0 - beta_1),
                c2: T::from_f64(1.0 - beta_2),
                lr,
                eps: T::from_f64(epsilon),
            },
        }
    }

    /// scikit-learn's update, element by element, in its operation order.
    #[inline(always)]
    fn apply(self, p: &mut [T], g: &[T], s1: &mut [T], s2: &mut [T], grad: impl Fn(T, T) -> T) {
        match self {
            Rule::Sgd { mu, lr, nesterov } => {
                for ((p, &g), v) in p.iter_mut().zip(g).zip(s1.iter_mut()) {
                    let g = grad(g, *p);
                    *v = mu * *v - lr * g;
                    *p += if nesterov { mu * *v - lr * g } else { *v };
                }
            }
            Rule::Adam {
                b1,
                b2,
                c1,
                c2,
                lr,
                eps,
            } => {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(s1.iter_mut()).zip(s2.iter_mut()) {
                    let g = grad(g, *p);
                    *m = b1 * *m + c1 * g;
                    *v = b2 * *v + c2 * (g * g);
                    *p += -lr * *m / (v.sqrt() + eps);
                }
            }
        }
    }
}

multiversion! {
    /// Updates one chunk; returns the sum of squares of the new values of a coefficient
    /// chunk (0 for intercepts).
    fn update_chunk<T: Real>(
        rule: Rule<T>,
        coef: bool,
        alpha: T,
        weight_sum: T,
        p: &mut [T],
        g: &[T],
        s1: &mut [T],
        s2: &mut [T],
    ) -> f64 {
        // A multiplication by the reciprocal: a vector division costs several times
        // more, for a difference in the last bit from scikit-learn's `/ n`.
        let scale = T::one() / weight_sum;
        if coef {
            rule.apply(p, g, s1, s2, |g, w| (g + alpha * w) * scale);
            sum_of_squares(p)
        } else {
            rule.apply(p, g, s1, s2, |g, _| g * scale);
            0.0
        }
    }
}

/// Sum of squares with independent lanes, so that it vectorises.
#[inline(always)]
pub fn sum_of_squares<T: Real>(values: &[T]) -> f64 {
    const LANES: usize = 16;
    let mut acc = [T::zero(); LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v * v;
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| Real::to_f64(v * v))
        .sum();
    acc.iter().map(|&a| Real::to_f64(a)).sum::<f64>() + tail
}

/// What an optimizer decides when training stops improving.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plateau {
    Stop,
    StopRateTooSmall,
    /// Training goes on with this smaller rate.
    RateReduced(f64),
}

impl Solver {
    /// Number of state tensors per parameter tensor (velocity; or first and second moment).
    pub fn state_per_tensor(&self) -> usize {
        match self {
            Solver::Sgd { .. } => 1,
            Solver::Adam { .. } => 2,
        }
    }

    /// Applies one update and returns the sum of squares of the updated coefficient
    /// tensors (the next batch's L2 penalty, computed while the values are in cache).
    ///
    /// `grads` are raw gradients, turned into the loss gradient on the fly by `scale`.
    /// `state` holds `state_per_tensor() * params.len()` tensors: the velocities, or all
    /// first moments followed by all second moments. Tensors are processed in chunks of
    /// fixed size, so the returned sum does not depend on the number of threads.
    #[allow(clippy::too_many_arguments)] // one hot call site; a bundle struct adds nothing
    pub fn step<T: Real>(
        &self,
        params: &mut [&mut [T]],
        grads: &[Vec<T>],
        state: &mut [&mut [T]],
        scalars: &mut Scalars,
        scale: GradScale,
        partials: &mut Vec<f64>,
        par: Par,
    ) -> f64 {
        if let Solver::Adam { beta_1, beta_2, .. } = *self {
            scalars.step += 1;
            let t = scalars.step as f64;
            scalars.learning_rate =
                scalars.learning_rate_init * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
        }
        let rule = Rule::new(self, scalars);
        let n = params.len();
        let mut norm = 0.0;
        for i in 0..n {
            let len = params[i].len();
            let chunks = len.div_ceil(UPDATE_CHUNK);
            partials.clear();
            partials.resize(chunks, 0.0);
            let coef = i < scale.n_coefs;
            let alpha = T::from_f64(scale.alpha);
            let weight_sum = T::from_f64(scale.weight_sum);
            let p = SendPtr(params[i].as_mut_ptr());
            let g = SendPtr(grads[i].as_ptr() as *mut T);
            let s1 = SendPtr(state[i].as_mut_ptr());
            let s2 = SendPtr(match rule {
                Rule::Adam { .. } => state[n + i].as_mut_ptr(),
                Rule::Sgd { .. } => std::ptr::null_mut(),
            });
            let out = SendPtr(partials.as_mut_ptr());
            par.for_each(chunks, |c| {
                let start = c * UPDATE_CHUNK;
                let m = UPDATE_CHUNK.min(len - start);
                // SAFETY: chunk `c` covers `start..start + m`, inside every tensor of this
                // index (they share the layout), and no two chunks overlap.
                unsafe {
                    let p = std::slice::from_raw_parts_mut(p.get().add(start), m);
                    let g = std::slice::from_raw_parts(g.get().add(start), m);
                    let s1 = std::slice::from_raw_parts_mut(s1.get().add(start), m);
                    let s2 = if s2.get().is_null() {
                        &mut [][..]
                    } else {
                        std::slice::from_raw_parts_mut(s2.get().add(start), m)
                    };
                    let norm = update_chunk(rule, coef, alpha, weight_sum, p, g, s1, s2);
                    *out.get().add(c) = norm;
                }
            });
            if coef {
                norm += partials.iter().sum::<f64>();
            }
        }
        norm
    }

    /// End-of-epoch hook: `invscaling` recomputes the rate from the samples seen so far.
    pub fn epoch_ends(&self, samples_seen: u64, scalars: &mut Scalars) {
        if let Solver::Sgd {
            schedule: Schedule::InvScaling,
            power_t,
            ..
        } = *self
        {
            scalars.learning_rate =
                scalars.learning_rate_init / ((samples_seen + 1) as f64).powf(power_t);
        }
    }

    /// Called when the loss (or validation score) has stopped improving.
    pub fn plateau(&self, scalars: &mut Scalars) -> Plateau {
        match *self {
            Solver::Sgd {
                schedule: Schedule::Adaptive,
                ..
            } => {
                if scalars.learning_rate <= 1e-6 {
                    Plateau::StopRateTooSmall
                } else {
                    scalars.learning_rate /= 5.0;
                    Plateau::RateReduced(scalars.learning_rate)
                }
            }
            _ => Plateau::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(lr: f64) -> Scalars {
        Scalars {
            learning_rate_init: lr,
            learning_rate: lr,
            step: 0,
        }
    }

    fn sgd(momentum: f64, nesterov: bool) -> Solver {
        Solver::Sgd {
            momentum,
            nesterov,
            schedule: Schedule::Constant,
            power_t: 0.5,
        }
    }

    #[test]
    fn classical_momentum_by_hand() {
        let (mut p, mut v) = (vec![1.0_f64], vec![0.5_f64]);
        let grads = vec![vec![2.0]];
        let mut s = scalars(0.1);
        sgd(0.9, false).step(
            &mut [&mut p[..]],
            &grads,
            &mut [&mut v[..]],
            &mut s,
            GradScale::NONE,
            &mut Vec::new(),
            Par::Sequential,
        );
        // v = 0.9 * 0.5 - 0.1 * 2 = 0.25; p = 1 + 0.25
        assert!((v[0] - 0.25).abs() < 1e-15 && (p[0] - 1.25).abs() < 1e-15);
    }

    #[test]
    fn nesterov_by_hand() {
        let (mut p, mut v) = (vec![1.0_f64], vec![0.5_f64]);
        let grads = vec![vec![2.0]];
        let mut s = scalars(0.1);
        sgd(0.9, true).step(
            &mut [&mut p[..]],
            &grads,
            &mut [&mut v[..]],
            &mut s,
            GradScale::NONE,
            &mut Vec::new(),
            Par::Sequential,
        );
        // v = 0.25; update = 0.9 * 0.25 - 0.2 = 0.025
        assert!((v[0] - 0.25).abs() < 1e-15 && (p[0] - 1.025).abs() < 1e-15);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let mut p = [1.0_f64, 1.0];
        let (mut m, mut v) = ([0.0_f64; 2], [0.0_f64; 2]);
        let grads = vec![vec![3.0, -0.5]];
        let mut s = scalars(0.01);
        let adam = Solver::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        };
        adam.step(
            &mut [&mut p[..]],
            &grads,
            &mut [&mut m[..], &mut v[..]],
            &mut s,
            GradScale::NONE,
            &mut Vec::new(),
            Par::Sequential,
        );
        // m = 0.1 g, v = 0.001 g^2, lr_t = 0.01 sqrt(0.001) / 0.1: update = -0.01 sign(g)
        assert_eq!(s.step, 1);
        assert!((m[0] - 0.3).abs() < 1e-15 && (v[1] - 0.00025).abs() < 1e-15);
        assert!((p[0] - 0.99).abs() < 1e-8 && (p[1] - 1.01).abs() < 1e-8);
    }

    #[test]
    fn schedules() {
        let inv = Solver::Sgd {
            momentum: 0.0,
            nesterov: false,
            schedule: Schedule::InvScaling,
            power_t: 0.5,
        };
        let mut s = scalars(0.1);
        inv.epoch_ends(99, &mut s);
        assert!((s.learning_rate - 0.01).abs() < 1e-15);
        assert_eq!(inv.plateau(&mut s), Plateau::Stop);

        let adaptive = Solver::Sgd {
            momentum: 0.0,
            nesterov: false,
            schedule: Schedule::Adaptive,
            power_t: 0.5,
        };
        let mut s = scalars(1e-5);
        assert_eq!(adaptive.plateau(&mut s), Plateau::RateReduced(1e-5 / 5.0));
        assert_eq!(
            adaptive.plateau(&mut s),
            Plateau::RateReduced(1e-5 / 5.0 / 5.0)
        );
        assert_eq!(adaptive.plateau(&mut s), Plateau::StopRateTooSmall);
    }
}
