"""What mlp_rs adds to scikit-learn's MLPs, each against an independent computation:
class_weight (the sample_weight it stands for), dropout (reproducible masks that do
not depend on n_jobs; 0 is scikit-learn's model), the absolute and Huber losses (the
reported loss against the formula), hidden_activations (a NumPy forward pass),
explicit validation data and the validation loss curve, divergence with early
stopping, pickling with unpicklable callbacks, and mini-batches of zero weight.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_data, quiet_fit
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.utils.class_weight import compute_sample_weight

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _weights(est):
    return [a.tobytes() for a in est.coefs_ + est.intercepts_]


def _imbalanced(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, 6))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(n) > 1.2, "rare", "common")
    y[:3] = "other"
    return X, y


# --------------------------------------------------------------------- class_weight
@pytest.mark.parametrize(
    "class_weight", ["balanced", {"rare": 5.0, "common": 0.5, "other": 2.0}]
)
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_sw", [False, True])
def test_class_weight_is_the_sample_weight_it_stands_for(
    class_weight, early_stopping, dtype, with_sw
):
    X, y = _imbalanced()
    X = X.astype(dtype)
    sw = np.random.RandomState(1).uniform(0.5, 2, len(y)) if with_sw else None
    params = dict(
        hidden_layer_sizes=(8,),
        max_iter=6,
        random_state=0,
        early_stopping=early_stopping,
        n_iter_no_change=100,
    )
    weighted = MLPClassifier(**params, class_weight=class_weight).fit(X, y, sw)
    expected_sw = compute_sample_weight(class_weight, y)
    if sw is not None:
        expected_sw = sw * expected_sw
    plain = MLPClassifier(**params).fit(X, y, sample_weight=expected_sw)
    assert _weights(weighted) == _weights(plain)
    assert weighted.loss_curve_ == plain.loss_curve_
    if early_stopping:
        assert weighted.validation_scores_ == plain.validation_scores_
    # and the weights matter
    assert _weights(weighted) != _weights(MLPClassifier(**params).fit(X, y, sw))


def test_class_weight_in_partial_fit():
    X, y = _imbalanced()
    classes = np.unique(y)
    est = MLPClassifier(
        hidden_layer_sizes=(8,), random_state=0, class_weight="balanced"
    )
    sgd = SGDClassifier(class_weight="balanced")
    with pytest.raises(ValueError) as ours:
        est.partial_fit(X, y, classes=classes)
    with pytest.raises(ValueError) as theirs:
        sgd.partial_fit(X, y, classes=classes)
    assert str(ours.value) == str(theirs.value)
    assert not hasattr(est, "coefs_")
    # a dict works, chunk by chunk, as the sample weights it gives
    cw = {"rare": 4.0, "common": 1.0, "other": 2.0}
    ours = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, class_weight=cw)
    plain = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    for chunk in (slice(0, 150), slice(150, 300)):
        ours.partial_fit(X[chunk], y[chunk], classes=classes)
        sw = compute_sample_weight(cw, y[chunk])
        plain.partial_fit(X[chunk], y[chunk], classes=classes, sample_weight=sw)
    assert _weights(ours) == _weights(plain)


def test_class_weight_multilabel_is_a_clear_error():
    X, Y = make_data("multilabel", n_samples=40)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight="balanced", max_iter=2).fit(X, Y)


@pytest.mark.parametrize(
    "bad", [np.ones(7), np.full(40, "a"), np.full(40, np.nan), np.ones((40, 2))]
)
def test_class_weight_with_bad_sample_weight_errs_as_without(bad):
    """Bad sample weights get scikit-learn's error for them, class weights or not
    (multiplying first gave NumPy's broadcast errors)."""
    X, y = make_data("multiclass", n_samples=40)
    with pytest.raises(ValueError) as without:
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=bad)
    with pytest.raises(ValueError) as with_cw:
        MLPClassifier(max_iter=2, class_weight="balanced").fit(X, y, sample_weight=bad)
    assert str(with_cw.value) == str(without.value)


def test_class_weight_with_unknown_class_in_dict():
    X, y = _imbalanced()
    with pytest.raises(ValueError, match="not in class_weight"):
        MLPClassifier(class_weight={"rare": 2.0, "missing": 1.0}, max_iter=2).fit(X, y)
    # classes the dict leaves out weigh 1
    X, y = _imbalanced()
    partial = MLPClassifier(
        (4,), max_iter=2, random_state=0, class_weight={"rare": 3.0}
    )
    explicit = MLPClassifier((4,), max_iter=2, random_state=0)
    explicit.fit(X, y, sample_weight=np.where(y == "rare", 3.0, 1.0))
    assert _weights(partial.fit(X, y)) == _weights(explicit)


# -------------------------------------------------------------------------- dropout
def _dropout_data():
    X, y = make_data("multiclass", n_samples=600, n_features=30)
    return X, y


def test_dropout_zero_is_the_default_model():
    X, y = _dropout_data()
    for solver in ("sgd", "adam", "lbfgs"):
        params = dict(
            hidden_layer_sizes=(20, 10), solver=solver, max_iter=5, random_state=0
        )
        a = quiet_fit(MLPClassifier(**params), X, y)
        b = quiet_fit(MLPClassifier(**params, dropout=0.0), X, y)
        c = quiet_fit(MLPClassifier(**params, dropout=(0.0, 0.0)), X, y)
        assert _weights(a) == _weights(b) == _weights(c)


@pytest.mark.parametrize("dropout", [0.2, (0.5, 0.0), (0.1, 0.3)])
def test_dropout_is_reproducible_and_independent_of_n_jobs(dropout):
    X, y = make_data("multiclass", n_samples=2000, n_features=60)
    # large enough that n_jobs=2 really trains on two threads (parts of a batch)
    params = dict(
        hidden_layer_sizes=(300, 100), max_iter=3, random_state=0, batch_size=400
    )
    one = quiet_fit(MLPClassifier(**params, dropout=dropout, n_jobs=1), X, y)
    two = quiet_fit(MLPClassifier(**params, dropout=dropout, n_jobs=2), X, y)
    again = quiet_fit(MLPClassifier(**params, dropout=dropout, n_jobs=2), X, y)
    assert _weights(one) == _weights(two) == _weights(again)
    without = quiet_fit(MLPClassifier(**params), X, y)
    assert _weights(one) != _weights(without)
    other_seed = quiet_fit(
        MLPClassifier(**{**params, "random_state": 1}, dropout=dropout), X, y
    )
    assert _weights(one) != _weights(other_seed)


def test_dropout_never_drops_in_predict():
    X, y = _dropout_data()
    est = quiet_fit(MLPClassifier((16,), dropout=0.5, max_iter=5, random_state=0), X, y)
    proba = est.predict_proba(X)
    np.testing.assert_array_equal(proba, est.predict_proba(X))
    h = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0)
    z = h @ est.coefs_[1] + est.intercepts_[1]
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-9, atol=1e-12)


def test_dropout_trains_a_regularised_model():
    """Dropout changes training, not the model's kind: it still learns."""
    X, y = _dropout_data()
    est = quiet_fit(
        MLPClassifier((64,), dropout=0.3, max_iter=40, random_state=0), X, y
    )
    assert est.score(X, y) > 0.8
    assert est.loss_curve_[-1] < est.loss_curve_[0]


@pytest.mark.parametrize(
    "dropout, match",
    [
        ((0.1,), "has 1 rates but the network has 2 hidden"),
        ((0.1, 1.0), r"rates must be floats in \[0, 1\)"),
        ((0.1, "a"), r"rates must be floats in \[0, 1\)"),
    ],
)
def test_bad_dropout_is_a_clear_error(dropout, match):
    X, y = _dropout_data()
    with pytest.raises(ValueError, match=match):
        MLPClassifier((8, 4), dropout=dropout, max_iter=2).fit(X, y)


def test_dropout_rate_out_of_range_is_scikit_learns_parameter_error():
    X, y = _dropout_data()
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="'dropout' parameter"):
            MLPClassifier(dropout=bad).fit(X, y)


def test_dropout_with_lbfgs_is_an_error():
    X, y = _dropout_data()
    with pytest.raises(ValueError, match="stochastic solvers only"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


# ------------------------------------------------------------------ robust losses
def _robust_data():
    X, y = make_data("regression_multi", n_samples=120)
    y = y.copy()
    y[::17] += 25.0  # outliers
    sw = np.random.RandomState(3).uniform(0.3, 2.0, len(X))
    return X, y, sw


def _loss_formula(loss, r, sw, delta):
    a = np.abs(r)
    if loss == "absolute_error":
        per = a
    else:
        per = np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))
    return np.average(per.mean(axis=1), weights=sw)


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
@pytest.mark.parametrize("weighted", [False, True])
def test_robust_loss_reported_is_the_formula(loss, weighted):
    X, y, sw = _robust_data()
    sw = sw if weighted else None
    est = MLPRegressor(
        loss=loss,
        huber_delta=0.8,
        solver="lbfgs",
        alpha=0.0,
        max_iter=50,
        random_state=0,
    )
    quiet_fit(est, X, y, sample_weight=sw)
    r = y - est.predict(X)
    expected = _loss_formula(loss, r, sw, 0.8)
    np.testing.assert_allclose(est.loss_, expected, rtol=1e-9)


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_robust_loss_resists_outliers(loss):
    X, y, _ = _robust_data()
    params = dict(hidden_layer_sizes=(16,), max_iter=200, random_state=0)
    robust = quiet_fit(MLPRegressor(loss=loss, **params), X, y)
    squared = quiet_fit(MLPRegressor(**params), X, y)
    clean = np.ones(len(y), bool)
    clean[::17] = False
    err = lambda est: np.median(np.abs(est.predict(X)[clean] - y[clean]))  # noqa: E731
    assert err(robust) < err(squared)
    assert robust.loss_curve_[-1] < robust.loss_curve_[0]


def test_huber_delta_must_be_positive():
    X, y, _ = _robust_data()
    with pytest.raises(ValueError, match="'huber_delta' parameter"):
        MLPRegressor(loss="huber", huber_delta=0.0).fit(X, y)


def test_robust_loss_models_do_not_convert_to_sklearn():
    X, y, _ = _robust_data()
    est = quiet_fit(MLPRegressor(loss="huber", max_iter=3, random_state=0), X, y)
    with pytest.raises(ValueError, match="has no loss='huber'"):
        est.to_sklearn()
    same = est.set_params(loss="squared_error").to_sklearn()
    np.testing.assert_allclose(same.predict(X), est.predict(X), rtol=1e-12)


# ------------------------------------------------------------- hidden_activations
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hidden_activations_are_the_forward_pass(activation, dtype):
    X, y = make_data("multiclass", n_samples=80)
    X = X.astype(dtype)
    est = quiet_fit(
        MLPClassifier((7, 5, 3), activation=activation, max_iter=5, random_state=0),
        X,
        y,
    )
    phi = {
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "logistic": lambda z: 1 / (1 + np.exp(-z)),
        "identity": lambda z: z,
    }[activation]
    h, expected = X.astype(np.float64), []
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1], strict=True):
        h = phi(h @ W.astype(np.float64) + b)
        expected.append(h)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for layer in range(3):
        got = est.hidden_activations(X, layer=layer)
        assert got.dtype == dtype and got.shape == (80, (7, 5, 3)[layer])
        np.testing.assert_allclose(got, expected[layer], rtol=rtol, atol=rtol)
        np.testing.assert_array_equal(est.hidden_activations(X, layer=layer - 3), got)
    np.testing.assert_array_equal(
        est.hidden_activations(X), est.hidden_activations(X, 2)
    )
    sparse = est.hidden_activations(sp.csr_matrix(X), layer=1)
    np.testing.assert_allclose(sparse, expected[1], rtol=rtol, atol=rtol)


def test_hidden_activations_validate_like_predict():
    X, y = make_data("binary", n_samples=40)
    est = MLPClassifier((4,), max_iter=2, random_state=0)
    with pytest.raises(NotFittedError):
        est.hidden_activations(X)
    quiet_fit(est, X, y)
    for layer in (1, -2):
        with pytest.raises(ValueError, match="out of range"):
            est.hidden_activations(X, layer=layer)
    with pytest.raises(TypeError, match="layer must be an int"):
        est.hidden_activations(X, layer=0.5)
    with pytest.raises(ValueError) as ours:
        est.hidden_activations(X[:, :3])
    with pytest.raises(ValueError) as predict:
        est.predict(X[:, :3])
    assert str(ours.value) == str(predict.value)
    with pytest.raises(ValueError, match="NaN"):
        est.hidden_activations(np.full_like(X, np.nan))
    flat = quiet_fit(MLPClassifier((), max_iter=2), X, y)
    with pytest.raises(ValueError, match="no hidden layers"):
        flat.hidden_activations(X)


# ------------------------------------------- explicit validation data and its curve
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_explicit_validation_data(name):
    kind = "multiclass" if name == "MLPClassifier" else "regression"
    X, y = make_data(kind, n_samples=200)
    X_val, y_val = X[150:], y[150:]
    cls = MLPClassifier if name == "MLPClassifier" else MLPRegressor
    est = cls(hidden_layer_sizes=(8,), max_iter=1, early_stopping=True, random_state=0)
    quiet_fit(est, X[:150], y[:150], X_val=X_val, y_val=y_val)
    # one epoch: the best model is the only one, scored on the validation data
    if name == "MLPClassifier":
        assert est.validation_scores_[0] == est.score(X_val, y_val)
        expected_loss = log_loss(y_val, est.predict_proba(X_val), labels=est.classes_)
    else:
        np.testing.assert_allclose(est.validation_scores_[0], est.score(X_val, y_val))
        expected_loss = 0.5 * np.mean((y_val - est.predict(X_val)) ** 2)
    assert len(est.validation_loss_curve_) == est.n_iter_ == 1
    np.testing.assert_allclose(est.validation_loss_curve_[0], expected_loss, rtol=1e-9)
    # weighted validation data
    sw_val = np.linspace(0.5, 2.0, len(y_val))
    weighted = cls(
        hidden_layer_sizes=(8,), max_iter=1, early_stopping=True, random_state=0
    )
    quiet_fit(
        weighted, X[:150], y[:150], X_val=X_val, y_val=y_val, sample_weight_val=sw_val
    )
    np.testing.assert_allclose(
        weighted.validation_scores_[0],
        weighted.score(X_val, y_val, sample_weight=sw_val),
    )


def test_validation_loss_curve_follows_the_split_too():
    X, y = make_data("multiclass", n_samples=200)
    est = quiet_fit(
        MLPClassifier((8,), max_iter=7, early_stopping=True, random_state=0), X, y
    )
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == est.n_iter_
    assert all(np.isfinite(est.validation_loss_curve_))
    assert MLPClassifier((8,), max_iter=2).fit(X, y).validation_loss_curve_ is None


def test_explicit_validation_data_errors():
    X, y = make_data("multiclass", n_samples=100)
    with pytest.raises(ValueError, match="set early_stopping=True"):
        MLPClassifier(max_iter=2).fit(X, y, X_val=X, y_val=y)
    with pytest.raises(ValueError, match="given together"):
        MLPClassifier(max_iter=2, early_stopping=True).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="features"):
        MLPClassifier(max_iter=2, early_stopping=True).fit(
            X, y, X_val=X[:, :2], y_val=y
        )
    y_val = np.where(y == y[0], 99, y)
    with pytest.raises(ValueError, match="classes not in the training data"):
        MLPClassifier(max_iter=2, early_stopping=True).fit(X, y, X_val=X, y_val=y_val)
    with pytest.raises(ValueError):
        MLPClassifier(max_iter=2, early_stopping=True).fit(X, y, X_val=X, y_val=y[:10])
    # what the validation_fraction split refuses (see test_hostile_inputs)
    with pytest.raises(ValueError, match="X_val has 1 sample"):
        MLPClassifier(max_iter=2, early_stopping=True).fit(
            X, y, X_val=X[:1], y_val=y[:1]
        )
    with pytest.raises(ValueError, match="at least one non-zero"):
        MLPClassifier(max_iter=2, early_stopping=True).fit(
            X, y, X_val=X, y_val=y, sample_weight_val=np.zeros(len(y))
        )


def test_explicit_multilabel_validation_targets_are_indicators():
    X, y = make_data("multilabel", n_samples=100)
    est = MLPClassifier(max_iter=2, early_stopping=True)
    for y_val in (y[:, 0], y[:, :2], np.argmax(y, axis=1)):
        with pytest.raises(ValueError, match="multilabel indicator matrix"):
            est.fit(X, y, X_val=X, y_val=y_val)
    quiet_fit(est, X, y, X_val=X, y_val=y)


# ------------------------------------------------- divergence with early stopping
def test_divergence_with_early_stopping_keeps_the_best_model():
    X, y = make_data("multiclass", n_samples=300)
    data = dict(X=X[:200], y=y[:200], X_val=X[200:], y_val=y[200:])
    est = MLPClassifier(
        (16,),
        solver="sgd",
        max_iter=4,
        early_stopping=True,
        random_state=0,
        n_iter_no_change=100,
        warm_start=True,
    )
    quiet_fit(est, **data)
    n_before = len(est.validation_scores_)
    # so large that the weights soon overflow (after an epoch or two of huge weights)
    est.set_params(learning_rate_init=1e300, max_iter=50)
    with pytest.warns(ConvergenceWarning, match="Training diverged.*best weights"):
        est.fit(**data)
    scores = est.validation_scores_
    assert n_before < len(scores) < n_before + 50
    assert np.isnan(scores[-1]) and not np.isfinite(est.loss_curve_[-1])
    assert len(est.validation_loss_curve_) == len(scores)
    # the weights kept are those of the best epoch: they score its score
    assert est.best_validation_score_ == np.nanmax(scores)
    assert est.score(X[200:], y[200:]) == est.best_validation_score_
    assert np.isfinite(est.predict_proba(X)).all()


def test_divergence_without_early_stopping_is_still_an_error():
    X, y = make_data("multiclass", n_samples=200)
    with pytest.raises(ValueError, match="Training diverged"):
        MLPClassifier(solver="sgd", learning_rate_init=1e300, max_iter=5).fit(X, y)


# -------------------------------------------------------------------- callbacks
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_callbacks_that_are_not_callable_are_refused_before_training(solver):
    X, y = make_data("binary", n_samples=60)
    est = quiet_fit(MLPClassifier((4,), solver=solver, max_iter=3), X, y)
    before = [c.copy() for c in est.coefs_]
    calls = []
    est.set_params(callbacks=[lambda *a: calls.append(a), "not callable"])
    with pytest.raises(ValueError, match="list of callables"):
        est.fit(X, y)
    assert calls == []
    for a, b in zip(before, est.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_lbfgs_calls_callbacks_each_iteration_and_stops_on_true():
    X, y = make_data("binary", n_samples=60)
    seen = []
    est = quiet_fit(
        MLPClassifier(
            (4,),
            solver="lbfgs",
            max_iter=15,
            random_state=0,
            callbacks=lambda *a: seen.append(a),
        ),
        X,
        y,
    )
    assert [a[0] for a in seen] == list(range(1, est.n_iter_ + 1))
    assert all(a[2] is None and a[3] >= 0 for a in seen)
    assert seen[-1][1] == pytest.approx(est.loss_)
    # True after the third iteration: three iterations, no ConvergenceWarning, the
    # model of the third (the same as max_iter=3's)
    stopped = MLPClassifier(
        (4,),
        solver="lbfgs",
        max_iter=15,
        random_state=0,
        callbacks=lambda e, *a: e == 3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stopped.fit(X, y)
    assert stopped.n_iter_ == 3
    three = quiet_fit(
        MLPClassifier((4,), solver="lbfgs", max_iter=3, random_state=0), X, y
    )
    np.testing.assert_array_equal(stopped.coefs_[0], three.coefs_[0])


# ------------------------------------------------------- pickling and zero weights
def test_unpicklable_callbacks_are_left_out_of_the_pickle():
    X, y = make_data("binary", n_samples=60)
    seen = []
    est = quiet_fit(
        MLPClassifier(
            (4,), max_iter=3, random_state=0, callbacks=lambda *a: seen.append(a)
        ),
        X,
        y,
    )
    assert len(seen) == 3
    with pytest.warns(UserWarning, match="callbacks .* cannot be pickled"):
        data = pickle.dumps(est)
    loaded = pickle.loads(data)
    assert loaded.callbacks is None and est.callbacks is not None
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.get_params()["hidden_layer_sizes"] == (4,)
    # picklable callbacks stay, silently
    est.set_params(callbacks=[print])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pickle.loads(pickle.dumps(est)).callbacks == [print]


def test_a_mini_batch_of_zero_weight_is_named():
    X, y = make_data("binary", n_samples=40)
    sw = np.ones(40)
    sw[10:20] = 0.0
    est = quiet_fit(MLPClassifier((4,), max_iter=2, random_state=0), X, y)
    before = _weights(est)
    with pytest.raises(ValueError, match=re.escape("mini-batch 2 of epoch 1")) as info:
        est.set_params(shuffle=False, batch_size=10).fit(X, y, sample_weight=sw)
    assert "sum to zero" in str(info.value)
    assert "learning rate" not in str(info.value)
    assert _weights(est) == before
    # scikit-learn raises a ZeroDivisionError there: code catching it catches ours
    assert isinstance(info.value, ZeroDivisionError)
    sk = SkMLPClassifier((4,), max_iter=2, random_state=0, shuffle=False, batch_size=10)
    with pytest.raises(ZeroDivisionError):
        sk.fit(X, y, sample_weight=sw)
