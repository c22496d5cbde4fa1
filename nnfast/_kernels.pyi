"""Compiled kernels (cimport them: nnfast/_kernels.pxd) and their process-wide settings:
the code path of each kernel family and the BLAS threshold. The Python entry points of the
kernels are in nnfast._kernel_entry."""

SIMD_PATHS: tuple[str, ...]
KERNEL_FAMILIES: tuple[str, ...]

def set_blas_min_flops(flops: int) -> int: ...
def set_simd_path(name: str) -> str:
    """Limit every kernel family to code paths up to name; returns the previous setting."""
def simd_paths() -> dict[str, str]: ...
def cpu_info() -> dict[str, object]: ...
