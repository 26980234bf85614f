"""Shared helpers and fixtures for the mlp_rs test-suite.

The central idea of the suite: ``mlp_rs`` draws its random numbers exactly like
scikit-learn, so an mlp_rs estimator and a scikit-learn estimator built with
the same parameters (and the same integer ``random_state``) follow the same
training trajectory up to floating point rounding.
"""

import warnings

import mlp_rs
import numpy as np
import pytest
import sklearn
import sklearn.neural_network as sk_nn
from sklearn.datasets import (
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

# The installed scikit-learn's (major, minor): tests adapt where its own behaviour
# differs between the versions the support matrix runs (README, "Support matrix").
SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])


def pytest_configure(config):
    # here as well as in pyproject.toml: the wheel check runs a copy of tests/ alone
    config.addinivalue_line(
        "markers", "slow: long-running (the soak test); `-m 'not slow'` skips them"
    )


ESTIMATOR_NAMES = ("MLPClassifier", "MLPRegressor")

# Default tolerances for float64 parity with scikit-learn.
RTOL = 1e-6
ATOL = 1e-9


# --------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------
def assert_close(a, b, rtol=RTOL, atol=ATOL, err_msg=""):
    """``assert_allclose`` with a small absolute tolerance for values near 0."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, f"{err_msg}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(
        a.astype(np.float64),
        b.astype(np.float64),
        rtol=rtol,
        atol=atol,
        err_msg=err_msg,
    )


def _is_none_or_missing(est, name):
    return getattr(est, name, None) is None


def assert_same_fitted_model(sk, ours, rtol=RTOL, atol=ATOL, check_curve=True):
    """Compare every fitted attribute of a scikit-learn and an mlp_rs model."""
    assert ours.n_layers_ == sk.n_layers_
    assert ours.n_outputs_ == sk.n_outputs_
    assert ours.out_activation_ == sk.out_activation_
    assert ours.n_features_in_ == sk.n_features_in_
    assert ours.n_iter_ == sk.n_iter_, (ours.n_iter_, sk.n_iter_)
    if hasattr(sk, "classes_"):
        np.testing.assert_array_equal(ours.classes_, sk.classes_)
        assert ours.classes_.dtype == sk.classes_.dtype

    assert len(ours.coefs_) == len(sk.coefs_)
    assert len(ours.intercepts_) == len(sk.intercepts_)
    for i, (c_ours, c_sk) in enumerate(zip(ours.coefs_, sk.coefs_, strict=True)):
        assert c_ours.dtype == c_sk.dtype, (i, c_ours.dtype, c_sk.dtype)
        assert_close(c_ours, c_sk, rtol, atol, err_msg=f"coefs_[{i}]")
    for i, (b_ours, b_sk) in enumerate(
        zip(ours.intercepts_, sk.intercepts_, strict=True)
    ):
        assert b_ours.dtype == b_sk.dtype, (i, b_ours.dtype, b_sk.dtype)
        assert_close(b_ours, b_sk, rtol, atol, err_msg=f"intercepts_[{i}]")

    assert_close(ours.loss_, sk.loss_, rtol, atol, err_msg="loss_")

    if sk.solver in ("sgd", "adam"):
        assert ours.t_ == sk.t_, (ours.t_, sk.t_)
        if check_curve:
            assert len(ours.loss_curve_) == len(sk.loss_curve_)
            assert_close(ours.loss_curve_, sk.loss_curve_, rtol, atol, "loss_curve_")
        if sk.best_loss_ is None:
            assert _is_none_or_missing(ours, "best_loss_")
        else:
            assert_close(ours.best_loss_, sk.best_loss_, rtol, atol, "best_loss_")
        if sk.validation_scores_ is None:
            assert _is_none_or_missing(ours, "validation_scores_")
            assert _is_none_or_missing(ours, "best_validation_score_")
        else:
            assert len(ours.validation_scores_) == len(sk.validation_scores_)
            assert_close(
                ours.validation_scores_,
                sk.validation_scores_,
                rtol,
                atol,
                "validation_scores_",
            )
            assert_close(
                ours.best_validation_score_,
                sk.best_validation_score_,
                rtol,
                atol,
                "best_validation_score_",
            )


def assert_same_predictions(sk, ours, X, rtol=RTOL, atol=ATOL):
    """predict / predict_proba / predict_log_proba agree."""
    pred_sk = sk.predict(X)
    pred_ours = ours.predict(X)
    assert pred_ours.shape == pred_sk.shape
    if sk.__class__.__name__ == "MLPClassifier":
        np.testing.assert_array_equal(pred_ours, pred_sk)
        assert pred_ours.dtype == pred_sk.dtype
        proba_sk = sk.predict_proba(X)
        proba_ours = ours.predict_proba(X)
        assert proba_ours.dtype == proba_sk.dtype
        assert_close(proba_ours, proba_sk, rtol, atol, "predict_proba")
        with np.errstate(divide="ignore"):
            assert_close(
                ours.predict_log_proba(X),
                sk.predict_log_proba(X),
                rtol,
                1e-7,
                "predict_log_proba",
            )
    else:
        assert pred_ours.dtype == pred_sk.dtype
        assert_close(pred_ours, pred_sk, rtol, atol, "predict")


# --------------------------------------------------------------------------
# fitting helpers
# --------------------------------------------------------------------------
def call_outcome(call):
    """What ``call()`` did: ``("ok", value)`` or ``("error", type, message)``, with the
    warnings it raised (category, message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = ("ok", call())
        except Exception as exc:  # noqa: BLE001 - compared by assert_same_outcome
            out = ("error", type(exc), str(exc))
    return out, [(w.category, str(w.message)) for w in caught]


def assert_same_outcome(a, b, assert_same_value):
    """Two ``call_outcome``s alike: the same warnings, and the same error or values
    (compared by ``assert_same_value``)."""
    (out_a, warn_a), (out_b, warn_b) = a, b
    assert warn_a == warn_b
    assert out_a[0] == out_b[0], (out_a, out_b)
    if out_a[0] == "ok":
        assert_same_value(out_a[1], out_b[1])
    else:
        assert out_a[1:] == out_b[1:]


def make_pair(name, **params):
    """Unfitted (scikit-learn, mlp_rs) estimators with identical params."""
    return getattr(sk_nn, name)(**params), getattr(mlp_rs, name)(**params)


def quiet_fit(est, X, y, method="fit", **fit_params):
    """Fit while silencing ConvergenceWarning (we train for few epochs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(X, y, **fit_params)


def fit_both(name, X, y, sample_weight=None, **params):
    """Fit scikit-learn's and mlp_rs's ``name`` with identical params.

    Returns ``(sk_estimator, mlp_rs_estimator)``.
    """
    sk, ours = make_pair(name, **params)
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    try:
        quiet_fit(sk, X, y, **fit_params)
    except TypeError as exc:
        # scikit-learn < 1.8 scores early stopping with np.isnan on the predicted
        # labels, which fails for string labels: it has no model to compare with.
        if (
            SKLEARN_VERSION < (1, 8)
            and params.get("early_stopping")
            and "isnan" in str(exc)
        ):
            pytest.skip(
                f"scikit-learn {sklearn.__version__} crashes on string labels with "
                "early stopping (np.isnan of its predicted labels): no reference"
            )
        raise
    quiet_fit(ours, X, y, **fit_params)
    return sk, ours


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _scaled(X):
    return StandardScaler().fit_transform(X)


def make_data(kind, n_samples=50, n_features=6, random_state=0):
    """Small, scaled synthetic datasets (float64, C-contiguous)."""
    rs = random_state
    if kind == "binary":
        X, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=4,
            n_redundant=0,
            n_classes=2,
            random_state=rs,
        )
    elif kind == "multiclass":
        X, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=4,
            n_redundant=0,
            n_classes=3,
            n_clusters_per_class=1,
            random_state=rs,
        )
    elif kind == "multiclass_str":
        X, y = make_data("multiclass", n_samples, n_features, rs)
        y = np.array(["ant", "bee", "cat"], dtype=object)[y]
        return X, y
    elif kind == "multiclass4_str":
        X, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=4,
            n_redundant=0,
            n_classes=4,
            n_clusters_per_class=1,
            random_state=rs,
        )
        y = np.array(["d", "c", "b", "a"])[y]  # unicode dtype labels
        return _scaled(X), y
    elif kind == "multilabel":
        X, y = make_multilabel_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_classes=3,
            random_state=rs,
        )
    elif kind == "regression":
        X, y = make_regression(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=4,
            noise=0.1,
            random_state=rs,
        )
        y = y / np.std(y)
    elif kind == "regression_multi":
        X, y = make_regression(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=4,
            n_targets=3,
            noise=0.1,
            random_state=rs,
        )
        y = y / np.std(y, axis=0)
    elif kind == "poisson":
        rng = np.random.RandomState(rs)
        X = rng.normal(size=(n_samples, n_features))
        lam = np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.1)
        y = rng.poisson(lam).astype(np.float64)
        return X, y
    else:  # pragma: no cover
        raise ValueError(kind)
    return _scaled(X), y


def estimator_for(kind):
    if kind in ("regression", "regression_multi", "poisson"):
        return "MLPRegressor"
    return "MLPClassifier"


@pytest.fixture
def binary_data():
    return make_data("binary")


@pytest.fixture
def multiclass_data():
    return make_data("multiclass")


@pytest.fixture
def regression_data():
    return make_data("regression")
