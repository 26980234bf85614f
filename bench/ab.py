#!/usr/bin/env python3
"""Two builds of mlp_rs side by side: is a change faster, slower, or within noise?

Each build is a Python interpreter with its own mlp_rs installed (e.g. a venv with the
wheel of the commit before the change, and the development venv). The script runs the
same workloads in both, interleaved (the order alternating per repetition, each run a
fresh process after an idle pause), and prints medians, min-max and the ratio::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/ab.py \\
        /tmp/venv-before/bin/python .venv/bin/python [--repeats 5] [--only C1,C4]

Workloads: C1 (Fashion-MNIST 784-100-10 sgd, 3 epochs, f32), C2 (784-512-256-10, 1
epoch, f32), C1-bf and C2-bf (the same with ``matmul_precision="bfloat16"``, after a
first fit; not run by default), C4 (digits 64-64-10 batch 32, 20 epochs, f64), W1
(tabular defaults), W2 (a (64, 32) regressor, 10 epochs of 100,000 x 50, f64), W4
(predict_proba of 1 and of 100 rows), W5 (cross_val_score on digits); Fashion-MNIST
falls back to random data of its shape when the dataset is not installed.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

# Runs inside each build's interpreter: prints the seconds of one timed workload.
CHILD = r"""
import gzip, json, struct, sys, time, warnings
from pathlib import Path
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from mlp_rs import MLPClassifier
warnings.simplefilter("ignore", ConvergenceWarning)
name = sys.argv[1]

def fashion(n):
    d = Path("/usr/share/datasets/fashion-mnist")
    try:
        with gzip.open(d / "train-images-idx3-ubyte.gz") as f:
            _, count, rows, cols = struct.unpack(">IIII", f.read(16))
            X = np.frombuffer(f.read(), np.uint8).reshape(count, rows * cols)
        with gzip.open(d / "train-labels-idx1-ubyte.gz") as f:
            f.read(8)
            y = np.frombuffer(f.read(), np.uint8)
    except OSError:
        rng = np.random.RandomState(0)
        X, y = rng.randint(0, 256, (60000, 784)), rng.randint(0, 10, 60000)
    return (X[:n] / 255.0).astype(np.float32), y[:n]

def timed(fn, repeats=1):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats

sgd = dict(solver="sgd", momentum=0.9, learning_rate_init=0.01, tol=0,
           n_iter_no_change=1000, random_state=0)
if name in ("C1", "C2", "C1-bf", "C2-bf"):
    X, y = fashion(60000)
    c1 = name.startswith("C1")
    hidden, batch, epochs = ((100,), 200, 3) if c1 else ((512, 256), 256, 1)
    bf16 = dict(matmul_precision="bfloat16") if name.endswith("-bf") else {}
    est = MLPClassifier(hidden, batch_size=batch, max_iter=epochs, **sgd, **bf16)
    if bf16:
        est.fit(X, y)  # a first fit: X's rounded copy then reuses warm pages
    seconds = timed(lambda: est.fit(X, y)) / epochs
elif name == "C4":
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X[:1347] / 16.0
    est = MLPClassifier((64,), batch_size=32, max_iter=20, **sgd)
    seconds = timed(lambda: est.fit(X, y[:1347])) / 20
elif name == "W1":
    from sklearn.datasets import make_classification
    X, y = make_classification(50000, 20, n_informative=10, n_classes=3, random_state=0)
    est = MLPClassifier(max_iter=30, random_state=0)
    seconds = timed(lambda: est.fit(X, y))
elif name == "W2":
    from sklearn.datasets import make_regression
    from mlp_rs import MLPRegressor
    X, y = make_regression(100_000, 50, noise=1.0, random_state=0)
    y = y / y.std()
    est = MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=10, random_state=0)
    seconds = timed(lambda: est.fit(X, y))
elif name == "W5":
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    X, y = load_digits(return_X_y=True)
    exact = dict(tol=0.0, n_iter_no_change=10**6, random_state=0)
    est = MLPClassifier((64,), max_iter=50, **exact)
    seconds = timed(lambda: cross_val_score(est, X / 16.0, y, cv=5))
elif name in ("W4-1", "W4-100"):
    X, y = fashion(5000)
    X = X.astype(np.float64)
    est = MLPClassifier((100,), max_iter=1, random_state=0).fit(X, y)
    rows = X[: 1 if name == "W4-1" else 100]
    est.predict_proba(rows)
    seconds = min(timed(lambda: est.predict_proba(rows), 200) for _ in range(5))
print(json.dumps(seconds))
"""

WORKLOADS = ["C1", "C2", "C4", "W1", "W2", "W4-1", "W4-100", "W5"]


def run(python, name):
    out = subprocess.run(
        [python, "-c", CHILD, name], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(times, median):
    return f"{median * 1e3:.3f} ms ({min(times) * 1e3:.3f}-{max(times) * 1e3:.3f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="interpreter of build A (e.g. before the change)")
    parser.add_argument("b", help="interpreter of build B (e.g. after it)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help="comma-separated, of " + ",".join(WORKLOADS + ["C1-bf", "C2-bf"]),
    )
    args = parser.parse_args()
    print(f"A = {args.a}\nB = {args.b}")
    print("| workload | A median (min-max) | B median (min-max) | B / A |")
    print("|---|---|---|---|")
    for name in args.only.split(","):
        times = {"A": [], "B": []}
        for r in range(args.repeats):
            order = [("A", args.a), ("B", args.b)]
            for label, python in order if r % 2 == 0 else order[::-1]:
                time.sleep(0.3)
                times[label].append(run(python, name))
        a, b = (statistics.median(times[k]) for k in "AB")

        cells = " | ".join(_cell(times[k], m) for k, m in (("A", a), ("B", b)))
        print(f"| {name} | {cells} | {b / a:.3f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
