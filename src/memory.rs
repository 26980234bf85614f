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

/// A cache line of bytes: the unit of 64-byte aligned buffers ([`Lines`], and
/// `bf16::Words`, whose packed panels are read in whole lines).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

impl Line {
    pub(crate) const ZERO: Line = Line([0; 64]);
}

/// A reusable scratch buffer aligned to 64 bytes, a cache line, for kernels that load
/// and store whole 512-bit registers of it: on Zen 4 a load that straddles two lines
/// runs at about half the rate (a row of 100 f32 values is 400 bytes, so three of
/// every four registers of such rows in place straddle). It grows, never shrinks.
pub(crate) struct Lines(Vec<Line>);

impl Lines {
    pub(crate) const fn new() -> Self {
        Lines(Vec::new())
    }

    /// Room for `len` values of `T` at [`Lines::ptr`] (their contents unspecified but
    /// initialised); false when memory runs out.
    pub(crate) fn room<T>(&mut self, len: usize) -> bool {
        let lines = bytes_of::<T>(len).div_ceil(64);
        if self.0.len() < lines {
            if self.0.try_reserve_exact(lines - self.0.len()).is_err() {
                return false;
            }
            self.0.resize(lines, Line::ZERO);
        }
        true
    }

    /// The buffer's start, as `T`s.
    pub(crate) fn ptr<T>(&mut self) -> *mut T {
        self.0.as_mut_ptr().cast()
    }
}

/// `len` zero words for a large buffer that is written once and then read for long
/// (X rounded to bfloat16 for a fit): memory the allocator hands out already zeroed
/// (fresh pages from the kernel, no pass writing zeros), on transparent huge pages
/// where the kernel gives them on request. On the project's AMD VM, a 94 MB buffer
/// filled with zeros and then written took 52-55 ms on 4 KB pages, ~43 ms of it page
/// faults; on huge pages 19-22 ms; a process's first such buffer took 150-215 ms in 2
/// of 6 processes (the host backing fresh huge pages).
pub(crate) fn zeroed_large(len: usize, what: impl FnOnce() -> String) -> Result<Vec<u32>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let ptr = match std::alloc::Layout::array::<u32>(len) {
        // SAFETY: a layout of non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc_zeroed(layout) }.cast::<u32>(),
        Err(_) => std::ptr::null_mut(),
    };
    if ptr.is_null() {
        return Err(Error::Memory {
            what: what(),
            bytes: bytes_of::<u32>(len),
        });
    }
    advise_huge_pages(ptr.cast_const().cast(), bytes_of::<u32>(len));
    // SAFETY: `ptr` comes from the global allocator with the layout of `len` u32
    // (capacity `len`), and its `len` values are initialised (zero).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Asks Linux for transparent huge pages over the whole pages of `bytes` at `start`
/// (a hint: where the system's setting is "never" nothing changes).
fn advise_huge_pages(start: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let first = (start as usize).next_multiple_of(PAGE);
        let end = (start as usize).saturating_add(bytes) / PAGE * PAGE;
        if end > first {
            // SAFETY: the range lies inside an allocation this process owns; the
            // advice changes how its pages are backed, never their contents.
            unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
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
        let err = zeroed_large(usize::MAX / 8, || "a large one".into()).unwrap_err();
        assert!(err.to_string().contains("a large one"), "{err}");
        assert_eq!(zeroed_large(5000, || "x".into()).unwrap(), vec![0; 5000]);
        assert!(zeroed_large(0, || "x".into()).unwrap().is_empty());
        let mut lines = Lines::new();
        assert!(!lines.room::<f64>(usize::MAX / 8), "out of memory: false");
        assert!(lines.room::<f32>(17));
        assert_eq!(lines.ptr::<f32>() as usize % 64, 0);
        let mut v = vec![1_u8; 4];
        grow(&mut v, 2, 0, || "v".into()).unwrap();
        assert_eq!(v, [1, 1, 1, 1], "never shrinks");
        grow(&mut v, 6, 0, || "v".into()).unwrap();
        assert_eq!(v, [1, 1, 1, 1, 0, 0]);
    }
}
