"""One pass over a batch split across a team of threads, with the bytes of one thread.

A team is OpenMP's (nnfast/src/team.h): one fork/join per pass, a barrier between phases.
`team_loss_grad` splits a forward, loss and backward pass: each thread runs the forward
pass of its block of the batch's rows through every layer, one thread computes the loss
and the output's dZ over all rows in order, then every layer's backward is shared
(nnfast/_network.pyx's backward_part: dW and db in blocks, dA by rows), and the optimizer
update, when given, over blocks of the parameters. `team_rows` splits predictions and
input Jacobians by rows, each thread with a workspace of its own. Every output element is
computed by the chain one thread would compute, so results do not depend on the team's
size; the loss value and the l2 term are sums taken by one thread in one order.

A pass goes to a team only when each thread has at least MIN_THREAD_WORK multiply-adds
(and 8 rows) of it: below, waking threads costs more than they save.
"""

from cython cimport floating

from nnfast._kernels cimport blas_products
from nnfast._losses cimport loss_delta
from nnfast._forward_mode cimport input_grad_forward_rows
from nnfast._network cimport (
    Layer,
    Layout,
    NetLayout,
    backward_part,
    forward_rows,
    input_grad_rows,
    predict_rows,
    share,
    weight_penalty,
    workspace_size,
)


cdef extern from "team.h" nogil:
    ctypedef void (*nnf_team_task)(void* context, int rank, int size) noexcept nogil
    void nnf_team_run(int threads, nnf_team_task task, void* context)
    void nnf_team_barrier()
    int nnf_team_max_threads()
    int nnf_team_compiled()
    long nnf_team_regions()


# Multiply-adds per thread below which a pass stays on fewer threads. Measured on a 2-core
# Zen 4 (docs/threads.md's crossover table, quiet machine): a region costs ~1.1 µs and a
# barrier ~0.55 µs, yet a tabular batch of 32 (261,000 per thread on two) ran 0.92x as
# fast split and one of 64 (522,000) 1.15x: small blocks also tile worse. 300,000 splits
# from there up.
cdef Py_ssize_t MIN_THREAD_WORK = 300_000


def compiled():
    """Whether this build has OpenMP (else every pass runs on one thread)."""
    return bool(nnf_team_compiled())


def max_threads():
    """omp_get_max_threads(): OMP_NUM_THREADS or threadpoolctl's OpenMP limit in force
    (the cores OpenMP sees otherwise); 1 in a build without OpenMP."""
    return nnf_team_max_threads()


def regions():
    """How many passes have run on more than one thread in this process (for tests)."""
    return nnf_team_regions()


def splits(Layout layout not None, Py_ssize_t rows, Py_ssize_t passes):
    """Whether `passes` over `rows` rows of this network would go to a team of two (the
    crossover of team_size): callers skip their thread bookkeeping when they would not."""
    return team_size(&layout.c, rows, 2, passes) > 1


def min_thread_work():
    """Multiply-adds per thread below which a pass uses fewer threads."""
    return MIN_THREAD_WORK


def set_min_thread_work(Py_ssize_t work):
    """Set the crossover (tests set 0 or 1 to split tiny passes; the bench measures it).
    Results do not depend on it, only the time."""
    global MIN_THREAD_WORK
    if work < 0:
        raise ValueError(f"work: expected an integer >= 0, got {work}")
    MIN_THREAD_WORK = work


cdef int team_size(const NetLayout* net, Py_ssize_t rows, int n_threads,
                   Py_ssize_t passes) noexcept nogil:
    """Threads worth using for `passes` (1: forward only, 3: with backward) over `rows`
    rows: up to n_threads, each with MIN_THREAD_WORK multiply-adds and 8 rows. One when
    products go to BLAS (set_blas_min_flops: its blocks would not round like its whole)."""
    cdef Py_ssize_t work, size = n_threads
    if n_threads <= 1 or blas_products():
        return 1
    work = rows * net.n_params * passes
    if MIN_THREAD_WORK > 0:
        size = min(size, work // MIN_THREAD_WORK)
    size = min(size, rows // 8)
    return <int>max(1, size)


cdef Py_ssize_t team_workspace_size(const NetLayout* net, Py_ssize_t rows,
                                    int size) noexcept nogil:
    """Elements of workspace of team_loss_grad over up to `rows` rows on `size` threads:
    one pass's, and a transposed W for each thread past the first."""
    return workspace_size(net, rows) + (size - 1) * net.ws_fixed


cdef struct LossGradTask:
    const NetLayout* net
    const void* params
    const void* X
    const void* Y
    const void* w
    void* grad
    void* ws
    Py_ssize_t n, rows
    double inv_weight_sum, l2
    int loss
    bint accumulate, is_double
    const Update* update
    double value


cdef void loss_grad_part(LossGradTask* t, const floating* params, const floating* X,
                         const floating* Y, const floating* w, floating* grad, floating* ws,
                         int rank, int size) noexcept nogil:
    cdef const NetLayout* net = t.net
    cdef const Layer* last = &net.layers[net.n_layers - 1]
    cdef Py_ssize_t r0, r1, p0, p1
    cdef floating* out
    share(t.n, 8, rank, size, &r0, &r1)
    out = forward_rows(net, params, X, r0, r1, t.rows, ws, NULL)
    nnf_team_barrier()
    if rank == 0:
        t.value = loss_delta(t.loss, last.activation, ws + t.rows * net.scratch_offset,
                             ws + t.rows * last.z_offset, out, Y, w, t.n, last.n_out,
                             t.inv_weight_sum, &net.act)
    nnf_team_barrier()
    if grad == NULL:
        return
    backward_part(net, params, X, t.n, t.rows, ws, grad, t.accumulate, NULL, rank, size)
    if t.l2 != 0:
        if rank == 0:
            t.value += weight_penalty(net, params, grad, t.l2)
        nnf_team_barrier()
    if t.update != NULL:
        share(net.n_params, 64, rank, size, &p0, &p1)
        if p1 > p0:
            t.update.apply(t.update.state, p0, p1)


cdef void loss_grad_task(void* context, int rank, int size) noexcept nogil:
    cdef LossGradTask* t = <LossGradTask*>context
    if t.is_double:
        loss_grad_part(t, <const double*>t.params, <const double*>t.X, <const double*>t.Y,
                       <const double*>t.w, <double*>t.grad, <double*>t.ws, rank, size)
    else:
        loss_grad_part(t, <const float*>t.params, <const float*>t.X, <const float*>t.Y,
                       <const float*>t.w, <float*>t.grad, <float*>t.ws, rank, size)


cdef double team_pass(const NetLayout* net, const floating* params, const floating* X,
                      const floating* Y, const floating* w, Py_ssize_t n, Py_ssize_t rows,
                      double inv_weight_sum, int loss, floating* grad, bint accumulate,
                      double l2, const Update* update, floating* ws, int size) noexcept nogil:
    """team_loss_grad (nnfast/_team.pxd) on a team of `size` > 1 threads."""
    cdef LossGradTask task
    task.net, task.params, task.X, task.Y, task.w = net, params, X, Y, w
    task.grad, task.ws, task.n, task.rows = grad, ws, n, rows
    task.inv_weight_sum, task.l2, task.loss = inv_weight_sum, l2, loss
    task.accumulate, task.is_double = accumulate, floating is double
    task.update, task.value = update, 0
    nnf_team_run(size, loss_grad_task, &task)
    return task.value


cdef struct RowsTask:
    int kind
    const NetLayout* net
    const void* params
    const void* X
    void* out
    void* ws
    Py_ssize_t m, n, rows, ws_stride
    bint is_double


cdef void rows_part(RowsTask* t, const floating* params, const floating* X, floating* out,
                    floating* ws, int rank, int size) noexcept nogil:
    cdef const NetLayout* net = t.net
    cdef Py_ssize_t r0, r1
    share(t.n, 8, rank, size, &r0, &r1)
    if r1 <= r0:
        return
    ws += rank * t.ws_stride
    X += r0 * net.n_in
    if t.kind == ROWS_PREDICT:
        predict_rows(net, params, X, out + r0 * net.n_out, r1 - r0, t.rows, ws)
    elif t.kind == ROWS_INPUT_GRAD:
        input_grad_rows(net, params, X, out + r0 * t.m * net.n_in, t.m, r1 - r0, t.rows, ws)
    else:
        input_grad_forward_rows(net, params, X, out + r0 * t.m * net.n_in, t.m, r1 - r0,
                                t.rows, ws)


cdef void rows_task(void* context, int rank, int size) noexcept nogil:
    cdef RowsTask* t = <RowsTask*>context
    if t.is_double:
        rows_part(t, <const double*>t.params, <const double*>t.X, <double*>t.out,
                  <double*>t.ws, rank, size)
    else:
        rows_part(t, <const float*>t.params, <const float*>t.X, <float*>t.out,
                  <float*>t.ws, rank, size)


cdef void team_rows(int kind, const NetLayout* net, const floating* params,
                    const floating* X, floating* out, Py_ssize_t m, Py_ssize_t n,
                    Py_ssize_t rows, floating* ws, Py_ssize_t ws_stride,
                    int size) noexcept nogil:
    """A pass of `kind` over the n samples X (n, n_in), split by rows over `size` threads:
    ROWS_PREDICT out (n, n_out) = network(X); ROWS_INPUT_GRAD and ROWS_INPUT_GRAD_FORWARD
    out (n, m, n_in) = the input Jacobians of the first m outputs (reverse / forward mode).
    Each thread takes `rows` samples at a time in its own workspace of ws_stride elements
    (thread r's at ws + r * ws_stride; enough for `rows` samples of that kind of pass)."""
    cdef RowsTask task
    task.kind, task.net, task.params, task.X, task.out = kind, net, params, X, out
    task.ws, task.m, task.n, task.rows, task.ws_stride = ws, m, n, rows, ws_stride
    task.is_double = floating is double
    nnf_team_run(size, rows_task, &task)
