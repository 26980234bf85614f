#!/usr/bin/env python3
"""Pipeline(StandardScaler, MLPClassifier) tuned with GridSearchCV on the digits data.

mlp_rs's MLPClassifier is a scikit-learn estimator: it goes into a ``Pipeline``, its
parameters are searched through ``mlp__<name>``, and ``GridSearchCV(n_jobs=...)`` runs
the candidates in joblib worker processes. Give each fit one engine thread
(``mlp__n_jobs=1``) when the search already runs one fit per core.

Usage::

    python examples/pipeline_grid_search.py [--quick] [--search-jobs J]
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import classification_report
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    StratifiedKFold,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# isort: split
from mlp_rs import MLPClassifier


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid (for CI)")
    parser.add_argument(
        "--search-jobs", type=int, default=2, help="GridSearchCV's n_jobs (processes)"
    )
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    if args.quick:
        X, y = X[:600], y[:600]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )

    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", MLPClassifier(max_iter=200, random_state=0, n_jobs=1)),
        ]
    )
    if args.quick:
        grid = {"mlp__hidden_layer_sizes": [(16,), (32,)], "mlp__alpha": [1e-4]}
        pipe.set_params(mlp__max_iter=30)
    else:
        grid = {
            "mlp__hidden_layer_sizes": [(32,), (64,), (64, 32)],
            "mlp__alpha": [1e-4, 1e-2, 1.0],
            "mlp__learning_rate_init": [1e-3, 1e-2],
        }
    search = GridSearchCV(
        pipe,
        grid,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        n_jobs=args.search_jobs,
        return_train_score=False,
    )
    n_candidates = len(ParameterGrid(grid))
    print(
        f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test samples; "
        f"{n_candidates} candidates x 3 folds, {args.search_jobs} worker(s)"
    )

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    print(f"search took {time.perf_counter() - start:.2f} s")

    results = search.cv_results_
    order = results["rank_test_score"].argsort()
    print("\nrank  mean CV accuracy  parameters")
    for i in order:
        print(
            f"{results['rank_test_score'][i]:4d}  "
            f"{results['mean_test_score'][i]:.4f} +- {results['std_test_score'][i]:.4f}"
            f"  {results['params'][i]}"
        )

    print(f"\nbest: {search.best_params_}")
    test_accuracy = search.score(X_test, y_test)
    print(f"test accuracy of the refitted best pipeline: {test_accuracy:.4f}")
    if not args.quick:
        print(classification_report(y_test, search.predict(X_test), digits=3))
    return 0 if test_accuracy > 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
