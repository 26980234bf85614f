"""Types of the compiled engine module (``src/python/``)."""

from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "fit_stochastic",
    "loss_and_gradient",
    "predict",
    "hidden_activations",
    "cpu_level",
    "bf16_kernel",
    "__version__",
]

__version__: str

_Float = np.float32 | np.float64
_Dense = NDArray[Any]
# (data, indices as int32 or int64, indptr as int64, n_features) of a CSR matrix
_Indices = NDArray[np.int32] | NDArray[np.int64]
_Csr = tuple[NDArray[Any], _Indices, NDArray[np.int64], int]
# targets: n x n_outputs floats of the model's dtype, or n int64 class indices
_Targets = NDArray[Any]

class _State(TypedDict):
    t: int
    loss: float
    no_improvement_count: int
    best_loss: float
    best_validation_score: float
    learning_rate: float
    step: int

class _ObjectiveConfig(TypedDict):
    units: list[int]
    activation: str
    loss: str
    huber_delta: float
    alpha: float
    n_jobs: int | None

class _FitConfig(_ObjectiveConfig):
    batch_size: int
    solver: str
    learning_rate: str
    learning_rate_init: float
    power_t: float
    momentum: float
    nesterovs_momentum: bool
    beta_1: float
    beta_2: float
    epsilon: float
    max_iter: int
    tol: float
    n_iter_no_change: float
    shuffle: bool
    early_stopping: bool
    incremental: bool
    score: str
    dropout: list[float]
    dropout_seed: int
    # None (exact products) or "bfloat16"
    matmul_precision: str | None

class _FitResult(TypedDict):
    loss_curve: list[float]
    validation_scores: list[float]
    validation_losses: list[float]
    stop: str
    n_iter: int
    threads: int
    state: _State

def fit_stochastic(
    x: _Dense | _Csr,
    y: _Targets,
    sample_weight: _Dense | None,
    validation: tuple[_Dense | _Csr, _Targets, _Dense | None] | None,
    params: Sequence[_Dense],
    optimizer_state: Sequence[_Dense],
    best: Sequence[_Dense],
    config: _FitConfig,
    state: _State,
    shuffle: Callable[[], NDArray[np.int64]] | None = None,
    on_epoch: Callable[[int, float, float | None], object] | None = None,
    on_plateau: Callable[[bool, str, float | None], object] | None = None,
    shuffle_state: NDArray[np.uint32] | None = None,
) -> _FitResult: ...
def loss_and_gradient(
    x: _Dense | _Csr,
    y: _Targets,
    sample_weight: _Dense | None,
    packed: _Dense,
    config: _ObjectiveConfig,
) -> tuple[float, _Dense]: ...
def predict(
    x: _Dense | _Csr,
    params: Sequence[_Dense],
    activation: str,
    loss: str,
    n_jobs: int | None = None,
    check_finite: bool = False,
) -> _Dense | None: ...
def hidden_activations(
    x: _Dense | _Csr,
    params: Sequence[_Dense],
    activation: str,
    layer: int,
    n_jobs: int | None = None,
) -> _Dense: ...
def cpu_level() -> str: ...
def bf16_kernel() -> str: ...
