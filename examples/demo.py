#!/usr/bin/env python3
"""Benchmark mlp_rs.MLPClassifier against scikit-learn's MLPClassifier.

Both estimators are trained with identical settings on identical float32 data
(Fashion-MNIST when the Debian package ``dataset-fashion-mnist`` is installed,
otherwise scikit-learn's small ``digits`` data set), interleaved, and the
script reports test accuracy, fit time and the speed-up of mlp_rs.

Usage::

    python examples/demo.py [--epochs N] [--repeats R]
                            [--dataset {auto,fashion-mnist,digits}]
                            [--n-jobs J] [--no-warmup] [--json PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import struct
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

# isort: split
import mlp_rs
from mlp_rs import MLPClassifier as RsMLPClassifier

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "X_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "X_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
DEFAULT_EPOCHS = {"fashion-mnist": 10, "digits": 30}
# Idle time before each timed fit: OpenBLAS's threads keep spinning ~0.1 s after a BLAS
# call (scikit-learn's fit and score) and would slow whatever is timed next (see
# README, "Threads").
COOL_DOWN_S = 0.3


class DatasetError(Exception):
    """A data file is missing or is not a valid IDX file."""


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read a gzip'd IDX file (unsigned-byte images or labels) into uint8."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc

    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}[expected_magic]
    header_len = 4 * (1 + ndim)
    if len(raw) < header_len:
        raise DatasetError(f"{path}: truncated header ({len(raw)} bytes)")
    magic, *dims = struct.unpack(f">{1 + ndim}I", raw[:header_len])
    if magic != expected_magic:
        raise DatasetError(
            f"{path}: bad magic number {magic}, expected {expected_magic}"
        )
    expected_len = header_len + int(np.prod(dims))
    if len(raw) != expected_len:
        raise DatasetError(
            f"{path}: {len(raw)} bytes, expected {expected_len} for shape {tuple(dims)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def load_fashion_mnist(directory: Path = FASHION_DIR):
    arrays = {}
    for key, name in FASHION_FILES.items():
        path = directory / name
        if not path.is_file():
            raise DatasetError(
                f"{path} not found (apt-get install dataset-fashion-mnist)"
            )
        magic = IDX_IMAGES_MAGIC if key.startswith("X") else IDX_LABELS_MAGIC
        arrays[key] = read_idx(path, magic)

    for split in ("train", "test"):
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X.shape[0] != y.shape[0]:
            raise DatasetError(f"{split}: {X.shape[0]} images but {y.shape[0]} labels")
        if y.size and y.max() > 9:
            raise DatasetError(f"{split}: label {int(y.max())} out of range 0..9")
        # Flatten 28x28 -> 784 and scale the pixels to [0, 1].
        arrays[f"X_{split}"] = X.reshape(X.shape[0], -1).astype(
            np.float32
        ) / np.float32(255)
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays["X_train"], arrays["X_test"], arrays["y_train"], arrays["y_test"]


def load_digits_split():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y.astype(np.int64), test_size=0.25, random_state=0)


def load_data(choice: str, data_dir: Path):
    """Return (name, note, X_train, X_test, y_train, y_test)."""
    if choice == "digits":
        return ("digits", "requested with --dataset digits", *load_digits_split())
    try:
        return ("fashion-mnist", f"from {data_dir}", *load_fashion_mnist(data_dir))
    except DatasetError as exc:
        if choice == "fashion-mnist":
            raise
        note = f"Fashion-MNIST unavailable ({exc}); FALLING BACK to sklearn digits"
        return ("digits", note, *load_digits_split())


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------
def model_params(epochs: int) -> dict:
    return {
        "hidden_layer_sizes": (100,),
        "activation": "relu",
        "solver": "sgd",
        "momentum": 0.9,
        "batch_size": 200,
        "learning_rate_init": 0.01,
        "max_iter": epochs,
        # Keep sklearn's default tol but make the no-improvement stop
        # impossible, so that both libraries run exactly `epochs` epochs.
        "n_iter_no_change": epochs + 1,
        "random_state": 0,
    }


def fit_and_score(make_model, X_train, y_train, X_test, y_test) -> dict:
    model = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    accuracy = float(model.score(X_test, y_test))
    score_time = time.perf_counter() - t0
    return {
        "fit_time": fit_time,
        "score_time": score_time,
        "accuracy": accuracy,
        "n_iter": int(model.n_iter_),
        "final_loss": float(model.loss_),
    }


def summarize(runs: list[dict]) -> dict:
    fit_times = [r["fit_time"] for r in runs]
    accuracies = [r["accuracy"] for r in runs]
    n_iter = runs[-1]["n_iter"]
    median_fit = statistics.median(fit_times)
    return {
        "fit_time_median": median_fit,
        "fit_times": fit_times,
        "seconds_per_epoch": median_fit / n_iter if n_iter else float("nan"),
        "accuracy": accuracies[-1],
        "accuracies": accuracies,
        "n_iter": n_iter,
        "final_loss": runs[-1]["final_loss"],
        "score_time_median": statistics.median(r["score_time"] for r in runs),
    }


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    parts = {
        f"{p.get('internal_api')} ({p.get('num_threads')} threads)"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    }
    return ", ".join(sorted(parts)) or "none found"


def fmt_load(load: tuple) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs (max_iter); default 10 for fashion-mnist, 30 for digits",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="fits per library, interleaved; the median time is reported",
    )
    parser.add_argument(
        "--dataset", choices=("auto", "fashion-mnist", "digits"), default="auto"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=FASHION_DIR,
        help=f"directory of the Fashion-MNIST idx files (default {FASHION_DIR})",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="n_jobs for mlp_rs (default: the library's default)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed 1-epoch warm-up fit of each library",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the results as JSON to PATH",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    try:
        name, note, X_train, X_test, y_train, y_test = load_data(
            args.dataset, args.data_dir
        )
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[name]
    params = model_params(epochs)
    rs_params = (
        dict(params) if args.n_jobs is None else dict(params, n_jobs=args.n_jobs)
    )

    def make_sklearn():
        return SkMLPClassifier(**params)

    def make_mlp_rs():
        return RsMLPClassifier(**rs_params)

    n_jobs = "default" if args.n_jobs is None else args.n_jobs
    rule = "=" * 68
    print(rule)
    print("mlp_rs vs scikit-learn: MLPClassifier benchmark")
    print(rule)
    print(f"dataset      : {name} ({note})")
    print(
        f"train / test : X {X_train.shape} / {X_test.shape}, dtype {X_train.dtype}; "
        f"{len(np.unique(y_train))} classes"
    )
    print(
        f"model        : {X_train.shape[1]}-100-{len(np.unique(y_train))} relu, sgd "
        f"momentum=0.9, batch_size=200, lr=0.01, {epochs} epochs, random_state=0"
    )
    print(f"repeats      : {args.repeats} (interleaved; median fit time reported)")
    print(
        f"versions     : python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, "
        f"mlp_rs {getattr(mlp_rs, '__version__', 'unknown')}"
    )
    print(
        f"machine      : os.cpu_count()={os.cpu_count()}, mlp_rs n_jobs={n_jobs}, "
        f"numpy BLAS: {blas_info()}"
    )
    load_before = os.getloadavg()
    print(f"load average : {fmt_load(load_before)} (1/5/15 min, before)")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype is not None:
        print(
            f"note         : OPENBLAS_CORETYPE={coretype} is set; this can slow "
            "numpy's OpenBLAS and thus scikit-learn's timings"
        )
    print(rule, flush=True)

    runs = {"scikit-learn": [], "mlp_rs": []}
    makers = {"scikit-learn": make_sklearn, "mlp_rs": make_mlp_rs}
    if not args.no_warmup:
        # One untimed epoch on a slice for each library: library/BLAS/thread-pool
        # start-up costs should not land in the first timed fit.
        n_warm = min(2000, X_train.shape[0])
        for lib, cls in (
            ("scikit-learn", SkMLPClassifier),
            ("mlp_rs", RsMLPClassifier),
        ):
            warm_params = dict(rs_params if lib == "mlp_rs" else params, max_iter=1)
            fit_and_score(
                lambda cls=cls, p=warm_params: cls(**p),
                X_train[:n_warm],
                y_train[:n_warm],
                X_test[:100],
                y_test[:100],
            )
        print(f"  warm-up: 1 untimed epoch on {n_warm} rows per library", flush=True)
    for rep in range(args.repeats):
        # Alternate which library goes first so neither always gets a warm cache.
        order = (
            ["scikit-learn", "mlp_rs"] if rep % 2 == 0 else ["mlp_rs", "scikit-learn"]
        )
        for lib in order:
            time.sleep(COOL_DOWN_S)
            result = fit_and_score(makers[lib], X_train, y_train, X_test, y_test)
            runs[lib].append(result)
            print(
                f"  repeat {rep + 1}/{args.repeats}  {lib:<12} "
                f"fit {result['fit_time']:8.3f} s"
                f"  accuracy {result['accuracy']:.4f}  epochs {result['n_iter']}",
                flush=True,
            )

    summary = {lib: summarize(r) for lib, r in runs.items()}
    sk, rs = summary["scikit-learn"], summary["mlp_rs"]
    speedup = sk["fit_time_median"] / rs["fit_time_median"]
    acc_diff = abs(sk["accuracy"] - rs["accuracy"])
    load_after = os.getloadavg()

    print(rule)
    print(
        f"{'':<14}{'accuracy':>10}{'fit time (s)':>15}{'s/epoch':>10}{'epochs':>8}"
        f"{'final loss':>12}"
    )
    for lib, s in summary.items():
        print(
            f"{lib:<14}{s['accuracy']:>10.4f}{s['fit_time_median']:>15.3f}"
            f"{s['seconds_per_epoch']:>10.4f}{s['n_iter']:>8d}{s['final_loss']:>12.4f}"
        )
    print(rule)
    print(f"speed-up (sklearn time / mlp_rs time): {speedup:.2f}x")
    print(f"|accuracy difference|                : {acc_diff:.4f}")
    print(f"load average : {fmt_load(load_after)} (1/5/15 min, after)")
    for lib, s in summary.items():
        if s["n_iter"] != epochs:
            print(f"warning: {lib} ran {s['n_iter']} epochs, expected {epochs}")
        if len(set(s["accuracies"])) > 1:
            print(
                f"note: {lib} accuracy varied across repeats: "
                + ", ".join(f"{a:.4f}" for a in s["accuracies"])
            )

    if args.json is not None:
        report = {
            "dataset": name,
            "dataset_note": note,
            "n_train": int(X_train.shape[0]),
            "n_test": int(X_test.shape[0]),
            "n_features": int(X_train.shape[1]),
            "dtype": str(X_train.dtype),
            "epochs": epochs,
            "repeats": args.repeats,
            "params": {
                k: list(v) if isinstance(v, tuple) else v for k, v in params.items()
            },
            "mlp_rs_n_jobs": args.n_jobs,
            "cpu_count": os.cpu_count(),
            "loadavg_before": list(load_before),
            "loadavg_after": list(load_after),
            "openblas_coretype": coretype,
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scikit-learn": sklearn.__version__,
                "mlp_rs": getattr(mlp_rs, "__version__", None),
            },
            "results": summary,
            "speedup": speedup,
            "accuracy_abs_diff": acc_diff,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
