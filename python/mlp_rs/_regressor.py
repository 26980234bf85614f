"""MLPRegressor: squared-error or Poisson regression on top of the shared base."""

from numbers import Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    check_array,
    column_or_1d,
)

from ._base import BaseMultilayerPerceptron, _validation
from ._docs import COMMON_ATTRIBUTES, COMMON_PARAMETERS


def _numeric_strings(y):
    """Targets given as strings of numbers, as numbers (scikit-learn keeps them as
    strings and fails in its loss's arithmetic; converted here, so that "nan" meets
    the finiteness check). Other strings: a TypeError, as scikit-learn's."""
    try:
        return y.astype(np.float64)
    except ValueError:
        raise TypeError(
            f"MLPRegressor needs numeric targets; y holds strings ({y.dtype}) that "
            "are not numbers."
        ) from None


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multi-layer Perceptron regressor, trained by the mlp_rs Rust engine.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`: the same
    parameters (plus ``n_jobs``), attributes and results. Optimizes the squared error
    (identity output) or the Poisson deviance (exponential output) with LBFGS, SGD or
    Adam; single- and multi-output targets, float32 and float64, dense and sparse input.

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, \
            default='squared_error'
        The loss function: half the squared error, or half the Poisson deviance with a
        log link (requires ``y >= 0``), as in scikit-learn; or, beyond it, the absolute
        error ``|y - p|`` or the Huber loss (``0.5 r^2`` where ``|r| <= huber_delta``,
        else ``huber_delta * (|r| - 0.5 huber_delta)``), robust to outliers. Each is
        averaged over samples (sample-weighted) and outputs, plus the same L2 term.
"""
        + COMMON_PARAMETERS
        + """
    huber_delta : float, default=1.0
        Where the Huber loss turns from quadratic to linear (loss='huber'), > 0.

    Attributes
    ----------"""
        + COMMON_ATTRIBUTES
        + """
    See Also
    --------
    MLPClassifier : Multi-layer Perceptron classifier.
    sklearn.neural_network.MLPRegressor : The reference implementation.

    Examples
    --------
    >>> from mlp_rs import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, random_state=1)
    >>> regr = MLPRegressor(random_state=1, max_iter=50).fit(X, y)
    >>> regr.predict(X[:2]).shape
    (2,)
    """
    )

    _sklearn_class = _SkMLPRegressor
    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_jobs=None,
        callbacks=None,
        dropout=0.0,
        matmul_precision=None,
        huber_delta=1.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            n_jobs=n_jobs,
            callbacks=callbacks,
            dropout=dropout,
            matmul_precision=matmul_precision,
        )
        self.huber_delta = huber_delta

    def _validate_input(self, X, y, incremental, reset):
        # plain y: floats, one or several outputs
        X, y = self._checked_training_input(
            X, y, reset, plain_y=("f", (1, 2)), y_numeric=True
        )
        if issparse(y):
            # scikit-learn's MLPRegressor fails in its arithmetic (a LinAlgError); the
            # message of check_array for sparse data where dense is required
            raise TypeError(
                "Sparse data was passed for y, but dense data is required. Use "
                "'.toarray()' to convert to a dense numpy array."
            )
        if y.dtype.kind in "SU":
            y = _numeric_strings(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _check_targets_for_loss(self, y):
        """The Poisson deviance has no value for a negative target: scikit-learn's
        MLPRegressor trains on to a NaN loss and a meaningless model; refused here
        with the message of scikit-learn's Poisson estimators (PoissonRegressor,
        HistGradientBoostingRegressor)."""
        if self._engine_loss() == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson "
                "regression."
            )

    def _engine_loss(self):
        """The absolute and Huber losses train an identity output (a model whose output
        is not, e.g. a warm start from a Poisson fit, keeps its own loss)."""
        if (
            self.loss in ("absolute_error", "huber")
            and self.out_activation_ == "identity"
        ):
            return self.loss
        return super()._engine_loss()

    def _validation_targets(self, y_val):
        """y_val validated as y is (numeric)."""
        y_val = check_array(y_val, ensure_2d=False, dtype="numeric")
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        return y_val

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        X_val=None,
        y_val=None,
        sample_weight_val=None,
    ):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        X_val : {array-like, sparse matrix} of shape (n_val_samples, n_features), \
                default=None
            Validation samples for early stopping, in place of the
            ``validation_fraction`` split (as in ``HistGradientBoostingRegressor``).
            Requires ``early_stopping=True``.

        y_val : array-like of shape (n_val_samples,) or (n_val_samples, n_outputs), \
                default=None
            Their targets.

        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Their weights.

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        return self._fit(
            X,
            y,
            sample_weight=sample_weight,
            validation=_validation(X_val, y_val, sample_weight_val),
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : ndarray of shape (n_samples,)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.

        Notes
        -----
        As in scikit-learn, the optimizer (its solver and settings such as
        ``learning_rate_init``, ``momentum`` or ``beta_1``) is created by ``fit`` or by
        the first ``partial_fit``, and later ``partial_fit`` calls continue it: a
        ``set_params`` change to those takes effect at the next ``fit``.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        model = self._snapshot()  # one fit's model, even while another publishes
        model._check_fitted()
        return model._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )
