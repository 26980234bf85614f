//! The only PyO3 code: `mlp_rs._core`. It borrows NumPy arrays (no copy when they are
//! already contiguous of the right dtype), releases the GIL while the engine runs, polls
//! for Ctrl-C while training, and turns every engine error or panic into an exception.

use crate::mt19937::Mt19937;
use crate::{
    resolve_n_jobs, train, with_threads, Activation, Dataset, EpochReport, Error, Hooks, Layout,
    Loss, Model, Net, Plateau, Progress, Real, Rows, Scalars, Schedule, Score, Solver, StopReason,
    Targets, TrainConfig,
};
use numpy::ndarray::Array2;
use numpy::{
    Element, IntoPyArray, PyArray1, PyArrayDescrMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadwriteArray1, PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Problems below this many multiply-adds per batch run on one thread: a pool would only
/// add start-up and synchronisation cost.
const MIN_THREADED_WORK: usize = 1 << 20;

fn to_py_err(e: Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    PyRuntimeError::new_err(format!(
        "internal error in mlp_rs (please report it): {msg}"
    ))
}

/// Runs engine work with the GIL released and panics caught.
fn run_detached<R: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<R, Error> + Send,
) -> PyResult<R> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(panic_message)?
        .map_err(to_py_err)
}

/// Whether this is the interpreter's main thread, the only one that runs signal handlers.
fn is_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let main = threading.call_method0("main_thread")?;
    Ok(threading.call_method0("current_thread")?.is(&main))
}

fn threads_for(n_jobs: Option<i64>, work: usize) -> PyResult<usize> {
    let requested = resolve_n_jobs(n_jobs).map_err(to_py_err)?;
    Ok(if work < MIN_THREADED_WORK {
        1
    } else {
        requested
    })
}

/// The samples argument: a 2-D array, or `(data, indices, indptr, n_features)` of a CSR
/// matrix (indices and indptr as int64).
enum XArg<'py, T: Element> {
    Dense(PyReadonlyArray2<'py, T>),
    Csr(
        PyReadonlyArray1<'py, T>,
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, i64>,
        usize,
    ),
}

impl<'py, T: Element + Real> XArg<'py, T> {
    fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(t) = obj.cast::<PyTuple>() {
            let (data, indices, indptr, n_cols) = t.extract()?;
            return Ok(XArg::Csr(data, indices, indptr, n_cols));
        }
        Ok(XArg::Dense(obj.extract()?))
    }

    fn rows(&self) -> Result<Rows<'_, T>, Error> {
        match self {
            XArg::Dense(x) => Ok(Rows::Dense(x.as_array())),
            XArg::Csr(data, indices, indptr, n_cols) => Rows::csr(
                as_slice(data)?,
                as_slice(indices)?,
                as_slice(indptr)?,
                *n_cols,
            ),
        }
    }
}

/// The targets argument: a 2-D float array, or a 1-D int64 array of class indices.
enum YArg<'py, T: Element> {
    Dense(PyReadonlyArray2<'py, T>),
    Classes(PyReadonlyArray1<'py, i64>),
}

impl<'py, T: Element + Real> YArg<'py, T> {
    fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<PyReadonlyArray1<i64>>() {
            Ok(classes) => Ok(YArg::Classes(classes)),
            Err(_) => Ok(YArg::Dense(obj.extract()?)),
        }
    }

    fn targets(&self) -> PyResult<Targets<'_, T>> {
        Ok(match self {
            YArg::Dense(y) => Targets::Dense(y.as_array()),
            YArg::Classes(c) => Targets::Classes(as_slice(c).map_err(to_py_err)?),
        })
    }
}

fn as_slice<'a, T: Element>(a: &'a PyReadonlyArray1<'_, T>) -> Result<&'a [T], Error> {
    a.as_slice()
        .map_err(|_| Error::Value("expected a contiguous array".into()))
}

fn slices_mut<'a, T: Element>(
    arrays: &'a mut [PyReadwriteArrayDyn<'_, T>],
) -> PyResult<Vec<&'a mut [T]>> {
    arrays
        .iter_mut()
        .map(|a| {
            a.as_slice_mut()
                .map_err(|_| PyValueError::new_err("model arrays must be C-contiguous"))
        })
        .collect()
}

fn is_f32(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let arr = obj
        .cast::<PyUntypedArray>()
        .map_err(|_| PyTypeError::new_err("expected a NumPy array"))?;
    let dtype = arr.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(obj.py())) {
        Ok(true)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(obj.py())) {
        Ok(false)
    } else {
        Err(PyTypeError::new_err(
            "model arrays must be float32 or float64",
        ))
    }
}

#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct ConfigArg {
    units: Vec<usize>,
    activation: String,
    loss: String,
    alpha: f64,
    batch_size: usize,
    solver: String,
    learning_rate: String,
    learning_rate_init: f64,
    power_t: f64,
    momentum: f64,
    nesterovs_momentum: bool,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    max_iter: usize,
    tol: f64,
    n_iter_no_change: f64,
    shuffle: bool,
    early_stopping: bool,
    incremental: bool,
    score: String,
    n_jobs: Option<i64>,
}

impl ConfigArg {
    fn net(&self) -> Result<Net, Error> {
        Ok(Net {
            layout: Layout::new(self.units.clone())?,
            hidden: Activation::parse(&self.activation)?,
            loss: Loss::parse(&self.loss)?,
        })
    }

    fn train_config(&self) -> Result<TrainConfig, Error> {
        let solver = match self.solver.as_str() {
            "sgd" => Solver::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterovs_momentum,
                schedule: Schedule::parse(&self.learning_rate)?,
                power_t: self.power_t,
            },
            "adam" => Solver::Adam {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
            },
            other => {
                return Err(Error::Value(format!(
                    "{other:?} is not a stochastic solver"
                )))
            }
        };
        Ok(TrainConfig {
            alpha: self.alpha,
            batch_size: self.batch_size,
            solver,
            max_iter: self.max_iter,
            tol: self.tol,
            n_iter_no_change: self.n_iter_no_change,
            shuffle: self.shuffle,
            early_stopping: self.early_stopping,
            incremental: self.incremental,
            score: Score::parse(&self.score)?,
        })
    }
}

/// Counters and optimizer scalars carried between calls (in and out as a dict).
#[derive(FromPyObject, IntoPyObject)]
#[pyo3(from_item_all)]
struct StateArg {
    t: u64,
    loss: f64,
    no_improvement_count: u64,
    best_loss: f64,
    best_validation_score: f64,
    learning_rate: f64,
    step: u64,
}

/// How each epoch's order is drawn.
enum Shuffler {
    /// No shuffling.
    Off,
    /// A Python callable that returns the new order.
    Python(Py<PyAny>),
    /// NumPy's `RandomState` stream, continued in Rust: the same draws without returning
    /// to Python (and to the GIL) every epoch.
    Mt19937(Box<Mt19937>),
}

/// Python callables behind the engine's hooks. Errors they raise are kept and re-raised
/// once the engine has returned; a KeyboardInterrupt becomes an interruption instead.
struct PyHooks<'a> {
    shuffle: Shuffler,
    on_epoch: Option<Py<PyAny>>,
    on_plateau: Option<Py<PyAny>>,
    stop: &'a AtomicBool,
    error: Option<PyErr>,
    /// When the engine runs on the main thread itself: the last time `interrupted`
    /// looked for signals.
    last_signal_poll: Option<Instant>,
    /// An exception raised by a signal handler other than KeyboardInterrupt.
    signal_error: Option<PyErr>,
}

/// How often a fit looks for signals (Ctrl-C) while it trains.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs pending signal handlers: any exception stops training, and one other than
/// KeyboardInterrupt is kept in `slot` to be raised afterwards.
fn poll_signals(py: Python<'_>, stop: &AtomicBool, slot: &mut Option<PyErr>) {
    if let Err(e) = py.check_signals() {
        stop.store(true, Ordering::SeqCst);
        if !e.is_instance_of::<PyKeyboardInterrupt>(py) {
            slot.get_or_insert(e);
        }
    }
}

/// Records a hook's exception: KeyboardInterrupt asks the loop to stop, anything else
/// aborts training and is re-raised afterwards.
fn hook_failed(
    stop: &AtomicBool,
    slot: &mut Option<PyErr>,
    py: Python<'_>,
    err: PyErr,
) -> Result<(), Error> {
    if err.is_instance_of::<PyKeyboardInterrupt>(py) {
        stop.store(true, Ordering::SeqCst);
        Ok(())
    } else {
        *slot = Some(err);
        Err(Error::Hook)
    }
}

impl Hooks for PyHooks<'_> {
    fn shuffle(&mut self, order: &mut [usize]) -> Result<(), Error> {
        let f = match &mut self.shuffle {
            Shuffler::Off => return Ok(()),
            Shuffler::Mt19937(rng) => {
                // Swapping `order` itself equals scikit-learn's `order[shuffled arange]`:
                // the swaps depend on positions only.
                rng.shuffle(order);
                return Ok(());
            }
            Shuffler::Python(f) => f,
        };
        Python::attach(|py| {
            let result = f.call0(py).and_then(|perm| {
                let perm: PyReadonlyArray1<i64> = perm.extract(py)?;
                let perm = perm.as_array();
                let n = order.len();
                if perm.len() != n || perm.iter().any(|&i| i < 0 || i as usize >= n) {
                    return Err(PyValueError::new_err(
                        "shuffle hook returned a bad permutation",
                    ));
                }
                order
                    .iter_mut()
                    .zip(perm.iter())
                    .for_each(|(o, &i)| *o = i as usize);
                Ok(())
            });
            result.or_else(|e| hook_failed(self.stop, &mut self.error, py, e))
        })
    }

    fn interrupted(&mut self) -> bool {
        if let Some(last) = &mut self.last_signal_poll {
            if last.elapsed() >= SIGNAL_POLL {
                *last = Instant::now();
                Python::attach(|py| poll_signals(py, self.stop, &mut self.signal_error));
            }
        }
        self.stop.load(Ordering::Relaxed)
    }

    fn epoch_end(&mut self, r: &EpochReport) -> Result<bool, Error> {
        let Some(f) = &self.on_epoch else {
            return Ok(false);
        };
        Python::attach(|py| {
            match f
                .call1(py, (r.n_iter, r.loss, r.validation_score))
                .and_then(|v| v.is_truthy(py))
            {
                Ok(stop) => Ok(stop),
                Err(e) => hook_failed(self.stop, &mut self.error, py, e).map(|_| false),
            }
        })
    }

    fn plateau(&mut self, early_stopping: bool, decision: Plateau) -> Result<(), Error> {
        let Some(f) = &self.on_plateau else {
            return Ok(());
        };
        let (kind, rate) = match decision {
            Plateau::Stop => ("stop", None),
            Plateau::StopRateTooSmall => ("rate_too_small", None),
            Plateau::RateReduced(r) => ("rate_reduced", Some(r)),
        };
        Python::attach(|py| match f.call1(py, (early_stopping, kind, rate)) {
            Ok(_) => Ok(()),
            Err(e) => hook_failed(self.stop, &mut self.error, py, e),
        })
    }
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::MaxIter => "max_iter",
        StopReason::Converged => "converged",
        StopReason::Incremental => "incremental",
        StopReason::Interrupted => "interrupted",
        StopReason::Callback => "callback",
    }
}

/// The validation split: samples, targets, optional weights.
type ValidationArg<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);
/// The Python hooks as `fit_stochastic` receives them.
struct HookArgs<'py> {
    shuffle: Option<Py<PyAny>>,
    on_epoch: Option<Py<PyAny>>,
    on_plateau: Option<Py<PyAny>>,
    /// The generator state to shuffle with in Rust instead of calling `shuffle`.
    shuffle_state: Option<PyReadwriteArray1<'py, u32>>,
}

/// Words of a `shuffle_state` array: MT19937's 624 key words, then the position.
const SHUFFLE_STATE_WORDS: usize = 625;

fn read_shuffle_state(state: &PyReadwriteArray1<'_, u32>) -> PyResult<Mt19937> {
    let words = state.as_slice()?;
    let parsed = match words {
        [key @ .., pos] if words.len() == SHUFFLE_STATE_WORDS => {
            Mt19937::from_state(key, *pos as usize)
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        PyValueError::new_err(
            "shuffle_state must hold RandomState's 624 MT19937 key words and its position",
        )
    })
}
/// `validation` as Python passes it.
type OwnedValidationArg<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
);

#[allow(clippy::too_many_arguments)]
fn fit_typed<'py, T: Element + Real>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
    validation: Option<ValidationArg<'_, 'py>>,
    params: &Bound<'py, PyAny>,
    optimizer_state: &Bound<'py, PyAny>,
    best: &Bound<'py, PyAny>,
    config: ConfigArg,
    state: StateArg,
    hooks: HookArgs<'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let net = config.net().map_err(to_py_err)?;
    let cfg = config.train_config().map_err(to_py_err)?;
    let x = XArg::<T>::extract(x)?;
    let y = YArg::<T>::extract(y)?;
    let sw: Option<PyReadonlyArray1<T>> = sample_weight.map(|w| w.extract()).transpose()?;
    let val = match validation {
        Some((xv, yv, wv)) => Some((
            XArg::<T>::extract(xv)?,
            YArg::<T>::extract(yv)?,
            wv.map(|w| w.extract::<PyReadonlyArray1<T>>()).transpose()?,
        )),
        None => None,
    };
    let mut params: Vec<PyReadwriteArrayDyn<T>> = params.extract()?;
    let mut opt: Vec<PyReadwriteArrayDyn<T>> = optimizer_state.extract()?;
    let mut best: Vec<PyReadwriteArrayDyn<T>> = best.extract()?;
    let mut params = slices_mut(&mut params)?;
    let mut opt = slices_mut(&mut opt)?;
    let mut best = slices_mut(&mut best)?;

    let rows = x.rows().map_err(to_py_err)?;
    let sw_slice = sw.as_ref().map(as_slice).transpose().map_err(to_py_err)?;
    let data = Dataset {
        x: rows,
        y: y.targets()?,
        sample_weight: sw_slice,
    };
    let val_data = match &val {
        Some((xv, yv, wv)) => Some(Dataset {
            x: xv.rows().map_err(to_py_err)?,
            y: yv.targets()?,
            sample_weight: wv.as_ref().map(as_slice).transpose().map_err(to_py_err)?,
        }),
        None => None,
    };

    let work = cfg.batch_size.min(data.n_samples()) * net.layout.n_params();
    let threads = threads_for(config.n_jobs, work)?;
    let mut scalars = Scalars {
        learning_rate_init: config.learning_rate_init,
        learning_rate: state.learning_rate,
        step: state.step,
    };
    let mut progress = Progress {
        n_iter: 0,
        t: state.t,
        loss: state.loss,
        no_improvement_count: state.no_improvement_count,
        best_loss: state.best_loss,
        best_validation_score: state.best_validation_score,
    };
    let mut shuffle_state = hooks.shuffle_state;
    let shuffle = match (&shuffle_state, hooks.shuffle) {
        _ if !cfg.shuffle => Shuffler::Off,
        (Some(state), _) => Shuffler::Mt19937(Box::new(read_shuffle_state(state)?)),
        (None, Some(f)) => Shuffler::Python(f),
        (None, None) => Shuffler::Off,
    };
    let stop = AtomicBool::new(false);
    let mut py_hooks = PyHooks {
        shuffle,
        on_epoch: hooks.on_epoch,
        on_plateau: hooks.on_plateau,
        stop: &stop,
        error: None,
        last_signal_poll: None,
        signal_error: None,
    };
    let mut signal_error: Option<PyErr> = None;
    let mut run = |hooks: &mut PyHooks<'_>, on_worker: bool| {
        catch_unwind(AssertUnwindSafe(|| {
            with_threads(threads, |par| {
                let model = Model {
                    params: &mut params,
                    optimizer_state: &mut opt,
                    best: &mut best,
                    scalars: &mut scalars,
                    progress: &mut progress,
                };
                let fit = || train(&net, &cfg, &data, val_data.as_ref(), model, hooks, par);
                if on_worker {
                    // Attached once and detached at once: the thread keeps its Python
                    // thread state, so each hook re-enters Python cheaply.
                    Python::attach(|py| py.detach(fit))
                } else {
                    fit()
                }
            })
            .and_then(|r| r)
        }))
    };

    let result = if threads == 1 {
        // On this thread, which saves starting one (~0.15 ms, most of a small fit's fixed
        // cost). Only the main thread sees signals: there the engine polls them between
        // batches itself.
        if is_main_thread(py)? {
            py_hooks.last_signal_poll = Some(Instant::now());
        }
        Ok(py.detach(|| run(&mut py_hooks, false)))
    } else {
        // The engine runs in its pool, started from a worker thread, so that this
        // (possibly the main) thread can keep polling for signals; the worker wakes it
        // when done.
        let done = AtomicBool::new(false);
        py.detach(|| {
            let caller = std::thread::current();
            std::thread::scope(|s| {
                let worker = s.spawn(|| {
                    let out = run(&mut py_hooks, true);
                    // A flag, not `is_finished`: the thread is still exiting after
                    // `unpark`, and the caller would park again for a whole timeout.
                    done.store(true, Ordering::SeqCst);
                    caller.unpark();
                    out
                });
                while !done.load(Ordering::SeqCst) {
                    std::thread::park_timeout(SIGNAL_POLL);
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    Python::attach(|py| poll_signals(py, &stop, &mut signal_error));
                }
                worker.join()
            })
        })
    };
    // Whatever happened, the generator has advanced as far as the epochs that started.
    if let (Some(array), Shuffler::Mt19937(rng)) = (&mut shuffle_state, &py_hooks.shuffle) {
        let (key, pos) = rng.state();
        // Re-checked: Python code run by a hook could have resized the array.
        match array.as_slice_mut()?.get_mut(..SHUFFLE_STATE_WORDS) {
            Some([words @ .., last]) => {
                words.copy_from_slice(key);
                *last = pos as u32;
            }
            _ => {
                return Err(PyValueError::new_err(
                    "shuffle_state was resized during training",
                ))
            }
        }
    }
    let outcome = match result {
        Ok(Ok(Ok(outcome))) => outcome,
        // A hook's own exception explains the failure better than the engine's error.
        Ok(Ok(Err(e))) => return Err(py_hooks.error.take().unwrap_or_else(|| to_py_err(e))),
        Ok(Err(payload)) | Err(payload) => return Err(panic_message(payload)),
    };
    let signal_error = signal_error.or(py_hooks.signal_error.take());
    if let Some(e) = signal_error.or(py_hooks.error.take()) {
        return Err(e);
    }
    let out = PyDict::new(py);
    out.set_item("loss_curve", outcome.loss_curve)?;
    out.set_item("validation_scores", outcome.validation_scores)?;
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

/// Runs SGD or Adam epochs, updating `params`, `optimizer_state` and `best` in place.
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, validation, params, optimizer_state, best, config, state, shuffle=None, on_epoch=None, on_plateau=None, shuffle_state=None))]
#[allow(clippy::too_many_arguments)]
fn fit_stochastic<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
    validation: Option<OwnedValidationArg<'py>>,
    params: &Bound<'py, PyAny>,
    optimizer_state: &Bound<'py, PyAny>,
    best: &Bound<'py, PyAny>,
    config: ConfigArg,
    state: StateArg,
    shuffle: Option<Py<PyAny>>,
    on_epoch: Option<Py<PyAny>>,
    on_plateau: Option<Py<PyAny>>,
    shuffle_state: Option<PyReadwriteArray1<'py, u32>>,
) -> PyResult<Bound<'py, PyDict>> {
    let first = params
        .try_iter()?
        .next()
        .ok_or_else(|| PyValueError::new_err("no parameters"))??;
    let val = validation.as_ref().map(|(a, b, c)| (a, b, c.as_ref()));
    let hooks = HookArgs {
        shuffle,
        on_epoch,
        on_plateau,
        shuffle_state,
    };
    if is_f32(&first)? {
        fit_typed::<f32>(
            py,
            x,
            y,
            sample_weight,
            val,
            params,
            optimizer_state,
            best,
            config,
            state,
            hooks,
        )
    } else {
        fit_typed::<f64>(
            py,
            x,
            y,
            sample_weight,
            val,
            params,
            optimizer_state,
            best,
            config,
            state,
            hooks,
        )
    }
}

fn loss_grad_typed<'py, T: Element + Real>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
    packed: &Bound<'py, PyAny>,
    config: &ConfigArg,
) -> PyResult<(f64, Bound<'py, PyArray1<T>>)> {
    let net = config.net().map_err(to_py_err)?;
    let x = XArg::<T>::extract(x)?;
    let y = YArg::<T>::extract(y)?;
    let sw: Option<PyReadonlyArray1<T>> = sample_weight.map(|w| w.extract()).transpose()?;
    let packed: PyReadonlyArray1<T> = packed.extract()?;
    let packed = as_slice(&packed).map_err(to_py_err)?;
    let mut grad = vec![T::zero(); packed.len()];
    let data = Dataset {
        x: x.rows().map_err(to_py_err)?,
        y: y.targets()?,
        sample_weight: sw.as_ref().map(as_slice).transpose().map_err(to_py_err)?,
    };
    let work = data.n_samples().min(crate::objective::BLOCK_ROWS) * net.layout.n_params();
    let threads = threads_for(config.n_jobs, work)?;
    let loss = run_detached(py, || {
        with_threads(threads, |par| {
            crate::objective::loss_and_gradient(&net, config.alpha, &data, packed, &mut grad, par)
        })?
    })?;
    Ok((loss, grad.into_pyarray(py)))
}

/// Full-batch loss and gradient at the packed parameters (for L-BFGS).
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, packed, config))]
fn loss_and_gradient<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
    packed: &Bound<'py, PyAny>,
    config: ConfigArg,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    if is_f32(packed)? {
        let (l, g) = loss_grad_typed::<f32>(py, x, y, sample_weight, packed, &config)?;
        Ok((l, g.into_any()))
    } else {
        let (l, g) = loss_grad_typed::<f64>(py, x, y, sample_weight, packed, &config)?;
        Ok((l, g.into_any()))
    }
}

fn predict_typed<'py, T: Element + Real>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
    config: &ConfigArg,
) -> PyResult<Bound<'py, PyAny>> {
    let net = config.net().map_err(to_py_err)?;
    let x = XArg::<T>::extract(x)?;
    let params: Vec<numpy::PyReadonlyArrayDyn<T>> = params.extract()?;
    let slices: Vec<&[T]> = params
        .iter()
        .map(|a| {
            a.as_slice()
                .map_err(|_| PyValueError::new_err("model arrays must be C-contiguous"))
        })
        .collect::<PyResult<_>>()?;
    let rows = x.rows().map_err(to_py_err)?;
    let (n, k) = (rows.n_rows(), net.layout.n_outputs());
    let mut out = Array2::<T>::zeros((n, k));
    // (a pool for a single block would only cost its start-up, ~0.1-0.2 ms)
    let work = n.min(crate::predict::BLOCK_ROWS) * net.layout.n_params();
    let threads = threads_for(config.n_jobs, work)?.min(crate::predict::block_count(n).max(1));
    let buf = out
        .as_slice_mut()
        .ok_or_else(|| PyRuntimeError::new_err("internal error: output not contiguous"))?;
    run_detached(py, || {
        with_threads(threads, |par| {
            crate::predict::predict(&net, &slices, &rows, buf, par)
        })?
    })?;
    Ok(out.into_pyarray(py).into_any())
}

/// The network's outputs (after the output activation) for every row of `x`.
#[pyfunction]
#[pyo3(signature = (x, params, config))]
fn predict<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
    config: ConfigArg,
) -> PyResult<Bound<'py, PyAny>> {
    let first = params
        .try_iter()?
        .next()
        .ok_or_else(|| PyValueError::new_err("no parameters"))??;
    if is_f32(&first)? {
        predict_typed::<f32>(py, x, params, &config)
    } else {
        predict_typed::<f64>(py, x, params, &config)
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_stochastic, m)?)?;
    m.add_function(wrap_pyfunction!(loss_and_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
