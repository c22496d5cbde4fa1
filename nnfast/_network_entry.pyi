"""The Python entry points to the network passes (inputs validated by nnfast.network)."""

import numpy as np
import numpy.typing as npt

from nnfast._network import Layout

_F = npt.NDArray[np.floating]

def predict(layout: Layout, params: _F, X: _F, out: _F, n_threads: int = 1) -> None: ...
def predict_small(layout: Layout, params: _F, X: object) -> _F | None: ...
def input_grad(
    layout: Layout, params: _F, X: _F, J: _F, mode: str = "auto", n_threads: int = 1
) -> None: ...
def loss(
    layout: Layout,
    params: _F,
    X: _F,
    Y: _F,
    w: _F | None,
    loss: int,
    inv_weight_sum: float,
    l2: float = 0.0,
    n_threads: int = 1,
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
    n_threads: int = 1,
) -> float: ...
