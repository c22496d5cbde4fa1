# One pass over a batch split across a team of threads (nnfast/_team.pyx).
from cython cimport floating

from nnfast._losses cimport loss_delta
from nnfast._network cimport Layer, NetLayout, network_forward, network_loss_grad, weight_penalty


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
cdef double team_pass(const NetLayout* net, const floating* params, const floating* X,
                      const floating* Y, const floating* w, Py_ssize_t n, Py_ssize_t rows,
                      double inv_weight_sum, int loss, floating* grad, bint accumulate,
                      double l2, const Update* update, floating* ws, int size) noexcept nogil


cdef inline double team_loss_grad(const NetLayout* net, const floating* params,
                                  const floating* X, const floating* Y, const floating* w,
                                  Py_ssize_t n, Py_ssize_t rows, double inv_weight_sum,
                                  int loss, floating* grad, bint accumulate, double l2,
                                  const Update* update, floating* ws,
                                  int size) noexcept nogil:
    """Data loss of n <= rows samples on `size` threads; with grad, also its gradient
    (added to grad when accumulate), then the l2 term 0.5 l2 ΣW² added to both, then
    `update` applied (its apply called on blocks of the parameters).

    X (n, n_in), Y (n, loss_target_width(loss, n_out)), w (n,) or NULL; ws holds
    team_workspace_size(net, rows, size) elements. On one thread this is the one-thread
    pass itself (inline here: a batch of one row is mostly calls); on more, team_pass.
    """
    cdef const Layer* last
    cdef floating* out
    cdef double value
    if size > 1:
        return team_pass(net, params, X, Y, w, n, rows, inv_weight_sum, loss, grad,
                         accumulate, l2, update, ws, size)
    if grad == NULL:
        last = &net.layers[net.n_layers - 1]
        out = network_forward(net, params, X, n, rows, ws)
        return loss_delta(loss, last.activation, ws + rows * net.scratch_offset,
                          ws + rows * last.z_offset, out, Y, w, n, last.n_out,
                          inv_weight_sum, &net.act)
    value = network_loss_grad(net, params, X, Y, w, n, rows, inv_weight_sum, loss, grad,
                              accumulate, ws)
    if l2 != 0:
        value += weight_penalty(net, params, grad, l2)
    if update != NULL:
        update.apply(update.state, 0, net.n_params)
    return value
cdef void team_rows(int kind, const NetLayout* net, const floating* params,
                    const floating* X, floating* out, Py_ssize_t m, Py_ssize_t n,
                    Py_ssize_t rows, floating* ws, Py_ssize_t ws_stride,
                    int size) noexcept nogil

# team_rows' kinds of pass
cdef enum:
    ROWS_PREDICT = 0
    ROWS_INPUT_GRAD = 1
    ROWS_INPUT_GRAD_FORWARD = 2
