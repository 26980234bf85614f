"""The plain path of fit's input validation.

``fit`` and ``partial_fit`` take a plain float NumPy X (and a plain NumPy y) without
scikit-learn's generic validation, and build a classifier's label binarizer from 1-D
integer labels directly; everything else goes the full way. Whichever way an input
goes, the model, its recorded attributes, the errors (type and message) and the
warnings must be those of the full path: each case runs with the plain path on and
with it forced off, and the two are compared.
"""

import warnings

import mlp_rs._classifier
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from conftest import assert_same_outcome, call_outcome, make_data
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer

pd = pytest.importorskip("pandas")

KW = dict(hidden_layer_sizes=(5,), max_iter=2, random_state=0)


def _state(est):
    """What a fit leaves that the two paths must agree on."""
    names = ("n_features_in_", "feature_names_in_", "classes_", "loss_curve_")
    state = {n: getattr(est, n) for n in names if hasattr(est, n)}
    state["weights"] = est.coefs_ + est.intercepts_
    if hasattr(est, "_label_binarizer"):
        state["binarizer"] = vars(est._label_binarizer)
    return state


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        if name in ("weights", "loss_curve_"):
            for u, v in zip(a[name], b[name], strict=True):
                np.testing.assert_array_equal(u, v)
        elif name == "binarizer":
            assert a[name].keys() == b[name].keys()
            for key in a[name]:
                u, v = a[name][key], b[name][key]
                assert type(u) is type(v), key
                if isinstance(u, np.ndarray):
                    assert u.dtype == v.dtype, key
                np.testing.assert_array_equal(u, v)
        else:
            u, v = np.asarray(a[name]), np.asarray(b[name])
            assert u.dtype == v.dtype, name
            np.testing.assert_array_equal(u, v)


def _full_path(monkeypatch):
    """Forces scikit-learn's validation and LabelBinarizer.fit everywhere."""
    base = mlp_rs._base.BaseMultilayerPerceptron
    monkeypatch.setattr(base, "_is_plain_training_input", lambda self, *a, **k: False)
    monkeypatch.setattr(
        mlp_rs._classifier, "_fitted_binarizer", lambda y: LabelBinarizer().fit(y)
    )


def _frames(X):
    """DataFrames the plain path takes (string names, one float dtype) and others."""
    names = [f"f{i}" for i in range(X.shape[1])]
    named = pd.DataFrame(X, columns=names)
    nan = named.copy()
    nan.iloc[1, 2] = np.nan
    mixed = named.copy()
    mixed["f1"] = (X[:, 1] * 10).astype(np.int64)
    return {
        "frame float32": named.astype(np.float32),
        "frame strided": named.iloc[::2],
        "frame nan": nan,
        "frame no rows": named.iloc[:0],
        "frame int names": pd.DataFrame(X),
        "frame mixed names": pd.DataFrame(X, columns=[0, *names[1:]]),
        "frame duplicate names": pd.DataFrame(X, columns=[*names[:-1], names[0]]),
        "frame numpy str names": pd.DataFrame(
            X, columns=pd.Index([np.str_(c) for c in names], dtype=object)
        ),
        "frame mixed dtypes": mixed,
        "frame nullable": named.astype("Float64"),
        "frame object": named.astype(object),
        "frame int": (named * 10).astype(np.int64),
    }


def _x_inputs(X):
    nan, inf = X.copy(), X.copy()
    nan[1, 2], inf[0, 0] = np.nan, np.inf
    huge = np.where(X > 0, 1e307, -3e306)  # finite values whose sum overflows
    return {
        "float64": X,
        "float32": X.astype(np.float32),
        "fortran": np.asfortranarray(X),
        "strided": X[:, ::2],
        "big-endian": X.astype(">f8"),
        "nan": nan,
        "inf": inf,
        "nan float32": nan.astype(np.float32),
        "huge": huge,
        "no rows": X[:0],
        "no columns": X[:, :0],
        "1-D": X[:, 0],
        "3-D": X[:, :, None],
        "float16": X.astype(np.float16),
        "int": (X * 10).astype(np.int64),
        "object": X.astype(object),
        "list": X.tolist(),
        "dataframe": pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]),
        **_frames(X),
        "csr": sp.csr_matrix(X),
        "matrix": np.asmatrix(X),
    }


def _y_inputs(y, regression):
    nan = y.astype(float)
    nan[3] = np.nan
    common = {
        "as given": y,
        "short": y[:-1],
        "list": list(y),
        "column": y.reshape(-1, 1),
        "nan": nan,
        "object": y.astype(object),
        "series": pd.Series(y),
        "series shuffled index": pd.Series(y, index=np.arange(len(y))[::-1]),
        "series object": pd.Series(y.astype(object)),
        "series short": pd.Series(y[:-1]),
    }
    if regression:
        return common | {
            "float32": y.astype(np.float32),
            "two outputs": np.column_stack([y, -y]),
            "inf": np.where(np.arange(len(y)) == 0, np.inf, y),
            "int": np.round(y * 3).astype(np.int64),
            "series float32": pd.Series(y.astype(np.float32)),
            "series nullable": pd.Series(y).astype("Float64"),
        }
    return common | {
        "int32": y.astype(np.int32),
        "uint8": y.astype(np.uint8),
        "int8 negative": (y.astype(np.int8) - 5),
        "one class": np.zeros_like(y),
        "float labels": y.astype(float),
        "strings": np.array([f"c{v}" for v in y]),
        "bool": y % 2 == 0,
        "series int32": pd.Series(y.astype(np.int32)),
        "series strings": pd.Series([f"c{v}" for v in y]),
        "series nullable": pd.Series(y).astype("Int64"),
        "series category": pd.Series(y).astype("category"),
    }


def _cases():
    X, y = make_data("multiclass", n_samples=40)
    Xb, yb = make_data("binary", n_samples=40)
    Xr, yr = make_data("regression", n_samples=40)
    return {
        "multiclass": (MLPClassifier, X, y),
        "binary": (MLPClassifier, Xb, yb),
        "regressor": (MLPRegressor, Xr, yr),
    }


CASES = _cases()


def _compare(call, monkeypatch, label):
    fast = call_outcome(lambda: _state(call()))
    with monkeypatch.context() as m:
        _full_path(m)
        full = call_outcome(lambda: _state(call()))
    try:
        assert_same_outcome(fast, full, _assert_same_state)
    except AssertionError as exc:
        raise AssertionError(f"{label}: {exc}") from None
    return fast


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("assume_finite", [False, True])
def test_plain_fit_is_the_full_fit(case, assume_finite, monkeypatch):
    cls, X, y = CASES[case]
    regression = cls is MLPRegressor
    pairs = [(f"X {n}", Xi, y) for n, Xi in _x_inputs(X).items()]
    pairs += [(f"y {n}", X, yi) for n, yi in _y_inputs(y, regression).items()]
    outcomes = set()
    for label, X_in, y_in in pairs:

        def call(X_in=X_in, y_in=y_in):
            return cls(**KW).fit(X_in, y_in)

        with sklearn.config_context(assume_finite=assume_finite):
            fast = _compare(call, monkeypatch, f"{case} {label}")
        outcomes.add(fast[0][0])
    assert outcomes == {"ok", "error"}  # both kinds of input were met


@pytest.mark.parametrize("case", list(CASES))
def test_later_calls_check_what_the_first_recorded(case, monkeypatch):
    """partial_fit and warm starts (validation without reset): the feature count,
    feature names fitted earlier, labels outside the first call's classes."""
    cls, X, y = CASES[case]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    classes = np.unique(y) if cls is MLPClassifier else None
    columns = list(frame.columns)
    follow_ups = {
        "same": X,
        "names now missing": X,
        "fewer features": X[:, :-1],
        "names then refit plain": X,
        "names again": frame,
        "names again float32": frame.astype(np.float32),
        "names reordered": frame[columns[::-1]],
        "names renamed": frame.rename(columns={columns[0]: "other"}),
        "names fewer": frame[columns[:-1]],
        "names on plain first": frame,
        "names then refit names": frame,
    }
    for label, X_next in follow_ups.items():
        X_first = frame if "names" in label and "on plain" not in label else X

        def call(X_first=X_first, X_next=X_next, label=label):
            est = cls(**KW)
            if "then refit" in label:
                return est.fit(X_first, y).fit(X_next, y)
            extra = {} if classes is None else {"classes": classes}
            est.partial_fit(X_first, y, **extra)
            return est.partial_fit(X_next, y)

        _compare(call, monkeypatch, f"{case} {label}")

        def warm(X_first=X_first, X_next=X_next):
            est = cls(warm_start=True, **KW).fit(X_first, y)
            return est.fit(X_next, y)

        _compare(warm, monkeypatch, f"{case} warm start {label}")


def test_refit_on_plain_arrays_forgets_feature_names():
    X, y = CASES["multiclass"][1:]
    est = MLPClassifier(**KW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y)
        assert hasattr(est, "feature_names_in_")
        est.fit(X, y)
    assert not hasattr(est, "feature_names_in_")
    assert est.n_features_in_ == X.shape[1]


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64]
)
@pytest.mark.parametrize("n_classes", [1, 2, 3, 12])
def test_binarizer_of_integer_labels_is_label_binarizers(dtype, n_classes):
    labels = np.arange(50) * 7 % n_classes + (3 if dtype().dtype.kind == "u" else -4)
    y = labels.astype(dtype)
    ours = mlp_rs._classifier._fitted_binarizer(y)
    theirs = LabelBinarizer().fit(y)
    _assert_same_state({"binarizer": vars(ours)}, {"binarizer": vars(theirs)})
    np.testing.assert_array_equal(ours.transform(y), theirs.transform(y))


def test_plain_fit_skips_scikit_learns_validation(monkeypatch):
    cls, X, y = CASES["multiclass"]
    calls = []

    def spy(name, original):
        def wrapped(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(
        mlp_rs._base, "validate_data", spy("X", mlp_rs._base.validate_data)
    )
    monkeypatch.setattr(LabelBinarizer, "fit", spy("labels", LabelBinarizer.fit))
    cls(**KW).fit(X, y)
    MLPRegressor(**KW).fit(*CASES["regressor"][1:])
    assert calls == []
    cls(**KW).fit(X.tolist(), list(y))  # lists: the full path, then integer labels
    assert calls == ["X"]
    cls(**KW).fit(X, np.array([f"c{v}" for v in y]))  # strings: both full paths
    assert calls == ["X", "X", "labels"]
    # a plain DataFrame and Series: their values, and the frame's names recorded
    names = [f"f{i}" for i in range(X.shape[1])]
    frame, series = pd.DataFrame(X, columns=names), pd.Series(y)
    est = cls(**KW).partial_fit(frame, series, classes=np.unique(y))
    est.partial_fit(frame, series)
    assert calls.count("X") == 2  # (partial_fit binarizes the classes it is given)
    assert est.feature_names_in_.tolist() == names
    assert est.feature_names_in_.dtype == object
