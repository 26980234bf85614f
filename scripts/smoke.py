"""Smoke test of an installed mlp_rs (run by wheel_check.sh and release.sh from outside
the source tree): version, fit / predict in both dtypes, pickle, to_sklearn /
from_sklearn round trips.

Usage: python smoke.py EXPECTED_VERSION SOURCE_ROOT
"""

import os
import pickle
import sys
import sysconfig
import warnings
from importlib.metadata import version

import mlp_rs
import numpy as np
from mlp_rs import MLPClassifier, MLPRegressor, _core
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

warnings.simplefilter("ignore", ConvergenceWarning)
expected, source_root = sys.argv[1], os.path.realpath(sys.argv[2])
site = os.path.realpath(sysconfig.get_paths()["purelib"])
where = os.path.realpath(mlp_rs.__file__)
print("mlp_rs.__file__   ", mlp_rs.__file__)
print("mlp_rs._core      ", _core.__file__)
print("mlp_rs.__version__", mlp_rs.__version__)
assert where.startswith(site + os.sep), f"{where} is not in {site}"
assert not where.startswith(source_root + os.sep), "imported from the source tree"
assert mlp_rs.__version__ == expected, (mlp_rs.__version__, expected)
assert version("mlp_rs") == expected, (version("mlp_rs"), expected)
assert _core.__version__ == expected, (_core.__version__, expected)

X, y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)
for dtype in (np.float64, np.float32):
    Xd = X.astype(dtype)
    clf = MLPClassifier(
        hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300, random_state=0
    )
    clf.fit(Xd, y)
    acc = clf.score(Xd, y)
    assert acc > 0.9, acc
    proba = clf.predict_proba(Xd)
    assert proba.dtype == dtype, proba.dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)

    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(Xd), proba)

    sk = clf.to_sklearn()
    assert type(sk) is SkMLPClassifier, type(sk)
    # float64: equal to rounding; float32: a few ulps (another GEMM's summation order)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(sk.predict_proba(Xd), proba, rtol=rtol, atol=0)
    np.testing.assert_array_equal(sk.predict(Xd), clf.predict(Xd))
    back = MLPClassifier.from_sklearn(sk)
    assert type(back) is MLPClassifier, type(back)
    np.testing.assert_array_equal(back.predict_proba(Xd), proba)
    print(
        f"classifier {np.dtype(dtype).name}: train accuracy {acc:.3f}, "
        "pickle and to_sklearn/from_sklearn round trips equal"
    )

Xr, yr = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
yr = yr / yr.std()
reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0, n_jobs=2)
reg.fit(Xr, yr)
pred = reg.predict(Xr)
assert reg.score(Xr, yr) > 0.9, reg.score(Xr, yr)
np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(Xr), pred)
sk = reg.to_sklearn()
assert type(sk) is SkMLPRegressor, type(sk)
np.testing.assert_allclose(sk.predict(Xr), pred, rtol=1e-12, atol=0)
np.testing.assert_array_equal(MLPRegressor.from_sklearn(sk).predict(Xr), pred)
print(f"regressor: R2 {reg.score(Xr, yr):.3f}, round trips equal")
print("smoke test OK")
