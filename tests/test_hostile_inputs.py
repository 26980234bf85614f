"""Reliability at the boundary: hostile inputs to every public method.

Every case runs the same call on scikit-learn's estimator and on mlp_rs's, both
built with the same parameters, and asks of mlp_rs:

* where scikit-learn raises: the same exception type (or a subclass) and the same
  message -- or one that contains scikit-learn's, or, for the few cases listed in
  ``CLEARER``, a message that says what went wrong more precisely;
* where scikit-learn succeeds: mlp_rs succeeds too, with outputs of the same shape
  and the same NaN pattern (a fitted model has finite weights);
* never an internal error (a Rust panic), and the caller's arrays are never written.

The second half checks that unusual but valid containers (Fortran order, strided
views, integers, read-only arrays, memory maps, lists) are accepted by every method,
give bit-identical results to the plain C-contiguous float64 array, and are left
untouched. (test_api.py covers the plainer error messages for ``fit``; the cases
here extend them to every method and to more hostile values.)
"""

import hashlib
import re
import warnings

import mlp_rs
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk_nn
from conftest import SKLEARN_VERSION, make_data
from mlp_rs import _core
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import _check_sample_weight

pytestmark = pytest.mark.filterwarnings("ignore")

NAMES = ("MLPClassifier", "MLPRegressor")
PARAMS = dict(hidden_layer_sizes=(5,), random_state=0, max_iter=3)
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "score")
ALL_METHODS = ("fit", "partial_fit") + PREDICT_METHODS
N = 30  # samples in every case
F32_MAX = float(np.finfo(np.float32).max)


def _kind(name):
    return "multiclass" if name == "MLPClassifier" else "regression"


def _methods(name):
    if name == "MLPRegressor":
        return tuple(m for m in ALL_METHODS if "proba" not in m)
    return ALL_METHODS


def is_internal_error(exc):
    """A Rust panic surfacing in Python: never acceptable."""
    return type(exc).__name__ == "PanicException" or (
        isinstance(exc, RuntimeError) and "internal error" in str(exc)
    )


# --------------------------------------------------------------------------
# hostile X: each maps the clean (X, y) to (X', y') of the same meaning
# --------------------------------------------------------------------------
def _with(X, i, j, v):
    X = X.astype(np.float64, copy=True)
    X[i, j] = v
    return X


def _obj_with(X, v):
    Xo = X.astype(object)
    Xo[2, 1] = v
    return Xo


def _structured(X):
    out = np.zeros(X.shape[0], dtype=[("a", "f8"), ("b", "f8")])
    out["a"], out["b"] = X[:, 0], X[:, 1]
    return out


def _csr_duplicates(X):
    coo = sp.coo_matrix(X)
    # every entry twice, halved: the same matrix once duplicates are summed
    rows = np.r_[coo.row, coo.row]
    cols = np.r_[coo.col, coo.col]
    data = np.r_[coo.data, coo.data] / 2
    return sp.csr_matrix((data, (rows, cols)), shape=X.shape)


def _csr_unsorted(X):
    m = sp.csr_matrix(X)
    for r in range(m.shape[0]):
        a, b = m.indptr[r], m.indptr[r + 1]
        m.indices[a:b] = m.indices[a:b][::-1].copy()
        m.data[a:b] = m.data[a:b][::-1].copy()
    m.has_sorted_indices = False
    return m


def _csr_explicit_zeros(X):
    m = sp.csr_matrix(X)
    m.data[::3] = 0.0  # stored zeros
    return m


HOSTILE_X = {
    # non-finite and extreme values
    "nan": lambda X, y: (_with(X, 3, 2, np.nan), y),
    "inf": lambda X, y: (_with(X, 3, 2, np.inf), y),
    "-inf": lambda X, y: (_with(X, 0, 0, -np.inf), y),
    "all-nan": lambda X, y: (np.full_like(X, np.nan), y),
    "huge-1e300": lambda X, y: (X * 1e300, y),
    "float64-max": lambda X, y: (np.sign(X) * np.finfo(np.float64).max, y),
    "beyond-float32": lambda X, y: (X * 1e39, y),
    "float32-overflowed-to-inf": lambda X, y: (
        (X * 1e38).astype(np.float32) * np.float32(10),
        y,
    ),
    "subnormal": lambda X, y: (X * 1e-310, y),
    "float16-overflowed-to-inf": lambda X, y: ((X * 1e5).astype(np.float16), y),
    # shapes
    "0-rows": lambda X, y: (X[:0], y[:0]),
    "0-columns": lambda X, y: (X[:, :0], y),
    "1-D": lambda X, y: (X[:, 0], y),
    "1-D-one-sample": lambda X, y: (X[0], y[:1]),
    "3-D": lambda X, y: (X[:, :, None], y),
    "scalar": lambda X, y: (3.0, y),
    "None": lambda X, y: (None, y),
    "ragged-list": lambda X, y: ([[1.0, 2.0], [3.0]] * (len(y) // 2), y),
    "fewer-features": lambda X, y: (X[:, :2], y),
    "more-features": lambda X, y: (np.hstack([X, X]), y),
    # dtypes
    "object-floats": lambda X, y: (X.astype(object), y),
    "object-with-None": lambda X, y: (_obj_with(X, None), y),
    "object-with-word": lambda X, y: (_obj_with(X, "abc"), y),
    "object-with-list": lambda X, y: (_obj_with(X, [1.0, 2.0]), y),
    "str-numbers": lambda X, y: (X.astype(str), y),
    "str-words": lambda X, y: (np.full(X.shape, "a"), y),
    "bytes-numbers": lambda X, y: (X.astype("S32"), y),
    "complex-zero-imag": lambda X, y: (X.astype(np.complex128), y),
    "complex": lambda X, y: (X + 1j, y),
    "complex64": lambda X, y: ((X + 1j).astype(np.complex64), y),
    "structured": lambda X, y: (_structured(X), y),
    "datetime64": lambda X, y: (np.zeros(X.shape, dtype="datetime64[s]"), y),
    "timedelta64": lambda X, y: (np.ones(X.shape, dtype="timedelta64[s]"), y),
    "masked-array": lambda X, y: (np.ma.masked_greater(X, 1.0), y),
    # sparse
    "sparse-nan": lambda X, y: (sp.csr_matrix(_with(X, 3, 2, np.nan)), y),
    "sparse-inf": lambda X, y: (sp.csc_matrix(_with(X, 3, 2, np.inf)), y),
    "sparse-huge": lambda X, y: (sp.csr_matrix(X * 1e300), y),
    "sparse-beyond-float32": lambda X, y: (sp.csr_matrix(X * 1e39), y),
    "sparse-0-rows": lambda X, y: (sp.csr_matrix(X[:0]), y[:0]),
    "sparse-0-columns": lambda X, y: (sp.csr_matrix(X[:, :0]), y),
    "sparse-no-entries": lambda X, y: (sp.csr_matrix(X.shape), y),
    "sparse-complex": lambda X, y: (sp.csr_matrix(X + 1j), y),
    "sparse-int": lambda X, y: (sp.csr_matrix((X > 0).astype(np.int64)), y),
    "sparse-coo": lambda X, y: (sp.coo_matrix(X), y),
    "sparse-lil": lambda X, y: (sp.lil_matrix(X), y),
    "sparse-dok": lambda X, y: (sp.dok_matrix(X), y),
    "sparse-dia": lambda X, y: (sp.dia_matrix(X), y),
    "sparse-bsr": lambda X, y: (sp.bsr_matrix(X), y),
    "sparse-array-csr": lambda X, y: (sp.csr_array(X), y),
    "sparse-duplicate-entries": lambda X, y: (_csr_duplicates(X), y),
    "sparse-unsorted-indices": lambda X, y: (_csr_unsorted(X), y),
    "sparse-explicit-zeros": lambda X, y: (_csr_explicit_zeros(X), y),
    "sparse-fewer-features": lambda X, y: (sp.csr_matrix(X[:, :2]), y),
}

# hostile targets (fit, partial_fit, score)
HOSTILE_Y = {
    "y-nan": lambda X, y: (X, np.r_[np.nan, y[1:]]),
    "y-inf": lambda X, y: (X, np.r_[np.inf, y[1:]]),
    "y-huge": lambda X, y: (X, np.r_[1e300, y[1:]]),
    "y-None": lambda X, y: (X, None),
    "y-shorter": lambda X, y: (X, y[:-1]),
    "y-longer": lambda X, y: (X, np.r_[y, y[:1]]),
    "y-0-columns": lambda X, y: (X, np.empty((len(y), 0))),
    "y-3-D": lambda X, y: (X, y[:, None, None]),
    "y-complex": lambda X, y: (X, y + 1j),
    "y-object-with-None": lambda X, y: (X, np.where(np.arange(len(y)) == 0, None, y)),
    "y-str-numbers": lambda X, y: (X, y.astype(str)),
    "y-mixed-str-int": lambda X, y: (X, np.array(["a", 1] * (len(y) // 2), object)),
    "y-scalar": lambda X, y: (X, 1.0),
}

# hostile sample weights (fit, partial_fit, score)
HOSTILE_SW = {
    "sw-shorter": lambda n: np.ones(n - 1),
    "sw-longer": lambda n: np.ones(n + 1),
    "sw-all-negative": lambda n: -np.ones(n),
    "sw-one-negative": lambda n: np.r_[-1.0, np.ones(n - 1)],
    "sw-all-zero": lambda n: np.zeros(n),
    "sw-nan": lambda n: np.r_[np.nan, np.ones(n - 1)],
    "sw-inf": lambda n: np.r_[np.inf, np.ones(n - 1)],
    "sw-huge": lambda n: np.r_[1e300, np.ones(n - 1)],
    "sw-words": lambda n: np.array(["a"] * n),
    "sw-complex": lambda n: np.ones(n) + 1j,
    "sw-2-D": lambda n: np.ones((n, 2)),
    "sw-scalar": lambda n: 2.0,
    "sw-object": lambda n: np.ones(n).astype(object),
}

# Where mlp_rs may say more than scikit-learn (same exception type), the message it
# must match instead. Keys are "<case>" or "<estimator>-<method>-<case>".
DIVERGED = r"(?is)(diverg|non-finite).*(learning.rate|large values|scal|preprocess)"
CLEARER = {
    # scikit-learn trains to NaN weights, then says "Solver produced non-finite
    # parameter weights"; mlp_rs stops at the diverging epoch and names the cause.
    "huge-1e300": DIVERGED,
    "float64-max": DIVERGED,
    "beyond-float32": DIVERGED,
    "sparse-huge": DIVERGED,
    "sparse-beyond-float32": DIVERGED,
    "y-huge": DIVERGED,
    "sw-huge": DIVERGED,
    "sw-all-negative": DIVERGED,
    "sw-one-negative": DIVERGED,
    # y=None in an object array becomes NaN when scikit-learn converts y to float,
    # after its NaN check: scikit-learn then trains to NaN weights. A clearer message
    # names the missing target, not the learning rate.
    "y-object-with-None": r"(?i)\by\b.*(nan|missing|none)",
}

# Cases where scikit-learn fails only by accident, deep inside NumPy (its fit accepts
# the same input; its predict then has no matmul loop for the dtype), and mlp_rs may
# instead treat the input as its own fit does.
LENIENT = {
    "datetime64": ("predict", "predict_proba", "predict_log_proba", "score"),
    "timedelta64": ("predict", "predict_proba", "predict_log_proba", "score"),
    # scikit-learn's regressor keeps numeric strings as strings and fails in the loss
    "y-str-numbers": ("fit", "partial_fit"),
}


# --------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------
def _estimator(module, name, **params):
    params = {**PARAMS, **params}
    if module is sk_nn:
        params.pop("n_jobs", None)
    return getattr(module, name)(**params)


def _digest(obj):
    """A fingerprint of every array in ``obj`` (to detect writes)."""
    h = hashlib.sha256()
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        h.update(np.ascontiguousarray(obj).view(np.uint8).tobytes())
        h.update(str(obj.shape).encode())
    elif sp.issparse(obj):
        h.update(repr(sorted(obj.todok().items())).encode())
    else:
        h.update(repr(obj).encode())
    return h.hexdigest()


def _call(est, method, X, y, sample_weight, extra):
    """Run ``est.method`` the way a user would; partial_fit on a classifier gets
    ``classes`` unless ``extra`` says otherwise."""
    kw = dict(extra)
    if sample_weight is not None:
        kw["sample_weight"] = sample_weight
    if method in ("fit", "partial_fit", "score"):
        return getattr(est, method)(X, y, **kw)
    return getattr(est, method)(X, **kw)


_CLEAN = {}
_FITTED = {}


def clean_data(name):
    """The clean (X, y) of every case, as fresh copies."""
    if name not in _CLEAN:
        _CLEAN[name] = make_data(_kind(name), n_samples=N)
    X, y = _CLEAN[name]
    return X.copy(), y.copy()


def _fitted(module, name, train_dtype, params):
    """A model fitted on the clean data (cached: predicting does not change it)."""
    key = (
        module.__name__,
        name,
        np.dtype(train_dtype).name,
        repr(sorted(params.items())),
    )
    if key not in _FITTED:
        X0, y0 = clean_data(name)
        est = _estimator(module, name, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _FITTED[key] = est.fit(X0.astype(train_dtype), y0)
    return _FITTED[key]


def _run(module, name, method, X, y, sample_weight=None, params=None, extra=None):
    params = dict(params or {})
    train_dtype = params.pop("_train_dtype", np.float64)
    extra = dict(extra or {})
    _, y0 = clean_data(name)
    if method in PREDICT_METHODS:
        est = _fitted(module, name, train_dtype, params)
    else:
        est = _estimator(module, name, **params)
    if (
        method == "partial_fit"
        and name == "MLPClassifier"
        and "classes" not in extra
        and not extra.pop("_no_classes", False)
    ):
        extra["classes"] = np.unique(y0)
    extra.pop("_no_classes", None)
    before = [_digest(a) for a in (X, y, sample_weight)]
    try:
        out = ("ok", _call(est, method, X, y, sample_weight, extra))
    except Exception as exc:  # noqa: BLE001 - we classify every exception
        out = ("error", exc)
    after = [_digest(a) for a in (X, y, sample_weight)]
    assert before == after, f"{module.__name__}.{name}.{method} wrote into its input"
    return est, out


def _same_outcome(case, name, method, sk_out, ours_out, ours_est):
    kind_sk, val_sk = sk_out
    kind_ours, val_ours = ours_out
    label = f"{name}.{method}[{case}]"
    if kind_ours == "error":
        assert not is_internal_error(val_ours), f"{label}: internal error {val_ours!r}"
    if kind_sk == "error" and kind_ours == "ok" and method in LENIENT.get(case, ()):
        assert isinstance(val_sk, TypeError), val_sk
        if method in ("fit", "partial_fit"):
            for w in ours_est.coefs_ + ours_est.intercepts_:
                assert np.isfinite(w).all(), f"{label}: fitted with non-finite weights"
        return
    fitting = method in ("fit", "partial_fit")
    if isinstance(val_sk, ZeroDivisionError) and case == "sw-all-zero" and fitting:
        # scikit-learn < 1.8 does not check for all-zero sample weights and crashes
        # dividing by their sum; mlp_rs raises the ValueError later versions raise.
        assert SKLEARN_VERSION < (1, 8), val_sk
        assert isinstance(val_ours, ValueError), val_ours
        assert "at least one non-zero" in str(val_ours), val_ours
        return
    if kind_sk == "error":
        assert kind_ours == "error", (
            f"{label}: scikit-learn raises {type(val_sk).__name__}({val_sk}) "
            f"but mlp_rs returned {val_ours!r}"
        )
        assert isinstance(val_ours, type(val_sk)), (
            f"{label}: scikit-learn raises {type(val_sk).__name__}: {val_sk}\n"
            f"mlp_rs raises {type(val_ours).__name__}: {val_ours}"
        )
        msg_sk, msg_ours = str(val_sk), str(val_ours)
        if msg_ours == msg_sk or msg_sk in msg_ours:
            return
        pattern = CLEARER.get(f"{name}-{method}-{case}", CLEARER.get(case))
        assert pattern is not None and re.search(pattern, msg_ours), (
            f"{label}: message differs from scikit-learn's\n"
            f"  sklearn: {msg_sk}\n  mlp_rs:  {msg_ours}"
        )
        return

    # scikit-learn succeeded
    if kind_ours == "error":
        pattern = CLEARER.get(f"{name}-{method}-{case}", CLEARER.get(case))
        assert (
            pattern is not None
            and isinstance(val_ours, ValueError)
            and re.search(pattern, str(val_ours))
        ), (
            f"{label}: scikit-learn succeeds but mlp_rs raises "
            f"{type(val_ours).__name__}: {val_ours}"
        )
        return
    if method in ("fit", "partial_fit"):
        assert val_ours is ours_est
        for w in ours_est.coefs_ + ours_est.intercepts_:
            assert np.isfinite(w).all(), f"{label}: fitted with non-finite weights"
        return
    a, b = np.asarray(val_sk), np.asarray(val_ours)
    assert a.shape == b.shape, f"{label}: shape {b.shape} != scikit-learn's {a.shape}"
    if a.dtype.kind == "f":
        assert np.array_equal(np.isnan(a), np.isnan(b)), (
            f"{label}: NaN in {np.isnan(b).sum()} outputs, scikit-learn has "
            f"{np.isnan(a).sum()}"
        )
        finite = np.isfinite(a) & np.isfinite(b)
        np.testing.assert_allclose(b[finite], a[finite], rtol=1e-4, atol=1e-6)
    else:
        np.testing.assert_array_equal(a, b)


def check_like_sklearn(case, name, method, make, params=None, extra=None):
    """``make(X, y)`` returns ``(X, y, sample_weight)`` for the call."""
    X, y = clean_data(name)
    outs = {}
    for module in (sk_nn, mlp_rs):
        # fresh inputs for each so that a write by one cannot affect the other
        Xh, yh, swh = make(X.copy(), y.copy())
        outs[module] = _run(
            module, name, method, Xh, yh, swh, dict(params or {}), extra
        )
    _same_outcome(case, name, method, outs[sk_nn][1], outs[mlp_rs][1], outs[mlp_rs][0])


def _x_case(transform):
    return lambda X, y: (*transform(X, y), None)


def _y_case(transform):
    return lambda X, y: (*transform(X, y), None)


def _sw_case(make_sw):
    return lambda X, y: (X, y, make_sw(len(y)))


def _cases():
    for name in NAMES:
        for method in _methods(name):
            for case, t in HOSTILE_X.items():
                yield pytest.param(
                    case, name, method, _x_case(t), id=f"{name}-{method}-{case}"
                )
            if method in ("predict", "predict_proba", "predict_log_proba"):
                continue
            for case, t in HOSTILE_Y.items():
                yield pytest.param(
                    case, name, method, _y_case(t), id=f"{name}-{method}-{case}"
                )
            for case, t in HOSTILE_SW.items():
                yield pytest.param(
                    case, name, method, _sw_case(t), id=f"{name}-{method}-{case}"
                )


HOSTILE_CASES = list(_cases())


@pytest.mark.parametrize("case, name, method, make", HOSTILE_CASES)
def test_hostile_input_like_sklearn(case, name, method, make):
    check_like_sklearn(case, name, method, make)


# float32 models: the engine computes in float32, so values beyond float32's range must
# not silently become inf (and the outputs NaN) where scikit-learn stays finite.
F32_CASES = ["huge-1e300", "beyond-float32", "sparse-beyond-float32"]


@pytest.mark.parametrize("solver", ["sgd"])
@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("case", F32_CASES)
@pytest.mark.parametrize("name", NAMES)
def test_float32_model_with_values_beyond_float32(name, case, method, solver):
    if name == "MLPRegressor" and "proba" in method:
        pytest.skip("no probabilities")
    check_like_sklearn(
        case,
        name,
        method,
        _x_case(HOSTILE_X[case]),
        params={"_train_dtype": np.float32, "solver": solver},
    )


# --------------------------------------------------------------------------
# classifier targets and partial_fit classes
# --------------------------------------------------------------------------
def _labels(y, values):
    return np.asarray(values)[y]


CLASSIFIER_CASES = {
    "single-class": ("fit", lambda X, y: (X, np.zeros_like(y), None), {}),
    "single-class-lbfgs": (
        "fit",
        lambda X, y: (X, np.zeros_like(y), None),
        {"solver": "lbfgs"},
    ),
    "single-class-early-stopping": (
        "fit",
        lambda X, y: (X, np.zeros_like(y), None),
        {"early_stopping": True},
    ),
    "single-class-string": ("fit", lambda X, y: (X, np.full(len(y), "a"), None), {}),
    "float-labels": ("fit", lambda X, y: (X, y + 0.5, None), {}),
    "continuous-labels": (
        "fit",
        lambda X, y: (X, y + np.linspace(0, 0.1, len(y)), None),
        {},
    ),
    "bool-labels": ("fit", lambda X, y: (X, y > 0, None), {}),
    "negative-int-labels": ("fit", lambda X, y: (X, -y - 7, None), {}),
    "huge-int-labels": ("fit", lambda X, y: (X, y.astype(np.int64) * 2**62, None), {}),
    "unicode-labels": ("fit", lambda X, y: (X, _labels(y, ["α", "β", "γ"]), None), {}),
    "empty-string-label": (
        "fit",
        lambda X, y: (X, _labels(y, ["", "b", "c"]), None),
        {},
    ),
    "multilabel-all-zero": (
        "fit",
        lambda X, y: (X, np.zeros((len(y), 3), int), None),
        {},
    ),
    "multilabel-all-one": (
        "fit",
        lambda X, y: (X, np.ones((len(y), 3), int), None),
        {},
    ),
    "multilabel-non-binary": ("fit", lambda X, y: (X, np.c_[y, y, y], None), {}),
}

PARTIAL_FIT_CLASSES = {
    # first call
    "no-classes": ({"_no_classes": True}, None),
    "classes-missing-a-label": ({"classes": [0, 1]}, None),
    "classes-None": ({"classes": None}, None),
    "classes-empty": ({"classes": []}, None),
    "classes-single": ({"classes": [0]}, lambda X, y: (X, np.zeros_like(y), None)),
    "classes-single-unseen-y": ({"classes": [0]}, None),
    "classes-with-nan": ({"classes": [0.0, 1.0, 2.0, np.nan]}, None),
    "classes-strings-y-ints": ({"classes": ["a", "b", "c"]}, None),
    "classes-2-D": ({"classes": [[0, 1, 2]]}, None),
    "classes-duplicated": ({"classes": [0, 1, 2, 2]}, None),
    "classes-superset": ({"classes": [0, 1, 2, 3, 4]}, None),
}


@pytest.mark.parametrize("case", list(CLASSIFIER_CASES))
def test_classifier_targets_like_sklearn(case):
    method, make, params = CLASSIFIER_CASES[case]
    check_like_sklearn(case, "MLPClassifier", method, make, params=params)


@pytest.mark.parametrize("case", list(PARTIAL_FIT_CLASSES))
def test_partial_fit_classes_like_sklearn(case):
    extra, make = PARTIAL_FIT_CLASSES[case]
    make = make or (lambda X, y: (X, y, None))
    check_like_sklearn(case, "MLPClassifier", "partial_fit", make, extra=extra)


SECOND_PARTIAL_FIT = {
    "unseen-class": lambda y: (y + 5, {}),
    "one-unseen-class": lambda y: (np.r_[y[:-1], 9], {}),
    "subset-of-classes": lambda y: (np.zeros_like(y), {}),
    "classes-changed": lambda y: (y, {"classes": [0, 1, 2, 3]}),
    "classes-repeated": lambda y: (y, {"classes": [0, 1, 2]}),
    # NumPy integer classes and labels take a shorter way after the first call
    "classes-changed-array": lambda y: (y, {"classes": np.arange(4)}),
    "classes-repeated-array": lambda y: (y, {"classes": np.arange(3)}),
    "classes-reordered-array": lambda y: (y, {"classes": np.array([2, 0, 1])}),
    "classes-duplicated-array": lambda y: (y, {"classes": np.array([0, 1, 2, 2])}),
    "classes-uint8-array": lambda y: (
        y.astype(np.uint8),
        {"classes": np.arange(3, dtype=np.uint8)},
    ),
    "classes-array-unseen-y": lambda y: (y + 1, {"classes": np.arange(3)}),
    "string-labels-after-int": lambda y: (_labels(y, ["a", "b", "c"]), {}),
    "float-labels-after-int": lambda y: (y + 0.5, {}),
    "multilabel-after-multiclass": lambda y: (np.c_[y > 0, y > 1], {}),
}


@pytest.mark.parametrize("case", list(SECOND_PARTIAL_FIT))
def test_second_partial_fit_like_sklearn(case):
    X, y = make_data("multiclass", n_samples=N)
    y2, kw = SECOND_PARTIAL_FIT[case](y)
    outs = {}
    for module in (sk_nn, mlp_rs):
        est = _estimator(module, "MLPClassifier")
        est.partial_fit(X, y, classes=[0, 1, 2])
        try:
            outs[module] = ("ok", est.partial_fit(X, y2, **kw))
        except Exception as exc:  # noqa: BLE001
            outs[module] = ("error", exc)
        outs[module, "est"] = est
    _same_outcome(
        case,
        "MLPClassifier",
        "partial_fit",
        outs[sk_nn],
        outs[mlp_rs],
        outs[mlp_rs, "est"],
    )


@pytest.mark.parametrize("name", NAMES)
def test_second_partial_fit_changed_n_features_like_sklearn(name):
    X, y = make_data(_kind(name), n_samples=N)
    outs = {}
    for module in (sk_nn, mlp_rs):
        est = _estimator(module, name)
        kw = {"classes": [0, 1, 2]} if name == "MLPClassifier" else {}
        est.partial_fit(X, y, **kw)
        try:
            outs[module] = ("ok", est.partial_fit(np.hstack([X, X]), y))
        except Exception as exc:  # noqa: BLE001
            outs[module] = ("error", exc)
    _same_outcome("more-features", name, "partial_fit", outs[sk_nn], outs[mlp_rs], None)


# --------------------------------------------------------------------------
# invalid hyper-parameters, through partial_fit (test_api.py covers fit) and the
# edge values test_api.py does not try
# --------------------------------------------------------------------------
INVALID_PARAMS = {
    "hidden-0": dict(hidden_layer_sizes=(0,)),
    "hidden-negative": dict(hidden_layer_sizes=(4, -2)),
    "hidden-int-0": dict(hidden_layer_sizes=0),
    "hidden-int-negative": dict(hidden_layer_sizes=-3),
    "hidden-float": dict(hidden_layer_sizes=(5.5,)),
    "hidden-nan": dict(hidden_layer_sizes=(np.nan,)),
    "hidden-None": dict(hidden_layer_sizes=None),
    "hidden-str": dict(hidden_layer_sizes=("a",)),
    "hidden-absurd": dict(hidden_layer_sizes=(2**62,)),
    "hidden-empty": dict(hidden_layer_sizes=()),
    "alpha-negative": dict(alpha=-1.0),
    "alpha-nan": dict(alpha=np.nan),
    "alpha-inf": dict(alpha=np.inf),
    "activation-unknown": dict(activation="softplus"),
    "activation-None": dict(activation=None),
    "solver-unknown": dict(solver="rmsprop"),
    "batch-size-0": dict(batch_size=0),
    "batch-size-negative": dict(batch_size=-5),
    "batch-size-float": dict(batch_size=2.5),
    "momentum-above-1": dict(solver="sgd", momentum=1.5),
    "momentum-negative": dict(solver="sgd", momentum=-0.1),
    "momentum-nan": dict(solver="sgd", momentum=np.nan),
    "momentum-1": dict(solver="sgd", momentum=1.0),
    "validation-fraction-0": dict(validation_fraction=0.0),
    "validation-fraction-0-early-stopping": dict(
        validation_fraction=0.0, early_stopping=True
    ),
    "validation-fraction-1": dict(validation_fraction=1.0),
    "validation-fraction-above-1": dict(validation_fraction=1.5),
    "validation-fraction-negative": dict(validation_fraction=-0.2),
    "learning-rate-init-nan": dict(learning_rate_init=np.nan),
    "learning-rate-init-inf": dict(learning_rate_init=np.inf),
    "learning-rate-unknown": dict(learning_rate="cyclic"),
    "max-iter-negative": dict(max_iter=-1),
    "tol-nan": dict(tol=np.nan),
    "epsilon-negative": dict(epsilon=-1.0),
    "beta-1-negative": dict(beta_1=-0.1),
    "beta-2-1": dict(beta_2=1.0),
    "power-t-nan": dict(power_t=np.nan),
    "n-iter-no-change-inf": dict(n_iter_no_change=np.inf),
    "random-state-negative": dict(random_state=-1),
    "verbose-str": dict(verbose="loud"),
}


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", list(INVALID_PARAMS))
@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_like_sklearn(name, case, method):
    params = INVALID_PARAMS[case]
    solver = params.get("solver", "adam")
    if (
        method == "partial_fit"
        and name == "MLPRegressor"
        and solver not in ("sgd", "adam")
    ):
        # scikit-learn's MLPRegressor.partial_fit forgets to call _check_solver (its
        # available_if gets the bound method, always truthy), so it validates and
        # reports the parameter; its MLPClassifier -- and mlp_rs for both -- say
        # that partial_fit needs a stochastic solver.
        est = _estimator(mlp_rs, name, **params)
        with pytest.raises(AttributeError) as err:
            est.partial_fit(*make_data(_kind(name), n_samples=N))
        chain = f"{err.value} {err.value.__cause__ or err.value.__context__}"
        assert params["solver"] in chain and "stochastic" in chain, chain
        return
    check_like_sklearn(
        case, name, method, lambda X, y: (X, y, None), params=dict(params)
    )


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_max_iter_beyond_64_bits_like_sklearn(solver):
    """scikit-learn takes any positive int: one too large to reach trains until
    convergence, as 10**9 would."""
    X, y = make_data("regression", n_samples=N)
    ests = [
        _estimator(m, "MLPRegressor", solver=solver, max_iter=n)
        for m, n in ((mlp_rs, 10**20), (mlp_rs, 10**9), (sk_nn, 10**20))
    ]
    for est in ests:
        est.fit(X, y)
    assert ests[0].n_iter_ == ests[1].n_iter_ == ests[2].n_iter_
    np.testing.assert_array_equal(ests[0].coefs_[0], ests[1].coefs_[0])


@pytest.mark.parametrize(
    "n_jobs, error",
    [
        (0, ValueError),
        ("all", ValueError),
        (2.5, ValueError),
        (1, None),
        (-1, None),
        (-100, None),
        (10**6, None),
        (2**70, None),
        (-(2**70), None),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict"])
def test_n_jobs_values(n_jobs, error, method):
    """mlp_rs's own parameter: invalid values raise a ValueError that names it."""
    X, y = make_data("regression", n_samples=N)
    est = mlp_rs.MLPRegressor(**PARAMS, n_jobs=n_jobs)
    if method == "predict":
        est.set_params(n_jobs=1).fit(X, y)
        est.set_params(n_jobs=n_jobs)
    call = {
        "fit": lambda: est.fit(X, y),
        "partial_fit": lambda: est.partial_fit(X, y),
        "predict": lambda: est.predict(X),
    }[method]
    if error is None:
        call()
        return
    if method == "predict":
        # parameters are validated by fit; one set afterwards only has to be used
        # or refused cleanly
        try:
            call()
        except (ValueError, TypeError):
            pass
        return
    with pytest.raises(error, match="n_jobs"):
        call()


# --------------------------------------------------------------------------
# a failed call leaves a fitted model as it was
# --------------------------------------------------------------------------
FAILING_REFITS = [
    "nan",
    "inf",
    "3-D",
    "str-words",
    "complex",
    "0-rows",
    "fewer-features",
    "y-nan",
    "y-shorter",
    "y-2-outputs",
    "sw-shorter",
    "sw-all-zero",
    "huge-1e300",
]


def _hostile(case, X, y):
    if case == "y-2-outputs":  # a changed number of outputs (classifier: multilabel)
        return (
            X,
            np.c_[y > 0, y > 1].astype(int) if y.dtype.kind == "i" else np.c_[y, y],
            None,
        )
    if case in HOSTILE_X:
        return (*HOSTILE_X[case](X, y), None)
    if case in HOSTILE_Y:
        return (*HOSTILE_Y[case](X, y), None)
    return X, y, HOSTILE_SW[case](len(y))


def _public_state(est):
    """Every public fitted attribute (name ending in "_"), as comparable values."""
    out = {}
    for key, value in vars(est).items():
        if key.startswith("_") or not key.endswith("_"):
            continue
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            value = [v.copy() for v in value]
        elif isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, list):
            value = list(value)
        out[key] = value
    return out


def _assert_same_public_state(a, b):
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    for key in a:
        x, z = a[key], b[key]
        if isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert len(x) == len(z), key
            for p, q in zip(x, z, strict=True):
                np.testing.assert_array_equal(p, q, err_msg=key)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, z, err_msg=key)
        else:
            assert x == z or (x != x and z != z), (key, x, z)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_string_regression_targets(solver):
    """Numbers as strings train as the numbers (see LENIENT); "nan" among them is
    the NaN it says, and words are a TypeError, as in scikit-learn's arithmetic."""
    X, y = make_data("regression", n_samples=N)
    est = _estimator(mlp_rs, "MLPRegressor", solver=solver)
    np.testing.assert_array_equal(
        clone(est).fit(X, y.astype(str)).coefs_[0], clone(est).fit(X, y).coefs_[0]
    )
    with pytest.raises(ValueError, match="Input y contains NaN"):
        clone(est).fit(X, np.where(np.arange(N) == 3, "nan", y.astype(str)))
    for module in (sk_nn, mlp_rs):
        with pytest.raises(TypeError):
            _estimator(module, "MLPRegressor", solver=solver).fit(X, np.full(N, "a"))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_negative_poisson_targets_refused(method, solver):
    """scikit-learn's MLPRegressor trains on to a NaN loss; mlp_rs says why, with
    the message of scikit-learn's Poisson estimators, and changes nothing."""
    if method == "partial_fit" and solver == "lbfgs":
        pytest.skip("no partial_fit for lbfgs")
    X, y = make_data("regression", n_samples=N)
    est = _estimator(mlp_rs, "MLPRegressor", loss="poisson", solver=solver)
    est.fit(X, np.abs(y))
    before = [p.copy() for p in est.coefs_ + est.intercepts_]
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        getattr(est, method)(X, y - np.abs(y).max())
    for a, b in zip(before, est.coefs_ + est.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    # zeros are fine (the deviance's y log y is 0 there)
    getattr(est, method)(X, np.where(y > 0, y, 0.0))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_sparse_regression_targets_refused(method, outputs):
    """A sparse y of one column gets scikit-learn's TypeError (its column_or_1d), one
    of two columns a LinAlgError from its arithmetic there: the same TypeError here,
    the model unchanged."""
    X, y = make_data("regression", n_samples=N)
    est = _estimator(mlp_rs, "MLPRegressor").fit(X, y)
    before = [p.copy() for p in est.coefs_ + est.intercepts_]
    sparse_y = sp.csr_matrix(np.tile(y[:, None], (1, outputs)))
    with pytest.raises(TypeError, match="Sparse data was passed for y, but dense data"):
        getattr(est, method)(X, sparse_y)
    for a, b in zip(before, est.coefs_ + est.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)


def _refuses_all_zero_weights():
    try:
        _check_sample_weight(np.zeros(2), np.zeros((2, 1)))
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("name", NAMES)
def test_validation_split_with_zero_weights_like_sklearn(name):
    """Early stopping whose validation split holds only zero sample weights has no
    score: scikit-learn's score refuses the weights after the first epoch, mlp_rs
    before training (the fit changes nothing either way)."""
    X, y = make_data(_kind(name), n_samples=N)
    params = dict(early_stopping=True, max_iter=2)
    refused = 0
    for k in range(N):
        # one weighted row: in the training part (the validation weights are all
        # zero), or in the validation part (then the training batch's are)
        sw = np.zeros(N)
        sw[k] = 1.0
        with pytest.raises(ValueError) as error:
            _estimator(mlp_rs, name, **params).fit(X, y, sample_weight=sw)
        if "mini-batch 1 of epoch 1" in str(error.value):
            continue
        assert str(error.value) == (
            "Sample weights must contain at least one non-zero number."
        )
        refused += 1
        if _refuses_all_zero_weights():
            with pytest.raises(ValueError, match="at least one non-zero"):
                _estimator(sk_nn, name, **params).fit(X, y, sample_weight=sw)
    # 27 of the 30 rows are training rows
    assert refused == N - 3


@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", FAILING_REFITS)
@pytest.mark.parametrize("name", NAMES)
def test_failed_call_leaves_fitted_model_unchanged(name, case, method, warm_start):
    """A fit / partial_fit that raises leaves every fitted attribute of a previously
    fitted model as it was, and the model predicts as before."""
    X, y = make_data(_kind(name), n_samples=N)
    est = _estimator(mlp_rs, name, solver="sgd", warm_start=warm_start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    before = _public_state(est)
    pred = est.predict(X)
    if case in ("fewer-features", "y-2-outputs") and method == "fit" and not warm_start:
        pytest.skip("a valid refit on new data")
    Xh, yh, swh = _hostile(case, X.copy(), y.copy())
    kw = {} if swh is None else {"sample_weight": swh}
    try:
        getattr(est, method)(Xh, yh, **kw)
    except Exception as exc:  # noqa: BLE001
        assert not is_internal_error(exc), exc
    else:
        if case != "huge-1e300":  # may legitimately fit (classifier, saturated)
            pytest.fail(f"{method} accepted hostile input {case!r}")
        return
    _assert_same_public_state(before, _public_state(est))
    np.testing.assert_array_equal(est.predict(X), pred)
    if name == "MLPClassifier":
        est.predict_proba(X)


def test_failed_partial_fit_with_other_n_outputs_keeps_classifier_usable():
    """Found by the hypothesis tests: a multilabel model refuses a 1-D target in
    partial_fit (a ValueError, fine), but must not be left with a mismatched
    n_outputs_ that makes predict fail with an IndexError."""
    X = np.random.RandomState(0).standard_normal((8, 3))
    Y = np.array([[0, 1], [1, 0], [1, 1], [0, 0]] * 2)
    est = _estimator(mlp_rs, "MLPClassifier", solver="sgd")
    est.partial_fit(X, Y, classes=[0, 1])
    pred = est.predict(X)
    with pytest.raises(ValueError):
        est.partial_fit(X[:2], np.array([0, 1]))
    assert est.n_outputs_ == 2
    np.testing.assert_array_equal(est.predict(X), pred)


# --------------------------------------------------------------------------
# unusual but valid containers: accepted by every method, results bit-identical to
# the plain C-contiguous float64 array, and never written
# --------------------------------------------------------------------------
def _strided(a):
    big = np.zeros((a.shape[0] * 2,) + tuple(3 * s for s in a.shape[1:]), a.dtype)
    if a.ndim == 1:
        big[::2] = a
        return big[::2]
    big[::2, ::3] = a
    return big[::2, ::3]


def _readonly(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _memmap(tmp_path, a, mode):
    path = tmp_path / f"arr{np.random.randint(1 << 30)}.npy"
    np.save(path, a)
    return np.load(path, mmap_mode=mode)


LAYOUTS = {
    "fortran": lambda a, tmp: np.asfortranarray(a),
    "strided": lambda a, tmp: _strided(a),
    "negative-strides": lambda a, tmp: np.ascontiguousarray(a[::-1])[::-1],
    "readonly": lambda a, tmp: _readonly(a),
    "readonly-fortran": lambda a, tmp: _readonly(np.asfortranarray(a)),
    "memmap-r": lambda a, tmp: _memmap(tmp, a, "r"),
    "memmap-r+": lambda a, tmp: _memmap(tmp, a, "r+"),
    "memmap-c": lambda a, tmp: _memmap(tmp, a, "c"),
    "memmap-fortran": lambda a, tmp: _memmap(tmp, np.asfortranarray(a), "r"),
    "list": lambda a, tmp: a.tolist(),
    "float32-readonly": lambda a, tmp: _readonly(a.astype(np.float32)),
    "float32-memmap": lambda a, tmp: _memmap(tmp, a.astype(np.float32), "r"),
}
INTEGER_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.uint64, bool]


def _outputs(est, X, y, sw):
    out = [est.predict(X), est.score(X, y, sample_weight=sw)]
    if hasattr(est, "predict_proba"):
        out += [est.predict_proba(X), est.predict_log_proba(X)]
    return out


def _check_layout(name, solver, X, y, sw, Xl, yl, swl):
    """Fit/partial_fit/predict*/score on the layout and on the plain arrays agree
    bit for bit; the layout's arrays are unchanged."""
    params = dict(solver=solver, warm_start=False)
    digests = [_digest(np.asarray(a)) for a in (Xl, yl, swl)]
    ref = _estimator(mlp_rs, name, **params).fit(X, y, sample_weight=sw)
    est = _estimator(mlp_rs, name, **params).fit(Xl, yl, sample_weight=swl)
    for a, b in zip(
        ref.coefs_ + ref.intercepts_, est.coefs_ + est.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_outputs(ref, X, y, sw), _outputs(est, Xl, yl, swl), strict=True):
        np.testing.assert_array_equal(a, b)
    if solver != "lbfgs":
        kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
        ref = _estimator(mlp_rs, name, **params)
        est = _estimator(mlp_rs, name, **params)
        for _ in range(2):
            ref.partial_fit(X, y, sample_weight=sw, **kw)
            est.partial_fit(Xl, yl, sample_weight=swl, **kw)
        for a, b in zip(
            ref.coefs_ + ref.intercepts_, est.coefs_ + est.intercepts_, strict=True
        ):
            np.testing.assert_array_equal(a, b)
    assert [_digest(np.asarray(a)) for a in (Xl, yl, swl)] == digests


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", NAMES)
def test_valid_layouts_accepted_everywhere(name, layout, solver, tmp_path):
    X, y = make_data(_kind(name), n_samples=N)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, size=N)
    make = LAYOUTS[layout]
    Xl, yl, swl = make(X, tmp_path), make(y, tmp_path), make(sw, tmp_path)
    if layout.startswith("float32"):
        X, sw = X.astype(np.float32), sw.astype(np.float32)
        y = y.astype(np.float32) if name == "MLPRegressor" else y
    _check_layout(name, solver, X, y, sw, Xl, yl, swl)


@pytest.mark.parametrize(
    "layout", [k for k in LAYOUTS if k != "list" and not k.startswith("float32")]
)
@pytest.mark.parametrize("name", NAMES)
def test_assigned_weights_in_any_layout(name, layout, tmp_path):
    """coefs_ / intercepts_ assigned in any memory layout (``W.T`` of an export is
    Fortran-ordered) give the bits of the same weights in C order, in every
    prediction and in training that continues from them; the arrays stay unchanged."""
    X, y = make_data(_kind(name), n_samples=N)
    ref = _estimator(mlp_rs, name, warm_start=True).fit(X, y)
    est = clone(ref).fit(X, y)
    make = LAYOUTS[layout]
    est.coefs_ = [make(c, tmp_path) for c in ref.coefs_]
    est.intercepts_ = [make(b, tmp_path) for b in ref.intercepts_]
    digests = [_digest(np.asarray(a)) for a in est.coefs_ + est.intercepts_]
    for a, b in zip(_outputs(ref, X, y, None), _outputs(est, X, y, None), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref.hidden_activations(X), est.hidden_activations(X))
    assigned = est.coefs_ + est.intercepts_
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    for method, fit_params in (("fit", {}), ("partial_fit", kw)):
        getattr(ref, method)(X, y, **fit_params)
        getattr(est, method)(X, y, **fit_params)
        for a, b in zip(
            ref.coefs_ + ref.intercepts_, est.coefs_ + est.intercepts_, strict=True
        ):
            np.testing.assert_array_equal(a, b)
    assert [_digest(np.asarray(a)) for a in assigned] == digests


def test_engine_refuses_weights_it_would_misread():
    """The engine's own check, below the estimators' conversion: a Fortran-ordered
    weight matrix is an error, not read column by column."""
    X, y = make_data("regression", n_samples=N)
    est = _estimator(mlp_rs, "MLPRegressor").fit(X, y)
    params = [np.asfortranarray(p) for p in est.coefs_ + est.intercepts_]
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.predict(X, params, est.activation, "squared_error", None, False)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_integer_and_bool_inputs_accepted_everywhere(name, dtype):
    X, y = make_data(_kind(name), n_samples=N)
    Xi = (X * 3).astype(dtype) if dtype is not bool else X > 0
    if np.dtype(dtype).kind == "u":
        Xi = np.abs(X * 3).astype(dtype)
    sw = np.random.RandomState(0).randint(1, 4, size=N)
    _check_layout(
        name, "sgd", Xi.astype(np.float64), y, sw.astype(np.float64), Xi, y, sw
    )


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("name", NAMES)
def test_readonly_sparse_inputs_accepted_and_untouched(name, fmt):
    X, y = make_data(_kind(name), n_samples=N)
    X = np.where(np.abs(X) > 0.5, X, 0.0)
    Xs = sp.csr_matrix(X).asformat(fmt)
    for attr in ("data", "indices", "indptr", "row", "col"):
        if hasattr(Xs, attr):
            getattr(Xs, attr).setflags(write=False)
    dense_ref = sp.csr_matrix(X)  # mlp_rs must see the same values as from CSR
    ref = _estimator(mlp_rs, name, solver="sgd").fit(dense_ref, y)
    est = _estimator(mlp_rs, name, solver="sgd").fit(Xs, y)
    for a, b in zip(ref.coefs_, est.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        _outputs(ref, dense_ref, y, None), _outputs(est, Xs, y, None), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    if fmt != "coo":
        kw = {"classes": [0, 1, 2]} if name == "MLPClassifier" else {}
        _estimator(mlp_rs, name, solver="sgd").partial_fit(Xs, y, **kw)
    np.testing.assert_array_equal(Xs.toarray(), X)


def test_memmap_file_never_written(tmp_path):
    """A writable (r+) memory map's file is byte-for-byte unchanged by every method."""
    X, y = make_data("multiclass", n_samples=N)
    path = tmp_path / "X.npy"
    np.save(path, X)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    Xm = np.load(path, mmap_mode="r+")
    for solver in ("sgd", "adam", "lbfgs"):
        est = _estimator(
            mlp_rs, "MLPClassifier", solver=solver, early_stopping=solver != "lbfgs"
        )
        est.fit(Xm, y)
        _outputs(est, Xm, y, None)
        if solver != "lbfgs":
            est = _estimator(mlp_rs, "MLPClassifier", solver=solver)
            est.partial_fit(Xm, y, classes=[0, 1, 2])
    Xm.flush()
    del Xm
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_count_hostile_cases():
    """Reports how many hostile-input comparisons with scikit-learn this module runs."""
    n_f32 = sum(
        1
        for name in NAMES
        for _ in F32_CASES
        for method in PREDICT_METHODS
        if not (name == "MLPRegressor" and "proba" in method)
    )
    counts = {
        "hostile X / y / sample_weight x method": len(HOSTILE_CASES),
        "float32 model, values beyond float32": n_f32,
        "classifier targets": len(CLASSIFIER_CASES),
        "partial_fit classes (first call)": len(PARTIAL_FIT_CLASSES),
        "partial_fit (second call)": len(SECOND_PARTIAL_FIT) + len(NAMES),
        "hyper-parameters x {fit, partial_fit}": 2 * len(NAMES) * len(INVALID_PARAMS),
    }
    print("\nhostile-input comparisons with scikit-learn:")
    for what, n in counts.items():
        print(f"  {n:5d}  {what}")
    print(f"  {sum(counts.values()):5d}  total")
    assert sum(counts.values()) > 500
