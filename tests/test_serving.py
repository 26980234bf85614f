"""The serving path of predict / predict_proba / predict_log_proba / score.

A plain float NumPy array skips scikit-learn's generic validation; everything else goes
the full way. Whichever way an input goes, the outputs, the errors (type and message)
and the warnings must be those of the full path: each case runs with the serving path
on and with it forced off, and the two are compared.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from conftest import assert_same_outcome, call_outcome, make_data
from mlp_rs import MLPClassifier, MLPRegressor

pd = pytest.importorskip("pandas")


def _inputs(X):
    nan, inf = X.copy(), X.copy()
    nan[1, 2], inf[0, 0] = np.nan, np.inf
    return {
        "float64": X,
        "float32": X.astype(np.float32),
        "fortran": np.asfortranarray(X),
        "strided": X[::2],
        "one row": X[:1],
        "nan": nan,
        "inf": inf,
        "nan float32": nan.astype(np.float32),
        "too few features": X[:, :-1],
        "too many features": np.hstack([X, X[:, :1]]),
        "no rows": X[:0],
        "1-D": X[0],
        "float16": X.astype(np.float16),
        "int": (X * 10).astype(np.int64),
        "object": X.astype(object),
        "list": X[:3].tolist(),
        "dataframe": pd.DataFrame(X),
        **_frames(X),
        "csr": sp.csr_matrix(X),
        "matrix": np.asmatrix(X),
    }


NAMES = list("abcdef")


def _frames(X):
    """DataFrames with the "feature names" model's column names, plain (the serving
    path for that model) or not (the full path: other names, order, dtypes, values)."""
    named = pd.DataFrame(X, columns=NAMES)
    nan = named.copy()
    nan.iloc[1, 2] = np.nan
    mixed = named.copy()
    mixed["b"] = (X[:, 1] * 10).astype(np.int64)
    renamed = named.rename(columns={"f": "g"})
    return {
        "named frame": named,
        "named frame float32": named.astype(np.float32),
        "named frame one row": named.iloc[:1],
        "named frame strided": named.iloc[::2],
        "named frame no rows": named.iloc[:0],
        "named frame nan": nan,
        "named frame reordered": named[NAMES[::-1]],
        "named frame renamed": renamed,
        "named frame too few columns": named[NAMES[:-1]],
        "named frame int": (named * 10).astype(np.int64),
        "named frame mixed dtypes": mixed,
        "named frame nullable": named.astype("Float64"),
        "named frame object": named.astype(object),
        "named frame numpy str names": pd.DataFrame(
            X, columns=pd.Index([np.str_(c) for c in NAMES], dtype=object)
        ),
        "named frame int names": pd.DataFrame(X, columns=range(X.shape[1])),
    }


def _models():
    X, y = make_data("multiclass", n_samples=60)
    Xb, yb = make_data("binary", n_samples=60)
    Xr, yr = make_data("regression", n_samples=60)
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "multiclass": (MLPClassifier(**kw).fit(X, y), X, y),
            "binary": (MLPClassifier(**kw).fit(Xb, yb), Xb, yb),
            "multiclass float32": (
                MLPClassifier(**kw).fit(X.astype(np.float32), y),
                X,
                y,
            ),
            "regressor": (MLPRegressor(**kw).fit(Xr, yr), Xr, yr),
            "feature names": (
                MLPClassifier(**kw).fit(pd.DataFrame(X, columns=NAMES), y),
                X,
                y,
            ),
        }


MODELS = _models()
METHODS = ["predict", "predict_proba", "predict_log_proba", "score"]


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("assume_finite", [False, True])
def test_serving_path_is_the_full_path(model, method, assume_finite, monkeypatch):
    est, X, y = MODELS[model]
    if not hasattr(est, method):
        pytest.skip(f"{type(est).__name__} has no {method}")
    for name, X_in in _inputs(X).items():

        def call(X_in=X_in):
            f = getattr(est, method)
            n = getattr(X_in, "shape", (len(X_in),))[0]
            return f(X_in, y[:n]) if method == "score" else f(X_in)

        with sklearn.config_context(assume_finite=assume_finite):
            fast = call_outcome(call)
            with monkeypatch.context() as m:
                m.setattr(type(est), "_served_values", lambda self, X: None)
                full = call_outcome(call)
        try:
            assert_same_outcome(fast, full, np.testing.assert_array_equal)
        except AssertionError as exc:
            raise AssertionError(f"{model} {method} {name}: {exc}") from None


def test_first_layer_overflow_is_not_taken_for_bad_input(monkeypatch):
    """The engine finds NaN and infinity in X from the first layer's products; finite
    X whose products overflow there looks the same to it: the full path's validation
    then passes X, and the outputs (infinities and NaN) are the full path's."""
    est, X, _ = MODELS["regressor"]
    est = pickle.loads(pickle.dumps(est))
    est.coefs_[0] = np.full_like(est.coefs_[0], 1e308)
    fast = call_outcome(lambda: est.predict(X))
    with monkeypatch.context() as m:
        m.setattr(type(est), "_served_values", lambda self, X: None)
        full = call_outcome(lambda: est.predict(X))
    assert_same_outcome(fast, full, np.testing.assert_array_equal)
    assert not np.isfinite(est.predict(X)).all()


def test_serving_path_is_taken_for_plain_arrays(monkeypatch):
    est, X, _ = MODELS["multiclass"]
    calls = []
    original = sklearn.utils.validation.validate_data

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    import mlp_rs._base

    monkeypatch.setattr(mlp_rs._base, "validate_data", spy)
    est.predict_proba(X)
    est.predict(X[:1])
    assert calls == []
    est.predict_proba(X.tolist())  # a list: the full path
    assert calls == [1]
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict_proba(bad)  # the engine found NaN: the full path raises
    assert calls == [1, 1]
    named, _, _ = MODELS["feature names"]
    named.predict_proba(pd.DataFrame(X, columns=NAMES))  # a plain DataFrame: served
    assert calls == [1, 1]
    with pytest.raises(ValueError, match="feature names should match"):
        named.predict_proba(pd.DataFrame(X, columns=NAMES[::-1]))  # the full path
    assert calls == [1, 1, 1]


def _label_cases():
    X, y = make_data("multiclass", n_samples=60)
    ym = np.stack([y % 2, (y // 2) % 2, y == 3], axis=1).astype(int)
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strings = np.array([f"c{v}" for v in y])
        return {
            **{k: v for k, v in MODELS.items() if isinstance(v[0], MLPClassifier)},
            "multilabel": (MLPClassifier(**kw).fit(X, ym), X, y),
            "string labels": (MLPClassifier(**kw).fit(X, strings), X, y),
        }


@pytest.mark.parametrize("case", list(_label_cases()))
def test_score_is_classifier_mixins_score(case):
    """score's accuracy for plain integer labels is accuracy_score's, bit for bit;
    other labels and weights take accuracy_score itself (same errors, warnings)."""
    from sklearn.base import ClassifierMixin

    est, X, y = _label_cases()[case]
    labels = {
        "as given": y,
        "int32": y.astype(np.int32),
        "uint8": y.astype(np.uint8),
        "unseen": y + 7,
        "short": y[:-1],
        "list": list(y),
        "float": y.astype(float),
        "strings": np.array([f"c{v}" for v in y]),
        "column": y.reshape(-1, 1),
        "indicator": np.stack([y % 2, y % 3 == 0, y == 1], axis=1).astype(int),
        "bool": y % 2 == 0,
        "object": y.astype(object),
        "series": pd.Series(y),
        "series shuffled index": pd.Series(y, index=np.arange(len(y))[::-1]),
        "series short": pd.Series(y[:-1]),
        "series strings": pd.Series([f"c{v}" for v in y]),
        "series nullable": pd.Series(y).astype("Int64"),
    }
    weights = [None, np.linspace(0.5, 2.0, len(y))]
    for (name, y_in), w in ((item, w) for item in labels.items() for w in weights):
        fast = call_outcome(lambda y_in=y_in, w=w: est.score(X, y_in, sample_weight=w))
        full = call_outcome(
            lambda y_in=y_in, w=w: ClassifierMixin.score(est, X, y_in, sample_weight=w)
        )
        try:
            assert_same_outcome(fast, full, np.testing.assert_array_equal)
        except AssertionError as exc:
            raise AssertionError(
                f"{case} {name} weights={w is not None}: {exc}"
            ) from None
