"""Parameter validation remembered (``mlp_rs._params``).

A set of parameter values scikit-learn's validation accepted is not checked again;
every verdict must be the one ``validate_parameter_constraints`` gives, whatever was
validated before (values equal under ``==`` but of other types included).
"""

import numpy as np
import pytest
from mlp_rs import MLPClassifier, MLPRegressor, _params
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import validate_parameter_constraints

X = np.random.RandomState(0).rand(40, 3)
Y = np.arange(40) % 2


@pytest.fixture
def counted(monkeypatch):
    """The number of times scikit-learn's constraint checks run, from a clean cache."""
    calls = []
    real = _params.validate_parameter_constraints

    def spy(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(_params, "validate_parameter_constraints", spy)
    monkeypatch.setattr(_params, "_ACCEPTED", {})
    return calls


def test_an_accepted_parameter_set_is_checked_once_per_class(counted):
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    est.fit(X, Y)
    est.fit(X, Y)
    clone(est).fit(X, Y)
    assert len(counted) == 1
    est.set_params(max_iter=2).fit(X, Y)
    assert len(counted) == 2
    # another class has constraints of its own
    MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, Y)
    assert len(counted) == 3


def test_values_without_a_safe_image_are_checked_every_time(counted):
    callbacks = [lambda *args: False]
    for params in (
        dict(random_state=np.random.RandomState(0)),
        dict(callbacks=callbacks),
        dict(tol=float("nan")),
    ):
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, **params)
        before = len(counted)
        for _ in range(2):
            try:
                est._validate_params()
            except ValueError:
                pass
        assert len(counted) == before + 2


def _verdict(call):
    try:
        call()
    except Exception as e:
        return type(e), str(e)
    return None


# (parameters, then values equal to them under == but of other types, or invalid)
SEQUENCES = [
    [dict(max_iter=1), dict(max_iter=True), dict(max_iter=1.0), dict(max_iter=1)],
    [dict(shuffle=True), dict(shuffle=1), dict(shuffle=np.True_)],
    [dict(early_stopping=False), dict(early_stopping=0)],
    [dict(hidden_layer_sizes=(3,)), dict(hidden_layer_sizes=[3])],
    [dict(hidden_layer_sizes=(3,)), dict(hidden_layer_sizes=(3.0,))],
    [dict(alpha=0.5), dict(alpha=np.float32(0.5)), dict(alpha=-0.5)],
    [dict(batch_size="auto"), dict(batch_size=10), dict(batch_size=10.0)],
    [dict(dropout=0.0), dict(dropout=(0.0,)), dict(dropout=1.0), dict(dropout=False)],
    [dict(solver="adam"), dict(solver="Adam"), dict(solver="adam")],
    [dict(n_jobs=None), dict(n_jobs=2), dict(n_jobs=2.0)],
    [dict(tol=1e-4), dict(tol=float("inf")), dict(tol=float("nan"))],
    [
        dict(matmul_precision=None),
        dict(matmul_precision="bfloat16"),
        dict(matmul_precision=0),
    ],
]


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda s: next(iter(s[0])))
def test_verdicts_are_scikit_learns_whatever_came_before(cls, sequence, counted):
    for params in sequence + sequence:
        est = cls(**params)

        def direct(est=est):
            validate_parameter_constraints(
                est._parameter_constraints,
                BaseEstimator.get_params(est, deep=False),
                caller_name=cls.__name__,
            )

        assert _verdict(est._validate_params) == _verdict(direct)


def test_parameter_names_are_scikit_learns():
    for cls in (MLPClassifier, MLPRegressor):
        expected = BaseEstimator._get_param_names.__func__(cls)
        assert cls._get_param_names() == expected
        # a list of the caller's own
        cls._get_param_names().append("x")
        assert cls._get_param_names() == expected


def test_images_tell_types_apart():
    key = _params.params_key
    assert key({"a": True}) != key({"a": 1})
    assert key({"a": (1,)}) != key({"a": [1]})
    assert key({"a": (1,)}) != key({"a": (1.0,)})
    assert key({"a": (1, [2])}) == key({"a": (1, [2])})
    for value in (np.zeros(2), {"a": 1}, float("nan"), (1, {}), object(), print):
        assert key({"a": value}) is None
