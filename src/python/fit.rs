//! The fit entry points: `fit_stochastic` (SGD / Adam epochs in the engine) and
//! `loss_and_gradient` (the objective scipy's L-BFGS-B calls).

use super::args::{first_item, slices_mut, with_dtype, ConfigArg, DataArg, ObjectiveArg, StateArg};
use super::errors::run_detached;
use super::hooks::{run_interruptible, PyHooks, Shuffler};
use crate::memory;
use crate::{
    fit_threads, loss_and_gradient as engine_loss_and_gradient, loss_threads, train,
    with_shared_threads, Model, Outcome, Progress, Real, Scalars, StopReason,
};
use numpy::{Element, IntoPyArray, PyReadonlyArray1, PyReadwriteArray1, PyReadwriteArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::AtomicBool;

/// The validation split as Python passes it: samples, targets, optional weights.
type ValidationArg<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
);

/// Everything `fit_stochastic` receives, still untyped.
struct FitCall<'py> {
    x: Bound<'py, PyAny>,
    y: Bound<'py, PyAny>,
    sample_weight: Option<Bound<'py, PyAny>>,
    validation: Option<ValidationArg<'py>>,
    params: Bound<'py, PyAny>,
    optimizer_state: Bound<'py, PyAny>,
    best: Bound<'py, PyAny>,
    config: ConfigArg,
    state: StateArg,
    shuffle: Option<Py<PyAny>>,
    on_epoch: Option<Py<PyAny>>,
    on_plateau: Option<Py<PyAny>>,
    shuffle_state: Option<PyReadwriteArray1<'py, u32>>,
}

/// Runs SGD or Adam epochs, updating `params`, `optimizer_state` and `best` in place.
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, validation, params, optimizer_state, best, config, state, shuffle=None, on_epoch=None, on_plateau=None, shuffle_state=None))]
#[allow(clippy::too_many_arguments)]
pub(super) fn fit_stochastic<'py>(
    py: Python<'py>,
    x: Bound<'py, PyAny>,
    y: Bound<'py, PyAny>,
    sample_weight: Option<Bound<'py, PyAny>>,
    validation: Option<ValidationArg<'py>>,
    params: Bound<'py, PyAny>,
    optimizer_state: Bound<'py, PyAny>,
    best: Bound<'py, PyAny>,
    config: ConfigArg,
    state: StateArg,
    shuffle: Option<Py<PyAny>>,
    on_epoch: Option<Py<PyAny>>,
    on_plateau: Option<Py<PyAny>>,
    shuffle_state: Option<PyReadwriteArray1<'py, u32>>,
) -> PyResult<Bound<'py, PyDict>> {
    let call = FitCall {
        x,
        y,
        sample_weight,
        validation,
        params,
        optimizer_state,
        best,
        config,
        state,
        shuffle,
        on_epoch,
        on_plateau,
        shuffle_state,
    };
    with_dtype!(&first_item(&call.params)?, T => fit_typed::<T>(py, call))
}

/// The model's arrays, borrowed writable from Python.
struct ModelArrays<'py, T: Element> {
    params: Vec<PyReadwriteArrayDyn<'py, T>>,
    optimizer_state: Vec<PyReadwriteArrayDyn<'py, T>>,
    best: Vec<PyReadwriteArrayDyn<'py, T>>,
}

fn fit_typed<'py, T: Element + Real>(
    py: Python<'py>,
    call: FitCall<'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let (net, cfg) = (call.config.net()?, call.config.train_config()?);
    let data = DataArg::<T>::extract(&call.x, &call.y, call.sample_weight.as_ref())?;
    let validation = match &call.validation {
        Some((x, y, w)) => Some(DataArg::<T>::extract(x, y, w.as_ref())?),
        None => None,
    };
    let mut arrays = ModelArrays::<T> {
        params: call.params.extract()?,
        optimizer_state: call.optimizer_state.extract()?,
        best: call.best.extract()?,
    };
    let mut params = slices_mut(&mut arrays.params)?;
    let mut opt = slices_mut(&mut arrays.optimizer_state)?;
    let mut best = slices_mut(&mut arrays.best)?;
    let data = data.dataset()?;
    let validation = validation.as_ref().map(|v| v.dataset()).transpose()?;
    let threads = fit_threads(call.config.n_jobs, &net, &cfg, &data)?;
    let (mut scalars, mut progress) = scalars_and_progress(&call.config, &call.state);

    let mut shuffle_state = call.shuffle_state;
    let shuffler = Shuffler::new(cfg.shuffle, shuffle_state.as_ref(), call.shuffle)?;
    let stop = AtomicBool::new(false);
    let mut hooks = PyHooks::new(shuffler, call.on_epoch, call.on_plateau, &stop);
    let result = run_interruptible(py, threads, &mut hooks, |hooks, par| {
        let model = Model {
            params: &mut params,
            optimizer_state: &mut opt,
            best: &mut best,
            scalars: &mut scalars,
            progress: &mut progress,
        };
        train(&net, &cfg, &data, validation.as_ref(), model, hooks, par)
    });
    hooks.shuffle.save(shuffle_state.as_mut())?;
    fit_result(py, result?, &progress, &scalars, threads)
}

/// The engine's scalars and counters as the estimator left them.
fn scalars_and_progress(config: &ConfigArg, state: &StateArg) -> (Scalars, Progress) {
    let scalars = Scalars {
        learning_rate_init: config.learning_rate_init,
        learning_rate: state.learning_rate,
        step: state.step,
    };
    let progress = Progress {
        n_iter: 0,
        t: state.t,
        loss: state.loss,
        no_improvement_count: state.no_improvement_count,
        best_loss: state.best_loss,
        best_validation_score: state.best_validation_score,
    };
    (scalars, progress)
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::MaxIter => "max_iter",
        StopReason::Converged => "converged",
        StopReason::Incremental => "incremental",
        StopReason::Interrupted => "interrupted",
        StopReason::Callback => "callback",
        StopReason::Diverged => "diverged",
    }
}

/// The dict `fit_stochastic` returns: curves, why it stopped, the new state, and the
/// threads the fit ran on (what the thread policy chose).
fn fit_result<'py>(
    py: Python<'py>,
    outcome: Outcome,
    progress: &Progress,
    scalars: &Scalars,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("threads", threads)?;
    out.set_item("loss_curve", outcome.loss_curve)?;
    out.set_item("validation_scores", outcome.validation_scores)?;
    out.set_item("validation_losses", outcome.validation_losses)?;
    out.set_item("stop", stop_name(outcome.stop))?;
    out.set_item("n_iter", progress.n_iter)?;
    let state = StateArg {
        t: progress.t,
        loss: progress.loss,
        no_improvement_count: progress.no_improvement_count,
        best_loss: progress.best_loss,
        best_validation_score: progress.best_validation_score,
        learning_rate: scalars.learning_rate,
        step: scalars.step,
    };
    out.set_item("state", state)?;
    Ok(out)
}

/// Full-batch loss and gradient at the packed parameters (for L-BFGS).
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, packed, config))]
pub(super) fn loss_and_gradient<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
    packed: &Bound<'py, PyAny>,
    config: ObjectiveArg,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    with_dtype!(packed, T => {
        let data = DataArg::<T>::extract(x, y, sample_weight)?;
        let (loss, grad) = loss_grad_typed::<T>(py, &data, packed, &config)?;
        Ok((loss, grad.into_pyarray(py).into_any()))
    })
}

fn loss_grad_typed<T: Element + Real>(
    py: Python<'_>,
    data: &DataArg<'_, T>,
    packed: &Bound<'_, PyAny>,
    config: &ObjectiveArg,
) -> PyResult<(f64, Vec<T>)> {
    let net = config.net()?;
    let packed: PyReadonlyArray1<T> = packed.extract()?;
    let packed = super::args::as_slice(&packed)?;
    let n = packed.len();
    let mut grad = memory::filled(n, T::zero(), || format!("the gradient of {n} parameters"))?;
    let data = data.dataset()?;
    let threads = loss_threads(config.n_jobs, &net, data.n_samples())?;
    let loss = run_detached(py, || {
        with_shared_threads(threads, |par| {
            engine_loss_and_gradient(&net, config.alpha, &data, packed, &mut grad, par)
        })?
    })?;
    Ok((loss, grad))
}
