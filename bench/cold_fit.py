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
from mlp_rs import _core

# bench/bench.py, beside this script
from bench import DEFAULT_EPOCHS, TRAIN_CONFIGS, load_digits_split

C4 = next(cfg for cfg in TRAIN_CONFIGS if cfg.group == "C4")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--fits", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    X, y, _, _ = load_digits_split().split(C4.dtype)
    params = C4.params(DEFAULT_EPOCHS["digits"])
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
        mlp_rs.MLPClassifier(n_jobs=args.n_jobs, **params).fit(X, y)
        total.append(time.perf_counter() - start)
    fit, inner = statistics.median(total), statistics.median(engine)
    print(
        f"fit {fit * 1e3:.2f} ms, engine {inner * 1e3:.2f} ms, the rest "
        f"{(fit - inner) * 1e3:.2f} ms (sleep {args.sleep} s, n_jobs {args.n_jobs})"
    )


if __name__ == "__main__":
    main()
