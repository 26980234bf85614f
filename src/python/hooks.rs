//! The engine's hooks in Python (the epoch shuffles, per-epoch callbacks, plateau
//! reports) and [`run_interruptible`], which runs a fit with the GIL released while the
//! calling thread keeps honouring Ctrl-C.

use super::errors::panic_error;
use crate::{with_pool, EpochReport, Error, Hooks, Mt19937, Par, Plateau};
use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a fit looks for signals (Ctrl-C) while it trains.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Words of a `shuffle_state` array: MT19937's 624 key words, then the position.
const SHUFFLE_STATE_WORDS: usize = 625;

/// How each epoch's order is drawn.
pub(super) enum Shuffler {
    /// No shuffling.
    Off,
    /// A Python callable that returns the new order.
    Python(Py<PyAny>),
    /// NumPy's `RandomState` stream, continued in Rust: the same draws without returning
    /// to Python (and to the GIL) every epoch.
    Mt19937(Box<Mt19937>),
}

impl Shuffler {
    /// The shuffler for a fit: none without `shuffle`, else the generator state when
    /// Python handed it over, else the Python callable.
    pub(super) fn new(
        shuffle: bool,
        state: Option<&PyReadwriteArray1<'_, u32>>,
        callable: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        Ok(match (state, callable) {
            _ if !shuffle => Shuffler::Off,
            (Some(state), _) => Shuffler::Mt19937(Box::new(read_shuffle_state(state)?)),
            (None, Some(f)) => Shuffler::Python(f),
            (None, None) => Shuffler::Off,
        })
    }

    /// Writes the generator's state back into `array`: whatever happened, it has
    /// advanced as far as the epochs that started.
    pub(super) fn save(&self, array: Option<&mut PyReadwriteArray1<'_, u32>>) -> PyResult<()> {
        let (Some(array), Shuffler::Mt19937(rng)) = (array, self) else {
            return Ok(());
        };
        let (key, pos) = rng.state();
        // Re-checked: Python code run by a hook could have resized the array.
        match array.as_slice_mut()?.get_mut(..SHUFFLE_STATE_WORDS) {
            Some([words @ .., last]) => {
                words.copy_from_slice(key);
                *last = pos as u32;
                Ok(())
            }
            _ => Err(PyValueError::new_err(
                "shuffle_state was resized during training",
            )),
        }
    }
}

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

/// Python callables behind the engine's hooks. Errors they raise are kept and re-raised
/// once the engine has returned; a KeyboardInterrupt becomes an interruption instead.
pub(super) struct PyHooks<'a> {
    pub(super) shuffle: Shuffler,
    pub(super) on_epoch: Option<Py<PyAny>>,
    pub(super) on_plateau: Option<Py<PyAny>>,
    stop: &'a AtomicBool,
    error: Option<PyErr>,
    /// When the engine runs on the main thread itself: the last time `interrupted`
    /// looked for signals.
    last_signal_poll: Option<Instant>,
    /// An exception raised by a signal handler other than KeyboardInterrupt.
    signal_error: Option<PyErr>,
}

impl<'a> PyHooks<'a> {
    /// Hooks that stop training when `stop` is set.
    pub(super) fn new(
        shuffle: Shuffler,
        on_epoch: Option<Py<PyAny>>,
        on_plateau: Option<Py<PyAny>>,
        stop: &'a AtomicBool,
    ) -> Self {
        Self {
            shuffle,
            on_epoch,
            on_plateau,
            stop,
            error: None,
            last_signal_poll: None,
            signal_error: None,
        }
    }

    fn python_shuffle(&mut self, py: Python<'_>, order: &mut [usize]) -> Result<(), Error> {
        let Shuffler::Python(f) = &self.shuffle else {
            return Ok(());
        };
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
    }
}

/// Records a hook's exception: KeyboardInterrupt asks the loop to stop (through `stop`),
/// anything else aborts training and is kept in `slot` to be re-raised afterwards.
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

impl Hooks for PyHooks<'_> {
    fn shuffle(&mut self, order: &mut [usize]) -> Result<(), Error> {
        match &mut self.shuffle {
            Shuffler::Off => Ok(()),
            // Swapping `order` itself equals scikit-learn's `order[shuffled arange]`: the
            // swaps depend on positions only.
            Shuffler::Mt19937(rng) => {
                rng.shuffle(order);
                Ok(())
            }
            Shuffler::Python(_) => Python::attach(|py| self.python_shuffle(py, order)),
        }
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
            let called = f
                .call1(py, (r.n_iter, r.loss, r.validation_score))
                .and_then(|v| v.is_truthy(py));
            match called {
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

/// Whether this is the interpreter's main thread, the only one that runs signal handlers.
fn is_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let main = threading.call_method0("main_thread")?;
    Ok(threading.call_method0("current_thread")?.is(&main))
}

/// What a run gives back before its errors are sorted: the engine's result, or the
/// payload of a panic.
type RawRun<R> = std::thread::Result<Result<R, Error>>;

/// Runs `work` on `threads` threads with the GIL released, polling for signals: one
/// thread trains on this one, which looks for signals between batches itself (only the
/// main thread sees them); more train in a pool (a worker runs `work`) while this one
/// waits and polls. The error raised is the hooks' own exception if one failed, else
/// a signal handler's, else the engine's.
pub(super) fn run_interruptible<R: Send>(
    py: Python<'_>,
    threads: usize,
    hooks: &mut PyHooks<'_>,
    work: impl FnOnce(&mut PyHooks<'_>, Par) -> Result<R, Error> + Send,
) -> PyResult<R> {
    let mut signal_error = None;
    let result = if threads == 1 {
        // On this thread, which saves starting one (~0.15 ms, most of a small fit's
        // fixed cost).
        if is_main_thread(py)? {
            hooks.last_signal_poll = Some(Instant::now());
        }
        py.detach(|| catch_unwind(AssertUnwindSafe(|| work(hooks, Par::Sequential))))
    } else {
        let stop = hooks.stop;
        py.detach(|| {
            // the worker stays attached to Python, so that each hook re-enters it cheaply
            let worker = |par| Python::attach(|py| py.detach(|| work(hooks, par)));
            on_pool_polling(threads, worker, |py| {
                poll_signals(py, stop, &mut signal_error)
            })
        })
    };
    match result {
        Ok(Ok(out)) => {
            let pending = signal_error.or(hooks.signal_error.take());
            match pending.or(hooks.error.take()) {
                Some(e) => Err(e),
                None => Ok(out),
            }
        }
        // A hook's own exception explains the failure better than the engine's error.
        Ok(Err(e)) => Err(hooks.error.take().unwrap_or_else(|| e.into())),
        Err(payload) => Err(panic_error(payload)),
    }
}

/// Runs `worker` on a worker of a pool of `threads` threads (its `Par`), panics caught,
/// while this thread wakes every [`SIGNAL_POLL`] to run `poll` with the GIL; the worker
/// wakes it when done.
fn on_pool_polling<R: Send>(
    threads: usize,
    worker: impl FnOnce(Par) -> Result<R, Error> + Send,
    mut poll: impl FnMut(Python<'_>),
) -> RawRun<R> {
    let done = AtomicBool::new(false);
    let caller = std::thread::current();
    let mut out = None;
    let pooled = with_pool(threads, |pool| {
        pool.in_place_scope(|s| {
            s.spawn(|_| {
                out = Some(catch_unwind(AssertUnwindSafe(|| worker(Par::Rayon))));
                // A flag, not the scope's end: the caller parks until it is set.
                done.store(true, Ordering::SeqCst);
                caller.unpark();
            });
            while !done.load(Ordering::SeqCst) {
                std::thread::park_timeout(SIGNAL_POLL);
                if done.load(Ordering::SeqCst) {
                    break;
                }
                Python::attach(&mut poll);
            }
        })
    });
    match pooled {
        Ok(()) => out.expect("the scope ran the worker"),
        Err(e) => Ok(Err(e)),
    }
}
