# Forward-mode input Jacobians (nnfast/_forward_mode.pyx).
from cython cimport floating

from nnfast._kernels cimport ActParams
from nnfast._network cimport NetLayout


cdef Py_ssize_t forward_mode_rows(const NetLayout* net, Py_ssize_t n) noexcept nogil
cdef Py_ssize_t forward_workspace_size(const NetLayout* net, Py_ssize_t rows) noexcept nogil
cdef void activation_tangents(int code, floating* dA, const floating* Z, const floating* A,
                              const floating* dZ, Py_ssize_t t, Py_ssize_t m,
                              const ActParams* p) noexcept nogil
cdef void network_input_grad_forward(const NetLayout* net, const floating* params,
                                     const floating* X, floating* J, Py_ssize_t m,
                                     Py_ssize_t n, Py_ssize_t rows,
                                     floating* ws) noexcept nogil
cdef void input_grad_forward_rows(const NetLayout* net, const floating* params,
                                  const floating* X, floating* J, Py_ssize_t m, Py_ssize_t n,
                                  Py_ssize_t rows, floating* ws) noexcept nogil
