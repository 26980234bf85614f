//! The PyO3 bindings, `mlp_rs._core`: the only code that knows Python. Each file holds
//! one concern, and each imports only the engine and the files listed before it:
//!
//! - `errors`: engine errors and panics as Python exceptions;
//! - `args`: the arguments as NumPy hands them (borrowed arrays, CSR parts, the
//!   configuration dicts) and the dtype dispatch;
//! - `hooks`: the engine's hooks in Python (shuffles, callbacks) and the run of a fit
//!   with the GIL released and Ctrl-C honoured;
//! - `fit`: `fit_stochastic` and `loss_and_gradient`;
//! - `predict`: `predict` and `hidden_activations`.

mod args;
mod errors;
mod fit;
mod hooks;
mod predict;

use pyo3::prelude::*;

/// The instruction set the engine's kernels use on this CPU: "avx512", "avx2" or
/// "baseline" (lowered by the environment variable MLP_RS_CPU, read once).
#[pyfunction]
fn cpu_level() -> &'static str {
    crate::cpu_level()
}

/// The kernel of `matmul_precision="bfloat16"` products on this CPU: "amx",
/// "avx512_bf16" or "portable" (MLP_RS_CPU=avx512 rules AMX out, avx2 or baseline both).
#[pyfunction]
fn bf16_kernel() -> &'static str {
    crate::Bf16Kernel::best().name()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit::fit_stochastic, m)?)?;
    m.add_function(wrap_pyfunction!(fit::loss_and_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(predict::predict, m)?)?;
    m.add_function(wrap_pyfunction!(predict::hidden_activations, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_level, m)?)?;
    m.add_function(wrap_pyfunction!(bf16_kernel, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
