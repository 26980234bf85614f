"""Property-based hostile inputs (hypothesis): a fitted model or a clean exception.

Random shapes (0 and 1 rows/columns included), dtypes (float16/32/64, integers, bool,
object, complex, strings), values (NaN, inf, huge, subnormal), dense or sparse, random
valid and invalid hyperparameters, random sample weights and targets. For each case
``fit`` / ``partial_fit`` returns a model with finite weights or raises a clean Python
exception; ``predict`` / ``predict_proba`` / ``predict_log_proba`` / ``score`` on a
fitted model with hostile X return arrays of the right length or raise one.

Clean: ValueError, TypeError, AttributeError (NotFittedError and
InvalidParameterError are subclasses). Any other exception counts as a failure unless
scikit-learn's own estimator raises the same type on the same input. A Rust panic
(PanicException, or a RuntimeError mentioning "internal error") is always a failure.

Budget: 2,400 cases by default (deterministic, ``derandomize=True``). Set
``MLP_RS_HYPOTHESIS_EXAMPLES=20000`` for a longer, randomised run of about that many
cases in total. A summary of cases and exceptions by type is printed in the terminal
summary of the session.
"""

import json
import os
import warnings
from collections import Counter

import mlp_rs
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk_nn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

# --------------------------------------------------------------------------
# budget
# --------------------------------------------------------------------------
DEFAULT_BUDGET = {
    "fit_random_data": 700,
    "fit_random_hyperparameters": 450,
    "predict_hostile_X": 1000,
    "partial_fit_sequences": 250,
}
_TOTAL = sum(DEFAULT_BUDGET.values())
_REQUESTED = os.environ.get("MLP_RS_HYPOTHESIS_EXAMPLES")
LONG_RUN = bool(_REQUESTED)
SCALE = int(_REQUESTED) / _TOTAL if _REQUESTED else 1.0


def budget(name):
    return max(1, round(DEFAULT_BUDGET[name] * SCALE))


def hsettings(name):
    return settings(
        max_examples=budget(name),
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
        # the default run reports a failing case as found (shrinking one can take
        # minutes); the long run shrinks it to a minimal reproduction
        phases=list(Phase)
        if LONG_RUN
        else [Phase.explicit, Phase.reuse, Phase.generate],
    )


# --------------------------------------------------------------------------
# bookkeeping: cases and outcomes, reported at the end of the session
# --------------------------------------------------------------------------
STATS = {"cases": Counter(), "outcomes": Counter(), "failures": []}
CLEAN = (ValueError, TypeError, AttributeError)


class _SummaryPlugin:
    def pytest_terminal_summary(self, terminalreporter):
        if not STATS["cases"]:
            return
        tr = terminalreporter
        tr.section("mlp_rs hypothesis summary")
        total = sum(STATS["cases"].values())
        tr.write_line(f"generated cases: {total}")
        for test, n in sorted(STATS["cases"].items()):
            tr.write_line(f"  {n:7d}  {test}")
        tr.write_line("outcomes (method: result):")
        for what, n in sorted(
            STATS["outcomes"].items(), key=lambda kv: (-kv[1], kv[0])
        ):
            tr.write_line(f"  {n:7d}  {what}")
        tr.write_line(f"crashes / unclean exceptions: {len(STATS['failures'])}")
        for f in STATS["failures"][:20]:
            tr.write_line(f"  {f}")
        path = os.environ.get("MLP_RS_HYPOTHESIS_REPORT")
        if path:
            with open(path, "w") as fh:
                json.dump(
                    {
                        "cases": dict(STATS["cases"]),
                        "outcomes": dict(STATS["outcomes"]),
                        "failures": STATS["failures"],
                    },
                    fh,
                    indent=1,
                )


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("mlp_rs_hypothesis_summary"):
        pm.register(_SummaryPlugin(), "mlp_rs_hypothesis_summary")
    yield


def is_internal_error(exc):
    return type(exc).__name__ == "PanicException" or (
        isinstance(exc, RuntimeError) and "internal error" in str(exc)
    )


def _sklearn_raises_same(name, params, method, args, kwargs, exc, prefit=None):
    """Whether scikit-learn's estimator raises ``type(exc)`` on the same call."""
    params = {k: v for k, v in params.items() if k != "n_jobs"}
    try:
        est = getattr(sk_nn, name)(**params)
        if prefit is not None:
            est.fit(*prefit)
        getattr(est, method)(*args, **kwargs)
    except BaseException as sk_exc:  # noqa: BLE001
        return type(sk_exc) is type(exc)
    return False


def attempt(test, label, fn, reference=None):
    """Run ``fn``; record the outcome; fail on anything but a clean exception.

    ``reference`` (name, params, method, args, kwargs, prefit) lets an exception
    outside the clean set pass when scikit-learn raises the same type.
    Returns (ok, value).
    """
    try:
        value = fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - PanicException is a BaseException
        kind = type(exc).__name__
        STATS["outcomes"][f"{label}: {kind}"] += 1
        if is_internal_error(exc):
            STATS["failures"].append(f"{test} {label}: {kind}: {exc}")
            raise AssertionError(f"{label}: internal error {kind}: {exc}") from exc
        if isinstance(exc, CLEAN):
            return False, exc
        if reference is not None and _sklearn_raises_same(*reference, exc=exc):
            STATS["outcomes"][f"{label}: {kind} (as scikit-learn)"] += 1
            return False, exc
        STATS["failures"].append(f"{test} {label}: {kind}: {exc}")
        raise AssertionError(f"{label}: unclean exception {kind}: {exc}") from exc
    STATS["outcomes"][f"{label}: ok"] += 1
    return True, value


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------
SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    np.nan,
    np.inf,
    -np.inf,
    1e300,
    -1e300,
    1e39,
    3.4e38,
    65504.0,
    1e5,
    5e-324,
    1e-310,
    1e-40,
    2.0**31,
    2.0**63,
]
FLOAT_DTYPES = ["float16", "float32", "float64"]
OTHER_DTYPES = [
    "int8",
    "int64",
    "uint8",
    "bool",
    "object",
    "complex64",
    "complex128",
    "<U6",
]
ROWS = st.sampled_from([0, 1, 2, 3, 5, 8])
COLS = st.sampled_from([0, 1, 2, 4])


def values(allow_special=True):
    normal = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=64)
    if not allow_special:
        return normal
    return st.one_of(normal, normal, normal, st.sampled_from(SPECIAL))


@st.composite
def float_matrix(draw, n_rows, n_cols, allow_special=True):
    flat = draw(
        st.lists(
            values(allow_special), min_size=n_rows * n_cols, max_size=n_rows * n_cols
        )
    )
    return np.array(flat, dtype=np.float64).reshape(n_rows, n_cols)


def _cast(a, dtype):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype == "object":
            out = a.astype(object)
            if out.size:
                out.flat[0] = None if np.isnan(a.flat[0]) else out.flat[0]
            return out
        if dtype == "<U6":
            return a.astype(str).astype("<U6")
        if dtype.startswith("complex"):
            return (a + 1j * (a > 1)).astype(dtype)
        return a.astype(dtype)


@st.composite
def hostile_X(draw, n_rows=None, n_cols=None, allow_special=True):
    n_rows = draw(ROWS) if n_rows is None else n_rows
    n_cols = draw(COLS) if n_cols is None else n_cols
    base = draw(float_matrix(n_rows, n_cols, allow_special))
    dtype = draw(st.sampled_from(FLOAT_DTYPES * 2 + OTHER_DTYPES))
    X = _cast(base, dtype)
    container = draw(
        st.sampled_from(
            ["dense"] * 4
            + [
                "fortran",
                "strided",
                "readonly",
                "csr",
                "csc",
                "coo",
                "list",
                "1d",
                "3d",
            ]
        )
    )
    numeric = X.dtype.kind in "biufc" and X.dtype != np.float16  # scipy: no float16
    if container in ("csr", "csc", "coo") and numeric and X.ndim == 2:
        return getattr(sp, f"{container}_matrix")(X)
    if container == "fortran":
        return np.asfortranarray(X)
    if container == "strided" and X.ndim == 2:
        big = np.zeros((X.shape[0] * 2, X.shape[1]), dtype=X.dtype)
        big[::2] = X
        return big[::2]
    if container == "readonly":
        X = X.copy()
        X.setflags(write=False)
        return X
    if container == "list":
        return X.tolist()
    if container == "1d":
        return X.ravel()
    if container == "3d":
        return X[..., None]
    return X


@st.composite
def targets(draw, name, n_rows):
    n = draw(st.sampled_from([n_rows] * 8 + [max(n_rows - 1, 0), n_rows + 1]))
    if name == "MLPClassifier":
        kind = draw(
            st.sampled_from(
                ["int", "int", "str", "float", "bool", "nan", "multilabel", "single"]
            )
        )
        if kind == "int":
            return np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
        if kind == "str":
            return np.array(
                draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
            )
        if kind == "float":
            return np.array(
                draw(
                    st.lists(
                        st.sampled_from([0.0, 0.5, 1.5, 2.0]), min_size=n, max_size=n
                    )
                )
            )
        if kind == "bool":
            return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        if kind == "nan":
            return np.array(
                draw(
                    st.lists(
                        st.sampled_from([0.0, 1.0, np.nan]), min_size=n, max_size=n
                    )
                )
            )
        if kind == "multilabel":
            flat = draw(st.lists(st.integers(0, 1), min_size=2 * n, max_size=2 * n))
            return np.array(flat).reshape(n, 2)
        return np.zeros(n, dtype=int)
    kind = draw(
        st.sampled_from(["float", "float", "special", "multi", "int", "object"])
    )
    if kind == "multi":
        flat = draw(st.lists(values(False), min_size=2 * n, max_size=2 * n))
        return np.array(flat).reshape(n, 2)
    arr = np.array(draw(st.lists(values(kind == "special"), min_size=n, max_size=n)))
    if kind == "int":
        return np.round(np.clip(arr, -5, 5)).astype(int)
    if kind == "object":
        return arr.astype(object)
    return arr


@st.composite
def sample_weights(draw, n_rows):
    kind = draw(
        st.sampled_from(
            ["none"] * 5 + ["ok", "special", "negative", "zeros", "wrong-length"]
        )
    )
    if kind == "none":
        return None
    if kind == "zeros":
        return np.zeros(n_rows)
    if kind == "wrong-length":
        return np.ones(n_rows + 1)
    arr = np.array(
        draw(st.lists(values(kind == "special"), min_size=n_rows, max_size=n_rows))
    )
    if kind == "ok":
        return np.abs(arr) + 0.1
    if kind == "negative":
        return -np.abs(arr)
    return arr


VALID = dict(
    hidden_layer_sizes=[(1,), (3,), (2, 2), ()],
    activation=["identity", "logistic", "tanh", "relu"],
    solver=["sgd", "adam", "lbfgs"],
    alpha=[0.0, 1e-4, 1.0, 1e3],
    batch_size=["auto", 1, 2, 1000],
    learning_rate=["constant", "invscaling", "adaptive"],
    learning_rate_init=[1e-3, 0.1, 10.0, 1e6],
    power_t=[0.0, 0.5, 2.0],
    max_iter=[1, 2, 3],
    shuffle=[True, False],
    tol=[0.0, 1e-4, 1.0],
    warm_start=[False, True],
    momentum=[0.0, 0.5, 0.9, 1.0],
    nesterovs_momentum=[True, False],
    early_stopping=[False, True],
    validation_fraction=[0.1, 0.5, 0.9],
    beta_1=[0.0, 0.9],
    beta_2=[0.0, 0.999],
    epsilon=[1e-8, 1.0],
    n_iter_no_change=[1, 10],
    max_fun=[1, 15000],
    n_jobs=[None, 1, 2, -1],
)
INVALID = dict(
    hidden_layer_sizes=[(0,), (-1,), 0, (2.5,), "3", None, (3, 0)],
    activation=["softmax", None, 3],
    solver=["rmsprop", None],
    alpha=[-1.0, np.nan, np.inf, "0.1"],
    batch_size=[0, -1, 1.5, "all"],
    learning_rate=["cyclic", None],
    learning_rate_init=[0.0, -1.0, np.nan, np.inf],
    power_t=[-1.0, np.nan],
    max_iter=[0, -1, 1.5],
    shuffle=["yes", 2],
    tol=[-1.0, np.nan],
    momentum=[-0.1, 1.5, np.nan],
    early_stopping=["no"],
    validation_fraction=[0.0, 1.0, -0.5, 1.5, np.nan],
    beta_1=[1.0, -0.1],
    beta_2=[1.0, 2.0],
    epsilon=[0.0, -1.0],
    n_iter_no_change=[0, -1],
    max_fun=[0],
    n_jobs=[0, "all", 1.5],
    random_state=[-1, "seed"],
    verbose=["loud", -1],
)


@st.composite
def hyperparameters(draw, name, allow_invalid=True):
    params = {
        "random_state": draw(st.sampled_from([0, 1])),
        "max_iter": draw(st.sampled_from([1, 2, 3])),
        "hidden_layer_sizes": draw(st.sampled_from(VALID["hidden_layer_sizes"])),
    }
    keys = draw(st.lists(st.sampled_from(sorted(VALID)), max_size=6, unique=True))
    for key in keys:
        params[key] = draw(st.sampled_from(VALID[key]))
    if allow_invalid and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(INVALID)))
        params[key] = draw(st.sampled_from(INVALID[key]))
    if name == "MLPRegressor" and draw(st.booleans()):
        params["loss"] = draw(st.sampled_from(["squared_error", "poisson", "hinge"]))
    # keep every case tiny and fast
    if isinstance(params.get("max_iter"), int) and params["max_iter"] > 3:
        params["max_iter"] = 3
    return params


NAMES = st.sampled_from(["MLPClassifier", "MLPRegressor"])


def _fit_and_use(test, name, params, X, y, sw, X_other):
    """Fit, then (if fitted) predict/score on the training X and on other X."""
    est = getattr(mlp_rs, name)(**params)
    kw = {} if sw is None else {"sample_weight": sw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, _ = attempt(
            test,
            "fit",
            lambda: est.fit(X, y, **kw),
            reference=(name, params, "fit", (X, y), kw),
        )
        if not ok:
            return
        weights = est.coefs_ + est.intercepts_
        assert all(np.isfinite(w).all() for w in weights), (
            "fitted with non-finite weights"
        )
        for Xp in (X, X_other):
            _use(test, est, name, Xp, y)


def _use(test, est, name, Xp, y=None):
    methods = ["predict", "score"]
    if name == "MLPClassifier":
        methods += ["predict_proba", "predict_log_proba"]
    n = _n_rows(Xp)
    for method in methods:
        if method == "score":
            yy = (
                y
                if y is not None and n is not None and len(y) == n
                else (np.zeros(n or 0, dtype=int))
            )
            fn = lambda m=method, yy=yy: est.score(Xp, yy)  # noqa: E731
        else:
            fn = lambda m=method: getattr(est, m)(Xp)  # noqa: E731
        ok, out = attempt(test, method, fn)
        if ok and method != "score" and n is not None:
            assert np.asarray(out).shape[0] == n, (method, np.asarray(out).shape, n)


def _n_rows(X):
    if sp.issparse(X):
        return X.shape[0]
    try:
        a = np.asarray(X)
    except Exception:  # noqa: BLE001
        return None
    return a.shape[0] if a.ndim == 2 else None


# --------------------------------------------------------------------------
# the properties
# --------------------------------------------------------------------------
@hsettings("fit_random_data")
@given(data=st.data(), name=NAMES)
def test_fit_random_data(data, name):
    """Hostile X / y / sample_weight with small valid hyperparameters."""
    test = "fit_random_data"
    STATS["cases"][test] += 1
    n_rows = data.draw(ROWS, label="n_rows")
    n_cols = data.draw(COLS, label="n_cols")
    X = data.draw(hostile_X(n_rows, n_cols), label="X")
    y = data.draw(targets(name, n_rows), label="y")
    sw = data.draw(sample_weights(n_rows), label="sample_weight")
    params = data.draw(hyperparameters(name, allow_invalid=False), label="params")
    X_other = data.draw(hostile_X(), label="X_other")
    _fit_and_use(test, name, params, X, y, sw, X_other)


@hsettings("fit_random_hyperparameters")
@given(data=st.data(), name=NAMES)
def test_fit_random_hyperparameters(data, name):
    """Mostly clean data, hyperparameters valid and invalid."""
    test = "fit_random_hyperparameters"
    STATS["cases"][test] += 1
    n_rows = data.draw(st.sampled_from([1, 2, 5, 12]), label="n_rows")
    n_cols = data.draw(st.sampled_from([1, 3]), label="n_cols")
    X = data.draw(float_matrix(n_rows, n_cols, allow_special=False), label="X")
    if data.draw(st.booleans(), label="sparse"):
        X = sp.csr_matrix(X)
    if name == "MLPClassifier":
        y = np.arange(n_rows) % data.draw(st.sampled_from([1, 2, 3]), label="n_classes")
    else:
        y = np.linspace(0.0, 2.0, n_rows)
    params = data.draw(hyperparameters(name, allow_invalid=True), label="params")
    _fit_and_use(test, name, params, X, y, None, X)


_FITTED = {}


def _fitted(name, solver, dtype, n_cols):
    key = (name, solver, dtype, n_cols)
    if key not in _FITTED:
        rng = np.random.RandomState(0)
        X = rng.standard_normal((20, n_cols)).astype(dtype)
        y = (
            rng.randint(0, 3, 20)
            if name == "MLPClassifier"
            else rng.standard_normal(20)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _FITTED[key] = getattr(mlp_rs, name)(
                hidden_layer_sizes=(3,), solver=solver, max_iter=3, random_state=0
            ).fit(X, y)
    return _FITTED[key]


@hsettings("predict_hostile_X")
@given(
    data=st.data(),
    name=NAMES,
    solver=st.sampled_from(["sgd", "adam", "lbfgs"]),
    dtype=st.sampled_from(["float32", "float64"]),
    n_cols=st.sampled_from([1, 2, 4]),
)
def test_predict_hostile_X(data, name, solver, dtype, n_cols):
    """predict / predict_proba / predict_log_proba / score of a fitted model on
    hostile X (matching or not its number of features)."""
    test = "predict_hostile_X"
    STATS["cases"][test] += 1
    est = _fitted(name, solver, dtype, n_cols)
    before = [w.copy() for w in est.coefs_]
    same = data.draw(st.booleans(), label="same_n_features")
    X = data.draw(hostile_X(n_cols=n_cols if same else None), label="X")
    y = data.draw(targets(name, _n_rows(X) or 0), label="y")
    _use(test, est, name, X, y)
    for a, b in zip(before, est.coefs_, strict=True):
        assert np.array_equal(a, b), "predicting changed the model"


@hsettings("partial_fit_sequences")
@given(data=st.data(), name=NAMES)
def test_partial_fit_sequences(data, name):
    """A few partial_fit calls with hostile chunks: each call fits or fails cleanly,
    and a failed call leaves a usable model."""
    test = "partial_fit_sequences"
    STATS["cases"][test] += 1
    params = data.draw(
        hyperparameters(name, allow_invalid=data.draw(st.booleans())), label="params"
    )
    params["solver"] = data.draw(st.sampled_from(["sgd", "adam"]), label="solver")
    params["early_stopping"] = False
    est = getattr(mlp_rs, name)(**params)
    n_cols = data.draw(st.sampled_from([1, 3]), label="n_cols")
    classes = data.draw(
        st.sampled_from([[0, 1, 2], [0, 1], ["a", "b"], None, [0]]), label="classes"
    )
    fitted = False
    for step in range(data.draw(st.integers(1, 3), label="n_calls")):
        n_rows = data.draw(st.sampled_from([0, 1, 4]), label="n_rows")
        hostile = data.draw(st.booleans(), label="hostile")
        if hostile:
            X = data.draw(hostile_X(n_rows=n_rows), label="X")
        else:
            X = data.draw(float_matrix(n_rows, n_cols, allow_special=False), label="X")
        y = data.draw(targets(name, n_rows), label="y")
        kw = {}
        if name == "MLPClassifier" and (step == 0 or data.draw(st.booleans())):
            kw["classes"] = classes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok, _ = attempt(
                test,
                "partial_fit",
                lambda X=X, y=y, kw=kw: est.partial_fit(X, y, **kw),
            )
        fitted = fitted or ok
        if fitted:
            assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
    if fitted:
        Xc = data.draw(
            float_matrix(3, est.n_features_in_, allow_special=False), label="Xc"
        )
        ok, out = attempt(test, "predict-after-partial_fit", lambda: est.predict(Xc))
        assert ok, f"a partially fitted model failed to predict clean data: {out!r}"


def test_zz_hypothesis_summary():
    """Runs last in this module: the totals, and no crash recorded anywhere."""
    total = sum(STATS["cases"].values())
    print(f"\nhypothesis cases: {total}; outcomes: {dict(STATS['outcomes'])}")
    assert not STATS["failures"], STATS["failures"]
    if not LONG_RUN and len(STATS["cases"]) == len(DEFAULT_BUDGET):
        assert total >= 2000, total
