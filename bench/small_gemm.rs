//! `gemm` against `nano-gemm` on the small and narrow products of the benchmark networks,
//! one thread, through the engine's own call of each (`mlp_rs::matmul_with`):
//! `cargo run --release --example small_gemm`. The table in `bench/gemm_choice.md` comes
//! from this program; `Kernel::for_shape` routes by its result.

use mlp_rs::{matmul_with, Kernel};
use mlp_rs::{Par, Real};
use ndarray::Array2;
use std::time::Instant;

/// (name, m, n, k, first operand transposed, second operand transposed)
const SHAPES: &[(&str, usize, usize, usize, bool, bool)] = &[
    // the tabular W1 (bench/workloads.py): 20 features, 100 hidden units, parts of 100
    ("W1 forward 100x100x20", 100, 100, 20, false, false),
    ("W1 weight grad 20x100x100, A^T", 20, 100, 100, true, false),
    ("W1 hidden error 100x100x3, B^T", 100, 100, 3, false, true),
    ("W1 output 100x3x100", 100, 3, 100, false, false),
    (
        "W1 output weight grad 100x3x100, A^T",
        100,
        3,
        100,
        true,
        false,
    ),
    // W2: 50 features, (64, 32) hidden units; W5: digits, (64,)
    ("W2 forward 100x64x50", 100, 64, 50, false, false),
    ("W2 weight grad 50x64x100, A^T", 50, 64, 100, true, false),
    ("W2 forward 100x32x64", 100, 32, 64, false, false),
    ("W2 weight grad 64x32x100, A^T", 64, 32, 100, true, false),
    ("W2 hidden error 100x64x32, B^T", 100, 64, 32, false, true),
    ("W5 forward 100x64x64", 100, 64, 64, false, false),
    ("W5 weight grad 64x64x100, A^T", 64, 64, 100, true, false),
    ("C4 forward 32x64x64", 32, 64, 64, false, false),
    ("C4 output 32x10x64", 32, 10, 64, false, false),
    (
        "C4 output weight grad 64x10x32, A^T",
        64,
        10,
        32,
        true,
        false,
    ),
    ("C4 hidden error 32x64x10, B^T", 32, 64, 10, false, true),
    ("C4 weight grad 64x64x32, A^T", 64, 64, 32, true, false),
    ("C1 forward (part) 100x100x784", 100, 100, 784, false, false),
    ("C1 output 100x10x100", 100, 10, 100, false, false),
    (
        "C1 output weight grad 100x10x100, A^T",
        100,
        10,
        100,
        true,
        false,
    ),
    ("C1 hidden error 100x100x10, B^T", 100, 100, 10, false, true),
    (
        "C1 weight grad 784x100x100, A^T",
        784,
        100,
        100,
        true,
        false,
    ),
    ("C2 output 128x10x256", 128, 10, 256, false, false),
    // W4-100: predict_proba of 100 rows of a 784-100-10 model, in two blocks of rows or
    // two halves of the hidden units
    ("W4 block 50x100x784", 50, 100, 784, false, false),
    ("W4 half 100x50x784", 100, 50, 784, false, false),
    (
        "C2 output weight grad 256x10x128, A^T",
        256,
        10,
        128,
        true,
        false,
    ),
];

/// Best GFLOPS of 7 rounds of `calls` calls.
fn best_gflops(flops: f64, calls: usize, mut f: impl FnMut()) -> f64 {
    (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            flops * calls as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

fn compare<T: Real>((name, m, n, k, ta, tb): (&str, usize, usize, usize, bool, bool)) {
    let fill = |r: usize, c: usize| {
        Array2::from_shape_fn((r, c), |(i, j)| {
            T::from_f64(((i * 7 + j * 3) % 13) as f64 * 0.1)
        })
    };
    let a = if ta { fill(k, m) } else { fill(m, k) };
    let b = if tb { fill(n, k) } else { fill(k, n) };
    let (a, b) = (
        if ta { a.t() } else { a.view() },
        if tb { b.t() } else { b.view() },
    );
    let mut dst = Array2::<T>::zeros((m, n));
    let flops = 2.0 * (m * n * k) as f64;
    let calls = (2e8 / flops).ceil() as usize;
    let mut run = |kernel| {
        best_gflops(flops, calls, || {
            matmul_with(kernel, dst.view_mut(), a, b, false, Par::Sequential).expect("shapes fit")
        })
    };
    let gemm = run(Kernel::Gemm);
    let nano = run(Kernel::Nano);
    let precision = if std::mem::size_of::<T>() == 4 {
        "f32"
    } else {
        "f64"
    };
    println!("| {name} | {precision} | {gemm:.1} | {nano:.1} |");
}

fn main() {
    println!("| product | dtype | gemm GFLOPS | nano-gemm GFLOPS |\n|---|---|---|---|");
    for &shape in SHAPES {
        compare::<f32>(shape);
        compare::<f64>(shape);
    }
}
