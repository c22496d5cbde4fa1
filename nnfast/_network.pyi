"""Forward/backward passes over a layer stack (inputs validated by nnfast.network)."""

import numpy as np
import numpy.typing as npt

from nnfast._spec import NetworkSpec

_F = npt.NDArray[np.floating]

class Layout:
    spec: NetworkSpec
    def __init__(self, spec: NetworkSpec) -> None: ...
    @property
    def workspace_per_row(self) -> int: ...
    def workspace_size(self, rows: int) -> int: ...

def predict(layout: Layout, params: _F, X: _F, out: _F) -> None: ...
def loss(layout: Layout, params: _F, X: _F, Y: _F, w: _F | None, loss: int,
         inv_weight_sum: float) -> float: ...
def loss_and_grad(layout: Layout, params: _F, X: _F, Y: _F, w: _F | None, loss: int,
                  inv_weight_sum: float, grad: _F | None = None) -> float: ...
