//! One mini-batch, computed in parts: a batch of `m` rows is cut into
//! `ceil(m / PART_ROWS)` parts of near-equal size, each part runs its forward and
//! backward pass on its own thread (one fork-join per batch instead of several per
//! matrix product), and the optimizer's update adds the parts' gradients up in part order
//! as it reads them. The cut depends on `m` alone, never on the number of threads, so
//! results are bit-identical whatever `n_jobs` is.

use crate::error::{Error, Result};
use crate::network::Layout;
use crate::optimizer::GradientParts;
use crate::parallel::{Par, SendPtr};
use crate::propagate::Net;
use crate::real::Real;
use crate::trainer::Dataset;
use crate::workspace::Workspace;
use std::sync::Mutex;

/// Largest part of a batch, in rows. Large enough for efficient matrix products, small
/// enough that scikit-learn's default batch of 200 splits in two.
pub const PART_ROWS: usize = 128;

pub struct BatchRunner<T> {
    parts: Vec<Workspace<T>>,
    /// Parts used by the last batch.
    count: usize,
    losses: Vec<f64>,
    weight_sums: Vec<T>,
}

/// What one batch gave: the weighted data-loss sum and the sum of the weights.
pub struct BatchResult<T> {
    pub loss_sum: f64,
    pub weight_sum: T,
}

impl<T: Real> BatchRunner<T> {
    /// Buffers for batches of up to `batch` rows.
    pub fn new(layout: &Layout, batch: usize) -> Self {
        let parts = batch.div_ceil(PART_ROWS).max(1);
        let capacity = batch.min(PART_ROWS);
        Self {
            parts: (0..parts)
                .map(|_| Workspace::new(layout, capacity, true))
                .collect(),
            count: 0,
            losses: vec![0.0; parts],
            weight_sums: vec![T::zero(); parts],
        }
    }

    /// The raw gradients of the last batch, by part (valid after [`BatchRunner::run`]).
    pub fn grads(&self) -> BatchGrads<'_, T> {
        BatchGrads(&self.parts[..self.count.max(1)])
    }

    /// Forward and backward passes of the rows `rows` of `data`; leaves the raw
    /// gradients (see [`Net::backward`]) of each part in [`BatchRunner::grads`].
    pub fn run(
        &mut self,
        net: &Net,
        data: &Dataset<'_, T>,
        rows: &[usize],
        params: &[&mut [T]],
        par: Par,
    ) -> Result<BatchResult<T>> {
        let m = rows.len();
        let count = m.div_ceil(PART_ROWS).max(1);
        if count > self.parts.len() {
            return Err(Error::Shape(format!(
                "batch of {m} rows exceeds the {} parts prepared",
                self.parts.len()
            )));
        }
        // A lone part may still spread its matrix products over the threads.
        let inner = if count == 1 { par } else { Par::Sequential };
        let weighted = data.sample_weight.is_some();
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let parts = SendPtr(self.parts.as_mut_ptr());
        let losses = SendPtr(self.losses.as_mut_ptr());
        let weight_sums = SendPtr(self.weight_sums.as_mut_ptr());
        par.for_each(count, |i| {
            let (lo, hi) = (i * m / count, (i + 1) * m / count);
            // SAFETY: part `i` is touched by this call alone; `i < count <= len`.
            let ws = unsafe { &mut *parts.get().add(i) };
            let weight_sum = data.gather(&rows[lo..hi], ws);
            let outcome = net.forward(params, ws, hi - lo, inner).and_then(|()| {
                let loss = net.loss_sum(ws, hi - lo, weighted);
                net.backward(params, ws, hi - lo, weighted, false, inner)?;
                Ok(loss)
            });
            match outcome {
                // SAFETY: slot `i` belongs to this call.
                Ok(loss) => unsafe {
                    *losses.get().add(i) = loss;
                    *weight_sums.get().add(i) = weight_sum;
                },
                Err(e) => {
                    if let Ok(mut slot) = failure.lock() {
                        slot.get_or_insert(e);
                    }
                }
            }
        });
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        self.count = count;
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

/// The gradients of a batch's parts, for [`crate::optimizer::Solver::step`] to add up.
pub struct BatchGrads<'a, T>(&'a [Workspace<T>]);

impl<T: Real> GradientParts<T> for BatchGrads<'_, T> {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn tensors(&self) -> usize {
        self.0.first().map_or(0, |part| part.grads.len())
    }

    fn tensor(&self, part: usize, tensor: usize) -> &[T] {
        &self.0[part].grads[tensor]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::data::{Rows, Targets};
    use crate::loss::Loss;
    use crate::network::SplitMix64;
    use crate::parallel::with_threads;
    use ndarray::Array2;

    /// The parts' gradients added up in part order, as the optimizer does.
    fn summed(grads: &BatchGrads<'_, f64>) -> Vec<Vec<f64>> {
        (0..grads.0[0].grads.len())
            .map(|t| {
                let mut sum = grads.tensor(0, t).to_vec();
                for part in 1..grads.count() {
                    sum.iter_mut()
                        .zip(grads.tensor(part, t))
                        .for_each(|(s, &g)| *s += g);
                }
                sum
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

        let run = |threads: usize| {
            let mut runner = BatchRunner::new(&layout, n);
            let result = with_threads(threads, |par| runner.run(&net, &data, &rows, &params, par))
                .unwrap()
                .unwrap();
            (result.loss_sum, result.weight_sum, summed(&runner.grads()))
        };
        let reference = run(1);
        for threads in [2, 3] {
            let other = run(threads);
            assert_eq!(other.0.to_bits(), reference.0.to_bits());
            assert_eq!(other.2, reference.2);
        }

        // the same gradient as one pass over the whole batch
        let mut one = Workspace::new(&layout, n, true);
        data.gather(&rows, &mut one);
        net.forward(&params, &mut one, n, Par::Sequential).unwrap();
        net.backward(&params, &mut one, n, false, false, Par::Sequential)
            .unwrap();
        assert_eq!(reference.1, n as f64);
        for (a, b) in reference.2.iter().flatten().zip(one.grads.iter().flatten()) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
    }
}
