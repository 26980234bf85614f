//! One mini-batch of a network with one hidden layer, cut by hidden units instead of by
//! rows (model parallelism), for the batches too small to share by rows: each half of
//! the hidden units keeps its columns of the first layer, its rows of the second, their
//! intercepts and optimizer state for a whole epoch, and runs the batch's forward pass,
//! backward pass and update for them; only the two halves' partial outputs (a batch of
//! output rows) meet once per batch. A half's update and its share of the next batch's
//! forward pass need nothing of the other half, so they run in one job. Cut by rows,
//! such a batch moved the weights and every row's error signals between the cores'
//! caches each batch and lost to one thread (`bench/profile.md`, W1). Halves are cut by
//! the shape alone, and the partial outputs are added in half order, so results are
//! bit-identical whatever the thread count.

use crate::activation::add_bias;
use crate::batch::{BatchResult, StepOf};
use crate::data::{Dataset, Rows};
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::gemm::{matmul_in, Precision};
use crate::memory;
use crate::network::Layout;
use crate::optimizer::{GradScale, Scalars, Solver};
use crate::parallel::{Par, SendPtr, MIN_THREADED_WORK};
use crate::propagate::{view, view_mut, Net, Pass};
use crate::real::Real;
use crate::workspace::{Passes, Workspace};

/// Fewest hidden units worth cutting in two...
const MIN_HIDDEN: usize = 16;

/// ...and fewest multiply-adds per batch (rows x parameters): digits' 64-64-10 in
/// batches of 16 rows (77,000) still ran 1.19x faster on two threads than on one
/// (`bench/profile.md`); smaller steps are left to one thread and the rows' path.
const MIN_SPLIT_WORK: usize = 1 << 16;

/// Whether a fit takes [`SplitRunner`]'s batches, by shape alone: one hidden layer of
/// at least [`MIN_HIDDEN`] units, a dense X, exact products, no dropout, and batches
/// too small to share by rows (under `MIN_THREADED_WORK`) but large enough for halves.
pub(crate) fn applies<T: Real>(
    layout: &Layout,
    x: &Rows<'_, T>,
    (dropout, precision): (&Dropout, Precision),
    batch: usize,
) -> bool {
    let work = batch.saturating_mul(layout.n_params());
    layout.n_layers() == 2
        && layout.units[1] >= MIN_HIDDEN
        && (MIN_SPLIT_WORK..MIN_THREADED_WORK).contains(&work)
        && !x.is_sparse()
        && precision == Precision::Exact
        && !dropout.active(0)
}

/// The first hidden unit of the second half: near the middle, on a multiple of 8 so
/// that both halves fill whole f64 vectors where they can.
fn cut(hidden: usize) -> usize {
    (hidden / 2 + 4) / 8 * 8
}

/// Tensors of a one-hidden-layer network, in the parameters' order.
const W1: usize = 0;
const W2: usize = 1;
const B1: usize = 2;
const B2: usize = 3;

/// Which hidden units a half owns: `lo..hi` of a layer of `width`.
#[derive(Clone, Copy)]
struct Share {
    lo: usize,
    hi: usize,
    width: usize,
}

impl Share {
    /// Copies this share of the full tensors `full` (parameters or one state, `k`
    /// outputs) into the half's own contiguous tensors `own` (or back, with `back`).
    fn copy<T: Copy>(self, own: &mut [Vec<T>], full: &mut [&mut [T]], k: usize, back: bool) {
        let Share { lo, hi, width } = self;
        let copy = |own: &mut [T], full: &mut [T]| {
            if back {
                full.copy_from_slice(own)
            } else {
                own.copy_from_slice(full)
            }
        };
        for (own_row, row) in own[W1]
            .chunks_exact_mut(hi - lo)
            .zip(full[W1].chunks_exact_mut(width))
        {
            copy(own_row, &mut row[lo..hi]);
        }
        copy(&mut own[W2], &mut full[W2][lo * k..hi * k]);
        copy(&mut own[B1], &mut full[B1][lo..hi]);
        // the output intercepts are the first half's (the second only reads them)
        if !back || lo == 0 {
            copy(&mut own[B2], &mut full[B2][..]);
        }
    }
}

/// One half of the hidden units and everything that belongs to them.
struct Half<T> {
    share: Share,
    /// The half as a network of its own (`n_in`, `hi - lo`, `n_out` units).
    net: Net,
    ws: Workspace<T>,
    /// Its parameters in the network's order, contiguous (its first-layer columns, its
    /// second-layer rows, its intercepts, and the output intercepts, which the first
    /// half alone updates)...
    params: Vec<Vec<T>>,
    /// ...and its optimizer state, tensor by tensor, as the solver keeps them.
    state: Vec<Vec<T>>,
    /// The sum of squares of its coefficients after its last update.
    norm: f64,
}

/// A fit's batches by halves of the hidden units: [`SplitRunner::batch`] per batch,
/// between [`SplitRunner::load`] and [`SplitRunner::store`] per epoch.
pub(crate) struct SplitRunner<T> {
    halves: [Half<T>; 2],
    /// The batch whose forward pass the last batch's update ran ahead: the rows (the
    /// slice's address and length) and their weight sum.
    ahead: Option<((usize, usize), T)>,
}

/// Which rows a forward pass ran for: the slice of the epoch's order.
fn key(rows: &[usize]) -> (usize, usize) {
    (rows.as_ptr() as usize, rows.len())
}

impl<T: Real> Half<T> {
    fn new(net: &Net, share: Share, batch: usize, states: usize) -> Result<Self> {
        let u = &net.layout.units;
        let layout = Layout::new(vec![u[0], share.hi - share.lo, u[2]])?;
        let ws = Workspace::new(&layout, batch, Passes::Gradients)?;
        let lens = layout.tensor_lens();
        let tensors = |count: usize| -> Result<Vec<Vec<T>>> {
            let what = || "a half's share of the parameters".to_string();
            (0..count)
                .flat_map(|_| lens.iter())
                .map(|&n| memory::filled(n, T::zero(), what))
                .collect()
        };
        Ok(Self {
            share,
            params: tensors(1)?,
            state: tensors(states)?,
            net: Net {
                layout,
                hidden: net.hidden,
                loss: net.loss,
            },
            ws,
            norm: 0.0,
        })
    }

    /// Gathers `rows` and computes the half's hidden outputs and its share of the
    /// output layer's pre-activations (without intercepts); returns the rows' weight sum.
    fn forward(&mut self, data: &Dataset<'_, T>, rows: &[usize]) -> Result<T> {
        let m = rows.len();
        let weight_sum = self.ws.gather(data, rows)?;
        let hidden_only = Pass {
            layers: 1,
            dropout: None,
            packed: None,
            rows16: None,
            finite_weights: false,
            non_finite_rows: None,
        };
        let (net, ws) = (&self.net, &mut self.ws);
        net.forward_pass(&self.params, None, ws, m, Par::Sequential, hidden_only)?;
        let (h, k) = (self.share.hi - self.share.lo, net.layout.n_outputs());
        let (hidden, outputs) = ws.acts.split_at_mut(1);
        matmul_in(
            Precision::Exact,
            view_mut(&mut outputs[0], m, k)?,
            view(&hidden[0], m, h)?,
            view(&self.params[W2], h, k)?,
            false,
            Par::Sequential,
        )?;
        Ok(weight_sum)
    }

    /// The half's gradient from the network's outputs (in its workspace) and its update
    /// by `update` (tensor, parameters, raw gradient, first and second state); keeps the
    /// sum of squares of its new coefficients.
    fn backward_and_update(
        &mut self,
        (m, weighted): (usize, bool),
        update: &Update<'_, T>,
    ) -> Result<()> {
        let (net, ws) = (&self.net, &mut self.ws);
        net.backward(&self.params, ws, m, weighted, false, Par::Sequential)?;
        // the output intercepts are the first half's to update
        let owned = if self.share.lo == 0 { 4 } else { 3 };
        let (first, second) = self.state.split_at_mut(4);
        let mut norm = 0.0;
        let tensors = self.params.iter_mut().zip(&ws.grads).zip(first).take(owned);
        for (t, ((p, g), s1)) in tensors.enumerate() {
            let s2 = second.get_mut(t).map_or(&mut [][..], |s| &mut s[..]);
            norm += update(t, p, g, s1, s2);
        }
        self.norm = norm;
        Ok(())
    }
}

/// An update of one tensor of a half: see [`Half::backward_and_update`].
type Update<'a, T> = dyn Fn(usize, &mut [T], &[T], &mut [T], &mut [T]) -> f64 + Sync + 'a;

impl<T: Real> SplitRunner<T> {
    /// Buffers for batches of up to `batch` rows of `net` (see [`applies`]) trained by
    /// `solver`.
    pub(crate) fn new(net: &Net, batch: usize, solver: &Solver) -> Result<Self> {
        let width = net.layout.units[1];
        let c = cut(width);
        let states = solver.state_per_tensor();
        let (first, second) = (
            Share {
                lo: 0,
                hi: c,
                width,
            },
            Share {
                lo: c,
                hi: width,
                width,
            },
        );
        Ok(Self {
            halves: [
                Half::new(net, first, batch, states)?,
                Half::new(net, second, batch, states)?,
            ],
            ahead: None,
        })
    }

    /// Takes the halves' shares of the parameters and the optimizer state (at the start
    /// of an epoch: between epochs the full tensors are read and may be replaced).
    pub(crate) fn load(&mut self, params: &mut [&mut [T]], state: &mut [&mut [T]]) {
        self.ahead = None;
        self.exchange(params, state, false);
    }

    /// Writes the halves' shares back into the full tensors (at the end of an epoch).
    pub(crate) fn store(&mut self, params: &mut [&mut [T]], state: &mut [&mut [T]]) {
        self.exchange(params, state, true);
    }

    fn exchange(&mut self, params: &mut [&mut [T]], state: &mut [&mut [T]], back: bool) {
        for half in &mut self.halves {
            let k = half.net.layout.n_outputs();
            half.share.copy(&mut half.params, params, k, back);
            for (own, full) in half
                .state
                .chunks_exact_mut(4)
                .zip(state.chunks_exact_mut(4))
            {
                half.share.copy(own, full, k, back);
            }
        }
    }

    /// One batch of the rows `rows` (`_backprop` and the update) and, with `next`, the
    /// forward pass of the batch after it: each half goes on from its update to its
    /// share of the next batch, which needs its own weights alone, in the same parallel
    /// job (the threads meet twice per batch instead of three times). Returns the batch
    /// loss and the new coefficients' sum of squares (first half, then second), `None`
    /// when the rows' weights sum to zero; a batch whose loss is not finite updates
    /// nothing.
    pub(crate) fn batch(
        &mut self,
        data: &Dataset<'_, T>,
        (rows, next): (&[usize], Option<&[usize]>),
        step: StepOf<'_>,
        scalars: &mut Scalars,
        par: Par,
    ) -> Result<Option<(f64, f64)>> {
        let m = rows.len();
        let weight_sum = match self.ahead.take() {
            Some((ran, weight_sum)) if ran == key(rows) => weight_sum,
            _ => self.forward(data, rows, par)?,
        };
        if weight_sum == T::zero() {
            return Ok(None);
        }
        self.combine(m, par)?;
        let weighted = data.sample_weight.is_some();
        let first = &self.halves[0];
        let loss_sum = first.net.loss_sum(&first.ws, m, weighted);
        let batch_loss = BatchResult {
            loss_sum,
            weight_sum,
        }
        .loss(step.penalty);
        if !batch_loss.is_finite() {
            return Ok(Some((batch_loss, f64::NAN)));
        }
        let scale = GradScale {
            alpha: step.alpha,
            weight_sum: weight_sum.to_f64(),
            n_coefs: 2,
        };
        let rule = step.solver.next_rule::<T>(scalars);
        let update = |t: usize, p: &mut [T], g: &[T], s1: &mut [T], s2: &mut [T]| {
            rule.update(t < 2, scale, p, g, s1, s2)
        };
        let mut sums = [T::zero(); 2];
        let out = SendPtr(sums.as_mut_ptr());
        self.both(par, |i, half| {
            half.backward_and_update((m, weighted), &update)?;
            if let Some(next) = next {
                // SAFETY: slot `i` belongs to this half alone.
                unsafe { *out.get().add(i) = half.forward(data, next)? };
            }
            Ok(())
        })?;
        self.ahead = next.map(|next| (key(next), sums[0]));
        Ok(Some((
            batch_loss,
            self.halves[0].norm + self.halves[1].norm,
        )))
    }

    /// The forward pass of `rows` alone (an epoch's first batch); returns their weight
    /// sum.
    fn forward(&mut self, data: &Dataset<'_, T>, rows: &[usize], par: Par) -> Result<T> {
        let mut sums = [T::zero(); 2];
        let out = SendPtr(sums.as_mut_ptr());
        self.both(par, |i, half| {
            // SAFETY: slot `i` belongs to this half alone.
            unsafe { *out.get().add(i) = half.forward(data, rows)? };
            Ok(())
        })?;
        Ok(sums[0])
    }

    /// The network's outputs of the last `m` rows into both halves' buffers: the two
    /// partial outputs added in half order, the output intercepts, the output
    /// activation. Row by row alike, so the rows are shared between a team's two
    /// threads (on a rayon pool a third fork-join would cost more than the rows take).
    fn combine(&mut self, m: usize, par: Par) -> Result<()> {
        let [first, second] = &mut self.halves;
        let k = first.net.layout.n_outputs();
        if first.ws.acts[1].len() < m * k || second.ws.acts[1].len() < m * k {
            return Err(Error::Shape(format!("no room for {m} rows of outputs")));
        }
        let outs = [
            first.ws.acts[1].as_mut_ptr(),
            second.ws.acts[1].as_mut_ptr(),
        ]
        .map(SendPtr);
        let (bias, activation) = (&first.params[B2][..], first.net.loss.output_activation());
        let pieces = if par == Par::Team { 2 } else { 1 };
        par.try_for_each(pieces, |i| {
            let (lo, hi) = (i * m / pieces, (i + 1) * m / pieces);
            let (start, len) = (lo * k, (hi - lo) * k);
            // SAFETY: rows `lo..hi` of both buffers (within `m * k`, checked above) are
            // this call's alone; the buffers are distinct.
            let (a, b) = unsafe {
                (
                    std::slice::from_raw_parts_mut(outs[0].get().add(start), len),
                    std::slice::from_raw_parts_mut(outs[1].get().add(start), len),
                )
            };
            a.iter_mut().zip(&*b).for_each(|(a, &b)| *a += b);
            add_bias(a, bias);
            activation.apply(a, k);
            b.copy_from_slice(a);
            Ok(())
        })
    }

    /// Runs `f` on both halves, in parallel on `par`'s threads.
    fn both(
        &mut self,
        par: Par,
        f: impl Fn(usize, &mut Half<T>) -> Result<()> + Send + Sync,
    ) -> Result<()> {
        let halves = SendPtr(self.halves.as_mut_ptr());
        par.try_for_each(2, |i| {
            // SAFETY: half `i` is touched by this call alone; `i < 2`.
            f(i, unsafe { &mut *halves.get().add(i) })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::batch::BatchRunner;
    use crate::data::Targets;
    use crate::loss::Loss;
    use crate::network::SplitMix64;
    use crate::optimizer::Schedule;
    use crate::parallel::with_threads;
    use ndarray::Array2;

    type Tensors = Vec<Vec<f64>>;

    /// Three batches of 50 rows of a 7-40-4 network: the parameters and optimizer
    /// state after them, by halves on `threads` threads or (`None`) by rows.
    fn train(
        net: &Net,
        solver: &Solver,
        data: &Dataset<'_, f64>,
        halves: Option<usize>,
    ) -> (Tensors, Tensors) {
        let layout = &net.layout;
        let mut params = layout.glorot::<f64>(net.hidden, 3);
        let mut state: Tensors = (0..solver.state_per_tensor())
            .flat_map(|_| layout.tensor_lens())
            .map(|n| vec![0.1; n])
            .collect();
        let mut scalars = Scalars {
            learning_rate_init: 0.05,
            learning_rate: 0.05,
            step: 0,
        };
        let mut p: Vec<&mut [f64]> = params.iter_mut().map(|v| &mut v[..]).collect();
        let mut s: Vec<&mut [f64]> = state.iter_mut().map(|v| &mut v[..]).collect();
        let order: Vec<usize> = (0..150).rev().collect();
        // the same step both ways (the L2 penalty only changes the reported loss)
        let step = StepOf {
            solver,
            alpha: 0.01,
            penalty: 0.0,
            finite_weights: false,
        };
        with_threads(halves.unwrap_or(1), |par| {
            let mut split = SplitRunner::new(net, 50, solver).unwrap();
            let setup = (&Dropout::default(), Precision::Exact);
            let mut rows = BatchRunner::new(layout, 50, setup, &data.x, par).unwrap();
            split.load(&mut p, &mut s);
            let batches: Vec<&[usize]> = order.chunks(50).collect();
            for (b, &batch) in batches.iter().enumerate() {
                let stepped = if halves.is_some() {
                    let next = batches.get(b + 1).copied();
                    split.batch(data, (batch, next), step, &mut scalars, par)
                } else {
                    let tensors = (&mut p[..], &mut s[..]);
                    rows.step(net, data, (batch, 0), tensors, step, &mut scalars, par)
                };
                assert!(stepped.unwrap().is_some_and(|(loss, _)| loss.is_finite()));
            }
            if halves.is_some() {
                split.store(&mut p, &mut s);
            }
        })
        .unwrap();
        (params, state)
    }

    #[test]
    fn halves_match_rows_and_ignore_thread_count() {
        let mut rng = SplitMix64(8);
        let x = Array2::from_shape_fn((150, 7), |_| rng.next_f64() - 0.5);
        let labels: Vec<i64> = (0..150).map(|i| (i * 7 % 4) as i64).collect();
        let y = Array2::from_shape_fn((150, 4), |(i, j)| x[[i, j]] * 2.0 - x[[i, 6]]);
        let w: Vec<f64> = (0..150).map(|i| (i % 5) as f64 * 0.5).collect();
        let adam = Solver::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        };
        let sgd = Solver::Sgd {
            momentum: 0.9,
            nesterov: true,
            schedule: Schedule::Constant,
            power_t: 0.5,
        };
        let cases = [
            (
                Activation::Relu,
                Loss::LogLoss,
                Targets::Classes(&labels),
                None,
                adam,
            ),
            (
                Activation::Tanh,
                Loss::SquaredError,
                Targets::Dense(y.view()),
                Some(&w[..]),
                sgd,
            ),
            (
                Activation::Logistic,
                Loss::Huber { delta: 0.5 },
                Targets::Dense(y.view()),
                None,
                adam,
            ),
        ];
        for (hidden, loss, targets, weights, solver) in cases {
            let net = Net {
                layout: Layout::new(vec![7, 40, 4]).unwrap(),
                hidden,
                loss,
            };
            let data = Dataset {
                x: Rows::Dense(x.view()),
                y: targets,
                sample_weight: weights,
            };
            let by_rows = train(&net, &solver, &data, None);
            let one = train(&net, &solver, &data, Some(1));
            let two = train(&net, &solver, &data, Some(2));
            assert_eq!(one, two, "{hidden:?} {loss:?}: bits depend on the threads");
            let pairs = one
                .0
                .iter()
                .chain(&one.1)
                .zip(by_rows.0.iter().chain(&by_rows.1));
            for (a, b) in pairs.flat_map(|(a, b)| a.iter().zip(b)) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "{hidden:?} {loss:?}: {a} vs {b}"
                );
            }
            assert_ne!(
                one.0,
                net.layout.glorot::<f64>(hidden, 3),
                "nothing trained"
            );
        }
    }

    #[test]
    fn loading_and_storing_without_batches_changes_nothing() {
        let net = Net {
            layout: Layout::new(vec![5, 37, 3]).unwrap(),
            hidden: Activation::Relu,
            loss: Loss::LogLoss,
        };
        let solver = Solver::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        };
        let mut params = net.layout.glorot::<f64>(Activation::Relu, 1);
        let mut state: Tensors = params
            .iter()
            .chain(&params)
            .map(|p| p.iter().map(|v| v * 3.0).collect())
            .collect();
        let before = (params.clone(), state.clone());
        let mut p: Vec<&mut [f64]> = params.iter_mut().map(|v| &mut v[..]).collect();
        let mut s: Vec<&mut [f64]> = state.iter_mut().map(|v| &mut v[..]).collect();
        let mut split = SplitRunner::new(&net, 10, &solver).unwrap();
        split.load(&mut p, &mut s);
        for t in p.iter_mut().chain(s.iter_mut()) {
            t.fill(f64::NAN);
        }
        split.store(&mut p, &mut s);
        assert_eq!((params, state), before);
        assert_eq!(
            (split.halves[0].share.hi, split.halves[1].share.lo),
            (16, 16)
        );
    }

    #[test]
    fn only_small_one_hidden_layer_dense_exact_fits_take_halves() {
        let x = Array2::<f64>::zeros((4, 20));
        let dense = Rows::Dense(x.view());
        let exact = (&Dropout::default(), Precision::Exact);
        let layout = |units: Vec<usize>| Layout::new(units).unwrap();
        // 20-100-3 (2,403 parameters) in batches of 200: 480,600 multiply-adds
        assert!(applies(&layout(vec![20, 100, 3]), &dense, exact, 200));
        assert!(
            !applies(&layout(vec![20, 100, 3]), &dense, exact, 20),
            "too small"
        );
        assert!(
            !applies(&layout(vec![20, 100, 3]), &dense, exact, 500),
            "shared by rows"
        );
        assert!(
            !applies(&layout(vec![20, 8, 3]), &dense, exact, 200 * 12),
            "few units"
        );
        assert!(
            !applies(&layout(vec![20, 50, 50, 3]), &dense, exact, 100),
            "two layers"
        );
        let dropout = Dropout {
            rates: vec![0.2],
            seed: 0,
        };
        let dropped = (&dropout, Precision::Exact);
        assert!(!applies(&layout(vec![20, 100, 3]), &dense, dropped, 200));
        let bf16 = (&Dropout::default(), Precision::Bf16);
        assert!(!applies(&layout(vec![20, 100, 3]), &dense, bf16, 200));
    }
}
