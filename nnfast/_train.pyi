"""The GIL-free training driver (inputs validated by nnfast.network)."""

from typing import Callable

import numpy as np
import numpy.typing as npt

from nnfast._network import Layout

_F = npt.NDArray[np.floating]

OPTIMIZER_CODES: dict[str, int]
HYPER_FIELDS: tuple[str, ...]

def train(layout: Layout, params: _F, X: _F, Y: _F, w: _F | None,
          order: npt.NDArray[np.intp], gather: bool, batch_size: int, epochs: int,
          loss: int, optimizer: int, nesterov: bool, hyper: npt.NDArray[np.float64],
          state1: _F, state2: _F, step: npt.NDArray[np.longlong], backup: _F,
          epoch_end: Callable[[int, float], bool | None] | None,
          losses: npt.NDArray[np.float64] | None = None,
          rule: npt.NDArray[np.float64] | None = None,
          rng: np.random.RandomState | None = None) -> int: ...
def shuffle_like_sklearn(rng: np.random.RandomState, order: npt.NDArray[np.intp]) -> None: ...
