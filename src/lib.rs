//! mlp_rs: the engine behind the `mlp_rs` Python package — multilayer perceptrons trained
//! with mini-batch SGD / Adam (or L-BFGS driven from Python), following scikit-learn's
//! `MLPClassifier` / `MLPRegressor` exactly. Plain Rust: the only PyO3 code is `python`.

pub mod activation;
pub mod batch;
pub mod data;
pub mod error;
pub mod exp;
pub mod gemm;
pub mod loss;
pub mod mt19937;
pub mod narrow;
pub mod network;
pub mod objective;
pub mod optimizer;
pub mod parallel;
pub mod predict;
pub mod propagate;
pub mod real;
pub mod score;
mod simd;
pub mod trainer;
pub mod workspace;

#[cfg(feature = "python")]
mod python;

pub use activation::{Activation, OutputActivation};
pub use data::{Rows, Targets};
pub use error::{Error, Result};
pub use loss::Loss;
pub use network::Layout;
pub use optimizer::{Plateau, Scalars, Schedule, Solver};
pub use parallel::{resolve_n_jobs, with_threads, Par};
pub use propagate::Net;
pub use real::Real;
pub use score::Score;
pub use trainer::{
    train, Dataset, EpochReport, Hooks, Model, Outcome, Progress, SeededHooks, StopReason,
    TrainConfig,
};
