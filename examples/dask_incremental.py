#!/usr/bin/env python3
"""Out-of-core training: dask-ml's ``Incremental`` wrapping mlp_rs's MLPClassifier.

The data is a chunked dask array (here made up block by block, as if each block came
from its own file); ``Incremental`` feeds the blocks one after the other to the
estimator's ``partial_fit``, so only one block is in memory at a time. Each call of
``Incremental.partial_fit`` is one pass (epoch) over the blocks; blocks are shuffled
between passes. Prediction and scoring run blockwise and return dask arrays.

Needs ``pip install dask-ml`` (which brings dask); without it the script says so and
exits 0.

Usage::

    python examples/dask_incremental.py [--quick] [--epochs N] [--blocks B]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

# isort: split
from mlp_rs import MLPClassifier

N_FEATURES = 20
N_CLASSES = 4


def make_block(index, n_samples):
    """Block ``index`` of a larger data set: a Gaussian mixture (two clusters per
    class) whose centres are fixed; each block draws its own samples from it."""
    centres = np.random.RandomState(0).normal(size=(2 * N_CLASSES, N_FEATURES))
    rng = np.random.RandomState(1 + index)
    cluster = rng.randint(2 * N_CLASSES, size=n_samples)
    X = centres[cluster] + rng.normal(scale=1.5, size=(n_samples, N_FEATURES))
    return X.astype(np.float32), cluster % N_CLASSES


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data (for CI)")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the data")
    parser.add_argument("--blocks", type=int, default=None, help="number of blocks")
    parser.add_argument("--block-size", type=int, default=None, help="rows per block")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 10)
    n_blocks = args.blocks or (4 if args.quick else 20)
    block_size = args.block_size or (500 if args.quick else 5000)

    try:
        import dask
        import dask.array as da
        from dask_ml.wrappers import Incremental
    except Exception as exc:  # not installed, or not importable with these versions
        print(
            f"dask-ml is not available ({type(exc).__name__}: {exc}); install it with "
            "`pip install dask-ml` to run this example. Nothing to do."
        )
        return 0

    # A dask array of n_blocks blocks, each computed only when needed.
    blocks = [dask.delayed(make_block)(i, block_size) for i in range(n_blocks)]
    X = da.concatenate(
        [
            da.from_delayed(b[0], shape=(block_size, N_FEATURES), dtype=np.float32)
            for b in blocks
        ]
    )
    y = da.concatenate(
        [da.from_delayed(b[1], shape=(block_size,), dtype=np.int64) for b in blocks]
    )
    X_test, y_test = make_block(10_000, 2000)  # a held-out block, in memory
    print(
        f"{n_blocks} blocks x {block_size} rows x {N_FEATURES} features (float32), "
        f"{N_CLASSES} classes; {epochs} passes"
    )

    clf = MLPClassifier(
        hidden_layer_sizes=(64,), learning_rate_init=1e-2, random_state=0
    )
    model = Incremental(clf, scoring="accuracy", shuffle_blocks=True, random_state=0)
    classes = np.arange(N_CLASSES)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.partial_fit(X, y, classes=classes)
        print(
            f"pass {epoch:2d}: held-out accuracy "
            f"{model.estimator_.score(X_test, y_test):.4f}  "
            f"({time.perf_counter() - start:.2f} s)"
        )

    fitted = model.estimator_
    print(
        f"trained {type(fitted).__module__}.{type(fitted).__name__}: "
        f"{fitted.t_} samples seen, weights {fitted.coefs_[0].dtype}"
    )
    predicted = model.predict(X)  # lazy, blockwise
    print(
        f"blockwise predict returns {type(predicted).__name__} "
        f"with {predicted.numblocks[0]} blocks; first labels "
        f"{predicted[:8].compute()}"
    )
    accuracy = model.score(X_test, y_test)
    print(f"final held-out accuracy: {accuracy:.4f}")
    return 0 if accuracy > 1.0 / N_CLASSES else 1


if __name__ == "__main__":
    sys.exit(main())
