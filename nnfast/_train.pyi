"""The GIL-free training driver (inputs validated by nnfast.network; called by nnfast._solvers)."""

import enum
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

from nnfast._csr import _SparseRows
from nnfast._network import Layout

_F = npt.NDArray[np.floating]

class Optimizer(enum.IntEnum):
    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RPROP = 2

@disjoint_base
class Hyperparameters:
    @property
    def optimizer(self) -> int: ...
    nesterov: bool
    lr: float
    momentum: float
    beta1: float
    beta2: float
    eps: float
    eta_plus: float
    eta_minus: float
    step_min: float
    step_max: float
    def __init__(
        self,
        optimizer: int,
        *,
        lr: float,
        nesterov: bool = False,
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        eta_plus: float = 1.2,
        eta_minus: float = 0.5,
        step_min: float = 1e-6,
        step_max: float = 50.0,
    ) -> None: ...

@disjoint_base
class Objective:
    @property
    def loss(self) -> int: ...
    loss_scale: float
    l2: float
    l2_batch_scaled: bool
    def __init__(
        self, loss: int, *, loss_scale: float = 1.0, l2: float = 0.0, l2_batch_scaled: bool = False
    ) -> None: ...

@disjoint_base
class StoppingRule:
    tol: float
    patience: float
    best: float
    count: int
    def __init__(self, tol: float, patience: float, best: float = ..., count: int = 0) -> None: ...
    def update(self, value: float) -> bool: ...
    @property
    def fired(self) -> bool: ...

class _TrainingData(Protocol):
    @property
    def X(self) -> _F | _SparseRows: ...
    @property
    def Y(self) -> _F: ...
    @property
    def w(self) -> _F | None: ...
    @property
    def order(self) -> npt.NDArray[np.intp] | None: ...

class _OptimizerState(Protocol):
    @property
    def hyperparameters(self) -> Hyperparameters: ...
    @property
    def buffers(self) -> Mapping[str, _F]: ...
    @property
    def step(self) -> npt.NDArray[np.longlong]: ...

def train(
    layout: Layout,
    params: _F,
    data: _TrainingData,
    objective: Objective,
    optimizer: _OptimizerState,
    batch_size: int,
    epochs: int,
    backup: _F,
    epoch_end: Callable[[int, float], bool | None] | None = None,
    losses: npt.NDArray[np.float64] | None = None,
    rule: StoppingRule | None = None,
    rng: np.random.RandomState | None = None,
    n_threads: int = 1,
) -> int: ...
def shuffle_like_sklearn(rng: np.random.RandomState, order: npt.NDArray[np.intp]) -> None: ...
