"""Forward/backward passes over a layer stack (inputs validated by nnfast.network)."""

import numpy as np
import numpy.typing as npt
from typing_extensions import Self, disjoint_base

from nnfast._spec import NetworkSpec

_F = npt.NDArray[np.floating]

@disjoint_base
class Layout:
    spec: NetworkSpec
    def __new__(cls, spec: NetworkSpec) -> Self: ...
    @property
    def workspace_per_row(self) -> int: ...
    def workspace_size(self, rows: int) -> int: ...

def predict(layout: Layout, params: _F, X: _F, out: _F) -> None: ...
def input_grad(layout: Layout, params: _F, X: _F, J: _F, mode: str = "auto") -> None: ...
def loss(
    layout: Layout,
    params: _F,
    X: _F,
    Y: _F,
    w: _F | None,
    loss: int,
    inv_weight_sum: float,
    l2: float = 0.0,
) -> float: ...
def loss_and_grad(
    layout: Layout,
    params: _F,
    X: _F,
    Y: _F,
    w: _F | None,
    loss: int,
    inv_weight_sum: float,
    grad: _F | None = None,
    l2: float = 0.0,
) -> float: ...
