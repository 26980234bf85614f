"""Float64 trajectory parity between mlp_rs and scikit-learn.

mlp_rs consumes the random number generator exactly like scikit-learn
(weight initialisation, per-epoch shuffling, early-stopping split), so with
the same ``random_state`` both libraries must produce the same loss curve and
the same weights up to rounding error.
"""

import mlp_rs
import numpy as np
import pytest
from conftest import (
    assert_close,
    assert_same_fitted_model,
    assert_same_predictions,
    estimator_for,
    fit_both,
    make_data,
    make_pair,
    quiet_fit,
)

BASE = dict(hidden_layer_sizes=(7, 5), random_state=0, max_iter=5)
SGD = dict(solver="sgd", learning_rate_init=0.05)
ADAM = dict(solver="adam", learning_rate_init=0.01)
LBFGS = dict(solver="lbfgs", max_iter=10)

KINDS = [
    "binary",
    "multiclass",
    "multiclass_str",
    "multiclass4_str",
    "multilabel",
    "regression",
    "regression_multi",
    "poisson",
]


def _case(kind, params, sample_weight=False, id=None):
    return pytest.param(kind, {**BASE, **params}, sample_weight, id=id)


CASES = [
    # --- SGD momentum variants ---------------------------------------------
    _case("multiclass", dict(SGD, momentum=0.0), id="sgd-momentum0"),
    _case(
        "multiclass",
        dict(SGD, momentum=0.9, nesterovs_momentum=False),
        id="sgd-momentum0.9",
    ),
    _case(
        "multiclass",
        dict(SGD, momentum=0.9, nesterovs_momentum=True),
        id="sgd-nesterov",
    ),
    _case(
        "regression",
        dict(SGD, learning_rate_init=0.01, momentum=0.5, nesterovs_momentum=False),
        id="sgd-momentum0.5-reg",
    ),
    # --- learning-rate schedules ---------------------------------------------
    _case("binary", dict(SGD, learning_rate="constant"), id="sgd-constant"),
    _case(
        "binary",
        dict(SGD, learning_rate="invscaling", learning_rate_init=0.5, power_t=0.5),
        id="sgd-invscaling",
    ),
    _case(
        "regression",
        dict(SGD, learning_rate="invscaling", learning_rate_init=0.05, power_t=0.25),
        id="sgd-invscaling-reg",
    ),
    # adaptive: tol=10 means the loss never "improves", so with
    # n_iter_no_change=1 the learning rate is divided by 5 every other epoch.
    _case(
        "multiclass",
        dict(SGD, learning_rate="adaptive", tol=10.0, n_iter_no_change=1, max_iter=9),
        id="sgd-adaptive",
    ),
    # --- stopping on no improvement ------------------------------------------
    _case(
        "multiclass",
        dict(ADAM, tol=10.0, n_iter_no_change=2, max_iter=30),
        id="adam-stop-no-improvement",
    ),
    _case(
        "regression",
        dict(SGD, learning_rate_init=0.01, tol=10.0, n_iter_no_change=3, max_iter=30),
        id="sgd-stop-no-improvement",
    ),
    _case(
        "binary", dict(ADAM, n_iter_no_change=np.inf), id="adam-n_iter_no_change-inf"
    ),
    # --- adam ----------------------------------------------------------------
    _case("multiclass", dict(solver="adam"), id="adam-default-lr"),
    _case(
        "multiclass", dict(ADAM, beta_1=0.8, beta_2=0.99, epsilon=1e-6), id="adam-betas"
    ),
    # --- lbfgs ---------------------------------------------------------------
    _case("binary", dict(LBFGS), id="lbfgs"),
    _case("binary", dict(LBFGS, max_fun=7), id="lbfgs-max_fun"),
    _case("regression", dict(LBFGS, tol=1e-2, max_iter=50), id="lbfgs-tol"),
    # --- alpha ---------------------------------------------------------------
    _case("multiclass", dict(SGD, alpha=0.1), id="sgd-alpha0.1"),
    _case("regression", dict(ADAM, alpha=0.1), id="adam-alpha0.1"),
    _case("binary", dict(LBFGS, alpha=0.1), id="lbfgs-alpha0.1"),
    _case("binary", dict(ADAM, alpha=0.0), id="adam-alpha0"),
    # --- sample_weight -------------------------------------------------------
    _case("multiclass", dict(SGD), True, id="sgd-sample_weight"),
    _case("binary", dict(ADAM), True, id="adam-sample_weight"),
    _case("multilabel", dict(ADAM), True, id="adam-sample_weight-multilabel"),
    _case("regression", dict(ADAM, alpha=0.1), True, id="adam-sample_weight-reg"),
    _case("poisson", dict(ADAM), True, id="adam-sample_weight-poisson"),
    _case("binary", dict(LBFGS), True, id="lbfgs-sample_weight"),
    _case("regression_multi", dict(LBFGS), True, id="lbfgs-sample_weight-reg"),
    # --- batch size / shuffle ------------------------------------------------
    _case("multiclass", dict(SGD, batch_size=7, shuffle=True), id="sgd-bs7-shuffle"),
    _case("multiclass", dict(SGD, batch_size=7, shuffle=False), id="sgd-bs7-noshuffle"),
    _case("regression", dict(ADAM, batch_size=7, shuffle=True), id="adam-bs7-shuffle"),
    _case(
        "regression", dict(ADAM, batch_size=7, shuffle=False), id="adam-bs7-noshuffle"
    ),
    _case("binary", dict(ADAM, batch_size=1, max_iter=2), id="adam-bs1"),
    _case("binary", dict(ADAM, batch_size=50), id="adam-bs-n_samples"),
    _case("binary", dict(SGD, shuffle=False), id="sgd-auto-noshuffle"),
    _case(
        "multilabel",
        dict(ADAM, batch_size=16, shuffle=True),
        True,
        id="adam-bs16-shuffle-sw",
    ),
    # --- early stopping ------------------------------------------------------
    _case("binary", dict(ADAM, early_stopping=True, max_iter=10), id="es-binary"),
    _case(
        "multiclass_str",
        dict(SGD, early_stopping=True, max_iter=10, n_iter_no_change=2),
        id="es-multiclass-str",
    ),
    _case(
        "multilabel",
        dict(ADAM, early_stopping=True, max_iter=10, validation_fraction=0.2),
        id="es-multilabel",
    ),
    _case(
        "regression", dict(ADAM, early_stopping=True, max_iter=10), id="es-regression"
    ),
    _case(
        "regression_multi",
        dict(
            SGD,
            learning_rate_init=0.01,
            early_stopping=True,
            max_iter=10,
            n_iter_no_change=2,
            tol=0.5,
        ),
        id="es-regression-multi-stop",
    ),
    _case(
        "binary",
        dict(ADAM, early_stopping=True, max_iter=8),
        True,
        id="es-binary-sample_weight",
    ),
    _case(
        "regression",
        dict(
            SGD, learning_rate_init=0.01, early_stopping=True, max_iter=8, batch_size=7
        ),
        True,
        id="es-regression-sample_weight-bs7",
    ),
    _case(
        "multiclass",
        dict(
            SGD,
            learning_rate="adaptive",
            early_stopping=True,
            tol=10.0,
            n_iter_no_change=1,
            max_iter=8,
        ),
        id="es-adaptive",
    ),
    # --- architectures -------------------------------------------------------
    _case("binary", dict(ADAM, hidden_layer_sizes=4), id="hidden-int"),
    _case("binary", dict(ADAM, hidden_layer_sizes=[6, 5, 4]), id="hidden-3-layers"),
    _case(
        "regression",
        dict(SGD, learning_rate_init=0.01, hidden_layer_sizes=np.array([3])),
        id="hidden-ndarray",
    ),
    _case(
        "regression",
        dict(LBFGS, hidden_layer_sizes=(9, 3, 4)),
        id="lbfgs-hidden-3-layers",
    ),
]

# every target type with every solver
for _kind in KINDS:
    for _sname, _sparams in [
        ("sgd", dict(SGD, learning_rate_init=0.01)),
        ("adam", ADAM),
        ("lbfgs", LBFGS),
    ]:
        CASES.append(_case(_kind, _sparams, id=f"{_kind}-{_sname}"))

# every hidden activation with every solver
for _act in ["identity", "logistic", "tanh", "relu"]:
    CASES.append(_case("multiclass", dict(ADAM, activation=_act), id=f"{_act}-adam"))
    CASES.append(
        _case(
            "regression",
            dict(SGD, learning_rate_init=0.01, activation=_act),
            id=f"{_act}-sgd-reg",
        )
    )
    CASES.append(_case("binary", dict(LBFGS, activation=_act), id=f"{_act}-lbfgs"))
    CASES.append(
        _case("poisson", dict(ADAM, activation=_act), id=f"{_act}-adam-poisson")
    )


def _sample_weight(n, seed=1):
    return np.random.RandomState(seed).uniform(0.2, 3.0, size=n)


@pytest.mark.parametrize("kind, params, use_sw", CASES)
def test_fit_parity(kind, params, use_sw):
    X, y = make_data(kind)
    name = estimator_for(kind)
    if kind == "poisson":
        params = {**params, "loss": "poisson"}
    sw = _sample_weight(X.shape[0]) if use_sw else None
    sk, ours = fit_both(name, X, y, sample_weight=sw, **params)

    # Self-check of the test settings: these cases must exercise what they claim.
    if params.get("learning_rate") == "adaptive":
        assert sk._optimizer.learning_rate < params["learning_rate_init"] / 4
    if params.get("tol") == 10.0 and not params.get("learning_rate") == "adaptive":
        assert sk.n_iter_ < params["max_iter"]

    assert_same_fitted_model(sk, ours)
    assert_same_predictions(sk, ours, X)
    X_new = np.random.RandomState(1).normal(size=(30, X.shape[1]))
    assert_same_predictions(sk, ours, X_new)

    assert_close(ours.score(X, y), sk.score(X, y), err_msg="score")
    if sw is not None:
        assert_close(
            ours.score(X, y, sample_weight=sw),
            sk.score(X, y, sample_weight=sw),
            err_msg="weighted score",
        )


def _glorot_init(layer_units, activation, seed):
    """scikit-learn's weight initialisation, written out explicitly."""
    rng = np.random.RandomState(seed)
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:], strict=True):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(rng.uniform(-bound, bound, fan_out))
    return coefs, intercepts


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_initial_weights_identical(name, solver, activation):
    """With a vanishing learning rate the weights after one epoch are the
    initial weights, which must be scikit-learn's Glorot-uniform draws."""
    kind = "multiclass" if name == "MLPClassifier" else "regression_multi"
    X, y = make_data(kind)
    params = dict(
        hidden_layer_sizes=(7, 5),
        random_state=3,
        activation=activation,
        solver=solver,
        max_iter=1,
        learning_rate_init=1e-300,
    )
    if solver == "sgd":
        params["momentum"] = 0.0
    sk, ours = fit_both(name, X, y, **params)
    coefs, intercepts = _glorot_init([X.shape[1], 7, 5, 3], activation, 3)
    for expected, c_ours, c_sk in zip(coefs, ours.coefs_, sk.coefs_, strict=True):
        np.testing.assert_array_equal(c_sk, expected)  # self-check of the test
        assert_close(c_ours, expected, rtol=1e-15, atol=0)
    for expected, b_ours, b_sk in zip(
        intercepts, ours.intercepts_, sk.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(b_sk, expected)
        assert_close(b_ours, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_random_state_instance(solver):
    """A RandomState instance is consumed exactly like scikit-learn does."""
    X, y = make_data("multiclass")
    rs_sk, rs_ours = np.random.RandomState(42), np.random.RandomState(42)
    params = dict(
        hidden_layer_sizes=(6,),
        solver=solver,
        max_iter=4,
        early_stopping=solver != "lbfgs",
    )
    sk, ours = make_pair("MLPClassifier", **params)
    sk.set_params(random_state=rs_sk)
    ours.set_params(random_state=rs_ours)
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    assert_same_fitted_model(sk, ours)
    # Both generators must be left in the same state.
    assert rs_ours.randint(2**31) == rs_sk.randint(2**31)

    # A second fit continues from the advanced generator state, again in sync.
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    assert_same_fitted_model(sk, ours)
    assert rs_ours.randint(2**31) == rs_sk.randint(2**31)


def _generator_state(rng):
    kind, key, pos, has_gauss, cached = rng.get_state()
    return kind, key.tolist(), pos, has_gauss, cached


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", max_iter=6),
        dict(solver="adam", max_iter=3, early_stopping=True),
        dict(solver="sgd", max_iter=50, tol=1e-1, n_iter_no_change=2),
    ],
    ids=["sgd", "adam-early-stopping", "sgd-stops-on-tol"],
)
def test_integer_seed_leaves_the_generator_as_scikit_learn(params):
    """With an integer seed the engine continues the MT19937 stream in Rust: the
    shuffles and the generator's final state are scikit-learn's."""
    X, y = make_data("multiclass")
    sk, ours = fit_both(
        "MLPClassifier", X, y, hidden_layer_sizes=(6,), random_state=3, **params
    )
    assert_same_fitted_model(sk, ours)
    assert _generator_state(ours._random_state) == _generator_state(sk._random_state)


def test_rust_and_python_shuffles_agree_when_a_callback_stops():
    """The Rust stream (integer seed) and the Python one (a RandomState instance)
    give the same model and generator state, also when training stops early."""
    X, y = make_data("multiclass")
    stop_after_two = lambda epoch, *_: epoch >= 2  # noqa: E731
    params = dict(hidden_layer_sizes=(6,), max_iter=5, callbacks=stop_after_two)
    seeded = mlp_rs.MLPClassifier(random_state=7, **params)
    shared = np.random.RandomState(7)
    instance = mlp_rs.MLPClassifier(random_state=shared, **params)
    quiet_fit(seeded, X, y)
    quiet_fit(instance, X, y)
    assert seeded.n_iter_ == instance.n_iter_ == 2
    for a, b in zip(seeded.coefs_, instance.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _generator_state(seeded._random_state) == _generator_state(shared)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_different_seeds(seed):
    X, y = make_data("binary")
    sk, ours = fit_both(
        "MLPClassifier",
        X,
        y,
        hidden_layer_sizes=(5,),
        random_state=seed,
        max_iter=3,
        solver="sgd",
        learning_rate_init=0.05,
        batch_size=10,
    )
    assert_same_fitted_model(sk, ours)


# --------------------------------------------------------------------------
# warm start
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, params",
    [
        ("multiclass", dict(SGD)),
        ("multiclass", dict(SGD, learning_rate="invscaling", learning_rate_init=0.2)),
        ("binary", dict(ADAM)),
        ("regression", dict(ADAM, batch_size=7)),
        ("multilabel", dict(SGD, learning_rate_init=0.01)),
        ("binary", dict(LBFGS)),
        ("regression", dict(LBFGS)),
        ("binary", dict(ADAM, early_stopping=True, max_iter=6)),
    ],
    ids=[
        "sgd",
        "sgd-invscaling",
        "adam",
        "adam-reg-bs7",
        "sgd-multilabel",
        "lbfgs",
        "lbfgs-reg",
        "adam-early-stopping",
    ],
)
def test_warm_start_parity(kind, params):
    X, y = make_data(kind)
    name = estimator_for(kind)
    params = {**BASE, **params, "max_iter": 3, "warm_start": True}
    sk, ours = fit_both(name, X, y, **params)
    assert_same_fitted_model(sk, ours)

    # Continue training from the previous weights (twice).
    for _ in range(2):
        quiet_fit(sk, X, y)
        quiet_fit(ours, X, y)
        assert_same_fitted_model(sk, ours)

    # Continue from user-assigned weights.
    rng = np.random.RandomState(7)
    new_coefs = [0.5 * c + 0.01 * rng.normal(size=c.shape) for c in sk.coefs_]
    new_intercepts = [0.5 * b + 0.01 * rng.normal(size=b.shape) for b in sk.intercepts_]
    sk.coefs_ = [c.copy() for c in new_coefs]
    sk.intercepts_ = [b.copy() for b in new_intercepts]
    ours.coefs_ = [c.copy() for c in new_coefs]
    ours.intercepts_ = [b.copy() for b in new_intercepts]
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    assert_same_fitted_model(sk, ours)
    assert_same_predictions(sk, ours, X)


@pytest.mark.parametrize("layout", ["fortran", "strided"])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_user_weights_in_any_memory_layout(kind, layout):
    """Weights assigned as Fortran-ordered arrays (e.g. ``W.T`` of a transposed
    export) or strided views predict, extract features and train as scikit-learn's
    do: the engine reads row-major copies, never the memory in the wrong order."""
    X, y = make_data(kind)
    name = estimator_for(kind)
    params = {**BASE, **ADAM, "max_iter": 3, "warm_start": True}
    sk, ours = fit_both(name, X, y, **params)

    def relaid(a):
        # (a copy each time: scikit-learn trains its arrays in place)
        if layout == "fortran":
            return np.array(a, order="F")
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]

    for est in (sk, ours):
        est.coefs_ = [relaid(c) for c in sk.coefs_]
        est.intercepts_ = [relaid(b) for b in sk.intercepts_]
    assert_same_predictions(sk, ours, X)
    first = np.maximum(X @ sk.coefs_[0] + sk.intercepts_[0], 0)
    assert_close(ours.hidden_activations(X, layer=0), first)

    # a warm-start fit (its new optimizer state), then partial_fit continuing it
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    assert_same_fitted_model(sk, ours)
    fit_params = {"classes": np.unique(y)} if kind == "multiclass" else {}
    for est in (sk, ours):
        est.coefs_ = [relaid(c) for c in est.coefs_]
        quiet_fit(est, X, y, method="partial_fit", **fit_params)
    assert_same_fitted_model(sk, ours)
    assert_same_predictions(sk, ours, X)


def test_warm_start_after_turning_on():
    """fit without warm_start, then set_params(warm_start=True) and refit."""
    X, y = make_data("regression")
    sk, ours = fit_both("MLPRegressor", X, y, **BASE, **ADAM)
    sk.set_params(warm_start=True, max_iter=2)
    ours.set_params(warm_start=True, max_iter=2)
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    assert_same_fitted_model(sk, ours)


def test_refit_without_warm_start_restarts():
    X, y = make_data("binary")
    sk, ours = fit_both("MLPClassifier", X, y, **BASE, **SGD)
    first = [c.copy() for c in ours.coefs_]
    quiet_fit(sk, X, y)
    quiet_fit(ours, X, y)
    assert_same_fitted_model(sk, ours)
    for a, b in zip(first, ours.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# --------------------------------------------------------------------------
# partial_fit
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, params, use_sw",
    [
        ("multiclass", dict(SGD), False),
        ("multiclass_str", dict(ADAM), False),
        (
            "binary",
            dict(SGD, learning_rate="invscaling", learning_rate_init=0.3),
            False,
        ),
        ("binary", dict(ADAM, batch_size=7), True),
        ("multilabel", dict(ADAM), False),
        ("regression", dict(SGD, learning_rate_init=0.01), False),
        ("regression_multi", dict(ADAM, batch_size=7, shuffle=False), True),
        ("poisson", dict(ADAM), False),
    ],
    ids=[
        "sgd-multiclass",
        "adam-str",
        "sgd-invscaling",
        "adam-sw-bs7",
        "adam-multilabel",
        "sgd-reg",
        "adam-reg-multi-sw",
        "adam-poisson",
    ],
)
def test_partial_fit_parity(kind, params, use_sw):
    X, y = make_data(kind, n_samples=60)
    name = estimator_for(kind)
    if kind == "poisson":
        params = {**params, "loss": "poisson"}
    params = {**BASE, **params}
    sk, ours = make_pair(name, **params)
    sw = _sample_weight(X.shape[0]) if use_sw else None
    chunks = np.array_split(np.arange(X.shape[0]), 3)
    for k, idx in enumerate(chunks):
        kw = {}
        if sw is not None:
            kw["sample_weight"] = sw[idx]
        if k == 0 and kind == "multilabel":
            # required on the first call, but the multilabel binarizer is fit on y
            kw["classes"] = np.arange(y.shape[1])
        elif k == 0 and name == "MLPClassifier":
            kw["classes"] = np.unique(y)
        sk.partial_fit(X[idx], y[idx], **kw)
        ours.partial_fit(X[idx], y[idx], **kw)
        assert_same_fitted_model(sk, ours)
        assert ours.t_ == sum(len(c) for c in chunks[: k + 1])
    assert_same_predictions(sk, ours, X)


def test_partial_fit_after_fit_parity():
    X, y = make_data("multiclass")
    sk, ours = fit_both("MLPClassifier", X, y, **BASE, **SGD)
    for _ in range(3):
        sk.partial_fit(X[:20], y[:20])
        ours.partial_fit(X[:20], y[:20])
        assert_same_fitted_model(sk, ours)


@pytest.mark.parametrize(
    "start, change",
    [
        (SGD, dict(learning_rate_init=0.2)),
        (SGD, dict(momentum=0.5, nesterovs_momentum=False)),
        (dict(SGD, learning_rate="invscaling"), dict(learning_rate="constant")),
        (dict(SGD, learning_rate="invscaling"), dict(power_t=0.9)),
        (ADAM, dict(learning_rate_init=0.1)),
        (ADAM, dict(beta_1=0.5, beta_2=0.9, epsilon=1e-3)),
        (ADAM, dict(solver="sgd")),
        (SGD, dict(solver="adam")),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
@pytest.mark.parametrize("first", ["fit", "partial_fit"])
def test_partial_fit_keeps_its_optimizer(start, change, first):
    """scikit-learn creates its optimizer in fit or in the first partial_fit and a
    later partial_fit continues it: optimizer settings (the solver included) changed
    by set_params in between take effect only at the next fit. The converted models
    continue the same way."""
    X, y = make_data("multiclass")
    sk, ours = make_pair("MLPClassifier", **{**BASE, **start})
    kw = {"classes": np.unique(y)} if first == "partial_fit" else {}
    for est in (sk, ours):
        quiet_fit(est, X, y, method=first, **kw)
        est.set_params(**change)
    sk_from_ours = ours.to_sklearn()
    ours_from_sk = type(ours).from_sklearn(sk)
    for est in (sk, ours, sk_from_ours, ours_from_sk):
        for _ in range(2):
            est.partial_fit(X[:20], y[:20])
    for other in (ours, sk_from_ours, ours_from_sk):
        assert_same_fitted_model(sk, other)
    # the next fit creates the optimizer of the new settings
    for est in (sk, ours):
        quiet_fit(est, X, y)
    assert_same_fitted_model(sk, ours)


def test_one_class_early_stopping_scores():
    """A classifier of one class predicts it for every row: its validation accuracy
    is 1 (not the share of outputs below 0.5)."""
    X, _ = make_data("binary", n_samples=60)
    y = np.zeros(len(X), dtype=int)
    params = dict(BASE, **ADAM, early_stopping=True, max_iter=4)
    sk, ours = fit_both("MLPClassifier", X, y, **params)
    assert ours.validation_scores_ == sk.validation_scores_ == [1.0] * 4
    assert_same_fitted_model(sk, ours)


def test_partial_fit_first_chunk_missing_classes():
    """classes= declares labels not present in the first chunk."""
    X, y = make_data("multiclass", n_samples=60)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    sk, ours = make_pair("MLPClassifier", **BASE, **ADAM)
    for k, idx in enumerate(np.array_split(np.arange(60), 3)):
        kw = {"classes": [0, 1, 2]} if k == 0 else {}
        sk.partial_fit(X[idx], y[idx], **kw)
        ours.partial_fit(X[idx], y[idx], **kw)
        assert_same_fitted_model(sk, ours)


# --------------------------------------------------------------------------
# longer runs (still small) to make sure errors do not accumulate
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_longer_training_parity(solver):
    X, y = make_data("multiclass", n_samples=120, n_features=8)
    params = dict(
        hidden_layer_sizes=(10,),
        random_state=0,
        solver=solver,
        max_iter=40,
        batch_size=32,
    )
    if solver == "sgd":
        params["learning_rate_init"] = 0.05
    sk, ours = fit_both("MLPClassifier", X, y, **params)
    assert_same_fitted_model(sk, ours, rtol=1e-5, atol=1e-8)
    assert_same_predictions(sk, ours, X, rtol=1e-5, atol=1e-8)


def _image_like(n=400, seed=0):
    """Rows like an image's: 256 inputs, about 80 % of them zero in runs of seven (the
    background), so that the first layer's gradient skips zeros (`src/zeros.rs`) on
    every AVX-512 CPU (~74 % of its groups of four inputs are all zero: past the 60 %
    it asks for on a CPU with AMX); the runs straddle the groups."""
    rng = np.random.RandomState(seed)
    background = np.repeat(rng.uniform(size=(n, 37)) < 0.8, 7, axis=1)[:, :256]
    X = np.where(background, 0.0, rng.uniform(0.05, 1.0, size=(n, 256)))
    y = (X @ rng.normal(size=256) > 0).astype(int) + 2 * (X[:, :128].sum(axis=1) > 13)
    return X, y


def _one_hot(n=400, seed=0, levels=25):
    """Rows of 12 one-hot encoded categories of `levels` levels (dense) and 8 numeric
    inputs: 96 % zeros, so that the first layer's forward product skips them too."""
    rng = np.random.RandomState(seed)
    codes = rng.randint(0, levels, size=(n, 12))
    onehot = np.zeros((n, 12 * levels))
    onehot[np.arange(n)[:, None], codes + levels * np.arange(12)] = 1.0
    X = np.hstack([onehot, rng.normal(size=(n, 8))])
    y = (onehot @ rng.normal(size=12 * levels) > 0).astype(int) + (X[:, -1] > 0.5)
    return X, y


def _one_hot_wide(n=400, seed=0):
    """:func:`_one_hot` with 60 levels: 728 inputs, which `gemm` sums in two blocks of
    364 (the forward product's kernel mirrors them)."""
    return _one_hot(n, seed, levels=60)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("data", [_image_like, _one_hot, _one_hot_wide])
def test_inputs_with_many_zeros(data, solver, dtype):
    """Zero-rich inputs take the first layer's zero-skipping kernels (on AVX-512 CPUs;
    one-hot rows the forward product's too): the model is scikit-learn's within the
    parity tolerance, and the same bytes for any n_jobs and whichever way the batches
    are cut (by rows, or by halves of the hidden units)."""
    X, y = data()
    X = X.astype(dtype)
    params = dict(hidden_layer_sizes=(128,), solver=solver, max_iter=3, random_state=0)
    if dtype == np.float64:
        sk, ours = fit_both("MLPClassifier", X, y, **params)
        assert_same_fitted_model(sk, ours)
        assert_same_predictions(sk, ours, X)
    fits = [
        mlp_rs.MLPClassifier(**params, n_jobs=n_jobs, batch_size=batch).fit(X, y)
        for n_jobs in (1, 2)
        for batch in (200, 256)
    ]
    for batch in (0, 1):
        one, two = fits[batch], fits[2 + batch]
        tensors = zip(
            one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_, strict=True
        )
        for a, b in tensors:
            assert a.dtype == dtype
            assert a.tobytes() == b.tobytes()
        assert one.loss_curve_ == two.loss_curve_


# --------------------------------------------------------------------------
# edge cases
# --------------------------------------------------------------------------
def _edge_data(case):
    X, y = make_data("multiclass")
    Xb, yb = make_data("binary")
    Xr, yr = make_data("regression")
    return {
        "single-class": ("MLPClassifier", X, np.zeros(50, dtype=int)),
        "single-class-str": ("MLPClassifier", X, np.array(["a"] * 50)),
        "labels-minus1-plus1": ("MLPClassifier", Xb, 2 * yb - 1),
        "labels-2-5-9": ("MLPClassifier", X, np.array([2, 5, 9])[y]),
        "binary-str": ("MLPClassifier", Xb, np.array(["no", "yes"])[yb]),
        "multilabel-1-column": ("MLPClassifier", X, (y == 1).astype(int)[:, None]),
        "one-feature": ("MLPRegressor", Xr[:, :1], yr),
        "two-samples": ("MLPClassifier", X[:2], np.array([0, 1])),
        "regression-column-y": ("MLPRegressor", Xr, yr.reshape(-1, 1)),
        "poisson-all-zero": ("MLPRegressor", Xr, np.zeros(50)),
    }[case]


EDGE_CASES = [
    ("single-class", {}),
    ("single-class-str", {"solver": "lbfgs"}),
    ("labels-minus1-plus1", {}),
    ("labels-2-5-9", {"solver": "sgd"}),
    ("binary-str", {"early_stopping": True}),
    ("multilabel-1-column", {}),
    ("one-feature", {}),
    ("two-samples", {"solver": "sgd"}),
    ("regression-column-y", {"solver": "lbfgs"}),
    ("poisson-all-zero", {"loss": "poisson"}),
    # no hidden layer at all (a linear / logistic model)
    ("labels-2-5-9", {"hidden_layer_sizes": ()}),
    ("labels-2-5-9", {"hidden_layer_sizes": (), "solver": "sgd"}),
    ("labels-2-5-9", {"hidden_layer_sizes": (), "solver": "lbfgs"}),
    ("one-feature", {"hidden_layer_sizes": []}),
    # unusual hyper-parameter values
    ("labels-2-5-9", {"hidden_layer_sizes": np.int64(3)}),
    ("labels-2-5-9", {"solver": "sgd", "momentum": 1.0}),
    ("labels-2-5-9", {"beta_1": 0.0}),
    ("labels-2-5-9", {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0}),
    ("labels-2-5-9", {"tol": 0.0}),
    ("labels-2-5-9", {"max_iter": 1}),
    ("labels-2-5-9", {"solver": "lbfgs", "max_iter": 1}),
    ("labels-2-5-9", {"solver": "lbfgs", "max_fun": 1}),
    ("labels-2-5-9", {"solver": "lbfgs", "alpha": 100.0}),
    ("labels-2-5-9", {"solver": "lbfgs", "early_stopping": True}),  # ignored
    ("labels-2-5-9", {"hidden_layer_sizes": (300,)}),
    # batch larger than the training part of an early-stopping split
    ("labels-2-5-9", {"early_stopping": True, "batch_size": 48}),
    (
        "labels-2-5-9",
        {
            "early_stopping": True,
            "validation_fraction": 0.5,
            "max_iter": 10,
            "n_iter_no_change": 1,
        },
    ),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.DataConversionWarning")
@pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")
@pytest.mark.parametrize(
    "case, params",
    EDGE_CASES,
    ids=[f"{c}-{i}" for i, (c, _) in enumerate(EDGE_CASES)],
)
def test_edge_case_parity(case, params):
    name, X, y = _edge_data(case)
    params = {"hidden_layer_sizes": (4,), "random_state": 0, "max_iter": 5, **params}
    sk, ours = fit_both(name, X, y, **params)
    assert_same_fitted_model(sk, ours)
    assert_same_predictions(sk, ours, X)


@pytest.mark.parametrize(
    "sample_weight",
    [
        np.r_[np.zeros(10), np.ones(40)],
        list(np.linspace(0.5, 1.5, 50)),
        2.0,
        np.arange(1, 51),
        np.ones(50),
    ],
    ids=["with-zeros", "list", "scalar", "int", "ones"],
)
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sample_weight_forms_parity(sample_weight, solver):
    X, y = make_data("regression")
    sk, ours = fit_both(
        "MLPRegressor",
        X,
        y,
        sample_weight=sample_weight,
        **{**BASE, "solver": solver, "learning_rate_init": 0.01},
    )
    assert_same_fitted_model(sk, ours)


def test_unit_sample_weight_equals_no_weight():
    X, y = make_data("multiclass")
    _, a = fit_both("MLPClassifier", X, y, **BASE, **SGD)
    _, b = fit_both("MLPClassifier", X, y, sample_weight=np.ones(50), **BASE, **SGD)
    assert_same_fitted_model(a, b)
