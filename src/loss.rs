//! Losses, their output-layer error and the L2 penalty, as scikit-learn defines them.

use crate::activation::OutputActivation;
use crate::error::{Error, Result};
use crate::exp::ln_f64_lanes;
use crate::real::Real;
use crate::simd::multiversion;

/// The loss a network minimises, each with its canonical output activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Half the squared error, averaged over outputs (identity output).
    SquaredError,
    /// The absolute error `|y - p|`, averaged over outputs (identity output).
    AbsoluteError,
    /// The Huber loss of `r = y - p`, averaged over outputs (identity output):
    /// `0.5 r^2` where `|r| <= delta`, else `delta (|r| - 0.5 delta)`.
    Huber {
        /// Where the loss turns from quadratic to linear (> 0).
        delta: f64,
    },
    /// Half the Poisson deviance, summed over outputs (exp output).
    Poisson,
    /// Categorical cross-entropy (softmax output).
    LogLoss,
    /// Binary cross-entropy per output (logistic output: binary and multilabel).
    BinaryLogLoss,
}

impl std::str::FromStr for Loss {
    type Err = Error;

    /// By scikit-learn's name.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "squared_error" => Ok(Self::SquaredError),
            "absolute_error" => Ok(Self::AbsoluteError),
            // (the estimator's `huber_delta` replaces the default)
            "huber" => Ok(Self::Huber { delta: 1.0 }),
            "poisson" => Ok(Self::Poisson),
            "log_loss" => Ok(Self::LogLoss),
            "binary_log_loss" => Ok(Self::BinaryLogLoss),
            _ => Err(Error::Value(format!("unknown loss {name:?}"))),
        }
    }
}

impl Loss {
    /// The output activation whose canonical pairing makes the output error `Y - T`.
    pub fn output_activation(self) -> OutputActivation {
        match self {
            Self::SquaredError | Self::AbsoluteError | Self::Huber { .. } => {
                OutputActivation::Identity
            }
            Self::Poisson => OutputActivation::Exp,
            Self::LogLoss => OutputActivation::Softmax,
            Self::BinaryLogLoss => OutputActivation::Logistic,
        }
    }

    /// The weighted sum over rows of each row's loss (not yet divided by the weight sum).
    ///
    /// `outputs` and `targets` are row-major with rows of `width` values.
    pub fn weighted_sum<T: Real>(
        self,
        outputs: &[T],
        targets: &[T],
        weights: Option<&[T]>,
        width: usize,
    ) -> f64 {
        weighted_sum(self, outputs, targets, weights, width)
    }

    /// [`Loss::weighted_sum`] of the log-loss when the targets are one-hot rows, given by
    /// the class of each row: only the true class's term is not zero. (With other targets
    /// a row holding NaN gives NaN; softmax rows are NaN entirely or not at all, so the
    /// true class's term does the same.)
    pub fn log_loss_of_classes<T: Real>(
        outputs: &[T],
        classes: &[usize],
        weights: Option<&[T]>,
        width: usize,
    ) -> f64 {
        log_loss_of_classes(outputs, classes, weights, width)
    }

    /// Writes the output-layer error, the loss's derivative with respect to the output
    /// layer's pre-activations times each row's weight, into `delta` (`outputs`'s shape).
    /// For every canonical output/loss pair of scikit-learn it is `(Y - T) * w`; the
    /// absolute error's is `sign(Y - T) * w`, Huber's `clip(Y - T, -delta, delta) * w`.
    /// (Like scikit-learn's squared error, none is divided by the number of outputs,
    /// which the reported loss averages over.)
    pub fn output_delta<T: Real>(
        self,
        outputs: &[T],
        targets: &[T],
        weights: Option<&[T]>,
        width: usize,
        delta: &mut [T],
    ) {
        output_delta(self, outputs, targets, weights, width, delta)
    }
}

multiversion! {
    fn weighted_sum<T: Real>(
        loss: Loss,
        outputs: &[T],
        targets: &[T],
        weights: Option<&[T]>,
        width: usize,
    ) -> f64 {
        let mut total = 0.0;
        let rows = outputs.chunks_exact(width).zip(targets.chunks_exact(width));
        for (i, (p_row, y_row)) in rows.enumerate() {
            let mut row = 0.0;
            let pairs = p_row.iter().zip(y_row);
            match loss {
                Loss::SquaredError => pairs.for_each(|(&p, &y)| {
                    let d = (y - p).to_f64();
                    row += d * d;
                }),
                Loss::AbsoluteError => pairs.for_each(|(&p, &y)| {
                    row += (y - p).to_f64().abs();
                }),
                Loss::Huber { delta } => pairs.for_each(|(&p, &y)| {
                    let r = (y - p).to_f64().abs();
                    row += if r <= delta { 0.5 * r * r } else { delta * (r - 0.5 * delta) };
                }),
                Loss::Poisson => pairs.for_each(|(&p, &y)| {
                    row += xlogy(y.to_f64(), (y / p).to_f64()) - y.to_f64() + p.to_f64();
                }),
                // Most targets are 0 (one-hot rows), whose terms are 0 unless p is NaN:
                // skipped, rather than clipped and tested one by one.
                Loss::LogLoss => pairs.for_each(|(&p, &y)| {
                    if y != T::zero() || p.is_nan() {
                        row += -xlogy(y.to_f64(), clip(p).to_f64());
                    }
                }),
                Loss::BinaryLogLoss => pairs.for_each(|(&p, &y)| {
                    let p = clip(p);
                    row += -(xlogy(y.to_f64(), p.to_f64())
                        + xlogy((T::one() - y).to_f64(), (T::one() - p).to_f64()));
                }),
            }
            total += match weights {
                Some(w) => w[i].to_f64() * row,
                None => row,
            };
        }
        match loss {
            Loss::SquaredError => 0.5 * total / width as f64,
            Loss::AbsoluteError | Loss::Huber { .. } => total / width as f64,
            _ => total,
        }
    }
}

/// `p` clipped to `[eps, 1 - eps]`, as scikit-learn's log-losses do.
#[inline(always)]
fn clip<T: Real>(p: T) -> T {
    let eps = T::epsilon();
    if p < eps {
        eps
    } else if p > T::one() - eps {
        T::one() - eps
    } else {
        p
    }
}

multiversion! {
    fn log_loss_of_classes<T: Real>(
        outputs: &[T],
        classes: &[usize],
        weights: Option<&[T]>,
        width: usize,
    ) -> f64 {
        // the logarithms a block of rows at a time, in vector lanes
        const BLOCK: usize = 32;
        let mut total = 0.0;
        let blocks = classes.chunks(BLOCK).zip(outputs.chunks(BLOCK * width));
        for (b, (block, rows)) in blocks.enumerate() {
            let mut picked = [1.0; BLOCK];
            for ((p, &c), row) in picked.iter_mut().zip(block).zip(rows.chunks_exact(width)) {
                *p = clip(row[c]).to_f64();
            }
            let logs = ln_f64_lanes(picked);
            for (i, &ln) in logs[..block.len()].iter().enumerate() {
                total += match weights {
                    Some(w) => w[b * BLOCK + i].to_f64() * -ln,
                    None => -ln,
                };
            }
        }
        total
    }
}

multiversion! {
    fn output_delta<T: Real>(
        loss: Loss,
        outputs: &[T],
        targets: &[T],
        weights: Option<&[T]>,
        width: usize,
        delta: &mut [T],
    ) {
        let pairs = delta.iter_mut().zip(outputs.iter().zip(targets));
        match loss {
            // (NaN stays NaN in each, so that a diverging run is seen as one)
            Loss::AbsoluteError => pairs.for_each(|(d, (&p, &y))| {
                let r = p - y;
                *d = if r > T::zero() { T::one() } else if r < T::zero() { -T::one() } else { r };
            }),
            Loss::Huber { delta } => {
                let delta = T::from_f64(delta);
                pairs.for_each(|(d, (&p, &y))| {
                    let r = p - y;
                    *d = if r > delta { delta } else if r < -delta { -delta } else { r };
                })
            }
            _ => pairs.for_each(|(d, (&p, &y))| *d = p - y),
        }
        if let Some(w) = weights {
            for (row, &wi) in delta.chunks_exact_mut(width).zip(w) {
                row.iter_mut().for_each(|d| *d *= wi);
            }
        }
    }
}

/// `x * ln(y)`, defined as 0 where `x == 0` (scipy.special.xlogy).
#[inline]
fn xlogy(x: f64, y: f64) -> f64 {
    if x == 0.0 && !y.is_nan() {
        0.0
    } else {
        x * y.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows whose classes sit anywhere, over several blocks of the class path.
    fn softmax_rows(n: usize, k: usize) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
        let mut p = vec![0.0; n * k];
        for (i, row) in p.chunks_exact_mut(k).enumerate() {
            row.iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v = 1.0 + ((i * 7 + j * 3) % 11) as f64);
            let sum: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
        }
        let classes: Vec<usize> = (0..n).map(|i| (i * 5) % k).collect();
        let mut one_hot = vec![0.0; n * k];
        for (i, &c) in classes.iter().enumerate() {
            one_hot[i * k + c] = 1.0;
        }
        (p, classes, one_hot)
    }

    #[test]
    fn log_loss_of_classes_matches_one_hot_targets() {
        let (n, k) = (70, 10);
        let (mut p, classes, one_hot) = softmax_rows(n, k);
        p[5 * k + classes[5]] = 0.0; // clipped to eps
        let w: Vec<f64> = (0..n).map(|i| 0.5 + i as f64 / 10.0).collect();
        for weights in [None, Some(&w[..])] {
            let want = Loss::LogLoss.weighted_sum(&p, &one_hot, weights, k);
            let got = Loss::log_loss_of_classes(&p, &classes, weights, k);
            assert!((got - want).abs() <= 1e-13 * want.abs(), "{got} vs {want}");
        }
        p[33 * k..34 * k].fill(f64::NAN);
        assert!(Loss::log_loss_of_classes(&p, &classes, None, k).is_nan());
    }

    #[test]
    fn squared_error_averages_outputs() {
        let p = [1.0_f64, 2.0, 3.0, 4.0];
        let t = [0.0_f64, 0.0, 0.0, 0.0];
        // rows (1,2) and (3,4): 0.5 * mean over outputs of sum over rows
        let s = Loss::SquaredError.weighted_sum(&p, &t, None, 2);
        assert!((s - 0.5 * (1.0 + 4.0 + 9.0 + 16.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn absolute_and_huber_losses_by_hand() {
        let p = [1.0_f64, -2.0, 0.5, 4.0];
        let t = [0.0_f64, 0.0, 0.0, 4.0];
        // r = 1, 2, 0.5, 0 over rows (1, -2) and (0.5, 4): summed, averaged over outputs
        let abs = Loss::AbsoluteError.weighted_sum(&p, &t, None, 2);
        assert_eq!(abs, (1.0 + 2.0 + 0.5) / 2.0);
        let huber = Loss::Huber { delta: 1.0 }.weighted_sum(&p, &t, Some(&[2.0, 1.0]), 2);
        assert_eq!(huber, (2.0 * (0.5 + (2.0 - 0.5)) + 0.5 * 0.25) / 2.0);
        let mut d = [0.0_f64; 4];
        Loss::AbsoluteError.output_delta(&p, &t, None, 2, &mut d);
        assert_eq!(d, [1.0, -1.0, 1.0, 0.0]);
        Loss::Huber { delta: 1.0 }.output_delta(&p, &t, Some(&[2.0, 1.0]), 2, &mut d);
        assert_eq!(d, [2.0, -2.0, 0.5, 0.0]);
        Loss::AbsoluteError.output_delta(&[f64::NAN], &[0.0], None, 1, &mut d[..1]);
        assert!(d[0].is_nan());
    }

    #[test]
    fn binary_log_loss_clips() {
        let s = Loss::BinaryLogLoss.weighted_sum(&[0.0_f64], &[1.0], None, 1);
        assert!((s + f64::EPSILON.ln()).abs() < 1e-9);
    }

    #[test]
    fn poisson_is_zero_at_the_target() {
        let s = Loss::Poisson.weighted_sum(&[2.0_f64, 1.0], &[2.0, 1.0], None, 2);
        assert!(s.abs() < 1e-15);
    }

    #[test]
    fn delta_is_weighted() {
        let mut d = [0.0_f64; 4];
        Loss::SquaredError.output_delta(
            &[1.0, 2.0, 3.0, 4.0],
            &[0.0; 4],
            Some(&[2.0, 0.5]),
            2,
            &mut d,
        );
        assert_eq!(d, [2.0, 4.0, 1.5, 2.0]);
    }
}
