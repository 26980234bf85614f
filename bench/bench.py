#!/usr/bin/env python3
"""Benchmark mlp_rs against scikit-learn (and PyTorch when it is importable).

One run measures the machine's GEMM peak (numpy matmul), then trains
scikit-learn's and mlp_rs's ``MLPClassifier`` side by side -- interleaved, the
order alternating per repetition, each timed run after a short idle pause (see
``COOL_DOWN_S``) -- on these configurations:

=======  ==================================================================
C1       Fashion-MNIST 784-100-10 relu, sgd momentum 0.9, batch 200,
         lr 0.01; float32 (C1-f32) and float64 (C1-f64)
C2       784-512-256-10, batch 256, same sgd; C2-f32 and C2-f64
C3       adam (lr 0.001, its default) with C1's sizes and batch; float32
C4       scikit-learn digits 64-64-10, batch 32, float64 (per-batch overhead)
C5       predict_proba on the 60,000 training rows with a (1-epoch) C2 model,
         float32
threads  C2-f32 with mlp_rs n_jobs=1 and n_jobs=2
bf16     C1-f32, C2-f32 and C3-f32 with mlp_rs's matmul_precision="bfloat16"
         beside float32 mlp_rs (the ratio's baseline), test accuracy included
memory   peak RSS of a 1-epoch fit (hidden (32,), sgd) on a 1,000,000 x 100
         float32 X, relative to X.nbytes; MLPClassifier and MLPRegressor of
         each library, each in a fresh subprocess
=======  ==================================================================

Every fit runs exactly E epochs (tol=0, n_iter_no_change=E+1; n_iter_ is
checked), after one untimed 1-epoch warm-up fit per library and dtype.  The
Markdown report (medians with min-max) goes to stdout, progress to stderr; all
raw measurements go to a JSON file, and a PNG bar chart beside it.  PyTorch
joins when importable.  ``--quick`` (1 repetition, 1 epoch, 10,000 training
rows, a 2048x2048 GEMM) is a smoke test, not a measurement.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench.py
    python bench/bench.py --quick       # smoke run, well under a minute
    python bench/bench.py [--repeats R] [--epochs E] [--only C1,C5,memory]
                          [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import mlp_rs
import numpy as np
import sklearn
from mlp_rs import MLPClassifier as RsMLPClassifier
from mlp_rs import MLPRegressor as RsMLPRegressor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

BENCH_DIR = Path(__file__).resolve().parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
N_CLASSES = 10
ALPHA = 1e-4  # scikit-learn's default L2 penalty, used by every library
MOMENTUM = 0.9
SEED = 0

DEFAULT_REPEATS = 5
DEFAULT_EPOCHS = {"fashion": 3, "digits": 20}
QUICK_TRAIN_ROWS = 10_000
# Idle time before each timed run. After a BLAS call OpenBLAS keeps its worker
# threads spinning for about 0.1 s; on a 2-core machine they take a core from
# whatever runs next (measured: a 2-thread predict_proba 1.74x slower right after
# a numpy matmul, 1.05x after 0.1 s, unaffected after 0.2 s). Without the pause,
# every run that follows a scikit-learn run (and its BLAS-based scoring) would be
# timed against those spinning threads.
COOL_DOWN_S = 0.3
WARMUP_ROWS = 2_000
GEMM_SIZE, GEMM_REPS = 4096, 5
QUICK_GEMM_SIZE, QUICK_GEMM_REPS = 2048, 3
MEMORY_ROWS, MEMORY_FEATURES = 1_000_000, 100
SKLEARN, MLP_RS, TORCH = "scikit-learn", "mlp_rs", "pytorch"
ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def log(message: str) -> None:
    """Progress output: to stderr, so stdout carries only the Markdown report."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """One training configuration: network, optimizer, batches and dtype."""

    key: str
    group: str
    dataset: str  # "fashion" or "digits"
    hidden: tuple[int, ...]
    solver: str
    batch_size: int
    dtype: type
    learning_rate: float = 0.01
    time_unit: str = "s"  # how the per-epoch time is shown: "s" or "ms"

    def layer_sizes(self, n_features: int) -> list[int]:
        """Units per layer, input and output included."""
        return [n_features, *self.hidden, N_CLASSES]

    def label(self, n_features: int) -> str:
        """Short description, e.g. ``C1-f32 784-100-10 sgd lr0.01 b200``."""
        sizes = "-".join(map(str, self.layer_sizes(n_features)))
        return (
            f"{self.key} {sizes} {self.solver} lr{self.learning_rate:g} "
            f"b{self.batch_size}"
        )

    def params(self, epochs: int) -> dict:
        """Estimator parameters that make every fit run exactly ``epochs``."""
        return {
            "hidden_layer_sizes": self.hidden,
            "activation": "relu",
            "solver": self.solver,
            "alpha": ALPHA,
            "batch_size": self.batch_size,
            "learning_rate_init": self.learning_rate,
            "momentum": MOMENTUM,
            "nesterovs_momentum": True,
            "max_iter": epochs,
            "tol": 0.0,
            "n_iter_no_change": epochs + 1,
            "shuffle": True,
            "random_state": SEED,
        }


TRAIN_CONFIGS = (
    TrainConfig("C1-f32", "C1", "fashion", (100,), "sgd", 200, np.float32),
    TrainConfig("C1-f64", "C1", "fashion", (100,), "sgd", 200, np.float64),
    TrainConfig("C2-f32", "C2", "fashion", (512, 256), "sgd", 256, np.float32),
    TrainConfig("C2-f64", "C2", "fashion", (512, 256), "sgd", 256, np.float64),
    TrainConfig("C3-f32", "C3", "fashion", (100,), "adam", 200, np.float32, 0.001),
    TrainConfig("C4-f64", "C4", "digits", (64,), "sgd", 32, np.float64, time_unit="ms"),
)
C1_F32, C2_F32 = TRAIN_CONFIGS[0], TRAIN_CONFIGS[2]
PREDICT_KEY, THREADS_KEY, MEMORY_KEY, BF16_KEY = "C5", "threads", "memory", "bf16"
MEMORY_CONFIG = TrainConfig(
    "memory", MEMORY_KEY, "random", (32,), "sgd", 200, np.float32
)
GROUPS = ("C1", "C2", "C3", "C4", PREDICT_KEY, THREADS_KEY, BF16_KEY, MEMORY_KEY)
# the float32 Fashion-MNIST configs, each also timed with bfloat16 products
BF16_CONFIGS = tuple(
    c for c in TRAIN_CONFIGS if c.dtype == np.float32 and c.dataset == "fashion"
)


# --------------------------------------------------------------------------
# FLOP counts
# --------------------------------------------------------------------------
def forward_flops(n_samples: int, sizes: list[int]) -> int:
    """FLOPs of one forward pass: 2*N*a*b per a->b layer."""
    return sum(2 * n_samples * a * b for a, b in pairwise(sizes))


def train_flops(n_samples: int, sizes: list[int]) -> int:
    """FLOPs of one epoch: forward, weight gradient and input gradient (2*N*a*b
    each), without the input gradient of the first layer."""
    backward = sum(
        (2 if i == 0 else 4) * n_samples * a * b
        for i, (a, b) in enumerate(pairwise(sizes))
    )
    return forward_flops(n_samples, sizes) + backward


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
@dataclass
class Dataset:
    """A train/test split, features stored raw and cast (then scaled) on demand."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    scale: float
    _cast: dict = field(default_factory=dict, repr=False)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def split(self, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(X_train, y_train, X_test, y_test) with X as C-contiguous ``dtype``."""
        key = np.dtype(dtype).name
        if key not in self._cast:
            self._cast[key] = (
                self._scaled(self.X_train, dtype),
                self.y_train,
                self._scaled(self.X_test, dtype),
                self.y_test,
            )
        return self._cast[key]

    def _scaled(self, X: np.ndarray, dtype) -> np.ndarray:
        return np.ascontiguousarray(X.astype(dtype) / dtype(self.scale))


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip'd IDX file of unsigned bytes (images or labels)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion(n_train: int | None, directory: Path = FASHION_DIR) -> Dataset:
    """Fashion-MNIST (pixels / 255); ``n_train`` random training rows if given."""
    parts = {
        split: (
            read_idx(directory / f"{prefix}-images-idx3-ubyte.gz"),
            read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64),
        )
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }
    (X_train, y_train), (X_test, y_test) = parts["train"], parts["test"]
    if n_train is not None and n_train < len(X_train):
        rows = np.random.default_rng(SEED).choice(len(X_train), n_train, replace=False)
        X_train, y_train = X_train[rows], y_train[rows]
    return Dataset(
        "Fashion-MNIST",
        X_train.reshape(len(X_train), -1),
        y_train,
        X_test.reshape(len(X_test), -1),
        y_test,
        scale=255.0,
    )


def load_digits_split() -> Dataset:
    """scikit-learn's 8x8 digits (pixels / 16), 25% held out for testing."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y.astype(np.int64), test_size=0.25, random_state=SEED
    )
    return Dataset("digits", X_train, y_train, X_test, y_test, scale=16.0)


# --------------------------------------------------------------------------
# Libraries
# --------------------------------------------------------------------------
class EstimatorLibrary:
    """A scikit-learn compatible MLPClassifier (scikit-learn's or mlp_rs's)."""

    def __init__(self, name: str, estimator_class, **extra_params):
        self.name = name
        self.estimator_class = estimator_class
        self.extra_params = extra_params

    def fit(self, cfg: TrainConfig, X, y, epochs: int):
        model = self.estimator_class(**cfg.params(epochs), **self.extra_params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        return model

    @staticmethod
    def n_iter(model) -> int:
        return int(model.n_iter_)

    @staticmethod
    def accuracy(model, X, y) -> float:
        return float(model.score(X, y))

    @staticmethod
    def predict_proba(model, X) -> np.ndarray:
        return model.predict_proba(X)


class TorchLibrary:
    """PyTorch (CPU) training the same network with the same optimizer.

    Weights get scikit-learn's Glorot-uniform initialisation; batches are drawn
    from a fresh shuffle each epoch, as scikit-learn does.
    """

    name = TORCH
    NOTE = (
        "PyTorch: same layers, Glorot init, batches and optimizer "
        "(SGD momentum=0.9 nesterov=True, or Adam); scikit-learn's L2 term "
        "alpha/2*||W||^2/batch_size is applied as weight_decay=alpha/batch_size "
        "on the weights only (matches scikit-learn up to its last, shorter "
        "batch); a different random stream, so accuracies differ slightly."
    )

    def __init__(self, torch):
        self.torch = torch
        torch.set_num_threads(os.cpu_count() or 1)

    def _network(self, sizes: list[int], dtype):
        torch = self.torch
        generator = torch.Generator().manual_seed(SEED)
        layers = []
        for i, (a, b) in enumerate(pairwise(sizes)):
            linear = torch.nn.Linear(a, b, dtype=dtype)
            bound = (6.0 / (a + b)) ** 0.5  # scikit-learn's init for relu
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.uniform_(-bound, bound, generator=generator)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    def _optimizer(self, cfg: TrainConfig, network):
        torch = self.torch
        linears = [m for m in network if isinstance(m, torch.nn.Linear)]
        groups = [
            {
                "params": [m.weight for m in linears],
                "weight_decay": ALPHA / cfg.batch_size,
            },
            {"params": [m.bias for m in linears], "weight_decay": 0.0},
        ]
        if cfg.solver == "adam":
            return torch.optim.Adam(
                groups, lr=cfg.learning_rate, betas=(0.9, 0.999), eps=1e-8
            )
        return torch.optim.SGD(
            groups, lr=cfg.learning_rate, momentum=MOMENTUM, nesterov=True
        )

    def fit(self, cfg: TrainConfig, X, y, epochs: int):
        torch = self.torch
        X_t = torch.from_numpy(X)
        y_t = torch.from_numpy(np.asarray(y, dtype=np.int64))
        network = self._network(cfg.layer_sizes(X.shape[1]), X_t.dtype)
        optimizer = self._optimizer(cfg, network)
        loss_fn = torch.nn.functional.cross_entropy
        rng = np.random.default_rng(SEED)
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(X)))
            for start in range(0, len(X), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(network(X_t[batch]), y_t[batch]).backward()
                optimizer.step()
        network.epochs_run = epochs
        return network

    @staticmethod
    def n_iter(model) -> int:
        return model.epochs_run

    def predict_proba(self, model, X) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()

    def accuracy(self, model, X, y) -> float:
        predicted = self.predict_proba(model, X).argmax(axis=1)
        return float(np.mean(predicted == y))


def make_libraries() -> tuple[list, list[str]]:
    """scikit-learn, mlp_rs (default n_jobs) and, when importable and working,
    PyTorch; plus notes about PyTorch to print under the tables."""
    libraries = [
        EstimatorLibrary(SKLEARN, SkMLPClassifier),
        EstimatorLibrary(MLP_RS, RsMLPClassifier),
    ]
    try:
        import torch
    except ImportError:
        return libraries, []
    library = TorchLibrary(torch)
    try:  # a tiny fit, so that a broken install skips PyTorch, not the run
        rng = np.random.default_rng(SEED)
        X = rng.standard_normal((64, 8), dtype=np.float32)
        y = np.arange(64) % N_CLASSES
        library.accuracy(library.fit(C1_F32, X, y, 1), X, y)
    except Exception as exc:  # any failure at all means "skip PyTorch"
        return libraries, [f"PyTorch skipped: smoke test failed: {exc!r}"]
    return [*libraries, library], [TorchLibrary.NOTE]


# --------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or platform.processor()."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def thread_pools() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = (
        "user_api",
        "internal_api",
        "version",
        "num_threads",
        "threading_layer",
        "architecture",
        "prefix",
    )
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def machine_info(libraries: list) -> dict:
    """CPU, OS, library versions, thread pools and thread-related env vars."""
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "mlp_rs": getattr(mlp_rs, "__version__", None),
    }
    for library in libraries:
        if isinstance(library, TorchLibrary):
            versions["torch"] = library.torch.__version__
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "versions": versions,
        "thread_pools": thread_pools(),
        "env": {name: os.environ.get(name) for name in ENV_VARS},
    }


def measure_gemm_peak(size: int, reps: int) -> dict:
    """Best and median GFLOPS of numpy's (BLAS) size x size matmul per dtype."""
    rng = np.random.default_rng(SEED)
    peaks = {}
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((size, size)).astype(dtype)
        b = rng.standard_normal((size, size)).astype(dtype)
        out = np.matmul(a, b)  # warm-up, allocates the output
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
        gflops = [2 * size**3 / t / 1e9 for t in times]
        name = np.dtype(dtype).name
        peaks[name] = {
            "size": size,
            "times": times,
            "gflops_best": max(gflops),
            "gflops_median": statistics.median(gflops),
        }
        log(f"GEMM {name} {size}x{size}: best {max(gflops):.1f} GFLOPS")
    return peaks


# --------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    """Median, min and max of a list of measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def interleave(libraries: list, repeats: int, measure: Callable, tag: str) -> dict:
    """Call ``measure(library)`` ``repeats`` times per library, alternating the
    order every repetition, each after a pause of ``COOL_DOWN_S``; return each
    library's list of result dicts."""
    runs = {library.name: [] for library in libraries}
    for rep in range(repeats):
        order = libraries if rep % 2 == 0 else libraries[::-1]
        for library in order:
            time.sleep(COOL_DOWN_S)
            result = measure(library)
            runs[library.name].append(result)
            log(
                f"{tag} rep {rep + 1}/{repeats} {library.name:<16} "
                f"{result['time']:8.3f} s"
            )
    return runs


def warm_up(libraries: list, cfg: TrainConfig, data: Dataset, done: set) -> None:
    """One untimed 1-epoch fit per library and dtype on a small slice."""
    dtype = np.dtype(cfg.dtype).name
    X, y, _, _ = data.split(cfg.dtype)
    for library in libraries:
        if (library.name, dtype) not in done:
            library.fit(cfg, X[:WARMUP_ROWS], y[:WARMUP_ROWS], 1)
            done.add((library.name, dtype))


def bench_training(
    cfg: TrainConfig,
    data: Dataset,
    libraries: list,
    repeats: int,
    epochs: int,
    peaks: dict,
) -> dict:
    """Time ``repeats`` interleaved fits of ``epochs`` epochs per library; the
    first library is the speed-up baseline."""
    X, y, X_test, y_test = data.split(cfg.dtype)
    sizes = cfg.layer_sizes(data.n_features)
    flops = train_flops(len(X), sizes)

    def measure(library) -> dict:
        start = time.perf_counter()
        model = library.fit(cfg, X, y, epochs)
        elapsed = time.perf_counter() - start
        curve = getattr(model, "loss_curve_", None)
        return {
            "time": elapsed,
            "n_iter": library.n_iter(model),
            "accuracy": library.accuracy(model, X_test, y_test),
            "loss_curve": None if curve is None else [float(v) for v in curve],
        }

    runs = interleave(libraries, repeats, measure, cfg.key)
    per_epoch = {
        name: [r["time"] / epochs for r in results] for name, results in runs.items()
    }
    return {
        "label": cfg.label(data.n_features),
        "dataset": data.name,
        "dtype": np.dtype(cfg.dtype).name,
        "layer_sizes": sizes,
        "params": {**cfg.params(epochs), "hidden_layer_sizes": list(cfg.hidden)},
        "n_train": len(X),
        "n_test": len(X_test),
        "epochs": epochs,
        "repeats": repeats,
        "time_unit": cfg.time_unit,
        "flops_per_epoch": flops,
        "baseline": libraries[0].name,
        "libraries": summarize(
            per_epoch, runs, flops, peaks[np.dtype(cfg.dtype).name]["gflops_best"]
        ),
    }


def summarize(times: dict, runs: dict, flops: int, peak_gflops: float) -> dict:
    """Per library: raw runs, time spread, GFLOPS, % of peak and speed-up over
    the first library (times are per epoch, or per call for inference)."""
    baseline = statistics.median(next(iter(times.values())))
    summary = {}
    for name, values in times.items():
        median = statistics.median(values)
        gflops = flops / median / 1e9
        summary[name] = {
            "runs": runs[name],
            "time": spread(values),
            "gflops": gflops,
            "pct_peak": 100.0 * gflops / peak_gflops,
            "speedup": baseline / median,
        }
        accuracies = [r["accuracy"] for r in runs[name] if "accuracy" in r]
        if accuracies:
            summary[name]["accuracy"] = spread(accuracies)
    return summary


def bench_inference(data: Dataset, libraries: list, repeats: int, peaks: dict) -> dict:
    """C5: time predict_proba of a (1-epoch) C2 float32 model on the training
    rows; report rows/s and GFLOPS."""
    cfg = C2_F32
    X, y, _, _ = data.split(cfg.dtype)
    models = {}
    for library in libraries:
        models[library.name] = library.fit(cfg, X, y, 1)
        library.predict_proba(models[library.name], X[:WARMUP_ROWS])  # warm-up
    sizes = cfg.layer_sizes(data.n_features)
    flops = forward_flops(len(X), sizes)

    def measure(library) -> dict:
        start = time.perf_counter()
        library.predict_proba(models[library.name], X)
        return {"time": time.perf_counter() - start}

    runs = interleave(libraries, repeats, measure, PREDICT_KEY)
    times = {name: [r["time"] for r in results] for name, results in runs.items()}
    summary = summarize(times, runs, flops, peaks["float32"]["gflops_best"])
    for entry in summary.values():
        entry["rows_per_s"] = len(X) / entry["time"]["median"]
    return {
        "label": f"{PREDICT_KEY} predict_proba {'-'.join(map(str, sizes))} f32",
        "dtype": "float32",
        "layer_sizes": sizes,
        "n_rows": len(X),
        "repeats": repeats,
        "flops_per_call": flops,
        "baseline": libraries[0].name,
        "libraries": summary,
    }


def thread_scaling_libraries() -> list:
    """mlp_rs with n_jobs=1 and n_jobs=2 (n_jobs=1 is the ratio's baseline)."""
    return [
        EstimatorLibrary(f"{MLP_RS} n_jobs={n}", RsMLPClassifier, n_jobs=n)
        for n in (1, 2)
    ]


def bf16_libraries() -> list:
    """mlp_rs with float32 products (the ratio's baseline) and with bfloat16 ones."""
    return [
        EstimatorLibrary(f"{MLP_RS} float32", RsMLPClassifier),
        EstimatorLibrary(
            f"{MLP_RS} bfloat16", RsMLPClassifier, matmul_precision="bfloat16"
        ),
    ]


# --------------------------------------------------------------------------
# Memory (each library in a fresh subprocess)
# --------------------------------------------------------------------------
def read_rss_kib() -> dict:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process, KiB."""
    try:
        with open("/proc/self/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}
    except (OSError, KeyError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":  # bytes there, KiB on Linux
            peak //= 1024
        return {"VmRSS": None, "VmHWM": peak}


MEMORY_ESTIMATORS = {
    (SKLEARN, "MLPClassifier"): SkMLPClassifier,
    (SKLEARN, "MLPRegressor"): SkMLPRegressor,
    (MLP_RS, "MLPClassifier"): RsMLPClassifier,
    (MLP_RS, "MLPRegressor"): RsMLPRegressor,
}


def memory_child(library_name: str, estimator: str, rows: int) -> int:
    """Subprocess body: build X (and y: 10 random classes, or one float32
    target), record RSS, fit 1 epoch, print the RSS figures as JSON."""
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((rows, MEMORY_FEATURES), dtype=np.float32)
    if estimator == "MLPClassifier":
        y = rng.integers(0, N_CLASSES, rows)
    else:
        y = rng.standard_normal(rows, dtype=np.float32)
    before = read_rss_kib()
    library = EstimatorLibrary(library_name, MEMORY_ESTIMATORS[library_name, estimator])
    start = time.perf_counter()
    model = library.fit(MEMORY_CONFIG, X, y, 1)
    fit_time = time.perf_counter() - start
    after = read_rss_kib()
    report = {
        "X_shape": list(X.shape),
        "X_nbytes": X.nbytes,
        "y_nbytes": y.nbytes,
        "baseline_rss_kib": before["VmRSS"],
        "hwm_before_fit_kib": before["VmHWM"],
        "peak_rss_kib": after["VmHWM"],
        "fit_time": fit_time,
        "n_iter": library.n_iter(model),
    }
    print(json.dumps(report))
    return 0


def run_memory_child(library_name: str, estimator: str, rows: int) -> dict:
    """Run :func:`memory_child` in a fresh interpreter and add the ratio
    (peak - baseline) / X.nbytes to its figures."""
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--memory-child", library_name]
    command += ["--memory-estimator", estimator, "--memory-rows", str(rows)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        log(f"memory {library_name} {estimator}: child failed ({done.returncode})")
        return {"error": done.stderr.strip()[-2000:]}
    entry = json.loads(done.stdout.strip().splitlines()[-1])
    baseline = entry["baseline_rss_kib"] or entry["hwm_before_fit_kib"]
    entry["extra_over_X"] = (
        (entry["peak_rss_kib"] - baseline) * 1024 / entry["X_nbytes"]
    )
    log(
        f"memory {library_name} {estimator}: "
        f"peak {entry['peak_rss_kib'] / 1024:.0f} MiB"
    )
    return entry


def bench_memory(rows: int) -> dict:
    """Peak RSS of a 1-epoch fit per library and estimator, each in a fresh
    interpreter (classifier: the figure includes the one-hot label matrix)."""
    results = {
        f"{library} {estimator}": run_memory_child(library, estimator, rows)
        for estimator in ("MLPClassifier", "MLPRegressor")
        for library in (SKLEARN, MLP_RS)
    }
    return {
        "config": {
            **MEMORY_CONFIG.params(1),
            "hidden_layer_sizes": list(MEMORY_CONFIG.hidden),
        },
        "rows": rows,
        "features": MEMORY_FEATURES,
        "libraries": results,
    }


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_spread(values: dict, unit: str = "s", digits: int = 3) -> str:
    """``median unit [min-max]``, in seconds or milliseconds."""
    factor = 1e3 if unit == "ms" else 1.0
    med, lo, hi = (values[k] * factor for k in ("median", "min", "max"))
    return f"{med:.{digits}f} {unit} [{lo:.{digits}f}-{hi:.{digits}f}]"


def fmt_accuracy(values: dict | None) -> str:
    """Median accuracy, with the range only if the repetitions differ."""
    if values is None:
        return "-"
    if values["min"] == values["max"]:
        return f"{values['median']:.4f}"
    return f"{values['median']:.4f} [{values['min']:.4f}-{values['max']:.4f}]"


def training_rows(result: dict) -> list[list[str]]:
    """Table rows of one training configuration, one per library."""
    rows = []
    unit = result["time_unit"]
    for i, (name, lib) in enumerate(result["libraries"].items()):
        rows.append(
            [
                result["label"] if i == 0 else "",
                name,
                fmt_spread(lib["time"], unit, 2 if unit == "ms" else 3),
                f"{lib['gflops']:.1f}",
                f"{lib['pct_peak']:.1f}%",
                f"{lib['speedup']:.2f}x",
                fmt_accuracy(lib.get("accuracy")),
            ]
        )
    return rows


def render_header(report: dict) -> str:
    """Machine, versions, load and settings as a Markdown bullet list."""
    machine, settings = report["machine"], report["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    pools = "; ".join(
        f"{p['prefix']} ({p['internal_api']} {p['version'] or ''}, "
        f"{p['num_threads']} threads, core type {p['architecture']})"
        for p in machine["thread_pools"]
    )
    lines = [
        "# mlp_rs benchmark",
        "",
        f"- machine: {machine['cpu_model']}, os.cpu_count()={machine['cpu_count']}, "
        f"{machine['platform']}",
        f"- versions: {versions}",
        f"- thread pools: {pools or 'unknown'}",
        f"- load average (1/5/15 min): start {fmt_load(report['loadavg_start'])}, "
        f"end {fmt_load(report['loadavg_end'])}",
        f"- settings: {settings['repeats']} fit(s) per library and config, "
        f"interleaved (order alternating, {COOL_DOWN_S} s idle before each timed run); "
        f"epochs per fit: "
        f"{settings['epochs']['fashion']} on Fashion-MNIST "
        f"({settings['fashion_train_rows']:,} training rows, 10,000 test rows), "
        f"{settings['epochs']['digits']} on digits; mlp_rs n_jobs=None (all cores)",
    ]
    if settings["quick"]:
        lines.append("- **--quick run: subsampled and short, not a real measurement**")
    lines += [f"- **warning: {w}**" for w in report["warnings"]]
    return "\n".join(lines)


def fmt_load(load: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def render_peak(peaks: dict) -> str:
    rows = [
        [
            name,
            f"{p['size']}x{p['size']}",
            f"{p['gflops_best']:.1f}",
            f"{p['gflops_median']:.1f}",
        ]
        for name, p in peaks.items()
    ]
    header = ["dtype", "matmul", "best GFLOPS (= peak)", "median GFLOPS"]
    return "## GEMM peak (numpy, all threads)\n\n" + markdown_table(header, rows)


def training_table(results: dict, library: str, baseline: str, peak: str) -> str:
    """The rows of several training configurations under one header; `library`,
    `baseline` and `peak` name the columns that differ between the tables."""
    rows = [row for result in results.values() for row in training_rows(result)]
    header = [
        "config",
        library,
        "time/epoch: median [min-max]",
        "GFLOPS",
        peak,
        f"speed-up vs {baseline}",
        "test accuracy",
    ]
    return markdown_table(header, rows)


def render_training(training: dict) -> str:
    table = training_table(training, "library", "scikit-learn", "% of peak")
    caption = (
        "GFLOPS: per a->b layer and epoch, 2Nab forward + 2Nab weight gradient "
        "+ 2Nab input gradient (none for the first layer), over the median "
        "time/epoch; % of peak: against the best numpy matmul of the same dtype."
    )
    return f"## Training\n\n{table}\n\n{caption}"


def render_inference(result: dict) -> str:
    rows = [
        [
            result["label"] if i == 0 else "",
            name,
            fmt_spread(lib["time"]),
            f"{lib['rows_per_s']:,.0f}",
            f"{lib['gflops']:.1f}",
            f"{lib['pct_peak']:.1f}%",
            f"{lib['speedup']:.2f}x",
        ]
        for i, (name, lib) in enumerate(result["libraries"].items())
    ]
    header = [
        "config",
        "library",
        f"predict_proba on {result['n_rows']:,} rows: median [min-max]",
        "rows/s",
        "GFLOPS",
        "% of peak",
        "speed-up vs scikit-learn",
    ]
    return "## Inference\n\n" + markdown_table(header, rows)


def render_threads(result: dict) -> str:
    rows = [row[:-1] for row in training_rows(result)]
    header = [
        "config",
        "mlp_rs",
        "time/epoch: median [min-max]",
        "GFLOPS",
        "% of peak",
        "speed-up vs n_jobs=1",
    ]
    return "## Thread scaling\n\n" + markdown_table(header, rows)


def render_memory(result: dict) -> str:
    mib = 1024
    rows = []
    for name, entry in result["libraries"].items():
        if "error" in entry:
            rows.append([name, "failed: see results JSON", "", "", "", ""])
            continue
        rows.append(
            [
                name,
                f"{entry['X_nbytes'] / 2**20:.0f}",
                f"{entry['baseline_rss_kib'] / mib:.0f}",
                f"{entry['peak_rss_kib'] / mib:.0f}",
                f"{entry['extra_over_X']:.2f}",
                f"{entry['fit_time']:.2f}",
            ]
        )
    header = [
        "estimator",
        "X (MiB)",
        "RSS before fit (MiB)",
        "peak RSS (MiB)",
        "(peak - before) / X.nbytes",
        "fit (s)",
    ]
    title = (
        f"## Memory: 1-epoch fit, hidden (32,), sgd, on a {result['rows']:,} x "
        f"{result['features']} float32 X (fresh subprocess each)"
    )
    note = (
        "MLPClassifier: 10 random classes, its peak includes the transient "
        "one-hot label matrix (n x 10 int64 = 0.2 x X.nbytes here); "
        "MLPRegressor: one float32 target."
    )
    return f"{title}\n\n{markdown_table(header, rows)}\n\n{note}"


def render_bf16(results: dict) -> str:
    table = training_table(results, "mlp_rs products", "float32", "% of float32 peak")
    return "## bfloat16 products\n\n" + table


def render_report(report: dict) -> str:
    """The whole Markdown report."""
    sections = [render_header(report), render_peak(report["gemm_peak"])]
    if report["training"]:
        sections.append(render_training(report["training"]))
    if report["inference"]:
        sections.append(render_inference(report["inference"]))
    if report["thread_scaling"]:
        sections.append(render_threads(report["thread_scaling"]))
    if report.get("bfloat16"):
        sections.append(render_bf16(report["bfloat16"]))
    if report["memory"]:
        sections.append(render_memory(report["memory"]))
    sections.append("\n".join(f"- {note}" for note in report["notes"]))
    return "\n\n".join(sections)


def plot_loss_curves(ax, training: dict) -> None:
    """Loss per epoch of each library's first fit, for the first config that has
    recorded curves (the libraries should overlap: same weights, same batches)."""
    for result in training.values():
        runs = {
            name: lib["runs"][0].get("loss_curve")
            for name, lib in result["libraries"].items()
        }
        runs = {name: curve for name, curve in runs.items() if curve}
        if len(runs) < 2:
            continue
        styles = ["-", "--", ":"]
        for (name, curve), style in zip(runs.items(), styles, strict=False):
            epochs = np.arange(1, len(curve) + 1)
            ax.plot(epochs, curve, style, marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (loss_curve_)")
        ax.set_title(f"loss curves, {result['label']}", fontsize=9)
        ax.legend()
        return
    ax.set_axis_off()


def plot_training(training: dict, path: Path, title: str) -> str:
    """Bar chart of seconds/epoch per config and library (log scale, min-max
    error bars, speed-up over scikit-learn above each bar); returns a note."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: PNG skipped (pip install matplotlib)"
    keys = list(training)
    names = list(next(iter(training.values()))["libraries"])
    width = 0.8 / len(names)
    fig, (ax, curves) = plt.subplots(
        1,
        2,
        figsize=(max(6.0, 1.6 * len(keys) + 2) + 5, 4.5),
        gridspec_kw={"width_ratios": [max(6.0, 1.6 * len(keys) + 2), 5]},
    )
    plot_loss_curves(curves, training)
    for j, name in enumerate(names):
        spreads = [training[k]["libraries"][name]["time"] for k in keys]
        medians = np.array([s["median"] for s in spreads])
        errors = [
            medians - [s["min"] for s in spreads],
            np.array([s["max"] for s in spreads]) - medians,
        ]
        x = np.arange(len(keys)) + (j - (len(names) - 1) / 2) * width
        ax.bar(x, medians, width, yerr=errors, capsize=3, label=name)
        if j > 0:
            for xi, key, med in zip(x, keys, medians, strict=True):
                speedup = training[key]["libraries"][name]["speedup"]
                ax.annotate(
                    f"{speedup:.1f}x",
                    (xi, med),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    ax.set_xticks(np.arange(len(keys)), [training[k]["label"] for k in keys])
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per epoch (median, min-max)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"chart written to {path}"


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: 1 repetition, 1 epoch, {QUICK_TRAIN_ROWS:,} "
        f"Fashion-MNIST training rows, {QUICK_GEMM_SIZE}x{QUICK_GEMM_SIZE} GEMM",
    )
    parser.add_argument(
        "--repeats", type=int, help=f"fits per library (default {DEFAULT_REPEATS})"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="epochs per fit for every config (default 3 on Fashion-MNIST, "
        "20 on digits)",
    )
    parser.add_argument(
        "--only",
        type=lambda s: [part.strip() for part in s.split(",") if part.strip()],
        help="comma-separated subset of: "
        + ", ".join(GROUPS)
        + ", or config keys such as C1-f64",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR / "results.json",
        help="JSON output; the PNG goes beside it (default bench/results.json)",
    )
    parser.add_argument(
        "--memory-child", choices=(SKLEARN, MLP_RS), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--memory-estimator",
        choices=("MLPClassifier", "MLPRegressor"),
        default="MLPClassifier",
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--memory-rows", type=int, default=MEMORY_ROWS, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    for name in ("repeats", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1")
    valid = {g.lower() for g in GROUPS} | {c.key.lower() for c in TRAIN_CONFIGS}
    unknown = [s for s in args.only or [] if s.lower() not in valid]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}")
    return args


def settings_from(args: argparse.Namespace) -> dict:
    """Resolve --quick and the explicit options into the run's settings."""
    quick = args.quick
    epochs = args.epochs or (1 if quick else None)
    return {
        "quick": quick,
        "repeats": args.repeats or (1 if quick else DEFAULT_REPEATS),
        "epochs": {k: epochs or v for k, v in DEFAULT_EPOCHS.items()},
        "fashion_train_rows": QUICK_TRAIN_ROWS if quick else 60_000,
        "gemm": {
            "size": QUICK_GEMM_SIZE if quick else GEMM_SIZE,
            "reps": QUICK_GEMM_REPS if quick else GEMM_REPS,
        },
        "memory_rows": args.memory_rows,
        "only": args.only,
    }


def is_selected(only: list[str] | None, *names: str) -> bool:
    """Whether a config (by key or group) is selected by --only."""
    return only is None or any(n.lower() in {s.lower() for s in only} for n in names)


def env_warnings() -> list[str]:
    """Warn about environment variables that slow numpy's OpenBLAS down."""
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype is None:
        return []
    return [
        f"OPENBLAS_CORETYPE={coretype} is set: it forces an old OpenBLAS kernel "
        "on numpy/scikit-learn's side; rerun with "
        "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench.py`"
    ]


def dataset_loader(fashion_rows: int) -> Callable[[str], Dataset]:
    """A caching loader: "fashion" or "digits" -> :class:`Dataset`."""

    @functools.cache
    def load(name: str) -> Dataset:
        return load_fashion(fashion_rows) if name == "fashion" else load_digits_split()

    return load


def bench_bf16(dataset: Callable, settings: dict, peaks: dict, warmed: set) -> dict:
    """The float32 Fashion-MNIST configs with float32 and bfloat16 products."""
    libraries = bf16_libraries()
    results = {}
    for cfg in BF16_CONFIGS:
        data = dataset(cfg.dataset)
        warm_up(libraries, cfg, data, warmed)
        results[cfg.key] = bench_training(
            cfg,
            data,
            libraries,
            settings["repeats"],
            settings["epochs"][cfg.dataset],
            peaks,
        )
    return results


def run(settings: dict, libraries: list, notes: list[str]) -> dict:
    """Measure everything selected; return the report (minus loadavg_end)."""
    only, repeats = settings["only"], settings["repeats"]
    dataset = dataset_loader(settings["fashion_train_rows"])
    report = {
        "settings": settings,
        "machine": machine_info(libraries),
        "loadavg_start": list(os.getloadavg()),
        "warnings": env_warnings(),
        "notes": list(notes),
        "training": {},
        "inference": None,
        "thread_scaling": None,
        "bfloat16": None,
        "memory": None,
    }
    for warning in report["warnings"]:
        log(f"WARNING: {warning}")
    peaks = report["gemm_peak"] = measure_gemm_peak(**settings["gemm"])

    warmed = set()
    for cfg in TRAIN_CONFIGS:
        if is_selected(only, cfg.key, cfg.group):
            data = dataset(cfg.dataset)
            warm_up(libraries, cfg, data, warmed)
            report["training"][cfg.key] = bench_training(
                cfg, data, libraries, repeats, settings["epochs"][cfg.dataset], peaks
            )
    if is_selected(only, PREDICT_KEY):
        report["inference"] = bench_inference(
            dataset("fashion"), libraries, repeats, peaks
        )
    if is_selected(only, THREADS_KEY):
        scaling = thread_scaling_libraries()
        warm_up(scaling, C2_F32, dataset("fashion"), warmed)
        report["thread_scaling"] = bench_training(
            C2_F32,
            dataset("fashion"),
            scaling,
            repeats,
            settings["epochs"]["fashion"],
            peaks,
        )
    if is_selected(only, BF16_KEY):
        report["bfloat16"] = bench_bf16(dataset, settings, peaks, warmed)
    if is_selected(only, MEMORY_KEY):
        report["memory"] = bench_memory(settings["memory_rows"])
    report["warnings"] += epoch_warnings(report)
    return report


def epoch_warnings(report: dict) -> list[str]:
    """Fits that did not run exactly the requested number of epochs."""
    results = [*report["training"].values()]
    if report["thread_scaling"]:
        results.append(report["thread_scaling"])
    results += (report["bfloat16"] or {}).values()
    found = []
    for result in results:
        for name, lib in result["libraries"].items():
            n_iter = sorted({r["n_iter"] for r in lib["runs"]})
            if n_iter != [result["epochs"]]:
                found.append(
                    f"{result['label']}: {name} ran n_iter_={n_iter}, "
                    f"expected {result['epochs']}"
                )
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child, args.memory_estimator, args.memory_rows)
    settings = settings_from(args)
    libraries, notes = make_libraries()
    report = run(settings, libraries, notes)
    report["loadavg_end"] = list(os.getloadavg())
    report["command"] = [sys.executable, *sys.argv]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    if report["training"]:
        png = args.out.with_suffix(".png")
        title = (
            f"{report['machine']['cpu_model']}, {os.cpu_count()} CPUs; "
            f"{settings['repeats']} repetition(s)"
            + (" (--quick)" if settings["quick"] else "")
        )
        report["notes"].append(plot_training(report["training"], png, title))
    report["notes"].append(f"results written to {args.out}")
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
