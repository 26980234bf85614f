//! Validation scores for early stopping: scikit-learn's `accuracy_score` on predicted
//! labels (classifiers) and `r2_score` averaged over outputs (regressors), both weighted.

use crate::activation::OutputActivation;
use crate::error::{Error, Result};
use crate::real::Real;

/// The validation score of early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// Weighted accuracy of the predicted labels (classifiers).
    Accuracy,
    /// Weighted R2, averaged over outputs (regressors).
    R2,
    /// A classifier of a single class: every predicted label is that class
    /// (`LabelBinarizer.inverse_transform`), so the accuracy is 1 whatever the outputs.
    OneClass,
}

impl std::str::FromStr for Score {
    type Err = Error;

    /// By scikit-learn's name.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "accuracy" => Ok(Self::Accuracy),
            "r2" => Ok(Self::R2),
            "one_class" => Ok(Self::OneClass),
            _ => Err(Error::Value(format!("unknown score {name:?}"))),
        }
    }
}

/// Streaming accumulator over row blocks of (outputs, targets, weights).
#[derive(Debug, Clone)]
pub(crate) struct ScoreAccumulator {
    kind: Score,
    output: OutputActivation,
    width: usize,
    weight_sum: f64,
    correct: f64,
    all_finite: bool,
    // R2's denominator needs the targets' weighted mean first; a one-pass formula
    // (sum w y^2 - ...) would cancel badly, so the targets are read a second time.
    residual: Vec<f64>,
    target_sum: Vec<f64>,
    target_sq_dev: Vec<f64>,
}

impl ScoreAccumulator {
    pub(crate) fn new(kind: Score, output: OutputActivation, width: usize) -> Self {
        Self {
            kind,
            output,
            width,
            weight_sum: 0.0,
            correct: 0.0,
            all_finite: true,
            residual: vec![0.0; width],
            target_sum: vec![0.0; width],
            target_sq_dev: vec![0.0; width],
        }
    }

    /// First pass: every row block once.
    pub(crate) fn add<T: Real>(&mut self, outputs: &[T], targets: &[T], weights: Option<&[T]>) {
        let k = self.width;
        for (i, (p, y)) in outputs
            .chunks_exact(k)
            .zip(targets.chunks_exact(k))
            .enumerate()
        {
            let w = weights.map_or(1.0, |w| w[i].to_f64());
            self.weight_sum += w;
            match self.kind {
                Score::Accuracy => {
                    if predicted_matches(self.output, p, y) {
                        self.correct += w;
                    }
                }
                Score::OneClass => self.correct += w,
                Score::R2 => {
                    for j in 0..k {
                        let (pj, yj) = (p[j].to_f64(), y[j].to_f64());
                        self.all_finite &= pj.is_finite();
                        self.residual[j] += w * (yj - pj) * (yj - pj);
                        self.target_sum[j] += w * yj;
                    }
                }
            }
        }
    }

    /// Whether [`ScoreAccumulator::add_targets_again`] must see every block a second time.
    pub(crate) fn needs_second_pass(&self) -> bool {
        self.kind == Score::R2
    }

    /// Second pass (R2 only): the targets again, for the squared deviation from their mean.
    pub(crate) fn add_targets_again<T: Real>(&mut self, targets: &[T], weights: Option<&[T]>) {
        let k = self.width;
        for (i, y) in targets.chunks_exact(k).enumerate() {
            let w = weights.map_or(1.0, |w| w[i].to_f64());
            for ((dev, &sum), &yj) in self.target_sq_dev.iter_mut().zip(&self.target_sum).zip(y) {
                let d = yj.to_f64() - sum / self.weight_sum;
                *dev += w * d * d;
            }
        }
    }

    pub(crate) fn finish(&self) -> f64 {
        match self.kind {
            Score::Accuracy | Score::OneClass => self.correct / self.weight_sum,
            Score::R2 => {
                if !self.all_finite {
                    return f64::NAN;
                }
                let per_output =
                    self.residual
                        .iter()
                        .zip(&self.target_sq_dev)
                        .map(|(&num, &den)| match (num != 0.0, den != 0.0) {
                            (true, true) => 1.0 - num / den,
                            (true, false) => 0.0,
                            (false, _) => 1.0,
                        });
                per_output.sum::<f64>() / self.width as f64
            }
        }
    }
}

/// Whether the label predicted from one row of outputs is the row's true label.
fn predicted_matches<T: Real>(output: OutputActivation, p: &[T], y: &[T]) -> bool {
    let half = T::from_f64(0.5);
    match output {
        OutputActivation::Softmax => argmax(p) == argmax(y),
        // Binary and multilabel: LabelBinarizer thresholds at 0.5; a row counts only when
        // every label matches (subset accuracy).
        _ => p.iter().zip(y).all(|(&pj, &yj)| (pj > half) == (yj > half)),
    }
}

/// Index of the first maximum, NaN counting as the maximum like `np.argmax`.
fn argmax<T: Real>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        let b = v[best];
        if !b.is_nan() && (x > b || x.is_nan()) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_accuracy() {
        let mut acc = ScoreAccumulator::new(Score::Accuracy, OutputActivation::Softmax, 2);
        acc.add(
            &[0.9_f64, 0.1, 0.2, 0.8],
            &[1.0, 0.0, 1.0, 0.0],
            Some(&[3.0, 1.0]),
        );
        assert!((acc.finish() - 0.75).abs() < 1e-15);
    }

    #[test]
    fn one_class_labels_are_always_right() {
        let mut acc = ScoreAccumulator::new(Score::OneClass, OutputActivation::Logistic, 1);
        acc.add(
            &[0.9_f64, f64::NAN, 0.2],
            &[0.0, 0.0, 0.0],
            Some(&[1.0, 2.0, 3.0]),
        );
        assert_eq!(acc.finish(), 1.0);
        let mut acc = ScoreAccumulator::new(Score::Accuracy, OutputActivation::Logistic, 1);
        acc.add(&[0.9_f64, 0.2], &[0.0, 0.0], None);
        assert_eq!(acc.finish(), 0.5);
    }

    #[test]
    fn r2_matches_definition() {
        let p = [1.0_f64, 2.0, 2.0];
        let y = [1.0_f64, 2.0, 3.0];
        let mut acc = ScoreAccumulator::new(Score::R2, OutputActivation::Identity, 1);
        acc.add(&p, &y, None);
        acc.add_targets_again(&y, None);
        // residual 1, deviation 2
        assert!((acc.finish() - 0.5).abs() < 1e-15);
    }
}
