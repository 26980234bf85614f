#!/usr/bin/env python3
"""matmul_precision="bfloat16" against float32 on Fashion-MNIST: test accuracy, fit time
and loss curves of C1 (784-100-10) and C2 (784-512-256-10), sgd momentum 0.9, lr 0.01,
10 epochs, the same random_state; writes bench/bf16.json and, with matplotlib,
bench/bf16.png (the loss curves overlaid).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bf16_accuracy.py
"""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from mlp_rs import MLPClassifier
from sklearn.exceptions import ConvergenceWarning

from bench import FASHION_DIR as FASHION
from bench import read_idx  # bench/bench.py, beside this script

BENCH = Path(__file__).resolve().parent
SGD = dict(
    solver="sgd",
    momentum=0.9,
    learning_rate_init=0.01,
    max_iter=10,
    tol=0.0,
    n_iter_no_change=100,
    random_state=0,
)
CONFIGS = (("C1", (100,), 200), ("C2", (512, 256), 256))


def read(part):
    X = read_idx(FASHION / f"{part}-images-idx3-ubyte.gz")
    y = read_idx(FASHION / f"{part}-labels-idx1-ubyte.gz")
    return (X.reshape(len(X), -1) / 255.0).astype(np.float32), y


def plot(results):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(CONFIGS), figsize=(10, 4))
    for ax, (name, *_) in zip(axes, CONFIGS, strict=True):
        for precision, style in (("float32", "-"), ("bfloat16", "--")):
            r = results[f"{name}-{precision}"]
            label = f"{precision} (test accuracy {r['accuracy']:.4f})"
            ax.plot(range(1, 11), r["loss_curve"], style, label=label)
        ax.set_title(f"{name} on Fashion-MNIST")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.legend()
    fig.tight_layout()
    fig.savefig(BENCH / "bf16.png", dpi=100)


def main():
    if not FASHION.is_dir():
        sys.exit("needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = read("train")
    X_test, y_test = read("t10k")
    results = {}
    for name, hidden, batch in CONFIGS:
        for precision in (None, "bfloat16"):
            est = MLPClassifier(
                hidden, batch_size=batch, matmul_precision=precision, **SGD
            )
            start = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - start
            key = f"{name}-{precision or 'float32'}"
            results[key] = dict(
                accuracy=est.score(X_test, y_test),
                seconds=seconds,
                loss_curve=est.loss_curve_,
            )
            r = results[key]
            print(f"{key:12s} accuracy {r['accuracy']:.4f}  fit {seconds:.2f} s")
    with open(BENCH / "bf16.json", "w") as f:
        json.dump(results, f, indent=1)
    plot(results)


if __name__ == "__main__":
    main()
