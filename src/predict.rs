//! Inference: the forward pass over any number of rows, in fixed blocks of rows that run
//! in parallel (each thread with its own buffers); blocks never interact, so the result
//! does not depend on the number of threads.

use crate::data::Rows;
use crate::error::{ensure_shape, Error, Result};
use crate::network::Layout;
use crate::parallel::{threads_for, Par, SendPtr};
use crate::propagate::{Net, Pass};
use crate::real::Real;
use crate::workspace::{Passes, Workspace};
use crate::zeros::sums_alike;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Rows per block at most: enough for efficient products, small enough to spread over
/// threads.
const BLOCK_ROWS: usize = 512;

/// Rows per block of a prediction over `n` rows: at least two blocks when there are
/// rows to split (so that a few hundred rows keep two cores busy: `gemm` does not split
/// a product of 100 rows itself), by `n` alone (results never depend on the threads).
fn block_rows(n: usize) -> usize {
    n.div_ceil(2).clamp(1, BLOCK_ROWS)
}

/// The rows per block a prediction over `n` rows through the first `layers` layers runs
/// in on `par`: [`block_rows`], or on one thread all `n` rows in one block where that
/// sums every output as the two blocks would (the products of each layer take the same
/// path, [`same_sums`]): each block pays `gemm`'s fixed costs (packing the weights
/// among them) once, so one block is faster (100 rows of a 784-100-10 f64 model,
/// engine, Intel host: 221-227 us against 241-255 for two blocks).
fn blocks_on<T: Real>(par: Par, layout: &Layout, layers: usize, n: usize) -> usize {
    let half = block_rows(n);
    let one_block = par == Par::Sequential
        && n <= BLOCK_ROWS
        && half >= 2
        && same_sums::<T>(layout, layers, n, half)
        && same_sums::<T>(layout, layers, n, n - half);
    if one_block {
        n
    } else {
        half
    }
}

/// Whether products of `a` and of `b` rows through the first `layers` layers of
/// `layout` sum every output alike (the same bits: [`sums_alike`]). Either answer gives
/// correct outputs; `true` only where the bits are the same.
fn same_sums<T: Real>(layout: &Layout, layers: usize, a: usize, b: usize) -> bool {
    let u = &layout.units;
    (0..layers).all(|l| sums_alike::<T>(a, b, u[l], u[l + 1]))
}

/// The threads a prediction over `n_rows` rows runs on (see [`threads_for`]): a block of
/// rows is a step. Blocks run in parallel; a lone block spreads its matrix products
/// over the threads instead.
pub fn predict_threads(n_jobs: Option<i64>, net: &Net, n_rows: usize) -> Result<usize> {
    let step = block_rows(n_rows) * net.layout.n_params();
    threads_for(n_jobs, step, usize::MAX)
}

/// Writes the network's outputs for every row of `x` into `out` (`n x n_outputs`,
/// row-major).
pub fn predict<T: Real>(
    net: &Net,
    params: &[impl AsRef<[T]> + Sync],
    x: &Rows<'_, T>,
    out: &mut [T],
    par: Par,
) -> Result<()> {
    forward_blocks(net, params, x, out, net.layout.n_layers(), par, None)
}

/// [`predict`], checking on the way that every row of `x` is finite (from the first
/// layer's products: no pass of its own over `x`): false when a row is not (or when
/// finite inputs overflowed there; `out` is then unspecified).
pub fn predict_checked<T: Real>(
    net: &Net,
    params: &[impl AsRef<[T]> + Sync],
    x: &Rows<'_, T>,
    out: &mut [T],
    par: Par,
) -> Result<bool> {
    let non_finite = AtomicBool::new(false);
    let layers = net.layout.n_layers();
    forward_blocks(net, params, x, out, layers, par, Some(&non_finite))?;
    Ok(!non_finite.load(Ordering::Relaxed))
}

/// Writes the outputs of hidden layer `layer` (0-based among the hidden layers) for every
/// row of `x` into `out` (`n x units`, row-major): the network as a feature extractor.
pub fn hidden_activations<T: Real>(
    net: &Net,
    params: &[impl AsRef<[T]> + Sync],
    x: &Rows<'_, T>,
    layer: usize,
    out: &mut [T],
    par: Par,
) -> Result<()> {
    let hidden = net.layout.n_layers() - 1;
    if layer >= hidden {
        return Err(Error::Value(format!(
            "layer {layer} is out of range: the network has {hidden} hidden layer(s)"
        )));
    }
    forward_blocks(net, params, x, out, layer + 1, par, None)
}

/// The forward pass through the first `layers` layers over every row of `x`, in blocks
/// of rows, with the last layer's outputs written into `out`; `non_finite_rows`, when
/// given, is set when a row of `x` is not finite (the blocks after that are skipped).
fn forward_blocks<T: Real>(
    net: &Net,
    params: &[impl AsRef<[T]> + Sync],
    x: &Rows<'_, T>,
    out: &mut [T],
    layers: usize,
    par: Par,
    non_finite_rows: Option<&AtomicBool>,
) -> Result<()> {
    net.layout.check("parameters", params)?;
    let (n, k) = (x.n_rows(), net.layout.units[layers]);
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
    let block = blocks_on::<T>(par, &net.layout, layers, n);
    let count = n.div_ceil(block);
    let dst = SendPtr(out.as_mut_ptr());
    let pass = Pass {
        layers,
        dropout: None,
        packed: None,
        rows16: None,
        finite_weights: false,
        non_finite_rows,
    };
    // a lone block may spread its products over the threads
    let inner = if count == 1 { par } else { Par::Sequential };
    let run_block = |ws: &mut Workspace<T>, b: usize| {
        if non_finite_rows.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
            return Ok(());
        }
        let start = b * block;
        let m = block.min(n - start);
        let rows = x.contiguous(start, m);
        if rows.is_none() {
            x.gather_into(start..start + m, &mut ws.x, ws.sparse.as_mut())?;
        }
        net.forward_pass(params, rows, ws, m, inner, pass)?;
        // SAFETY: block `b` owns rows `start..start + m` of `out`.
        let target = unsafe { std::slice::from_raw_parts_mut(dst.get().add(start * k), m * k) };
        target.copy_from_slice(&ws.acts[layers - 1][..m * k]);
        Ok(())
    };
    // a C-ordered X: every block's rows are read where they lie, none gathered
    let in_place = x.contiguous(0, n).is_some();
    let workspace = || Workspace::for_rows(&net.layout, block, Passes::Forward, x, in_place);
    // buffers taken from a stack, made when no spare one is free: one per thread at most
    let spare = Mutex::new(Vec::new());
    par.try_for_each(count, |b| {
        let ws = spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut ws = match ws {
            Some(ws) => ws,
            None => workspace()?,
        };
        let done = run_block(&mut ws, b);
        spare.lock().unwrap_or_else(|e| e.into_inner()).push(ws);
        done
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::loss::Loss;
    use crate::network::{Layout, SplitMix64};
    use ndarray::{Array2, ShapeBuilder};

    /// A classifier of `units` with `hidden` units: its net and layout.
    fn classifier(units: &[usize], hidden: Activation) -> (Net, Layout) {
        let layout = Layout::new(units.to_vec()).unwrap();
        let net = Net {
            layout: layout.clone(),
            hidden,
            loss: Loss::LogLoss,
        };
        (net, layout)
    }

    /// Rows read in place (C-ordered X) and rows copied out first (any other layout) give
    /// the same outputs, across block boundaries and for any thread count; CSR rows the
    /// same up to rounding.
    #[test]
    fn contiguous_strided_and_sparse_rows_predict_alike() {
        let (net, layout) = classifier(&[5, 9, 3], Activation::Tanh);
        let params = layout.glorot::<f64>(Activation::Tanh, 2);
        let n = 1100; // three blocks
        let mut rng = SplitMix64(8);
        let c_order =
            Array2::from_shape_fn((n, 5), |(_, j)| if j == 1 { 0.0 } else { rng.next_f64() });
        let mut f_order = Array2::zeros((n, 5).f());
        f_order.assign(&c_order);
        let (mut data, mut indices, mut indptr) = (vec![], vec![], vec![0_i64]);
        for row in c_order.rows() {
            for (j, &v) in row.iter().enumerate().filter(|(_, &v)| v != 0.0) {
                data.push(v);
                indices.push(j as i64);
            }
            indptr.push(data.len() as i64);
        }
        let csr = Rows::csr(&data, &indices[..], &indptr, 5).unwrap();
        assert!(Rows::Dense(c_order.view()).contiguous(3, 4).is_some());
        assert!(Rows::Dense(f_order.view()).contiguous(3, 4).is_none());

        let run = |x: Rows<'_, f64>, threads: usize| {
            let mut out = vec![0.0; n * 3];
            crate::parallel::with_threads(threads, |par| predict(&net, &params, &x, &mut out, par))
                .unwrap()
                .unwrap();
            out
        };
        let reference = run(Rows::Dense(c_order.view()), 1);
        assert_eq!(run(Rows::Dense(c_order.view()), 2), reference);
        assert_eq!(run(Rows::Dense(f_order.view()), 2), reference);
        // the calling thread and a worker of the process's pool as a team
        let x = Rows::Dense(f_order.view());
        let mut teamed = vec![0.0; n * 3];
        crate::parallel::with_shared_team(2, |par| {
            assert_eq!(par, Par::Team);
            predict(&net, &params, &x, &mut teamed, par)
        })
        .unwrap()
        .unwrap();
        assert_eq!(teamed, reference);
        // CSR rows take the sparse first layer (its entries in order, as scipy sums
        // them): the same values up to rounding, the same bits for any thread count
        let sparse = run(csr, 1);
        assert_eq!(run(csr, 2), sparse);
        for (a, b) in sparse.iter().zip(&reference) {
            assert!((a - b).abs() <= 1e-13 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    /// The check along the way finds NaN and either infinity in any row of any block,
    /// dense or CSR, also where a row's weights are all zero (`0 · inf` is NaN), and
    /// gives [`predict`]'s outputs when every row is finite.
    #[test]
    fn predict_checked_finds_every_non_finite_row() {
        let (net, layout) = classifier(&[6, 4, 2], Activation::Relu);
        let mut params = layout.glorot::<f64>(Activation::Relu, 3);
        params[0][5 * 4..6 * 4].fill(0.0); // input 5 reaches no hidden unit
        let n = 1100; // three blocks
        let mut rng = SplitMix64(4);
        let x = Array2::from_shape_fn((n, 6), |_| rng.next_f64() - 0.5);
        let run = |x: &Array2<f64>, threads: usize| {
            let mut out = vec![0.0; n * 2];
            let rows = Rows::Dense(x.view());
            let finite = crate::parallel::with_threads(threads, |par| {
                predict_checked(&net, &params, &rows, &mut out, par)
            })
            .unwrap()
            .unwrap();
            (finite, out)
        };
        let mut want = vec![0.0; n * 2];
        predict(
            &net,
            &params,
            &Rows::Dense(x.view()),
            &mut want,
            Par::Sequential,
        )
        .unwrap();
        for threads in [1, 2] {
            assert_eq!(run(&x, threads), (true, want.clone()));
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                for (r, c) in [(0, 0), (549, 3), (1099, 5), (700, 5)] {
                    let mut x = x.clone();
                    x[[r, c]] = bad;
                    assert!(!run(&x, threads).0, "{bad} at ({r}, {c})");
                }
            }
        }
        let (data, indices, indptr) = ([1.0, f64::NAN], [0_i64, 5], [0_i64, 1, 2]);
        let csr = Rows::csr(&data, &indices[..], &indptr, 6).unwrap();
        let mut out = vec![0.0; 4];
        assert!(!predict_checked(&net, &params, &csr, &mut out, Par::Sequential).unwrap());
    }

    /// Rows of one-hot inputs, which the zero-skipping first layer takes (it lists the
    /// non-zero inputs, NaN among them): NaN and infinity found there too, f32 alike.
    #[test]
    fn predict_checked_finds_them_in_one_hot_rows() {
        fn check<T: Real>() {
            let (net, layout) = classifier(&[300, 20, 3], Activation::Relu);
            let params = layout.glorot::<T>(Activation::Relu, 5);
            let n = 400; // 400 x 300 x 20 multiply-adds: past the kernel's least work
            let hot = |r: usize, c: usize| c % 100 == (r * 7 + c / 100 * 13) % 100;
            let x = Array2::from_shape_fn((n, 300), |(r, c)| {
                T::from_f64(f64::from(u8::from(hot(r, c))))
            });
            let run = |x: &Array2<T>| {
                let mut out = vec![T::zero(); n * 3];
                predict_checked(
                    &net,
                    &params,
                    &Rows::Dense(x.view()),
                    &mut out,
                    Par::Sequential,
                )
                .unwrap()
            };
            assert!(run(&x));
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                // a zero input made bad, and a hot one
                for (r, c) in [(0, 1), (3, 7), (399, 299)] {
                    let mut x = x.clone();
                    x[[r, c]] = T::from_f64(bad);
                    assert!(!run(&x), "{bad} at ({r}, {c})");
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// On one thread, rows up to a block's worth run as one block where every layer's
    /// products sum alike at both sizes, and the outputs are the bits of two blocks on
    /// two threads; where a size changes a layer's path (`gemm`'s small path at 64 rows
    /// and 64 outputs), or a block would be one row, the two blocks stay.
    #[test]
    fn one_block_on_one_thread_gives_the_bits_of_two() {
        fn check<T: Real>(units: Vec<usize>, n: usize, whole: bool) {
            let (net, layout) = classifier(&units, Activation::Relu);
            let layers = layout.n_layers();
            let expected = if whole { n } else { block_rows(n) };
            assert_eq!(
                blocks_on::<T>(Par::Sequential, &layout, layers, n),
                expected,
                "{units:?} {n}"
            );
            assert_eq!(
                blocks_on::<T>(Par::Rayon, &layout, layers, n),
                block_rows(n)
            );
            let params = layout.glorot::<T>(Activation::Relu, 6);
            let mut rng = SplitMix64(7);
            let x = Array2::from_shape_fn((n, units[0]), |_| T::from_f64(rng.next_f64()));
            let run = |threads: usize, hidden: bool| {
                let width = if hidden {
                    units[1]
                } else {
                    *units.last().unwrap()
                };
                let mut out = vec![T::zero(); n * width];
                let rows = Rows::Dense(x.view());
                crate::parallel::with_threads(threads, |par| match hidden {
                    true => hidden_activations(&net, &params, &rows, 0, &mut out, par),
                    false => predict(&net, &params, &rows, &mut out, par),
                })
                .unwrap()
                .unwrap();
                out.iter()
                    .map(|&v| Real::to_f64(v).to_bits())
                    .collect::<Vec<_>>()
            };
            for hidden in [false, true] {
                assert_eq!(run(1, hidden), run(2, hidden), "{units:?} {n} {hidden}");
            }
        }
        check::<f64>(vec![784, 100, 10], 100, true);
        check::<f32>(vec![784, 100, 10], 101, true);
        check::<f64>(vec![300, 200, 100, 3], 512, true);
        check::<f64>(vec![40, 30, 1], 90, true);
        // 100 rows on gemm's path, 50 on its small path (64 outputs): two blocks
        check::<f64>(vec![784, 64, 10], 100, false);
        // blocks of one row (a matrix-vector product): two blocks
        check::<f64>(vec![784, 100, 10], 2, false);
        // more than a block's worth: blocks as before
        check::<f32>(vec![784, 100, 10], 600, false);
    }
}
