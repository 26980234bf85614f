"""Persistence: pickle and joblib round-trips, the pickled state, and versions.

* Round-trips keep every prediction bit-identical (classifier and regressor, float32
  and float64, every solver, after fit and after partial_fit), and training continued
  after loading follows exactly the trajectory it would have followed without the
  round-trip -- also when loaded in another process, and from joblib memory maps.
* The pickled state holds plain NumPy arrays and Python values only (no capsules, no
  engine handles).
* A state written by another mlp_rs version: same major.minor loads silently; a
  different one loads with a UserWarning naming both versions when every needed
  attribute is there, and otherwise raises a ValueError naming both.
"""

import copy
import copyreg
import io
import json
import pickle
import subprocess
import sys
import warnings

import joblib
import mlp_rs
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_data
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

OURS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
NAMES = list(OURS)
SOLVERS = ["sgd", "adam", "lbfgs"]
DTYPES = [np.float32, np.float64]
SMALL = dict(hidden_layer_sizes=(7, 5), random_state=0, max_iter=5)
VERSION_KEY = "_mlp_rs_version"


def _kind(name):
    return "multiclass" if name == "MLPClassifier" else "regression"


def _data(name, dtype, kind=None):
    X, y = make_data(kind or _kind(name), n_samples=60)
    return X.astype(dtype), y


def _fit(name, solver, dtype, **params):
    X, y = _data(name, dtype)
    lr = {"sgd": 0.05, "adam": 0.01}.get(solver, 0.001)
    est = OURS[name](**{**SMALL, "solver": solver, "learning_rate_init": lr, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est, X, y


# --------------------------------------------------------------------------
# round-trips
# --------------------------------------------------------------------------
def _pickle(est, tmp_path):
    return pickle.loads(pickle.dumps(est))


def _pickle_protocol_0(est, tmp_path):
    return pickle.loads(pickle.dumps(est, protocol=0))


def _pickle_out_of_band(est, tmp_path):
    buffers = []
    data = pickle.dumps(est, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=buffers)


_counter = iter(range(1 << 30))


def _fresh_path(tmp_path, suffix):
    # never overwrite a file that a loaded model may still have memory-mapped
    return tmp_path / f"model{next(_counter)}{suffix}"


def _joblib(est, tmp_path):
    path = _fresh_path(tmp_path, ".joblib")
    joblib.dump(est, path)
    return joblib.load(path)


def _joblib_compressed(est, tmp_path):
    path = _fresh_path(tmp_path, ".joblib.gz")
    joblib.dump(est, path, compress=3)
    return joblib.load(path)


def _joblib_mmap(est, tmp_path):
    path = _fresh_path(tmp_path, ".joblib")
    joblib.dump(est, path)
    return joblib.load(path, mmap_mode="r")


def _deepcopy(est, tmp_path):
    return copy.deepcopy(est)


ROUND_TRIPS = {
    "pickle": _pickle,
    "pickle-protocol-0": _pickle_protocol_0,
    "pickle-5-out-of-band": _pickle_out_of_band,
    "joblib": _joblib,
    "joblib-compressed": _joblib_compressed,
    "joblib-mmap": _joblib_mmap,
    "deepcopy": _deepcopy,
}


def _outputs(est, X, y):
    out = {"predict": est.predict(X), "score": est.score(X, y)}
    if hasattr(est, "predict_proba"):
        with np.errstate(divide="ignore"):
            out["predict_proba"] = est.predict_proba(X)
            out["predict_log_proba"] = est.predict_log_proba(X)
    return out


def assert_bit_identical_outputs(a, b, X, y):
    out_a, out_b = _outputs(a, X, y), _outputs(b, X, y)
    for key in out_a:
        x, z = np.asarray(out_a[key]), np.asarray(out_b[key])
        assert x.dtype == z.dtype, key
        assert x.shape == z.shape, key
        # bit-identical, NaN included
        assert x.tobytes() == z.tobytes(), key


def assert_same_model(a, b):
    assert type(a) is type(b)
    assert a.get_params() == b.get_params()
    for w_a, w_b in zip(
        a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True
    ):
        assert w_a.dtype == w_b.dtype
        assert w_a.tobytes() == w_b.tobytes()
    for attr in (
        "n_iter_",
        "t_",
        "loss_",
        "best_loss_",
        "n_features_in_",
        "n_outputs_",
        "n_layers_",
        "out_activation_",
        "best_validation_score_",
    ):
        if hasattr(a, attr) or hasattr(b, attr):
            assert getattr(a, attr) == getattr(b, attr), attr
    for attr in ("loss_curve_", "validation_scores_"):
        if getattr(a, attr, None) is not None:
            assert list(getattr(a, attr)) == list(getattr(b, attr)), attr
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(a.classes_, b.classes_)
        assert a.classes_.dtype == b.classes_.dtype


@pytest.mark.parametrize("how", list(ROUND_TRIPS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_predictions_bit_identical(name, solver, dtype, how, tmp_path):
    est, X, y = _fit(name, solver, dtype)
    loaded = ROUND_TRIPS[how](est, tmp_path)
    assert_same_model(est, loaded)
    assert_bit_identical_outputs(est, loaded, X, y)
    # a second round-trip changes nothing either
    again = ROUND_TRIPS[how](loaded, tmp_path)
    assert_bit_identical_outputs(est, again, X, y)


@pytest.mark.parametrize("how", ["pickle", "joblib", "joblib-mmap"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("name", NAMES)
def test_partial_fit_continues_identically_after_round_trip(
    name, solver, dtype, how, tmp_path
):
    X, y = _data(name, dtype)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    est = OURS[name](**SMALL, solver=solver, learning_rate_init=0.01)
    est.partial_fit(X[:30], y[:30], **kw)
    est.partial_fit(X[30:], y[30:])
    loaded = ROUND_TRIPS[how](est, tmp_path)
    assert_same_model(est, loaded)
    assert_bit_identical_outputs(est, loaded, X, y)
    for _ in range(3):
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
    assert_same_model(est, loaded)
    assert_bit_identical_outputs(est, loaded, X, y)
    for w_a, w_b in zip(
        est._optimizer_state["tensors"], loaded._optimizer_state["tensors"], strict=True
    ):
        assert w_a.tobytes() == w_b.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_state_from_before_its_settings_were_kept(name):
    """A pickle of an earlier 0.1 kept the optimizer's tensors and step but not its
    settings: partial_fit continues it with the estimator's current ones, as then."""
    X, y = _data(name, np.float64)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    est = OURS[name](**SMALL, solver="adam", learning_rate_init=0.01)
    est.partial_fit(X, y, **kw)
    old = pickle.loads(pickle.dumps(est))
    del old._optimizer_state["settings"]
    for model in (est, old):
        model.partial_fit(X, y)
    assert_same_model(est, old)


@pytest.mark.parametrize("how", ["pickle", "joblib-mmap"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_warm_start_continues_identically_after_round_trip(name, solver, how, tmp_path):
    early = solver != "lbfgs"
    est, X, y = _fit(name, solver, np.float64, warm_start=True, early_stopping=early)
    loaded = ROUND_TRIPS[how](est, tmp_path)
    for e in (est, loaded):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            e.set_params(max_iter=3).fit(X, y)
    assert_same_model(est, loaded)
    assert_bit_identical_outputs(est, loaded, X, y)


@pytest.mark.parametrize(
    "kind", ["binary", "multilabel", "multiclass4_str", "multiclass_str"]
)
def test_round_trip_classifier_label_kinds(kind, tmp_path):
    X, y = make_data(kind, n_samples=60)
    est = MLPClassifier(**SMALL).fit(X, y)
    for how in ("pickle", "joblib"):
        loaded = ROUND_TRIPS[how](est, tmp_path)
        assert_same_model(est, loaded)
        assert_bit_identical_outputs(est, loaded, X, y)


@pytest.mark.parametrize("kind", ["regression_multi", "poisson"])
def test_round_trip_regressor_kinds(kind, tmp_path):
    X, y = make_data(kind, n_samples=60)
    est = MLPRegressor(
        **SMALL, loss="poisson" if kind == "poisson" else "squared_error"
    )
    est.fit(X, y)
    loaded = ROUND_TRIPS["pickle"](est, tmp_path)
    assert_same_model(est, loaded)
    assert_bit_identical_outputs(est, loaded, X, y)


def test_round_trip_sparse_trained_model(tmp_path):
    X, y = make_data("multiclass", n_samples=60)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    est = MLPClassifier(**SMALL, solver="sgd").fit(Xs, y)
    loaded = ROUND_TRIPS["joblib"](est, tmp_path)
    assert_bit_identical_outputs(est, loaded, Xs, y)
    est.partial_fit(Xs, y)
    loaded.partial_fit(Xs, y)
    assert_same_model(est, loaded)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_round_trip_and_clone_of_loaded(name, tmp_path):
    est = OURS[name](alpha=0.3, n_jobs=2, hidden_layer_sizes=(3,))
    for how in ("pickle", "joblib"):
        loaded = ROUND_TRIPS[how](est, tmp_path)
        assert loaded.get_params() == est.get_params()
        assert not hasattr(loaded, "coefs_")
    fitted, X, y = _fit(name, "adam", np.float64)
    cloned = clone(pickle.loads(pickle.dumps(fitted)))
    assert not hasattr(cloned, "coefs_")
    assert cloned.get_params() == fitted.get_params()


def test_n_jobs_change_after_loading_keeps_bits(tmp_path):
    est, X, y = _fit("MLPClassifier", "adam", np.float64, n_jobs=1)
    loaded = ROUND_TRIPS["pickle"](est, tmp_path)
    loaded.set_params(n_jobs=2)
    assert_bit_identical_outputs(est, loaded, X, y)


# --------------------------------------------------------------------------
# across processes
# --------------------------------------------------------------------------
_CHILD = r"""
import base64, json, pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
payload = pickle.loads(sys.stdin.buffer.read())
out = {}
for key, (est, X, y, more_X, more_y) in payload.items():
    res = {"predict": est.predict(X)}
    if hasattr(est, "predict_proba"):
        res["predict_proba"] = est.predict_proba(X)
    if more_X is not None:
        est.partial_fit(more_X, more_y)
        res["after_partial_fit"] = np.concatenate([c.ravel() for c in est.coefs_])
    out[key] = {
        k: [str(v.dtype), list(v.shape),
            base64.b64encode(np.ascontiguousarray(v).tobytes()).decode()]
        for k, v in res.items()
    }
print(json.dumps(out))
"""


def test_load_in_another_process_bit_identical():
    """Pickled here, loaded in a fresh interpreter: the same bits come out, and
    partial_fit there continues exactly as here."""
    import base64

    payload, expected = {}, {}
    for name in NAMES:
        for solver in SOLVERS:
            for dtype in DTYPES:
                est, X, y = _fit(name, solver, dtype)
                key = f"{name}-{solver}-{np.dtype(dtype).name}"
                stochastic = solver != "lbfgs"
                payload[key] = (
                    est,
                    X,
                    y,
                    X if stochastic else None,
                    y if stochastic else None,
                )
                res = {"predict": est.predict(X)}
                if name == "MLPClassifier":
                    res["predict_proba"] = est.predict_proba(X)
                if stochastic:
                    twin = pickle.loads(pickle.dumps(est))
                    twin.partial_fit(X, y)
                    res["after_partial_fit"] = np.concatenate(
                        [c.ravel() for c in twin.coefs_]
                    )
                expected[key] = res
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=pickle.dumps(payload),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    got = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert set(got) == set(expected)
    for key, res in expected.items():
        for what, arr in res.items():
            dtype, shape, b64 = got[key][what]
            arr = np.ascontiguousarray(arr)
            assert dtype == str(arr.dtype), (key, what)
            assert shape == list(arr.shape), (key, what)
            assert base64.b64decode(b64) == arr.tobytes(), (key, what)


# --------------------------------------------------------------------------
# the pickled state: plain arrays and Python values only
# --------------------------------------------------------------------------
_PLAIN = (type(None), bool, int, float, str, bytes, np.generic, np.dtype)


def _walk(obj, path, seen, problems):
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            for i, item in enumerate(obj.ravel()):
                _walk(item, f"{path}[{i}]", seen, problems)
        elif obj.dtype.kind not in "biufUSc":
            problems.append(f"{path}: array of dtype {obj.dtype}")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                problems.append(f"{path}: key {k!r} of type {type(k).__name__}")
            _walk(v, f"{path}[{k!r}]", seen, problems)
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _walk(v, f"{path}[{i}]", seen, problems)
        return
    if isinstance(obj, LabelBinarizer):
        _walk(vars(obj), f"{path}.__dict__", seen, problems)
        return
    if isinstance(obj, np.random.RandomState):
        _walk(obj.get_state(legacy=False), f"{path}.get_state()", seen, problems)
        return
    problems.append(f"{path}: {type(obj).__module__}.{type(obj).__qualname__}")


def _state_problems(est):
    state = est.__getstate__()
    assert isinstance(state, dict)
    problems = []
    _walk(state, "state", set(), problems)
    # belt and braces: the state must pickle without reaching mlp_rs._core
    data = pickle.dumps(state)
    assert b"mlp_rs._core" not in data
    assert b"builtins\nPyCapsule" not in data and b"PyCapsule" not in data
    return problems


STATE_CASES = [
    (name, solver, dtype, early)
    for name in NAMES
    for solver in SOLVERS
    for dtype in DTYPES
    for early in (False, True)
    if not (early and solver == "lbfgs")
]


@pytest.mark.parametrize("name, solver, dtype, early", STATE_CASES)
def test_pickled_state_is_plain_data(name, solver, dtype, early):
    est, X, y = _fit(name, solver, dtype, early_stopping=early)
    assert _state_problems(est) == []
    if solver != "lbfgs" and not early:
        est.partial_fit(X, y)
        assert _state_problems(est) == []


@pytest.mark.parametrize("name", NAMES)
def test_pickled_state_of_unfitted_and_partial_fit_models_is_plain(name):
    assert _state_problems(OURS[name]()) == []
    X, y = _data(name, np.float32)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    est = OURS[name](**SMALL).partial_fit(X, y, **kw)
    assert _state_problems(est) == []


def test_pickle_stream_references_only_expected_modules():
    """The pickle stream names only mlp_rs's estimator classes, NumPy, scikit-learn's
    LabelBinarizer and the standard library."""
    import pickletools

    est, X, y = _fit("MLPClassifier", "adam", np.float32)
    data = pickle.dumps(est, protocol=2)  # protocol 2: GLOBAL opcodes are explicit
    globals_ = set()
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name in ("GLOBAL", "INST"):
            globals_.add(arg.replace("\n", " ").replace(" ", ".", 1))
    allowed_prefixes = (
        "mlp_rs._classifier.MLPClassifier",
        "numpy.",
        "sklearn.preprocessing._label.LabelBinarizer",
        "copy_reg.",
        "copyreg.",
        "__builtin__.",
        "builtins.",
        "_codecs.",
    )
    unexpected = {g for g in globals_ if not g.startswith(allowed_prefixes)}
    assert not unexpected, unexpected


# --------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------
def _installed_version():
    return mlp_rs.__version__


def _major_minor(v):
    return tuple(v.split(".")[:2])


def _with_version(est, version, drop=()):
    """``est`` rebuilt from a state claiming ``version`` (and lacking ``drop``)."""
    # a deep copy, as unpickling would give: nothing shared with ``est``
    state = pickle.loads(pickle.dumps(est.__getstate__()))
    state[VERSION_KEY] = version
    for name in drop:
        state.pop(name, None)
    new = type(est).__new__(type(est))
    new.__setstate__(state)
    return new


def _other_version(kind):
    major, minor, *rest = _installed_version().split(".")
    if kind == "patch":
        return f"{major}.{minor}.999"
    if kind == "minor":
        return f"{major}.{int(minor) + 1}.0"
    if kind == "major":
        return f"{int(major) + 1}.0.0"
    return "0.0.1" if _major_minor(_installed_version()) != ("0", "0") else "9.9.9"


@pytest.mark.parametrize("name", NAMES)
def test_state_records_the_version(name):
    est, X, y = _fit(name, "adam", np.float64)
    state = est.__getstate__()
    assert state.get(VERSION_KEY) == _installed_version()
    # the key is bookkeeping, not an attribute of the loaded model
    loaded = pickle.loads(pickle.dumps(est))
    assert (
        not hasattr(loaded, VERSION_KEY)
        or getattr(loaded, VERSION_KEY) == _installed_version()
    )


@pytest.mark.parametrize("name", NAMES)
def test_same_major_minor_loads_silently(name):
    est, X, y = _fit(name, "sgd", np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = _with_version(est, _other_version("patch"))
    assert_bit_identical_outputs(est, loaded, X, y)


@pytest.mark.parametrize("kind", ["minor", "major", "old"])
@pytest.mark.parametrize("name", NAMES)
def test_other_version_with_full_state_loads_with_warning(name, kind):
    est, X, y = _fit(name, "adam", np.float32)
    other = _other_version(kind)
    with pytest.warns(UserWarning) as record:
        loaded = _with_version(est, other)
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert any(other in m and _installed_version() in m for m in messages), messages
    assert_bit_identical_outputs(est, loaded, X, y)
    # it also goes on training like the original
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    assert_same_model(est, loaded)


def test_other_version_through_real_pickle_bytes():
    """The same, starting from bytes on disk rather than from __setstate__."""
    est, X, y = _fit("MLPRegressor", "sgd", np.float64)
    state = est.__getstate__()
    state[VERSION_KEY] = "0.0.1"

    class Forged:  # pickles as MLPRegressor with the forged state
        def __reduce__(self):
            return (copyreg._reconstructor, (MLPRegressor, object, None), state)

    data = pickle.dumps(Forged())
    with pytest.warns(UserWarning, match=r"0\.0\.1"):
        loaded = pickle.loads(data)
    assert type(loaded) is MLPRegressor
    assert_bit_identical_outputs(est, loaded, X, y)


NEEDED = {
    "MLPRegressor": [
        "coefs_",
        "intercepts_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
    ],
    "MLPClassifier": [
        "coefs_",
        "intercepts_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "classes_",
        "_label_binarizer",
    ],
}


@pytest.mark.parametrize("name, missing", [(n, m) for n in NAMES for m in NEEDED[n]])
def test_other_version_missing_attribute_raises_naming_both_versions(name, missing):
    est, X, y = _fit(name, "adam", np.float64)
    other = _other_version("old")
    with pytest.raises(ValueError) as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _with_version(est, other, drop=[missing])
    msg = str(err.value)
    assert other in msg and _installed_version() in msg, msg


@pytest.mark.parametrize("name", NAMES)
def test_same_version_missing_attribute_fails_cleanly(name):
    """Not a version question, but a damaged state must not crash: loading works or
    raises a clean error, and using the model then raises a clean error."""
    est, X, y = _fit(name, "adam", np.float64)
    for missing in NEEDED[name]:
        try:
            loaded = _with_version(est, _installed_version(), drop=[missing])
        except (ValueError, TypeError, AttributeError):
            continue
        try:
            loaded.predict(X)
        except (ValueError, TypeError, AttributeError):
            pass


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_model_of_other_version_loads(name):
    est = OURS[name](alpha=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loaded = _with_version(est, _other_version("old"))
    assert loaded.get_params() == est.get_params()


@pytest.mark.parametrize("name", NAMES)
def test_state_without_version_key_loads(name):
    """A state written before versions were recorded still loads."""
    est, X, y = _fit(name, "sgd", np.float64)
    state = pickle.loads(pickle.dumps(est.__getstate__()))
    state.pop(VERSION_KEY, None)
    new = type(est).__new__(type(est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        new.__setstate__(state)
    assert_bit_identical_outputs(est, new, X, y)
