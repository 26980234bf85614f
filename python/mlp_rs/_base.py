"""Shared estimator logic: parameters, validation, the stochastic and L-BFGS solvers.

Everything a fitted model holds lives here as NumPy arrays and Python values; the Rust
engine (``mlp_rs._core``) is stateless and works on arrays it is handed.
"""

import operator
import pickle
import sys
import threading
import time
import warnings
import weakref
from abc import ABC, abstractmethod
from itertools import chain
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from . import _blas, _convert, _core, _params
from ._core import __version__

_STOCHASTIC_SOLVERS = ("sgd", "adam")
# X's dtypes that scikit-learn's validation (dtype=(float64, float32)) keeps as they are
_PLAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _is_plain_array(X):
    """A 2-D float64/float32 NumPy array (no subclass, no dataframe, native byte order)
    with rows: what scikit-learn's validation passes through as it is, finiteness
    aside."""
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in _PLAIN_DTYPES
        and X.shape[0] > 0
    )


def _frame_names_and_values(X):
    """The column names and values of a pandas DataFrame that scikit-learn's
    validation turns into a plain array with ``np.asarray`` alone and whose names it
    records as they are: rows, columns named by ``str`` only, each once (scikit-learn
    1.9 refuses repeated names), all of one float64 or float32 dtype; else None."""
    pandas = sys.modules.get("pandas")
    if pandas is None or type(X) is not pandas.DataFrame or X.shape[0] == 0:
        return None
    columns = X.columns.tolist()
    if not all(type(c) is str for c in columns) or len(set(columns)) < len(columns):
        return None
    dtypes = set(X.dtypes)
    if len(dtypes) != 1 or dtypes.pop() not in _PLAIN_DTYPES:
        return None
    values = X.to_numpy()
    return (columns, values) if _is_plain_array(values) else None


def _series_values(y):
    """A pandas Series' values when its dtype is NumPy's (scikit-learn's validation of
    y then takes ``np.asarray`` of it), else y itself."""
    pandas = sys.modules.get("pandas")
    series = pandas is not None and type(y) is pandas.Series
    return y.to_numpy() if series and isinstance(y.dtype, np.dtype) else y


# The engine's loss for each output activation (canonical pairs only).
_LOSS_OF_OUTPUT = {
    "identity": "squared_error",
    "exp": "poisson",
    "softmax": "log_loss",
    "logistic": "binary_log_loss",
}

# The installed scikit-learn's own constraints (the regressor's include `loss`), so that
# validation and its messages are exactly scikit-learn's.
_PARAMETER_CONSTRAINTS = {
    **_SkMLPRegressor._parameter_constraints,
    "n_jobs": [None, Integral],
    "callbacks": [None, callable, list],
    # a rate, or one per hidden layer (each checked in fit, against the layers)
    "dropout": [Interval(Real, 0, 1, closed="left"), tuple],
    "matmul_precision": [None, StrOptions({"bfloat16"})],
}


def _lbfgs_options(iprint):
    """scipy's L-BFGS-B options as the installed scikit-learn passes them."""
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    except ImportError:  # pragma: no cover - older or newer scikit-learn
        return {}
    return _get_additional_lbfgs_options_dict("iprint", iprint)


_INT_LIMIT = 2**62


def _run_callbacks(callbacks, epoch, loss, validation_score, elapsed):
    """Every user callback, in order; whether one asked to stop (returned True)."""
    stop = False
    for callback in callbacks:
        stop |= bool(callback(epoch, loss, validation_score, elapsed))
    return stop


class _IterationReporter:
    """scipy's per-iteration hook for L-BFGS: the user callbacks, called as after an
    epoch of the stochastic solvers (no validation score); a callback returning True
    stops the minimisation (StopIteration, scipy's way), noted in ``stopped``."""

    def __init__(self, callbacks):
        self.callbacks = callbacks
        self.start = time.perf_counter()
        self.count = 0
        self.stopped = False

    def __call__(self, intermediate_result):
        self.count += 1
        elapsed = time.perf_counter() - self.start
        loss = float(intermediate_result.fun)
        self.stopped = _run_callbacks(self.callbacks, self.count, loss, None, elapsed)
        if self.stopped:
            raise StopIteration


def _engine_int(value):
    """An integer parameter for the engine's 64-bit fields: beyond them a count means
    the same as 2**62 (max_iter: never reached; n_jobs: more threads than work)."""
    return None if value is None else max(-_INT_LIMIT, min(int(value), _INT_LIMIT))


def _engine_params(params, dtype):
    """The weights as the engine reads them: row-major arrays of `dtype` (the same
    arrays when they already are; a Fortran-ordered or strided coefs_ a user assigned,
    e.g. ``W.T``, is copied, not read in the wrong order)."""
    return [np.ascontiguousarray(p, dtype=dtype) for p in params]


def _engine_input(X, dtype):
    """X as the engine borrows it: a C-contiguous array, or CSR parts (the indices in
    scipy's int32 or int64, read as they are: no copy of them)."""
    if sp.issparse(X):
        X = X.tocsr()
        indices = X.indices
        if indices.dtype not in (np.int32, np.int64):
            indices = indices.astype(np.int64)
        return (
            np.ascontiguousarray(X.data, dtype=dtype),
            np.ascontiguousarray(indices),
            np.ascontiguousarray(X.indptr, dtype=np.int64),
            int(X.shape[1]),
        )
    return np.ascontiguousarray(X, dtype=dtype)


_WEIGHTS = operator.itemgetter("coefs_", "intercepts_")
_FIT_LOCKS = weakref.WeakKeyDictionary()
_FIT_LOCKS_GUARD = threading.Lock()


def _fit_lock(estimator):
    """The lock serialising fits of `estimator` (kept outside: locks do not pickle)."""
    with _FIT_LOCKS_GUARD:
        lock = _FIT_LOCKS.get(estimator)
        if lock is None:
            lock = _FIT_LOCKS[estimator] = threading.RLock()
        return lock


def _validation(X_val, y_val, sample_weight_val):
    """The explicit validation data of ``fit``, or None when none is given."""
    if X_val is None and y_val is None and sample_weight_val is None:
        return None
    return X_val, y_val, sample_weight_val


def _engine_validation(X_val, y_val, sw_val, dtype):
    """The validation data as the engine reads it."""
    return (
        _engine_input(X_val, dtype),
        _engine_targets(y_val, dtype),
        None if sw_val is None else np.ascontiguousarray(sw_val, dtype=dtype),
    )


def _check_validation_set(X_val, sw_val, explicit=False):
    """What scikit-learn's early stopping rejects of its validation split: fewer than
    two samples (raised before training), or sample weights all zero (raised by its
    score at the end of the first epoch: here before it, so the fit changes nothing).
    The same for an explicit X_val, which could otherwise give a score of nothing."""
    if X_val.shape[0] < 2 and explicit:
        raise ValueError(
            f"X_val has {X_val.shape[0]} sample(s): the validation set of early "
            "stopping needs at least 2."
        )
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    if sw_val is not None and not np.any(sw_val):
        raise ValueError("Sample weights must contain at least one non-zero number.")


def _check_finite_targets(y):
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        # (object targets holding None become NaN in validation, after its check)
        what = "NaN" if np.isnan(y).any() else "infinity"
        raise ValueError(f"Input y contains {what}.")


def _engine_targets(y, dtype):
    """Targets as the engine reads them: class indices (int64) stay indices, anything
    else becomes a C-contiguous 2-D array of the model's dtype."""
    if y.ndim == 1:
        return np.ascontiguousarray(y, dtype=np.int64)
    return np.ascontiguousarray(y, dtype=dtype)


class _EpochShuffler:
    """How the engine draws each epoch's order, as scikit-learn does: it reshuffles
    the previous permutation with the estimator's RandomState every epoch.

    A generator made from an integer seed belongs to this fit alone: the engine
    continues its MT19937 stream itself (``state``) and the context hands the advanced
    state back to the generator on exit, whatever happened (a callback drawing from
    ``_random_state`` meanwhile would have its draws overwritten; nothing else can see
    it). A shared one (None: NumPy's global generator, or a RandomState passed in) is
    drawn from in Python, epoch by epoch (``next_order``), so that other users of it
    interleave as before.
    """

    def __init__(self, estimator, n_samples):
        self.state = self.next_order = self._saved = None
        random_state = self._random_state = estimator._random_state
        if estimator.shuffle and isinstance(estimator.random_state, Integral):
            kind, key, pos, has_gauss, cached_gaussian = random_state.get_state()
            self.state = np.append(key, np.uint32(pos)).astype(np.uint32)
            self._saved = (kind, has_gauss, cached_gaussian)
        elif estimator.shuffle:
            order = [np.arange(n_samples, dtype=np.int64)]

            def next_order():
                # sklearn.utils.shuffle(order, random_state=...) without its
                # validation: the same draws (RandomState.shuffle of an arange).
                permutation = np.arange(n_samples)
                random_state.shuffle(permutation)
                order[0] = order[0][permutation]
                return order[0]

            self.next_order = next_order

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.state is not None:
            kind, has_gauss, cached_gaussian = self._saved
            state = (kind, self.state[:-1], int(self.state[-1]), has_gauss)
            self._random_state.set_state(state + (cached_gaussian,))
        return False


class BaseMultilayerPerceptron(BaseEstimator, ABC):
    """Base class of :class:`MLPClassifier` and :class:`MLPRegressor`.

    Do not use it directly.
    """

    _parameter_constraints: dict = _PARAMETER_CONSTRAINTS

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        n_jobs,
        callbacks,
        dropout,
        matmul_precision,
    ):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_jobs = n_jobs
        self.callbacks = callbacks
        self.dropout = dropout
        self.matmul_precision = matmul_precision

    @classmethod
    def _get_param_names(cls):
        # (scikit-learn's, with the signature inspected once per class)
        return list(_params.param_names(cls))

    def _validate_params(self):
        # (scikit-learn's, remembering the parameter sets it accepted: see _params)
        _params.validate_params(self)

    # ----------------------------------------------------------------- engine glue

    @property
    def _dtype(self):
        return self.coefs_[0].dtype

    def _layer_units(self):
        return [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]

    def _engine_config(self, **overrides):
        """The configuration of a stochastic fit in the form ``mlp_rs._core`` reads
        it. ``n_jobs`` goes through as given: the engine owns the thread policy."""
        config = {
            **self._objective_config(),
            "dropout": [],
            "dropout_seed": 0,
            "matmul_precision": self.matmul_precision,
            "batch_size": 1,
            "solver": self.solver,
            **self._optimizer_settings(),
            "max_iter": _engine_int(self.max_iter),
            "tol": float(self.tol),
            "n_iter_no_change": float(self.n_iter_no_change),
            "shuffle": bool(self.shuffle),
            "early_stopping": bool(self.early_stopping),
            "incremental": False,
            "score": self._score_name(),
        }
        config.update(overrides)
        return config

    def _score_name(self):
        """The engine's validation score: scikit-learn's ``score``; a classifier
        of one class predicts that class for every row (its accuracy is 1)."""
        if not is_classifier(self):
            return "r2"
        return "one_class" if len(self.classes_) == 1 else "accuracy"

    def _optimizer_settings(self):
        """The optimizer's hyper-parameters as the engine reads them. scikit-learn
        fixes them when it creates its optimizer (``SGDOptimizer`` /
        ``AdamOptimizer``): a ``partial_fit`` continuing that optimizer keeps them
        (and its solver), whatever ``set_params`` changed since."""
        return {
            "learning_rate": self.learning_rate,
            "learning_rate_init": float(self.learning_rate_init),
            "power_t": float(self.power_t),
            "momentum": float(self.momentum),
            "nesterovs_momentum": bool(self.nesterovs_momentum),
            "beta_1": float(self.beta_1),
            "beta_2": float(self.beta_2),
            "epsilon": float(self.epsilon),
        }

    def _objective_config(self):
        """What the engine's full-batch loss and gradient (L-BFGS) need."""
        return {
            "units": self._layer_units(),
            "activation": self.activation,
            "loss": self._engine_loss(),
            "huber_delta": float(getattr(self, "huber_delta", 1.0)),
            "alpha": float(self.alpha),
            "n_jobs": _engine_int(self.n_jobs),
        }

    def _engine_loss(self):
        """The loss the engine minimises: the canonical one of the output activation
        (scikit-learn's rule), or a regressor's absolute / Huber loss."""
        return _LOSS_OF_OUTPUT[self.out_activation_]

    def _params(self):
        # Both lists in one C call, so that they always come from the same fit.
        try:
            coefs, intercepts = _WEIGHTS(self.__dict__)
        except KeyError as missing:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {missing}: the model's state "
                "is incomplete; refit it."
            ) from None
        return coefs + intercepts

    def _publish(self, coefs, intercepts):
        """Sets new weights, both lists at once (see _params)."""
        self.__dict__.update(coefs_=coefs, intercepts_=intercepts)

    def _private_parameters(self, dtype, fresh):
        """The parameters for the engine to train in place: C-contiguous copies, so that
        arrays a user assigned or a concurrent predict is reading stay untouched; or,
        for ``fresh`` weights just drawn for this fit (seen by nobody else), those
        arrays themselves (no second copy of the model in memory)."""
        if fresh:
            ok = all(
                a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
                for a in self.coefs_ + self.intercepts_
            )
            if ok:
                return list(self.coefs_), list(self.intercepts_)
        coefs = [np.array(c, dtype=dtype, order="C") for c in self.coefs_]
        intercepts = [np.array(b, dtype=dtype, order="C") for b in self.intercepts_]
        return coefs, intercepts

    # --------------------------------------------------------------- initialisation

    def _initialize(self, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        # scikit-learn's draws in its order: same random_state, same start.
        coefs, intercepts = [], []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:], strict=False):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            coefs.append(coef.astype(dtype, copy=False))
            intercepts.append(intercept.astype(dtype, copy=False))
        self._publish(coefs, intercepts)

        # (scikit-learn copies them always; only early stopping reads them)
        if self.early_stopping:
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            self._best_coefs = self._best_intercepts = None

        if self.solver in _STOCHASTIC_SOLVERS:
            self._start_stochastic_bookkeeping()

    def _start_stochastic_bookkeeping(self):
        """The loss curve and early-stopping records of a stochastic solver, empty."""
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    # ------------------------------------------------------------------------ fit

    def _fit(
        self,
        X,
        y,
        sample_weight=None,
        incremental=False,
        prepare=None,
        validation=None,
    ):
        """Fits a shadow of the estimator and publishes the result at the end.

        Until the fit has succeeded, the estimator shows its previous model in full
        (weights, classes, feature counts: a concurrent ``predict`` sees the old model,
        or ``NotFittedError`` if there was none), and a call that raises leaves it
        exactly as it was. The shadow starts as a shallow copy: training never mutates
        objects the old state refers to (it works on copies and assigns new lists).
        ``prepare(shadow)`` runs first (``partial_fit``'s first-call bookkeeping).
        ``validation`` is ``(X_val, y_val, sample_weight_val)`` when given.
        """
        # Fits of one estimator from several threads run one after the other.
        with _fit_lock(self):
            shadow = self._snapshot(copy=True)
            if prepare is not None:
                prepare(shadow)
            shadow._fit_or_raise(X, y, sample_weight, incremental, validation)
            # One assignment: readers see the whole old state or the whole new one.
            self.__dict__ = shadow.__dict__
            return self

    def _snapshot(self, copy=False):
        """The estimator as one fit left it: a view on its current attributes, which a
        fit publishing meanwhile does not touch (it replaces ``__dict__`` whole); with
        ``copy`` the view's attributes are its own, to be changed freely."""
        view = object.__new__(type(self))
        view.__dict__ = dict(self.__dict__) if copy else self.__dict__
        return view

    def _fit_or_raise(self, X, y, sample_weight, incremental, validation=None):
        hidden_layer_sizes = self._hidden_layer_sizes()
        self._check_extensions(len(hidden_layer_sizes), validation, incremental)
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        _check_finite_targets(y)
        X = self._precision_input(X, first_pass)
        sample_weight = self._sample_weight(X, y, sample_weight, incremental)
        y, self.n_outputs_ = self._training_targets(y)
        if validation is not None:
            validation = self._validation_data(*validation)

        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, X.dtype)
        elif self._layer_units() != layer_units:
            # scikit-learn goes on training the old layers, or fails in its arrays
            # (README, "Known differences")
            start_over = "fit with warm_start=False"
            if incremental:
                start_over = "fit a new model"
            raise ValueError(
                f"The model's layers {self._layer_units()} do not match the data and "
                f"hidden_layer_sizes, which need {layer_units}; {start_over}."
            )
        elif self.solver in _STOCHASTIC_SOLVERS and "loss_curve_" not in self.__dict__:
            # an L-BFGS model trained on by a stochastic solver: scikit-learn fails
            # (it has no loss_curve_); mlp_rs's records start here (README, "Known
            # differences")
            self._start_stochastic_bookkeeping()
        self._check_targets_for_loss(y)

        dtype = self._dtype if self._dtype in (np.float32, np.float64) else X.dtype
        # After an early-stopping fit scikit-learn's coefs_ *is* its _best_coefs list,
        # so the next warm-start fit trains the "best" weights in place: without a new
        # best score it ends on the last epoch's weights. Reproduced for parity.
        self._best_follows_training = getattr(self, "_best_coefs", None) is self.coefs_
        params = self._private_parameters(dtype, fresh=first_pass)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)

        if self.solver in _STOCHASTIC_SOLVERS:
            data = (X, y, sample_weight, validation)
            self._fit_stochastic(data, dtype, incremental, *params)
        elif self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight, dtype, *params)

        weights = chain(self.coefs_, self.intercepts_)
        if not all(np.isfinite(w).all() for w in weights):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed. The model's"
                " parameters were left as they were before this call."
            )
        return self

    def _is_plain_training_input(self, X, y, reset, y_kinds, y_ndims, named=False):
        """Whether ``validate_data(self, X, y, ...)`` would return X and y themselves,
        without a word: X a plain array (``_is_plain_array``) with columns, on a later
        call (``reset=False``) one that predictions serve (``_is_plain_input``; with
        ``named``, the values of a frame of the fitted names), every value finite; y a
        NumPy array of a dtype kind in ``y_kinds`` and a dimension in ``y_ndims`` with
        X's rows, finite when floating. Its generic checks cost ~0.2 ms a fit (a tenth
        of a small fit's time); anything else takes them, with their errors and
        warnings."""
        if reset or named:
            plain_x = _is_plain_array(X) and X.shape[1] > 0
            plain_x = plain_x and (reset or X.shape[1] == self.n_features_in_)
        else:
            plain_x = self._is_plain_input(X)
        plain = (
            plain_x
            and type(y) is np.ndarray
            and y.dtype.kind in y_kinds
            and y.ndim in y_ndims
            and len(y) == len(X)
            and y.size > 0
        )
        if not plain:
            return False
        # A finite sum has only finite terms (scikit-learn's own first test). Silent:
        # when it is not finite, the full path checks again and warns as it does.
        with np.errstate(all="ignore"):
            return bool(np.isfinite(X.sum())) and (
                y.dtype.kind != "f" or bool(np.isfinite(y.sum()))
            )

    def _checked_training_input(self, X, y, reset, plain_y, **check_params):
        """X and y as ``validate_data`` returns them (and what it records: the feature
        count and names on a first call), taking a plain input as it is (see
        ``_is_plain_training_input``; ``plain_y`` is its y kinds and dimensions), or
        the values of a plain DataFrame and Series (``_frame_names_and_values``, whose
        names a first call records and a later one must find as they were fitted;
        ``_series_values``): a ``partial_fit`` of 500 rows from pandas paid ~1 ms of
        scikit-learn's generic checks."""
        names, values = None, X
        frame = _frame_names_and_values(X)
        if frame is not None and (reset or self._fitted_names_are(frame[0])):
            names, values = frame
        targets = _series_values(y)
        named = names is not None
        if self._is_plain_training_input(values, targets, reset, *plain_y, named=named):
            if reset:
                # what _check_feature_names and _check_n_features record
                self.__dict__.pop("feature_names_in_", None)
                if named:
                    self.feature_names_in_ = np.asarray(names, dtype=object)
                self.n_features_in_ = values.shape[1]
            return values, targets
        return validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
            **check_params,
        )

    def _check_targets_for_loss(self, y):
        """Targets the loss the model trains cannot take (see the regressor's)."""

    def _precision_input(self, X, first_pass):
        """bfloat16 products train a float32 model: float64 X is converted once (the
        caller's array untouched), and a float64 model cannot continue in them."""
        if self.matmul_precision is None:
            return X
        if not first_pass and self._dtype != np.float32:
            raise ValueError(
                f"matmul_precision={self.matmul_precision!r} trains float32 models; "
                f"this model is {self._dtype.name}. Refit it (warm_start=False), or "
                "continue with matmul_precision=None."
            )
        return X if X.dtype == np.float32 else X.astype(np.float32)

    def _hidden_layer_sizes(self):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        return hidden_layer_sizes

    def _check_extensions(self, n_hidden, validation, incremental):
        """The parameters scikit-learn's MLPs lack (dropout, explicit validation data)
        against the rest of the configuration."""
        rates = self._dropout_rates(n_hidden)
        if any(rates) and self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                f"dropout is applied by the stochastic solvers only; solver="
                f"{self.solver!r} cannot use it (dropout={self.dropout!r})."
            )
        if self.matmul_precision is not None and self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                f"matmul_precision={self.matmul_precision!r} applies to the "
                f"stochastic solvers only: solver={self.solver!r} is scipy's L-BFGS-B, "
                "which works in float64. Use solver='sgd' or 'adam', or "
                "matmul_precision=None."
            )
        if validation is not None and not (
            self.early_stopping and self.solver in _STOCHASTIC_SOLVERS
        ):
            raise ValueError(
                "X_val and y_val are the validation data of early stopping: set "
                "early_stopping=True (with solver='sgd' or 'adam') to use them."
            )

    def _dropout_rates(self, n_hidden):
        """One dropout rate per hidden layer, from a float or a tuple of them."""
        dropout = self.dropout
        rates = (
            list(dropout) if isinstance(dropout, tuple | list) else [dropout] * n_hidden
        )
        if len(rates) != n_hidden:
            raise ValueError(
                f"dropout has {len(rates)} rates but the network has {n_hidden} hidden "
                f"layer(s) (hidden_layer_sizes={self.hidden_layer_sizes!r}): give one "
                "rate per hidden layer, or a single float for all."
            )
        for rate in rates:
            if (
                isinstance(rate, bool)
                or not isinstance(rate, Real)
                or not 0 <= rate < 1
            ):
                raise ValueError(
                    f"dropout rates must be floats in [0, 1); got {dropout!r}."
                )
        return [float(r) for r in rates]

    def _sample_weight(self, X, y, sample_weight, incremental):
        """The validated sample weights (None when there are none)."""
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(sample_weight, X)
        if not np.any(sample_weight):
            # (scikit-learn >= 1.8's own check; older ones crash dividing by 0)
            raise ValueError(
                "Sample weights must contain at least one non-zero number."
            )
        return sample_weight

    def _validation_data(self, X_val, y_val, sample_weight_val):
        """Explicit validation data (``fit(..., X_val=, y_val=)``), validated like the
        training data: samples, targets as the network trains on them, weights."""
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together.")
        X_val = validate_data(
            self,
            X_val,
            reset=False,
            accept_sparse=["csr", "csc"],
            dtype=(np.float64, np.float32),
        )
        y_val = self._validation_targets(y_val)
        check_consistent_length(X_val, y_val)
        sw_val = self._sample_weight(X_val, y_val, sample_weight_val, False)
        y_val, n_outputs = self._training_targets(y_val)
        if n_outputs != self.n_outputs_:
            raise ValueError(f"y_val has {n_outputs} outputs, y has {self.n_outputs_}.")
        return X_val, y_val, sw_val

    def _fit_lbfgs(self, X, y, sample_weight, dtype, coefs, intercepts):
        x = _engine_input(X, dtype)
        y = _engine_targets(y, dtype)
        config = self._objective_config()
        shapes = [p.shape for p in coefs + intercepts]
        sizes = [p.size for p in coefs + intercepts]
        packed = np.hstack([p.ravel() for p in coefs + intercepts])

        def loss_grad(packed_params):
            loss, grad = _core.loss_and_gradient(
                x, y, sample_weight, np.asarray(packed_params, dtype=dtype), config
            )
            # (np.float64 as scikit-learn's loss, which scipy hands back as loss_)
            return np.float64(loss), np.asarray(grad, dtype=np.float64)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        callbacks = self._callbacks()
        reporter = _IterationReporter(callbacks) if callbacks else None
        # (x0 in the model's dtype, as scikit-learn's: scipy then evaluates the loss
        # at parameters of that dtype; its BLAS on one thread: see _blas)
        with _blas.one_blas_thread():
            opt_res = scipy.optimize.minimize(
                loss_grad,
                packed,
                method="L-BFGS-B",
                jac=True,
                options={
                    "maxfun": self.max_fun,
                    "maxiter": self.max_iter,
                    "gtol": self.tol,
                    **_lbfgs_options(iprint),
                },
                callback=reporter,
            )
        if reporter is not None and reporter.stopped:
            # a callback asked to stop: not a failure to converge
            self.n_iter_ = opt_res.nit
        else:
            self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        # scipy's own solution, float64 also for a float32 model: scikit-learn's
        # coefs_ after L-BFGS (its later fits and predictions then run in float64)
        arrays = np.split(np.asarray(opt_res.x), np.cumsum(sizes)[:-1])
        params = [a.reshape(s) for a, s in zip(arrays, shapes, strict=False)]
        self._publish(params[: len(coefs)], params[len(coefs) :])

    def _new_optimizer_state(self, dtype):
        per_tensor = 1 if self.solver == "sgd" else 2
        return {
            "solver": self.solver,
            "settings": self._optimizer_settings(),
            "learning_rate": float(self.learning_rate_init),
            "step": 0,
            # (C order whatever the order of coefs_ a user assigned: the engine reads
            # them row-major)
            "tensors": [
                np.zeros(np.shape(p), dtype=dtype)
                for _ in range(per_tensor)
                for p in self._params()
            ],
        }

    def _fit_stochastic(self, data, dtype, incremental, coefs, intercepts):
        """SGD / Adam epochs in the engine; scikit-learn's ``_fit_stochastic`` with its
        epoch loop (``_update_no_improvement_count``, ``iteration_ends``,
        ``trigger_stopping``) in ``src/trainer.rs``."""
        state, fresh = self._optimizer_state_for(incremental, dtype)
        # Trained on copies and committed only when the engine succeeds (a new state
        # belongs to this fit alone).
        tensors = state["tensors"] if fresh else [t.copy() for t in state["tensors"]]
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_train, y_train, sw_train, validation = self._validation_split(*data, dtype)
        n_samples = X_train.shape[0]
        batch_size = self._batch_size(n_samples)
        dropout = self._dropout_config()
        shuffler = _EpochShuffler(self, n_samples)
        best = [np.array(b, dtype=dtype, order="C") for b in self._best_params()]
        engine_state = self._engine_state(state)
        # (a continued optimizer keeps its solver and settings, as scikit-learn's
        # does; a state from before they were kept takes the current ones, which
        # _engine_config holds)
        optimizer = {"solver": state["solver"], **state.get("settings", {})}
        with shuffler:
            result = _core.fit_stochastic(
                _engine_input(X_train, dtype),
                _engine_targets(y_train, dtype),
                None if sw_train is None else np.ascontiguousarray(sw_train),
                validation,
                coefs + intercepts,
                tensors,
                best,
                self._engine_config(
                    batch_size=batch_size,
                    incremental=bool(incremental),
                    **optimizer,
                    **dropout,
                ),
                engine_state,
                shuffler.next_order,
                self._epoch_reporter(n_samples),
                self._report_plateau,
                shuffle_state=shuffler.state,
            )
        self._optimizer_state = {
            **state,
            "tensors": tensors,
            "learning_rate": result["state"]["learning_rate"],
            "step": result["state"]["step"],
        }
        self._publish(coefs, intercepts)
        self._record_progress(result, best)
        self._warn_stop(result["stop"], incremental)
        if self.early_stopping:
            improved = (
                result["state"]["best_validation_score"]
                > engine_state["best_validation_score"]
            )
            self._restore_best(improved or result["stop"] == "diverged")

    def _dropout_config(self):
        """The engine's dropout: the rates, and a seed drawn from the estimator's
        random_state (only when a rate is positive, so that without dropout the
        random stream is scikit-learn's)."""
        rates = self._dropout_rates(len(self.coefs_) - 1)
        if not any(rates):
            return {}
        seed = int(self._random_state.randint(0, np.iinfo(np.int64).max))
        return {"dropout": rates, "dropout_seed": seed}

    def _optimizer_state_for(self, incremental, dtype):
        """The optimizer state to continue (partial_fit) or a new one, and whether it
        is new. As scikit-learn's ``_fit_stochastic``: ``fit`` always starts a new
        optimizer, ``partial_fit`` continues the one there is, even after the solver
        was changed."""
        state = getattr(self, "_optimizer_state", None)
        if not incremental or state is None or state["tensors"][0].dtype != dtype:
            return self._new_optimizer_state(dtype), True
        return state, False

    def _validation_split(self, X, y, sample_weight, validation, dtype):
        """The early-stopping split of scikit-learn's ``_fit_stochastic``
        (``train_test_split``, stratified for single-output classifiers), or the
        explicit validation data: the training part, and the validation part as the
        engine reads it (None without early stopping)."""
        if not self.early_stopping:
            return X, y, sample_weight, None
        if validation is not None:
            X_val, y_val, sw_val = validation
            _check_validation_set(X_val, sw_val, explicit=True)
            return X, y, sample_weight, _engine_validation(X_val, y_val, sw_val, dtype)
        should_stratify = is_classifier(self) and self.n_outputs_ == 1
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        split = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=y if should_stratify else None,
        )
        X_train, X_val, y_train, y_val = split[:4]
        sw_train, sw_val = split[4:] if sample_weight is not None else (None, None)
        _check_validation_set(X_val, sw_val)
        validation = _engine_validation(X_val, y_val, sw_val, dtype)
        return X_train, y_train, sw_train, validation

    def _batch_size(self, n_samples):
        """scikit-learn's batch-size rule: 'auto' is min(200, n), larger is clipped."""
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than "
                "sample size. It is going to be clipped"
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _engine_state(self, state):
        """The counters and optimizer scalars the engine continues from."""
        return {
            "t": int(self.t_),
            "loss": float(getattr(self, "loss_", np.nan)),
            "no_improvement_count": int(self._no_improvement_count),
            "best_loss": np.inf if self.best_loss_ is None else float(self.best_loss_),
            "best_validation_score": (
                -np.inf
                if self.best_validation_score_ is None
                else float(self.best_validation_score_)
            ),
            "learning_rate": float(state["learning_rate"]),
            "step": int(state["step"]),
        }

    def _record_progress(self, result, best):
        """The fitted attributes a stochastic fit updates, from the engine's result."""
        out = result["state"]
        self.n_iter_ = result["n_iter"]
        self.t_ = out["t"]
        # (NumPy floats, as scikit-learn's losses are: its sums are NumPy's)
        if result["n_iter"] > 0:
            self.loss_ = np.float64(out["loss"])
        self.loss_curve_ = self.loss_curve_ + [
            np.float64(v) for v in result["loss_curve"]
        ]
        self._no_improvement_count = out["no_improvement_count"]
        # Each mode's bookkeeping as _initialize leaves it: a warm start that switched
        # early stopping on or off (scikit-learn fails in its bookkeeping after an
        # epoch) starts the scores of its own mode afresh, and a later switch back
        # does not restore the weights of the earlier phase.
        if self.early_stopping:
            self.validation_scores_ = (self.validation_scores_ or []) + result[
                "validation_scores"
            ]
            self.validation_loss_curve_ = (
                getattr(self, "validation_loss_curve_", None) or []
            ) + result["validation_losses"]
            self.best_validation_score_ = out["best_validation_score"]
            self.best_loss_ = None
            n_layers = len(self.coefs_)
            self._best_coefs, self._best_intercepts = best[:n_layers], best[n_layers:]
        else:
            self.best_loss_ = np.float64(out["best_loss"])
            self.validation_scores_ = self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self._best_coefs = self._best_intercepts = None

    def _warn_stop(self, stop, incremental):
        if stop == "max_iter" and not incremental:
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) "
                "reached and the optimization hasn't converged yet." % self.max_iter,
                ConvergenceWarning,
            )
        elif stop == "interrupted":
            warnings.warn("Training interrupted by user.")
        elif stop == "diverged":
            warnings.warn(
                "Training diverged: the loss became %s in epoch %d. The model keeps "
                "the best weights early stopping found (validation score %f). The "
                "learning rate is probably too high for this data, or the features "
                "are not scaled: try a smaller learning_rate_init, or standardize X "
                "(e.g. with sklearn.preprocessing.StandardScaler)."
                % (
                    self.loss_curve_[-1],
                    len(self.loss_curve_),
                    self.best_validation_score_,
                ),
                ConvergenceWarning,
            )

    def _restore_best(self, improved):
        """The end of scikit-learn's ``_fit_stochastic`` with early stopping:
        ``coefs_`` become the best weights (the same lists, as in scikit-learn)."""
        if improved or not self._best_follows_training:
            self._publish(self._best_coefs, self._best_intercepts)
        else:
            self._best_coefs = self.coefs_
            self._best_intercepts = self.intercepts_

    def _best_params(self):
        if not self.early_stopping:
            return []
        if getattr(self, "_best_coefs", None) is None:
            # a model fitted without early stopping: its current weights
            return [p.copy() for p in self._params()]
        return self._best_coefs + self._best_intercepts

    def _callbacks(self):
        if self.callbacks is None:
            return []
        callbacks = (
            [self.callbacks] if callable(self.callbacks) else list(self.callbacks)
        )
        if not all(callable(c) for c in callbacks):
            # (checked before training: found after the first epoch, it cost one)
            raise InvalidParameterError(
                f"The 'callbacks' parameter of {type(self).__name__} must be None, a "
                f"callable or a list of callables. Got {self.callbacks!r} instead."
            )
        return callbacks

    def _epoch_reporter(self, n_samples):
        """The engine's per-epoch hook: verbose lines and user callbacks; None when
        there is nothing to do, so the engine never re-enters Python needlessly."""
        callbacks = self._callbacks()
        verbose = int(self.verbose)
        if not verbose and not callbacks:
            return None
        start = last = time.perf_counter()

        def on_epoch(epoch, loss, validation_score):
            nonlocal last
            now = time.perf_counter()
            if verbose:
                self._report_epoch(epoch, loss, validation_score)
            if verbose >= 2:
                took = now - last
                rate = n_samples / took if took > 0 else float("inf")
                print(f"  epoch time {took:.3f} s, {rate:,.0f} samples/s")
            last = now
            return _run_callbacks(callbacks, epoch, loss, validation_score, now - start)

        return on_epoch

    def _report_epoch(self, n_iter, loss, validation_score):
        print("Iteration %d, loss = %.8f" % (n_iter, loss))
        if validation_score is not None:
            print("Validation score: %f" % validation_score)

    def _report_plateau(self, early_stopping, decision, learning_rate):
        if not self.verbose:
            return
        what = "Validation score" if early_stopping else "Training loss"
        msg = "%s did not improve more than tol=%f for %d consecutive epochs." % (
            what,
            self.tol,
            self.n_iter_no_change,
        )
        if decision == "stop":
            print(msg + " Stopping.")
        elif decision == "rate_too_small":
            print(msg + " Learning rate too small. Stopping.")
        else:
            print(msg + " Setting learning rate to %f" % learning_rate)

    # -------------------------------------------------------------------- predict

    def _forward_pass_fast(self, X, check_input=True):
        # The serving path: a plain float array (or a plain DataFrame's values) skips
        # scikit-learn's generic validation (feature names, dataframe detection,
        # conversions), which costs several times the engine's work on a few rows; the
        # engine finds NaN and infinity in X from the first layer's products (no pass
        # of its own over X).
        values = self._served_values(X) if check_input else X
        served = check_input and values is not None
        if check_input and not served:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            values = X
        dtype = self._predict_dtype(values)
        params = _engine_params(self._params(), dtype)
        x = _engine_input(values, dtype)
        loss = _LOSS_OF_OUTPUT[self.out_activation_]
        n_jobs = _engine_int(self.n_jobs)
        out = _core.predict(x, params, self.activation, loss, n_jobs, served)
        if out is None:
            # NaN or infinity (or finite rows whose first-layer products overflowed):
            # scikit-learn's validation raises its own error, or lets X through
            # (finite, or under assume_finite=True) for the unchecked prediction
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            out = _core.predict(x, params, self.activation, loss, n_jobs)
        return out

    def _served_values(self, X):
        """X as the serving path reads it, or None when it takes the full path: a plain
        array (``_is_plain_input``) itself, or a plain DataFrame's values
        (``_plain_frame_values``)."""
        if self._is_plain_input(X):
            return X
        return self._plain_frame_values(X)

    def _plain_frame_values(self, X):
        """The values of a pandas DataFrame that scikit-learn's validation would turn
        into a plain array without a word, else None: a plain frame
        (``_frame_names_and_values``) whose columns are the fitted feature names, in
        order (``_check_feature_names`` then neither warns nor raises). Anything else
        (other names, mixed or extension dtypes, no rows) takes the full path, with
        its errors and warnings. A predict_proba of 10 rows from a DataFrame took ~580
        us, as scikit-learn's, for ~15 us of engine work."""
        frame = _frame_names_and_values(X)
        if frame is None or not self._fitted_names_are(frame[0]):
            return None
        return frame[1]

    def _fitted_names_are(self, columns):
        """Whether the model was fitted with feature names, ``columns`` (a list)."""
        names = self.__dict__.get("feature_names_in_")
        return names is not None and columns == names.tolist()

    def _is_plain_input(self, X):
        """Whether X is what scikit-learn's validation would pass through untouched
        and without a word: a plain array (``_is_plain_array``) of the fitted feature
        count, for a model fitted without feature names. Finiteness is left to the
        engine (or, in a fit, to ``_is_plain_training_input``)."""
        return (
            _is_plain_array(X)
            and X.shape[1] == self.__dict__.get("n_features_in_")
            and "feature_names_in_" not in self.__dict__
        )

    def _check_fitted(self):
        """check_is_fitted, without its cost when the weights are there."""
        if "coefs_" not in self.__dict__:
            check_is_fitted(self)

    def _predict_dtype(self, X):
        """Computed in the promoted dtype, as NumPy (and scikit-learn) would: a float32
        model given float64 data predicts in float64 rather than overflow."""
        dtype = self._dtype
        if X.dtype.kind in "fiub":
            dtype = np.result_type(X.dtype, dtype)
            if dtype not in (np.float32, np.float64):
                dtype = np.float64
        return dtype

    def hidden_activations(self, X, layer=-1):
        """The outputs of a hidden layer: the fitted network as a feature extractor.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data, validated as ``predict`` validates it.

        layer : int, default=-1
            Which hidden layer, 0-based among the hidden layers; negative values count
            from the last (-1, the default, is the last hidden layer).

        Returns
        -------
        activations : ndarray of shape (n_samples, hidden_layer_sizes[layer])
            The layer's outputs (after its activation function), in the model's dtype
            (or float64 for float64 X and a float32 model, as ``predict``).
        """
        model = self._snapshot()  # one fit's model, even while another publishes
        check_is_fitted(model)
        n_hidden = len(model.coefs_) - 1
        if isinstance(layer, bool) or not isinstance(layer, Integral):
            raise TypeError(f"layer must be an int, got {layer!r}.")
        if n_hidden == 0:
            raise ValueError(
                "The network has no hidden layers (hidden_layer_sizes=()), so it has "
                "no hidden activations."
            )
        if not -n_hidden <= layer < n_hidden:
            raise ValueError(
                f"layer={layer} is out of range: the network has {n_hidden} hidden "
                f"layer(s), so layer must be in [{-n_hidden}, {n_hidden - 1}]."
            )
        X = validate_data(model, X, accept_sparse=["csr", "csc"], reset=False)
        dtype = model._predict_dtype(X)
        params = _engine_params(model._params(), dtype)
        return _core.hidden_activations(
            _engine_input(X, dtype),
            params,
            model.activation,
            int(layer) % n_hidden,
            _engine_int(model.n_jobs),
        )

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    @abstractmethod
    def _validate_input(self, X, y, incremental, reset):
        """Validates X and y; returns y in the form the network trains on."""

    def _training_targets(self, y):
        """The validated y in the form the network trains on, and the output count."""
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        return y, y.shape[1]

    @abstractmethod
    def _predict(self, X, check_input=True):
        """Predictions without (or with) input validation."""

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ---------------------------------------------------------- interoperability

    def to_sklearn(self):
        """The equivalent fitted scikit-learn estimator.

        It holds copies of this model's parameters, fitted attributes and optimizer
        state: it predicts the same, and its ``partial_fit`` continues the same
        trajectory. Use it to deploy where only scikit-learn is installed, or to export
        through tools that know scikit-learn's MLPs (e.g. skl2onnx).

        Returns
        -------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            A fitted scikit-learn estimator.
        """
        return _convert.to_sklearn(self._snapshot(), self._sklearn_class)

    @classmethod
    def from_sklearn(cls, estimator):
        """Build an mlp_rs estimator from a fitted scikit-learn one.

        Parameters
        ----------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            A fitted estimator of the matching kind.

        Returns
        -------
        estimator : MLPClassifier or MLPRegressor
            The same model as an mlp_rs estimator (``n_jobs`` and ``callbacks`` at
            their defaults).
        """
        if not isinstance(estimator, cls._sklearn_class):
            raise TypeError(
                f"{cls.__name__}.from_sklearn expects a fitted "
                f"sklearn.neural_network.{cls._sklearn_class.__name__}, got "
                f"{type(estimator).__name__}"
            )
        return _convert.from_sklearn(cls, estimator)

    # --------------------------------------------------------------- persistence

    def __getstate__(self):
        # a copy: BaseEstimator may hand back the instance's own __dict__
        state = dict(super().__getstate__())
        state["_mlp_rs_version"] = __version__
        if state.get("callbacks") is not None:
            try:
                pickle.dumps(state["callbacks"])
            except Exception as exc:
                # A lambda or a progress bar: the model is what matters in a pickle.
                warnings.warn(
                    f"The callbacks of this {type(self).__name__} cannot be pickled "
                    f"({type(exc).__name__}: {exc}); the pickle leaves them out "
                    "(callbacks=None when loaded). The model and its other parameters "
                    "are kept.",
                    UserWarning,
                )
                state["callbacks"] = None
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_mlp_rs_version", None)
        if saved is not None and saved.split(".")[:2] != __version__.split(".")[:2]:
            fitted = any(k.endswith("_") and not k.startswith("__") for k in state)
            missing = [
                name
                for name in self._fitted_state_names()
                if fitted and name not in state
            ]
            if missing:
                raise ValueError(
                    f"This {type(self).__name__} was pickled by mlp_rs {saved} and "
                    f"cannot be loaded by mlp_rs {__version__}: its state lacks "
                    f"{missing}. Refit it with mlp_rs {__version__}."
                )
            warnings.warn(
                f"Loading a {type(self).__name__} pickled by mlp_rs {saved} with "
                f"mlp_rs {__version__}; it may behave differently. Refit or re-save "
                "it to silence this warning.",
                UserWarning,
            )
        super().__setstate__(state)

    def _fitted_state_names(self):
        return ["coefs_", "intercepts_", "n_layers_", "n_outputs_", "out_activation_"]
