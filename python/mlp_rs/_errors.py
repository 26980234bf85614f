"""Exceptions of mlp_rs's own that the engine raises."""


class ZeroWeightBatchError(ValueError, ZeroDivisionError):
    """A mini-batch whose sample weights sum to zero: it has no loss to minimise.

    A ValueError (the message names the batch and what to change), and the
    ZeroDivisionError that scikit-learn raises there (dividing by the batch's weight
    sum), so that code written for either catches it.
    """
