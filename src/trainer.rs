//! The epoch loop of the stochastic solvers, step by step as scikit-learn's
//! `BaseMultilayerPerceptron._fit_stochastic` runs it: batches in order from a per-epoch
//! permutation, the epoch loss, `_update_no_improvement_count` (tol, early stopping on a
//! validation set with best-weight tracking), the optimizer's `iteration_ends` and
//! `trigger_stopping`, and interruption between batches.

use crate::batch::{part_count, BatchRunner, StepOf};
use crate::data::Dataset;
use crate::dropout::Dropout;
use crate::error::{ensure_shape, Error, Result};
use crate::gemm::Precision;
use crate::memory;
use crate::network::SplitMix64;
use crate::optimizer::{Plateau, Scalars, Solver};
use crate::parallel::{threads_for, threads_for_halves, Governor, Par};
use crate::propagate::Net;
use crate::real::Real;
use crate::score::{Score, ScoreAccumulator};
use crate::split::{self, SplitRunner};
use crate::team;
use crate::workspace::{Passes, Workspace};
use std::ops::Range;
use std::time::Instant;

/// Rows per block when scoring the validation set.
const VALIDATION_ROWS: usize = 1024;

/// The hyperparameters of a stochastic fit (scikit-learn's names).
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// L2 penalty.
    pub alpha: f64,
    /// Rows per mini-batch, already clipped to the sample count (scikit-learn's rule).
    pub batch_size: usize,
    /// SGD or Adam, with their own hyperparameters.
    pub solver: Solver,
    /// Epochs at most.
    pub max_iter: usize,
    /// The improvement an epoch must make to count as one.
    pub tol: f64,
    /// Non-improving epochs tolerated; may be infinite, as in scikit-learn.
    pub n_iter_no_change: f64,
    /// Whether each epoch visits the samples in a new order.
    pub shuffle: bool,
    /// Whether to stop on a validation score (the validation set is passed to [`train`]).
    pub early_stopping: bool,
    /// One epoch only (`partial_fit`).
    pub incremental: bool,
    /// The validation score of early stopping.
    pub score: Score,
    /// Dropout of hidden units (no rates: none).
    pub dropout: Dropout,
    /// How the batches' matrix products treat their operands (predictions and
    /// validation scores are always exact).
    pub precision: Precision,
}

/// Counters that persist on the estimator between calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Epochs run by the last call (`n_iter_`).
    pub n_iter: usize,
    /// Samples seen over the model's life (`t_`).
    pub t: u64,
    /// The last epoch's loss (`loss_`).
    pub loss: f64,
    /// Consecutive epochs without improvement (`_no_improvement_count`).
    pub no_improvement_count: u64,
    /// The best epoch loss so far (`best_loss_`).
    pub best_loss: f64,
    /// The best validation score so far (`best_validation_score_`).
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

/// Why training stopped.
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
    /// The loss stopped being finite with early stopping, which has best weights to
    /// fall back on (without early stopping that is an [`Error::Diverged`]).
    Diverged,
}

/// What the loop tells its caller after each epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// Epochs run by this call so far.
    pub n_iter: usize,
    /// The epoch's loss.
    pub loss: f64,
    /// The epoch's validation score, with early stopping.
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

/// What a call of [`train`] produced besides the updated model.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Each epoch's loss.
    pub loss_curve: Vec<f64>,
    /// Each epoch's validation score (with early stopping).
    pub validation_scores: Vec<f64>,
    /// Each epoch's validation loss, the training loss without the L2 term (with early
    /// stopping).
    pub validation_losses: Vec<f64>,
    /// Why the loop ended.
    pub stop: StopReason,
}

impl Outcome {
    fn new() -> Self {
        Self {
            loss_curve: Vec::new(),
            validation_scores: Vec::new(),
            validation_losses: Vec::new(),
            stop: StopReason::MaxIter,
        }
    }

    /// The end of a run whose loss became `loss` (not finite) with early stopping: the
    /// epoch counts, and its loss and validation score record it (NaN: scikit-learn,
    /// which trains on after a divergence, would score NaN weights).
    fn end_diverged(&mut self, progress: &mut Progress, loss: f64, n_samples: usize) {
        progress.n_iter += 1;
        progress.loss = loss;
        progress.t += n_samples as u64;
        self.loss_curve.push(loss);
        self.validation_scores.push(f64::NAN);
        self.validation_losses.push(f64::NAN);
        self.stop = StopReason::Diverged;
    }
}

/// The model being trained: parameters, optimizer tensors and (with early stopping) the
/// best parameters seen, all in the `2L` layout.
pub struct Model<'m, 'a, T> {
    /// The parameters, updated in place.
    pub params: &'m mut [&'a mut [T]],
    /// The optimizer's tensors (velocities, or Adam's moments).
    pub optimizer_state: &'m mut [&'a mut [T]],
    /// The best parameters seen (early stopping only; else empty).
    pub best: &'m mut [&'a mut [T]],
    /// The optimizer's scalars.
    pub scalars: &'m mut Scalars,
    /// The counters kept between calls.
    pub progress: &'m mut Progress,
}

/// The threads a fit on `data` runs on (see [`threads_for`]): one batch is a step; a
/// fit whose batches are cut by hidden units has two halves to share.
pub fn fit_threads<T: Real>(
    n_jobs: Option<i64>,
    net: &Net,
    cfg: &TrainConfig,
    data: &Dataset<'_, T>,
) -> Result<usize> {
    if takes_halves(net, cfg, data) {
        return threads_for_halves(n_jobs);
    }
    let batch = cfg.batch_size.min(data.n_samples());
    threads_for(n_jobs, batch * net.layout.n_params(), usize::MAX)
}

/// Whether a fit's batches are cut by hidden units ([`split::applies`] of its shapes).
fn takes_halves<T: Real>(net: &Net, cfg: &TrainConfig, data: &Dataset<'_, T>) -> bool {
    let batch = cfg.batch_size.min(data.n_samples());
    split::applies(&net.layout, &data.x, (&cfg.dropout, cfg.precision), batch)
}

/// Batches of fewer multiply-adds than this (rows x parameters) run on a team of two
/// threads rather than on the rayon pool, whose fork-joins cost as much as such a
/// batch's pieces save (W2's batches are ~2^20).
const MAX_TEAM_WORK: usize = 1 << 22;

/// Whether a call on `par`'s threads runs on a [`crate::team`]: its pool of two
/// threads, and its batches small ([`MAX_TEAM_WORK`]) or of two parts or more, one or
/// more for each thread: between a batch's phases rayon's idle worker sleeps and wakes
/// late, which cost larger batches too (on the team, engine alone on the Intel host:
/// C1 float32 0.117 -> 0.114 s per epoch, C2 0.633 -> 0.608, C3 0.126 -> 0.119, C1
/// float64 0.234 -> 0.221; bfloat16 on AMX, whose products are short, C1 0.0745 ->
/// 0.0675, C2 0.292 -> 0.221). A large batch of one part stays on the pool, whose
/// threads then share its products (a team's products run on the thread of their
/// part).
fn takes_team<T: Real>(net: &Net, cfg: &TrainConfig, data: &Dataset<'_, T>, par: Par) -> bool {
    let batch = cfg.batch_size.min(data.n_samples());
    let small = batch.saturating_mul(net.layout.n_params()) < MAX_TEAM_WORK;
    par == Par::Rayon && rayon::current_num_threads() == 2 && (small || part_count(batch) >= 2)
}

/// Runs up to `max_iter` epochs (one with `incremental`) of SGD or Adam, as scikit-learn's
/// `_fit_stochastic` does: after each epoch the loss curve, `_update_no_improvement_count`,
/// the per-epoch hook, the optimizer's `iteration_ends`, then `trigger_stopping` once
/// `n_iter_no_change` epochs did not improve.
pub fn train<'d, T: Real>(
    net: &Net,
    cfg: &TrainConfig,
    data: &Dataset<'d, T>,
    validation: Option<&Dataset<'d, T>>,
    model: Model<'_, '_, T>,
    hooks: &mut dyn Hooks,
    par: Par,
) -> Result<Outcome> {
    let run = |par: Par| -> Result<Outcome> {
        let Model {
            params,
            optimizer_state,
            best,
            scalars,
            progress,
        } = model;
        let validation = check_training(net, cfg, data, validation, params, optimizer_state, best)?;
        let mut epochs = Epochs::new(net, cfg, data, validation, params, par)?;
        let mut outcome = Outcome::new();
        progress.n_iter = 0;
        for _ in 0..cfg.max_iter {
            if cfg.shuffle {
                hooks.shuffle(&mut epochs.order)?;
            }
            let loss = match epochs.run(params, optimizer_state, scalars, hooks, progress) {
                Ok(Some(loss)) => loss,
                Ok(None) => {
                    outcome.stop = StopReason::Interrupted;
                    return Ok(outcome);
                }
                // early stopping keeps its best weights: the caller restores them
                Err(Error::Diverged { loss, .. }) if progress.best_validation_score.is_finite() => {
                    outcome.end_diverged(progress, loss, data.n_samples());
                    return Ok(outcome);
                }
                Err(e) => return Err(e),
            };
            progress.n_iter += 1;
            progress.loss = loss;
            progress.t += data.n_samples() as u64;
            outcome.loss_curve.push(loss);
            let validation = epochs.validation(params)?;
            if let Some((score, validation_loss)) = validation {
                outcome.validation_scores.push(score);
                outcome.validation_losses.push(validation_loss);
            }
            let validation_score = validation.map(|(score, _)| score);
            update_no_improvement_count(cfg, progress, validation_score, params, best);
            let callback_stop = hooks.epoch_end(&EpochReport {
                n_iter: progress.n_iter,
                loss,
                validation_score,
            })?;
            cfg.solver.iteration_ends(progress.t, scalars);
            if let Some(stop) = trigger_stopping(cfg, progress, scalars, hooks)? {
                outcome.stop = stop;
                return Ok(outcome);
            }
            if callback_stop || cfg.incremental {
                outcome.stop = if callback_stop {
                    StopReason::Callback
                } else {
                    StopReason::Incremental
                };
                return Ok(outcome);
            }
        }
        Ok(outcome)
    };
    // small batches on two threads: a team rather than rayon's fork-joins
    if takes_team(net, cfg, data, par) {
        team::with_team(|| run(Par::Team))
    } else {
        run(par)
    }
}

/// Checks the inputs of [`train`] against the network and the configuration; returns
/// the validation set early stopping will score on.
fn check_training<'v, 'd, T: Real>(
    net: &Net,
    cfg: &TrainConfig,
    data: &Dataset<'_, T>,
    validation: Option<&'v Dataset<'d, T>>,
    params: &[&mut [T]],
    optimizer_state: &[&mut [T]],
    best: &[&mut [T]],
) -> Result<Option<&'v Dataset<'d, T>>> {
    let (n_in, n_out) = (net.layout.n_inputs(), net.layout.n_outputs());
    data.check("training data", n_in, n_out)?;
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
    if data.n_samples() == 0 {
        return Err(Error::Value("no samples to train on".into()));
    }
    if cfg.batch_size == 0 || cfg.max_iter == 0 {
        return Err(Error::Value(
            "batch_size and max_iter must be positive".into(),
        ));
    }
    match (cfg.early_stopping, validation) {
        (false, _) => Ok(None),
        (true, Some(v)) => {
            v.check("validation data", n_in, n_out)?;
            net.layout.check("best parameters", best)?;
            if v.n_samples() == 0 {
                return Err(Error::Value("the validation set is empty".into()));
            }
            Ok(Some(v))
        }
        (true, None) => Err(Error::Value("early stopping needs a validation set".into())),
    }
}

/// scikit-learn's `_update_no_improvement_count`: with early stopping the validation
/// score must beat the best by `tol` (and a new best score saves the parameters), else
/// the epoch loss must fall below the best by `tol`.
fn update_no_improvement_count<T: Real>(
    cfg: &TrainConfig,
    progress: &mut Progress,
    validation_score: Option<f64>,
    params: &[&mut [T]],
    best: &mut [&mut [T]],
) {
    // "did not improve" as scikit-learn writes it, so that a NaN score counts alike
    let stalled = match validation_score {
        Some(score) => {
            let stalled = score < progress.best_validation_score + cfg.tol;
            if score > progress.best_validation_score {
                progress.best_validation_score = score;
                for (b, p) in best.iter_mut().zip(params) {
                    b.copy_from_slice(p);
                }
            }
            stalled
        }
        None => {
            let stalled = progress.loss > progress.best_loss - cfg.tol;
            if progress.loss < progress.best_loss {
                progress.best_loss = progress.loss;
            }
            stalled
        }
    };
    if stalled {
        progress.no_improvement_count += 1;
    } else {
        progress.no_improvement_count = 0;
    }
}

/// Once more than `n_iter_no_change` epochs did not improve: the optimizer's
/// `trigger_stopping` (`adaptive` divides the rate by 5 and goes on) reported to the
/// hooks; the reason to stop, if training stops.
fn trigger_stopping(
    cfg: &TrainConfig,
    progress: &mut Progress,
    scalars: &mut Scalars,
    hooks: &mut dyn Hooks,
) -> Result<Option<StopReason>> {
    if progress.no_improvement_count as f64 <= cfg.n_iter_no_change {
        return Ok(None);
    }
    let decision = cfg.solver.trigger_stopping(scalars);
    hooks.plateau(cfg.early_stopping, decision)?;
    if let Plateau::RateReduced(_) = decision {
        progress.no_improvement_count = 0;
        return Ok(None);
    }
    Ok(Some(StopReason::Converged))
}

/// How a fit's batches are cut: by rows (most fits) or by hidden units ([`split`]).
#[allow(clippy::large_enum_variant)] // one per fit, never moved in the epoch loop
enum Runner<T> {
    Rows(BatchRunner<T>),
    Halves(SplitRunner<T>),
}

impl<T: Real> Runner<T> {
    fn new(net: &Net, cfg: &TrainConfig, data: &Dataset<'_, T>, par: Par) -> Result<Self> {
        let batch = cfg.batch_size.min(data.n_samples());
        Ok(if takes_halves(net, cfg, data) {
            Runner::Halves(SplitRunner::new(net, batch, &cfg.solver)?)
        } else {
            let setup = (&cfg.dropout, cfg.precision);
            Runner::Rows(BatchRunner::new(&net.layout, batch, setup, &data.x, par)?)
        })
    }
}

/// What the epochs of one fit share: the batch buffers, the epoch's order and the
/// validation set's workspace.
struct Epochs<'n, 'd, T> {
    net: &'n Net,
    cfg: &'n TrainConfig,
    data: &'n Dataset<'d, T>,
    validation: Option<(&'n Dataset<'d, T>, Workspace<T>)>,
    runner: Runner<T>,
    order: Vec<usize>,
    /// `sum ||W||^2` of the current weights: the optimizer returns it for the weights
    /// it leaves, so only the first batch computes it here.
    norm: f64,
    par: Par,
    /// Whether each batch runs on the call's threads (see [`Governor`]).
    governor: Governor,
}

impl<'n, 'd, T: Real> Epochs<'n, 'd, T> {
    fn new(
        net: &'n Net,
        cfg: &'n TrainConfig,
        data: &'n Dataset<'d, T>,
        validation: Option<&'n Dataset<'d, T>>,
        params: &[&mut [T]],
        par: Par,
    ) -> Result<Self> {
        let n = data.n_samples();
        let validation = match validation {
            Some(v) => {
                let rows = v.n_samples().min(VALIDATION_ROWS);
                let ws = Workspace::for_rows(&net.layout, rows, Passes::Forward, &v.x, false)?;
                Some((v, ws))
            }
            None => None,
        };
        let mut order = memory::filled(n, 0, || "the epoch's order of samples".into())?;
        order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
        Ok(Self {
            net,
            cfg,
            data,
            validation,
            runner: Runner::new(net, cfg, data, par)?,
            order,
            norm: net.squared_norm(params),
            governor: Governor::new(par),
            par,
        })
    }

    /// One epoch over `order` in batches (the inner loop of `_fit_stochastic`); returns
    /// the epoch loss, or `None` when interrupted between batches.
    fn run(
        &mut self,
        params: &mut [&mut [T]],
        optimizer_state: &mut [&mut [T]],
        scalars: &mut Scalars,
        hooks: &mut dyn Hooks,
        progress: &Progress,
    ) -> Result<Option<f64>> {
        // halves keep their shares for the epoch; between epochs the full tensors are
        // read (validation, callbacks, the best weights) and may be replaced
        match &mut self.runner {
            Runner::Halves(split) => split.load(params, optimizer_state),
            // (the weights packed by the last update may be stale by now)
            Runner::Rows(rows) => rows.weights_replaced(),
        }
        let n = self.data.n_samples();
        let batch = self.cfg.batch_size.min(n);
        let mut accumulated = 0.0;
        let mut interrupted = false;
        for start in (0..n).step_by(batch) {
            if hooks.interrupted() {
                interrupted = true;
                break;
            }
            let end = (start + batch).min(n);
            let first_visit = progress.t + start as u64;
            let next = end..(end + batch).min(n);
            let rows = (start..end, next, first_visit);
            let par = self.governor.par();
            let started = Instant::now();
            let batch_loss = self.batch(rows, params, optimizer_state, scalars, par)?;
            if end - start == batch {
                self.governor.record(started.elapsed().as_secs_f64());
            }
            let Some(batch_loss) = batch_loss else {
                return Err(Error::ZeroWeights(format!(
                    "The sample weights of mini-batch {} of epoch {} (rows {start} to {} of \
                     the epoch's order) sum to zero, so it has no loss to minimise. Give \
                     fewer samples a zero weight, or use a larger batch_size.",
                    start / batch + 1,
                    progress.n_iter + 1,
                    end - 1
                )));
            };
            if !batch_loss.is_finite() {
                return Err(Error::Diverged {
                    epoch: progress.n_iter + 1,
                    batch: start / batch + 1,
                    loss: batch_loss,
                });
            }
            accumulated += batch_loss * (end - start) as f64;
        }
        if let Runner::Halves(split) = &mut self.runner {
            split.store(params, optimizer_state);
        }
        Ok((!interrupted).then(|| accumulated / n as f64))
    }

    /// Forward and backward passes over the rows `order[range]` and the optimizer's
    /// update (`_backprop` and `_optimizer.update_params`); returns the batch loss, and
    /// skips the update when that is not finite; `None` (and no update) when the rows'
    /// weights sum to zero.
    fn batch(
        &mut self,
        (range, next, first_visit): (Range<usize>, Range<usize>, u64),
        params: &mut [&mut [T]],
        optimizer_state: &mut [&mut [T]],
        scalars: &mut Scalars,
        par: Par,
    ) -> Result<Option<f64>> {
        let cfg = self.cfg;
        let rows = &self.order[range];
        let step = StepOf {
            solver: &cfg.solver,
            alpha: cfg.alpha,
            penalty: 0.5 * cfg.alpha * self.norm,
            finite_weights: self.norm.is_finite(),
        };
        let stepped = match &mut self.runner {
            Runner::Rows(r) => {
                let tensors = (params, optimizer_state);
                let rows = (rows, first_visit);
                r.step(self.net, self.data, rows, tensors, step, scalars, par)?
            }
            Runner::Halves(split) => {
                // the next batch's forward pass runs in this batch's parallel job
                let next = (!next.is_empty()).then(|| &self.order[next]);
                split.batch(self.data, (rows, next), step, scalars, par)?
            }
        };
        Ok(stepped.map(|(batch_loss, norm)| {
            // a diverged batch updated nothing (the caller stops)
            if batch_loss.is_finite() {
                self.norm = norm;
            }
            batch_loss
        }))
    }

    /// The validation score of the current parameters (scikit-learn's `_score` on the
    /// validation split) and their validation loss (without the L2 term), computed in
    /// workspace-sized blocks; `None` without early stopping.
    fn validation(&mut self, params: &[&mut [T]]) -> Result<Option<(f64, f64)>> {
        let Some((v, ws)) = self.validation.as_mut() else {
            return Ok(None);
        };
        let net = self.net;
        let k = net.layout.n_outputs();
        let mut acc = ScoreAccumulator::new(self.cfg.score, net.loss.output_activation(), k);
        let (mut loss_sum, mut weight_sum) = (0.0, 0.0);
        let n = v.n_samples();
        let weighted = v.sample_weight.is_some();
        for start in (0..n).step_by(ws.capacity) {
            let m = ws.capacity.min(n - start);
            let rows = v.x.contiguous(start, m);
            weight_sum += ws.gather_range(v, start, m, rows.is_none())?.to_f64();
            net.forward_rows(params, rows, ws, m, self.par)?;
            loss_sum += net.loss_sum(ws, m, weighted);
            let w = weighted.then(|| &ws.w[..m]);
            acc.add(net.outputs(ws, m), &ws.y[..m * k], w);
        }
        if acc.needs_second_pass() {
            for start in (0..n).step_by(ws.capacity) {
                let m = ws.capacity.min(n - start);
                ws.gather_range(v, start, m, false)?;
                let w = v.sample_weight.is_some().then(|| &ws.w[..m]);
                acc.add_targets_again(&ws.y[..m * k], w);
            }
        }
        Ok(Some((acc.finish(), loss_sum / weight_sum)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::data::{Rows, Targets};
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
        fixture_with(8)
    }

    /// 64 rows of 3 features, one hidden layer of `hidden` tanh units, one output.
    fn fixture_with(hidden: usize) -> Fixture {
        let layout = Layout::new(vec![3, hidden, 1]).unwrap();
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
            dropout: Dropout::default(),
            precision: Precision::Exact,
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
        hooks: &mut (dyn Hooks + Send),
    ) -> Result<(Outcome, Progress)> {
        run_on(f, config(lr, max_iter), hooks, 1)
    }

    /// A fit of `f` by `cfg` on `threads` threads.
    fn run_on(
        f: &mut Fixture,
        (cfg, mut scalars): (TrainConfig, Scalars),
        hooks: &mut (dyn Hooks + Send),
        threads: usize,
    ) -> Result<(Outcome, Progress)> {
        let mut progress = Progress::default();
        let data = Dataset {
            x: Rows::Dense(f.x.view()),
            y: Targets::Dense(f.y.view()),
            sample_weight: None,
        };
        let mut params: Vec<&mut [f64]> = f.params.iter_mut().map(|p| &mut p[..]).collect();
        let mut state: Vec<&mut [f64]> = f.state.iter_mut().map(|p| &mut p[..]).collect();
        let outcome = crate::parallel::with_threads(threads, |par| {
            let model = Model {
                params: &mut params,
                optimizer_state: &mut state,
                best: &mut [],
                scalars: &mut scalars,
                progress: &mut progress,
            };
            train(&f.net, &cfg, &data, None, model, hooks, par)
        })??;
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

    /// A fit by halves of the hidden units (2,000 units: 100,000 multiply-adds per
    /// batch of 10) keeps the batches of an interrupted epoch, as the rows' path does.
    #[test]
    fn interrupted_halves_keep_the_epochs_batches() {
        let halves = fixture_with(2000);
        let x = Rows::Dense(halves.x.view());
        let (cfg, _) = config(0.05, 1);
        let setup = (&cfg.dropout, cfg.precision);
        assert!(split::applies(
            &halves.net.layout,
            &x,
            setup,
            cfg.batch_size
        ));
        let params_after = |polls: usize, max_iter: usize| {
            let mut f = fixture_with(2000);
            run(&mut f, 0.01, max_iter, &mut StopAfter(polls)).unwrap();
            f.params
        };
        // 7 batches an epoch: the 8th poll stops before epoch 2's first batch, the 10th
        // after its second
        let one_epoch = params_after(usize::MAX, 1);
        assert_eq!(params_after(8, 100), one_epoch);
        let two_batches_more = params_after(10, 100);
        assert_ne!(two_batches_more, one_epoch);
        assert!(two_batches_more.iter().flatten().all(|v| v.is_finite()));
    }

    /// The parameters after a fit of `f` in batches of `batch_size` on `threads`
    /// threads; two take a team for these small batches.
    fn fit_on(f: &mut Fixture, batch_size: usize, threads: usize) -> Vec<Vec<f64>> {
        let (mut cfg, scalars) = config(0.01, 3);
        cfg.batch_size = batch_size;
        let data = Dataset {
            x: Rows::Dense(f.x.view()),
            y: Targets::Dense(f.y.view()),
            sample_weight: None,
        };
        let team = crate::parallel::with_threads(2, |par| takes_team(&f.net, &cfg, &data, par));
        assert!(team.unwrap());
        run_on(f, (cfg, scalars), &mut SeededHooks(SplitMix64(3)), threads).unwrap();
        f.params.clone()
    }

    /// A team of two threads gives one thread's bits, by halves of the hidden units
    /// (2,000 units, batches of 10) and by rows (two hidden layers, batches of 200 in
    /// two parts; one wide hidden layer, batches of 400 in four parts, over
    /// [`MAX_TEAM_WORK`]).
    #[test]
    fn a_team_gives_one_threads_bits() {
        let halves = |threads| fit_on(&mut fixture_with(2000), 10, threads);
        assert_eq!(halves(2), halves(1));
        let rows = |units: &[usize], n: usize, batch: usize, threads| {
            let mut f = fixture_with(8);
            let layout = Layout::new(units.to_vec()).unwrap();
            let mut rng = SplitMix64(5);
            f.x = Array2::from_shape_fn((n, units[0]), |_| rng.next_f64() * 2.0 - 1.0);
            f.y = Array2::from_shape_fn((n, 1), |(i, _)| f.x[[i, 0]] * f.x[[i, 2]]);
            f.params = layout.glorot::<f64>(Activation::Tanh, 5);
            f.state = layout
                .tensor_lens()
                .into_iter()
                .map(|n| vec![0.0; n])
                .collect();
            f.net.layout = layout;
            fit_on(&mut f, batch, threads)
        };
        for (units, n, batch) in [(&[3, 32, 16, 1][..], 600, 200), (&[40, 300, 1], 1200, 400)] {
            let one = rows(units, n, batch, 1);
            assert_eq!(rows(units, n, batch, 2), one);
            assert!(one.iter().flatten().all(|v| v.is_finite()));
        }
    }

    /// Large batches of one part stay on the pool (its threads share the products).
    #[test]
    fn a_large_batch_of_one_part_takes_the_pool() {
        let f = fixture_with(40_000);
        let (mut cfg, _) = config(0.01, 1);
        cfg.batch_size = 64;
        let data = Dataset {
            x: Rows::Dense(f.x.view()),
            y: Targets::Dense(f.y.view()),
            sample_weight: None,
        };
        // (64 rows x 200,000 parameters: over MAX_TEAM_WORK, one part)
        let team = crate::parallel::with_threads(2, |par| takes_team(&f.net, &cfg, &data, par));
        assert!(!team.unwrap());
        cfg.batch_size = 16;
        let team = crate::parallel::with_threads(2, |par| takes_team(&f.net, &cfg, &data, par));
        assert!(team.unwrap(), "16 x 200,000: small");
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
