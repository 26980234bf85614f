//! The bfloat16 products against the f32 ones, one thread, on the products of the
//! benchmark networks: `cargo run --release --example bf16_gemm`. Prints microseconds
//! and GFLOPS of `mlp_rs::matmul` (f32, the exact path) and of the bfloat16 kernels
//! (AMX and AVX512-BF16 where the CPU has them, and the portable one), packing
//! included.

use mlp_rs::{matmul, matmul_bf16_with, Bf16Kernel, Par};
use ndarray::Array2;
use std::time::Instant;

/// (name, m, n, k, first operand transposed, second operand transposed)
const SHAPES: [(&str, usize, usize, usize, bool, bool); 6] = [
    ("C1 forward 100x100x784", 100, 100, 784, false, false),
    (
        "C1 weight grad 784x100x100, A^T",
        784,
        100,
        100,
        true,
        false,
    ),
    ("C2 forward 128x512x784", 128, 512, 784, false, false),
    ("C2 forward 128x256x512", 128, 256, 512, false, false),
    (
        "C2 weight grad 784x512x128, A^T",
        784,
        512,
        128,
        true,
        false,
    ),
    ("C2 error 128x512x256, B^T", 128, 512, 256, false, true),
];

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..20 {
            f();
        }
        best = best.min(start.elapsed().as_secs_f64() / 20.0);
    }
    best
}

fn main() {
    println!(
        "{:34} {:>14} {:>14} {:>14} {:>14}",
        "product", "f32", "bf16 amx", "bf16 avx512", "bf16 portable"
    );
    for (name, m, n, k, ta, tb) in SHAPES {
        let a = Array2::from_shape_fn(if ta { (k, m) } else { (m, k) }, |(i, j)| {
            ((i * 7 + j) % 13) as f32 * 0.1
        });
        let b = Array2::from_shape_fn(if tb { (n, k) } else { (k, n) }, |(i, j)| {
            ((i + 3 * j) % 11) as f32 * 0.1
        });
        let (av, bv) = (
            if ta { a.t() } else { a.view() },
            if tb { b.t() } else { b.view() },
        );
        let mut c = Array2::<f32>::zeros((m, n));
        let flops = 2.0 * (m * n * k) as f64;
        let cell = |s: f64| format!("{:7.1}us {:4.0}GF", s * 1e6, flops / s / 1e9);
        let f32_time = time(|| matmul(c.view_mut(), av, bv, false, Par::Sequential).unwrap());
        let mut bf16 = |kernel| {
            time(|| matmul_bf16_with(kernel, c.view_mut(), av, bv, false, Par::Sequential).unwrap())
        };
        let amx = bf16(Bf16Kernel::Amx);
        let (simd, portable) = (bf16(Bf16Kernel::Avx512), bf16(Bf16Kernel::Portable));
        println!(
            "{name:34} {} {} {} {}",
            cell(f32_time),
            cell(amx),
            cell(simd),
            cell(portable)
        );
    }
    println!("(a kernel the CPU lacks falls back to the best one below it)");
}
