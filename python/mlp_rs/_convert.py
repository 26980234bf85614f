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
    if state is not None:
        # the optimizer as it was created (its solver and settings: see
        # _optimizer_settings), which scikit-learn's partial_fit continues
        settings = {**est._optimizer_settings(), **state.get("settings", {})}
        params_list = sk.coefs_ + sk.intercepts_
        n = len(params_list)
        tensors = [np.array(t) for t in state["tensors"]]
        if state["solver"] == "sgd":
            opt = SGDOptimizer(
                params_list,
                settings["learning_rate_init"],
                settings["learning_rate"],
                settings["momentum"],
                settings["nesterovs_momentum"],
                settings["power_t"],
            )
            opt.velocities = tensors
        else:
            opt = AdamOptimizer(
                params_list,
                settings["learning_rate_init"],
                settings["beta_1"],
                settings["beta_2"],
                settings["epsilon"],
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
    # the settings the optimizer was created with (the others are unused by it)
    settings = est._optimizer_settings()
    if isinstance(opt, SGDOptimizer):
        tensors, solver, step = opt.velocities, "sgd", 0
        settings.update(
            learning_rate_init=float(opt.learning_rate_init),
            learning_rate=opt.lr_schedule,
            momentum=float(opt.momentum),
            nesterovs_momentum=bool(opt.nesterov),
            power_t=float(opt.power_t),
        )
    elif isinstance(opt, AdamOptimizer):
        tensors, solver, step = list(opt.ms) + list(opt.vs), "adam", opt.t
        settings.update(
            learning_rate_init=float(opt.learning_rate_init),
            beta_1=float(opt.beta_1),
            beta_2=float(opt.beta_2),
            epsilon=float(opt.epsilon),
        )
    else:
        return est
    est._optimizer_state = {
        "solver": solver,
        "settings": settings,
        "learning_rate": float(opt.learning_rate),
        "step": int(step),
        "tensors": [np.array(t) for t in tensors],
    }
    return est
