"""Rust-accelerated, scikit-learn compatible multilayer perceptrons.

Swap ``from sklearn.neural_network import MLPClassifier`` for
``from mlp_rs import MLPClassifier``: same parameters, same fitted attributes, same
results, trained by a multithreaded Rust engine with the GIL released.
"""

from importlib.metadata import PackageNotFoundError, version

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

try:
    __version__ = version("mlp_rs")
except PackageNotFoundError:  # running from a source tree without metadata
    from ._core import __version__

__all__ = ["MLPClassifier", "MLPRegressor", "__version__"]
