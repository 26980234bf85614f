"""Conversion to and from fitted scikit-learn estimators.

Both libraries keep a model in the same attributes, so conversion copies the fitted
state across: parameters, counters, label binarizer and the optimizer's state (so that
`partial_fit` continues where it stopped on either side).
"""

import copy

import numpy as np
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.utils.validation import check_is_fitted

# Fitted attributes that mean the same in both libraries (copied when present).
_SHARED_ATTRIBUTES = (
    "n_iter_",
    "t_",
    "n_outputs_",
    "n_layers_",
    "out_activation_",
    "n_features_in_",
    "feature_names_in_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "classes_",
    "_label_binarizer",
    "_no_improvement_count",
)
_OURS_ONLY_PARAMETERS = (
    "n_jobs",
    "callbacks",
    "class_weight",
    "dropout",
    "huber_delta",
    "matmul_precision",
)


def _copy_state(source, target):
    for name in _SHARED_ATTRIBUTES:
        if hasattr(source, name):
            setattr(target, name, copy.deepcopy(getattr(source, name)))
    target.coefs_ = [np.array(c) for c in source.coefs_]
    target.intercepts_ = [np.array(b) for b in source.intercepts_]
    best = getattr(source, "_best_coefs", None)
    if best is not None:
        target._best_coefs = [np.array(c) for c in source._best_coefs]
        target._best_intercepts = [np.array(b) for b in source._best_intercepts]
    else:
        # (mlp_rs keeps them only with early stopping; scikit-learn always has them)
        target._best_coefs = [np.array(c) for c in source.coefs_]
        target._best_intercepts = [np.array(b) for b in source.intercepts_]


def to_sklearn(est, sklearn_class):
    """A fitted `sklearn_class` equal to the fitted mlp_rs estimator `est`."""
    check_is_fitted(est)
    params = est.get_params(deep=False)
    if params.get("loss") in ("absolute_error", "huber"):
        raise ValueError(
            f"scikit-learn's MLPRegressor has no loss={params['loss']!r}, so it cannot "
            "continue this model's training. Its predictions need only the weights: "
            "for a model that predicts the same, convert "
            "est.set_params(loss='squared_error')."
        )
    for name in _OURS_ONLY_PARAMETERS:
        params.pop(name, None)
    sk = sklearn_class(**params)
    _copy_state(est, sk)
    state = getattr(est, "_optimizer_state", None)
    if state is not None and state["solver"] == est.solver:
        params_list = sk.coefs_ + sk.intercepts_
        n = len(params_list)
        tensors = [np.array(t) for t in state["tensors"]]
        if state["solver"] == "sgd":
            opt = SGDOptimizer(
                params_list,
                est.learning_rate_init,
                est.learning_rate,
                est.momentum,
                est.nesterovs_momentum,
                est.power_t,
            )
            opt.velocities = tensors
        else:
            opt = AdamOptimizer(
                params_list, est.learning_rate_init, est.beta_1, est.beta_2, est.epsilon
            )
            opt.ms, opt.vs, opt.t = tensors[:n], tensors[n:], state["step"]
        opt.learning_rate = state["learning_rate"]
        sk._optimizer = opt
    return sk


def from_sklearn(cls, sk):
    """An mlp_rs estimator of class `cls` equal to the fitted scikit-learn `sk`."""
    check_is_fitted(sk)
    est = cls(**sk.get_params(deep=False))
    _copy_state(sk, est)
    opt = getattr(sk, "_optimizer", None)
    if isinstance(opt, SGDOptimizer):
        tensors, solver, step = opt.velocities, "sgd", 0
    elif isinstance(opt, AdamOptimizer):
        tensors, solver, step = list(opt.ms) + list(opt.vs), "adam", opt.t
    else:
        return est
    est._optimizer_state = {
        "solver": solver,
        "learning_rate": float(opt.learning_rate),
        "step": int(step),
        "tensors": [np.array(t) for t in tensors],
    }
    return est
