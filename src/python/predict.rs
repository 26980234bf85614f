//! `predict`: the network's outputs, from only what inference needs (the samples, the
//! parameters, the hidden activation, the loss that fixes the output activation, and
//! `n_jobs`); the layer sizes are read off the parameters' shapes.

use super::args::{first_item, net, slices, with_dtype, XArg};
use super::errors::run_detached;
use crate::memory;
use crate::{
    hidden_activations as hidden_activations_of, predict as engine_predict, predict_checked,
    predict_threads, with_shared_team, Real,
};
use numpy::ndarray::Array2;
use numpy::{Element, IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// The network's outputs (after the output activation) for every row of `x`. With
/// `check_finite`, None when `x` holds NaN or infinity (the caller's validation then
/// raises scikit-learn's exact error): the serving path's check rides along in the
/// first layer's products (`predict_checked`; also None when those overflow from
/// finite rows: the caller then validates X and predicts unchecked).
#[pyfunction]
#[pyo3(signature = (x, params, activation, loss, n_jobs=None, check_finite=false))]
#[allow(clippy::too_many_arguments)]
pub(super) fn predict<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
    activation: &str,
    loss: &str,
    n_jobs: Option<i64>,
    check_finite: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let call = PredictCall {
        activation,
        loss,
        layer: None,
        n_jobs,
        check_finite,
    };
    with_dtype!(&first_item(params)?, T => predict_typed::<T>(py, x, params, call))
}

/// The outputs of hidden layer `layer` (0-based among the hidden layers) for every row
/// of `x`.
#[pyfunction]
#[pyo3(signature = (x, params, activation, layer, n_jobs=None))]
pub(super) fn hidden_activations<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
    activation: &str,
    layer: usize,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let call = PredictCall {
        activation,
        // (any loss: the output layer is not reached)
        loss: "squared_error",
        layer: Some(layer),
        n_jobs,
        check_finite: false,
    };
    let out = with_dtype!(&first_item(params)?, T => predict_typed::<T>(py, x, params, call))?;
    out.ok_or_else(|| PyRuntimeError::new_err("internal error: no activations"))
}

/// What a prediction computes besides its arrays.
struct PredictCall<'a> {
    activation: &'a str,
    loss: &'a str,
    /// A hidden layer whose outputs to return instead of the network's.
    layer: Option<usize>,
    n_jobs: Option<i64>,
    /// Whether to check that `x` is finite (returning None when not, or when finite
    /// rows overflowed in the first layer: the caller's validation then decides).
    check_finite: bool,
}

/// Layer sizes from `coefs_ + intercepts_`: the first matrix's rows, then every
/// matrix's columns (the intercepts are checked against them by the engine).
fn units<T: Element>(params: &[PyReadonlyArrayDyn<'_, T>]) -> PyResult<Vec<usize>> {
    let coefs = &params[..params.len() / 2];
    let shape = |a: &PyReadonlyArrayDyn<'_, T>| match a.shape() {
        &[rows, cols] => Ok((rows, cols)),
        _ => Err(PyValueError::new_err("coefs_ must hold 2-D arrays")),
    };
    let first = coefs
        .first()
        .ok_or_else(|| PyValueError::new_err("no parameters"))?;
    let mut units = vec![shape(first)?.0];
    for c in coefs {
        units.push(shape(c)?.1);
    }
    Ok(units)
}

fn predict_typed<'py, T: Element + Real>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
    call: PredictCall<'_>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let x = XArg::<T>::extract(x)?;
    let params: Vec<PyReadonlyArrayDyn<T>> = params.extract()?;
    // (the output activation is all predict needs of the loss)
    let net = net(units(&params)?, call.activation, call.loss, 1.0)?;
    let slices = slices(&params)?;
    let rows = x.rows()?;
    let n = rows.n_rows();
    let k = match call.layer {
        Some(layer) => *net.layout.units.get(layer + 1).unwrap_or(&0),
        None => net.layout.n_outputs(),
    };
    let what = || format!("the predictions ({n} x {k} {})", T::DTYPE);
    let len = memory::product(n, k, what)?;
    let out = memory::filled(len, T::zero(), what)?;
    let mut out = Array2::from_shape_vec((n, k), out)
        .map_err(|_| PyRuntimeError::new_err("internal error: output shape"))?;
    let threads = predict_threads(call.n_jobs, &net, n)?;
    let buf = out
        .as_slice_mut()
        .ok_or_else(|| PyRuntimeError::new_err("internal error: output not contiguous"))?;
    let finite = run_detached(py, || {
        with_shared_team(threads, |par| match call.layer {
            Some(layer) => {
                hidden_activations_of(&net, &slices, &rows, layer, buf, par).map(|_| true)
            }
            None if call.check_finite => predict_checked(&net, &slices, &rows, buf, par),
            None => engine_predict(&net, &slices, &rows, buf, par).map(|_| true),
        })?
    })?;
    Ok(finite.then(|| out.into_pyarray(py).into_any()))
}
