"""Sparse rows for the compiled loops: CSR checks, the row gather, the full-batch loss."""

from typing import Protocol

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

from nnfast._network import Layout

_F = npt.NDArray[np.floating]

class _SparseRows(Protocol):
    @property
    def data(self) -> _F: ...
    @property
    def indices(self) -> npt.NDArray[np.intp]: ...
    @property
    def indptr(self) -> npt.NDArray[np.intp]: ...
    @property
    def shape(self) -> tuple[int, int]: ...

@disjoint_base
class CsrSource:
    @property
    def matrix(self) -> _SparseRows: ...
    def __new__(cls, matrix: _SparseRows, double_values: bool, name: str) -> CsrSource: ...

def loss_and_grad(
    layout: Layout,
    params: _F,
    X: _SparseRows,
    Y: _F,
    w: _F | None,
    loss: int,
    inv_weight_sum: float,
    grad: _F | None = None,
    l2: float = 0.0,
) -> float: ...
