//! mlp_rs: the engine behind the `mlp_rs` Python package — multilayer perceptrons trained
//! with mini-batch SGD / Adam (or L-BFGS driven from Python), following scikit-learn's
//! `MLPClassifier` / `MLPRegressor` exactly. Plain Rust: the only PyO3 code is the
//! `python` package (behind the `python` feature).
//!
//! The modules form floors, each importing only from its own floor and those below
//! (`scripts/check_layout.py` checks it):
//!
//! 1. `real`, `simd`, `register`, `exp`, `reduce`, `error`, `memory`, `mt19937`,
//!    `affinity`: numbers, vector kernels, a row's sums in registers to memory, errors,
//!    fallible allocation, NumPy's generator, a thread's CPUs;
//! 2. `data`, `gemm`, `narrow`, `sparse`, `zeros`, `parallel`: datasets and their
//!    gather, matrix products (dense, narrow, sparse first layer, a first layer's
//!    gradient skipping zero inputs),
//!    the per-call pool and the thread policy;
//! 3. `network`, `activation`, `loss`, `dropout`: shapes, parameter layout, the math
//!    per layer;
//! 4. `workspace`, `propagate`: forward / backward over one batch;
//! 5. `batch`, `split`, `optimizer`: a batch in parallel parts of rows (or of hidden
//!    units), SGD / Adam updates;
//! 6. `trainer`, `objective`, `predict`, `score`: the epoch loop, the L-BFGS objective,
//!    inference, validation scores;
//! 7. `python`: the bindings.
//!
//! What a Rust user needs is re-exported here; the modules themselves are private.

#![warn(missing_docs, unreachable_pub)]

mod activation;
mod affinity;
mod batch;
mod bf16;
mod data;
mod dropout;
mod error;
mod exp;
mod gemm;
mod loss;
mod memory;
mod mt19937;
mod narrow;
mod network;
mod objective;
mod optimizer;
mod parallel;
mod predict;
mod propagate;
mod real;
mod reduce;
#[cfg(target_arch = "x86_64")]
mod register;
mod score;
mod simd;
mod sparse;
mod split;
mod team;
mod trainer;
mod workspace;
mod zeros;

#[cfg(feature = "python")]
mod python;

pub use activation::Activation;
pub use bf16::{matmul as matmul_bf16, matmul_with as matmul_bf16_with, Bf16Kernel};
pub use data::{Columns, Dataset, Rows, Targets};
pub use dropout::Dropout;
pub use error::{Error, Result};
pub use gemm::{matmul, matmul_with, Kernel, Precision};
pub use loss::Loss;
pub use mt19937::Mt19937;
pub use network::{Layout, SplitMix64};
pub use objective::{loss_and_gradient, loss_threads};
pub use optimizer::{Plateau, Scalars, Schedule, Solver};
pub use parallel::{
    requested_threads, threads_for, with_pool, with_shared_team, with_shared_threads, with_threads,
    Par,
};
pub use predict::{hidden_activations, predict, predict_checked, predict_threads};
pub use propagate::Net;
pub use real::Real;
pub use score::Score;
pub use simd::level_name as cpu_level;
pub use trainer::{
    fit_threads, train, EpochReport, Hooks, Model, Outcome, Progress, SeededHooks, StopReason,
    TrainConfig,
};
