//! Forward and backward passes over one batch held in a [`Workspace`]: per layer one GEMM
//! forward, one for the weight gradient and one for the error of the layer below.

use crate::activation::{
    add_bias, add_bias_and_activate, add_column_sums, scale_by_derivative_and_sum, Activation,
};
use crate::bf16::{Bf16Rows, PackTarget, PackedB};
use crate::dropout::{self, Dropout};
use crate::error::{Error, Result};
use crate::gemm::{self, matmul_in, matmul_prepacked, Precision};
use crate::loss::Loss;
use crate::narrow;
use crate::network::Layout;
use crate::parallel::Par;
use crate::real::Real;
use crate::reduce::sum_of_squares;
use crate::sparse;
use crate::workspace::Workspace;
use crate::zeros;
use ndarray::{ArrayView2, ArrayViewMut2};
use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};

/// How far a forward pass goes, and the dropout it applies (with the sample visit of its
/// first row).
#[derive(Clone, Copy)]
pub(crate) struct Pass<'a> {
    pub(crate) layers: usize,
    pub(crate) dropout: Option<(&'a Dropout, u64)>,
    /// The weights packed for bfloat16 products once for a batch's parts.
    pub(crate) packed: Option<&'a PackedWeights>,
    /// The pass's rows of X rounded to bfloat16 once (when they are, the first layer
    /// reads them there: `ws.x` holds no rows).
    pub(crate) rows16: Option<(&'a Bf16Rows, &'a [usize])>,
    /// The caller knows the weights are all finite (a fit whose squared norm is), which
    /// spares the zero-skipping first layer its check of them.
    pub(crate) finite_weights: bool,
    /// When given, set when a row of X is not finite, as the first layer's products
    /// show it: NaN or infinity among a row's inputs makes every one of its products
    /// NaN or infinite (`0 · inf` is NaN, and no later term brings a sum back), so one
    /// output a row tells, with no pass of its own over X. (An overflow of the
    /// products of finite inputs sets it too: the caller's fallback checks X itself.)
    pub(crate) non_finite_rows: Option<&'a AtomicBool>,
}

/// A network's weights packed for bfloat16 products (see [`crate::bf16`]): each `W_l`
/// as the forward product's operand, and each `W_l^T` (l >= 1) as the error's.
#[derive(Default, Debug, PartialEq)]
pub(crate) struct PackedWeights {
    forward: Vec<PackedB>,
    backward: Vec<PackedB>,
}

impl PackedWeights {
    /// Whether the products of a fit in `precision` with `T` weights take them packed:
    /// bfloat16 products of f32 weights.
    pub(crate) fn applies<T: 'static>(precision: Precision) -> bool {
        precision == Precision::Bf16 && TypeId::of::<T>() == TypeId::of::<f32>()
    }

    /// Packs `params`' weights when `precision` is bfloat16 and they are f32 (else
    /// leaves nothing packed), reusing the buffers.
    /// (`sparse_input`: the first layer's forward product is sparse, not packed.)
    /// The packing runs on `par`'s threads, one matrix each.
    pub(crate) fn pack<T: Real>(
        &mut self,
        layout: &Layout,
        params: &[impl AsRef<[T]> + Sync],
        (precision, sparse_input): (Precision, bool),
        par: Par,
    ) -> Result<bool> {
        if !Self::applies::<T>(precision) {
            return Ok(false);
        }
        let layers = layout.n_layers();
        self.forward.resize_with(layers, PackedB::default);
        self.backward.resize_with(layers, PackedB::default);
        let u = &layout.units;
        let weights = |l: usize| -> Result<ArrayView2<'_, f32>> {
            // SAFETY: T is f32 (checked above): the same values.
            let w: &[f32] = unsafe {
                let w = params[l].as_ref();
                std::slice::from_raw_parts(w.as_ptr().cast(), w.len())
            };
            view(w, u[l], u[l + 1])
        };
        // W_l for the forward products (not the first of a sparse X), W_l^T for the
        // error products (not the first layer's: its input needs no error)
        let mut jobs = Vec::with_capacity(2 * layers);
        for (l, (fwd, bwd)) in self.forward.iter_mut().zip(&mut self.backward).enumerate() {
            if !(l == 0 && sparse_input) {
                jobs.push((fwd, weights(l)?));
            }
            if l > 0 {
                jobs.push((bwd, weights(l)?.reversed_axes()));
            }
        }
        let jobs = std::sync::Mutex::new(jobs);
        let count = jobs.lock().map_or(0, |j| j.len());
        par.try_for_each(count, |_| {
            let job = jobs.lock().ok().and_then(|mut j| j.pop());
            if let Some((packed, w)) = job {
                packed.repack(w);
            }
            Ok::<(), Error>(())
        })?;
        Ok(true)
    }

    /// Where the optimizer's tasks repack each layer's weights after updating them:
    /// `(W_l for the forward products, W_l^T for the error products)` as [`Self::pack`]
    /// packs them, into `out` (one entry per layer); false, leaving `out` empty, when
    /// they are not all packed already (the first batch, or another precision).
    pub(crate) fn targets(
        &mut self,
        layout: &Layout,
        sparse_input: bool,
        out: &mut Vec<(Option<PackTarget>, Option<PackTarget>)>,
    ) -> bool {
        out.clear();
        let u = &layout.units;
        let layers = layout.n_layers();
        if self.forward.len() != layers || self.backward.len() != layers {
            return false;
        }
        for (l, (fwd, bwd)) in self.forward.iter_mut().zip(&mut self.backward).enumerate() {
            let fwd = (!(l == 0 && sparse_input)).then(|| fwd.target((u[l], u[l + 1])));
            let bwd = (l > 0).then(|| bwd.target((u[l + 1], u[l])));
            match (fwd, bwd) {
                (Some(None), _) | (_, Some(None)) => {
                    out.clear();
                    return false;
                }
                (fwd, bwd) => out.push((fwd.flatten(), bwd.flatten())),
            }
        }
        true
    }
}

/// What a network computes, independent of its current parameters.
#[derive(Debug, Clone)]
pub struct Net {
    /// The layer sizes.
    pub layout: Layout,
    /// The hidden layers' activation.
    pub hidden: Activation,
    /// The loss, which fixes the output activation.
    pub loss: Loss,
}

/// `data`'s first `rows x cols` values as a row-major matrix (a shape error if short).
pub(crate) fn view<T>(data: &[T], rows: usize, cols: usize) -> Result<ArrayView2<'_, T>> {
    let values = data
        .get(..rows * cols)
        .ok_or_else(|| too_small(rows, cols))?;
    ArrayView2::from_shape((rows, cols), values).map_err(|_| too_small(rows, cols))
}

/// [`view`], mutable.
pub(crate) fn view_mut<T>(
    data: &mut [T],
    rows: usize,
    cols: usize,
) -> Result<ArrayViewMut2<'_, T>> {
    let values = data
        .get_mut(..rows * cols)
        .ok_or_else(|| too_small(rows, cols))?;
    ArrayViewMut2::from_shape((rows, cols), values).map_err(|_| too_small(rows, cols))
}

fn too_small(rows: usize, cols: usize) -> Error {
    Error::Shape(format!("workspace too small for a {rows} x {cols} block"))
}

impl Net {
    /// The checks every pass starts with, so that no slice below can be out of range.
    fn check_pass<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        ws: &Workspace<T>,
        n: usize,
        rows_given: bool,
    ) -> Result<()> {
        self.layout.check("parameters", params)?;
        // (X's rows handed over are read where they lie: `ws.x` may have no room)
        let sized = ws.acts.len() == self.layout.n_layers()
            && (ws.sparse.is_some()
                || rows_given
                || ws.x.len() >= ws.capacity * self.layout.n_inputs())
            && ws.y.len() >= ws.capacity * self.layout.n_outputs();
        if !sized || n > ws.capacity {
            return Err(Error::Shape(format!(
                "a pass over {n} rows needs a workspace for this network of at least that \
                 capacity (has {})",
                ws.capacity
            )));
        }
        Ok(())
    }

    /// Forward pass of the first `n` rows of `ws.x`; outputs land in `ws.acts`.
    pub fn forward<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        ws: &mut Workspace<T>,
        n: usize,
        par: Par,
    ) -> Result<()> {
        self.forward_rows(params, None, ws, n, par)
    }

    /// [`Net::forward`] of the `n` row-major rows `x` instead of `ws.x`, so that rows
    /// already contiguous in X are read where they lie rather than copied first.
    pub fn forward_rows<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        x: Option<&[T]>,
        ws: &mut Workspace<T>,
        n: usize,
        par: Par,
    ) -> Result<()> {
        let whole = Pass {
            layers: self.layout.n_layers(),
            dropout: None,
            packed: None,
            rows16: None,
            finite_weights: false,
            non_finite_rows: None,
        };
        self.forward_pass(params, x, ws, n, par, whole)
    }

    /// The forward pass of [`Net::forward_rows`] through the first `pass.layers` layers,
    /// dropping hidden units as `pass.dropout` says (training only).
    pub(crate) fn forward_pass<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        x: Option<&[T]>,
        ws: &mut Workspace<T>,
        n: usize,
        par: Par,
        pass: Pass<'_>,
    ) -> Result<()> {
        self.check_pass(params, ws, n, x.is_some())?;
        let u = &self.layout.units;
        let l_count = self.layout.n_layers();
        let output = self.loss.output_activation();
        let precision = ws.precision;
        let dense_x = x.unwrap_or(&ws.x);
        // a sparse X's gathered entries, unless rows were handed over
        let sparse_x = ws.sparse.as_ref().filter(|_| x.is_none());
        for l in 0..pass.layers.min(l_count) {
            let (before, after) = ws.acts.split_at_mut(l);
            let z = &mut after[0];
            let weights = params[l].as_ref();
            match (sparse_x, pass.packed, pass.rows16) {
                (Some(batch), _, _) if l == 0 => sparse::forward(z, batch, weights, u[1], n)?,
                (_, Some(packed), Some((x16, which))) if l == 0 => {
                    let which = which.get(..n).ok_or_else(|| too_small(n, u[0]))?;
                    gemm::matmul_rows(view_mut(z, n, u[1])?, x16, which, &packed.forward[0], par)?;
                }
                (_, Some(packed), _) => {
                    let input = if l == 0 { dense_x } else { &before[l - 1][..] };
                    matmul_prepacked(
                        view_mut(z, n, u[l + 1])?,
                        view(input, n, u[l])?,
                        &packed.forward[l],
                        false,
                        par,
                    )?;
                }
                (_, None, _)
                    if l == 0
                        && precision == Precision::Exact
                        && self.skips_zeros(dense_x, weights, z, n, pass.finite_weights)? => {}
                (_, None, _) => {
                    let input = if l == 0 { dense_x } else { &before[l - 1][..] };
                    matmul_in(
                        precision,
                        view_mut(z, n, u[l + 1])?,
                        view(input, n, u[l])?,
                        view(weights, u[l], u[l + 1])?,
                        false,
                        par,
                    )?;
                }
            }
            let bias = params[l_count + l].as_ref();
            let z = &mut z[..n * u[l + 1]];
            if let Some(flag) = pass.non_finite_rows.filter(|_| l == 0) {
                if !z.iter().step_by(u[1]).all(|v| v.is_finite()) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            if l + 1 < l_count {
                add_bias_and_activate(z, bias, self.hidden);
                match pass.dropout {
                    Some((d, first_visit)) if d.active(l) && !ws.masks[l].is_empty() => {
                        let (kept, mask) = (&mut ws.kept[l][..z.len()], &mut ws.masks[l]);
                        dropout::apply(d, l, first_visit, u[l + 1], z, kept, &mut mask[..z.len()]);
                    }
                    _ => {}
                }
            } else {
                add_bias(z, bias);
                output.apply(z, u[l + 1]);
            }
        }
        Ok(())
    }

    /// Whether the first layer's product `z = x w` over `n` rows was taken by
    /// [`zeros::forward`] (rows with many zeros; the same bits as `matmul_in`'s, which
    /// takes it otherwise); `finite`: `w` is known to be all finite.
    fn skips_zeros<T: Real>(
        &self,
        x: &[T],
        w: &[T],
        z: &mut [T],
        n: usize,
        finite: bool,
    ) -> Result<bool> {
        let u = &self.layout.units;
        let product = zeros::Forward {
            x,
            inputs: u[0],
            w,
            width: u[1],
            n,
        };
        zeros::forward(&product, z, finite)
    }

    /// The network's outputs for the last forward pass of `n` rows.
    pub fn outputs<'w, T: Real>(&self, ws: &'w Workspace<T>, n: usize) -> &'w [T] {
        let last = ws.acts.len() - 1;
        &ws.acts[last][..n * self.layout.n_outputs()]
    }

    /// The weighted data-loss sum of the last forward pass (divide by the weight sum).
    pub fn loss_sum<T: Real>(&self, ws: &Workspace<T>, n: usize, weighted: bool) -> f64 {
        let k = self.layout.n_outputs();
        let w = weighted.then(|| &ws.w[..n]);
        if self.loss == Loss::LogLoss && ws.one_hot {
            return Loss::log_loss_of_classes(self.outputs(ws, n), &ws.classes[..n], w, k);
        }
        self.loss
            .weighted_sum(self.outputs(ws, n), &ws.y[..n * k], w, k)
    }

    /// `sum ||W||^2` over the coefficient matrices.
    pub fn squared_norm<T: Real>(&self, params: &[impl AsRef<[T]>]) -> f64 {
        params[..self.layout.n_layers()]
            .iter()
            .map(|w| sum_of_squares(w.as_ref()))
            .sum()
    }

    /// `0.5 * alpha * sum ||W||^2`, the L2 term before dividing by the weight sum.
    pub fn penalty<T: Real>(&self, params: &[impl AsRef<[T]>], alpha: f64) -> f64 {
        if alpha == 0.0 {
            return 0.0;
        }
        0.5 * alpha * self.squared_norm(params)
    }

    /// Backward pass after [`Net::forward`]: the error signals of every layer, then
    /// (or, with `accumulate`, adds) the raw gradients `Y^T D` and `colsum(D)` into
    /// `ws.grads`, without the L2 term or scaling.
    pub fn backward<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        ws: &mut Workspace<T>,
        n: usize,
        weighted: bool,
        accumulate: bool,
        par: Par,
    ) -> Result<()> {
        self.backward_deltas(params, ws, n, weighted, par)?;
        self.gradients_from_deltas(ws, n, accumulate, par)
    }

    /// The raw gradients `Y^T D` and `colsum(D)` of the last backward pass's error
    /// signals into (or, with `accumulate`, added to) `ws.grads` (the second half of
    /// [`Net::backward`]).
    pub(crate) fn gradients_from_deltas<T: Real>(
        &self,
        ws: &mut Workspace<T>,
        n: usize,
        accumulate: bool,
        par: Par,
    ) -> Result<()> {
        let l_count = self.layout.n_layers();
        if ws.grads.len() != 2 * l_count {
            return Err(Error::Shape(
                "gradients need a workspace with gradients".into(),
            ));
        }
        let mut grads = std::mem::take(&mut ws.grads);
        let (coef_grads, intercept_grads) = grads.split_at_mut(l_count);
        let outcome = (0..l_count).try_for_each(|l| {
            self.weight_gradient(ws, n, l, 0, &mut coef_grads[l], accumulate, par)?;
            self.intercept_gradient(ws, l, &mut intercept_grads[l], accumulate)
        });
        ws.grads = grads;
        outcome
    }

    /// The error signals of the last forward pass of `n` rows: `ws.deltas[l]` holds the
    /// loss's derivative with respect to layer `l + 1`'s pre-activations (unscaled).
    pub fn backward_deltas<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        ws: &mut Workspace<T>,
        n: usize,
        weighted: bool,
        par: Par,
    ) -> Result<()> {
        self.backward_deltas_with(params, ws, (n, weighted), par, None)
    }

    /// [`Net::backward_deltas`], with the weights packed once for the batch's parts.
    pub(crate) fn backward_deltas_with<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        ws: &mut Workspace<T>,
        (n, weighted): (usize, bool),
        par: Par,
        packed: Option<&PackedWeights>,
    ) -> Result<()> {
        self.check_pass(params, ws, n, false)?;
        let sums_fit = ws.delta_sums.len() == self.layout.n_layers()
            && ws
                .delta_sums
                .iter()
                .zip(&self.layout.units[1..])
                .all(|(s, &u)| s.len() == u);
        if ws.deltas.len() != self.layout.n_layers() || !sums_fit {
            return Err(Error::Shape(
                "backward needs a workspace with error signals".into(),
            ));
        }
        if packed.is_none() {
            ws.packed_deltas.clear();
        }
        let u = &self.layout.units;
        let l_count = self.layout.n_layers();
        let k = self.layout.n_outputs();
        {
            let w = weighted.then(|| &ws.w[..n]);
            let last = l_count - 1;
            let delta = &mut ws.deltas[last][..n * k];
            (self.loss).output_delta(&ws.acts[last][..n * k], &ws.y[..n * k], w, k, delta);
            let sums = &mut ws.delta_sums[last];
            sums.fill(T::zero());
            add_column_sums(sums, delta);
        }
        for l in (1..l_count).rev() {
            let dropped = ws.masks.get(l - 1).is_some_and(|m| !m.is_empty());
            if packed.is_none() && !dropped && self.fuses_error(ws, l) {
                self.relu_error(params[l].as_ref(), ws, n, l);
                continue;
            }
            let (lower, upper) = ws.deltas.split_at_mut(l);
            let below = &mut lower[l - 1];
            let d = view(&upper[0], n, u[l + 1])?;
            match packed {
                Some(packed) => matmul_prepacked(
                    view_mut(below, n, u[l])?,
                    d,
                    &packed.backward[l],
                    false,
                    par,
                )?,
                None => matmul_in(
                    ws.precision,
                    view_mut(below, n, u[l])?,
                    d,
                    view(params[l].as_ref(), u[l], u[l + 1])?.t(),
                    false,
                    par,
                )?,
            }
            // through the dropout mask, and the derivative at the outputs before it
            let outputs = if dropped {
                dropout::backward(&ws.masks[l - 1][..n * u[l]], &mut below[..n * u[l]]);
                &ws.kept[l - 1][..n * u[l]]
            } else {
                &ws.acts[l - 1][..n * u[l]]
            };
            scale_by_derivative_and_sum(
                self.hidden,
                outputs,
                &mut below[..n * u[l]],
                &mut ws.delta_sums[l - 1],
            );
        }
        if packed.is_some() {
            self.pack_deltas(ws, n)?;
        }
        Ok(())
    }

    /// Every layer's error signals packed once for the weight gradient's bfloat16
    /// products (packed per chunk of weight rows, they were packed twice or more).
    fn pack_deltas<T: Real>(&self, ws: &mut Workspace<T>, n: usize) -> Result<()> {
        let l_count = self.layout.n_layers();
        ws.packed_deltas.resize_with(l_count, PackedB::default);
        for (l, packed) in ws.packed_deltas.iter_mut().enumerate() {
            if l == 0 && ws.sparse.is_some() {
                // a sparse X's first layer takes its own gradient product, unpacked
                continue;
            }
            let d = view(&ws.deltas[l], n, self.layout.units[l + 1])?;
            let d = gemm::f32_view(d)
                .ok_or_else(|| Error::Shape("bfloat16 products take f32 operands".into()))?;
            packed.repack(d);
        }
        Ok(())
    }

    /// Layer `l`'s error signals as the last backward pass packed them, when it did.
    fn packed_deltas<'w, T>(
        &self,
        ws: &'w Workspace<T>,
        l: usize,
        n: usize,
    ) -> Option<&'w PackedB> {
        let units = self.layout.units.get(l + 1)?;
        ws.packed_deltas.get(l).filter(|p| p.dim() == (n, *units))
    }

    /// Whether layer `l`'s error signals (those of the layer below it) take the fused
    /// pass of [`narrow::relu_error`]: relu hidden layers, f64 products in the model's
    /// type, few units in layer `l + 1`, and a CPU with the kernel.
    fn fuses_error<T: Real>(&self, ws: &Workspace<T>, l: usize) -> bool {
        let (units, next) = (self.layout.units[l], self.layout.units[l + 1]);
        self.hidden == Activation::Relu
            && TypeId::of::<T>() == TypeId::of::<f64>()
            && ws.precision == Precision::Exact
            && narrow::applies(next)
            && ws.narrow_wt.len() >= units * next
    }

    /// Layer `l`'s error signals and their column sums in one pass (see
    /// [`Net::fuses_error`]), from the next layer's error signals and its weights `w`
    /// (`units[l] x units[l + 1]`).
    fn relu_error<T: Real>(&self, w: &[T], ws: &mut Workspace<T>, n: usize, l: usize) {
        let (units, next) = (self.layout.units[l], self.layout.units[l + 1]);
        let wt = &mut ws.narrow_wt[..units * next];
        for (c, row) in w.chunks_exact(next).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                wt[j * units + c] = v;
            }
        }
        let (lower, upper) = ws.deltas.split_at_mut(l);
        // SAFETY (the casts): `T` is f64 (checked by `fuses_error`).
        let f64s =
            |s: &[T]| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f64>(), s.len()) };
        let error = narrow::ReluError {
            rows: n,
            width: units,
            k: next,
            d: f64s(&upper[0][..n * next]),
            wt: f64s(wt),
            y: f64s(&ws.acts[l - 1][..n * units]),
        };
        let delta = &mut lower[l - 1][..n * units];
        let sums = &mut ws.delta_sums[l - 1];
        // SAFETY: `T` is f64; `narrow::applies(next)` was checked.
        unsafe {
            narrow::relu_error(
                &error,
                std::slice::from_raw_parts_mut(delta.as_mut_ptr().cast::<f64>(), delta.len()),
                std::slice::from_raw_parts_mut(sums.as_mut_ptr().cast::<f64>(), sums.len()),
            );
        }
    }

    /// Rows `first..first + dst.len() / units[l + 1]` of layer `l`'s raw weight gradient
    /// `Y^T D` over the `n` rows of the last backward pass, written into (or, with
    /// `accumulate`, added to) the row-major `dst`.
    #[allow(clippy::too_many_arguments)]
    pub fn weight_gradient<T: Real>(
        &self,
        ws: &Workspace<T>,
        n: usize,
        l: usize,
        first: usize,
        dst: &mut [T],
        accumulate: bool,
        par: Par,
    ) -> Result<()> {
        let u = &self.layout.units;
        let cols = if l < ws.deltas.len().min(self.layout.n_layers()) {
            u[l + 1]
        } else {
            0
        };
        let rows = dst.len().checked_div(cols).unwrap_or(0);
        if let (0, Some(batch)) = (l, ws.sparse.as_ref()) {
            let end = first.saturating_add(rows);
            if cols == 0 || rows * cols != dst.len() || end > u[0] || ws.deltas.is_empty() {
                return Err(Error::Shape(format!(
                    "no rows {first}..{end} in layer 0's weight gradient"
                )));
            }
            let deltas = &ws.deltas[0];
            return sparse::weight_gradient(dst, batch, first, deltas, cols, n, accumulate);
        }
        let input = if l == 0 {
            Some(&ws.x[..])
        } else {
            ws.acts.get(l - 1).map(|a| &a[..])
        };
        let (Some(input), Some(end)) = (input, first.checked_add(rows)) else {
            return Err(too_small(n, cols));
        };
        if cols == 0 || rows * cols != dst.len() || end > u[l] {
            return Err(Error::Shape(format!(
                "no rows {first}..{end} in layer {l}'s weight gradient"
            )));
        }
        if l == 0 && ws.precision == Precision::Exact && self.packed_deltas(ws, l, n).is_none() {
            let gradient = zeros::Gradient {
                x: input,
                x_cols: u[0],
                first,
                d: &ws.deltas[0],
                width: cols,
                n,
            };
            if zeros::weight_gradient(&gradient, dst, accumulate)? {
                return Ok(());
            }
        }
        let input = view(input, n, u[l])?.slice_move(ndarray::s![.., first..end]);
        let (dst, input_t) = (view_mut(dst, rows, u[l + 1])?, input.t());
        match self.packed_deltas(ws, l, n) {
            Some(packed) => matmul_prepacked(dst, input_t, packed, accumulate, par),
            None => {
                let deltas = view(&ws.deltas[l], n, u[l + 1])?;
                matmul_in(ws.precision, dst, input_t, deltas, accumulate, par)
            }
        }
    }

    /// [`Net::weight_gradient`] of the first layer, rows `first..` of it, from the rows
    /// `which` of X rounded to bfloat16 once (a bfloat16 fit's workspace holds no rows
    /// of X) and the error signals of the last backward pass over them.
    pub(crate) fn input_gradient_from_rows<T: Real>(
        &self,
        ws: &Workspace<T>,
        (x16, which): (&Bf16Rows, &[usize]),
        first: usize,
        dst: &mut [T],
        (accumulate, par): (bool, Par),
    ) -> Result<()> {
        let (n, cols) = (which.len(), self.layout.units[1]);
        let rows = dst.len() / cols.max(1);
        let Some(d) = self.packed_deltas(ws, 0, n) else {
            return Err(Error::Shape(
                "layer 0's weight gradient from bfloat16 rows needs the packed error \
                 signals of a backward pass over them"
                    .into(),
            ));
        };
        if rows * cols != dst.len() {
            return Err(Error::Shape(format!(
                "{} values are no rows of layer 0's weight gradient",
                dst.len()
            )));
        }
        gemm::matmul_t_rows(
            view_mut(dst, rows, cols)?,
            x16,
            (which, first),
            d,
            accumulate,
            par,
        )
    }

    /// Layer `l`'s raw intercept gradient `colsum(D)` over the rows of the last backward
    /// pass (summed by [`Net::backward_deltas`]), written into (or, with `accumulate`,
    /// added to) `dst`.
    pub fn intercept_gradient<T: Real>(
        &self,
        ws: &Workspace<T>,
        l: usize,
        dst: &mut [T],
        accumulate: bool,
    ) -> Result<()> {
        let sums = ws
            .delta_sums
            .get(l)
            .filter(|s| s.len() == dst.len())
            .ok_or_else(|| {
                Error::Shape(format!(
                    "no intercept gradient of {} values for layer {l}",
                    dst.len()
                ))
            })?;
        if accumulate {
            dst.iter_mut().zip(sums).for_each(|(d, &s)| *d += s);
        } else {
            dst.copy_from_slice(sums);
        }
        Ok(())
    }

    /// Turns raw gradients into the loss gradient: `(G + alpha W) / weight_sum` for the
    /// coefficients and `g / weight_sum` for the intercepts.
    pub fn finish_gradients<T: Real>(
        &self,
        params: &[impl AsRef<[T]>],
        grads: &mut [Vec<T>],
        alpha: f64,
        weight_sum: T,
    ) {
        let l_count = self.layout.n_layers();
        let alpha = T::from_f64(alpha);
        for (i, g) in grads.iter_mut().enumerate() {
            if i < l_count {
                g.iter_mut()
                    .zip(params[i].as_ref())
                    .for_each(|(g, &w)| *g = (*g + alpha * w) / weight_sum);
            } else {
                g.iter_mut().for_each(|g| *g /= weight_sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, Rows, Targets};
    use crate::network::SplitMix64;
    use crate::workspace::Passes;
    use ndarray::Array2;

    /// The fused error signals of a relu layer under a narrow one (`narrow::relu_error`)
    /// are the bits of the two passes they replace (the product, then the derivative and
    /// the column sums), with the outputs' zeros, a NaN and an infinity in the data (NaN
    /// where they have NaN, of either sign).
    #[test]
    fn fused_error_signals_are_the_two_passes_bits() {
        if !narrow::applies(1) {
            return;
        }
        for units in [
            vec![7, 40, 3],
            vec![5, 70, 10, 2],
            vec![3, 33, 16],
            vec![4, 9, 1],
        ] {
            let layout = Layout::new(units.clone()).unwrap();
            let net = Net {
                layout: layout.clone(),
                hidden: Activation::Relu,
                loss: Loss::SquaredError,
            };
            let (n, k) = (37, layout.n_outputs());
            let mut rng = SplitMix64(11);
            let mut x = Array2::from_shape_fn((n, units[0]), |_| rng.next_f64() - 0.5);
            x[[3, 1]] = f64::INFINITY;
            x[[5, 0]] = f64::NAN;
            let y = Array2::from_shape_fn((n, k), |_| rng.next_f64());
            let data = Dataset {
                x: Rows::Dense(x.view()),
                y: Targets::Dense(y.view()),
                sample_weight: None,
            };
            let params = layout.glorot::<f64>(Activation::Relu, 5);
            let rows: Vec<usize> = (0..n).collect();
            let run = |fused: bool| {
                let mut ws = Workspace::new(&layout, n, Passes::Deltas).unwrap();
                if !fused {
                    ws.narrow_wt = Vec::new();
                }
                ws.gather(&data, &rows).unwrap();
                net.forward(&params, &mut ws, n, Par::Sequential).unwrap();
                net.backward_deltas_with(&params, &mut ws, (n, false), Par::Sequential, None)
                    .unwrap();
                // the bits, but any NaN as one (its sign depends on the operand order
                // of the instruction that made it)
                let bits = |v: &Vec<Vec<f64>>| -> Vec<Vec<u64>> {
                    let canonical = |x: &f64| if x.is_nan() { u64::MAX } else { x.to_bits() };
                    v.iter()
                        .map(|l| l.iter().map(canonical).collect())
                        .collect()
                };
                (bits(&ws.deltas), bits(&ws.delta_sums))
            };
            assert_eq!(run(true), run(false), "layers {units:?}");
        }
    }
}
