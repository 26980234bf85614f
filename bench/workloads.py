#!/usr/bin/env python3
"""Everyday workloads, mlp_rs against scikit-learn side by side (the workloads issue).

=======  ===============================================================================
W1       tabular: ``MLPClassifier()`` defaults (adam, (100,), batch 200) on
         make_classification 50,000 x 20, 3 classes, max_iter=30
W2       ``MLPRegressor((64, 32))`` adam on make_regression 100,000 x 50, max_iter=10
W3       sparse CSR 20,000 x 50,000, 100 nonzeros a row, 20 classes, (100,), adam,
         max_iter=3
W4-1     ``predict_proba`` of 1 row, 784-100-10 float64 model (Fashion-MNIST's shape)
W4-100   ``predict_proba`` of 100 rows, same model
W4-df    W4-1 from pandas: the model fitted on a DataFrame with named columns, one row
         of it predicted (not in the issue: serving from a DataFrame)
W5       ``cross_val_score(cv=5)`` on digits, (64,), adam, max_iter=50
W6       float32 200,000 x 256, (256, 128), sgd momentum 0.9, batch 512, 3 epochs
W6-bf16  W6 with mlp_rs's ``matmul_precision="bfloat16"`` (scikit-learn's side is W6)
W7       tabular with categories: ``MLPClassifier()`` defaults on 50,000 rows of 12
         one-hot encoded categories of 25 levels (dense) and 8 numeric columns (308
         inputs, 96 % zeros), 3 classes, max_iter=10 (not in the issue: the zero
         inputs' kernels of ``src/zeros.rs``)
W8       W7 with 60 levels a category: 728 inputs, 98 % zeros (past 512 inputs
         ``gemm`` sums in blocks, which the forward kernel mirrors)
W9       a stream: ``partial_fit`` of ``MLPClassifier()`` over chunks of 500 rows of
         make_classification 20,000 x 40, 4 classes (40 calls; not in the issue: the
         fixed costs of a call, which out-of-core and online learning pay per chunk)
W9-df    W9 from pandas: chunks of a DataFrame with named columns and a Series of labels
=======  ===============================================================================

Each workload runs scikit-learn and mlp_rs interleaved (the order alternating per
repetition, an idle pause before each timed run so that neither is timed against the
other's leftover BLAS threads), ``--repeats`` times; the table gives medians (min-max)
and the ratio of the medians. Fits run exactly their epochs (tol=0). Results go to
stdout as Markdown and, with ``--out``, as JSON.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/workloads.py
    python bench/workloads.py --only W1,W4-1 --repeats 3
"""

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import mlp_rs
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

COOL_DOWN_S = 0.3
EXACT = dict(tol=0.0, n_iter_no_change=10**6, random_state=0)


def _fit(cls, X, y, **params):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(**params, **EXACT).fit(X, y)

    return run


def w1(lib):
    X, y = make_classification(
        50_000, 20, n_informative=10, n_classes=3, random_state=0
    )
    return _fit(lib["clf"], X, y, max_iter=30)


def w2(lib):
    X, y = make_regression(100_000, 50, noise=1.0, random_state=0)
    y = y / y.std()
    return _fit(lib["reg"], X, y, hidden_layer_sizes=(64, 32), max_iter=10)


def w3(lib):
    n, f, nnz = 20_000, 50_000, 100
    rng = np.random.default_rng(0)
    indices = rng.integers(0, f, size=n * nnz).astype(np.int32)
    indptr = np.arange(0, n * nnz + 1, nnz)
    X = sp.csr_matrix((rng.random(n * nnz), indices, indptr), shape=(n, f))
    X.sum_duplicates()
    y = rng.integers(0, 20, n)
    return _fit(lib["clf"], X, y, hidden_layer_sizes=(100,), max_iter=3)


def w4_data():
    """W4's training data (bench/load.py's W4 too)."""
    rng = np.random.RandomState(0)
    return rng.rand(2000, 784), rng.randint(0, 10, 2000)


def _w4(lib, rows, frame=False):
    X, y = w4_data()
    if frame:
        import pandas as pd

        X = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(784)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = lib["clf"](hidden_layer_sizes=(100,), max_iter=1, random_state=0).fit(
            X, y
        )
    x = X.iloc[:rows] if frame else X[:rows]
    calls = 2000 if rows == 1 else 300

    def run():
        for _ in range(calls):
            est.predict_proba(x)

    run.per_call = calls
    return run


def w4_1(lib):
    return _w4(lib, 1)


def w4_100(lib):
    return _w4(lib, 100)


def w4_frame(lib):
    return _w4(lib, 1, frame=True)


def w5(lib):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    est = lib["clf"](hidden_layer_sizes=(64,), max_iter=50, **EXACT)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cross_val_score(est, X, y, cv=5)

    return run


def w6(lib, **extra):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 256), dtype=np.float32)
    y = (X[:, :8].sum(axis=1) > 0).astype(int) + (X[:, 8] > 1)
    return _fit(
        lib["clf"],
        X,
        y,
        hidden_layer_sizes=(256, 128),
        solver="sgd",
        momentum=0.9,
        batch_size=512,
        learning_rate_init=0.01,
        max_iter=3,
        **extra,
    )


def w6_bf16(lib):
    # scikit-learn has no bfloat16 products: its side is W6 unchanged
    bf16 = lib["clf"] is not SkClassifier
    return w6(lib, **({"matmul_precision": "bfloat16"} if bf16 else {}))


def w7(lib, levels=25):
    rng = np.random.default_rng(0)
    n = 50_000
    codes = rng.integers(0, levels, size=(n, 12))
    onehot = np.zeros((n, 12 * levels))
    onehot[np.arange(n)[:, None], codes + levels * np.arange(12)] = 1.0
    numeric = rng.standard_normal((n, 8))
    X = np.hstack([onehot, numeric])
    effect = rng.standard_normal(12 * levels)
    score = onehot @ effect + numeric[:, 0]
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return _fit(lib["clf"], X, y, max_iter=10)


def w8(lib):
    return w7(lib, levels=60)


def w9_data():
    """W9's data (bench/load.py's W9 too)."""
    return make_classification(
        20_000, 40, n_informative=20, n_classes=4, random_state=0
    )


def w9(lib, frame=False):
    X, y = w9_data()
    if frame:
        import pandas as pd

        X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        y = pd.Series(y, name="target")
    chunks = [(X[i : i + 500], y[i : i + 500]) for i in range(0, len(y), 500)]
    classes = np.unique(y)

    def run():
        est = lib["clf"](random_state=0)
        for X_chunk, y_chunk in chunks:
            est.partial_fit(X_chunk, y_chunk, classes=classes)

    return run


def w9_frame(lib):
    return w9(lib, frame=True)


WORKLOADS = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4-1": w4_1,
    "W4-100": w4_100,
    "W4-df": w4_frame,
    "W5": w5,
    "W6": w6,
    "W6-bf16": w6_bf16,
    "W7": w7,
    "W8": w8,
    "W9": w9,
    "W9-df": w9_frame,
}
LIBS = {
    "scikit-learn": {"clf": SkClassifier, "reg": SkRegressor},
    "mlp_rs": {"clf": mlp_rs.MLPClassifier, "reg": mlp_rs.MLPRegressor},
}


def measure(name, repeats):
    runs = {lib: WORKLOADS[name](LIBS[lib]) for lib in LIBS}
    times = {lib: [] for lib in LIBS}
    for r in range(repeats):
        order = list(LIBS) if r % 2 == 0 else list(LIBS)[::-1]
        for lib in order:
            time.sleep(COOL_DOWN_S)
            start = time.perf_counter()
            runs[lib]()
            seconds = time.perf_counter() - start
            times[lib].append(seconds / getattr(runs[lib], "per_call", 1))
    return times


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--out", help="write every measurement as JSON here")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"scikit-learn {sklearn.__version__}, mlp_rs {mlp_rs.__version__}; "
        f"load average {load[0]:.2f} at the start; medians of {args.repeats}"
    )
    print("\n| workload | scikit-learn | mlp_rs | speed-up |\n|---|---|---|---|")
    results = {}
    for name in args.only.split(","):
        times = measure(name, args.repeats)
        results[name] = times
        med = {lib: statistics.median(t) for lib, t in times.items()}
        cells = [
            f"{_fmt(med[lib])} ({_fmt(min(times[lib]))}-{_fmt(max(times[lib]))})"
            for lib in LIBS
        ]
        ratio = med["scikit-learn"] / med["mlp_rs"]
        print(f"| {name} | {cells[0]} | {cells[1]} | {ratio:.2f}x |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"load": load, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
