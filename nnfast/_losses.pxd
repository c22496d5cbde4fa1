# Compiled loss kernels of nnfast (nnfast/_losses.pyx): `noexcept nogil`, unchecked, on raw
# C-contiguous buffers of one floating type, like those of nnfast/_kernels.pxd (which holds
# the loss codes and loss_target_width).
from cython cimport floating

from nnfast._kernels cimport ActParams

cdef double gaussian_nll_delta(floating* dZ, const floating* Z, const floating* Y,
                               const floating* w, Py_ssize_t n, Py_ssize_t m,
                               double inv_weight_sum) noexcept nogil
cdef double loss_delta(int loss, int output_activation, floating* dZ, const floating* Z,
                       const floating* A, const floating* Y, const floating* w,
                       Py_ssize_t n, Py_ssize_t m, double inv_weight_sum,
                       const ActParams* p) noexcept nogil
cdef double l2_penalty(floating* grad, const floating* W, Py_ssize_t size,
                       double l2) noexcept nogil
