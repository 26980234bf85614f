//! One mini-batch in two parallel passes. First the rows: a batch of `m` rows is cut into
//! `ceil(m / PART_ROWS)` parts of near-equal size, and each part gathers its rows and runs
//! its forward pass and the backward pass of its error signals on its own thread. Then
//! the parameters: the optimizer updates them in chunks of weight rows, and each chunk's
//! gradient, summed over the parts in part order, is computed just before it is applied
//! ([`BatchGrads`]), so no per-part gradient is ever stored and each chunk is updated
//! while it is in cache. Every cut depends on the shapes (and the first layer's on X,
//! [`first_layer_cut`]), never on the number of threads, so results are bit-identical
//! whatever `n_jobs` is.

use crate::bf16::{Bf16Rows, PackTarget};
use crate::data::{Dataset, Rows};
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::gemm::{self, Precision};
use crate::network::Layout;
use crate::optimizer::{GradScale, GradientSource, Scalars, Solver, StepScratch};
use crate::parallel::{Par, SendPtr};
use crate::propagate::{Net, PackedWeights, Pass};
use crate::real::Real;
use crate::workspace::{Passes, Workspace};
use crate::zeros;

/// Largest part of a batch, in rows. Large enough for efficient matrix products, small
/// enough that scikit-learn's default batch of 200 splits in two.
pub(crate) const PART_ROWS: usize = 128;

/// A weight matrix is updated in at most this many chunks of rows (more would repeat
/// the packing of the error signals in every chunk's product)...
const MAX_CHUNKS: usize = 2;

/// ...of at least this many rows.
const MIN_CHUNK_ROWS: usize = 16;

/// Rows of a panel of packed weights (bfloat16's `W^T` operand): a chunk of whole
/// panels repacks its own.
const PANEL_ROWS: usize = crate::bf16::NR;

/// Parts of a batch of `m` rows: as few as keep them within [`PART_ROWS`]. (Cutting small
/// batches further, so that two cores share them, was measured slower: see
/// `bench/profile.md`.)
pub(crate) fn part_count(m: usize) -> usize {
    m.div_ceil(PART_ROWS).max(1)
}

pub(crate) struct BatchRunner<T> {
    parts: Vec<Workspace<T>>,
    /// Rows of each part of the last batch (as many entries as it had parts).
    part_rows: Vec<usize>,
    losses: Vec<f64>,
    weight_sums: Vec<T>,
    /// The threads of the last batch.
    par: Par,
    /// The dropout of the fit, when it drops units.
    dropout: Option<Dropout>,
    /// How the products treat their operands, and the weights packed for them.
    precision: Precision,
    packed: PackedWeights,
    /// Where the optimizer repacks each layer's weights right after updating them...
    targets: Vec<(Option<PackTarget>, Option<PackTarget>)>,
    /// ...and whether it did for the current weights (the next batch packs nothing).
    packed_fresh: bool,
    /// Whether X is sparse (its first layer takes the sparse products).
    sparse_input: bool,
    /// A dense f32 X of a bfloat16 fit rounded once, which the first layer's products
    /// read instead of gathered rows (see [`crate::bf16`]'s `rows`)...
    rows16: Option<Bf16Rows>,
    /// ...and the rows of the last batch in it.
    batch_rows: Vec<usize>,
    /// Whether each part computes its whole gradient in the rows pass (see
    /// [`part_gradients`]).
    part_grads: bool,
    /// Where the first layer's weight rows are cut for the update, when not in the
    /// middle (see [`first_layer_cut`]).
    first_cut: Option<usize>,
    /// The optimizer's buffers for the update.
    scratch: StepScratch<T>,
}

/// Whether each part of a batch computes its own whole gradient in the rows pass, which
/// the update then sums chunk by chunk, instead of each chunk's gradient reading every
/// part's inputs and error signals: when the parameters are few against a part's
/// activations (W2: 5,377 against 100 x 147), less crosses between the cores.
fn part_gradients<T: Real>(layout: &Layout, x: &Rows<'_, T>, precision: Precision) -> bool {
    let units: usize = layout.units.iter().sum();
    !x.is_sparse()
        && precision == Precision::Exact
        && 2 * layout.n_params() <= PART_ROWS.saturating_mul(units)
}

/// What one batch gave: the weighted data-loss sum and the sum of the weights.
pub(crate) struct BatchResult<T> {
    pub loss_sum: f64,
    pub weight_sum: T,
}

impl<T: Real> BatchResult<T> {
    /// The batch loss as `_backprop` gives it: the data loss plus the L2 `penalty`
    /// (`alpha / 2 * ||W||^2`), over the weight sum.
    pub(crate) fn loss(&self, penalty: f64) -> f64 {
        (self.loss_sum + penalty) / self.weight_sum.to_f64()
    }
}

/// What a batch's update takes from the fit: the solver, `alpha`, and the L2 penalty
/// `alpha / 2 * ||W||^2` of the current weights, which are all finite when that is.
#[derive(Clone, Copy)]
pub(crate) struct StepOf<'a> {
    pub solver: &'a Solver,
    pub alpha: f64,
    pub penalty: f64,
    pub finite_weights: bool,
}

impl<T: Real> BatchRunner<T> {
    /// Buffers for batches of up to `batch` rows. When they do not fit in memory, the
    /// error gives their total size (what to shrink: the batch or the layers).
    pub(crate) fn new(
        layout: &Layout,
        batch: usize,
        (dropout, precision): (&Dropout, Precision),
        x: &Rows<'_, T>,
        par: Par,
    ) -> Result<Self> {
        let parts = part_count(batch);
        let capacity = batch.min(PART_ROWS);
        let part_grads = parts > 1 && part_gradients(layout, x, precision);
        let rows16 = rounded_once(x, precision, par)?;
        let passes = if part_grads {
            Passes::Gradients
        } else {
            Passes::Deltas
        };
        let workspace = || {
            let mut ws = Workspace::for_rows(layout, capacity, passes, x, false)?;
            ws.precision = precision;
            ws.with_dropout(layout, dropout)
        };
        let workspaces: Result<Vec<_>> = (0..parts).map(|_| workspace()).collect();
        let workspaces = workspaces.map_err(|e| match e {
            Error::Memory { .. } => Error::Memory {
                what: format!(
                    "the buffers of a batch of {batch} rows ({parts} parts of up to \
                     {capacity} rows; layers {:?}, {}): reduce batch_size or \
                     hidden_layer_sizes",
                    layout.units,
                    T::DTYPE
                ),
                bytes: Workspace::<T>::bytes(layout, capacity, Passes::Deltas)
                    .saturating_mul(parts),
            },
            other => other,
        })?;
        Ok(Self {
            parts: workspaces,
            part_rows: Vec::with_capacity(parts),
            losses: vec![0.0; parts],
            weight_sums: vec![T::zero(); parts],
            par: Par::Sequential,
            dropout: (0..layout.n_layers())
                .any(|l| dropout.active(l))
                .then(|| dropout.clone()),
            precision,
            packed: PackedWeights::default(),
            targets: Vec::new(),
            packed_fresh: false,
            sparse_input: x.is_sparse(),
            first_cut: first_layer_cut(
                layout,
                x,
                (batch / parts, part_grads, precision),
                rows16.as_ref(),
            ),
            rows16,
            batch_rows: Vec::with_capacity(batch),
            part_grads,
            scratch: StepScratch::default(),
        })
    }

    /// One batch of the rows `rows` ([`BatchRunner::run`]) and the optimizer's update
    /// from its gradient (`_backprop` and `_optimizer.update_params`). Returns the batch
    /// loss and the new coefficients' sum of squares, `None` when the rows' weights sum
    /// to zero; a batch whose loss is not finite updates nothing.
    #[allow(clippy::too_many_arguments)] // `run`'s and `Solver::step`'s inputs
    pub(crate) fn step(
        &mut self,
        net: &Net,
        data: &Dataset<'_, T>,
        rows: (&[usize], u64),
        (params, state): (&mut [&mut [T]], &mut [&mut [T]]),
        step: StepOf<'_>,
        scalars: &mut Scalars,
        par: Par,
    ) -> Result<Option<(f64, f64)>> {
        let result = self.run(net, data, rows, (params, step.finite_weights), par)?;
        if result.weight_sum == T::zero() {
            return Ok(None);
        }
        let batch_loss = result.loss(step.penalty);
        if !batch_loss.is_finite() {
            return Ok(Some((batch_loss, f64::NAN)));
        }
        let scale = GradScale {
            alpha: step.alpha,
            weight_sum: result.weight_sum.to_f64(),
            n_coefs: net.layout.n_layers(),
        };
        // (out of `self` while the gradient, which borrows all of it, is read)
        let mut scratch = std::mem::take(&mut self.scratch);
        let repack = self
            .packed
            .targets(&net.layout, self.sparse_input, &mut self.targets);
        let mut grads = self.grads(net);
        grads.repack = repack.then_some(&self.targets[..]);
        let norm = step
            .solver
            .step(params, &grads, state, scalars, scale, &mut scratch, par);
        self.scratch = scratch;
        self.packed_fresh = repack && norm.is_ok();
        Ok(Some((batch_loss, norm?)))
    }

    /// Says that the weights may have changed since the last update (between epochs:
    /// validation, callbacks, the best weights), so that the next batch packs them.
    pub(crate) fn weights_replaced(&mut self) {
        self.packed_fresh = false;
    }

    /// The raw gradient of the last batch (valid after [`BatchRunner::run`]).
    pub(crate) fn grads<'a>(&'a self, net: &'a Net) -> BatchGrads<'a, T> {
        BatchGrads {
            net,
            parts: &self.parts[..self.part_rows.len()],
            part_rows: &self.part_rows,
            par: self.par,
            rows16: self.rows16.as_ref().map(|x| (x, &self.batch_rows[..])),
            part_grads: self.part_grads,
            first_cut: self.first_cut,
            whole_panels: self.packs_weights(),
            repack: None,
        }
    }

    /// Whether the batches' products take the weights packed (bfloat16, f32 weights).
    fn packs_weights(&self) -> bool {
        PackedWeights::applies::<T>(self.precision)
    }

    /// Forward passes and error signals of the rows `rows` of `data`, part by part; the
    /// first row is sample visit `first_visit` of the model's life (for dropout).
    /// `finite_weights`: the caller knows `params` are all finite.
    pub(crate) fn run(
        &mut self,
        net: &Net,
        data: &Dataset<'_, T>,
        (rows, first_visit): (&[usize], u64),
        (params, finite_weights): (&[&mut [T]], bool),
        par: Par,
    ) -> Result<BatchResult<T>> {
        let m = rows.len();
        let count = part_count(m);
        let cut = |i: usize| i * m / count;
        if count > self.parts.len()
            || (0..count).any(|i| cut(i + 1) - cut(i) > self.parts[i].capacity)
        {
            return Err(Error::Shape(format!(
                "a batch of {m} rows does not fit the buffers prepared"
            )));
        }
        self.part_rows.clear();
        self.par = par;
        // A lone part may still spread its matrix products over the threads.
        let inner = if count == 1 { par } else { Par::Sequential };
        let weighted = data.sample_weight.is_some();
        let part_grads = self.part_grads;
        let dropout = self.dropout.as_ref();
        // bfloat16: the weights packed once for every part
        let packing = (self.precision, self.sparse_input);
        let fresh = std::mem::take(&mut self.packed_fresh);
        let packed =
            (fresh || self.packed.pack(&net.layout, params, packing, par)?).then_some(&self.packed);
        self.batch_rows.clear();
        self.batch_rows.extend_from_slice(rows);
        // (only with packed weights: the unpacked products read gathered rows)
        let rows16 = self.rows16.as_ref().filter(|_| packed.is_some());
        let parts = SendPtr(self.parts.as_mut_ptr());
        let losses = SendPtr(self.losses.as_mut_ptr());
        let weight_sums = SendPtr(self.weight_sums.as_mut_ptr());
        par.try_for_each(count, |i| {
            let (lo, hi) = (cut(i), cut(i + 1));
            // SAFETY: part `i` is touched by this call alone; `i < count <= len`.
            let ws = unsafe { &mut *parts.get().add(i) };
            let part = &rows[lo..hi];
            // X's rows rounded once are read where they lie: only targets are gathered
            let weight_sum = match rows16 {
                Some(_) => ws.gather_targets(data, part)?,
                None => ws.gather(data, part)?,
            };
            let pass = Pass {
                layers: net.layout.n_layers(),
                dropout: dropout.map(|d| (d, first_visit + lo as u64)),
                packed,
                rows16: rows16.map(|x| (x, part)),
                finite_weights,
                non_finite_rows: None,
            };
            net.forward_pass(params, None, ws, hi - lo, inner, pass)?;
            let loss = net.loss_sum(ws, hi - lo, weighted);
            net.backward_deltas_with(params, ws, (hi - lo, weighted), inner, packed)?;
            if part_grads {
                net.gradients_from_deltas(ws, hi - lo, false, inner)?;
            }
            // SAFETY: slot `i` belongs to this call.
            unsafe {
                *losses.get().add(i) = loss;
                *weight_sums.get().add(i) = weight_sum;
            }
            Ok::<(), Error>(())
        })?;
        self.part_rows
            .extend((0..count).map(|i| cut(i + 1) - cut(i)));
        let mut weight_sum = T::zero();
        for &w in &self.weight_sums[..count] {
            weight_sum += w;
        }
        Ok(BatchResult {
            loss_sum: self.losses[..count].iter().sum(),
            weight_sum,
        })
    }
}

/// Where the update cuts the first layer's weight rows into its two chunks when the
/// inputs' work differs (a dense X with zeros: [`zeros::balanced_cut`]), so that the
/// threads taking them finish together; `None` for the middle, and where the chunks'
/// gradients do not both skip zeros (`gemm`'s work is even): the smaller chunk's
/// product too small for [`zeros`]' kernel in parts of `part_rows` rows (those of a
/// whole batch: an epoch's last, smaller batch may still fall under it), a bfloat16
/// fit whose rows do not skip zero pairs (`rows16`), or other products (bfloat16's of
/// gathered rows). The cut depends on X and the shapes alone, not on the threads; it
/// is even (bfloat16 repacks whole pairs of rows) and leaves both chunks
/// [`MIN_CHUNK_ROWS`].
fn first_layer_cut<T: Real>(
    layout: &Layout,
    x: &Rows<'_, T>,
    (part_rows, part_grads, precision): (usize, bool, Precision),
    rows16: Option<&Bf16Rows>,
) -> Option<usize> {
    // (`BatchGrads::chunk_rows` gives the rows past the cut to one chunk)
    const _: () = assert!(MAX_CHUNKS == 2);
    let (inputs, width) = (layout.units[0], layout.units[1]);
    let two_chunks = inputs.div_ceil(MIN_CHUNK_ROWS) >= MAX_CHUNKS;
    let skip = |cut: usize| match (rows16, precision) {
        (Some(rows), _) => rows.skips(),
        (None, Precision::Exact) => zeros::takes_chunk(part_rows, cut.min(inputs - cut), width),
        (None, Precision::Bf16) => false,
    };
    let fits = |&cut: &usize| {
        cut % 2 == 0 && cut >= MIN_CHUNK_ROWS && cut + MIN_CHUNK_ROWS <= inputs && skip(cut)
    };
    match x {
        Rows::Dense(x) if two_chunks && !part_grads => zeros::balanced_cut(*x).filter(fits),
        _ => None,
    }
}

/// X rounded to bfloat16 once for a bfloat16 fit of a dense f32 X (packed weights, so
/// f32 models only); `None` for every other fit.
fn rounded_once<T: Real>(
    x: &Rows<'_, T>,
    precision: Precision,
    par: Par,
) -> Result<Option<Bf16Rows>> {
    match x {
        Rows::Dense(x) if precision == Precision::Bf16 => match gemm::f32_view(*x) {
            Some(x) => Ok(Some(Bf16Rows::new(x, par)?)),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The raw gradient of a batch, computed chunk by chunk from its parts' error signals as
/// the optimizer asks for it: weight rows `Y^T D` and intercepts `colsum(D)`, each summed
/// over the parts in part order.
pub(crate) struct BatchGrads<'a, T> {
    net: &'a Net,
    parts: &'a [Workspace<T>],
    part_rows: &'a [usize],
    /// The threads the batch ran on: a chunk's products may spread over idle ones.
    par: Par,
    /// X rounded once and the batch's rows in it (see [`BatchRunner`]).
    rows16: Option<(&'a Bf16Rows, &'a [usize])>,
    /// Whether the parts hold their whole gradients (see [`part_gradients`]).
    part_grads: bool,
    /// See [`BatchRunner`]'s.
    first_cut: Option<usize>,
    /// Whether the weights are packed for the products (bfloat16): chunks of whole
    /// pairs and panels of their rows, so that each update task can repack its own...
    whole_panels: bool,
    /// ...into these targets, one pair per layer (see [`BatchRunner::step`]).
    repack: Option<&'a [(Option<PackTarget>, Option<PackTarget>)]>,
}

impl<T: Real> GradientSource<T> for BatchGrads<'_, T> {
    fn tensors(&self) -> usize {
        // none before a batch has run, so that a step fails its checks, updating nothing
        if self.parts.is_empty() {
            0
        } else {
            2 * self.net.layout.n_layers()
        }
    }

    fn tensor_len(&self, tensor: usize) -> usize {
        self.net.layout.tensor_len(tensor)
    }

    fn row_len(&self, tensor: usize) -> usize {
        // a weight matrix's rows, or the intercept vector as a single row
        let layout = &self.net.layout;
        layout.units[tensor % layout.n_layers() + 1]
    }

    fn chunk_rows(&self, tensor: usize) -> usize {
        if tensor < self.net.layout.n_layers() {
            let rows = self.net.layout.units[tensor];
            let chunks = rows.div_ceil(MIN_CHUNK_ROWS).clamp(1, MAX_CHUNKS);
            let chunk = rows.div_ceil(chunks);
            // whole pairs of rows for W, whole panels for W^T (none for the first layer)
            match (self.whole_panels, tensor, self.first_cut) {
                // the rows past the first chunk's, in one chunk
                (_, 0, Some(cut)) => rows.saturating_sub(cut),
                (false, _, _) => chunk,
                (true, 0, _) => chunk.next_multiple_of(2),
                (true, _, _) => chunk.next_multiple_of(PANEL_ROWS),
            }
        } else {
            1
        }
    }

    /// Repacks a chunk of a weight matrix's new rows for the next batch's products (W
    /// by pairs of rows, W^T by panels of rows: whole ones, see `chunk_rows`).
    fn updated(&self, tensor: usize, start: usize, values: &[T]) -> Result<()> {
        let Some(&(forward, backward)) = self.repack.and_then(|t| t.get(tensor)) else {
            return Ok(());
        };
        let cols = self.net.layout.units[tensor + 1];
        let (first, rows) = (start / cols, values.len() / cols);
        let whole = start.is_multiple_of(cols) && values.len().is_multiple_of(cols);
        let end = first + rows;
        let last = self.net.layout.units[tensor];
        let cut = |at: usize, by: usize| at.is_multiple_of(by) || at == last;
        let pairs = cut(first, 2) && cut(end, 2);
        let panels = backward.is_none() || (cut(first, PANEL_ROWS) && cut(end, PANEL_ROWS));
        let no_panels = || {
            Error::Shape(format!(
                "no whole panels of f32 in rows {first}..{end} of weight matrix {tensor}"
            ))
        };
        if !(whole && pairs && panels) {
            return Err(no_panels());
        }
        let w =
            gemm::f32_view(crate::propagate::view(values, rows, cols)?).ok_or_else(no_panels)?;
        // SAFETY: the packed buffers live for the step (`BatchRunner::step`); rows
        // first..end are this chunk's alone, and so are their pairs (an even first
        // row) and panels (whole ones, checked above).
        unsafe {
            if let Some(target) = forward {
                target.rows(w, first);
            }
            if let Some(target) = backward {
                target.columns(w, first);
            }
        }
        Ok(())
    }

    fn first_chunk_rows(&self, tensor: usize) -> usize {
        match (tensor, self.first_cut) {
            // (a multiple of four: whole pairs of W's rows for bfloat16 too)
            (0, Some(cut)) => cut,
            _ => self.chunk_rows(tensor),
        }
    }

    fn work_per_element(&self) -> usize {
        self.part_rows.iter().sum()
    }

    fn chunk<'s>(&'s self, tensor: usize, start: usize, scratch: &'s mut [T]) -> Result<&'s [T]> {
        let l_count = self.net.layout.n_layers();
        let row = self.row_len(tensor);
        let whole_rows = start.is_multiple_of(row) && scratch.len().is_multiple_of(row);
        if self.parts.is_empty() || !whole_rows || (tensor >= l_count && start != 0) {
            return Err(Error::Shape(format!(
                "no gradient chunk at {start} of tensor {tensor} ({} elements)",
                scratch.len()
            )));
        }
        if self.part_grads {
            // summed in part order, as the chunk's products accumulate below
            let range = start..start + scratch.len();
            scratch.copy_from_slice(&self.parts[0].grads[tensor][range.clone()]);
            for ws in &self.parts[1..] {
                let part = &ws.grads[tensor][range.clone()];
                scratch.iter_mut().zip(part).for_each(|(s, &g)| *s += g);
            }
            return Ok(scratch);
        }
        let mut lo = 0;
        for (k, (ws, &n)) in self.parts.iter().zip(self.part_rows).enumerate() {
            let part = self.rows16.map(|(x, rows)| (x, &rows[lo..lo + n]));
            lo += n;
            if let (0, Some(rows16)) = (tensor, part) {
                let first = start / row;
                let how = (k > 0, self.par);
                self.net
                    .input_gradient_from_rows(ws, rows16, first, scratch, how)?;
            } else if tensor < l_count {
                let first = start / row;
                self.net
                    .weight_gradient(ws, n, tensor, first, scratch, k > 0, self.par)?;
            } else {
                self.net
                    .intercept_gradient(ws, tensor - l_count, scratch, k > 0)?;
            }
        }
        Ok(scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::data::Targets;
    use crate::loss::Loss;
    use crate::network::SplitMix64;
    use crate::parallel::with_threads;
    use ndarray::Array2;

    /// The whole gradient, chunk by chunk as the optimizer asks for it.
    fn gradient(grads: &BatchGrads<'_, f64>) -> Vec<Vec<f64>> {
        (0..grads.tensors())
            .map(|t| {
                let mut out = vec![f64::NAN; grads.tensor_len(t)];
                let first = grads.first_chunk_rows(t) * grads.row_len(t);
                let size = grads.chunk_rows(t) * grads.row_len(t);
                let first = first.min(out.len());
                let (head, rest) = out.split_at_mut(first);
                let got = grads.chunk(t, 0, head).unwrap().to_vec();
                head.copy_from_slice(&got);
                for (c, room) in rest.chunks_mut(size).enumerate() {
                    let got = grads.chunk(t, first + c * size, room).unwrap().to_vec();
                    room.copy_from_slice(&got);
                }
                out
            })
            .collect()
    }

    #[test]
    fn parts_match_one_pass_and_ignore_thread_count() {
        let layout = Layout::new(vec![7, 33, 4]).unwrap();
        let net = Net {
            layout: layout.clone(),
            hidden: Activation::Tanh,
            loss: Loss::LogLoss,
        };
        let mut rng = SplitMix64(4);
        let n = 300; // three parts of 100 rows
        let x = Array2::from_shape_fn((n, 7), |_| rng.next_f64() - 0.5);
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
        let data = Dataset {
            x: Rows::Dense(x.view()),
            y: Targets::Classes(&labels),
            sample_weight: None,
        };
        let mut params = layout.glorot::<f64>(Activation::Tanh, 9);
        let params: Vec<&mut [f64]> = params.iter_mut().map(|p| &mut p[..]).collect();
        let rows: Vec<usize> = (0..n).rev().collect();

        let run = |threads: usize, part_grads: bool| {
            let mut runner = BatchRunner::new(
                &layout,
                n,
                (&Dropout::default(), Precision::Exact),
                &data.x,
                Par::Sequential,
            )
            .unwrap();
            assert!(
                runner.part_grads,
                "few parameters: whole gradients per part"
            );
            runner.part_grads = part_grads;
            let result = with_threads(threads, |par| {
                runner.run(&net, &data, (&rows, 0), (&params, false), par)
            })
            .unwrap()
            .unwrap();
            (
                result.loss_sum,
                result.weight_sum,
                gradient(&runner.grads(&net)),
            )
        };
        let reference = run(1, true);
        for (threads, part_grads) in [(2, true), (3, true), (1, false), (2, false)] {
            let other = run(threads, part_grads);
            assert_eq!(other.0.to_bits(), reference.0.to_bits());
            // the parts' whole gradients summed are the bits of the chunks' products
            // accumulated over the parts
            assert_eq!(other.2, reference.2);
        }

        // the same gradient as one pass over the whole batch
        let mut one = Workspace::new(&layout, n, Passes::Gradients).unwrap();
        one.gather(&data, &rows).unwrap();
        net.forward(&params, &mut one, n, Par::Sequential).unwrap();
        net.backward(&params, &mut one, n, false, false, Par::Sequential)
            .unwrap();
        assert_eq!(reference.1, n as f64);
        for (a, b) in reference.2.iter().flatten().zip(one.grads.iter().flatten()) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
    }

    /// A relu classifier of `units` and `n` rows of f32 inputs in [-0.5, 0.5) with
    /// labels cycling through the classes.
    fn relu_classifier(units: &[usize], n: usize, seed: u64) -> (Net, Array2<f32>, Vec<i64>) {
        let net = Net {
            layout: Layout::new(units.to_vec()).unwrap(),
            hidden: Activation::Relu,
            loss: Loss::LogLoss,
        };
        let mut rng = SplitMix64(seed);
        let x = Array2::from_shape_fn((n, units[0]), |_| rng.next_f64() as f32 - 0.5);
        let classes = units[units.len() - 1] as i64;
        let labels = (0..n as i64).map(|i| i % classes).collect();
        (net, x, labels)
    }

    /// SGD with Nesterov's momentum 0.9 at a constant rate.
    fn nesterov() -> crate::optimizer::Solver {
        crate::optimizer::Solver::Sgd {
            momentum: 0.9,
            nesterov: true,
            schedule: crate::optimizer::Schedule::Constant,
            power_t: 0.5,
        }
    }

    /// A step of `solver` with scikit-learn's default `alpha`.
    fn step_of(solver: &crate::optimizer::Solver) -> StepOf<'_> {
        StepOf {
            solver,
            alpha: 1e-4,
            penalty: 0.0,
            finite_weights: false,
        }
    }

    /// Dense rows `x` of classes `labels`.
    fn labelled<'a>(x: &'a Array2<f32>, labels: &'a [i64]) -> Dataset<'a, f32> {
        Dataset {
            x: Rows::Dense(x.view()),
            y: Targets::Classes(labels),
            sample_weight: None,
        }
    }

    /// One step of `runner` over the batch `rows` of `data` on `threads` threads.
    fn one_step(
        runner: &mut BatchRunner<f32>,
        (net, data, rows): (&Net, &Dataset<'_, f32>, &[usize]),
        (params, state): (&mut [Vec<f32>], &mut [Vec<f32>]),
        (step, scalars): (StepOf<'_>, &mut Scalars),
        threads: usize,
    ) {
        let mut p: Vec<&mut [f32]> = params.iter_mut().map(|v| &mut v[..]).collect();
        let mut s: Vec<&mut [f32]> = state.iter_mut().map(|v| &mut v[..]).collect();
        with_threads(threads, |par| {
            let tensors = (&mut p[..], &mut s[..]);
            runner.step(net, data, (rows, 0), tensors, step, scalars, par)
        })
        .unwrap()
        .unwrap()
        .unwrap();
    }

    /// A fit's first scalars at learning rate `rate`.
    fn rate(rate: f64) -> Scalars {
        Scalars {
            learning_rate_init: rate,
            learning_rate: rate,
            step: 0,
        }
    }

    /// bfloat16 batches: the weights packed once for the parts give the bits of products
    /// that pack them each time (one pass, no parts), for any thread count.
    #[test]
    fn packed_bf16_batches_match_unpacked_products() {
        let n = 128; // one part: its gradient is the one pass's, bit for bit
        let (net, x, labels) = relu_classifier(&[20, 40, 24, 3], n, 5);
        let layout = net.layout.clone();
        let data = Dataset {
            x: Rows::Dense(x.view()),
            y: Targets::Classes(&labels),
            sample_weight: None,
        };
        let mut params = layout.glorot::<f32>(Activation::Relu, 2);
        let params: Vec<&mut [f32]> = params.iter_mut().map(|p| &mut p[..]).collect();
        let rows: Vec<usize> = (0..n).collect();
        let run = |threads: usize| {
            let setup = (&Dropout::default(), Precision::Bf16);
            let mut runner = BatchRunner::new(&layout, n, setup, &data.x, Par::Sequential).unwrap();
            with_threads(threads, |par| {
                runner.run(&net, &data, (&rows, 0), (&params, false), par)
            })
            .unwrap()
            .unwrap();
            let grads = runner.grads(&net);
            (0..grads.tensors())
                .map(|t| {
                    let mut out = vec![0.0_f32; grads.tensor_len(t)];
                    let got = grads.chunk(t, 0, &mut out).unwrap().to_vec();
                    got
                })
                .collect::<Vec<_>>()
        };
        let reference = run(1);
        assert_eq!(run(3), reference);
        let mut one = Workspace::new(&layout, n, Passes::Gradients).unwrap();
        one.precision = Precision::Bf16;
        one.gather(&data, &rows).unwrap();
        net.forward(&params, &mut one, n, Par::Sequential).unwrap();
        net.backward(&params, &mut one, n, false, false, Par::Sequential)
            .unwrap();
        assert_eq!(reference, one.grads);
        // and the rounding shows: not the exact products' gradient
        let mut exact = Workspace::new(&layout, n, Passes::Gradients).unwrap();
        exact.gather(&data, &rows).unwrap();
        net.forward(&params, &mut exact, n, Par::Sequential)
            .unwrap();
        net.backward(&params, &mut exact, n, false, false, Par::Sequential)
            .unwrap();
        assert_ne!(reference, exact.grads);
    }

    /// bfloat16: the weights each update repacks, chunk by chunk on the threads, are the
    /// words a whole packing of the new weights gives (odd inputs: a last pair with one
    /// value; partial panels; chunks of whole panels), for one thread and two; and the
    /// batches that run on them reach the weights of batches that pack them whole.
    #[test]
    fn repacked_weights_match_a_whole_packing() {
        let n = 256; // 2 parts; 24,000 parameters x 256 rows: the update in chunks
        let (net, x, labels) = relu_classifier(&[301, 70, 40, 3], n, 8);
        let layout = net.layout.clone();
        let data = labelled(&x, &labels);
        let rows: Vec<usize> = (0..n).rev().collect();
        let (solver, scalars) = (nesterov(), rate(0.1));
        let step = step_of(&solver);
        // three steps; `repack`: the update's packing used (else each step packs whole)
        let fit = |threads: usize, repack: bool| {
            let mut params = layout.glorot::<f32>(Activation::Relu, 4);
            let mut state: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
            let setup = (&Dropout::default(), Precision::Bf16);
            let mut runner = BatchRunner::new(&layout, n, setup, &data.x, Par::Sequential).unwrap();
            let mut scalars = scalars;
            for batch in 0..3 {
                if !repack {
                    runner.weights_replaced();
                }
                let tensors = (&mut params[..], &mut state[..]);
                one_step(
                    &mut runner,
                    (&net, &data, &rows),
                    tensors,
                    (step, &mut scalars),
                    threads,
                );
                assert!(runner.packed_fresh, "batch {batch}: repacked by the update");
                let mut whole = PackedWeights::default();
                let packing = (Precision::Bf16, false);
                assert!(whole
                    .pack(&layout, &params, packing, Par::Sequential)
                    .unwrap());
                assert_eq!(runner.packed, whole, "threads {threads}, batch {batch}");
            }
            params
        };
        let reference = fit(1, false);
        for threads in [1, 2] {
            // the batches that ran on the repacked weights: the same new weights
            assert_eq!(fit(threads, true), reference, "threads {threads}");
        }
    }

    /// Inputs of images, busier in their lower half: the update cuts the first layer
    /// past its middle (from X, before any batch), and the weights are those of the
    /// even cut, bit for bit, float32 and bfloat16, for one thread and two.
    #[test]
    fn the_first_layer_is_cut_where_its_work_halves() {
        let n = 256; // 2 parts; 69,000 parameters: the update in chunks, of the rows
        let (net, x, labels) = relu_classifier(&[400, 160, 30, 3], n, 12);
        // inputs 0..200 non-zero in a fifth of the rows, 200..400 in three fifths
        let x = Array2::from_shape_fn(x.dim(), |(i, j)| {
            let busy = if j < 200 { i % 5 == 0 } else { i % 5 < 3 };
            if busy {
                x[[i, j]] + 1.0
            } else {
                0.0
            }
        });
        let layout = net.layout.clone();
        let data = labelled(&x, &labels);
        let rows: Vec<usize> = (0..n).rev().collect();
        let (solver, scalars) = (nesterov(), rate(0.1));
        let step = step_of(&solver);
        let fit = |threads: usize, precision: Precision, cut: bool| {
            let mut params = layout.glorot::<f32>(Activation::Relu, 4);
            let mut state: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
            let setup = (&Dropout::default(), precision);
            let mut runner = BatchRunner::new(&layout, n, setup, &data.x, Par::Sequential).unwrap();
            if crate::simd::detected_level() == crate::simd::Level::Avx512 {
                let at = runner.first_cut.expect("a cut");
                assert!(at > 200 && at % 4 == 0, "cut at {at}");
            }
            // (a CPU without AVX-512 does not cut: its steps with one all the same)
            runner.first_cut = cut.then(|| runner.first_cut.unwrap_or(256));
            let mut scalars = scalars;
            for _ in 0..3 {
                let tensors = (&mut params[..], &mut state[..]);
                one_step(
                    &mut runner,
                    (&net, &data, &rows),
                    tensors,
                    (step, &mut scalars),
                    threads,
                );
            }
            params
        };
        // batches of 64 rows (one part, so no part gradients): the zero-skipping
        // gradient takes both chunks (the smaller 144 inputs) into 120 units, not into
        // 100 (half the inputs would do) nor 8, where `gemm`'s chunks are even work;
        // bfloat16's products skip zeros whatever the units
        let avx512 = crate::simd::detected_level() == crate::simd::Level::Avx512;
        for (units, precision, cuts) in [
            (120, Precision::Exact, true),
            (100, Precision::Exact, false),
            (8, Precision::Exact, false),
            (8, Precision::Bf16, true),
        ] {
            let (narrow, ..) = relu_classifier(&[400, units, 3], n, 12);
            let setup = (&Dropout::default(), precision);
            let runner =
                BatchRunner::<f32>::new(&narrow.layout, 64, setup, &data.x, Par::Sequential);
            let runner = runner.unwrap();
            assert!(!runner.part_grads);
            let expected = (cuts && avx512).then_some(256);
            assert_eq!(runner.first_cut, expected, "{units} {precision:?}");
        }
        for precision in [Precision::Exact, Precision::Bf16] {
            let even = fit(1, precision, false);
            for threads in [1, 2] {
                assert_eq!(
                    fit(threads, precision, true),
                    even,
                    "{precision:?} {threads}"
                );
            }
        }
    }

    /// With dropout, the gradient is that of the dropped network: the masks fixed (the
    /// same sample visits), it matches central finite differences of the loss.
    #[test]
    fn dropout_gradient_matches_finite_differences() {
        let layout = Layout::new(vec![5, 9, 7, 3]).unwrap();
        let dropout = Dropout {
            rates: vec![0.3, 0.5],
            seed: 11,
        };
        let mut rng = SplitMix64(3);
        let n = 12;
        let x = Array2::from_shape_fn((n, 5), |_| rng.next_f64() - 0.5);
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
        let data = Dataset {
            x: Rows::Dense(x.view()),
            y: Targets::Classes(&labels),
            sample_weight: None,
        };
        let rows: Vec<usize> = (0..n).collect();
        for hidden in [Activation::Tanh, Activation::Logistic, Activation::Relu] {
            let net = Net {
                layout: layout.clone(),
                hidden,
                loss: Loss::LogLoss,
            };
            let mut ws = Workspace::new(&layout, n, Passes::Gradients)
                .unwrap()
                .with_dropout(&layout, &dropout)
                .unwrap();
            let pass = Pass {
                layers: 3,
                dropout: Some((&dropout, 40)),
                packed: None,
                rows16: None,
                finite_weights: false,
                non_finite_rows: None,
            };
            let loss = |params: &[Vec<f64>], ws: &mut Workspace<f64>| {
                ws.gather(&data, &rows).unwrap();
                net.forward_pass(params, None, ws, n, Par::Sequential, pass)
                    .unwrap();
                net.loss_sum(ws, n, false)
            };
            let mut params = layout.glorot::<f64>(hidden, 5);
            loss(&params, &mut ws);
            net.backward(&params, &mut ws, n, false, false, Par::Sequential)
                .unwrap();
            let analytic = ws.grads.clone();
            let dropped = ws.masks[0].iter().filter(|&&m| m == 0.0).count();
            assert!(dropped > 0 && dropped < ws.masks[0].len());
            let h = 1e-6;
            for t in 0..params.len() {
                for i in 0..params[t].len() {
                    let orig = params[t][i];
                    params[t][i] = orig + h;
                    let up = loss(&params, &mut ws);
                    params[t][i] = orig - h;
                    let down = loss(&params, &mut ws);
                    params[t][i] = orig;
                    let numeric = (up - down) / (2.0 * h);
                    let err = (numeric - analytic[t][i]).abs();
                    assert!(
                        err <= 1e-6 * (1.0 + numeric.abs()),
                        "{hidden:?} tensor {t}[{i}]: {} vs {numeric}",
                        analytic[t][i]
                    );
                }
            }
        }
    }

    #[test]
    fn misplaced_chunks_and_early_steps_are_errors() {
        use crate::optimizer::{GradScale, Scalars, Schedule, Solver, StepScratch};
        let layout = Layout::new(vec![3, 20, 2]).unwrap();
        let net = Net {
            layout: layout.clone(),
            hidden: Activation::Relu,
            loss: Loss::LogLoss,
        };
        let mut params = layout.glorot::<f64>(Activation::Relu, 1);
        let before = params.clone();
        let mut state: Vec<Vec<f64>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
        let mut runner = BatchRunner::<f64>::new(
            &layout,
            8,
            (&Dropout::default(), Precision::Exact),
            &Rows::Dense(ndarray::Array2::zeros((1, 3)).view()),
            Par::Sequential,
        )
        .unwrap();
        let solver = Solver::Sgd {
            momentum: 0.9,
            nesterov: true,
            schedule: Schedule::Constant,
            power_t: 0.5,
        };
        let step =
            |runner: &BatchRunner<f64>, params: &mut Vec<Vec<f64>>, state: &mut Vec<Vec<f64>>| {
                let mut p: Vec<&mut [f64]> = params.iter_mut().map(|v| &mut v[..]).collect();
                let mut s: Vec<&mut [f64]> = state.iter_mut().map(|v| &mut v[..]).collect();
                let mut scalars = Scalars {
                    learning_rate_init: 0.1,
                    learning_rate: 0.1,
                    step: 0,
                };
                let scale = GradScale {
                    alpha: 0.0,
                    weight_sum: 8.0,
                    n_coefs: 2,
                };
                let mut scratch = StepScratch::default();
                solver.step(
                    &mut p,
                    &runner.grads(&net),
                    &mut s,
                    &mut scalars,
                    scale,
                    &mut scratch,
                    Par::Sequential,
                )
            };
        // before any batch: an error, and nothing updated
        assert!(step(&runner, &mut params, &mut state).is_err());
        assert_eq!(params, before);

        let x = Array2::from_shape_fn((8, 3), |(i, j)| (i + j) as f64 * 0.1);
        let labels: Vec<i64> = (0..8).map(|i| i % 2).collect();
        let data = Dataset {
            x: Rows::Dense(x.view()),
            y: Targets::Classes(&labels),
            sample_weight: None,
        };
        let rows: Vec<usize> = (0..8).collect();
        let views: Vec<&mut [f64]> = params.iter_mut().map(|p| &mut p[..]).collect();
        runner
            .run(&net, &data, (&rows, 0), (&views, false), Par::Sequential)
            .unwrap();
        let grads = runner.grads(&net);
        let mut room = vec![0.0; 20];
        assert!(grads.chunk(0, 20, &mut room).is_ok());
        assert!(grads.chunk(0, 1, &mut room).is_err(), "not at a row start");
        assert!(grads.chunk(0, 0, &mut room[..7]).is_err(), "not whole rows");
        assert!(grads.chunk(0, 60, &mut room).is_err(), "past the last row");
        assert!(
            grads.chunk(2, 0, &mut room).is_ok(),
            "the hidden intercepts"
        );
        assert!(
            grads.chunk(3, 1, &mut room[..1]).is_err(),
            "part of the intercepts"
        );
        assert!(step(&runner, &mut params, &mut state).is_ok());
        assert_ne!(params, before);
    }
}
