#!/usr/bin/env python3
"""Fits after an idle moment: C4 (digits 64-64-10, sgd, batch 32, 20 epochs, as in
``bench/bench.py``) timed whole and in the engine's call alone, each fit after
``--sleep`` seconds idle (0: back to back). Medians of ``--fits`` fits.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/cold_fit.py \\
        [--sleep 0.2] [--fits 20] [--n-jobs 2]
"""

import argparse
import statistics
import time
import warnings

import mlp_rs
import numpy as np
from mlp_rs import _core
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

PARAMS = dict(
    hidden_layer_sizes=(64,),
    solver="sgd",
    batch_size=32,
    learning_rate_init=0.01,
    momentum=0.9,
    max_iter=20,
    tol=0.0,
    n_iter_no_change=21,
    random_state=0,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--fits", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    X = np.ascontiguousarray(X)
    engine = []
    fit_stochastic = _core.fit_stochastic

    def timed(*a, **k):
        start = time.perf_counter()
        try:
            return fit_stochastic(*a, **k)
        finally:
            engine.append(time.perf_counter() - start)

    _core.fit_stochastic = timed
    total = []
    warnings.simplefilter("ignore")
    for _ in range(args.fits):
        time.sleep(args.sleep)
        start = time.perf_counter()
        mlp_rs.MLPClassifier(n_jobs=args.n_jobs, **PARAMS).fit(X, y)
        total.append(time.perf_counter() - start)
    fit, inner = statistics.median(total), statistics.median(engine)
    print(
        f"fit {fit * 1e3:.2f} ms, engine {inner * 1e3:.2f} ms, the rest "
        f"{(fit - inner) * 1e3:.2f} ms (sleep {args.sleep} s, n_jobs {args.n_jobs})"
    )


if __name__ == "__main__":
    main()
