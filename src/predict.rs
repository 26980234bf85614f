//! Inference: the forward pass over any number of rows, in fixed blocks of rows that run
//! in parallel (each thread with its own buffers); blocks never interact, so the result
//! does not depend on the number of threads.

use crate::data::Rows;
use crate::error::{ensure_shape, Error, Result};
use crate::parallel::{Par, SendPtr};
use crate::propagate::Net;
use crate::real::Real;
use crate::workspace::{Passes, Workspace};
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per block: enough for efficient products, small enough to spread over threads.
const BLOCK_ROWS: usize = 512;

/// Writes the network's outputs for every row of `x` into `out` (`n x n_outputs`,
/// row-major).
pub fn predict<T: Real>(
    net: &Net,
    params: &[impl AsRef<[T]> + Sync],
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
    let block = n.min(BLOCK_ROWS);
    let count = n.div_ceil(block);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let dst = SendPtr(out.as_mut_ptr());
    let run_block = |ws: &mut Workspace<T>, b: usize| {
        let start = b * block;
        let m = block.min(n - start);
        x.gather_range(start, m, &mut ws.x);
        match net.forward(params, ws, m, Par::Sequential) {
            Ok(()) => {
                // SAFETY: block `b` owns rows `start..start + m` of `out`.
                let target =
                    unsafe { std::slice::from_raw_parts_mut(dst.get().add(start * k), m * k) };
                target.copy_from_slice(net.outputs(ws, m));
            }
            Err(e) => {
                if let Ok(mut slot) = failure.lock() {
                    slot.get_or_insert(e);
                }
            }
        }
    };
    match par {
        Par::Rayon if count > 1 => (0..count).into_par_iter().for_each_init(
            || Workspace::new(&net.layout, block, Passes::Forward),
            run_block,
        ),
        _ => {
            let mut ws = Workspace::new(&net.layout, block, Passes::Forward);
            (0..count).for_each(|b| run_block(&mut ws, b));
        }
    }
    match failure.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
