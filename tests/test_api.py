"""API behaviour of mlp_rs estimators (dtype handling, sparse input, threading
determinism, input immutability, errors, verbose output, pickling, ...)."""

import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk_nn
from conftest import (
    assert_close,
    assert_same_fitted_model,
    assert_same_predictions,
    fit_both,
    make_data,
    make_pair,
    quiet_fit,
)
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SMALL = dict(hidden_layer_sizes=(7, 5), random_state=0, max_iter=5)
SOLVERS = ["sgd", "adam", "lbfgs"]
NAMES = ["MLPClassifier", "MLPRegressor"]
OURS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}


def _kind(name):
    return "multiclass" if name == "MLPClassifier" else "regression"


def _solver_params(solver):
    if solver == "sgd":
        return dict(solver="sgd", learning_rate_init=0.05)
    if solver == "adam":
        return dict(solver="adam", learning_rate_init=0.01)
    return dict(solver="lbfgs", max_iter=10)


def assert_raises_like_sklearn(call_sk, call_ours, exc=Exception):
    """Both calls raise; same exception type and identical message."""
    with pytest.raises(exc) as err_sk:
        call_sk()
    with pytest.raises(exc) as err_ours:
        call_ours()
    assert type(err_ours.value) is type(err_sk.value), (err_ours.value, err_sk.value)
    assert str(err_ours.value) == str(err_sk.value)
    return err_ours.value


def coefs_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(a.coefs_, b.coefs_, strict=True)
    ) and all(
        np.array_equal(x, y) for x, y in zip(a.intercepts_, b.intercepts_, strict=True)
    )


# --------------------------------------------------------------------------
# signature / params
# --------------------------------------------------------------------------
# mlp_rs's own parameters, after scikit-learn's, keyword-only, with their defaults (each
# default reproduces scikit-learn's model)
OWN_PARAMETERS = {
    "MLPClassifier": {
        "n_jobs": None,
        "callbacks": None,
        "class_weight": None,
        "dropout": 0.0,
        "matmul_precision": None,
    },
    "MLPRegressor": {
        "n_jobs": None,
        "callbacks": None,
        "dropout": 0.0,
        "matmul_precision": None,
        "huber_delta": 1.0,
    },
}


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_sklearn_plus_ours(name):
    sig_sk = inspect.signature(getattr(sk_nn, name).__init__)
    sig_ours = inspect.signature(OURS[name].__init__)
    params_sk = list(sig_sk.parameters.values())
    params_ours = list(sig_ours.parameters.values())
    extra = OWN_PARAMETERS[name]
    assert [p.name for p in params_ours] == [p.name for p in params_sk] + list(extra)
    for p_ours, p_sk in zip(params_ours[: -len(extra)], params_sk, strict=True):
        assert p_ours.kind == p_sk.kind, p_sk.name
        assert p_ours.default == p_sk.default, p_sk.name
    for p in params_ours[-len(extra) :]:
        assert p.default == extra[p.name]
        assert p.kind == inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_documented(name):
    doc = OURS[name].__doc__
    for param in OURS[name]().get_params():
        assert re.search(rf"^    {param} : ", doc, re.MULTILINE), param


@pytest.mark.parametrize("name", NAMES)
def test_get_params_and_clone(name):
    ours = OURS[name]()
    expected = {
        **getattr(sk_nn, name)().get_params(),
        **OWN_PARAMETERS[name],
    }
    assert ours.get_params() == expected
    est = OURS[name](hidden_layer_sizes=(3, 2), alpha=0.5, n_jobs=2, random_state=4)
    cloned = clone(est)
    assert cloned.get_params() == est.get_params()
    assert cloned is not est


def test_estimator_type():
    assert is_classifier(MLPClassifier())
    assert is_regressor(MLPRegressor())
    assert MLPClassifier().__sklearn_tags__().input_tags.sparse
    assert MLPRegressor().__sklearn_tags__().input_tags.sparse
    assert MLPClassifier().__sklearn_tags__().classifier_tags.multi_label


def test_repr():
    assert (
        repr(MLPClassifier(alpha=0.5, n_jobs=2)) == "MLPClassifier(alpha=0.5, n_jobs=2)"
    )
    assert repr(MLPRegressor(loss="poisson")) == "MLPRegressor(loss='poisson')"


# --------------------------------------------------------------------------
# fitted attributes
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_fitted_attributes(name, solver):
    X, y = make_data(_kind(name))
    est = quiet_fit(OURS[name](**{**{**SMALL, **_solver_params(solver)}}), X, y)
    assert est.n_features_in_ == X.shape[1]
    assert est.n_layers_ == 4
    assert isinstance(est.n_iter_, (int, np.integer))
    assert [c.shape for c in est.coefs_] == [(6, 7), (7, 5), (5, est.n_outputs_)]
    assert [b.shape for b in est.intercepts_] == [(7,), (5,), (est.n_outputs_,)]
    assert isinstance(est.coefs_, list) and isinstance(est.intercepts_, list)
    assert np.isfinite(est.loss_)
    if name == "MLPClassifier":
        np.testing.assert_array_equal(est.classes_, [0, 1, 2])
        assert est.out_activation_ == "softmax"
        assert est.n_outputs_ == 3
    else:
        assert est.out_activation_ == "identity"
        assert est.n_outputs_ == 1
    if solver != "lbfgs":
        assert isinstance(est.loss_curve_, list)
        assert len(est.loss_curve_) == est.n_iter_ == 5
        assert est.t_ == 5 * X.shape[0]
        assert est.best_loss_ == min(est.loss_curve_)
        assert est.validation_scores_ is None
        assert est.best_validation_score_ is None
    assert not hasattr(est, "feature_names_in_")


def test_early_stopping_attributes():
    X, y = make_data("binary", n_samples=80)
    est = quiet_fit(MLPClassifier(**SMALL, early_stopping=True), X, y)
    assert est.best_loss_ is None
    assert isinstance(est.validation_scores_, list)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)


def test_out_activation():
    X, y = make_data("binary")
    assert quiet_fit(MLPClassifier(**SMALL), X, y).out_activation_ == "logistic"
    X, y = make_data("multilabel")
    est = quiet_fit(MLPClassifier(**SMALL), X, y)
    assert est.out_activation_ == "logistic"
    assert est.predict(X).shape == y.shape
    assert est.predict_proba(X).shape == y.shape
    X, y = make_data("poisson")
    est = quiet_fit(MLPRegressor(**SMALL, loss="poisson"), X, y)
    assert est.out_activation_ == "exp"
    assert np.all(est.predict(X) > 0)


# --------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("name", NAMES)
def test_float32_trains_in_float32(name, solver):
    X, y = make_data(_kind(name))
    X32 = X.astype(np.float32)
    params = {**{**SMALL, **_solver_params(solver)}}
    ours = quiet_fit(OURS[name](**params), X32, y)
    assert all(c.dtype == np.float32 for c in ours.coefs_)
    assert all(b.dtype == np.float32 for b in ours.intercepts_)
    if name == "MLPClassifier":
        proba = ours.predict_proba(X32)
        assert proba.dtype == np.float32
        assert ours.predict_log_proba(X32).dtype == np.float32
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    else:
        assert ours.predict(X32).dtype == np.float32

    # float32 training stays close to scikit-learn's float32 training ...
    sk = quiet_fit(getattr(sk_nn, name)(**params), X32, y)
    out_sk = sk.predict_proba(X32) if name == "MLPClassifier" else sk.predict(X32)
    out_ours = ours.predict_proba(X32) if name == "MLPClassifier" else ours.predict(X32)
    assert_close(out_ours, out_sk, rtol=1e-3, atol=1e-3)
    # ... and to float64 training.
    ours64 = quiet_fit(OURS[name](**params), X, y)
    out64 = ours64.predict_proba(X) if name == "MLPClassifier" else ours64.predict(X)
    assert_close(out_ours, out64, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_float32_lbfgs(name):
    X, y = make_data(_kind(name))
    X32 = X.astype(np.float32)
    params = {**SMALL, **_solver_params("lbfgs")}
    ours = quiet_fit(OURS[name](**params), X32, y)
    assert all(np.isfinite(c).all() for c in ours.coefs_)
    # scipy evaluates the loss at float32 parameters (x0's dtype) and returns its
    # float64 solution: scikit-learn's coefs_ are float64, and so are ours
    sk = quiet_fit(getattr(sk_nn, name)(**params), X32, y)
    pairs = zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_, strict=True)
    for a, b in pairs:
        assert a.dtype == b.dtype == np.float64
    out_sk = sk.predict_proba(X32) if name == "MLPClassifier" else sk.predict(X32)
    out_ours = ours.predict_proba(X32) if name == "MLPClassifier" else ours.predict(X32)
    assert out_ours.dtype == out_sk.dtype == np.float64
    assert_close(out_ours, out_sk, rtol=1e-2, atol=1e-2)
    # a warm start continues in float64, as scikit-learn's (float32 X, float64
    # weights: float64 products)
    for est in (ours, sk):
        est.set_params(warm_start=True, max_iter=3)
        quiet_fit(est, X32, y)
    assert ours.coefs_[0].dtype == sk.coefs_[0].dtype == np.float64


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, bool])
def test_other_input_dtypes_train_in_float64(dtype):
    X, y = make_data("multiclass")
    Xd = (X > 0).astype(dtype) if dtype is bool else (X * 3).astype(dtype)
    sk, ours = fit_both("MLPClassifier", Xd, y, **SMALL)
    assert all(c.dtype == np.float64 for c in ours.coefs_)
    assert_same_fitted_model(sk, ours)


def test_list_input():
    X, y = make_data("multiclass_str")
    sk, ours = fit_both("MLPClassifier", X.tolist(), list(y), **SMALL)
    assert_same_fitted_model(sk, ours)
    assert_same_predictions(sk, ours, X.tolist())
    pred = ours.predict(X)
    assert set(pred) <= {"ant", "bee", "cat"}


@pytest.mark.parametrize("name", NAMES)
def test_int_targets_for_regressor_and_bool_for_classifier(name):
    X, y = make_data("binary")
    yy = y.astype(bool) if name == "MLPClassifier" else y.astype(np.int64)
    sk, ours = fit_both(name, X, yy, **SMALL)
    assert_same_fitted_model(sk, ours)
    assert_same_predictions(sk, ours, X)


# --------------------------------------------------------------------------
# sparse input
# --------------------------------------------------------------------------
def _sparse_data(name):
    X, y = make_data(_kind(name), n_samples=60)
    X = X.copy()
    X[np.abs(X) < 0.7] = 0.0  # ~half the entries are zero
    return X, y


@pytest.mark.parametrize("fmt", ["csr", "csc", "csr_array", "csc_array"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_sparse_same_as_dense(name, solver, fmt):
    X, y = _sparse_data(name)
    container = {
        "csr": sp.csr_matrix,
        "csc": sp.csc_matrix,
        "csr_array": sp.csr_array,
        "csc_array": sp.csc_array,
    }[fmt]
    Xs = container(X)
    params = {**{**SMALL, **_solver_params(solver)}, "batch_size": 16}
    dense = quiet_fit(OURS[name](**params), X, y)
    sparse = quiet_fit(OURS[name](**params), Xs, y)
    assert_same_fitted_model(dense, sparse)
    # predictions with sparse input equal the dense ones
    assert_same_predictions(dense, sparse, Xs)
    assert_close(
        sparse.predict(Xs) if name == "MLPRegressor" else sparse.predict_proba(Xs),
        sparse.predict(X) if name == "MLPRegressor" else sparse.predict_proba(X),
    )
    # and scikit-learn on the same sparse matrix agrees
    sk = quiet_fit(getattr(sk_nn, name)(**params), Xs, y)
    assert_same_fitted_model(sk, sparse)


def test_sparse_float32_and_partial_fit():
    X, y = _sparse_data("MLPClassifier")
    Xs = sp.csr_matrix(X.astype(np.float32))
    est = quiet_fit(MLPClassifier(**SMALL), Xs, y)
    assert all(c.dtype == np.float32 for c in est.coefs_)
    assert est.predict_proba(Xs).dtype == np.float32
    sk, ours = make_pair("MLPClassifier", **SMALL)
    for idx in np.array_split(np.arange(X.shape[0]), 3):
        sk.partial_fit(sp.csr_matrix(X[idx]), y[idx], classes=[0, 1, 2])
        ours.partial_fit(sp.csr_matrix(X[idx]), y[idx], classes=[0, 1, 2])
    assert_same_fitted_model(sk, ours)


def test_sparse_unsupported_format_converted():
    X, y = _sparse_data("MLPRegressor")
    sk, ours = fit_both("MLPRegressor", sp.coo_matrix(X), y, **SMALL)
    assert_same_fitted_model(sk, ours)


# --------------------------------------------------------------------------
# n_jobs determinism
# --------------------------------------------------------------------------
def _large_data(name, n_samples=3000, n_features=100):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_samples, n_features))
    w = rng.normal(size=(n_features, 3))
    z = np.tanh(X @ w / np.sqrt(n_features))
    if name == "MLPClassifier":
        y = np.argmax(z + 0.3 * rng.normal(size=z.shape), axis=1)
    else:
        y = z[:, 0] + 0.1 * rng.normal(size=n_samples)
    return X, y


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_n_jobs_bit_identical(name, solver, size):
    if size == "small":
        X, y = make_data(_kind(name))
        params = {**{**SMALL, **_solver_params(solver)}}
    else:
        X, y = _large_data(name)
        params = dict(
            hidden_layer_sizes=(64,),
            random_state=0,
            solver=solver,
            max_iter=3 if solver != "lbfgs" else 8,
        )
    models = {}
    for n_jobs in [1, 2, None, -1]:
        models[n_jobs] = quiet_fit(OURS[name](**params, n_jobs=n_jobs), X, y)
    ref = models[1]
    for n_jobs, est in models.items():
        assert coefs_equal(ref, est), f"n_jobs={n_jobs} differs from n_jobs=1"
        assert est.loss_ == ref.loss_
        if solver != "lbfgs":
            assert est.loss_curve_ == ref.loss_curve_
        out = est.predict_proba(X) if name == "MLPClassifier" else est.predict(X)
        out_ref = ref.predict_proba(X) if name == "MLPClassifier" else ref.predict(X)
        assert np.array_equal(out, out_ref)

    if size == "large" and solver != "lbfgs":
        # the multithreaded path also agrees with scikit-learn
        sk = quiet_fit(getattr(sk_nn, name)(**params), X, y)
        assert_same_fitted_model(sk, models[2], rtol=1e-6, atol=1e-8)


def test_n_jobs_bit_identical_sparse_and_float32():
    X, y = _large_data("MLPClassifier", n_samples=1500, n_features=60)
    X[np.abs(X) < 1.0] = 0.0
    for Xin in [sp.csr_matrix(X), X.astype(np.float32)]:
        params = dict(hidden_layer_sizes=(32,), random_state=0, max_iter=2)
        a = quiet_fit(MLPClassifier(**params, n_jobs=1), Xin, y)
        b = quiet_fit(MLPClassifier(**params, n_jobs=2), Xin, y)
        assert coefs_equal(a, b)
        assert np.array_equal(a.predict_proba(Xin), b.predict_proba(Xin))


def test_n_jobs_partial_fit_bit_identical():
    X, y = _large_data("MLPRegressor", n_samples=1000, n_features=40)
    a = MLPRegressor(hidden_layer_sizes=(32, 16), random_state=0, n_jobs=1)
    b = MLPRegressor(hidden_layer_sizes=(32, 16), random_state=0, n_jobs=2)
    for idx in np.array_split(np.arange(1000), 3):
        a.partial_fit(X[idx], y[idx])
        b.partial_fit(X[idx], y[idx])
        assert coefs_equal(a, b)


def test_repeated_fit_is_deterministic():
    X, y = _large_data("MLPClassifier", n_samples=1000, n_features=30)
    params = dict(hidden_layer_sizes=(16,), random_state=1, max_iter=2, n_jobs=2)
    a = quiet_fit(MLPClassifier(**params), X, y)
    b = quiet_fit(MLPClassifier(**params), X, y)
    assert coefs_equal(a, b)


# --------------------------------------------------------------------------
# inputs are never modified; read-only / Fortran / strided inputs
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_inputs_not_modified(name, solver):
    X, y = make_data(_kind(name))
    sw = np.random.RandomState(0).uniform(0.5, 2, size=X.shape[0])
    X0, y0, sw0 = X.copy(), y.copy(), sw.copy()
    params = {
        **{**SMALL, **_solver_params(solver)},
        "early_stopping": solver != "lbfgs",
    }
    est = quiet_fit(OURS[name](**params), X, y, sample_weight=sw)
    for arr, orig in [(X, X0), (y, y0), (sw, sw0)]:
        np.testing.assert_array_equal(arr, orig)
    est.predict(X)
    est.score(X, y, sample_weight=sw)
    if name == "MLPClassifier":
        est.predict_proba(X)
        est.predict_log_proba(X)
    if solver != "lbfgs":
        kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
        est = OURS[name](**{**params, "early_stopping": False})
        est.partial_fit(X, y, sample_weight=sw, **kw)
        est.partial_fit(X, y, sample_weight=sw)
    for arr, orig in [(X, X0), (y, y0), (sw, sw0)]:
        np.testing.assert_array_equal(arr, orig)


@pytest.mark.parametrize("solver", SOLVERS)
def test_assigned_coefs_not_modified_in_place_by_predict(solver):
    X, y = make_data("multiclass")
    est = quiet_fit(MLPClassifier(**{**SMALL, **_solver_params(solver)}), X, y)
    coefs = [c.copy() for c in est.coefs_]
    intercepts = [b.copy() for b in est.intercepts_]
    est.predict_proba(X)
    est.predict(X)
    est.score(X, y)
    for a, b in zip(coefs, est.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(intercepts, est.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_readonly_inputs(name, solver):
    X, y = make_data(_kind(name))
    sw = np.random.RandomState(0).uniform(0.5, 2, size=X.shape[0])
    params = {**{**SMALL, **_solver_params(solver)}}
    ref = quiet_fit(OURS[name](**params), X, y, sample_weight=sw)
    Xr, yr, swr = X.copy(), y.copy(), sw.copy()
    for arr in (Xr, yr, swr):
        arr.setflags(write=False)
    est = quiet_fit(OURS[name](**params), Xr, yr, sample_weight=swr)
    assert coefs_equal(ref, est)
    est.predict(Xr)
    est.score(Xr, yr, sample_weight=swr)
    if name == "MLPClassifier":
        est.predict_proba(Xr)
    if solver != "lbfgs":
        kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
        OURS[name](**params).partial_fit(Xr, yr, sample_weight=swr, **kw)


def test_readonly_memmap(tmp_path):
    X, y = make_data("multiclass")
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    ref = quiet_fit(MLPClassifier(**SMALL), X, y)
    est = quiet_fit(MLPClassifier(**SMALL), Xm, y)
    assert coefs_equal(ref, est)
    np.testing.assert_array_equal(est.predict_proba(Xm), ref.predict_proba(X))


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative_stride", "sliced"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_memory_layouts(name, solver, layout):
    X, y = make_data(_kind(name))
    sw = np.random.RandomState(0).uniform(0.5, 2, size=X.shape[0])
    if layout == "fortran":
        Xl = np.asfortranarray(X)
        swl = sw
    elif layout == "strided":
        big = np.zeros((X.shape[0] * 2, X.shape[1] * 3))
        big[::2, ::3] = X
        Xl = big[::2, ::3]
        big_sw = np.zeros(2 * X.shape[0])
        big_sw[::2] = sw
        swl = big_sw[::2]
    elif layout == "negative_stride":
        # a view with negative strides holding the same values as X
        Xl = np.ascontiguousarray(X[::-1, ::-1])[::-1, ::-1]
        swl = np.ascontiguousarray(sw[::-1])[::-1]
    else:
        big = np.hstack([np.ones((X.shape[0], 2)), X, np.ones((X.shape[0], 1))])
        Xl = big[:, 2:-1]
        swl = sw
    assert not Xl.flags.c_contiguous
    np.testing.assert_array_equal(Xl, X)
    params = {**{**SMALL, **_solver_params(solver)}}
    ref = quiet_fit(OURS[name](**params), X, y, sample_weight=sw)
    est = quiet_fit(OURS[name](**params), Xl, y, sample_weight=swl)
    assert_same_fitted_model(ref, est)
    out = est.predict_proba(Xl) if name == "MLPClassifier" else est.predict(Xl)
    out_ref = ref.predict_proba(X) if name == "MLPClassifier" else ref.predict(X)
    assert_close(out, out_ref)


def test_noncontiguous_y_and_multioutput_fortran():
    X, y = make_data("regression_multi")
    yF = np.asfortranarray(y)
    ref = quiet_fit(MLPRegressor(**SMALL), X, y)
    est = quiet_fit(MLPRegressor(**SMALL), X, yF)
    assert_same_fitted_model(ref, est)
    big = np.zeros((X.shape[0], 6))
    big[:, ::2] = y
    est2 = quiet_fit(MLPRegressor(**SMALL), X, big[:, ::2])
    assert_same_fitted_model(ref, est2)


# --------------------------------------------------------------------------
# partial_fit / warm_start errors
# --------------------------------------------------------------------------
def test_partial_fit_requires_classes_on_first_call():
    X, y = make_data("multiclass")
    sk, ours = make_pair("MLPClassifier", **SMALL)
    assert_raises_like_sklearn(
        lambda: sk.partial_fit(X, y), lambda: ours.partial_fit(X, y), ValueError
    )
    # once classes are given, later calls need not repeat them
    ours.partial_fit(X, y, classes=[0, 1, 2])
    ours.partial_fit(X, y)


def test_partial_fit_rejects_unseen_classes():
    X, y = make_data("multiclass")
    sk, ours = make_pair("MLPClassifier", **SMALL)
    # classes= does not cover y
    assert_raises_like_sklearn(
        lambda: sk.partial_fit(X, y, classes=[0, 1]),
        lambda: ours.partial_fit(X, y, classes=[0, 1]),
        ValueError,
    )
    # unseen label on a later call
    sk, ours = make_pair("MLPClassifier", **SMALL)
    mask = y < 2
    sk.partial_fit(X[mask], y[mask], classes=[0, 1])
    ours.partial_fit(X[mask], y[mask], classes=[0, 1])
    assert_raises_like_sklearn(
        lambda: sk.partial_fit(X, y), lambda: ours.partial_fit(X, y), ValueError
    )
    # a different classes= on a later call
    assert_raises_like_sklearn(
        lambda: sk.partial_fit(X, y, classes=[0, 1, 2]),
        lambda: ours.partial_fit(X, y, classes=[0, 1, 2]),
        ValueError,
    )


@pytest.mark.parametrize("name", NAMES)
def test_partial_fit_early_stopping_raises(name):
    X, y = make_data(_kind(name))
    sk, ours = make_pair(name, **SMALL, early_stopping=True)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    err = assert_raises_like_sklearn(
        lambda: sk.partial_fit(X, y, **kw),
        lambda: ours.partial_fit(X, y, **kw),
        ValueError,
    )
    assert "partial_fit does not support early_stopping=True" in str(err)
    # also after a regular fit
    quiet_fit(ours, X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        ours.partial_fit(X, y)


def test_partial_fit_not_available_for_lbfgs():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")
    assert hasattr(MLPClassifier(solver="adam"), "partial_fit")
    assert hasattr(MLPRegressor(solver="adam"), "partial_fit")


def test_warm_start_with_different_classes_raises():
    X, y = make_data("multiclass")
    sk, ours = make_pair("MLPClassifier", **SMALL, warm_start=True)
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    y2 = np.where(y == 2, 5, y)
    err = assert_raises_like_sklearn(
        lambda: quiet_fit(sk, X, y2), lambda: quiet_fit(ours, X, y2), ValueError
    )
    assert "warm_start can only be used where `y` has the same classes" in str(err)
    # a subset of the classes is also rejected
    mask = y < 2
    assert_raises_like_sklearn(
        lambda: quiet_fit(sk, X[mask], y[mask]),
        lambda: quiet_fit(ours, X[mask], y[mask]),
        ValueError,
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("hidden", [(6, 5), (7,), (7, 5, 3)])
@pytest.mark.parametrize("how", ["warm_start", "partial_fit", "lbfgs"])
def test_continuing_with_other_hidden_layers_raises(name, hidden, how):
    # scikit-learn trains on its old layers, or fails in its arrays: a clear error here
    X, y = make_data(_kind(name))
    solver = "lbfgs" if how == "lbfgs" else "adam"
    est = quiet_fit(OURS[name](**SMALL, solver=solver, warm_start=True), X, y)
    before = [c.copy() for c in est.coefs_]
    est.set_params(hidden_layer_sizes=hidden)
    method = "partial_fit" if how == "partial_fit" else "fit"
    with pytest.raises(ValueError) as err:
        quiet_fit(est, X, y, method=method)
    message = str(err.value)
    assert f"The model's layers {[X.shape[1], 7, 5, est.n_outputs_]}" in message
    assert f"need {[X.shape[1], *hidden, est.n_outputs_]}" in message
    advice = "fit a new model" if how == "partial_fit" else "warm_start=False"
    assert advice in message
    assert all(np.array_equal(a, b) for a, b in zip(est.coefs_, before, strict=True))
    # a fit without warm start builds the new layers
    est.set_params(warm_start=False)
    assert [c.shape[1] for c in quiet_fit(est, X, y).coefs_[:-1]] == list(hidden)


def test_refit_with_different_n_features_without_warm_start():
    X, y = make_data("multiclass")
    est = quiet_fit(MLPClassifier(**SMALL), X, y)
    est2 = quiet_fit(est, X[:, :4], y)
    assert est2.n_features_in_ == 4
    assert est2.coefs_[0].shape == (4, 7)


# --------------------------------------------------------------------------
# invalid hyper-parameters / inputs: same exception and message as sklearn
# --------------------------------------------------------------------------
INVALID_PARAMS = [
    ("MLPClassifier", dict(alpha=-1)),
    ("MLPRegressor", dict(alpha=-1.0)),
    ("MLPClassifier", dict(hidden_layer_sizes=(0,))),
    ("MLPRegressor", dict(hidden_layer_sizes=(5, -1))),
    ("MLPClassifier", dict(hidden_layer_sizes=0)),
    ("MLPClassifier", dict(hidden_layer_sizes="abc")),
    ("MLPClassifier", dict(activation="softmax")),
    ("MLPClassifier", dict(solver="foo")),
    ("MLPRegressor", dict(solver="foo")),
    ("MLPClassifier", dict(batch_size=0)),
    ("MLPClassifier", dict(batch_size="big")),
    ("MLPClassifier", dict(learning_rate="foo")),
    ("MLPClassifier", dict(learning_rate_init=0.0)),
    ("MLPClassifier", dict(power_t=-0.5)),
    ("MLPClassifier", dict(max_iter=0)),
    ("MLPClassifier", dict(max_iter=2.5)),
    ("MLPClassifier", dict(shuffle="yes")),
    ("MLPClassifier", dict(random_state="seed")),
    ("MLPClassifier", dict(tol=-1e-3)),
    ("MLPClassifier", dict(momentum=2)),
    ("MLPRegressor", dict(momentum=-0.1)),
    ("MLPClassifier", dict(nesterovs_momentum=1)),
    ("MLPClassifier", dict(early_stopping="no")),
    ("MLPClassifier", dict(validation_fraction=1.0)),
    ("MLPRegressor", dict(validation_fraction=-0.1)),
    ("MLPClassifier", dict(beta_1=1.0)),
    ("MLPClassifier", dict(beta_2=1.5)),
    ("MLPClassifier", dict(epsilon=0.0)),
    ("MLPClassifier", dict(n_iter_no_change=0)),
    ("MLPClassifier", dict(max_fun=0, solver="lbfgs")),
    ("MLPClassifier", dict(warm_start="yes")),
]


def test_invalid_loss_lists_the_losses_mlp_rs_has():
    """scikit-learn's message for an unknown loss, with mlp_rs's longer list."""
    X, y = make_data("regression", n_samples=20)
    with pytest.raises(ValueError, match="must be a str among") as info:
        MLPRegressor(loss="hinge").fit(X, y)
    for loss in ("squared_error", "poisson", "absolute_error", "huber"):
        assert repr(loss) in str(info.value)
    assert "Got 'hinge' instead." in str(info.value)


@pytest.mark.parametrize(
    "name, params",
    INVALID_PARAMS,
    ids=[
        f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}" for n, p in INVALID_PARAMS
    ],
)
def test_invalid_params_same_error_as_sklearn(name, params):
    X, y = make_data(_kind(name), n_samples=20)
    sk, ours = make_pair(name, **{**SMALL, **params})
    assert_raises_like_sklearn(
        lambda: quiet_fit(sk, X, y), lambda: quiet_fit(ours, X, y)
    )


@pytest.mark.parametrize("name", NAMES)
def test_invalid_params_partial_fit(name):
    X, y = make_data(_kind(name), n_samples=20)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    sk, ours = make_pair(name, **SMALL, alpha=-1)
    assert_raises_like_sklearn(
        lambda: sk.partial_fit(X, y, **kw), lambda: ours.partial_fit(X, y, **kw)
    )


def test_validation_set_too_small():
    X, y = make_data("regression", n_samples=9)
    sk, ours = make_pair("MLPRegressor", **SMALL, early_stopping=True)
    err = assert_raises_like_sklearn(
        lambda: quiet_fit(sk, X, y), lambda: quiet_fit(ours, X, y), ValueError
    )
    assert "The validation set is too small" in str(err)


def test_early_stopping_stratify_error_like_sklearn():
    # a class with a single member cannot be stratified
    X, _ = make_data("binary", n_samples=30)
    y = np.zeros(30, dtype=int)
    y[0] = 1
    sk, ours = make_pair("MLPClassifier", **SMALL, early_stopping=True)
    assert_raises_like_sklearn(
        lambda: quiet_fit(sk, X, y), lambda: quiet_fit(ours, X, y)
    )


def test_nonfinite_weights_raise():
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    sk, ours = make_pair("MLPRegressor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="non-finite parameter weights"):
            sk.fit(X, y)
        # mlp_rs stops at the first non-finite loss and says why, keeping the weights
        with pytest.raises(ValueError, match="diverged.*learning rate.*scale"):
            ours.fit(X, y)
    # a failed call leaves the estimator as it was: here, not fitted
    assert not hasattr(ours, "coefs_")


@pytest.mark.parametrize("bad", ["nan", "inf"])
@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_input_raises(name, bad):
    X, y = make_data(_kind(name), n_samples=20)
    X = X.copy()
    X[3, 2] = float(bad)
    sk, ours = make_pair(name, **SMALL)
    assert_raises_like_sklearn(lambda: sk.fit(X, y), lambda: ours.fit(X, y), ValueError)
    # also at predict time
    Xc, yc = make_data(_kind(name), n_samples=20)
    sk, ours = fit_both(name, Xc, yc, **SMALL)
    assert_raises_like_sklearn(
        lambda: sk.predict(X), lambda: ours.predict(X), ValueError
    )


@pytest.mark.parametrize("name", NAMES)
def test_inconsistent_lengths_raise(name):
    X, y = make_data(_kind(name), n_samples=20)
    sk, ours = make_pair(name, **SMALL)
    assert_raises_like_sklearn(
        lambda: sk.fit(X, y[:-1]), lambda: ours.fit(X, y[:-1]), ValueError
    )
    sk, ours = make_pair(name, **SMALL)
    assert_raises_like_sklearn(
        lambda: sk.fit(X, y, sample_weight=np.ones(19)),
        lambda: ours.fit(X, y, sample_weight=np.ones(19)),
        ValueError,
    )


def test_regressor_rejects_string_targets():
    X, y = make_data("multiclass_str", n_samples=20)
    sk, ours = make_pair("MLPRegressor", **SMALL)
    assert_raises_like_sklearn(lambda: sk.fit(X, y), lambda: ours.fit(X, y), ValueError)


def test_classifier_rejects_continuous_targets():
    X, y = make_data("regression", n_samples=20)
    sk, ours = make_pair("MLPClassifier", **SMALL)
    assert_raises_like_sklearn(lambda: sk.fit(X, y), lambda: ours.fit(X, y), ValueError)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_predict_wrong_n_features(name, method):
    if method == "predict_proba" and name == "MLPRegressor":
        pytest.skip("no predict_proba")
    X, y = make_data(_kind(name))
    sk, ours = fit_both(name, X, y, **SMALL)
    args = (X[:, :3],) if method != "score" else (X[:, :3], y)
    err = assert_raises_like_sklearn(
        lambda: getattr(sk, method)(*args),
        lambda: getattr(ours, method)(*args),
        ValueError,
    )
    assert "X has 3 features" in str(err)


@pytest.mark.parametrize("name", NAMES)
def test_warm_start_wrong_n_features(name):
    X, y = make_data(_kind(name))
    sk, ours = fit_both(name, X, y, **SMALL, warm_start=True)
    assert_raises_like_sklearn(
        lambda: quiet_fit(sk, X[:, :3], y),
        lambda: quiet_fit(ours, X[:, :3], y),
        ValueError,
    )


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba"])
def test_not_fitted(method):
    X, _ = make_data("binary")
    with pytest.raises(NotFittedError):
        getattr(MLPClassifier(), method)(X)
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)


def test_batch_size_clipped_warning():
    X, y = make_data("binary", n_samples=20)
    sk, ours = make_pair("MLPClassifier", **SMALL, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning) as rec_sk:
            sk.fit(X, y)
        with pytest.warns(UserWarning) as rec_ours:
            ours.fit(X, y)
    msgs_sk = sorted(str(w.message) for w in rec_sk if w.category is UserWarning)
    msgs_ours = sorted(str(w.message) for w in rec_ours if w.category is UserWarning)
    assert msgs_ours == msgs_sk
    assert any("It is going to be clipped" in m for m in msgs_ours)
    assert_same_fitted_model(sk, ours)


def test_column_vector_target_warns_like_sklearn():
    X, y = make_data("regression")
    sk, ours = make_pair("MLPRegressor", **SMALL)
    with pytest.warns(DataConversionWarning):
        quiet_fit(sk, X, y.reshape(-1, 1))
    with pytest.warns(DataConversionWarning):
        quiet_fit(ours, X, y.reshape(-1, 1))
    assert_same_fitted_model(sk, ours)
    assert ours.predict(X).shape == (X.shape[0],)


# --------------------------------------------------------------------------
# verbose output
# --------------------------------------------------------------------------
VERBOSE_CASES = [
    ("MLPClassifier", dict(solver="sgd", learning_rate_init=0.05)),
    (
        "MLPClassifier",
        dict(
            solver="sgd",
            learning_rate="adaptive",
            tol=10.0,
            n_iter_no_change=1,
            max_iter=8,
            learning_rate_init=0.05,
        ),
    ),
    ("MLPClassifier", dict(solver="adam", tol=10.0, n_iter_no_change=2, max_iter=10)),
    ("MLPClassifier", dict(solver="adam", early_stopping=True, max_iter=6)),
    ("MLPRegressor", dict(solver="adam", learning_rate_init=0.01)),
    (
        "MLPRegressor",
        dict(
            solver="sgd",
            learning_rate_init=0.01,
            early_stopping=True,
            tol=10.0,
            n_iter_no_change=2,
            max_iter=10,
        ),
    ),
]


def _sklearn_lines(out, verbose):
    """Our output without the timing lines verbose=2 adds to scikit-learn's."""
    lines = out.splitlines(keepends=True)
    timing = [ln for ln in lines if re.match(r"  epoch time \d+\.\d{3} s, ", ln)]
    if verbose == 2:
        assert timing and len(timing) == sum(ln.startswith("Iteration") for ln in lines)
    else:
        assert not timing
    return "".join(ln for ln in lines if ln not in timing)


@pytest.mark.parametrize("verbose", [True, 2])
@pytest.mark.parametrize(
    "name, params",
    VERBOSE_CASES,
    ids=[f"{n}-{i}" for i, (n, _) in enumerate(VERBOSE_CASES)],
)
def test_verbose_output_matches_sklearn(capsys, name, params, verbose):
    X, y = make_data(_kind(name))
    params = {**SMALL, **params, "verbose": verbose}
    sk, ours = make_pair(name, **params)
    capsys.readouterr()
    quiet_fit(sk, X, y)
    out_sk = capsys.readouterr().out
    quiet_fit(ours, X, y)
    out_ours = capsys.readouterr().out
    assert re.search(r"^Iteration 1, loss = \d+\.\d{8}$", out_sk, re.M)
    assert _sklearn_lines(out_ours, verbose) == out_sk

    # partial_fit prints too
    if name == "MLPClassifier":
        kw = {"classes": np.unique(y)}
    else:
        kw = {}
    if not params.get("early_stopping"):
        sk, ours = make_pair(name, **params)
        sk.partial_fit(X, y, **kw)
        out_sk = capsys.readouterr().out
        ours.partial_fit(X, y, **kw)
        out_ours = capsys.readouterr().out
        assert _sklearn_lines(out_ours, verbose) == out_sk
        assert out_ours.startswith("Iteration 1, loss = ")


@pytest.mark.parametrize("name", NAMES)
def test_not_verbose_prints_nothing(capsys, name):
    X, y = make_data(_kind(name))
    quiet_fit(OURS[name](**SMALL), X, y)
    quiet_fit(OURS[name](**SMALL, solver="lbfgs"), X, y)
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ""


# --------------------------------------------------------------------------
# pickling
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_pickle_roundtrip(name, solver):
    X, y = make_data(_kind(name))
    est = quiet_fit(OURS[name](**{**SMALL, **_solver_params(solver)}), X, y)
    est2 = pickle.loads(pickle.dumps(est))
    assert type(est2) is type(est)
    assert est2.get_params() == est.get_params()
    assert coefs_equal(est, est2)
    if name == "MLPClassifier":
        np.testing.assert_array_equal(est2.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(est2.classes_, est.classes_)
    np.testing.assert_array_equal(est2.predict(X), est.predict(X))
    assert est2.n_iter_ == est.n_iter_
    assert est2.loss_ == est.loss_

    # training continues identically from the unpickled model
    if solver != "lbfgs":
        for e in (est, est2):
            e.partial_fit(X, y)
            e.partial_fit(X, y)
        assert coefs_equal(est, est2)
        assert est2.t_ == est.t_
        assert est2.loss_curve_ == est.loss_curve_
    for e in (est, est2):
        e.set_params(warm_start=True, max_iter=2)
        quiet_fit(e, X, y)
    assert coefs_equal(est, est2)


def test_pickle_unfitted_and_after_partial_fit():
    est = pickle.loads(pickle.dumps(MLPClassifier(alpha=0.3, n_jobs=2)))
    assert est.alpha == 0.3 and est.n_jobs == 2
    X, y = make_data("multiclass")
    a = MLPClassifier(**SMALL)
    a.partial_fit(X[:25], y[:25], classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    a.partial_fit(X[25:], y[25:])
    b.partial_fit(X[25:], y[25:])
    assert coefs_equal(a, b)
    # the unpickled model matches scikit-learn continuing the same way
    sk = sk_nn.MLPClassifier(**SMALL)
    sk.partial_fit(X[:25], y[:25], classes=[0, 1, 2])
    sk = pickle.loads(pickle.dumps(sk))
    sk.partial_fit(X[25:], y[25:])
    assert_same_fitted_model(sk, b)


def test_pickle_float32_model():
    X, y = make_data("regression")
    est = quiet_fit(MLPRegressor(**SMALL), X.astype(np.float32), y)
    est2 = pickle.loads(pickle.dumps(est))
    assert all(c.dtype == np.float32 for c in est2.coefs_)
    np.testing.assert_array_equal(
        est2.predict(X.astype(np.float32)), est.predict(X.astype(np.float32))
    )


# --------------------------------------------------------------------------
# convergence warnings
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_convergence_warning_when_max_iter_reached(name, solver):
    X, y = make_data(_kind(name))
    params = dict(hidden_layer_sizes=(5,), random_state=0, solver=solver, max_iter=3)
    sk, ours = make_pair(name, **params)
    with pytest.warns(ConvergenceWarning) as rec_sk:
        sk.fit(X, y)
    with pytest.warns(ConvergenceWarning) as rec_ours:
        ours.fit(X, y)
    msgs_sk = [str(w.message) for w in rec_sk if w.category is ConvergenceWarning]
    msgs_ours = [str(w.message) for w in rec_ours if w.category is ConvergenceWarning]
    assert msgs_ours == msgs_sk
    assert ours.n_iter_ == 3
    if solver != "lbfgs":
        assert msgs_ours == [
            "Stochastic Optimizer: Maximum iterations (3) reached and the "
            "optimization hasn't converged yet."
        ]


@pytest.mark.parametrize("name", NAMES)
def test_no_convergence_warning_when_converged(name):
    X, y = make_data(_kind(name))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = OURS[name](
            hidden_layer_sizes=(5,),
            random_state=0,
            tol=10.0,
            n_iter_no_change=2,
            max_iter=50,
        ).fit(X, y)
    assert est.n_iter_ == 4


def test_partial_fit_does_not_warn():
    X, y = make_data("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        MLPClassifier(**{**SMALL, "max_iter": 1}).partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_n_iter_respects_max_iter(solver):
    X, y = make_data("multiclass")
    est = MLPClassifier(
        hidden_layer_sizes=(5,),
        solver=solver,
        warm_start=True,
        max_iter=10,
        n_iter_no_change=np.inf,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_iter_ == 10
    est.set_params(max_iter=20)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_iter_ == 20
    if solver != "lbfgs":
        assert len(est.loss_curve_) == 30


# --------------------------------------------------------------------------
# score / predict semantics
# --------------------------------------------------------------------------
def test_classifier_score():
    X, y = make_data("multiclass_str")
    est = quiet_fit(MLPClassifier(**SMALL), X, y)
    pred = est.predict(X)
    assert est.score(X, y) == pytest.approx(accuracy_score(y, pred))
    sw = np.linspace(0.1, 2, len(y))
    assert est.score(X, y, sample_weight=sw) == pytest.approx(
        accuracy_score(y, pred, sample_weight=sw)
    )
    np.testing.assert_array_equal(pred, est.classes_[est.predict_proba(X).argmax(1)])
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        est.predict_log_proba(X), np.log(est.predict_proba(X)), rtol=1e-12
    )


def test_binary_predict_proba_shape():
    X, y = make_data("binary")
    est = quiet_fit(MLPClassifier(**SMALL), X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(X), (proba[:, 1] > 0.5).astype(int))


@pytest.mark.parametrize("kind", ["regression", "regression_multi"])
def test_regressor_score(kind):
    X, y = make_data(kind)
    est = quiet_fit(MLPRegressor(**SMALL, solver="lbfgs"), X, y)
    assert est.score(X, y) == pytest.approx(r2_score(y, est.predict(X)))
    assert est.predict(X).shape == y.shape


def test_multilabel_predict():
    X, y = make_data("multilabel")
    est = quiet_fit(MLPClassifier(**SMALL, solver="lbfgs"), X, y)
    proba = est.predict_proba(X)
    np.testing.assert_array_equal(est.predict(X), (proba > 0.5).astype(int))
    assert est.score(X, y) == pytest.approx(accuracy_score(y, est.predict(X)))


def test_learns_something():
    X, y = make_data("multiclass", n_samples=150)
    est = MLPClassifier(
        hidden_layer_sizes=(20,), random_state=0, solver="lbfgs", max_iter=200
    ).fit(X, y)
    assert est.score(X, y) > 0.9
    X, y = make_data("regression", n_samples=150)
    est = MLPRegressor(
        hidden_layer_sizes=(20,), random_state=0, solver="lbfgs", max_iter=300
    ).fit(X, y)
    assert est.score(X, y) > 0.95


def test_works_in_pipeline_and_cross_val_score():
    X, y = make_data("multiclass", n_samples=60)
    params = dict(hidden_layer_sizes=(5,), random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        s_ours = cross_val_score(
            make_pipeline(StandardScaler(), MLPClassifier(**params)), X, y, cv=3
        )
        s_sk = cross_val_score(
            make_pipeline(StandardScaler(), sk_nn.MLPClassifier(**params)), X, y, cv=3
        )
    assert_close(s_ours, s_sk)


# --------------------------------------------------------------------------
# pandas feature names
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_feature_names_in_with_pandas(name):
    pd = pytest.importorskip("pandas")
    X, y = make_data(_kind(name))
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    est = quiet_fit(OURS[name](**SMALL, early_stopping=True), df, y)
    np.testing.assert_array_equal(est.feature_names_in_, cols)
    est.predict(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est.score(df, y)
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)
    est_np = quiet_fit(OURS[name](**SMALL), X, y)
    assert not hasattr(est_np, "feature_names_in_")
    sk = quiet_fit(getattr(sk_nn, name)(**SMALL, early_stopping=True), df, y)
    assert_same_fitted_model(sk, est)


# --------------------------------------------------------------------------
# invalid inputs: same exception type and message as scikit-learn
# --------------------------------------------------------------------------
def _Xy(name):
    return make_data(_kind(name))


INVALID_INPUTS = {
    "empty-X": ("MLPClassifier", lambda e, X, y: e.fit(X[:0], y[:0])),
    "3d-X": ("MLPClassifier", lambda e, X, y: e.fit(X[:, :, None], y)),
    "1d-X": ("MLPRegressor", lambda e, X, y: e.fit(X[:, 0], y)),
    "nan-y": ("MLPRegressor", lambda e, X, y: e.fit(X, np.r_[np.nan, y[1:]])),
    "complex-X": ("MLPRegressor", lambda e, X, y: e.fit(X + 1j, y)),
    "3d-y": ("MLPRegressor", lambda e, X, y: e.fit(X, y[:, None, None])),
    "2d-sample-weight": (
        "MLPRegressor",
        lambda e, X, y: e.fit(X, y, sample_weight=np.ones((len(y), 2))),
    ),
    "nan-sample-weight": (
        "MLPRegressor",
        lambda e, X, y: e.fit(X, y, sample_weight=np.r_[np.nan, np.ones(len(y) - 1)]),
    ),
    "predict-0-rows": ("MLPRegressor", lambda e, X, y: e.fit(X, y).predict(X[:0])),
    "predict-sparse-wrong-n-features": (
        "MLPClassifier",
        lambda e, X, y: e.fit(X, y).predict(sp.csr_matrix(X[:, :2])),
    ),
    "score-wrong-y-length": (
        "MLPClassifier",
        lambda e, X, y: e.fit(X, y).score(X, y[:-1]),
    ),
    "partial_fit-n_features-change": (
        "MLPRegressor",
        lambda e, X, y: (e.partial_fit(X, y), e.partial_fit(X[:, :2], y)),
    ),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", list(INVALID_INPUTS))
def test_invalid_input_same_error_as_sklearn(case):
    name, call = INVALID_INPUTS[case]
    X, y = _Xy(name)
    sk, ours = make_pair(name, **SMALL)
    assert_raises_like_sklearn(lambda: call(sk, X, y), lambda: call(ours, X, y))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_changed_n_outputs_raises():
    # scikit-learn fails inside numpy here; mlp_rs must refuse with a ValueError
    # too (its message may be clearer).
    X, y = make_data("regression")
    est = MLPRegressor(**SMALL)
    est.partial_fit(X, y)
    with pytest.raises(ValueError):
        est.partial_fit(X, np.c_[y, y])
    est = MLPRegressor(**SMALL, warm_start=True).fit(X, y)
    with pytest.raises(ValueError):
        est.fit(X, np.c_[y, y])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_warm_start_turning_early_stopping_on_and_off(name):
    # scikit-learn fails in its bookkeeping after an epoch (an AttributeError turning
    # it on, a TypeError off); mlp_rs goes on, the scores starting with that fit
    X, y = _Xy(name)
    cls = MLPClassifier if name == "MLPClassifier" else MLPRegressor
    est = cls(**SMALL, warm_start=True).fit(X, y)
    assert est.validation_scores_ is None
    est.set_params(early_stopping=True).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ == SMALL["max_iter"]
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert len(est.loss_curve_) == 2 * SMALL["max_iter"]
    first = [c.copy() for c in est.coefs_]  # the best of the first phase
    est.set_params(early_stopping=False).fit(X, y)
    assert est.best_loss_ == min(est.loss_curve_[-est.n_iter_ :])
    assert len(est.loss_curve_) == 3 * SMALL["max_iter"]
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    # on again: its own scores, not the first phase's best weights brought back
    est.set_params(early_stopping=True).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None
    assert not all(np.array_equal(a, b) for a, b in zip(first, est.coefs_, strict=True))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "how", ["warm start", "warm start early stopping", "partial_fit"]
)
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_stochastic_solver_continues_an_lbfgs_model(name, how):
    # scikit-learn fails (an L-BFGS model has no loss_curve_); mlp_rs trains on from
    # the L-BFGS weights, its stochastic records starting with that call
    X, y = _Xy(name)
    cls = MLPClassifier if name == "MLPClassifier" else MLPRegressor
    est = cls(**SMALL, solver="lbfgs", warm_start=True).fit(X, y)
    lbfgs = [c.copy() for c in est.coefs_ + est.intercepts_]
    assert not hasattr(est, "loss_curve_")
    early = how.endswith("early stopping")
    est.set_params(solver="sgd", learning_rate_init=1e-12, early_stopping=early)
    if how == "partial_fit":
        est.partial_fit(X, y)
    else:
        est.fit(X, y)
    assert len(est.loss_curve_) == est.n_iter_ == (1 if how == "partial_fit" else 5)
    assert (
        (len(est.validation_scores_) == est.n_iter_)
        if early
        else (est.validation_scores_ is None)
    )
    for before, after in zip(lbfgs, est.coefs_ + est.intercepts_, strict=True):
        np.testing.assert_allclose(after, before, rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params", [{}, {"early_stopping": True}, {"solver": "lbfgs"}, {"warm_start": True}]
)
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_loss_attributes_have_sklearns_types(name, params):
    # NumPy floats for the losses, Python floats for the validation scores, after a
    # float32 fit and a second fit (a warm start continues the float32 model; which
    # NumPy float scikit-learn's then are depends on NumPy's version)
    def kind(value):
        return "numpy" if isinstance(value, np.floating) else type(value).__name__

    X, y = _Xy(name)
    sk, ours = make_pair(name, **SMALL, **params)
    for est in (sk, ours):
        est.fit(X.astype(np.float32), y).fit(X, y)
    for attr in ("loss_", "best_loss_", "best_validation_score_"):
        want, got = getattr(sk, attr, "missing"), getattr(ours, attr, "missing")
        assert kind(got) == kind(want), attr
    for attr in ("loss_curve_", "validation_scores_"):
        want, got = getattr(sk, attr, None) or [], getattr(ours, attr, None) or []
        assert {kind(v) for v in got} == {kind(v) for v in want}, attr
