//! Engine-only epoch timing (no Python): `cargo run --release --example epoch -- C1 f32 2`
//! (C1, C2, C3 = C1 with Adam, C4, and bench/workloads.py's tabular W1, W2 (a
//! regression), one fold of W5, and W6 (256-256-128-3, batch 512); f32 or f64;
//! n_jobs, read by the engine's thread policy as the estimators read it; epochs; `bf16`
//! for bfloat16 products).
//! Synthetic data of Fashion-MNIST's (C1, C2) or digits' (C4, W5) shape, or the raw
//! little-endian f32 file `EPOCH_X` names (real inputs of that shape); prints seconds per
//! epoch and GFLOPS, for profiling the engine (e.g. under `perf record`).

use mlp_rs::{
    fit_threads, train, with_threads, Activation, Dataset, Dropout, Layout, Loss, Model, Net,
    Precision, Progress, Real, Rows, Scalars, Schedule, Score, SeededHooks, Solver, SplitMix64,
    Targets, TrainConfig,
};
use ndarray::Array2;
use std::time::Instant;

/// An `n x cols` array of `values` on transparent huge pages where Linux gives them, as
/// numpy allocates arrays of 4 MB and more (`madvise(MADV_HUGEPAGE)`), so that the
/// engine reads X from the same kind of memory as in a fit from Python. (Measured on
/// the AMD host: W2's gather, ~8 % of its epoch, took the same share either way.)
fn on_huge_pages<T: Real>(n: usize, cols: usize, values: impl Iterator<Item = T>) -> Array2<T> {
    let mut v: Vec<T> = Vec::with_capacity(n * cols);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
        let end = (v.as_ptr() as usize + n * cols * std::mem::size_of::<T>()) / PAGE * PAGE;
        if end > start {
            // SAFETY: a hint over whole pages inside the vector's allocation.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    v.extend(values);
    Array2::from_shape_vec((n, cols), v).unwrap()
}

fn run<T: Real>(
    shape: (usize, usize, usize),
    hidden: &[usize],
    batch: usize,
    solver: Solver,
    n_jobs: i64,
    epochs: usize,
    precision: Precision,
) {
    let (n, n_in, n_out) = shape;
    let mut rng = SplitMix64(1);
    let x = match std::env::var("EPOCH_X") {
        // real inputs instead (e.g. Fashion-MNIST's pixels / 255, whose zeros matter)
        Ok(path) => {
            let raw = std::fs::read(&path).expect("EPOCH_X: a readable file");
            assert_eq!(raw.len(), n * n_in * 4, "EPOCH_X: {n} x {n_in} f32 values");
            let values = raw
                .chunks_exact(4)
                .map(|b| T::from_f64(f32::from_le_bytes(b.try_into().unwrap()) as f64));
            on_huge_pages(n, n_in, values)
        }
        Err(_) => on_huge_pages(n, n_in, (0..n * n_in).map(|_| T::from_f64(rng.next_f64()))),
    };
    let labels: Vec<i64> = (0..n).map(|i| (i % n_out) as i64).collect();
    // one output: a regression (W2) on a target drawn like X
    let regression = n_out == 1;
    let target = Array2::from_shape_fn((n, 1), |_| T::from_f64(rng.next_f64()));
    let units: Vec<usize> = std::iter::once(n_in)
        .chain(hidden.iter().copied())
        .chain([n_out])
        .collect();
    let layout = Layout::new(units.clone()).unwrap();
    let net = Net {
        layout: layout.clone(),
        hidden: Activation::Relu,
        loss: if regression {
            Loss::SquaredError
        } else {
            Loss::LogLoss
        },
    };
    let mut params = layout.glorot::<T>(Activation::Relu, 3);
    let mut state: Vec<Vec<T>> = (0..solver.state_per_tensor())
        .flat_map(|_| layout.tensor_lens())
        .map(|n| vec![T::zero(); n])
        .collect();
    let cfg = TrainConfig {
        alpha: 1e-4,
        batch_size: batch,
        solver,
        max_iter: epochs,
        tol: 0.0,
        n_iter_no_change: f64::INFINITY,
        shuffle: true,
        early_stopping: false,
        incremental: false,
        score: Score::Accuracy,
        dropout: Dropout::default(),
        precision,
    };
    let mut scalars = Scalars {
        learning_rate_init: 0.01,
        learning_rate: 0.01,
        step: 0,
    };
    let mut progress = Progress::default();
    let data = Dataset {
        x: Rows::Dense(x.view()),
        y: if regression {
            Targets::Dense(target.view())
        } else {
            Targets::Classes(&labels)
        },
        sample_weight: None,
    };
    let mut p: Vec<&mut [T]> = params.iter_mut().map(|v| &mut v[..]).collect();
    let mut s: Vec<&mut [T]> = state.iter_mut().map(|v| &mut v[..]).collect();
    let threads = fit_threads(Some(n_jobs), &net, &cfg, &data).unwrap();
    let start = Instant::now();
    let outcome = with_threads(threads, |par| {
        let model = Model {
            params: &mut p,
            optimizer_state: &mut s,
            best: &mut [],
            scalars: &mut scalars,
            progress: &mut progress,
        };
        train(
            &net,
            &cfg,
            &data,
            None,
            model,
            &mut SeededHooks(SplitMix64(2)),
            par,
        )
    })
    .unwrap()
    .unwrap();
    let per_epoch = start.elapsed().as_secs_f64() / epochs as f64;
    let flops: f64 = units
        .windows(2)
        .enumerate()
        .map(|(i, w)| 2.0 * (n * w[0] * w[1]) as f64 * if i == 0 { 2.0 } else { 3.0 })
        .sum();
    println!(
        "{units:?} batch {batch} {} threads {threads}: {per_epoch:.6} s/epoch, {:.1} GFLOPS, loss {:.4}",
        std::any::type_name::<T>(),
        flops / per_epoch / 1e9,
        outcome.loss_curve.last().unwrap()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config = args.get(1).map_or("C1", |s| s.as_str());
    let f64_mode = args.get(2).is_some_and(|s| s == "f64");
    let n_jobs: i64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let epochs: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3);
    let precision = match args.get(5).map(|s| s.as_str()) {
        Some("bf16") => Precision::Bf16,
        _ => Precision::Exact,
    };
    let fashion = (60_000, 784, 10);
    let sgd = Solver::Sgd {
        momentum: 0.9,
        nesterov: true,
        schedule: Schedule::Constant,
        power_t: 0.5,
    };
    let solver = match config {
        "C3" | "W1" | "W2" | "W5" => Solver::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        },
        _ => sgd,
    };
    let (shape, hidden, batch): (_, &[usize], usize) = match config {
        "C2" => (fashion, &[512, 256], 256),
        // scikit-learn's digits, 75 % for training: per-batch overhead
        "C4" => ((1_347, 64, 10), &[64], 32),
        // the workloads' tabular W1: MLPClassifier() defaults on 50,000 x 20, 3 classes
        "W1" => ((50_000, 20, 3), &[100], 200),
        // W2: MLPRegressor((64, 32)) on 100,000 x 50
        "W2" => ((100_000, 50, 1), &[64, 32], 200),
        // W5: one fold of cross_val_score(cv=5) on digits, MLPClassifier((64,)) adam
        "W5" => ((1_437, 64, 10), &[64], 200),
        // W6: float32 200,000 x 256, (256, 128), sgd momentum, batch 512, 3 classes
        "W6" => ((200_000, 256, 3), &[256, 128], 512),
        _ => (fashion, &[100], 200),
    };
    if f64_mode {
        run::<f64>(shape, hidden, batch, solver, n_jobs, epochs, precision)
    } else {
        run::<f32>(shape, hidden, batch, solver, n_jobs, epochs, precision)
    }
}
