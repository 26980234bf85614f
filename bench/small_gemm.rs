//! `gemm` against `nano-gemm` on the small and narrow products of the benchmark networks,
//! one thread: `cargo run --release --example small_gemm`. The table in
//! `bench/gemm_choice.md` comes from this program; `src/gemm.rs` routes by its result.

use ndarray::Array2;
use std::time::Instant;

/// (name, m, n, k, first operand transposed, second operand transposed)
const SHAPES: [(&str, usize, usize, usize, bool, bool); 12] = [
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
    (
        "C2 output weight grad 256x10x128, A^T",
        256,
        10,
        128,
        true,
        false,
    ),
];

trait Float: Copy + Default + 'static {
    const NAME: &'static str;
    fn from(x: f64) -> Self;
    fn plan(m: usize, n: usize, k: usize) -> nano_gemm::Plan<Self>;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    fn from(x: f64) -> Self {
        x as f32
    }
    fn plan(m: usize, n: usize, k: usize) -> nano_gemm::Plan<Self> {
        nano_gemm::Plan::new_f32(m, n, k)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    fn from(x: f64) -> Self {
        x
    }
    fn plan(m: usize, n: usize, k: usize) -> nano_gemm::Plan<Self> {
        nano_gemm::Plan::new_f64(m, n, k)
    }
}

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

fn compare<T: Float>((name, m, n, k, ta, tb): (&str, usize, usize, usize, bool, bool)) {
    let fill = |r: usize, c: usize| {
        Array2::from_shape_fn((r, c), |(i, j)| {
            T::from(((i * 7 + j * 3) % 13) as f64 * 0.1)
        })
    };
    let a = if ta { fill(k, m) } else { fill(m, k) };
    let b = if tb { fill(n, k) } else { fill(k, n) };
    let (a, b) = (
        if ta { a.t() } else { a.view() },
        if tb { b.t() } else { b.view() },
    );
    let mut dst = Array2::<T>::default((m, n));
    let [ars, acs] = [a.strides()[0], a.strides()[1]];
    let [brs, bcs] = [b.strides()[0], b.strides()[1]];
    let flops = 2.0 * (m * n * k) as f64;
    let calls = (2e8 / flops).ceil() as usize;
    let zero = T::from(0.0);
    let one = T::from(1.0);
    let gemm = best_gflops(flops, calls, || unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            acs,
            ars,
            b.as_ptr(),
            bcs,
            brs,
            one,
            one,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    });
    let plan = T::plan(n, m, k);
    let nano = best_gflops(flops, calls, || unsafe {
        // the transposed problem, as src/gemm.rs calls it
        plan.execute_unchecked(
            n,
            m,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            b.as_ptr(),
            bcs,
            brs,
            a.as_ptr(),
            acs,
            ars,
            zero,
            one,
            false,
            false,
        )
    });
    println!("| {name} | {} | {gemm:.1} | {nano:.1} |", T::NAME);
}

fn main() {
    println!("| product | dtype | gemm GFLOPS | nano-gemm GFLOPS |\n|---|---|---|---|");
    for shape in SHAPES {
        compare::<f32>(shape);
        compare::<f64>(shape);
    }
}
