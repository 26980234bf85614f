//! Losses, their output-layer error and the L2 penalty, as scikit-learn defines them.

use crate::activation::OutputActivation;
use crate::error::{Error, Result};
use crate::real::Real;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Half the squared error, averaged over outputs (identity output).
    SquaredError,
    /// Half the Poisson deviance, summed over outputs (exp output).
    Poisson,
    /// Categorical cross-entropy (softmax output).
    LogLoss,
    /// Binary cross-entropy per output (logistic output: binary and multilabel).
    BinaryLogLoss,
}

impl Loss {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "squared_error" => Ok(Self::SquaredError),
            "poisson" => Ok(Self::Poisson),
            "log_loss" => Ok(Self::LogLoss),
            "binary_log_loss" => Ok(Self::BinaryLogLoss),
            _ => Err(Error::Value(format!("unknown loss {name:?}"))),
        }
    }

    /// The output activation whose canonical pairing makes the output error `Y - T`.
    pub fn output_activation(self) -> OutputActivation {
        match self {
            Self::SquaredError => OutputActivation::Identity,
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
        let eps = T::epsilon();
        let clip = |p: T| {
            if p < eps {
                eps
            } else if p > T::one() - eps {
                T::one() - eps
            } else {
                p
            }
        };
        let mut total = 0.0;
        let rows = outputs.chunks_exact(width).zip(targets.chunks_exact(width));
        for (i, (p_row, y_row)) in rows.enumerate() {
            let mut row = 0.0;
            for (&p, &y) in p_row.iter().zip(y_row) {
                row += match self {
                    Self::SquaredError => {
                        let d = (y - p).to_f64();
                        d * d
                    }
                    Self::Poisson => xlogy(y.to_f64(), (y / p).to_f64()) - y.to_f64() + p.to_f64(),
                    Self::LogLoss => -xlogy(y.to_f64(), clip(p).to_f64()),
                    Self::BinaryLogLoss => {
                        let p = clip(p);
                        -(xlogy(y.to_f64(), p.to_f64())
                            + xlogy((T::one() - y).to_f64(), (T::one() - p).to_f64()))
                    }
                };
            }
            total += match weights {
                Some(w) => w[i].to_f64() * row,
                None => row,
            };
        }
        match self {
            Self::SquaredError => 0.5 * total / width as f64,
            _ => total,
        }
    }

    /// Writes the output-layer error `(Y - T) * w` into `delta` (in place over `outputs`'s
    /// shape). The same formula holds for every canonical output/loss pair.
    pub fn output_delta<T: Real>(
        outputs: &[T],
        targets: &[T],
        weights: Option<&[T]>,
        width: usize,
        delta: &mut [T],
    ) {
        for (d, (&p, &y)) in delta.iter_mut().zip(outputs.iter().zip(targets)) {
            *d = p - y;
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

    #[test]
    fn squared_error_averages_outputs() {
        let p = [1.0_f64, 2.0, 3.0, 4.0];
        let t = [0.0_f64, 0.0, 0.0, 0.0];
        // rows (1,2) and (3,4): 0.5 * mean over outputs of sum over rows
        let s = Loss::SquaredError.weighted_sum(&p, &t, None, 2);
        assert!((s - 0.5 * (1.0 + 4.0 + 9.0 + 16.0) / 2.0).abs() < 1e-12);
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
        Loss::output_delta(
            &[1.0, 2.0, 3.0, 4.0],
            &[0.0; 4],
            Some(&[2.0, 0.5]),
            2,
            &mut d,
        );
        assert_eq!(d, [2.0, 4.0, 1.5, 2.0]);
    }
}
