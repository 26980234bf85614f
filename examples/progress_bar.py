#!/usr/bin/env python3
"""A progress bar and custom stopping rules through ``callbacks``.

mlp_rs calls each callback after every epoch of ``sgd`` / ``adam`` as
``callback(epoch, loss, validation_score, elapsed)``: the 1-based epoch of this fit
call, the epoch's training loss, the validation score (a float with
``early_stopping=True``, else None) and the seconds since ``fit`` started. A callback
that returns True stops training after that epoch, without a ConvergenceWarning.

This script draws a tqdm progress bar (``pip install tqdm``; without it a plain
one-line-per-epoch printer takes its place) and stops on a time budget or a target
validation score, whichever comes first. ``--verbose`` shows ``verbose=2`` instead:
scikit-learn's ``Iteration k, loss = ...`` lines with epoch time and samples/s.

Usage::

    python examples/progress_bar.py [--quick] [--time-budget S] [--target-score A]
                                    [--no-tqdm] [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

# isort: split
from mlp_rs import MLPClassifier


class TqdmProgress:
    """A tqdm bar advanced by one step per epoch, showing loss and validation score."""

    def __init__(self, total):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="epoch", desc="training", leave=True)

    def __call__(self, epoch, loss, validation_score, elapsed):
        self.bar.update(epoch - self.bar.n)
        postfix = {"loss": f"{loss:.4f}"}
        if validation_score is not None:
            postfix["val"] = f"{validation_score:.4f}"
        self.bar.set_postfix(postfix, refresh=False)

    def close(self):
        self.bar.close()


class PrintProgress:
    """The fallback when tqdm is not installed: one line per epoch."""

    def __init__(self, total):
        self.total = total

    def __call__(self, epoch, loss, validation_score, elapsed):
        score = (
            "" if validation_score is None else f", validation {validation_score:.4f}"
        )
        print(
            f"epoch {epoch:3d}/{self.total}: loss {loss:.4f}{score} [{elapsed:.2f} s]",
            flush=True,
        )

    def close(self):
        pass


class StopWhen:
    """Stops training once ``elapsed`` passes a budget or the validation score reaches
    a target; remembers why."""

    def __init__(self, time_budget=None, target_score=None):
        self.time_budget = time_budget
        self.target_score = target_score
        self.reason = None

    def __call__(self, epoch, loss, validation_score, elapsed):
        if self.time_budget is not None and elapsed >= self.time_budget:
            self.reason = (
                f"time budget of {self.time_budget} s used after {epoch} epochs"
            )
        elif (
            self.target_score is not None
            and validation_score is not None
            and validation_score >= self.target_score
        ):
            self.reason = (
                f"validation score {validation_score:.4f} reached at epoch {epoch}"
            )
        return self.reason is not None


def make_progress(total, use_tqdm):
    if use_tqdm:
        try:
            return TqdmProgress(total)
        except ImportError:
            print("tqdm is not installed (pip install tqdm): printing epochs instead")
    return PrintProgress(total)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (for CI)")
    parser.add_argument("--epochs", type=int, default=None, help="max_iter")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds")
    parser.add_argument(
        "--target-score",
        type=float,
        default=0.97,
        help="stop at this validation accuracy",
    )
    parser.add_argument("--no-tqdm", action="store_true", help="plain printer")
    parser.add_argument("--verbose", action="store_true", help="verbose=2, no bar")
    args = parser.parse_args(argv)
    epochs = args.epochs or (5 if args.quick else 200)
    n_samples = 2000 if args.quick else 50_000
    time_budget = (
        args.time_budget
        if args.time_budget is not None
        else (2.0 if args.quick else 30.0)
    )

    X, y = make_classification(
        n_samples=n_samples,
        n_features=50,
        n_informative=30,
        n_classes=5,
        class_sep=1.5,
        random_state=0,
    )
    X = X.astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    print(
        f"{X_train.shape[0]} x {X_train.shape[1]} float32 samples, 5 classes; "
        f"at most {epochs} epochs, {time_budget} s"
    )

    stop = StopWhen(time_budget=time_budget, target_score=args.target_score)
    progress = None if args.verbose else make_progress(epochs, not args.no_tqdm)
    callbacks = [stop] if progress is None else [progress, stop]
    clf = MLPClassifier(
        hidden_layer_sizes=(128, 64),
        max_iter=epochs,
        early_stopping=True,  # validation scores for the bar and the target
        n_iter_no_change=epochs,  # let the callbacks decide when to stop
        random_state=0,
        verbose=2 if args.verbose else 0,
        callbacks=callbacks,
    )
    try:
        with warnings.catch_warnings():
            # Reaching max_iter is reported below.
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, y_train)
    finally:
        if progress is not None:
            progress.close()

    print(f"stopped: {stop.reason or 'max_iter reached'}")
    print(
        f"{clf.n_iter_} epochs, "
        f"best validation accuracy {clf.best_validation_score_:.4f}, "
        f"test accuracy {clf.score(X_test, y_test):.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
