"""MLPClassifier: label handling and probability outputs on top of the shared base."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    column_or_1d,
)

from ._base import BaseMultilayerPerceptron, _series_values, _validation
from ._docs import COMMON_ATTRIBUTES, COMMON_PARAMETERS


def _is_integer_labels(y):
    """1-D integer NumPy labels: binary or multiclass by their count alone, with nothing
    scikit-learn's target checks would reject or convert."""
    return type(y) is np.ndarray and y.ndim == 1 and y.dtype.kind in "iu"


def _fitted_binarizer(y):
    """``LabelBinarizer().fit(y)``; for 1-D integer labels the same fitted state without
    its generic target checks (``type_of_target`` twice and ``unique_labels``: ~0.3-0.5
    ms, a sixth of a small fit), since such labels are binary or multiclass by their
    count alone."""
    binarizer = LabelBinarizer()
    if not (_is_integer_labels(y) and y.size):
        return binarizer.fit(y)
    classes = np.unique(y)
    binarizer.y_type_ = "multiclass" if len(classes) > 2 else "binary"
    binarizer.sparse_input_ = False
    binarizer.classes_ = classes
    return binarizer


def _check_first_call(clf, classes):
    """scikit-learn's ``_check_partial_fit_first_call``; on the later calls of a stream
    that passes 1-D integer ``classes`` every time, the same comparison without
    ``unique_labels``' generic target checks (~0.15 ms a call; for such classes it
    computes ``np.unique``). A mismatch goes to scikit-learn's function, for its
    error."""
    later = getattr(clf, "classes_", None) is not None
    if later and _is_integer_labels(classes) and classes.size:
        if np.array_equal(clf.classes_, np.unique(classes)):
            return False
    return _check_partial_fit_first_call(clf, classes)


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multi-layer Perceptron classifier, trained by the mlp_rs Rust engine.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`: the same
    parameters (plus ``n_jobs``), attributes and results, computed on every core with
    the GIL released. Optimizes the log-loss with LBFGS, SGD or Adam; handles binary,
    multiclass and multilabel targets, float32 and float64, dense and sparse input.

    Parameters
    ----------"""
        + COMMON_PARAMETERS
        + """
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as in :class:`~sklearn.linear_model.LogisticRegression`:
        ``{label: weight}``, or 'balanced' for ``n_samples / (n_classes *
        np.bincount(y))``. Fitting with them is fitting with
        ``sample_weight * compute_sample_weight(class_weight, y)`` (the early-stopping
        split and its score included; explicit validation data are weighed by their
        own labels). Not for multilabel targets; ``partial_fit`` accepts a dict only.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.
"""
        + COMMON_ATTRIBUTES
        + """
    See Also
    --------
    MLPRegressor : Multi-layer Perceptron regressor.
    sklearn.neural_network.MLPClassifier : The reference implementation.

    Examples
    --------
    >>> from mlp_rs import MLPClassifier
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=100, random_state=1)
    >>> clf = MLPClassifier(random_state=1, max_iter=300).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 2)
    """
    )

    _sklearn_class = _SkMLPClassifier
    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(
        self,
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
        class_weight=None,
        dropout=0.0,
        matmul_precision=None,
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
            loss="log_loss",
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
        self.class_weight = class_weight

    def _validate_input(self, X, y, incremental, reset):
        # plain y: 1-D integer labels
        X, y = self._checked_training_input(X, y, reset, plain_y=("iu", (1,)))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = _fitted_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            # (for 1-D integer labels, unique_labels is np.unique after its checks)
            classes = np.unique(y) if _is_integer_labels(y) else unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )

        return X, y

    def _sample_weight(self, X, y, sample_weight, incremental):
        """``sample_weight * compute_sample_weight(class_weight, y)``, computed before
        any conversion, so that the model is exactly the one those weights train."""
        if self.class_weight is not None:
            if incremental and self.class_weight == "balanced":
                # SGDClassifier.partial_fit's error
                cw = self.class_weight
                raise ValueError(
                    f"class_weight '{cw}' is not supported for partial_fit. In order "
                    f"to use '{cw}' weights, use compute_class_weight('{cw}', "
                    "classes=classes, y=y). In place of y you can use a large enough "
                    "sample of the full training set target to properly estimate the "
                    "class frequency distributions. Pass the resulting weights as the "
                    "class_weight parameter."
                )
            if self._label_binarizer.y_type_.startswith("multilabel"):
                raise ValueError(
                    "class_weight is not supported for multilabel targets: weigh the "
                    "samples with sample_weight instead."
                )
            class_weights = compute_sample_weight(self.class_weight, y)
            if sample_weight is None:
                sample_weight = class_weights
            else:
                # validated first (scikit-learn's messages for a wrong length or
                # type); float64 holds the given weights exactly
                sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
                sample_weight = sample_weight * class_weights
        return super()._sample_weight(X, y, sample_weight, incremental)

    def _validation_targets(self, y_val):
        """y_val validated as y is, with labels among ``classes_``."""
        y_val = check_array(y_val, ensure_2d=False, dtype=None)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            # (the binarizer would one-hot encode 1-D labels as if they were classes)
            kind = type_of_target(y_val)
            if kind != "multilabel-indicator" or y_val.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y_val must be a multilabel indicator matrix of "
                    f"{len(self.classes_)} columns, as y is; got {kind} targets of "
                    f"shape {y_val.shape}."
                )
        unseen = np.setdiff1d(unique_labels(y_val), self.classes_)
        if len(unseen):
            raise ValueError(
                f"y_val has classes not in the training data: {unseen}; the model's "
                f"classes are {self.classes_}."
            )
        return y_val

    def _training_targets(self, y):
        if self._label_binarizer.y_type_ == "multiclass" and y.ndim == 2:
            # multilabel y for a multiclass model: scikit-learn's error (binarizer)
            self._label_binarizer.transform(y)
            raise ValueError("The object was not fitted with multilabel input.")
        if self._label_binarizer.y_type_ == "multiclass":
            # One class index per sample: the engine expands each batch to one-hot rows,
            # so no n_samples x n_classes matrix is ever built.
            indices = np.searchsorted(self.classes_, y).astype(np.int64)
            return indices, len(self.classes_)
        # bool, so that float32 data is not upcast
        return super()._training_targets(
            self._label_binarizer.transform(y).astype(bool)
        )

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
            The target class labels (a label indicator matrix for multilabel).

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (multiplied by the class weights of ``class_weight``).

        X_val : {array-like, sparse matrix} of shape (n_val_samples, n_features), \
                default=None
            Validation samples for early stopping, in place of the
            ``validation_fraction`` split (as in ``HistGradientBoostingClassifier``).
            Requires ``early_stopping=True``.

        y_val : array-like of shape (n_val_samples,) or (n_val_samples, n_outputs), \
                default=None
            Their labels, among those of ``y``.

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
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first call.

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

        def first_call(shadow):
            if _check_first_call(shadow, classes):
                shadow._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    shadow._label_binarizer.fit(y)
                else:
                    shadow._label_binarizer.fit(classes)

        return self._fit(
            X, y, sample_weight=sample_weight, incremental=True, prepare=first_call
        )

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        model = self._snapshot()  # one fit's model, even while another publishes
        model._check_fitted()
        return model._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._labels(y_pred)

    def _labels(self, y_pred):
        """``LabelBinarizer.inverse_transform(y_pred)`` (threshold 0.5 between its
        default labels 0 and 1): its argmax / thresholding done directly for dense
        multiclass and binary outputs, without the ~30 us of its checks."""
        binarizer = self._label_binarizer
        plain = (
            not getattr(binarizer, "sparse_input_", False)
            and binarizer.neg_label == 0
            and binarizer.pos_label == 1
        )
        classes = np.asarray(binarizer.classes_)
        if plain and binarizer.y_type_ == "multiclass":
            # sklearn.preprocessing._label._inverse_binarize_multiclass
            return classes.take(y_pred.argmax(axis=1), mode="clip")
        if plain and binarizer.y_type_ == "binary" and y_pred.ndim == 1:
            # _inverse_binarize_thresholding, binary case
            if len(classes) == 1:
                return np.repeat(classes[0], len(y_pred))
            return classes[np.array(y_pred > 0.5, dtype=int)]
        return binarizer.inverse_transform(y_pred)

    def score(self, X, y, sample_weight=None):
        """Return the mean accuracy on the given test data and labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels for `X`.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean accuracy of ``self.predict(X)`` w.r.t. `y`.
        """
        # ClassifierMixin.score: accuracy_score(y, self.predict(X), sample_weight)
        y_pred = self.predict(X)
        labels = _series_values(y)  # (accuracy_score reads a Series as its values)
        plain = (
            sample_weight is None
            and _is_integer_labels(labels)
            and y_pred.ndim == 1
            and y_pred.dtype.kind in "iu"
            and len(labels) == len(y_pred)
        )
        if plain:
            # accuracy_score's own result for 1-D integer labels on both sides (binary
            # or multiclass, nothing to reject), without its generic target checks
            # (~0.3 ms, more than predicting a few hundred rows)
            return float(np.average(labels == y_pred))
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The predicted probability of each class, in the order of ``classes_``.
        """
        model = self._snapshot()  # one fit's model, even while another publishes
        model._check_fitted()
        y_pred = model._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def _fitted_state_names(self):
        return super()._fitted_state_names() + ["classes_", "_label_binarizer"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
