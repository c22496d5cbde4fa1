"""Python-visible entry points of the compiled kernels (inputs are NOT validated here:
use nnfast.kernels). Arrays are C-contiguous and of one dtype, float32 or float64."""

import numpy as np
import numpy.typing as npt

_F = npt.NDArray[np.floating]

def matvec_into(y: _F, A: _F, x: _F) -> None: ...
def matmul_into(C: _F, A: _F, B: _F) -> None: ...
def dense_forward_into(
    out: _F,
    Z: _F,
    X: _F,
    W: _F,
    b: _F,
    activation: int,
    leaky_slope: float,
    elu_alpha: float,
    pieces: int,
) -> None: ...
def activation_forward_into(
    activation: int, A: _F, Z: _F, leaky_slope: float, elu_alpha: float, pieces: int
) -> None: ...
def activation_backward_into(
    activation: int, dZ: _F, Z: _F, A: _F, dA: _F, leaky_slope: float, elu_alpha: float, pieces: int
) -> None: ...
def loss_delta_into(
    loss: int,
    output_activation: int,
    dZ: _F,
    Z: _F,
    A: _F,
    Y: _F,
    w: _F | None,
    inv_weight_sum: float,
) -> float:
    """Y has half the columns of Z for gaussian_nll."""

def sgd_update_into(
    params: _F, velocity: _F, grad: _F, lr: float, momentum: float, nesterov: bool
) -> None: ...
def adam_update_into(
    params: _F, m: _F, v: _F, grad: _F, lr_t: float, beta1: float, beta2: float, eps: float
) -> None: ...
def rprop_update_into(
    params: _F,
    step: _F,
    prev_grad: _F,
    grad: _F,
    eta_plus: float,
    eta_minus: float,
    step_min: float,
    step_max: float,
) -> None: ...

FASTMATH_FUNCTIONS: tuple[str, ...]

def fastmath_into(name: str, out: _F, x: _F, alpha: float = ...) -> None: ...
def all_finite(x: _F) -> bool: ...
