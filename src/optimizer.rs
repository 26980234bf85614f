//! Stochastic optimizers with scikit-learn's update rules: SGD (classical or Nesterov
//! momentum; constant, invscaling or adaptive learning rate) and Adam. Their tensors
//! (velocities, moments) live in caller-owned buffers in the parameters' `2L` layout.

use crate::error::{Error, Result};
use crate::real::Real;

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

    /// Applies one update. `state` holds `state_per_tensor() * params.len()` tensors:
    /// the velocities, or all first moments followed by all second moments.
    pub fn step<T: Real>(
        &self,
        params: &mut [&mut [T]],
        grads: &[Vec<T>],
        state: &mut [&mut [T]],
        scalars: &mut Scalars,
    ) {
        match *self {
            Solver::Sgd {
                momentum, nesterov, ..
            } => {
                let mu = T::from_f64(momentum);
                let lr = T::from_f64(scalars.learning_rate);
                for ((p, g), v) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
                    for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                        *v = mu * *v - lr * g;
                        *p += if nesterov { mu * *v - lr * g } else { *v };
                    }
                }
            }
            Solver::Adam {
                beta_1,
                beta_2,
                epsilon,
            } => {
                scalars.step += 1;
                let t = scalars.step as f64;
                scalars.learning_rate = scalars.learning_rate_init * (1.0 - beta_2.powf(t)).sqrt()
                    / (1.0 - beta_1.powf(t));
                let (b1, b2) = (T::from_f64(beta_1), T::from_f64(beta_2));
                let (c1, c2) = (T::from_f64(1.0 - beta_1), T::from_f64(1.0 - beta_2));
                let (lr, eps) = (T::from_f64(scalars.learning_rate), T::from_f64(epsilon));
                let (ms, vs) = state.split_at_mut(params.len());
                for (((p, g), m), v) in params.iter_mut().zip(grads).zip(ms).zip(vs) {
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        *m = b1 * *m + c1 * g;
                        *v = b2 * *v + c2 * (g * g);
                        *p += -lr * *m / (v.sqrt() + eps);
                    }
                }
            }
        }
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
        sgd(0.9, false).step(&mut [&mut p[..]], &grads, &mut [&mut v[..]], &mut s);
        // v = 0.9 * 0.5 - 0.1 * 2 = 0.25; p = 1 + 0.25
        assert!((v[0] - 0.25).abs() < 1e-15 && (p[0] - 1.25).abs() < 1e-15);
    }

    #[test]
    fn nesterov_by_hand() {
        let (mut p, mut v) = (vec![1.0_f64], vec![0.5_f64]);
        let grads = vec![vec![2.0]];
        let mut s = scalars(0.1);
        sgd(0.9, true).step(&mut [&mut p[..]], &grads, &mut [&mut v[..]], &mut s);
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
