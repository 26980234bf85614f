"""Divergence: a loss that becomes inf or NaN during training.

Training must stop at the epoch where it happens and raise a ValueError that names the
likely causes (a learning rate too high, unscaled inputs); it must never leave NaN
weights behind: after the error the model's parameters are finite, and a model that was
fitted before the call is left exactly as it was (parameters, counters, optimizer
state), so that it still predicts and can go on training.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_data
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.exceptions import ConvergenceWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

OURS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
# never stops early on its own: without divergence detection, max_iter epochs run
NO_EARLY_STOP = dict(max_iter=500, tol=0.0, n_iter_no_change=10**6)
BASE = dict(hidden_layer_sizes=(8,), random_state=0)
CAUSE = re.compile(r"(?is)(?=.*learning.rate)(?=.*scal)")


def _finite(est):
    return all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)


def _snapshot(est):
    return pickle.loads(pickle.dumps(est))


def _assert_same_state(a, b):
    """Every fitted attribute of ``a`` equals ``b``'s (arrays bit for bit)."""
    for w_a, w_b in zip(
        a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(w_a, w_b)
    for attr in ("n_iter_", "t_", "loss_", "best_loss_", "n_features_in_"):
        if hasattr(b, attr):
            assert getattr(a, attr) == getattr(b, attr), attr
    if hasattr(b, "loss_curve_"):
        assert a.loss_curve_ == b.loss_curve_


# Adam's steps are bounded: it diverges on huge targets, not on a classifier's X.
RESTORE_CASES = [
    ("MLPClassifier", "sgd"),
    ("MLPRegressor", "sgd"),
    ("MLPRegressor", "adam"),
]


def _kind(name):
    return "multiclass" if name == "MLPClassifier" else "regression"


DIVERGING = {
    "sgd-learning-rate-1e6": (
        "MLPRegressor",
        lambda X, y: (X, y),
        dict(solver="sgd", learning_rate_init=1e6),
    ),
    "sgd-learning-rate-1e6-no-momentum": (
        "MLPRegressor",
        lambda X, y: (X, y),
        dict(solver="sgd", learning_rate_init=1e6, momentum=0.0),
    ),
    "sgd-learning-rate-1e6-adaptive": (
        "MLPRegressor",
        lambda X, y: (X, y),
        dict(solver="sgd", learning_rate_init=1e6, learning_rate="adaptive"),
    ),
    "sgd-learning-rate-1e3-batch-1": (
        "MLPRegressor",
        lambda X, y: (X, y),
        dict(solver="sgd", learning_rate_init=1e3, batch_size=1),
    ),
    "sgd-X-times-1e30-regressor": (
        "MLPRegressor",
        lambda X, y: (X * 1e30, y),
        dict(solver="sgd"),
    ),
    "sgd-X-times-1e30-classifier": (
        "MLPClassifier",
        lambda X, y: (X * 1e30, y),
        dict(solver="sgd"),
    ),
    "sgd-X-times-1e30-float32": (
        "MLPRegressor",
        lambda X, y: ((X * 1e30).astype(np.float32), y),
        dict(solver="sgd"),
    ),
    "sgd-learning-rate-1e3-float32": (
        "MLPRegressor",
        lambda X, y: (X.astype(np.float32), y),
        dict(solver="sgd", learning_rate_init=1e3),
    ),
    "sgd-sparse-X-times-1e30": (
        "MLPRegressor",
        lambda X, y: (sp.csr_matrix(X * 1e30), y),
        dict(solver="sgd"),
    ),
    "adam-y-times-1e200": (
        "MLPRegressor",
        lambda X, y: (X, y * 1e200),
        dict(solver="adam"),
    ),
    "sgd-poisson-learning-rate-10": (
        "MLPRegressor",
        lambda X, y: (X, np.abs(np.round(y * 3))),
        dict(solver="sgd", loss="poisson", learning_rate_init=10.0),
    ),
    "sgd-identity-classifier-learning-rate-1e6": (
        "MLPClassifier",
        lambda X, y: (X, y),
        dict(solver="sgd", activation="identity", learning_rate_init=1e6),
    ),
}


@pytest.mark.parametrize("case", list(DIVERGING))
def test_divergence_stops_at_that_epoch_and_names_the_cause(case, capsys):
    name, make, params = DIVERGING[case]
    X, y = make(*make_data(_kind(name), n_samples=60))
    est = OURS[name](**BASE, **NO_EARLY_STOP, **params, verbose=True)
    with pytest.raises(ValueError) as err:
        est.fit(X, y)
    msg = str(err.value)
    assert CAUSE.search(msg), f"the message should name the likely causes: {msg}"
    epoch = re.search(r"epoch (\d+)", msg)
    assert epoch, f"the message should say in which epoch: {msg}"
    epoch = int(epoch.group(1))
    assert epoch < NO_EARLY_STOP["max_iter"]
    # verbose reports every completed epoch, all with finite losses, then stops
    losses = [
        float(m)
        for m in re.findall(r"Iteration \d+, loss = (\S+)", capsys.readouterr().out)
    ]
    assert len(losses) <= epoch, (len(losses), epoch)
    assert all(np.isfinite(losses)), losses
    # no NaN weights left behind
    if hasattr(est, "coefs_"):
        assert _finite(est), "NaN / inf weights left after a divergence error"
    for value in getattr(est, "loss_curve_", None) or []:
        assert np.isfinite(value)


@pytest.mark.parametrize(
    "make, params, first",
    [
        (lambda X, y: (X, y * 1e300), {}, True),
        (lambda X, y: (X, y), dict(alpha=1e308), True),
        (lambda X, y: (X * 1e200, y), {}, True),
        (lambda X, y: (X, y), dict(solver="sgd", learning_rate_init=1e6), False),
    ],
    ids=["y-1e300", "alpha-1e308", "X-1e200", "learning-rate-1e6"],
)
def test_divergence_on_the_first_batch_blames_the_data(make, params, first):
    """A loss that is not finite before any update cannot be the learning rate's
    doing: the message says so (and still how to scale)."""
    X, y = make(*make_data("regression", n_samples=60))
    est = OURS["MLPRegressor"](**BASE, **NO_EARLY_STOP, **params)
    with pytest.raises(ValueError, match="Training diverged") as err:
        est.fit(X, y)
    msg = str(err.value)
    assert ("the first mini-batch, before any update" in msg) == first, msg
    assert ("learning rate is probably too high" in msg) != first, msg


@pytest.mark.parametrize("case", list(DIVERGING))
def test_divergence_leaves_inputs_untouched(case):
    name, make, params = DIVERGING[case]
    X, y = make(*make_data(_kind(name), n_samples=60))
    X0 = X.copy()
    y0 = y.copy()
    with pytest.raises(ValueError):
        OURS[name](**BASE, **NO_EARLY_STOP, **params).fit(X, y)
    if sp.issparse(X):
        X, X0 = X.toarray(), X0.toarray()
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("name, solver", RESTORE_CASES)
def test_divergence_in_warm_start_fit_restores_the_model(name, solver):
    X, y = make_data(_kind(name), n_samples=60)
    est = OURS[name](**BASE, solver=solver, max_iter=5, warm_start=True)
    est.fit(X, y)
    before = _snapshot(est)
    pred = est.predict(X)
    with pytest.raises(ValueError, match=CAUSE):
        est.set_params(max_iter=100).fit(
            X * 1e30, y if name == "MLPClassifier" else y * 1e200
        )
    _assert_same_state(est, before)
    np.testing.assert_array_equal(est.predict(X), pred)
    # and it trains on, exactly as if the failed call never happened
    est.set_params(max_iter=5).fit(X, y)
    before.set_params(max_iter=5).fit(X, y)
    _assert_same_state(est, before)


@pytest.mark.parametrize("name, solver", RESTORE_CASES)
def test_divergence_in_partial_fit_restores_the_model(name, solver):
    X, y = make_data(_kind(name), n_samples=60)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    est = OURS[name](**BASE, solver=solver, learning_rate_init=0.01)
    est.partial_fit(X, y, **kw)
    est.partial_fit(X, y)
    bad_X = X * 1e30
    bad_y = y if name == "MLPClassifier" else y * 1e200
    for _ in range(30):  # one epoch per call: repeat until it diverges
        before = _snapshot(est)
        try:
            est.partial_fit(bad_X, bad_y)
        except ValueError as err:
            assert CAUSE.search(str(err)), str(err)
            break
    else:
        pytest.fail("30 partial_fit calls on X * 1e30 did not diverge")
    _assert_same_state(est, before)
    for a, b in zip(
        est._optimizer_state["tensors"], before._optimizer_state["tensors"], strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # training goes on exactly as if the failed call never happened
    for e in (est, before):
        e.partial_fit(X, y)
    _assert_same_state(est, before)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_divergence_in_refit_restores_the_previous_model(name):
    """A (non warm-start) refit that diverges leaves the previously fitted model --
    not freshly initialised random weights that look fitted."""
    X, y = make_data(_kind(name), n_samples=60)
    est = OURS[name](**BASE, solver="sgd", max_iter=5)
    est.fit(X, y)
    before = _snapshot(est)
    pred = est.predict(X)
    with pytest.raises(ValueError, match=CAUSE):
        est.set_params(**NO_EARLY_STOP).fit(
            X * 1e30, y if name == "MLPClassifier" else y * 1e200
        )
    assert _finite(est)
    _assert_same_state(est, before)
    np.testing.assert_array_equal(est.predict(X), pred)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_divergence_on_first_fit_leaves_no_nan(name):
    X, y = make_data(_kind(name), n_samples=60)
    est = OURS[name](**BASE, **NO_EARLY_STOP, solver="sgd")
    with pytest.raises(ValueError, match=CAUSE):
        est.fit(X * 1e30, y if name == "MLPClassifier" else y * 1e200)
    if hasattr(est, "coefs_"):
        assert _finite(est)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_divergence_with_early_stopping(name):
    """A divergence before early stopping has a best model is the usual ValueError;
    after it, training stops at once and keeps the best weights, with a warning."""
    X, y = make_data(_kind(name), n_samples=80)
    est = OURS[name](**BASE, **NO_EARLY_STOP, solver="sgd", early_stopping=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X * 1e30, y if name == "MLPClassifier" else y * 1e200)
        except ValueError as err:
            assert re.search(CAUSE, str(err)), err
            assert not hasattr(est, "coefs_")
            return
    assert any(
        w.category is ConvergenceWarning and "diverged" in str(w.message)
        for w in caught
    )
    assert np.isnan(est.validation_scores_[-1])
    assert _finite(est)
    assert all(np.isfinite(w).all() for w in est._best_coefs + est._best_intercepts)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("scale", [1e30, 1e150, 1e300])
def test_lbfgs_with_huge_values_never_leaves_nan(name, scale):
    X, y = make_data(_kind(name), n_samples=60)
    y = y if name == "MLPClassifier" else y * scale
    est = OURS[name](**BASE, solver="lbfgs", max_iter=50)
    try:
        est.fit(X * scale, y)
    except ValueError as err:
        assert re.search(r"(?i)non-finite|diverg", str(err)), err
    if hasattr(est, "coefs_"):
        assert _finite(est)


# a sweep: whatever the learning rate and scale, a fitted model with finite weights
# and losses, or a ValueError -- never NaN weights, never an internal error
SWEEP = [
    (name, solver, lr, scale, dtype)
    for name in ("MLPClassifier", "MLPRegressor")
    for solver in ("sgd", "adam")
    for lr in (1e-1, 1e2, 1e6, 1e12)
    for scale in (1.0, 1e10, 1e30, 1e100)
    for dtype in (np.float32, np.float64)
    if not (dtype is np.float32 and scale > 1e30)  # inf in float32: a validation error
]


@pytest.mark.parametrize("name, solver, lr, scale, dtype", SWEEP)
def test_never_nan_weights_silently(name, solver, lr, scale, dtype):
    X, y = make_data(_kind(name), n_samples=40)
    est = OURS[name](
        hidden_layer_sizes=(4,),
        random_state=0,
        max_iter=10,
        solver=solver,
        learning_rate_init=lr,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est.fit((X * scale).astype(dtype), y)
        except ValueError:
            if hasattr(est, "coefs_"):
                assert _finite(est)
            return
    assert _finite(est), "fit returned normally with non-finite weights"
    assert np.isfinite(est.loss_)
    assert np.all(np.isfinite(est.loss_curve_))


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_divergence_of_tiny_sample_weights_names_them(name):
    # (their sum, 6e-319, is subnormal: its reciprocal overflows)
    X, y = make_data(_kind(name), n_samples=60)
    est = OURS[name](**BASE, **NO_EARLY_STOP)
    with pytest.raises(ValueError, match="sample weights so small"):
        est.fit(X, y, sample_weight=np.full(len(y), 1e-320))
