//! Engine errors and panics as Python exceptions.

use crate::Error;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::panic::{catch_unwind, AssertUnwindSafe};

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Memory { .. } => PyMemoryError::new_err(e.to_string()),
            Error::ZeroWeights(msg) => zero_weight_batch(msg),
            _ => PyValueError::new_err(e.to_string()),
        }
    }
}

/// `mlp_rs._errors.ZeroWeightBatchError`: a ValueError, and the ZeroDivisionError
/// scikit-learn raises for such a batch (a Python class: a PyO3 exception type has one
/// base). A plain ValueError should the module not load.
fn zero_weight_batch(msg: String) -> PyErr {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    Python::attach(
        |py| match TYPE.import(py, "mlp_rs._errors", "ZeroWeightBatchError") {
            Ok(ty) => PyErr::from_type(ty.clone(), msg),
            Err(_) => PyValueError::new_err(msg),
        },
    )
}

/// The exception for a panic caught at the boundary: a bug, reported as one.
pub(super) fn panic_error(payload: Box<dyn std::any::Any + Send>) -> PyErr {
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
pub(super) fn run_detached<R: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<R, Error> + Send,
) -> PyResult<R> {
    Ok(py
        .detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(panic_error)??)
}
