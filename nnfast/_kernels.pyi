"""Compiled kernels (cimport them: nnfast/_kernels.pxd) and their process-wide settings:
the code path of each kernel family and the BLAS threshold. The Python entry points of the
kernels are in nnfast._kernel_entry."""

import enum

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

SIMD_PATHS: tuple[str, ...]
KERNEL_FAMILIES: tuple[str, ...]

BASELINE_FMA: bool
CACHE_LINE_BYTES: int

def set_blas_min_flops(flops: int) -> int: ...
def _row_step_runs() -> bool: ...
def _set_row_step(enabled: bool) -> bool:
    """Let batch-1 SGD take the one-call step (the default) or not; returns the old setting."""

def set_simd_path(name: str) -> str:
    """Limit every kernel family to code paths up to name; returns the previous setting."""

def simd_paths() -> dict[str, str]: ...
def cpu_info() -> dict[str, object]: ...

AVX512_UNIT_WIDTHS: tuple[int, ...]

def set_avx512_units(bits: int | None) -> int | None:
    """Plan the AVX-512 products for units of bits (256 or 512; None: as detected)."""

def avx512_units() -> int | None: ...
