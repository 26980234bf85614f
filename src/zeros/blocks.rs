//! How the product kernels split a forward product's sum over its inputs (the `k`
//! dimension), which the zero-skipping forward product reproduces to keep their bits,
//! and by which a prediction knows when blocks of another row count give the same bits
//! ([`sums_alike`]).
//!
//! `nano-gemm` (and `narrow`, on its shapes) sums every input in one chain of fused
//! multiply-adds from zero. `gemm` sums blocks of inputs, each such a chain, and adds
//! each block's sum to the output in turn (`gemm_common::gemm::gemm_basic_generic`):
//! blocks of `min(k, 512)` when both dimensions of its (transposed) output are at most
//! 64, else `kc = ceil(k / ceil(k / auto_kc))` with `gemm_common::cache::kernel_params`'s
//! `auto_kc`, at least 512 and larger only for an L1 cache of unusual associativity.
//! Fashion-MNIST's 784 pixels: two blocks of 392, or 512 + 272 on small shapes.
//!
//! Because `auto_kc` comes from the CPU's caches, the rule is checked once per process
//! for each float type, input count and path against the kernel itself ([`checked`]);
//! where it does not hold, the zero-skipping product declines.

use crate::gemm::Kernel;
use crate::narrow::MAX_COLUMNS as NARROW_COLUMNS;
use crate::real::Real;
use std::any::TypeId;
use std::cell::RefCell;
use std::sync::Mutex;

/// The shortest block `gemm` sums in one chain (see the module's documentation).
const GEMM_MIN_BLOCK: usize = 512;

/// Widest (transposed) output `gemm` runs on its small path, whose blocks are
/// `min(k, GEMM_MIN_BLOCK)`.
const GEMM_SMALL: usize = 64;

/// The path a product takes, as far as its blocks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// `nano-gemm` or `narrow`: one chain.
    Nano,
    /// `gemm`'s small path.
    GemmSmall,
    /// `gemm` with `kernel_params`.
    Gemm,
}

impl Path {
    /// The path of `z = x w` with `n` rows, `inputs` inputs and `width` outputs, as
    /// `gemm::matmul` takes it for row-major buffers (`gemm` transposes a row-major
    /// output: its `m` is `width`, its `n` the rows).
    pub(crate) fn of<T: Real>(n: usize, inputs: usize, width: usize) -> Self {
        match Kernel::for_shape::<T>(n, width, inputs) {
            Kernel::Nano => Path::Nano,
            Kernel::Gemm if width <= GEMM_SMALL && n <= GEMM_SMALL => Path::GemmSmall,
            Kernel::Gemm => Path::Gemm,
        }
    }

    /// The kernel behind the path.
    pub(crate) fn kernel(self) -> Kernel {
        match self {
            Path::Nano => Kernel::Nano,
            Path::GemmSmall | Path::Gemm => Kernel::Gemm,
        }
    }

    /// A small product on the same path as one of `n` rows and `width` outputs, as
    /// `(rows, width)` (for the check): `gemm`'s small path or not, `narrow`'s columns
    /// or not (`nano-gemm`'s and `narrow`'s sums do not depend on the sizes; `gemm`'s
    /// depend on the inputs alone past its small path), two rows and outputs at least
    /// (fewer take matrix-vector paths).
    pub(crate) fn probe_shape(self, n: usize, width: usize) -> (usize, usize) {
        let few = |v: usize| v.clamp(2, 8);
        match self {
            Path::Nano if width > NARROW_COLUMNS => (few(n), NARROW_COLUMNS + 1),
            Path::Nano | Path::GemmSmall => (few(n), few(width)),
            Path::Gemm if width > GEMM_SMALL => (few(n), GEMM_SMALL + 1),
            Path::Gemm => (GEMM_SMALL + 1, width),
        }
    }

    /// Length of the blocks the path sums `inputs` in (the last may be shorter).
    pub(crate) fn block(self, inputs: usize) -> usize {
        match self {
            Path::Nano => inputs,
            Path::GemmSmall => inputs.min(GEMM_MIN_BLOCK),
            Path::Gemm => inputs.div_ceil(inputs.div_ceil(GEMM_MIN_BLOCK).max(1)),
        }
    }
}

/// Whether products of `a` and of `b` rows, `inputs` inputs and `width` outputs, sum
/// every output alike (the same bits): the same path, and no matrix-vector product (one
/// row, or one output on `gemm`'s paths, which it sums another way).
pub(crate) fn sums_alike<T: Real>(a: usize, b: usize, inputs: usize, width: usize) -> bool {
    let path = Path::of::<T>(a, inputs, width);
    a >= 2
        && b >= 2
        && path == Path::of::<T>(b, inputs, width)
        && (path == Path::Nano || width >= 2)
}

/// What a check is about: float type, inputs and path.
type Key = (TypeId, usize, Path);

/// What the checks found: each key and whether the rule held.
type Verdicts = Vec<(Key, bool)>;

static VERDICTS: Mutex<Verdicts> = Mutex::new(Vec::new());

thread_local! {
    /// The verdicts this thread has asked for, so that a forward pass takes no lock
    /// shared with the other threads.
    static KNOWN: RefCell<Verdicts> = const { RefCell::new(Vec::new()) };
}

/// The verdict on `key` in `verdicts`, if there is one.
fn find(verdicts: &Verdicts, key: Key) -> Option<bool> {
    verdicts.iter().find(|v| v.0 == key).map(|v| v.1)
}

/// Whether the rule of [`Path::block`] holds for `T`, `inputs` and `path` on this CPU:
/// `check` (comparing a product on that path with the zero-skipping kernel) runs the
/// first time in the process, its answer is kept.
pub(crate) fn checked<T: 'static>(inputs: usize, path: Path, check: impl FnOnce() -> bool) -> bool {
    let key = (TypeId::of::<T>(), inputs, path);
    if let Some(held) = KNOWN.with_borrow(|known| find(known, key)) {
        return held;
    }
    // A poisoned lock only means another thread panicked mid-check: the list stays valid.
    let mut verdicts = VERDICTS.lock().unwrap_or_else(|e| e.into_inner());
    let held = find(&verdicts, key).unwrap_or_else(|| {
        let held = check();
        verdicts.push((key, held));
        held
    });
    KNOWN.with_borrow_mut(|known| known.push((key, held)));
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_gemm_rules() {
        assert_eq!(Path::Nano.block(784), 784);
        assert_eq!(Path::GemmSmall.block(784), 512);
        assert_eq!(Path::GemmSmall.block(300), 300);
        assert_eq!(Path::Gemm.block(784), 392);
        assert_eq!(Path::Gemm.block(512), 512);
        assert_eq!(Path::Gemm.block(513), 257);
        assert_eq!(Path::Gemm.block(1500), 500);
        assert_eq!(Path::of::<f64>(200, 784, 100), Path::Gemm);
        assert_eq!(Path::of::<f64>(64, 784, 64), Path::GemmSmall);
        assert_eq!(Path::of::<f64>(2, 784, 2), Path::Nano);
        assert_eq!(Path::of::<f64>(65, 784, 64), Path::Gemm);
        assert_eq!(Path::of::<f64>(32, 64, 32), Path::GemmSmall);
        assert_eq!(Path::of::<f32>(32, 64, 32), Path::Nano);
        assert_eq!(Path::Gemm.probe_shape(65, 64), (65, 64));
        assert_eq!(Path::Gemm.probe_shape(200, 100), (8, 65));
        assert_eq!(Path::GemmSmall.probe_shape(64, 3), (8, 3));
        assert_eq!(Path::Nano.probe_shape(2, 10), (2, 8));
        assert_eq!(Path::Nano.probe_shape(2, 40), (2, 17));
        assert!(sums_alike::<f64>(100, 50, 784, 100));
        assert!(
            !sums_alike::<f64>(100, 50, 784, 64),
            "50 rows take gemm's small path"
        );
        assert!(
            !sums_alike::<f64>(2, 1, 784, 100),
            "one row: a matrix-vector product"
        );
        assert!(sums_alike::<f64>(90, 45, 30, 1), "one output, one chain");
    }

    #[test]
    fn a_verdict_is_kept() {
        assert!(checked::<u8>(7, Path::Nano, || true));
        assert!(checked::<u8>(7, Path::Nano, || panic!("checked twice")));
        assert!(!checked::<u8>(7, Path::Gemm, || false));
    }
}
