"""Scale: a 1,000,000 x 100 float32 problem.

* Fitting does not copy X: the peak resident memory during fit (and predict) stays
  below the memory of X plus 25 %. Measured in a fresh subprocess: VmHWM is reset
  (``/proc/self/clear_refs``) once X exists, so the peak is the fit's own, and the
  growth over the resident size right after X was created (or memory-mapped) is
  compared with X's size. For a memory map, touching X makes its pages resident, so
  the growth may reach X's size but not a second copy.
* ``partial_fit`` over chunks of a memory map trains a model as good as ``fit``.

Kept cheap for the default run: one epoch of SGD on a (16,) network.
"""

import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.exceptions import ConvergenceWarning

N_ROWS, N_COLS = 1_000_000, 100
CHUNK = 100_000
X_BYTES = N_ROWS * N_COLS * 4
PARAMS = dict(
    hidden_layer_sizes=(16,),
    solver="sgd",
    max_iter=1,
    learning_rate_init=0.01,
    random_state=0,
)

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="needs Linux /proc for RSS"
)


def _target(X):
    """A learnable target: the sign of a fixed linear function of the features."""
    w = np.random.default_rng(1).standard_normal(N_COLS).astype(np.float32)
    return (X @ w > 0).astype(np.int64)


@pytest.fixture(scope="module")
def memmap_files(tmp_path_factory):
    """X (float32, 1M x 100, ~400 MB) and y as .npy files, written chunk by chunk."""
    root = tmp_path_factory.mktemp("scale")
    x_path, y_path = root / "X.npy", root / "y.npy"
    X = np.lib.format.open_memmap(
        x_path, mode="w+", dtype=np.float32, shape=(N_ROWS, N_COLS)
    )
    y = np.empty(N_ROWS, dtype=np.int64)
    rng = np.random.default_rng(0)
    for start in range(0, N_ROWS, CHUNK):
        block = rng.standard_normal((CHUNK, N_COLS), dtype=np.float32)
        X[start : start + CHUNK] = block
        y[start : start + CHUNK] = _target(block)
    X.flush()
    del X
    np.save(y_path, y)
    yield x_path, y_path
    for p in (x_path, y_path):
        p.unlink(missing_ok=True)


# Runs in a fresh interpreter so that nothing else inflates its peak memory.
_MEASURE = r"""
import json, sys, time, warnings
import numpy as np
from mlp_rs import MLPClassifier, MLPRegressor
warnings.simplefilter("ignore")

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

mode, x_path, y_path, params, n_rows, n_cols = sys.argv[1:7]
params = json.loads(params)
n_rows, n_cols = int(n_rows), int(n_cols)
rss_before_x = status("VmRSS:")
if mode == "memory":
    X = np.empty((n_rows, n_cols), dtype=np.float32)
    rng = np.random.default_rng(0)
    w = np.random.default_rng(1).standard_normal(n_cols).astype(np.float32)
    y = np.empty(n_rows, dtype=np.int64)
    for s in range(0, n_rows, 100_000):
        X[s:s + 100_000] = rng.standard_normal((100_000, n_cols), dtype=np.float32)
        y[s:s + 100_000] = X[s:s + 100_000] @ w > 0
else:
    X = np.load(x_path, mmap_mode="r")
    y = np.load(y_path)
est_cls = MLPClassifier if params.pop("estimator") == "MLPClassifier" else MLPRegressor
if est_cls is MLPRegressor:
    y = y.astype(np.float32)
reset = reset_peak()
rss_after_x = status("VmRSS:")
t0 = time.perf_counter()
est = est_cls(**params).fit(X, y)
fit_seconds = time.perf_counter() - t0
peak_fit = status("VmHWM:")
reset_peak()
rss_before_predict = status("VmRSS:")
t0 = time.perf_counter()
pred = est.predict(X)
predict_seconds = time.perf_counter() - t0
peak_predict = status("VmHWM:")
print(json.dumps(dict(
    reset=reset, rss_before_x=rss_before_x, rss_after_x=rss_after_x, peak_fit=peak_fit,
    rss_before_predict=rss_before_predict, peak_predict=peak_predict,
    x_bytes=int(X.nbytes), fit_seconds=fit_seconds, predict_seconds=predict_seconds,
    n_iter=int(est.n_iter_), finite=bool(all(np.isfinite(c).all() for c in est.coefs_)),
    n_pred=int(pred.shape[0]),
)))
"""

MiB = 2**20


def _measure(mode, estimator, x_path="", y_path=""):
    params = json.dumps({**PARAMS, "estimator": estimator})
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            mode,
            str(x_path),
            str(y_path),
            params,
            str(N_ROWS),
            str(N_COLS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["x_bytes"] == X_BYTES
    assert m["n_iter"] == 1 and m["finite"] and m["n_pred"] == N_ROWS
    print(
        f"\n[{mode} {estimator}] X {m['x_bytes'] / MiB:.0f} MiB; RSS before X "
        f"{m['rss_before_x'] / MiB:.0f} MiB, after X {m['rss_after_x'] / MiB:.0f} MiB; "
        f"peak during fit {m['peak_fit'] / MiB:.0f} MiB "
        f"(+{(m['peak_fit'] - m['rss_after_x']) / MiB:.0f} MiB), during predict "
        f"{m['peak_predict'] / MiB:.0f} MiB "
        f"(+{(m['peak_predict'] - m['rss_before_predict']) / MiB:.0f} MiB); "
        f"fit {m['fit_seconds']:.1f} s, predict {m['predict_seconds']:.1f} s"
    )
    return m


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_fit_does_not_copy_in_memory_float32(estimator):
    m = _measure("memory", estimator)
    # X is resident before the fit starts; the fit may add at most 25 % of X
    growth = m["peak_fit"] - m["rss_after_x"]
    assert growth < 0.25 * X_BYTES, (
        f"fit grew the peak RSS by {growth / MiB:.0f} MiB over X's "
        f"{X_BYTES / MiB:.0f} MiB: X (or a large part of it) was copied"
    )
    growth = m["peak_predict"] - m["rss_before_predict"]
    assert growth < 0.25 * X_BYTES, (
        f"predict grew the peak RSS by {growth / MiB:.0f} MiB"
    )


def test_fit_does_not_copy_memmap(memmap_files):
    x_path, y_path = memmap_files
    m = _measure("memmap", "MLPClassifier", x_path, y_path)
    # mapping costs nothing; reading X makes its pages resident (at most X's size);
    # a copy would add another X on top
    growth = m["peak_fit"] - m["rss_after_x"]
    assert growth < 1.25 * X_BYTES, (
        f"fit on a memory map grew the peak RSS by {growth / MiB:.0f} MiB, more than "
        f"X's {X_BYTES / MiB:.0f} MiB + 25 %: X was copied"
    )
    growth = m["peak_predict"] - m["rss_before_predict"]
    assert growth < 0.25 * X_BYTES, (
        f"predict grew the peak RSS by {growth / MiB:.0f} MiB"
    )


def test_partial_fit_over_memmap_chunks_matches_fit(memmap_files):
    """One epoch as fit, or as partial_fit over ten 100k-row chunks of a memory map:
    models of the same quality."""
    x_path, y_path = memmap_files
    X = np.load(x_path, mmap_mode="r")
    y = np.load(y_path)
    # held-out rows: fresh draws from the same distribution
    rng = np.random.default_rng(123)
    X_test = rng.standard_normal((50_000, N_COLS), dtype=np.float32)
    y_test = _target(X_test)

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = MLPClassifier(**PARAMS).fit(X, y)
    t_fit = time.perf_counter() - t0

    t0 = time.perf_counter()
    chunked = MLPClassifier(**PARAMS)
    for start in range(0, N_ROWS, CHUNK):
        chunked.partial_fit(
            X[start : start + CHUNK], y[start : start + CHUNK], classes=[0, 1]
        )
    t_partial = time.perf_counter() - t0

    s_full, s_chunked = full.score(X_test, y_test), chunked.score(X_test, y_test)
    print(
        f"\nheld-out accuracy: fit {s_full:.4f} ({t_fit:.1f} s), "
        f"partial_fit over {N_ROWS // CHUNK} chunks {s_chunked:.4f} ({t_partial:.1f} s)"
    )
    assert s_full > 0.9, s_full  # it learned the problem
    assert abs(s_full - s_chunked) < 0.02
    assert chunked.t_ == full.t_ == N_ROWS
    assert all(np.isfinite(c).all() for c in chunked.coefs_)


def test_partial_fit_over_memmap_chunks_regressor(memmap_files):
    """The same for a regressor with a continuous target, on the first 300k rows."""
    x_path, _ = memmap_files
    X = np.load(x_path, mmap_mode="r")
    n = 300_000
    w = np.random.default_rng(2).standard_normal(N_COLS).astype(np.float32) / 10
    y = np.empty(n, dtype=np.float32)
    for start in range(0, n, CHUNK):
        y[start : start + CHUNK] = np.tanh(X[start : start + CHUNK] @ w)
    X_test = np.random.default_rng(7).standard_normal(
        (20_000, N_COLS), dtype=np.float32
    )
    y_test = np.tanh(X_test @ w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = MLPRegressor(**PARAMS).fit(X[:n], y)
    chunked = MLPRegressor(**PARAMS)
    for start in range(0, n, CHUNK):
        chunked.partial_fit(X[start : start + CHUNK], y[start : start + CHUNK])
    s_full, s_chunked = full.score(X_test, y_test), chunked.score(X_test, y_test)
    print(f"\nheld-out R^2: fit {s_full:.4f}, partial_fit over chunks {s_chunked:.4f}")
    assert s_full > 0.8, s_full
    assert abs(s_full - s_chunked) < 0.03


# A sparse fit (the text-classification shape of bench/workloads.py's W3, one epoch):
# the first layer works on the CSR entries, so no batch x n_features buffer exists.
_SPARSE = r"""
import json, warnings
import numpy as np
import scipy.sparse as sp
from mlp_rs import MLPClassifier
warnings.simplefilter("ignore")

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

before = status("VmRSS:")
n, f, nnz = 20_000, 50_000, 100
rng = np.random.default_rng(0)
indices = rng.integers(0, f, size=n * nnz).astype(np.int32)
indptr = np.arange(0, n * nnz + 1, nnz)
X = sp.csr_matrix((rng.random(n * nnz), indices, indptr), shape=(n, f))
X.sum_duplicates()
y = rng.integers(0, 20, n)
x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
est = MLPClassifier(hidden_layer_sizes=(100,), max_iter=1, random_state=0).fit(X, y)
peak = status("VmHWM:")
params = sum(a.size for a in est.coefs_ + est.intercepts_)
print(json.dumps(dict(before=before, peak=peak, x_bytes=x_bytes, params=params,
                      n_iter=est.n_iter_)))
"""


def test_sparse_fit_memory_is_x_model_and_optimizer_state():
    proc = subprocess.run(
        [sys.executable, "-c", _SPARSE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["n_iter"] == 1
    model = 8 * m["params"]
    budget = 1.5 * (m["x_bytes"] + model + 2 * model)  # Adam: two moments
    used = m["peak"] - m["before"]
    print(
        f"\nsparse fit: X {m['x_bytes'] / MiB:.0f} MiB, model {model / MiB:.0f} MiB, "
        f"peak {used / MiB:.0f} MiB over the interpreter (budget {budget / MiB:.0f})"
    )
    assert used <= budget, f"{used / MiB:.0f} MiB > {budget / MiB:.0f} MiB"
