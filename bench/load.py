#!/usr/bin/env python3
"""Speed under a competing load: the default n_jobs against n_jobs=1, quiet and with
one busy process per other core (started and stopped here).

=====  ==========================================================================
C1     Fashion-MNIST 30,000 rows, 784-100-10 relu, sgd momentum 0.9, batch 200,
       2 epochs, float32
C2     Fashion-MNIST 30,000 rows, 784-512-256-10, batch 256, 1 epoch, float32
W1     make_classification 50,000 x 20, 3 classes, ``MLPClassifier()`` defaults,
       10 epochs
W4     300 calls of ``predict_proba`` of 100 rows, a 784-100-10 float64 model (as
       ``bench/workloads.py``'s W4-100)
W9     40 calls of ``partial_fit`` of 500 rows (``bench/workloads.py``'s W9)
C1-bf  C1 with ``matmul_precision="bfloat16"`` (not run by default)
C2-bf  C2 with ``matmul_precision="bfloat16"`` (not run by default)
=====  ==========================================================================

For each condition (quiet, loaded) and workload, the default and ``n_jobs=1`` fits (or
W4's calls) run interleaved, ``--repeats`` times; the table gives medians (min-max) and
default / n_jobs=1 (below 1: the threads help; the load issue asks for at most 1.1
under load). Fashion-MNIST falls back to random data of its shape when it is not
installed.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/load.py [--repeats 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
from mlp_rs import MLPClassifier
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from workloads import w4_data, w9_data

from bench import FASHION_DIR as FASHION
from bench import read_idx  # bench/bench.py, beside this script

BUSY = "while True:\n    pass\n"
# the same, first pinned to one core (the argument)
PINNED = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\n" + BUSY


def fashion(n):
    try:
        X = read_idx(FASHION / "train-images-idx3-ubyte.gz")
        X = X.reshape(len(X), -1)
        y = read_idx(FASHION / "train-labels-idx1-ubyte.gz")
    except OSError:
        rng = np.random.RandomState(0)
        X, y = rng.randint(0, 256, (60_000, 784)), rng.randint(0, 10, 60_000)
    return (X[:n] / 255.0).astype(np.float32), y[:n]


def workloads():
    X, y = fashion(30_000)
    Xt, yt = make_classification(
        50_000, 20, n_informative=10, n_classes=3, random_state=0
    )
    sgd = dict(solver="sgd", momentum=0.9, learning_rate_init=0.01)
    exact = dict(tol=0.0, n_iter_no_change=10**6, random_state=0)
    cases = {
        "C1": (
            X,
            y,
            dict(hidden_layer_sizes=(100,), batch_size=200, max_iter=2, **sgd, **exact),
        ),
        "C2": (
            X,
            y,
            dict(
                hidden_layer_sizes=(512, 256),
                batch_size=256,
                max_iter=1,
                **sgd,
                **exact,
            ),
        ),
        "W1": (Xt, yt, dict(max_iter=10, **exact)),
    }
    bf16 = dict(matmul_precision="bfloat16")
    for name in ("C1", "C2"):
        X_, y_, params = cases[name]
        cases[name + "-bf"] = (X_, y_, {**params, **bf16})
    measures = {name: fit_measure(*case) for name, case in cases.items()}
    measures["W4"] = predict_measure()
    measures["W9"] = partial_fit_measure()
    return measures


def fit_measure(X, y, params):
    """A fit of ``params`` on X, y for a given n_jobs: its seconds and its model."""

    def measure(n_jobs):
        est = MLPClassifier(**params, n_jobs=n_jobs)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        return time.perf_counter() - start, model_bytes(est)

    return measure


def model_bytes(est):
    return [a.tobytes() for a in est.coefs_ + est.intercepts_]


def partial_fit_measure():
    """W9's calls for a given n_jobs: their seconds and the model."""
    X, y = w9_data()
    chunks = [(X[i : i + 500], y[i : i + 500]) for i in range(0, len(y), 500)]
    classes = np.unique(y)

    def measure(n_jobs):
        est = MLPClassifier(random_state=0, n_jobs=n_jobs)
        start = time.perf_counter()
        for X_chunk, y_chunk in chunks:
            est.partial_fit(X_chunk, y_chunk, classes=classes)
        return time.perf_counter() - start, model_bytes(est)

    return measure


def predict_measure(calls=300):
    """W4's calls for a given n_jobs: their seconds and the last call's output."""
    X, y = w4_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(100,), max_iter=1, random_state=0)
        est.fit(X, y)
    x = X[:100]

    def measure(n_jobs):
        est.set_params(n_jobs=n_jobs)
        start = time.perf_counter()
        for _ in range(calls):
            out = est.predict_proba(x)
        return time.perf_counter() - start, [out.tobytes()]

    return measure


def run(condition, repeats, cases):
    rows = []
    for name, measure in cases.items():
        times = {"default": [], "n_jobs=1": []}
        outputs = {}
        for r in range(repeats):
            order = [("default", None), ("n_jobs=1", 1)]
            for label, n_jobs in order if r % 2 == 0 else order[::-1]:
                time.sleep(0.3)
                seconds, outputs[label] = measure(n_jobs)
                times[label].append(seconds)
        same = outputs["default"] == outputs["n_jobs=1"]
        med = {k: statistics.median(v) for k, v in times.items()}
        cells = [
            f"{med[k]:.3f} s ({min(v):.3f}-{max(v):.3f})" for k, v in times.items()
        ]
        ratio = med["default"] / med["n_jobs=1"]
        rows.append(
            f"| {condition} | {name} | {cells[0]} | {cells[1]} | {ratio:.2f} | "
            f"{'yes' if same else 'NO'} |"
        )
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only",
        default="C1,C2,W1",
        help="comma-separated, of C1,C2,W1,W4,W9,C1-bf,C2-bf",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin busy process k to core k (1, 2, ...), leaving core 0 free",
    )
    args = parser.parse_args()
    cases = {k: v for k, v in workloads().items() if k in args.only.split(",")}
    cores = os.cpu_count() or 1
    print(f"{cores} cores; load average {os.getloadavg()[0]:.2f} before the quiet runs")
    print(
        "\n| condition | workload | default n_jobs | n_jobs=1 | default / n_jobs=1 "
        "| same model / outputs |\n|---|---|---|---|---|---|"
    )
    run("quiet", args.repeats, cases)
    busy = [
        subprocess.Popen(
            [sys.executable, "-c", PINNED, str(k)]
            if args.pin
            else [sys.executable, "-c", BUSY]
        )
        for k in range(1, max(cores, 2))
    ]
    try:
        time.sleep(1.0)
        pinned = ", pinned" if args.pin else ""
        run(f"{len(busy)} busy process(es){pinned}", args.repeats, cases)
    finally:
        for p in busy:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
