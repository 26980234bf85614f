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
    /// An allocation the machine cannot hold: what it was for, and its size in bytes.
    Memory {
        /// What was being allocated.
        what: String,
        /// How many bytes it needed.
        bytes: usize,
    },
    /// A mini-batch whose sample weights sum to zero: it has no loss to minimise.
    ZeroWeights(String),
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
            Error::Shape(msg) | Error::Value(msg) | Error::ZeroWeights(msg) => f.write_str(msg),
            Error::Hook => f.write_str("a training callback failed"),
            Error::Memory { what, bytes } => {
                write!(f, "Unable to allocate {} for {what}", human_bytes(*bytes))
            }
            // the first batch of a call: no update has happened, so the inputs are at fault
            Error::Diverged {
                epoch: 1,
                batch: 1,
                loss,
            } => write!(
                f,
                "Training diverged: the loss is {loss} in epoch 1 (batch 1), the first \
                 mini-batch, before any update, so it is not the learning rate: X, y, \
                 sample_weight or alpha (or the weights training starts from) hold values \
                 too large for the model's dtype, or sample weights so small that dividing \
                 by their sum overflows. Look for huge values, and scale X and y (e.g. \
                 with sklearn.preprocessing.StandardScaler) or sample_weight."
            ),
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

/// A byte count as NumPy's own memory errors print it (`29.8 GiB`).
fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

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

/// Returns `Error::Shape` unless a product `dst (m x n) = a (m x k) · b (k x n)` of
/// these dimensions fits together; `what` names the product in the message.
pub(crate) fn ensure_product(
    what: &str,
    dst: (usize, usize),
    a: (usize, usize),
    b: (usize, usize),
) -> Result<()> {
    let ((m, n), (a_rows, k), (b_rows, b_cols)) = (dst, a, b);
    ensure_shape(a_rows == m && b_rows == k && b_cols == n, || {
        format!("{what} shapes do not fit: ({m}, {n}) = ({a_rows}, {k}) x ({b_rows}, {b_cols})")
    })
}
