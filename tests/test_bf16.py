"""matmul_precision="bfloat16": training products with bfloat16 operands.

The kernels themselves (AVX512-BF16 and portable, bit for bit; the portable one against
a float64 reference of the rounded operands) are tested in Rust (src/bf16.rs). Here:
what the estimators promise around them.
"""

import pickle
import warnings

import numpy as np
import pytest
from conftest import make_data, quiet_fit
from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.exceptions import ConvergenceWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BF16 = dict(matmul_precision="bfloat16", random_state=0)


def _weights(est):
    return [a.tobytes() for a in est.coefs_ + est.intercepts_]


def _data(n=600, f=30):
    return make_data("multiclass", n_samples=n, n_features=f)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_bfloat16_trains_a_float32_model_close_to_the_exact_one(solver):
    X, y = _data()
    params = dict(hidden_layer_sizes=(64, 32), solver=solver, max_iter=30)
    exact = quiet_fit(MLPClassifier(**params, random_state=0), X.astype(np.float32), y)
    rounded = quiet_fit(MLPClassifier(**params, **BF16), X, y)  # float64 X: converted
    assert all(a.dtype == np.float32 for a in rounded.coefs_ + rounded.intercepts_)
    assert rounded.predict_proba(X).dtype == np.float64  # float64 X promotes, as usual
    assert _weights(rounded) != _weights(exact)
    # the same model up to bfloat16's rounding: losses and accuracies close
    np.testing.assert_allclose(rounded.loss_curve_, exact.loss_curve_, rtol=0.05)
    assert abs(rounded.score(X, y) - exact.score(X, y)) <= 0.03


# batches of one part under the team's bound, of two parts, and of four; dense rows,
# and image-like rows whose first-layer products skip zero pairs
@pytest.mark.parametrize("batch_size", [64, 256, 500])
@pytest.mark.parametrize("images", [False, True])
def test_bfloat16_results_do_not_depend_on_n_jobs(batch_size, images):
    X, y = make_data("multiclass", n_samples=2000, n_features=80)
    if images:
        X = np.where(np.abs(X) < 0.7, 0.0, X)
        X[:, :30] = 0.0
    params = dict(
        hidden_layer_sizes=(256, 128), max_iter=2, batch_size=batch_size, **BF16
    )
    one = quiet_fit(MLPClassifier(**params, n_jobs=1), X, y)
    two = quiet_fit(MLPClassifier(**params, n_jobs=2), X, y)
    assert _weights(one) == _weights(two)
    assert one.loss_curve_ == two.loss_curve_


def test_bfloat16_model_pickles_and_converts():
    X, y = _data()
    est = quiet_fit(MLPClassifier((16,), max_iter=5, **BF16), X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    assert again.matmul_precision == "bfloat16"
    sk = est.to_sklearn()
    assert all(c.dtype == np.float32 for c in sk.coefs_)
    # predictions are exact float32 products (scikit-learn's, up to summation order)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(sk.predict_proba(X32), est.predict_proba(X32), rtol=1e-5)
    # and partial_fit continues in bfloat16
    est.partial_fit(X, y)


def test_bfloat16_regressor_and_sparse_input():
    import scipy.sparse as sp

    X, y = make_data("regression", n_samples=300)
    params = dict(hidden_layer_sizes=(32,), max_iter=50)
    est = quiet_fit(MLPRegressor(**params, **BF16), X, y)
    exact = quiet_fit(MLPRegressor(**params, random_state=0), X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32
    assert abs(est.score(X, y) - exact.score(X, y)) < 0.05
    sparse = quiet_fit(
        MLPRegressor(hidden_layer_sizes=(32,), max_iter=3, **BF16), sp.csr_matrix(X), y
    )
    assert sparse.coefs_[0].dtype == np.float32


def test_bfloat16_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="stochastic solvers only"):
        MLPClassifier(solver="lbfgs", matmul_precision="bfloat16").fit(X, y)
    with pytest.raises(ValueError, match="'matmul_precision' parameter"):
        MLPClassifier(matmul_precision="float16").fit(X, y)
    f64 = quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), X, y)
    before = _weights(f64)
    f64.set_params(matmul_precision="bfloat16", warm_start=True)
    with pytest.raises(
        ValueError, match="trains float32 models; this model is float64"
    ):
        f64.fit(X, y)
    assert _weights(f64) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f64.set_params(matmul_precision=None).fit(X, y)  # and back: fine
