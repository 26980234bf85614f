"""scikit-learn's parameter validation, remembered.

``BaseEstimator._validate_params`` runs at every ``fit`` (and at a first
``partial_fit``): ``get_params`` (an ``inspect.signature`` of ``__init__``) and
``validate_parameter_constraints``, generic checks of every parameter against every
constraint. That took ~0.2 ms a fit, and ~1 ms after an idle moment (cold caches), a
twentieth of a 20-epoch fit on digits (``bench/profile.md``, C4). Its verdict depends
only on the parameters' values and types, so a set of values it accepted is remembered
(per class) and not checked again; anything it rejects is checked, and raises, every
time, and values that cannot be compared safely (arrays, dicts, objects compared by
identity) are always checked.
"""

import functools

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import validate_parameter_constraints

# Parameter sets accepted, per estimator class; cleared when full (a grid search
# trying many values).
_MAX_REMEMBERED = 64
_ACCEPTED = {}


@functools.cache
def param_names(cls):
    """``BaseEstimator._get_param_names`` of ``cls`` (the sorted names of its
    ``__init__``'s parameters), computed once per class: it inspects the signature on
    every call."""
    return tuple(BaseEstimator._get_param_names.__func__(cls))


class _Unhashable(Exception):
    pass


def _frozen(value):
    """A hashable image of ``value`` equal to another's only when both hold equal
    values of the same types all the way down (``True`` is not ``1``, ``(1,)`` is not
    ``[1]``); raises ``_Unhashable`` for values that have none: unhashable ones, and
    objects compared by identity (a ``RandomState``) and callables (a callback), which
    the cache would keep alive."""
    kind = type(value)
    if value is None:
        return kind, None
    if kind is tuple or kind is list:
        return kind, tuple(_frozen(v) for v in value)
    if kind.__hash__ is None or kind.__hash__ is object.__hash__ or callable(value):
        raise _Unhashable
    try:
        hash(value)
        equal = bool(value == value)
    except Exception:
        raise _Unhashable from None
    if not equal:
        # (NaN: never found again; checked every time)
        raise _Unhashable
    return kind, value


def params_key(params):
    """The image of a ``get_params(deep=False)`` dict, or None when a value has none."""
    try:
        return tuple((name, _frozen(value)) for name, value in params.items())
    except _Unhashable:
        return None


def validate_params(estimator):
    """``BaseEstimator._validate_params``, skipped for a set of parameter values the
    estimator's class accepted before."""
    cls = type(estimator)
    params = estimator.get_params(deep=False)
    key = params_key(params)
    accepted = _ACCEPTED.setdefault(cls, set())
    if key is not None and key in accepted:
        return
    validate_parameter_constraints(
        estimator._parameter_constraints, params, caller_name=cls.__name__
    )
    if key is not None:
        if len(accepted) >= _MAX_REMEMBERED:
            accepted.clear()
        accepted.add(key)
