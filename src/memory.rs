//! Allocations whose size comes from the user's data or hyperparameters. They are
//! fallible: running out of memory is an [`Error::Memory`] naming what was being
//! allocated and how big (a `MemoryError` in Python, the estimator unchanged), never an
//! abort of the interpreter.

use crate::error::{Error, Result};

/// A vector of `len` copies of `value`; `what` describes it for the error.
pub(crate) fn filled<T: Clone>(
    len: usize,
    value: T,
    what: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let mut v = Vec::new();
    grow(&mut v, len, value, what)?;
    Ok(v)
}

/// Resizes `v` to at least `len` values, new ones set to `value` (it never shrinks).
pub(crate) fn grow<T: Clone>(
    v: &mut Vec<T>,
    len: usize,
    value: T,
    what: impl FnOnce() -> String,
) -> Result<()> {
    if v.len() >= len {
        return Ok(());
    }
    let extra = len - v.len();
    if v.try_reserve_exact(extra).is_err() {
        return Err(Error::Memory {
            what: what(),
            bytes: bytes_of::<T>(len),
        });
    }
    v.resize(len, value);
    Ok(())
}

/// `a * b`, or a memory error when the product does not even fit the address space.
pub(crate) fn product(a: usize, b: usize, what: impl FnOnce() -> String) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::Memory {
        what: what(),
        bytes: usize::MAX,
    })
}

/// Bytes of `len` values of `T` (saturating).
pub(crate) fn bytes_of<T>(len: usize) -> usize {
    len.saturating_mul(std::mem::size_of::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors_not_aborts() {
        let err = filled(usize::MAX / 8, 0.0_f64, || "a test buffer".into()).unwrap_err();
        assert!(matches!(err, Error::Memory { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("a test buffer") && msg.contains("EiB"),
            "{msg}"
        );
        assert!(product(usize::MAX, 2, || "x".into()).is_err());
        let mut v = vec![1_u8; 4];
        grow(&mut v, 2, 0, || "v".into()).unwrap();
        assert_eq!(v, [1, 1, 1, 1], "never shrinks");
        grow(&mut v, 6, 0, || "v".into()).unwrap();
        assert_eq!(v, [1, 1, 1, 1, 0, 0]);
    }
}
