#!/usr/bin/env python3
"""MLPRegressor on scikit-learn's diabetes data set, next to scikit-learn's own.

Both regressors get the same parameters and the same ``random_state``, so they start
from the same weights and see the same batches: their predictions agree to rounding
error, and the script prints the fit time of each. The target is standardised with a
``TransformedTargetRegressor`` and the features with a ``StandardScaler`` -- mlp_rs
estimators compose with scikit-learn's like scikit-learn's own.

Usage::

    python examples/regression.py [--quick] [--epochs N] [--n-jobs J]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# isort: split
from mlp_rs import MLPRegressor


def build(regressor_class, epochs, n_jobs=None):
    params = dict(
        hidden_layer_sizes=(16,),
        alpha=3.0,  # a small, noisy data set: strong L2 regularisation
        learning_rate_init=1e-3,
        batch_size=32,
        max_iter=epochs,
        early_stopping=True,
        n_iter_no_change=20,
        random_state=0,
    )
    if n_jobs is not None:
        params["n_jobs"] = n_jobs
    return TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), regressor_class(**params)),
        transformer=StandardScaler(),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs (for CI)")
    parser.add_argument("--epochs", type=int, default=None, help="max_iter")
    parser.add_argument("--n-jobs", type=int, default=None, help="mlp_rs threads")
    args = parser.parse_args(argv)
    epochs = args.epochs or (20 if args.quick else 500)

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    print(
        f"diabetes: {X_train.shape[0]} train / {X_test.shape[0]} test samples, "
        f"{X.shape[1]} features; at most {epochs} epochs, early stopping"
    )

    results = {}
    for label, cls, n_jobs in [
        ("mlp_rs", MLPRegressor, args.n_jobs),
        ("scikit-learn", SkMLPRegressor, None),
    ]:
        model = build(cls, epochs, n_jobs)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        pred = model.predict(X_test)
        mlp = model.regressor_[-1]
        results[label] = pred
        print(
            f"{label:>12}: R2 {r2_score(y_test, pred):.4f}  "
            f"MAE {mean_absolute_error(y_test, pred):7.3f}  "
            f"{mlp.n_iter_:4d} epochs  fit {seconds:.3f} s"
        )

    diff = np.max(np.abs(results["mlp_rs"] - results["scikit-learn"]))
    print(f"largest difference between the two predictions: {diff:.2e}")
    if not np.allclose(
        results["mlp_rs"], results["scikit-learn"], rtol=1e-5, atol=1e-5
    ):
        print("unexpected: the two regressors disagree")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
