"""mlp_rs inside the scikit-learn ecosystem.

Pipelines and model selection (with joblib's loky processes and, when installed, the
dask backend), dask-ml's ``Incremental``, conversion to and from fitted scikit-learn
estimators, and how mlp_rs's own threads compose with joblib workers and threadpoolctl.

Optional dependencies (``dask``, ``distributed``, ``dask-ml``, ``pandas``) are skipped
cleanly when they are not installed.
"""

import os
import pickle
import warnings

import joblib
import numpy as np
import pytest
import sklearn.neural_network as sk_nn
from conftest import assert_close, make_data, quiet_fit
from mlp_rs import MLPClassifier, MLPRegressor, _core
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
GRID = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}


def _same_weights(a, b):
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _import_or_skip(name):
    """pytest.importorskip that also skips when the module is installed but fails to
    import (an optional package built for other numpy / scikit-learn versions)."""
    try:
        return pytest.importorskip(name)
    except pytest.skip.Exception:
        raise
    except Exception as exc:
        pytest.skip(f"{name} does not import here: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def clf_data():
    return make_data("multiclass", n_samples=150)


# --------------------------------------------------------------------------
# pipelines and model selection
# --------------------------------------------------------------------------
def test_pipeline_scaler_mlp_matches_sklearn():
    X, y = make_data("multiclass", n_samples=120)
    X = X * 50 + 10  # the scaler has work to do
    params = dict(
        hidden_layer_sizes=(10,), learning_rate_init=0.01, max_iter=100, random_state=0
    )
    ours = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(**params))])
    sk = Pipeline([("scale", StandardScaler()), ("mlp", sk_nn.MLPClassifier(**params))])
    ours.fit(X, y)
    sk.fit(X, y)
    assert isinstance(ours[-1], MLPClassifier)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    assert_close(ours.predict_proba(X), sk.predict_proba(X))
    assert ours.score(X, y) == sk.score(X, y)
    assert ours.score(X, y) > 0.8
    # get_params / set_params reach the estimator's parameters through the pipeline.
    ours.set_params(mlp__alpha=0.5, mlp__n_jobs=1)
    assert ours.get_params()["mlp__alpha"] == 0.5
    assert ours[-1].n_jobs == 1


def _grid_search(estimator, X, y, n_jobs):
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    return GridSearchCV(estimator, GRID, cv=cv, n_jobs=n_jobs).fit(X, y)


def test_grid_search_loky_processes(clf_data):
    X, y = clf_data
    est = MLPClassifier(**SMALL)
    parallel = _grid_search(est, X, y, n_jobs=2)  # loky worker processes
    serial = _grid_search(est, X, y, n_jobs=1)
    reference = _grid_search(sk_nn.MLPClassifier(**SMALL), X, y, n_jobs=1)

    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(
            parallel.cv_results_[key], serial.cv_results_[key]
        )
        np.testing.assert_allclose(
            parallel.cv_results_[key], reference.cv_results_[key], atol=1e-12
        )
    assert parallel.best_params_ == serial.best_params_ == reference.best_params_
    assert type(parallel.best_estimator_) is MLPClassifier
    _same_weights(parallel.best_estimator_, serial.best_estimator_)
    assert parallel.score(X, y) == serial.score(X, y)


def test_randomized_search(clf_data):
    X, y = clf_data
    distributions = {
        "alpha": loguniform(1e-5, 1e-1),
        "learning_rate_init": loguniform(1e-3, 1e-1),
        "hidden_layer_sizes": [(4,), (8,), (8, 4)],
    }
    search = RandomizedSearchCV(
        MLPClassifier(**SMALL), distributions, n_iter=4, cv=3, random_state=0, n_jobs=2
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert type(search.best_estimator_) is MLPClassifier
    best = search.best_params_
    assert 1e-5 <= best["alpha"] <= 1e-1
    assert search.best_estimator_.get_params()["alpha"] == best["alpha"]
    assert search.score(X, y) > 0.5


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_cross_val_score_matches_sklearn(name):
    kind = "multiclass" if name == "MLPClassifier" else "regression"
    X, y = make_data(kind, n_samples=90)
    cv = KFold(3, shuffle=True, random_state=0)
    ours_cls = MLPClassifier if name == "MLPClassifier" else MLPRegressor
    ours = cross_val_score(ours_cls(**SMALL), X, y, cv=cv, n_jobs=2)
    sk = cross_val_score(getattr(sk_nn, name)(**SMALL), X, y, cv=cv)
    assert ours.shape == (3,)
    np.testing.assert_allclose(ours, sk, rtol=1e-6, atol=1e-9)


def test_grid_search_dask_backend(clf_data):
    _import_or_skip("dask")
    # (a dask release that the installed distributed does not match yet fails to
    # import: a skip, like any optional package that does not import here)
    distributed = _import_or_skip("distributed")
    X, y = clf_data
    est = MLPClassifier(**SMALL)
    serial = _grid_search(est, X, y, n_jobs=1)
    with (
        distributed.Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
        ),
        joblib.parallel_backend("dask"),
    ):
        # Fits run concurrently on the worker's threads, in this process.
        on_dask = _grid_search(est, X, y, n_jobs=-1)
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], serial.cv_results_[key])
    assert on_dask.best_params_ == serial.best_params_
    _same_weights(on_dask.best_estimator_, serial.best_estimator_)


# --------------------------------------------------------------------------
# dask-ml
# --------------------------------------------------------------------------
def test_dask_ml_incremental():
    da = _import_or_skip("dask.array")
    wrappers = _import_or_skip("dask_ml.wrappers")
    X, y = make_data("multiclass", n_samples=300)
    classes = np.unique(y)
    blocks = 100
    X_dask = da.from_array(X, chunks=(blocks, X.shape[1]))
    y_dask = da.from_array(y, chunks=blocks)
    params = dict(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, random_state=0
    )

    inc = wrappers.Incremental(MLPClassifier(**params), shuffle_blocks=False)
    inc.fit(X_dask, y_dask, classes=classes)
    fitted = inc.estimator_
    assert type(fitted) is MLPClassifier

    # The same as calling partial_fit over the blocks in order ...
    manual = MLPClassifier(**params)
    for start in range(0, X.shape[0], blocks):
        manual.partial_fit(
            X[start : start + blocks], y[start : start + blocks], classes=classes
        )
    _same_weights(fitted, manual)
    assert fitted.t_ == manual.t_ == X.shape[0]

    # ... and as scikit-learn's estimator in the same wrapper.
    inc_sk = wrappers.Incremental(sk_nn.MLPClassifier(**params), shuffle_blocks=False)
    inc_sk.fit(X_dask, y_dask, classes=classes)
    for a, b in zip(fitted.coefs_, inc_sk.estimator_.coefs_, strict=True):
        assert_close(a, b)

    predicted = inc.predict(X_dask)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), manual.predict(X))
    proba = inc.predict_proba(X_dask).compute()
    np.testing.assert_array_equal(proba, manual.predict_proba(X))
    assert inc.score(X_dask, y_dask) == manual.score(X, y)


# --------------------------------------------------------------------------
# to_sklearn / from_sklearn
# --------------------------------------------------------------------------
CONVERSION_KINDS = ["binary", "multiclass", "multiclass_str", "multilabel"]
CONVERSION_KINDS += ["regression", "regression_multi"]


def _tolerance(dtype):
    return (
        dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    )


def _check_same_predictions(a, b, X):
    """Two fitted models (ours or scikit-learn's) predict the same on X."""
    tol = _tolerance(a.coefs_[0].dtype)
    pred_a, pred_b = a.predict(X), b.predict(X)
    assert pred_a.dtype == pred_b.dtype
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(pred_a, pred_b)
        proba_a, proba_b = a.predict_proba(X), b.predict_proba(X)
        assert proba_a.dtype == proba_b.dtype
        np.testing.assert_allclose(proba_a, proba_b, **tol)
    else:
        np.testing.assert_allclose(pred_a, pred_b, **tol)


def _ours_and_sklearn(kind):
    name = "MLPRegressor" if kind.startswith("regression") else "MLPClassifier"
    ours = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name]
    return ours, getattr(sk_nn, name)


def _own_defaults(ours_cls, sk_cls):
    """mlp_rs's own parameters (n_jobs, callbacks, dropout...) and their defaults."""
    theirs = sk_cls().get_params()
    return {k: v for k, v in ours_cls().get_params().items() if k not in theirs}


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", CONVERSION_KINDS)
def test_to_sklearn(kind, dtype, solver):
    ours_cls, sk_cls = _ours_and_sklearn(kind)
    X, y = make_data(kind, n_samples=60)
    X = X.astype(dtype)
    est = ours_cls(hidden_layer_sizes=(6, 4), solver=solver, max_iter=20, n_jobs=2)
    est.set_params(random_state=0)
    quiet_fit(est, X, y)

    sk = est.to_sklearn()
    assert type(sk) is sk_cls
    expected = est.get_params()
    for own in _own_defaults(ours_cls, sk_cls):
        del expected[own]
    assert sk.get_params() == expected
    for a, b in zip(
        est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_, strict=True
    ):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for attr in ("n_iter_", "n_layers_", "n_outputs_", "out_activation_", "loss_"):
        assert getattr(sk, attr) == getattr(est, attr), attr
    assert sk.n_features_in_ == est.n_features_in_
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(sk.classes_, est.classes_)
    if solver != "lbfgs":
        assert sk.t_ == est.t_
        assert sk.loss_curve_ == est.loss_curve_
    _check_same_predictions(est, sk, X)
    # R2 equal up to the dtype's rounding (accuracies: predict was compared exactly)
    assert sk.score(X, y) == pytest.approx(
        est.score(X, y), rel=_tolerance(dtype)["rtol"]
    )

    # The converted model is independent of ours, and a scikit-learn model in full.
    sk.coefs_[0][...] = 0
    assert np.any(est.coefs_[0] != 0)
    pickle.loads(pickle.dumps(sk)).predict(X)
    assert clone(sk).get_params() == expected


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", CONVERSION_KINDS)
def test_from_sklearn(kind, dtype, solver):
    ours_cls, sk_cls = _ours_and_sklearn(kind)
    X, y = make_data(kind, n_samples=60)
    X = X.astype(dtype)
    sk = sk_cls(hidden_layer_sizes=(6, 4), solver=solver, max_iter=20, random_state=0)
    quiet_fit(sk, X, y)

    est = ours_cls.from_sklearn(sk)
    assert type(est) is ours_cls
    assert est.get_params() == {**sk.get_params(), **_own_defaults(ours_cls, sk_cls)}
    for a, b in zip(
        est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_, strict=True
    ):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    _check_same_predictions(est, sk, X)
    assert est.score(X, y) == pytest.approx(
        sk.score(X, y), rel=_tolerance(dtype)["rtol"]
    )

    # Round trip: back to scikit-learn, bit for bit.
    again = est.to_sklearn()
    for a, b in zip(
        again.coefs_ + again.intercepts_, sk.coefs_ + sk.intercepts_, strict=True
    ):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    _check_same_predictions(again, sk, X)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_round_trip_ours_sklearn_ours_is_exact(kind):
    ours_cls, _ = _ours_and_sklearn(kind)
    X, y = make_data(kind, n_samples=60)
    est = quiet_fit(
        ours_cls(hidden_layer_sizes=(5,), max_iter=10, random_state=0), X, y
    )
    back = ours_cls.from_sklearn(est.to_sklearn())
    _same_weights(est, back)
    if kind == "multiclass":
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    else:
        np.testing.assert_array_equal(back.predict(X), est.predict(X))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_training_continues_across_conversion(solver):
    """partial_fit after a conversion continues the same trajectory on either side."""
    X, y = make_data("multiclass", n_samples=80)
    classes = np.unique(y)
    params = dict(hidden_layer_sizes=(6,), solver=solver, random_state=0)

    reference = sk_nn.MLPClassifier(**params)
    for _ in range(4):
        reference.partial_fit(X, y, classes=classes)

    ours = MLPClassifier(**params)
    ours.partial_fit(X, y, classes=classes)
    ours.partial_fit(X, y)
    sk = ours.to_sklearn()  # ours -> scikit-learn
    sk.partial_fit(X, y)
    ours = MLPClassifier.from_sklearn(sk)  # scikit-learn -> ours
    ours.partial_fit(X, y)

    assert ours.t_ == reference.t_
    for a, b in zip(ours.coefs_, reference.coefs_, strict=True):
        assert_close(a, b)
    assert_close(ours.loss_curve_, reference.loss_curve_)


def test_conversion_of_early_stopping_model():
    X, y = make_data("binary", n_samples=100)
    est = quiet_fit(
        MLPClassifier(early_stopping=True, max_iter=30, random_state=0), X, y
    )
    sk = est.to_sklearn()
    assert sk.validation_scores_ == est.validation_scores_
    assert sk.best_validation_score_ == est.best_validation_score_
    _check_same_predictions(est, sk, X)
    _check_same_predictions(MLPClassifier.from_sklearn(sk), sk, X)


def test_conversion_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = make_data("binary", n_samples=60)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = quiet_fit(MLPClassifier(max_iter=10, random_state=0), frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "X does not have valid names"
        sk = est.to_sklearn()
        np.testing.assert_array_equal(sk.feature_names_in_, est.feature_names_in_)
        np.testing.assert_array_equal(sk.predict(frame), est.predict(frame))
        back = MLPClassifier.from_sklearn(sk)
        np.testing.assert_array_equal(back.feature_names_in_, est.feature_names_in_)
        np.testing.assert_array_equal(back.predict(frame), est.predict(frame))


def test_conversion_needs_a_fitted_model():
    with pytest.raises(NotFittedError):
        MLPClassifier().to_sklearn()
    with pytest.raises(NotFittedError):
        MLPRegressor().to_sklearn()
    with pytest.raises(NotFittedError):
        MLPClassifier.from_sklearn(sk_nn.MLPClassifier())
    with pytest.raises(NotFittedError):
        MLPRegressor.from_sklearn(sk_nn.MLPRegressor())


def test_from_sklearn_needs_the_matching_sklearn_class():
    X, y = make_data("binary", n_samples=40)
    sk_clf = quiet_fit(sk_nn.MLPClassifier(max_iter=5, random_state=0), X, y)
    ours = quiet_fit(MLPClassifier(max_iter=5, random_state=0), X, y)
    with pytest.raises(TypeError, match="MLPRegressor"):
        MLPRegressor.from_sklearn(sk_clf)
    with pytest.raises(TypeError):
        MLPClassifier.from_sklearn(ours)


# --------------------------------------------------------------------------
# thread composition: n_jobs inside joblib workers, threadpoolctl
# --------------------------------------------------------------------------
# Large enough that the engine uses its threads (tiny problems run on one thread).
THREADED = dict(hidden_layer_sizes=(200,), max_iter=2, random_state=0)


def _threaded_data():
    X, y = make_data("binary", n_samples=1000, n_features=100)
    return X, y


def _fit_reporting_threads(X, y, n_jobs):
    """Fits in the calling process; returns (weights, the threads the engine chose for
    the fit, BLAS thread limits before and after the fit, pid, OMP_NUM_THREADS).

    The engine's choice is read from what ``fit_stochastic`` returns, not counted in
    /proc: a thread count seen by the OS depends on the scheduler (threads of another
    pool may still be exiting), the choice does not."""
    blas_before = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    chosen = []
    original = _core.fit_stochastic

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        chosen.append(result["threads"])
        return result

    _core.fit_stochastic = spy
    try:
        est = quiet_fit(MLPClassifier(**THREADED, n_jobs=n_jobs), X, y)
    finally:
        _core.fit_stochastic = original
    blas_after = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    weights = est.coefs_ + est.intercepts_
    omp = os.environ.get("OMP_NUM_THREADS")
    return weights, chosen, blas_before, blas_after, os.getpid(), omp


def test_n_jobs_honoured_in_loky_workers():
    X, y = _threaded_data()
    jobs = (1, 2, 3, None)
    local = {k: _fit_reporting_threads(X, y, k) for k in jobs}
    remote = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_fit_reporting_threads)(X, y, k) for k in jobs
    )
    assert all(pid != os.getpid() for *_, pid, _ in remote)
    for k, (weights, chosen, blas_before, blas_after, _, omp) in zip(
        jobs, remote, strict=True
    ):
        # Inside a worker the fit asks for the threads n_jobs asks for, like outside;
        # None follows the OMP_NUM_THREADS loky set for the worker (its share of the
        # cores), so that the workers do not oversubscribe the machine ...
        expected = k if k is not None else max(1, int(omp))
        assert chosen == [expected], (k, chosen, omp)
        if k is not None:
            assert chosen == local[k][1], (k, chosen, local[k][1])
        # ... does not touch the BLAS limits loky set for the worker ...
        assert blas_after == blas_before
        # ... and trains the same model, whatever the thread count and process.
        for a, b in zip(weights, local[1][0], strict=True):
            np.testing.assert_array_equal(a, b)


def test_blas_limits_do_not_change_results():
    """mlp_rs computes with its own kernels and threads: limiting the BLAS thread
    pools (threadpoolctl) changes neither its results nor the limits themselves."""
    X, y = _threaded_data()
    free = quiet_fit(MLPClassifier(**THREADED, n_jobs=2), X, y)
    with threadpool_limits(limits=1):
        limited_before = threadpool_info()
        limited = quiet_fit(MLPClassifier(**THREADED, n_jobs=2), X, y)
        assert threadpool_info() == limited_before
    _same_weights(free, limited)
    np.testing.assert_array_equal(free.predict_proba(X), limited.predict_proba(X))


def test_concurrent_fits_in_threads_backend():
    """joblib's threading backend: fits run at the same time (the GIL is released)
    and each gives the model a fit on its own gives."""
    X, y = _threaded_data()
    expected = quiet_fit(MLPClassifier(**THREADED, n_jobs=1), X, y)

    def fit(n_jobs):
        return quiet_fit(MLPClassifier(**THREADED, n_jobs=n_jobs), X, y)

    models = joblib.Parallel(n_jobs=3, backend="threading")(
        joblib.delayed(fit)(k) for k in (1, 2, 1)
    )
    for model in models:
        _same_weights(model, expected)
