# Forward and backward passes over a stack of dense layers, on raw buffers.
from cython cimport floating

from nnfast._kernels cimport ActParams


cdef struct Layer:
    Py_ssize_t n_in
    Py_ssize_t n_out
    Py_ssize_t width        # pre-activation columns: n_out * pieces (maxout), else n_out
    Py_ssize_t w_offset     # W (n_in, width) starts here in the flat parameter buffer
    Py_ssize_t b_offset     # b (width,) starts here
    Py_ssize_t z_offset     # Z (rows, width) starts at ws + rows * z_offset
    Py_ssize_t a_offset     # A (rows, n_out) starts at ws + rows * a_offset (== z for identity)
    int activation


cdef struct NetLayout:
    Layer* layers
    Py_ssize_t n_layers
    Py_ssize_t n_in
    Py_ssize_t n_out
    Py_ssize_t n_params
    Py_ssize_t scratch_offset   # two scratch blocks (rows, max_width) for backward
    Py_ssize_t max_width
    Py_ssize_t ws_per_row       # workspace elements needed per batch row
    Py_ssize_t ws_fixed         # plus these per thread, whatever the rows: a transposed W
    ActParams act


cdef class Layout:
    """The C layer table of one network, built once from its NetworkSpec."""
    cdef NetLayout c
    cdef readonly object spec


cdef inline void share(Py_ssize_t total, Py_ssize_t align, int rank, int size,
                       Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
    """[start, end): rank's share of range(total) split into `size` contiguous parts as even
    as blocks of `align` (a power of two) allow, the last ending at total; `align` is
    halved (down to 1) until there are at least two blocks per part, so that 20 rows on
    two threads split 12 + 8, not 16 + 4. Some parts may be empty."""
    cdef Py_ssize_t units, base, extra, first
    while align > 1 and (total + align - 1) // align < 2 * size:
        align //= 2
    units = (total + align - 1) // align
    base, extra = units // size, units % size
    first = rank * base + min(rank, extra)
    start[0] = min(first * align, total)
    end[0] = min((first + base + (1 if rank < extra else 0)) * align, total)


cdef Py_ssize_t workspace_size(const NetLayout* net, Py_ssize_t rows) noexcept nogil
cdef floating* network_forward(const NetLayout* net, const floating* params,
                               const floating* X, Py_ssize_t n, Py_ssize_t rows,
                               floating* ws, floating* final=*) noexcept nogil
cdef floating* forward_rows(const NetLayout* net, const floating* params, const floating* X,
                            Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t rows, floating* ws,
                            floating* final) noexcept nogil
cdef double network_loss_grad(const NetLayout* net, const floating* params,
                              const floating* X, const floating* Y, const floating* w,
                              Py_ssize_t n, Py_ssize_t rows, double inv_weight_sum, int loss,
                              floating* grad, bint accumulate, floating* ws) noexcept nogil
cdef void network_backward(const NetLayout* net, const floating* params, const floating* X,
                           Py_ssize_t n, Py_ssize_t rows, floating* ws, floating* grad,
                           bint accumulate, floating* dX) noexcept nogil
cdef void backward_part(const NetLayout* net, const floating* params, const floating* X,
                        Py_ssize_t n, Py_ssize_t rows, floating* ws, floating* grad,
                        bint accumulate, floating* dX, int rank, int size) noexcept nogil
cdef Py_ssize_t input_grad_workspace_size(const NetLayout* net,
                                          Py_ssize_t rows) noexcept nogil
cdef void network_input_grad(const NetLayout* net, const floating* params,
                             const floating* X, floating* J, Py_ssize_t m, Py_ssize_t n,
                             Py_ssize_t rows, floating* ws) noexcept nogil
cdef void predict_rows(const NetLayout* net, const floating* params, const floating* X,
                       floating* out, Py_ssize_t n, Py_ssize_t rows,
                       floating* ws) noexcept nogil
cdef void input_grad_rows(const NetLayout* net, const floating* params, const floating* X,
                          floating* J, Py_ssize_t m, Py_ssize_t n, Py_ssize_t rows,
                          floating* ws) noexcept nogil
cdef int check_target_shape(Py_ssize_t rows, Py_ssize_t cols, int loss,
                            const NetLayout* net, Py_ssize_t n) except -1
cdef int check_loss_arguments(const NetLayout* net, Py_ssize_t n, int loss, Py_ssize_t y_rows,
                              Py_ssize_t y_cols, Py_ssize_t w_size,
                              Py_ssize_t grad_size) except -1
cdef double weight_penalty(const NetLayout* net, const floating* params, floating* grad,
                           double l2) noexcept nogil
