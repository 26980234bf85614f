"""Fingerprints of fitted models, to check that a change leaves them bit for bit alike.

Fits a fixed set of configurations (every solver, output kind and dtype, sample weights,
early stopping, warm start, partial_fit, sparse input, products small and large) and
prints one SHA-256 per configuration over the bytes of ``coefs_``, ``intercepts_``,
``loss_curve_`` / ``loss_`` and the predictions. Run it with the wheel before a change
and after it, and compare::

    python scripts/fingerprint.py > before.json   # old build installed
    python scripts/fingerprint.py > after.json    # new build installed
    python scripts/fingerprint.py --compare before.json after.json

Extra keyword arguments for every estimator (a new parameter at its default, say) go
in ``--params '{"name": value}'``.
"""

import argparse
import hashlib
import json
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning


def _data():
    digits = load_digits()
    Xd = digits.data / 16.0
    Xc, yc = make_classification(
        n_samples=600, n_features=30, n_informative=10, n_classes=4, random_state=0
    )
    Xr, yr = make_regression(n_samples=500, n_features=20, n_targets=2, random_state=0)
    yr = yr / yr.std(axis=0)
    Xb, yb = make_classification(n_samples=3000, n_features=200, random_state=1)
    # digits at twice the resolution: 256 inputs, half of them zero like an image's
    # background, enough for the first layer's zero-skipping gradient (`src/zeros.rs`);
    # shifted by one input and scaled so that its groups of four mix unequal pixels
    Xi = np.kron(Xd.reshape(-1, 8, 8), np.ones((2, 2))).reshape(len(Xd), 256)
    Xi = np.roll(Xi, 1, axis=1) * np.linspace(0.9, 1.1, 256)
    # 12 one-hot encoded categories of 60 levels and 8 numbers: 728 inputs, which
    # `gemm` sums in blocks, mirrored by the zero-skipping forward product
    rng = np.random.RandomState(2)
    codes = rng.randint(0, 60, size=(1200, 12)) + 60 * np.arange(12)
    Xo = np.zeros((1200, 728))
    Xo[np.arange(1200)[:, None], codes] = 1.0
    Xo[:, 720:] = rng.normal(size=(1200, 8))
    yo = np.digitize(Xo[:, :720] @ rng.normal(size=720) + Xo[:, 720], [-1.0, 1.0])
    ym = np.stack([yc % 2, (yc // 2) % 2, yc == 3], axis=1).astype(int)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, size=len(yc))
    return dict(
        digits=(Xd, digits.target),
        multiclass=(Xc, yc),
        multilabel=(Xc, ym),
        regression=(Xr, yr),
        poisson=(Xr, np.exp(0.3 * Xr[:, 0]) + Xr[:, 1] ** 2),
        binary_large=(Xb, yb),
        images=(Xi, digits.target),
        one_hot=(Xo, yo),
        sample_weight=sw,
    )


def _configs():
    sgd = dict(solver="sgd", learning_rate_init=0.05, max_iter=8, random_state=0)
    adam = dict(solver="adam", learning_rate_init=0.01, max_iter=8, random_state=0)
    lbfgs = dict(solver="lbfgs", max_iter=15, random_state=0)
    return [
        ("digits-sgd", MLPClassifier, "digits", dict(sgd, hidden_layer_sizes=(64,))),
        ("digits-adam-tanh", MLPClassifier, "digits", dict(adam, activation="tanh")),
        (
            "digits-lbfgs",
            MLPClassifier,
            "digits",
            dict(lbfgs, hidden_layer_sizes=(32,)),
        ),
        (
            "multiclass-es",
            MLPClassifier,
            "multiclass",
            dict(adam, early_stopping=True, max_iter=20, hidden_layer_sizes=(20, 10)),
        ),
        (
            "multiclass-sw",
            MLPClassifier,
            "multiclass",
            dict(sgd, learning_rate="adaptive", tol=10.0, n_iter_no_change=1),
        ),
        ("multilabel", MLPClassifier, "multilabel", dict(adam, activation="logistic")),
        ("regression-sgd", MLPRegressor, "regression", dict(sgd, momentum=0.5)),
        (
            "regression-invscaling",
            MLPRegressor,
            "regression",
            dict(sgd, learning_rate="invscaling", learning_rate_init=0.1),
        ),
        ("regression-lbfgs", MLPRegressor, "regression", lbfgs),
        ("poisson", MLPRegressor, "poisson", dict(adam, loss="poisson")),
        (
            "binary-large-2jobs",
            MLPClassifier,
            "binary_large",
            dict(sgd, hidden_layer_sizes=(300, 100), max_iter=3, n_jobs=2),
        ),
        (
            "binary-large-1job",
            MLPClassifier,
            "binary_large",
            dict(sgd, hidden_layer_sizes=(300, 100), max_iter=3, n_jobs=1),
        ),
        (
            "images-sgd-2jobs",
            MLPClassifier,
            "images",
            dict(sgd, hidden_layer_sizes=(128,), max_iter=4, n_jobs=2),
        ),
        (
            "images-adam-1job",
            MLPClassifier,
            "images",
            dict(adam, hidden_layer_sizes=(128,), max_iter=4, n_jobs=1),
        ),
        (
            "one-hot-adam-2jobs",
            MLPClassifier,
            "one_hot",
            dict(adam, hidden_layer_sizes=(128,), max_iter=4, n_jobs=2),
        ),
        (
            "one-hot-sgd-batch64",
            MLPClassifier,
            "one_hot",
            dict(sgd, hidden_layer_sizes=(64,), batch_size=64, max_iter=4),
        ),
    ]


def _digest(est, X):
    h = hashlib.sha256()
    for a in est.coefs_ + est.intercepts_:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(np.asarray(getattr(est, "loss_curve_", None) or [est.loss_]).tobytes())
    h.update(np.asarray(getattr(est, "validation_scores_", None) or []).tobytes())
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    h.update(np.ascontiguousarray(out).tobytes())
    return h.hexdigest()[:16]


def fingerprints(extra):
    data = _data()
    out = {}
    for name, cls, key, params in _configs():
        X, y = data[key]
        sw = data["sample_weight"] if name.endswith("-sw") else None
        for dtype in (np.float64, np.float32):
            Xt = X.astype(dtype)
            tag = f"{name}/{np.dtype(dtype).name}"
            out[tag] = _digest(cls(**params, **extra).fit(Xt, y, sample_weight=sw), Xt)
            if name == "digits-sgd":
                sparse = sp.csr_matrix(Xt)
                est = cls(**params, **extra).fit(sparse, y)
                out[tag + "/csr"] = _digest(est, sparse)
                warm = cls(**params, **extra, warm_start=True).fit(Xt, y).fit(Xt, y)
                out[tag + "/warm"] = _digest(warm, Xt)
                part = cls(**params, **extra)
                for chunk in np.array_split(np.arange(len(y)), 4):
                    part.partial_fit(Xt[chunk], y[chunk], classes=np.unique(y))
                out[tag + "/partial"] = _digest(part, Xt)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="{}", help="extra estimator parameters")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        before, after = (json.load(open(p)) for p in args.compare)
        differ = sorted(k for k in before if before[k] != after.get(k))
        print(f"{len(before) - len(differ)} of {len(before)} fingerprints equal")
        for k in differ:
            print(f"  DIFFERENT: {k}")
        sys.exit(1 if differ else 0)
    warnings.simplefilter("ignore", ConvergenceWarning)
    json.dump(fingerprints(json.loads(args.params)), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
