//! The arguments as Python hands them: NumPy arrays borrowed without copying (when they
//! are contiguous of the model's dtype), CSR matrices as their parts, the configuration
//! dicts, and the dispatch on the model's dtype.

use crate::{
    Activation, Columns, Dataset, Dropout, Error, Layout, Loss, Net, Precision, Real, Rows,
    Schedule, Score, Solver, Targets, TrainConfig,
};
use numpy::{
    Element, PyArrayDescrMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Runs `$body` with `$t` standing for the Rust float of the NumPy array `$probe`'s
/// dtype (f32 or f64; any other dtype is a TypeError).
macro_rules! with_dtype {
    ($probe:expr, $t:ident => $body:expr) => {
        if $crate::python::args::is_f32($probe)? {
            type $t = f32;
            $body
        } else {
            type $t = f64;
            $body
        }
    };
}
pub(super) use with_dtype;

/// Whether `obj` is a float32 NumPy array (false for float64; a TypeError otherwise).
pub(super) fn is_f32(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
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

/// The first element of a sequence (of model arrays): what the dtype dispatch looks at.
pub(super) fn first_item<'py>(seq: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    seq.try_iter()?
        .next()
        .ok_or_else(|| PyValueError::new_err("no parameters"))?
}

/// The samples argument: a 2-D array, or `(data, indices, indptr, n_features)` of a CSR
/// matrix (indices as int32 or int64, indptr as int64).
pub(super) enum XArg<'py, T: Element> {
    Dense(PyReadonlyArray2<'py, T>),
    Csr(
        PyReadonlyArray1<'py, T>,
        IndicesArg<'py>,
        PyReadonlyArray1<'py, i64>,
        usize,
    ),
}

/// CSR column indices in scipy's own width.
#[derive(FromPyObject)]
pub(super) enum IndicesArg<'py> {
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
}

impl IndicesArg<'_> {
    fn columns(&self) -> Result<Columns<'_>, Error> {
        Ok(match self {
            IndicesArg::I32(a) => Columns::I32(as_slice(a)?),
            IndicesArg::I64(a) => Columns::I64(as_slice(a)?),
        })
    }
}

impl<'py, T: Element + Real> XArg<'py, T> {
    pub(super) fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(t) = obj.cast::<PyTuple>() {
            let (data, indices, indptr, n_cols) = t.extract()?;
            return Ok(XArg::Csr(data, indices, indptr, n_cols));
        }
        Ok(XArg::Dense(obj.extract()?))
    }

    pub(super) fn rows(&self) -> Result<Rows<'_, T>, Error> {
        match self {
            XArg::Dense(x) => Ok(Rows::Dense(x.as_array())),
            XArg::Csr(data, indices, indptr, n_cols) => Rows::csr(
                as_slice(data)?,
                indices.columns()?,
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

    fn targets(&self) -> Result<Targets<'_, T>, Error> {
        Ok(match self {
            YArg::Dense(y) => Targets::Dense(y.as_array()),
            YArg::Classes(c) => Targets::Classes(as_slice(c)?),
        })
    }
}

/// Samples, targets and optional weights, borrowed from Python.
pub(super) struct DataArg<'py, T: Element> {
    x: XArg<'py, T>,
    y: YArg<'py, T>,
    sample_weight: Option<PyReadonlyArray1<'py, T>>,
}

impl<'py, T: Element + Real> DataArg<'py, T> {
    pub(super) fn extract(
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        sample_weight: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            x: XArg::extract(x)?,
            y: YArg::extract(y)?,
            sample_weight: sample_weight.map(|w| w.extract()).transpose()?,
        })
    }

    /// The engine's view of the borrowed arrays.
    pub(super) fn dataset(&self) -> Result<Dataset<'_, T>, Error> {
        Ok(Dataset {
            x: self.x.rows()?,
            y: self.y.targets()?,
            sample_weight: self.sample_weight.as_ref().map(as_slice).transpose()?,
        })
    }
}

pub(super) fn as_slice<'a, T: Element>(a: &'a PyReadonlyArray1<'_, T>) -> Result<&'a [T], Error> {
    a.as_slice()
        .map_err(|_| Error::Value("expected a contiguous array".into()))
}

/// The model arrays (parameters, optimizer tensors) as slices the engine writes into.
pub(super) fn slices_mut<'a, T: Element>(
    arrays: &'a mut [PyReadwriteArrayDyn<'_, T>],
) -> PyResult<Vec<&'a mut [T]>> {
    arrays
        .iter_mut()
        .map(|a| {
            // (`as_slice_mut` takes a Fortran-ordered array too, as its columns)
            if !a.is_c_contiguous() {
                return Err(not_c_contiguous());
            }
            a.as_slice_mut().map_err(|_| not_c_contiguous())
        })
        .collect()
}

/// The model arrays (parameters) as slices the engine reads.
pub(super) fn slices<'a, T: Element>(
    arrays: &'a [PyReadonlyArrayDyn<'_, T>],
) -> PyResult<Vec<&'a [T]>> {
    arrays
        .iter()
        .map(|a| {
            // (`as_slice` takes a Fortran-ordered array too, as its columns)
            if !a.is_c_contiguous() {
                return Err(not_c_contiguous());
            }
            a.as_slice().map_err(|_| not_c_contiguous())
        })
        .collect()
}

/// A model array the engine would read in the wrong order (or not at all).
fn not_c_contiguous() -> PyErr {
    PyValueError::new_err("model arrays must be C-contiguous")
}

/// The network the engine computes: layer sizes, hidden activation and loss by name
/// (with the Huber loss's `delta`).
pub(super) fn net(
    units: Vec<usize>,
    activation: &str,
    loss: &str,
    huber_delta: f64,
) -> Result<Net, Error> {
    let loss = match loss.parse::<Loss>()? {
        Loss::Huber { .. } => Loss::Huber { delta: huber_delta },
        other => other,
    };
    Ok(Net {
        layout: Layout::new(units)?,
        hidden: activation.parse::<Activation>()?,
        loss,
    })
}

/// The configuration of a stochastic fit, a dict with scikit-learn's parameter names
/// (`batch_size` already resolved by the estimator's rule).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(super) struct ConfigArg {
    units: Vec<usize>,
    activation: String,
    loss: String,
    huber_delta: f64,
    alpha: f64,
    batch_size: usize,
    solver: String,
    learning_rate: String,
    pub(super) learning_rate_init: f64,
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
    dropout: Vec<f64>,
    dropout_seed: u64,
    matmul_precision: Option<String>,
    pub(super) n_jobs: Option<i64>,
}

impl ConfigArg {
    pub(super) fn net(&self) -> Result<Net, Error> {
        net(
            self.units.clone(),
            &self.activation,
            &self.loss,
            self.huber_delta,
        )
    }

    fn solver(&self) -> Result<Solver, Error> {
        match self.solver.as_str() {
            "sgd" => Ok(Solver::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterovs_momentum,
                schedule: self.learning_rate.parse::<Schedule>()?,
                power_t: self.power_t,
            }),
            "adam" => Ok(Solver::Adam {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
            }),
            other => Err(Error::Value(format!(
                "{other:?} is not a stochastic solver"
            ))),
        }
    }

    pub(super) fn train_config(&self) -> Result<TrainConfig, Error> {
        Ok(TrainConfig {
            alpha: self.alpha,
            batch_size: self.batch_size,
            solver: self.solver()?,
            max_iter: self.max_iter,
            tol: self.tol,
            n_iter_no_change: self.n_iter_no_change,
            shuffle: self.shuffle,
            early_stopping: self.early_stopping,
            incremental: self.incremental,
            score: self.score.parse::<Score>()?,
            dropout: Dropout {
                rates: self.dropout.clone(),
                seed: self.dropout_seed,
            },
            precision: match self.matmul_precision.as_deref() {
                None => Precision::Exact,
                Some("bfloat16") => Precision::Bf16,
                Some(other) => {
                    return Err(Error::Value(format!("unknown matmul_precision {other:?}")))
                }
            },
        })
    }
}

/// What the L-BFGS objective needs: the network, the L2 penalty and `n_jobs`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(super) struct ObjectiveArg {
    units: Vec<usize>,
    activation: String,
    loss: String,
    huber_delta: f64,
    pub(super) alpha: f64,
    pub(super) n_jobs: Option<i64>,
}

impl ObjectiveArg {
    pub(super) fn net(&self) -> Result<Net, Error> {
        net(
            self.units.clone(),
            &self.activation,
            &self.loss,
            self.huber_delta,
        )
    }
}

/// Counters and optimizer scalars carried between calls (in and out as a dict).
#[derive(FromPyObject, IntoPyObject)]
#[pyo3(from_item_all)]
pub(super) struct StateArg {
    pub(super) t: u64,
    pub(super) loss: f64,
    pub(super) no_improvement_count: u64,
    pub(super) best_loss: f64,
    pub(super) best_validation_score: f64,
    pub(super) learning_rate: f64,
    pub(super) step: u64,
}
