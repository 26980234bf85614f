//! The epoch loop of the stochastic solvers, with scikit-learn's bookkeeping: batches in
//! order from a per-epoch permutation, the epoch loss, `tol` / `n_iter_no_change`,
//! early stopping on a validation set with best-weight tracking, and interruption.

use crate::batch::{BatchResult, BatchRunner};
use crate::data::{Rows, Targets};
use crate::error::{ensure_shape, Error, Result};
use crate::network::SplitMix64;
use crate::optimizer::{GradScale, Plateau, Scalars, Solver, StepScratch};
use crate::parallel::Par;
use crate::propagate::Net;
use crate::real::Real;
use crate::score::{Score, ScoreAccumulator};
use crate::workspace::{Passes, Workspace};

/// Rows per block when scoring the validation set.
const VALIDATION_ROWS: usize = 1024;

/// Samples with their targets (already binarized for classifiers) and optional weights.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, T> {
    pub x: Rows<'a, T>,
    pub y: Targets<'a, T>,
    pub sample_weight: Option<&'a [T]>,
}

impl<T: Real> Dataset<'_, T> {
    pub fn n_samples(&self) -> usize {
        self.x.n_rows()
    }

    pub fn check(&self, what: &str, net: &Net) -> Result<()> {
        let n = self.n_samples();
        let (n_in, n_out) = (net.layout.n_inputs(), net.layout.n_outputs());
        ensure_shape(self.x.n_cols() == n_in, || {
            format!(
                "{what}: X has {} features, the network expects {n_in}",
                self.x.n_cols()
            )
        })?;
        self.y
            .check(n, n_out)
            .map_err(|e| Error::Shape(format!("{what}: {e}")))?;
        if let Some(w) = self.sample_weight {
            ensure_shape(w.len() == n, || {
                format!("{what}: {} sample weights for {n} samples", w.len())
            })?;
        }
        Ok(())
    }

    /// Gathers rows `which` of X, y and the weights into the workspace; returns the sum of
    /// their weights (their count when unweighted).
    pub(crate) fn gather(&self, which: &[usize], ws: &mut Workspace<T>) -> T {
        self.gather_rows(which.iter().copied(), true, ws)
    }

    /// Gathers the contiguous rows `start..start + len`; with `with_x` false only their
    /// targets and weights (what a score's second pass needs).
    pub(crate) fn gather_range(
        &self,
        start: usize,
        len: usize,
        with_x: bool,
        ws: &mut Workspace<T>,
    ) -> T {
        self.gather_rows(start..start + len, with_x, ws)
    }

    fn gather_rows(
        &self,
        which: impl ExactSizeIterator<Item = usize> + Clone,
        with_x: bool,
        ws: &mut Workspace<T>,
    ) -> T {
        if with_x {
            self.x.gather_rows(which.clone(), &mut ws.x);
        }
        let count = which.len();
        self.y.gather_rows(which.clone(), ws.n_outputs, &mut ws.y);
        ws.one_hot = match self.y {
            Targets::Classes(c) => {
                for (dst, r) in ws.classes.iter_mut().zip(which.clone()) {
                    *dst = c[r] as usize;
                }
                true
            }
            Targets::Dense(_) => false,
        };
        match self.sample_weight {
            Some(w) => {
                let mut sum = T::zero();
                for (dst, r) in ws.w.iter_mut().zip(which) {
                    *dst = w[r];
                    sum += w[r];
                }
                sum
            }
            None => T::from_f64(count as f64),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub alpha: f64,
    pub batch_size: usize,
    pub solver: Solver,
    pub max_iter: usize,
    pub tol: f64,
    /// May be infinite, as in scikit-learn.
    pub n_iter_no_change: f64,
    pub shuffle: bool,
    pub early_stopping: bool,
    /// One epoch only (`partial_fit`).
    pub incremental: bool,
    pub score: Score,
}

/// Counters that persist on the estimator between calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub n_iter: usize,
    /// Samples seen over the model's life.
    pub t: u64,
    pub loss: f64,
    pub no_improvement_count: u64,
    pub best_loss: f64,
    pub best_validation_score: f64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            n_iter: 0,
            t: 0,
            loss: f64::NAN,
            no_improvement_count: 0,
            best_loss: f64::INFINITY,
            best_validation_score: f64::NEG_INFINITY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_iter` epochs ran without convergence.
    MaxIter,
    /// No improvement for `n_iter_no_change` epochs (and no smaller rate to try).
    Converged,
    /// The single epoch of `partial_fit` is done.
    Incremental,
    /// The caller asked to stop (Ctrl-C) between batches.
    Interrupted,
    /// A per-epoch hook asked to stop.
    Callback,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    pub n_iter: usize,
    pub loss: f64,
    pub validation_score: Option<f64>,
}

/// Where the loop meets its caller: shuffling (so Python can reproduce scikit-learn's
/// random stream), interruption, and per-epoch reporting.
pub trait Hooks {
    /// Permutes `order` in place at the start of an epoch (only with `shuffle`).
    fn shuffle(&mut self, order: &mut [usize]) -> Result<()>;
    /// Polled between batches.
    fn interrupted(&mut self) -> bool;
    /// After each epoch's bookkeeping; returning `true` stops training.
    fn epoch_end(&mut self, report: &EpochReport) -> Result<bool>;
    /// When training stopped improving, with the optimizer's decision.
    fn plateau(&mut self, early_stopping: bool, decision: Plateau) -> Result<()>;
}

/// Hooks for pure-Rust use: shuffles with a seeded generator, never interrupts.
pub struct SeededHooks(pub SplitMix64);

impl Hooks for SeededHooks {
    fn shuffle(&mut self, order: &mut [usize]) -> Result<()> {
        self.0.shuffle(order);
        Ok(())
    }
    fn interrupted(&mut self) -> bool {
        false
    }
    fn epoch_end(&mut self, _: &EpochReport) -> Result<bool> {
        Ok(false)
    }
    fn plateau(&mut self, _: bool, _: Plateau) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub loss_curve: Vec<f64>,
    pub validation_scores: Vec<f64>,
    pub stop: StopReason,
}

/// The model being trained: parameters, optimizer tensors and (with early stopping) the
/// best parameters seen, all in the `2L` layout.
pub struct Model<'m, 'a, T> {
    pub params: &'m mut [&'a mut [T]],
    pub optimizer_state: &'m mut [&'a mut [T]],
    pub best: &'m mut [&'a mut [T]],
    pub scalars: &'m mut Scalars,
    pub progress: &'m mut Progress,
}

/// Runs up to `max_iter` epochs (one with `incremental`) of SGD or Adam.
pub fn train<T: Real>(
    net: &Net,
    cfg: &TrainConfig,
    data: &Dataset<'_, T>,
    validation: Option<&Dataset<'_, T>>,
    model: Model<'_, '_, T>,
    hooks: &mut dyn Hooks,
    par: Par,
) -> Result<Outcome> {
    let Model {
        params,
        optimizer_state,
        best,
        scalars,
        progress,
    } = model;
    data.check("training data", net)?;
    net.layout.check("parameters", params)?;
    let per = cfg.solver.state_per_tensor();
    let state_lens: Vec<usize> = (0..per).flat_map(|_| net.layout.tensor_lens()).collect();
    ensure_shape(
        optimizer_state.len() == state_lens.len()
            && optimizer_state
                .iter()
                .zip(&state_lens)
                .all(|(s, &n)| s.len() == n),
        || "optimizer state does not match the network's parameters".into(),
    )?;
    let n = data.n_samples();
    if n == 0 {
        return Err(Error::Value("no samples to train on".into()));
    }
    if cfg.batch_size == 0 || cfg.max_iter == 0 {
        return Err(Error::Value(
            "batch_size and max_iter must be positive".into(),
        ));
    }
    let early_stopping = match (cfg.early_stopping, validation) {
        (false, _) => None,
        (true, Some(v)) => {
            v.check("validation data", net)?;
            net.layout.check("best parameters", best)?;
            if v.n_samples() == 0 {
                return Err(Error::Value("the validation set is empty".into()));
            }
            Some(v)
        }
        (true, None) => return Err(Error::Value("early stopping needs a validation set".into())),
    };

    let batch = cfg.batch_size.min(n);
    let mut runner = BatchRunner::new(&net.layout, batch);
    let mut validation_ws = early_stopping.map(|v| {
        Workspace::new(
            &net.layout,
            v.n_samples().min(VALIDATION_ROWS),
            Passes::Forward,
        )
    });
    let mut order: Vec<usize> = (0..n).collect();
    let mut outcome = Outcome {
        loss_curve: Vec::new(),
        validation_scores: Vec::new(),
        stop: StopReason::MaxIter,
    };

    // The L2 term needs sum ||W||^2 at each batch's start: the optimizer returns it for
    // the weights it leaves, so only the first batch computes it here.
    let mut norm = net.squared_norm(params);
    let mut scratch = StepScratch::default();
    progress.n_iter = 0;
    for _ in 0..cfg.max_iter {
        if cfg.shuffle {
            hooks.shuffle(&mut order)?;
        }
        let mut accumulated = 0.0;
        for start in (0..n).step_by(batch) {
            if hooks.interrupted() {
                outcome.stop = StopReason::Interrupted;
                return Ok(outcome);
            }
            let rows = &order[start..(start + batch).min(n)];
            let m = rows.len();
            let BatchResult {
                loss_sum,
                weight_sum,
            } = runner.run(net, data, rows, params, par)?;
            let penalty = 0.5 * cfg.alpha * norm;
            let batch_loss = (loss_sum + penalty) / weight_sum.to_f64();
            if !batch_loss.is_finite() {
                return Err(Error::Diverged {
                    epoch: progress.n_iter + 1,
                    batch: start / batch + 1,
                    loss: batch_loss,
                });
            }
            let scale = GradScale {
                alpha: cfg.alpha,
                weight_sum: weight_sum.to_f64(),
                n_coefs: net.layout.n_layers(),
            };
            norm = cfg.solver.step(
                params,
                &runner.grads(net),
                optimizer_state,
                scalars,
                scale,
                &mut scratch,
                par,
            )?;
            accumulated += batch_loss * m as f64;
        }

        progress.n_iter += 1;
        progress.loss = accumulated / n as f64;
        progress.t += n as u64;
        outcome.loss_curve.push(progress.loss);

        let validation_score = match (early_stopping, validation_ws.as_mut()) {
            (Some(v), Some(ws)) => {
                let score = validation_score(net, cfg.score, v, params, ws, par)?;
                outcome.validation_scores.push(score);
                if score < progress.best_validation_score + cfg.tol {
                    progress.no_improvement_count += 1;
                } else {
                    progress.no_improvement_count = 0;
                }
                if score > progress.best_validation_score {
                    progress.best_validation_score = score;
                    for (b, p) in best.iter_mut().zip(params.iter()) {
                        b.copy_from_slice(p);
                    }
                }
                Some(score)
            }
            _ => {
                if progress.loss > progress.best_loss - cfg.tol {
                    progress.no_improvement_count += 1;
                } else {
                    progress.no_improvement_count = 0;
                }
                if progress.loss < progress.best_loss {
                    progress.best_loss = progress.loss;
                }
                None
            }
        };
        let report = EpochReport {
            n_iter: progress.n_iter,
            loss: progress.loss,
            validation_score,
        };
        let callback_stop = hooks.epoch_end(&report)?;

        cfg.solver.epoch_ends(progress.t, scalars);

        if progress.no_improvement_count as f64 > cfg.n_iter_no_change {
            let decision = cfg.solver.plateau(scalars);
            hooks.plateau(cfg.early_stopping, decision)?;
            if matches!(decision, Plateau::RateReduced(_)) {
                progress.no_improvement_count = 0;
            } else {
                outcome.stop = StopReason::Converged;
                return Ok(outcome);
            }
        }
        if callback_stop {
            outcome.stop = StopReason::Callback;
            return Ok(outcome);
        }
        if cfg.incremental {
            outcome.stop = StopReason::Incremental;
            return Ok(outcome);
        }
    }
    Ok(outcome)
}

/// The validation score of the current parameters, computed in workspace-sized blocks.
fn validation_score<T: Real>(
    net: &Net,
    kind: Score,
    v: &Dataset<'_, T>,
    params: &[&mut [T]],
    ws: &mut Workspace<T>,
    par: Par,
) -> Result<f64> {
    let k = net.layout.n_outputs();
    let mut acc = ScoreAccumulator::new(kind, net.loss.output_activation(), k);
    let n = v.n_samples();
    for start in (0..n).step_by(ws.capacity) {
        let m = ws.capacity.min(n - start);
        let rows = v.x.contiguous(start, m);
        v.gather_range(start, m, rows.is_none(), ws);
        net.forward_rows(params, rows, ws, m, par)?;
        let w = v.sample_weight.is_some().then(|| &ws.w[..m]);
        acc.add(net.outputs(ws, m), &ws.y[..m * k], w);
    }
    if acc.needs_second_pass() {
        for start in (0..n).step_by(ws.capacity) {
            let m = ws.capacity.min(n - start);
            v.gather_range(start, m, false, ws);
            let w = v.sample_weight.is_some().then(|| &ws.w[..m]);
            acc.add_targets_again(&ws.y[..m * k], w);
        }
    }
    Ok(acc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::loss::Loss;
    use crate::network::Layout;
    use crate::optimizer::Schedule;
    use ndarray::Array2;

    struct Fixture {
        net: Net,
        x: Array2<f64>,
        y: Array2<f64>,
        params: Vec<Vec<f64>>,
        state: Vec<Vec<f64>>,
    }

    fn fixture() -> Fixture {
        let layout = Layout::new(vec![3, 8, 1]).unwrap();
        let mut rng = SplitMix64(11);
        let x = Array2::from_shape_fn((64, 3), |_| rng.next_f64() * 2.0 - 1.0);
        let y = Array2::from_shape_fn((64, 1), |(i, _)| x[[i, 0]] - 0.5 * x[[i, 1]]);
        let params = layout.glorot::<f64>(Activation::Tanh, 5);
        let state = layout
            .tensor_lens()
            .into_iter()
            .map(|n| vec![0.0; n])
            .collect();
        let net = Net {
            layout,
            hidden: Activation::Tanh,
            loss: Loss::SquaredError,
        };
        Fixture {
            net,
            x,
            y,
            params,
            state,
        }
    }

    fn config(lr_init: f64, max_iter: usize) -> (TrainConfig, Scalars) {
        let cfg = TrainConfig {
            alpha: 1e-4,
            batch_size: 10,
            solver: Solver::Sgd {
                momentum: 0.9,
                nesterov: true,
                schedule: Schedule::Constant,
                power_t: 0.5,
            },
            max_iter,
            tol: 0.0,
            n_iter_no_change: f64::INFINITY,
            shuffle: true,
            early_stopping: false,
            incremental: false,
            score: Score::R2,
        };
        let scalars = Scalars {
            learning_rate_init: lr_init,
            learning_rate: lr_init,
            step: 0,
        };
        (cfg, scalars)
    }

    fn run(
        f: &mut Fixture,
        lr: f64,
        max_iter: usize,
        hooks: &mut dyn Hooks,
    ) -> Result<(Outcome, Progress)> {
        let (cfg, mut scalars) = config(lr, max_iter);
        let mut progress = Progress::default();
        let data = Dataset {
            x: Rows::Dense(f.x.view()),
            y: Targets::Dense(f.y.view()),
            sample_weight: None,
        };
        let mut params: Vec<&mut [f64]> = f.params.iter_mut().map(|p| &mut p[..]).collect();
        let mut state: Vec<&mut [f64]> = f.state.iter_mut().map(|p| &mut p[..]).collect();
        let model = Model {
            params: &mut params,
            optimizer_state: &mut state,
            best: &mut [],
            scalars: &mut scalars,
            progress: &mut progress,
        };
        let outcome = train(&f.net, &cfg, &data, None, model, hooks, Par::Sequential)?;
        Ok((outcome, progress))
    }

    #[test]
    fn training_reduces_the_loss_and_counts() {
        let mut f = fixture();
        let (outcome, progress) = run(&mut f, 0.05, 30, &mut SeededHooks(SplitMix64(1))).unwrap();
        assert_eq!(outcome.stop, StopReason::MaxIter);
        assert_eq!(outcome.loss_curve.len(), 30);
        assert_eq!(progress.t, 30 * 64);
        assert!(outcome.loss_curve[29] < 0.2 * outcome.loss_curve[0]);
    }

    #[test]
    fn a_diverging_run_is_an_error() {
        let mut f = fixture();
        let err = run(&mut f, 1e12, 5, &mut SeededHooks(SplitMix64(1))).unwrap_err();
        assert!(matches!(err, Error::Diverged { .. }), "{err:?}");
        assert!(err.to_string().contains("learning rate"));
    }

    struct StopAfter(usize);
    impl Hooks for StopAfter {
        fn shuffle(&mut self, _: &mut [usize]) -> Result<()> {
            Ok(())
        }
        fn interrupted(&mut self) -> bool {
            self.0 = self.0.saturating_sub(1);
            self.0 == 0
        }
        fn epoch_end(&mut self, _: &EpochReport) -> Result<bool> {
            Ok(false)
        }
        fn plateau(&mut self, _: bool, _: Plateau) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn interruption_stops_between_batches() {
        let mut f = fixture();
        // 7 batches per epoch: the 10th poll is the third batch of epoch 2.
        let (outcome, progress) = run(&mut f, 0.05, 100, &mut StopAfter(10)).unwrap();
        assert_eq!(outcome.stop, StopReason::Interrupted);
        assert_eq!(progress.n_iter, 1);
        assert_eq!(outcome.loss_curve.len(), 1);
    }

    #[test]
    fn shape_errors_are_errors() {
        let mut f = fixture();
        f.params[0].pop();
        assert!(matches!(
            run(&mut f, 0.05, 1, &mut SeededHooks(SplitMix64(1))),
            Err(Error::Shape(_))
        ));
    }
}
