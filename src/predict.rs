//! Inference: the forward pass over any number of rows, in fixed-size blocks.

use crate::data::Rows;
use crate::error::{ensure_shape, Result};
use crate::objective::BLOCK_ROWS;
use crate::parallel::Par;
use crate::propagate::Net;
use crate::real::Real;
use crate::workspace::Workspace;

/// Writes the network's outputs for every row of `x` into `out` (`n x n_outputs`,
/// row-major).
pub fn predict<T: Real>(
    net: &Net,
    params: &[impl AsRef<[T]>],
    x: &Rows<'_, T>,
    out: &mut [T],
    par: Par,
) -> Result<()> {
    net.layout.check("parameters", params)?;
    let (n, k) = (x.n_rows(), net.layout.n_outputs());
    ensure_shape(x.n_cols() == net.layout.n_inputs(), || {
        format!(
            "X has {} features, but the network expects {}",
            x.n_cols(),
            net.layout.n_inputs()
        )
    })?;
    ensure_shape(out.len() == n * k, || {
        "output buffer has the wrong size".into()
    })?;
    if n == 0 {
        return Ok(());
    }
    let mut ws = Workspace::new(&net.layout, n.min(BLOCK_ROWS), false);
    let mut rows = Vec::with_capacity(ws.capacity);
    for (start, dst) in (0..n)
        .step_by(ws.capacity)
        .zip(out.chunks_mut(ws.capacity * k))
    {
        let m = ws.capacity.min(n - start);
        rows.clear();
        rows.extend(start..start + m);
        x.gather(&rows, &mut ws.x);
        net.forward(params, &mut ws, m, par)?;
        dst.copy_from_slice(net.outputs(&ws, m));
    }
    Ok(())
}
