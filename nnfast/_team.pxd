# One pass over a batch split across a team of threads (nnfast/_team.pyx).
from cython cimport floating

from nnfast._network cimport NetLayout


# An optimizer update applied to the parameters [start, end) (a thread's share of them),
# with the state it needs: nnfast/_train.pyx's optimizer and its buffers.
ctypedef void (*UpdateFn)(void* state, Py_ssize_t start, Py_ssize_t end) noexcept nogil

cdef struct Update:
    UpdateFn apply
    void* state


cdef int team_size(const NetLayout* net, Py_ssize_t rows, int n_threads,
                   Py_ssize_t passes) noexcept nogil
cdef Py_ssize_t team_workspace_size(const NetLayout* net, Py_ssize_t rows,
                                    int size) noexcept nogil
cdef double team_loss_grad(const NetLayout* net, const floating* params, const floating* X,
                           const floating* Y, const floating* w, Py_ssize_t n,
                           Py_ssize_t rows, double inv_weight_sum, int loss, floating* grad,
                           bint accumulate, double l2, const Update* update, floating* ws,
                           int size) noexcept nogil
cdef void team_rows(int kind, const NetLayout* net, const floating* params,
                    const floating* X, floating* out, Py_ssize_t m, Py_ssize_t n,
                    Py_ssize_t rows, floating* ws, Py_ssize_t ws_stride,
                    int size) noexcept nogil

# team_rows' kinds of pass
cdef enum:
    ROWS_PREDICT = 0
    ROWS_INPUT_GRAD = 1
    ROWS_INPUT_GRAD_FORWARD = 2
