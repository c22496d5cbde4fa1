"""The compiled, GIL-free L-BFGS (inputs of fit_lbfgs validated by the caller)."""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from nnfast._network import Layout

_F = npt.NDArray[np.floating]

STOP_REASONS: tuple[str, ...]
DEFAULT_FTOL: float

class MinimizeResult(NamedTuple):
    x: npt.NDArray[np.float64]
    fun: float
    jac: npt.NDArray[np.float64]
    nit: int
    nfev: int
    stop_reason: str

def fit_lbfgs(
    layout: Layout,
    params: _F,
    X: _F,
    Y: _F,
    w: _F | None,
    loss: int,
    inv_weight_sum: float,
    l2: float,
    max_iter: int,
    max_fun: int,
    gtol: float,
    ftol: float,
    memory: int,
    losses: npt.NDArray[np.float64],
    iteration_end: Callable[[int, float], bool | None] | None = None,
    n_threads: int = 1,
) -> tuple[int, int, int, float]: ...
def minimize(
    fun: Callable[[npt.NDArray[np.float64]], tuple[float, npt.ArrayLike]],
    x0: npt.ArrayLike,
    *,
    max_iter: int = 15000,
    max_fun: int = 15000,
    gtol: float = 1e-5,
    ftol: float = ...,
    memory: int = 10,
    max_line_search: int = 20,
    callback: Callable[[npt.NDArray[np.float64], float], bool | None] | None = None,
) -> MinimizeResult: ...
