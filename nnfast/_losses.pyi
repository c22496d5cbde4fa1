"""Compiled loss kernels (cimport only) and the clipping range of the gaussian_nll
log-variance."""

GAUSSIAN_NLL_LOG_VAR_RANGE: tuple[float, float]
