//! Stochastic optimizers with scikit-learn's update rules: SGD (classical or Nesterov
//! momentum; constant, invscaling or adaptive learning rate) and Adam. Their tensors
//! (velocities, moments) live in caller-owned buffers in the parameters' `2L` layout.

use crate::error::{Error, Result};
use crate::memory;
use crate::parallel::{Par, SendPtr};
use crate::real::Real;
use crate::reduce::{add_squares, total_of_squares, SQUARE_LANES};
use crate::simd::multiversion;

/// SGD's learning-rate schedule (scikit-learn's `learning_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// `learning_rate_init` throughout.
    Constant,
    /// `learning_rate_init / (t + 1) ** power_t` after each epoch.
    InvScaling,
    /// Divided by 5 each time training stops improving.
    Adaptive,
}

impl std::str::FromStr for Schedule {
    type Err = Error;

    /// By scikit-learn's name.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "constant" => Ok(Self::Constant),
            "invscaling" => Ok(Self::InvScaling),
            "adaptive" => Ok(Self::Adaptive),
            _ => Err(Error::Value(format!("unknown learning_rate {name:?}"))),
        }
    }
}

/// A stochastic solver with its hyperparameters (scikit-learn's names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solver {
    /// Mini-batch SGD with momentum.
    Sgd {
        /// The momentum `mu`.
        momentum: f64,
        /// Nesterov's momentum rather than the classical one.
        nesterov: bool,
        /// The learning-rate schedule.
        schedule: Schedule,
        /// The exponent of `invscaling`.
        power_t: f64,
    },
    /// Adam.
    Adam {
        /// Decay of the first moment.
        beta_1: f64,
        /// Decay of the second moment.
        beta_2: f64,
        /// Added to the root of the second moment.
        epsilon: f64,
    },
}

/// The optimizer's scalar state; tensors are passed separately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scalars {
    /// The initial rate.
    pub learning_rate_init: f64,
    /// The current rate (scikit-learn's `_optimizer.learning_rate`).
    pub learning_rate: f64,
    /// Adam's step count.
    pub step: u64,
}

/// How raw gradients `G` become the loss gradient inside the update:
/// `(G + alpha W) / weight_sum` for the first `n_coefs` tensors (the coefficient
/// matrices), `G / weight_sum` for the rest (the intercepts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradScale {
    pub alpha: f64,
    pub weight_sum: f64,
    pub n_coefs: usize,
}

#[cfg(test)]
impl GradScale {
    /// Gradients used as they are.
    pub const NONE: GradScale = GradScale {
        alpha: 0.0,
        weight_sum: 1.0,
        n_coefs: 0,
    };
}

/// Updates of less work than this (gradient elements times the multiply-adds behind
/// each) run on one thread: below it, moving the parameters and the batch's error
/// signals between the cores' caches costs more than a second core saves (measured on
/// the digits benchmark, 4,810 parameters x 32 rows, in `bench/profile.md`).
const MIN_PARALLEL_UPDATE: usize = 1 << 20;

/// Where an update finds the raw gradient of a batch. Tensors are in the parameters'
/// `2L` layout and are updated in chunks of whole rows (`row_len` elements each), so a
/// source can compute the gradient of a chunk just before it is applied, while the
/// chunk's parameters and state are in cache.
pub trait GradientSource<T>: Sync {
    /// Number of tensors.
    fn tensors(&self) -> usize;
    /// Elements in tensor `tensor`.
    fn tensor_len(&self, tensor: usize) -> usize;
    /// Elements per row of tensor `tensor`.
    fn row_len(&self, tensor: usize) -> usize;
    /// Rows per chunk of tensor `tensor` (from shapes and data alone: results must not
    /// depend on the number of threads).
    fn chunk_rows(&self, tensor: usize) -> usize;
    /// Rows of tensor `tensor`'s first chunk, the rest in chunks of
    /// [`GradientSource::chunk_rows`] (from the data at most, never the number of
    /// threads): a first layer whose inputs differ in work is cut where it halves.
    fn first_chunk_rows(&self, tensor: usize) -> usize {
        self.chunk_rows(tensor)
    }
    /// Multiply-adds behind each gradient element (1 when it is stored).
    fn work_per_element(&self) -> usize;
    /// The raw gradient of elements `start..start + scratch.len()` of tensor `tensor`:
    /// stored, or computed into `scratch`.
    fn chunk<'s>(&'s self, tensor: usize, start: usize, scratch: &'s mut [T]) -> Result<&'s [T]>;
    /// Told the new values of elements `start..start + values.len()` of tensor
    /// `tensor` right after their update, while they are in cache (e.g. to repack them
    /// for the next batch's products).
    fn updated(&self, tensor: usize, start: usize, values: &[T]) -> Result<()> {
        let _ = (tensor, start, values);
        Ok(())
    }
}

/// Reused between steps so that an update allocates nothing: the chunks, their sums of
/// squares, the tensors' addresses and room for computed gradients.
pub struct StepScratch<T> {
    chunks: Vec<Chunk>,
    partials: Vec<f64>,
    tensors: Vec<TensorPtrs<T>>,
    grads: Vec<T>,
}

impl<T> Default for StepScratch<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            partials: Vec::new(),
            tensors: Vec::new(),
            grads: Vec::new(),
        }
    }
}

impl<T: Real> StepScratch<T> {
    /// Records where each tensor's parameters, state and gradient room live (the room
    /// grows to the parameters' total size the first time).
    fn point_at(
        &mut self,
        params: &mut [&mut [T]],
        state: &mut [&mut [T]],
        per_tensor: usize,
    ) -> Result<()> {
        let n = params.len();
        let total: usize = params.iter().map(|p| p.len()).sum();
        memory::grow(&mut self.grads, total, T::zero(), || {
            format!("the gradient of {total} parameters")
        })?;
        // One raw pointer for the whole buffer: re-borrowing it per tensor would
        // invalidate the pointers taken for the earlier ones.
        let room = self.grads.as_mut_ptr();
        self.tensors.clear();
        let mut offset = 0;
        for i in 0..n {
            self.tensors.push(TensorPtrs {
                params: SendPtr(params[i].as_mut_ptr()),
                s1: SendPtr(state[i].as_mut_ptr()),
                s2: SendPtr(if per_tensor == 2 {
                    state[n + i].as_mut_ptr()
                } else {
                    std::ptr::null_mut()
                }),
                // SAFETY: `offset` stays within the `total` elements of the buffer.
                grads: SendPtr(unsafe { room.add(offset) }),
            });
            offset += params[i].len();
        }
        Ok(())
    }

    /// Cuts the tensors into the chunks `grads` asks for (`parallel`) or whole tensors.
    /// Chunk j of every tensor comes before chunk j + 1 of any: the expensive chunks of
    /// the weight matrices spread evenly over the halves a parallel pass splits into.
    fn plan_chunks<G: GradientSource<T>>(
        &mut self,
        params: &[&mut [T]],
        grads: &G,
        parallel: bool,
    ) {
        let chunks = &mut self.chunks;
        chunks.clear();
        for j in 0.. {
            let before = chunks.len();
            for (i, p) in params.iter().enumerate() {
                let (first, size) = if parallel {
                    let row = grads.row_len(i);
                    (grads.first_chunk_rows(i) * row, grads.chunk_rows(i) * row)
                } else {
                    (p.len(), p.len())
                };
                let (start, len) = match j {
                    0 => (0, first),
                    _ => (first + (j - 1) * size, size),
                };
                if start < p.len() {
                    chunks.push(Chunk {
                        tensor: i,
                        start,
                        len: len.min(p.len() - start),
                    });
                }
            }
            if chunks.len() == before {
                break;
            }
        }
    }

    /// Updates every planned chunk right after its gradient is ready, in one pass over
    /// `par`'s threads; returns the sum of squares of the new coefficients, added in
    /// chunk order (so that it does not depend on the number of threads).
    fn update_chunks<G: GradientSource<T>>(
        &mut self,
        rule: Rule<T>,
        grads: &G,
        scale: GradScale,
        par: Par,
    ) -> Result<f64> {
        self.partials.clear();
        self.partials.resize(self.chunks.len(), 0.0);
        let alpha = T::from_f64(scale.alpha);
        let weight_sum = T::from_f64(scale.weight_sum);
        let out = SendPtr(self.partials.as_mut_ptr());
        let (tensors, chunks) = (&self.tensors[..], &self.chunks[..]);
        par.try_for_each(chunks.len(), |c| {
            let Chunk { tensor, start, len } = chunks[c];
            let t = &tensors[tensor];
            // SAFETY: chunk `c` covers `start..start + len` of tensor `tensor`, inside its
            // parameter, state and scratch tensors (same lengths, checked by `check_step`);
            // no two chunks overlap and nothing else touches these tensors during the pass.
            unsafe {
                let p = std::slice::from_raw_parts_mut(t.params.get().add(start), len);
                let s1 = std::slice::from_raw_parts_mut(t.s1.get().add(start), len);
                let s2 = if t.s2.get().is_null() {
                    &mut [][..]
                } else {
                    std::slice::from_raw_parts_mut(t.s2.get().add(start), len)
                };
                let room = std::slice::from_raw_parts_mut(t.grads.get().add(start), len);
                let g = grads.chunk(tensor, start, room)?;
                let coef = tensor < scale.n_coefs;
                *out.get().add(c) = update_chunk(rule, coef, alpha, weight_sum, p, g, s1, s2);
                grads.updated(tensor, start, p)?;
            }
            Ok(())
        })?;
        Ok(self.partials.iter().sum())
    }
}

/// Elements `start..start + len` of tensor `tensor`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    tensor: usize,
    start: usize,
    len: usize,
}

/// Where one parameter tensor, its optimizer state and its gradient scratch live.
struct TensorPtrs<T> {
    params: SendPtr<T>,
    s1: SendPtr<T>,
    s2: SendPtr<T>,
    grads: SendPtr<T>,
}

/// The per-element rule of one step, with its scalars converted to `T` once.
#[derive(Clone, Copy)]
pub(crate) enum Rule<T> {
    Sgd {
        mu: T,
        lr: T,
        nesterov: bool,
    },
    Adam {
        b1: T,
        b2: T,
        c1: T,
        c2: T,
        lr: T,
        eps: T,
    },
}

impl<T: Real> Rule<T> {
    fn new(solver: &Solver, scalars: &Scalars) -> Self {
        let lr = T::from_f64(scalars.learning_rate);
        match *solver {
            Solver::Sgd {
                momentum, nesterov, ..
            } => Rule::Sgd {
                mu: T::from_f64(momentum),
                lr,
                nesterov,
            },
            Solver::Adam {
                beta_1,
                beta_2,
                epsilon,
            } => Rule::Adam {
                b1: T::from_f64(beta_1),
                b2: T::from_f64(beta_2),
                c1: T::from_f64(1.0 - beta_1),
                c2: T::from_f64(1.0 - beta_2),
                lr,
                eps: T::from_f64(epsilon),
            },
        }
    }

    /// Updates the tensor `p` (a coefficient matrix with `coef`) from its raw gradient
    /// `g` as [`Solver::step`] does; returns the sum of squares of a coefficient
    /// tensor's new values (0 for intercepts).
    pub(crate) fn update(
        self,
        coef: bool,
        scale: GradScale,
        p: &mut [T],
        g: &[T],
        s1: &mut [T],
        s2: &mut [T],
    ) -> f64 {
        let (alpha, weight_sum) = (T::from_f64(scale.alpha), T::from_f64(scale.weight_sum));
        update_chunk(self, coef, alpha, weight_sum, p, g, s1, s2)
    }

    /// scikit-learn's update, element by element, in its operation order.
    #[inline(always)]
    fn apply(self, p: &mut [T], g: &[T], s1: &mut [T], s2: &mut [T], grad: impl Fn(T, T) -> T) {
        match self {
            Rule::Sgd { mu, lr, nesterov } => {
                for ((p, &g), v) in p.iter_mut().zip(g).zip(s1.iter_mut()) {
                    let g = grad(g, *p);
                    *v = mu * *v - lr * g;
                    *p += if nesterov { mu * *v - lr * g } else { *v };
                }
            }
            Rule::Adam {
                b1,
                b2,
                c1,
                c2,
                lr,
                eps,
            } => {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(s1.iter_mut()).zip(s2.iter_mut()) {
                    let g = grad(g, *p);
                    *m = b1 * *m + c1 * g;
                    *v = b2 * *v + c2 * (g * g);
                    *p += -lr * *m / (v.sqrt() + eps);
                }
            }
        }
    }
}

multiversion! {
    /// Updates one chunk from its raw gradient `g`; returns the sum of squares of the new
    /// values of a coefficient chunk (0 for intercepts).
    #[allow(clippy::too_many_arguments)]
    fn update_chunk<T: Real>(
        rule: Rule<T>,
        coef: bool,
        alpha: T,
        weight_sum: T,
        p: &mut [T],
        g: &[T],
        s1: &mut [T],
        s2: &mut [T],
    ) -> f64 {
        // A multiplication by the reciprocal: a vector division costs several times
        // more, for a difference in the last bit from scikit-learn's `/ n`.
        let scale = T::one() / weight_sum;
        if coef {
            update_and_square(rule, p, g, s1, s2, |g, w| (g + alpha * w) * scale)
        } else {
            rule.apply(p, g, s1, s2, |g, _| g * scale);
            0.0
        }
    }
}

/// `s[r]`, or `s` itself when empty (the second state of rules that have one state).
#[inline(always)]
fn part<T>(s: &mut [T], r: std::ops::Range<usize>) -> &mut [T] {
    if s.is_empty() {
        s
    } else {
        &mut s[r]
    }
}

/// The update of a coefficient chunk fused with [`sum_of_squares`] of its new values,
/// block by block while each is in registers, which spares a second pass over the chunk
/// (same lanes and order, so the same sum).
#[inline(always)]
fn update_and_square<T: Real>(
    rule: Rule<T>,
    p: &mut [T],
    g: &[T],
    s1: &mut [T],
    s2: &mut [T],
    grad: impl Fn(T, T) -> T + Copy,
) -> f64 {
    let mut acc = [T::zero(); SQUARE_LANES];
    let whole = p.len() / SQUARE_LANES * SQUARE_LANES;
    for start in (0..whole).step_by(SQUARE_LANES) {
        let r = start..start + SQUARE_LANES;
        // updated in a local copy, which stays in registers: read back from memory, the
        // new values stalled on store forwarding
        let mut block = [T::zero(); SQUARE_LANES];
        block.copy_from_slice(&p[r.clone()]);
        rule.apply(
            &mut block,
            &g[r.clone()],
            &mut s1[r.clone()],
            part(s2, r.clone()),
            grad,
        );
        add_squares(&mut acc, &block);
        p[r].copy_from_slice(&block);
    }
    let r = whole..p.len();
    let tail = &mut p[r.clone()];
    rule.apply(tail, &g[r.clone()], &mut s1[r.clone()], part(s2, r), grad);
    total_of_squares(&acc, tail)
}

/// What an optimizer decides when training stops improving.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plateau {
    /// Training stops.
    Stop,
    /// Training stops: the adaptive rate cannot shrink further.
    StopRateTooSmall,
    /// Training goes on with this smaller rate.
    RateReduced(f64),
}

impl Solver {
    /// Number of state tensors per parameter tensor (velocity; or first and second moment).
    pub fn state_per_tensor(&self) -> usize {
        match self {
            Solver::Sgd { .. } => 1,
            Solver::Adam { .. } => 2,
        }
    }

    /// Applies one update and returns the sum of squares of the updated coefficient
    /// tensors (the next batch's L2 penalty, computed while the values are in cache).
    ///
    /// `grads` gives raw gradients, turned into the loss gradient on the fly by `scale`.
    /// `state` holds `state_per_tensor() * params.len()` tensors: the velocities, or all
    /// first moments followed by all second moments. A large update cuts the tensors into
    /// the chunks `grads` asks for and runs them in one parallel pass, a small one takes
    /// whole tensors on the calling thread (by size alone); each chunk is updated right
    /// after its gradient is ready. The returned sum adds the chunks' sums in a fixed
    /// order, so it does not depend on the number of threads.
    #[allow(clippy::too_many_arguments)] // one hot call site; a bundle struct adds nothing
    pub fn step<T: Real, G: GradientSource<T>>(
        &self,
        params: &mut [&mut [T]],
        grads: &G,
        state: &mut [&mut [T]],
        scalars: &mut Scalars,
        scale: GradScale,
        scratch: &mut StepScratch<T>,
        par: Par,
    ) -> Result<f64> {
        self.check_step(params, grads, state)?;
        self.advance(scalars);
        let rule = Rule::new(self, scalars);
        scratch.point_at(params, state, self.state_per_tensor())?;
        // A small update runs on one thread and in whole tensors (fewer, larger
        // products); the choice depends on the shapes alone.
        let total: usize = params.iter().map(|p| p.len()).sum();
        let parallel = total.saturating_mul(grads.work_per_element()) >= MIN_PARALLEL_UPDATE;
        scratch.plan_chunks(params, grads, parallel);
        let par = if parallel { par } else { Par::Sequential };
        scratch.update_chunks(rule, grads, scale, par)
    }

    /// Advances the scalars for the next update and returns its rule, for callers that
    /// apply it tensor by tensor themselves (`split.rs`).
    pub(crate) fn next_rule<T: Real>(&self, scalars: &mut Scalars) -> Rule<T> {
        self.advance(scalars);
        Rule::new(self, scalars)
    }

    /// Whether parameters, gradients and state fit together (an error otherwise, before
    /// anything is updated).
    fn check_step<T, G: GradientSource<T>>(
        &self,
        params: &[&mut [T]],
        grads: &G,
        state: &[&mut [T]],
    ) -> Result<()> {
        let n = params.len();
        let per_tensor = self.state_per_tensor();
        let fits = grads.tensors() == n
            && state.len() == per_tensor * n
            && params.iter().enumerate().all(|(i, p)| {
                let row = grads.row_len(i);
                (0..per_tensor).all(|s| state[s * n + i].len() == p.len())
                    && grads.tensor_len(i) == p.len()
                    && row > 0
                    && p.len() % row == 0
                    && grads.chunk_rows(i) > 0
                    && grads.first_chunk_rows(i) > 0
            });
        if fits {
            Ok(())
        } else {
            Err(Error::Shape(
                "optimizer step: parameters, gradients and state differ in shape".into(),
            ))
        }
    }

    /// The step's scalars: Adam counts the step and sets the bias-corrected rate of
    /// scikit-learn's `AdamOptimizer._get_updates`.
    fn advance(&self, scalars: &mut Scalars) {
        if let Solver::Adam { beta_1, beta_2, .. } = *self {
            scalars.step += 1;
            let t = scalars.step as f64;
            scalars.learning_rate =
                scalars.learning_rate_init * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
        }
    }

    /// scikit-learn's `iteration_ends`, after each epoch: `invscaling` recomputes the rate
    /// from the samples seen so far.
    pub fn iteration_ends(&self, samples_seen: u64, scalars: &mut Scalars) {
        if let Solver::Sgd {
            schedule: Schedule::InvScaling,
            power_t,
            ..
        } = *self
        {
            scalars.learning_rate =
                scalars.learning_rate_init / ((samples_seen + 1) as f64).powf(power_t);
        }
    }

    /// scikit-learn's `trigger_stopping`, when the loss (or validation score) has stopped
    /// improving: `adaptive` divides the rate by 5 until it is below 1e-6, the rest stop.
    pub fn trigger_stopping(&self, scalars: &mut Scalars) -> Plateau {
        match *self {
            Solver::Sgd {
                schedule: Schedule::Adaptive,
                ..
            } => {
                if scalars.learning_rate <= 1e-6 {
                    Plateau::StopRateTooSmall
                } else {
                    scalars.learning_rate /= 5.0;
                    Plateau::RateReduced(scalars.learning_rate)
                }
            }
            _ => Plateau::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunk size of the stored gradients below.
    const UPDATE_CHUNK: usize = 1 << 12;

    /// Gradients already computed, one vector per tensor: the update rule's tests feed
    /// them directly.
    impl<T: Sync> GradientSource<T> for Vec<Vec<T>> {
        fn tensors(&self) -> usize {
            self.len()
        }

        fn tensor_len(&self, tensor: usize) -> usize {
            self[tensor].len()
        }

        fn row_len(&self, _tensor: usize) -> usize {
            1
        }

        fn chunk_rows(&self, _tensor: usize) -> usize {
            UPDATE_CHUNK
        }

        fn work_per_element(&self) -> usize {
            1
        }

        fn chunk<'s>(
            &'s self,
            tensor: usize,
            start: usize,
            scratch: &'s mut [T],
        ) -> Result<&'s [T]> {
            self.get(tensor)
                .and_then(|t| t.get(start..start + scratch.len()))
                .ok_or_else(|| Error::Shape("no such gradient chunk".into()))
        }
    }

    fn scalars(lr: f64) -> Scalars {
        Scalars {
            learning_rate_init: lr,
            learning_rate: lr,
            step: 0,
        }
    }

    fn sgd(momentum: f64, nesterov: bool) -> Solver {
        Solver::Sgd {
            momentum,
            nesterov,
            schedule: Schedule::Constant,
            power_t: 0.5,
        }
    }

    /// One SGD step (lr 0.1, momentum 0.9, gradients used as they are).
    fn sgd_step(
        nesterov: bool,
        params: &mut [&mut [f64]],
        grads: &Vec<Vec<f64>>,
        velocities: &mut [&mut [f64]],
    ) -> Result<f64> {
        sgd(0.9, nesterov).step(
            params,
            grads,
            velocities,
            &mut scalars(0.1),
            GradScale::NONE,
            &mut StepScratch::default(),
            Par::Sequential,
        )
    }

    /// One SGD step from p = 1, v = 0.5 with gradient 2.
    fn sgd_step_by_hand(nesterov: bool) -> (f64, f64) {
        let (mut p, mut v) = (vec![1.0_f64], vec![0.5_f64]);
        sgd_step(
            nesterov,
            &mut [&mut p[..]],
            &vec![vec![2.0]],
            &mut [&mut v[..]],
        )
        .unwrap();
        (p[0], v[0])
    }

    #[test]
    fn classical_momentum_by_hand() {
        let (p, v) = sgd_step_by_hand(false);
        // v = 0.9 * 0.5 - 0.1 * 2 = 0.25; p = 1 + 0.25
        assert!((v - 0.25).abs() < 1e-15 && (p - 1.25).abs() < 1e-15);
    }

    #[test]
    fn nesterov_by_hand() {
        let (p, v) = sgd_step_by_hand(true);
        // v = 0.25; update = 0.9 * 0.25 - 0.2 = 0.025
        assert!((v - 0.25).abs() < 1e-15 && (p - 1.025).abs() < 1e-15);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let mut p = [1.0_f64, 1.0];
        let (mut m, mut v) = ([0.0_f64; 2], [0.0_f64; 2]);
        let grads = vec![vec![3.0, -0.5]];
        let mut s = scalars(0.01);
        let adam = Solver::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        };
        adam.step(
            &mut [&mut p[..]],
            &grads,
            &mut [&mut m[..], &mut v[..]],
            &mut s,
            GradScale::NONE,
            &mut StepScratch::default(),
            Par::Sequential,
        )
        .unwrap();
        // m = 0.1 g, v = 0.001 g^2, lr_t = 0.01 sqrt(0.001) / 0.1: update = -0.01 sign(g)
        assert_eq!(s.step, 1);
        assert!((m[0] - 0.3).abs() < 1e-15 && (v[1] - 0.00025).abs() < 1e-15);
        assert!((p[0] - 0.99).abs() < 1e-8 && (p[1] - 1.01).abs() < 1e-8);
    }

    /// A gradient computed chunk by chunk (each element from its index), as the batch
    /// runner's is, with enough work per element for a parallel update.
    struct Computed {
        lens: Vec<usize>,
        row_len: usize,
        /// Rows of the first tensor's first chunk, if not `chunk_rows`.
        first_rows: Option<usize>,
    }

    impl Computed {
        fn value(tensor: usize, index: usize) -> f64 {
            ((tensor * 7919 + index) as f64 * 0.37).sin()
        }

        fn stored(&self) -> Vec<Vec<f64>> {
            Self::stored_of(&self.lens)
        }

        fn stored_of(lens: &[usize]) -> Vec<Vec<f64>> {
            let tensor = |t: usize| (0..lens[t]).map(|i| Self::value(t, i)).collect();
            (0..lens.len()).map(tensor).collect()
        }
    }

    impl GradientSource<f64> for Computed {
        fn tensors(&self) -> usize {
            self.lens.len()
        }
        fn tensor_len(&self, tensor: usize) -> usize {
            self.lens[tensor]
        }
        fn row_len(&self, _tensor: usize) -> usize {
            self.row_len
        }
        fn chunk_rows(&self, _tensor: usize) -> usize {
            100
        }
        fn first_chunk_rows(&self, tensor: usize) -> usize {
            match (tensor, self.first_rows) {
                (0, Some(rows)) => rows,
                _ => self.chunk_rows(tensor),
            }
        }
        fn work_per_element(&self) -> usize {
            64
        }
        fn chunk<'s>(
            &'s self,
            tensor: usize,
            start: usize,
            scratch: &'s mut [f64],
        ) -> Result<&'s [f64]> {
            for (i, g) in scratch.iter_mut().enumerate() {
                *g = Self::value(tensor, start + i);
            }
            Ok(scratch)
        }
    }

    /// One Nesterov step from `params` (velocities 0.1) with `threads` threads.
    fn run_step<G: GradientSource<f64>>(
        grads: &G,
        params: &[Vec<f64>],
        threads: usize,
    ) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, f64) {
        let scale = GradScale {
            alpha: 1e-3,
            weight_sum: 96.0,
            n_coefs: 2,
        };
        let mut p = params.to_vec();
        let mut v: Vec<Vec<f64>> = params.iter().map(|t| vec![0.1; t.len()]).collect();
        let norm = crate::parallel::with_threads(threads, |par| {
            let mut pr: Vec<&mut [f64]> = p.iter_mut().map(|x| &mut x[..]).collect();
            let mut vr: Vec<&mut [f64]> = v.iter_mut().map(|x| &mut x[..]).collect();
            let mut s = scalars(0.1);
            let mut scratch = StepScratch::default();
            sgd(0.9, true).step(&mut pr, grads, &mut vr, &mut s, scale, &mut scratch, par)
        })
        .unwrap()
        .unwrap();
        (p, v, norm)
    }

    /// A gradient computed in chunks updates every element exactly as the same gradient
    /// stored whole does, and the result has the same bits whatever the number of
    /// threads (the chunks' sums of squares add up in a fixed order).
    #[test]
    fn chunked_updates_ignore_thread_count() {
        let computed = Computed {
            lens: vec![40_000, 300, 50, 50],
            row_len: 50,
            first_rows: None,
        };
        let mut rng = crate::network::SplitMix64(11);
        let params: Vec<Vec<f64>> = computed
            .lens
            .iter()
            .map(|&n| (0..n).map(|_| rng.next_f64() - 0.5).collect())
            .collect();
        let reference = run_step(&computed, &params, 1);
        assert_ne!(reference.0, params);
        for threads in [2, 3] {
            let other = run_step(&computed, &params, threads);
            assert_eq!(other.0, reference.0, "{threads} threads");
            assert_eq!(other.1, reference.1, "{threads} threads");
            assert_eq!(
                other.2.to_bits(),
                reference.2.to_bits(),
                "{threads} threads"
            );
        }
        let whole = run_step(&computed.stored(), &params, 2);
        assert_eq!((&whole.0, &whole.1), (&reference.0, &reference.1));
        let norm: f64 = whole.0[..2].iter().flatten().map(|w| w * w).sum();
        assert!((reference.2 - norm).abs() <= 1e-12 * norm);
    }

    /// A first chunk of its own size (the batch runner's cut of a first layer) updates
    /// every element once, as the whole stored gradient does, whatever the threads.
    #[test]
    fn a_first_chunk_of_its_own_size_updates_every_element_once() {
        let params: Vec<Vec<f64>> = [40_000, 300]
            .iter()
            .map(|&n| (0..n).map(|i| (i as f64 * 0.11).cos()).collect())
            .collect();
        let whole = run_step(&Computed::stored_of(&[40_000, 300]), &params, 1);
        for first_rows in [1, 37, 100, 433, 799, 800] {
            let computed = Computed {
                lens: vec![40_000, 300],
                row_len: 50,
                first_rows: Some(first_rows),
            };
            let one = run_step(&computed, &params, 1);
            assert_eq!(
                (&one.0, &one.1),
                (&whole.0, &whole.1),
                "first chunk {first_rows}"
            );
            let two = run_step(&computed, &params, 2);
            assert_eq!(
                (&two.0, &two.1),
                (&one.0, &one.1),
                "first chunk {first_rows}"
            );
            assert_eq!(two.2.to_bits(), one.2.to_bits(), "first chunk {first_rows}");
            assert!((one.2 - whole.2).abs() <= 1e-12 * whole.2);
        }
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let (mut p, mut v) = (vec![1.0_f64; 3], vec![0.0_f64; 2]);
        let grads = vec![vec![2.0; 3]];
        let outcome = sgd_step(false, &mut [&mut p[..]], &grads, &mut [&mut v[..]]);
        assert!(outcome.is_err());
        assert_eq!(p, [1.0; 3]);

        // fewer gradient tensors than parameter tensors
        let mut v = [0.0_f64; 3];
        let outcome = sgd_step(
            false,
            &mut [&mut p[..], &mut [1.0][..]],
            &grads,
            &mut [&mut v[..], &mut [0.0][..]],
        );
        assert!(outcome.is_err());
    }

    #[test]
    fn schedules() {
        let inv = Solver::Sgd {
            momentum: 0.0,
            nesterov: false,
            schedule: Schedule::InvScaling,
            power_t: 0.5,
        };
        let mut s = scalars(0.1);
        inv.iteration_ends(99, &mut s);
        assert!((s.learning_rate - 0.01).abs() < 1e-15);
        assert_eq!(inv.trigger_stopping(&mut s), Plateau::Stop);

        let adaptive = Solver::Sgd {
            momentum: 0.0,
            nesterov: false,
            schedule: Schedule::Adaptive,
            power_t: 0.5,
        };
        let mut s = scalars(1e-5);
        assert_eq!(
            adaptive.trigger_stopping(&mut s),
            Plateau::RateReduced(1e-5 / 5.0)
        );
        assert_eq!(
            adaptive.trigger_stopping(&mut s),
            Plateau::RateReduced(1e-5 / 5.0 / 5.0)
        );
        assert_eq!(adaptive.trigger_stopping(&mut s), Plateau::StopRateTooSmall);
    }
}
