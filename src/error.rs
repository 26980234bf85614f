//! The engine's error type: every entry point returns it instead of panicking.

use std::fmt;

/// Why an engine call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Arrays whose shapes do not fit together or the network's layout.
    Shape(String),
    /// A value the engine cannot work with (a bad hyperparameter, an index out of range).
    Value(String),
    /// A caller-supplied hook failed; the caller holds the detailed error.
    Hook,
    /// The loss stopped being finite during training.
    Diverged {
        /// The epoch (from 1) of the batch whose loss was not finite.
        epoch: usize,
        /// That batch, from 1 within its epoch.
        batch: usize,
        /// Its loss: inf or NaN.
        loss: f64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape(msg) | Error::Value(msg) => f.write_str(msg),
            Error::Hook => f.write_str("a training callback failed"),
            Error::Diverged { epoch, batch, loss } => write!(
                f,
                "Training diverged: the loss became {loss} in epoch {epoch} (batch {batch}). \
                 The learning rate is probably too high for this data, or the features are \
                 not scaled: try a smaller learning_rate_init, or standardize X (e.g. with \
                 sklearn.preprocessing.StandardScaler)."
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns `Error::Shape` unless `cond` holds.
pub(crate) fn ensure_shape(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Shape(msg()))
    }
}
