"""Python-visible entry points of the compiled kernels (inputs are NOT validated here:
use nnfast.kernels). Arrays are C-contiguous and of one dtype, float32 or float64."""

import enum

import numpy as np
import numpy.typing as npt

_F = npt.NDArray[np.floating]

# The one definition of the codes is nnfast/_kernels.pxd (nnfast._spec maps names to them).
class Activation(enum.IntEnum):
    ACT_IDENTITY = 0
    ACT_SIGMOID = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_ELU = 5
    ACT_MAXOUT = 6
    ACT_SOFTMAX = 7
    ACT_EXP = 8

class Loss(enum.IntEnum):
    LOSS_MSE = 0
    LOSS_CROSS_ENTROPY = 1
    LOSS_BINARY_CROSS_ENTROPY = 2
    LOSS_POISSON = 3
    LOSS_GAUSSIAN_NLL = 4

def matvec_into(y: _F, A: _F, x: _F) -> None: ...
def matmul_into(C: _F, A: _F, B: _F) -> None: ...
def dense_forward_into(out: _F, Z: _F, X: _F, W: _F, b: _F, activation: int,
                       leaky_slope: float, elu_alpha: float, pieces: int) -> None: ...
def activation_forward_into(activation: int, A: _F, Z: _F, leaky_slope: float,
                            elu_alpha: float, pieces: int) -> None: ...
def activation_backward_into(activation: int, dZ: _F, Z: _F, A: _F, dA: _F,
                             leaky_slope: float, elu_alpha: float, pieces: int) -> None: ...
def loss_delta_into(loss: int, output_activation: int, dZ: _F, Z: _F, A: _F, Y: _F,
                    w: _F | None, inv_weight_sum: float) -> float:
    """Y has half the columns of Z for gaussian_nll."""
def sgd_update_into(params: _F, velocity: _F, grad: _F, lr: float, momentum: float,
                    nesterov: bool) -> None: ...
def adam_update_into(params: _F, m: _F, v: _F, grad: _F, lr_t: float, beta1: float,
                     beta2: float, eps: float) -> None: ...
def rprop_update_into(params: _F, step: _F, prev_grad: _F, grad: _F, eta_plus: float,
                      eta_minus: float, step_min: float, step_max: float) -> None: ...

GAUSSIAN_NLL_LOG_VAR_RANGE: tuple[float, float]
FASTMATH_FUNCTIONS: tuple[str, ...]
SIMD_PATHS: tuple[str, ...]
KERNEL_FAMILIES: tuple[str, ...]

def fastmath_into(name: str, out: _F, x: _F, alpha: float = ...) -> None: ...
def set_blas_min_flops(flops: int) -> int: ...
def set_simd_path(name: str) -> str:
    """Limit every kernel family to code paths up to name; returns the previous setting."""
def simd_paths() -> dict[str, str]: ...
def cpu_info() -> dict[str, object]: ...
def all_finite(x: _F) -> bool: ...
