//! Full-batch loss and gradient over the packed parameter vector, for scipy's L-BFGS-B
//! (driven from Python, as scikit-learn does). Rows are processed in fixed-size blocks
//! so memory stays bounded and the sum order never depends on the thread count.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::parallel::{threads_for, Par};
use crate::propagate::Net;
use crate::real::Real;
use crate::workspace::{Passes, Workspace};

/// Rows per block: large enough for efficient GEMMs, small enough to bound memory.
const BLOCK_ROWS: usize = 4096;

/// A block of fewer multiply-adds than this runs on one thread: its products'
/// fork-joins cost more than they save (Intel host, L-BFGS fits beside scipy's BLAS on
/// one thread: digits, 2^23 a block, 1.26x one thread's time; 20,000 x 100 to 64
/// units, 2^24.7, 1.17x; to 128 units, 2^25.6, 0.92x; Fashion-MNIST's 10,000 x 784 to
/// 100 units, 2^28.3, 0.75x).
const MIN_THREADED_BLOCK: usize = 1 << 25;

/// The threads an evaluation over `n_samples` rows runs on (see [`threads_for`]): one
/// block of rows is a step, threaded from [`MIN_THREADED_BLOCK`] multiply-adds.
pub fn loss_threads(n_jobs: Option<i64>, net: &Net, n_samples: usize) -> Result<usize> {
    let step = n_samples.min(BLOCK_ROWS) * net.layout.n_params();
    if step < MIN_THREADED_BLOCK {
        // (n_jobs still checked)
        return threads_for(n_jobs, 0, 1);
    }
    threads_for(n_jobs, step, usize::MAX)
}

/// Returns the loss (data loss + L2 term, over all rows) and writes its gradient with
/// respect to `packed` into `grad` (same length and layout).
pub fn loss_and_gradient<T: Real>(
    net: &Net,
    alpha: f64,
    data: &Dataset<'_, T>,
    packed: &[T],
    grad: &mut [T],
    par: Par,
) -> Result<f64> {
    data.check(
        "training data",
        net.layout.n_inputs(),
        net.layout.n_outputs(),
    )?;
    let params = net.layout.split(packed)?;
    if grad.len() != packed.len() {
        return Err(Error::Shape(
            "gradient buffer does not match the parameters".into(),
        ));
    }
    let n = data.n_samples();
    if n == 0 {
        return Err(Error::Value("no samples to compute a loss on".into()));
    }
    let weighted = data.sample_weight.is_some();
    let capacity = n.min(BLOCK_ROWS);
    let mut ws = Workspace::for_rows(&net.layout, capacity, Passes::Gradients, &data.x, false)?;
    let mut loss_sum = 0.0;
    let mut weight_sum = T::zero();
    for (b, start) in (0..n).step_by(ws.capacity).enumerate() {
        let m = ws.capacity.min(n - start);
        weight_sum += ws.gather_range(data, start, m, true)?;
        net.forward(&params, &mut ws, m, par)?;
        loss_sum += net.loss_sum(&ws, m, weighted);
        net.backward(&params, &mut ws, m, weighted, b > 0, par)?;
    }
    net.finish_gradients(&params, &mut ws.grads, alpha, weight_sum);
    let mut out = grad;
    for g in &ws.grads {
        let (head, tail) = out.split_at_mut(g.len());
        head.copy_from_slice(g);
        out = tail;
    }
    Ok((loss_sum + net.penalty(&params, alpha)) / weight_sum.to_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::data::{Rows, Targets};
    use crate::loss::Loss;
    use crate::network::{Layout, SplitMix64};
    use ndarray::Array2;

    fn problem(
        loss: Loss,
        n: usize,
        n_in: usize,
        n_out: usize,
    ) -> (Array2<f64>, Array2<f64>, Vec<f64>) {
        let mut rng = SplitMix64(7);
        let x = Array2::from_shape_fn((n, n_in), |_| 2.0 * rng.next_f64() - 1.0);
        let y = Array2::from_shape_fn((n, n_out), |(i, j)| match loss {
            Loss::SquaredError | Loss::AbsoluteError | Loss::Huber { .. } => {
                rng.next_f64() * 3.0 - 1.5
            }
            Loss::Poisson => (rng.next_f64() * 4.0).floor(),
            Loss::LogLoss => f64::from(u8::from(i % n_out == j)),
            Loss::BinaryLogLoss => f64::from(u8::from(rng.next_f64() < 0.5)),
        });
        let w = (0..n).map(|_| 0.5 + rng.next_f64()).collect();
        (x, y, w)
    }

    /// Every hidden activation with every output/loss pair, with L2 and sample weights:
    /// the analytic gradient against central finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        let losses = [
            (Loss::SquaredError, 2),
            (Loss::AbsoluteError, 2),
            (Loss::Huber { delta: 0.7 }, 2),
            (Loss::Poisson, 2),
            (Loss::LogLoss, 3),
            (Loss::BinaryLogLoss, 1),
            (Loss::BinaryLogLoss, 3),
        ];
        let hidden = [
            Activation::Identity,
            Activation::Logistic,
            Activation::Tanh,
            Activation::Relu,
        ];
        for &(loss, n_out) in &losses {
            for &act in &hidden {
                for weighted in [false, true] {
                    let layout = Layout::new(vec![4, 5, 3, n_out]).unwrap();
                    let net = Net {
                        layout: layout.clone(),
                        hidden: act,
                        loss,
                    };
                    let (x, y, w) = problem(loss, 9, 4, n_out);
                    let data = Dataset {
                        x: Rows::Dense(x.view()),
                        y: Targets::Dense(y.view()),
                        sample_weight: weighted.then_some(&w[..]),
                    };
                    let mut packed: Vec<f64> = layout.glorot::<f64>(act, 3).concat();
                    // keep Poisson's exp output in a tame range
                    if loss == Loss::Poisson {
                        packed.iter_mut().for_each(|p| *p *= 0.5);
                    }
                    let mut grad = vec![0.0; packed.len()];
                    let alpha = 0.3;
                    loss_and_gradient(&net, alpha, &data, &packed, &mut grad, Par::Sequential)
                        .unwrap();
                    // scikit-learn reports the squared error averaged over outputs but
                    // back-propagates Y - T: the gradient is that of the sum over outputs
                    // (the absolute and Huber losses follow it).
                    let weight_sum = if weighted { w.iter().sum() } else { 9.0 };
                    let objective = |p: &[f64]| {
                        let mut scratch = vec![0.0; p.len()];
                        let l =
                            loss_and_gradient(&net, alpha, &data, p, &mut scratch, Par::Sequential)
                                .unwrap();
                        let averaged = matches!(
                            loss,
                            Loss::SquaredError | Loss::AbsoluteError | Loss::Huber { .. }
                        );
                        if averaged {
                            let pen = net.penalty(&layout.split(p).unwrap(), alpha) / weight_sum;
                            (l - pen) * n_out as f64 + pen
                        } else {
                            l
                        }
                    };
                    let h = 1e-6;
                    for i in 0..packed.len() {
                        let orig = packed[i];
                        packed[i] = orig + h;
                        let up = objective(&packed);
                        packed[i] = orig - h;
                        let down = objective(&packed);
                        packed[i] = orig;
                        let numeric = (up - down) / (2.0 * h);
                        let err = (numeric - grad[i]).abs();
                        assert!(
                            err <= 1e-6 * (1.0 + numeric.abs()),
                            "{loss:?}/{act:?}/weighted={weighted} param {i}: analytic {} numeric {numeric}",
                            grad[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_and_threads_do_not_change_the_result() {
        let layout = Layout::new(vec![6, 40, 3]).unwrap();
        let net = Net {
            layout: layout.clone(),
            hidden: Activation::Tanh,
            loss: Loss::LogLoss,
        };
        let (x, y, _) = problem(Loss::LogLoss, BLOCK_ROWS + 123, 6, 3);
        let data = Dataset {
            x: Rows::Dense(x.view()),
            y: Targets::Dense(y.view()),
            sample_weight: None,
        };
        let packed: Vec<f64> = layout.glorot::<f64>(Activation::Tanh, 1).concat();
        let mut g1 = vec![0.0; packed.len()];
        let mut g2 = vec![0.0; packed.len()];
        let l1 = loss_and_gradient(&net, 0.0, &data, &packed, &mut g1, Par::Sequential).unwrap();
        let l2 = crate::parallel::with_threads(2, |par| {
            loss_and_gradient(&net, 0.0, &data, &packed, &mut g2, par)
        })
        .unwrap()
        .unwrap();
        assert_eq!(l1.to_bits(), l2.to_bits());
        assert_eq!(g1, g2);
    }
}
