"""The Python entry points to the network passes (inputs validated by nnfast.network).

Each re-checks every size it relies on against the buffers it gets, and the alignment of
every pointer it passes on, and raises ValueError naming the argument: a last guard, so
that no misuse or race in Python code (an estimator refitted on data of another width
while it predicts) can make a kernel read or write outside an array.

Each takes `n_threads` (>= 1, already resolved by nnfast._threads): the most threads its
passes may use. The data are taken CHUNK_ROWS rows at a time, so that the workspace stays
small for any n; a pass goes to a team of threads (nnfast/_team.pyx) when it is large
enough, with the same result as on one thread.
"""

cimport numpy as cnp
from cython cimport floating

from nnfast._kernels cimport (
    all_finite_values,
    cache_aligned_free,
    cache_aligned_malloc,
    cache_lines_of,
    check_aligned,
    check_shape,
    loss_target_width,
)
from nnfast._forward_mode cimport forward_mode_rows, forward_workspace_size
from nnfast._network cimport (
    Layout,
    NetLayout,
    check_loss_arguments,
    input_grad_workspace_size,
    predict_rows,
    weight_penalty,
    workspace_size,
)
from nnfast._team cimport (
    ROWS_INPUT_GRAD,
    ROWS_INPUT_GRAD_FORWARD,
    ROWS_PREDICT,
    team_loss_grad,
    team_rows,
    team_size,
    team_workspace_size,
)

cnp.import_array()

cdef Py_ssize_t CHUNK_ROWS = 1024
# Workspaces up to this many values live on the stack (predicting a few samples).
cdef enum:
    STACK_WORKSPACE = 2048
# A pass this short keeps the GIL: releasing it costs more than another thread gains.
cdef Py_ssize_t NOGIL_MIN_WORK = 100_000


cdef int check_entry(const NetLayout* net, Py_ssize_t n_params, Py_ssize_t x_cols,
                     int n_threads) except -1:
    """params must hold the layout's n_params values, X have its n_in columns, and
    n_threads be at least 1."""
    if n_params != net.n_params:
        raise ValueError(f"params: expected {net.n_params} values (the network's n_params), "
                         f"got {n_params}")
    if x_cols != net.n_in:
        raise ValueError(f"X: expected {net.n_in} columns (the network's input width), "
                         f"got {x_cols}")
    if n_threads < 1:
        raise ValueError(f"n_threads: expected an integer >= 1, got {n_threads}")
    return 0


cdef floating* allocate(Py_ssize_t count, floating* stack, Py_ssize_t stack_count,
                        str what) except NULL:
    """stack when count fits in it, else count values starting on a cache line (free them
    with cache_aligned_free; MemoryError naming `what`)."""
    cdef floating* block
    if count <= stack_count:
        return stack
    block = <floating*>cache_aligned_malloc(count * sizeof(floating))
    if block == NULL:
        raise MemoryError(f"nnfast: cannot allocate the {what} workspace ({count} values)")
    return block


def predict(Layout layout not None, const floating[::1] params, const floating[:, ::1] X,
            floating[:, ::1] out, int n_threads=1):
    """out = network(X).   X (n, n_in), out (n, n_out)"""
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], rows, stride
    cdef int size
    cdef floating small[STACK_WORKSPACE]
    cdef floating* ws
    check_entry(net, params.shape[0], X.shape[1], n_threads)
    check_shape("out", out.shape[0], out.shape[1], n, net.n_out)
    if n == 0:
        return
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&X[0, 0], sizeof(floating), "X")
    check_aligned(&out[0, 0], sizeof(floating), "out")
    size = team_size(net, n, n_threads, 1)
    rows = min((n + size - 1) // size, CHUNK_ROWS)
    stride = cache_lines_of(workspace_size(net, rows), sizeof(floating))
    if size == 1 and stride <= STACK_WORKSPACE and n * net.n_params <= NOGIL_MIN_WORK:
        # Latency of a few samples is fixed costs: no malloc, the GIL kept.
        predict_rows(net, &params[0], &X[0, 0], &out[0, 0], n, rows, small)
        return
    ws = allocate(size * stride, small, STACK_WORKSPACE, "prediction")
    try:
        with nogil:
            team_rows(ROWS_PREDICT, net, &params[0], &X[0, 0], &out[0, 0], 0, n, rows, ws,
                      stride, size)
    finally:
        if ws != small:
            cache_aligned_free(ws)


cdef bint is_kernel_ready(cnp.ndarray a, int typenum) noexcept:
    """a is of dtype `typenum` in this machine's byte order, C-contiguous and aligned
    (what the kernels load from; the type number alone does not tell the byte order)."""
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a))


def predict_small(Layout layout not None, cnp.ndarray params not None, X):
    """network(X) for a few samples, or None.

    X (n, n_in), or (n_in,) for one sample (the output is then (n_out,)), as an ndarray
    already in params' dtype, C-contiguous, aligned and finite, with so little work that
    the pass keeps the GIL on one thread and its workspace fits on the stack: predict's
    fixed costs without a typed memoryview per argument (~0.15 µs each) or a Python-level
    check. Anything else gives None, and the caller takes the general path, whose checks
    name what is wrong.
    """
    cdef const NetLayout* net = &layout.c
    cdef int typenum = cnp.PyArray_TYPE(params)
    cdef int ndim
    cdef cnp.ndarray x, out
    cdef cnp.npy_intp shape[2]
    cdef Py_ssize_t n, cols
    cdef double small[STACK_WORKSPACE]
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        raise ValueError(f"params: expected float64 or float32 values, got {params.dtype}")
    if (cnp.PyArray_NDIM(params) != 1 or not is_kernel_ready(params, typenum)
            or cnp.PyArray_DIM(params, 0) != net.n_params):
        raise ValueError(f"params: expected a C-contiguous, aligned (n_params,) = "
                         f"({net.n_params},) array in native byte order, got shape "
                         f"{(<object>params).shape}, dtype {(<object>params).dtype.str}, "
                         f"C-contiguous {bool(cnp.PyArray_IS_C_CONTIGUOUS(params))}, "
                         f"aligned {bool(cnp.PyArray_ISALIGNED(params))}")
    if type(X) is not cnp.ndarray:
        return None
    x = <cnp.ndarray>X
    ndim = cnp.PyArray_NDIM(x)
    if not is_kernel_ready(x, typenum) or not 1 <= ndim <= 2:
        return None
    n = 1 if ndim == 1 else cnp.PyArray_DIM(x, 0)
    cols = cnp.PyArray_DIM(x, ndim - 1)
    if (cols != net.n_in or n < 1 or n * net.n_params > NOGIL_MIN_WORK
            or workspace_size(net, n) > STACK_WORKSPACE):
        return None
    shape[0] = n
    shape[ndim - 1] = net.n_out
    out = cnp.PyArray_EMPTY(ndim, shape, typenum, 0)
    if typenum == cnp.NPY_DOUBLE:
        if not all_finite_values(<const double*>cnp.PyArray_DATA(x), n * cols):
            return None
        predict_rows(net, <const double*>cnp.PyArray_DATA(params),
                     <const double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), n,
                     n, small)
    else:
        if not all_finite_values(<const float*>cnp.PyArray_DATA(x), n * cols):
            return None
        predict_rows(net, <const float*>cnp.PyArray_DATA(params),
                     <const float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), n,
                     n, <float*>small)
    return out


def input_grad(Layout layout not None, const floating[::1] params,
               const floating[:, ::1] X, floating[:, :, ::1] J, str mode="auto",
               int n_threads=1):
    """J[i, j, :] = d network(X[i])_j / d X[i] for the first J.shape[1] <= n_out outputs.
    X (n, n_in), J (n, m, n_in)

    mode "forward" pushes n_in tangents up the stack, "reverse" runs one backward pass per
    output; "auto" takes forward mode when n_in < m (fewer passes' worth of products).
    """
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], m = J.shape[1], rows, stride, passes
    cdef int size, kind
    cdef floating* ws
    check_entry(net, params.shape[0], X.shape[1], n_threads)
    if J.shape[0] != n or m > net.n_out or J.shape[2] != net.n_in:
        raise ValueError(f"J: expected shape ({n}, m, {net.n_in}) with m <= {net.n_out} "
                         f"(the network's outputs), got ({J.shape[0]}, {m}, {J.shape[2]})")
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"mode: expected one of 'auto', 'forward', 'reverse', got {mode!r}")
    if n == 0 or m == 0:
        return
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&X[0, 0], sizeof(floating), "X")
    check_aligned(&J[0, 0, 0], sizeof(floating), "J")
    if mode == "forward" or (mode == "auto" and net.n_in < m):
        kind, passes = ROWS_INPUT_GRAD_FORWARD, 1 + net.n_in
    else:
        kind, passes = ROWS_INPUT_GRAD, 1 + 2 * m
    size = team_size(net, n, n_threads, passes)
    rows = (n + size - 1) // size
    if kind == ROWS_INPUT_GRAD_FORWARD:
        rows = forward_mode_rows(net, rows)
        stride = forward_workspace_size(net, rows)
    else:
        rows = min(rows, CHUNK_ROWS)
        stride = input_grad_workspace_size(net, rows)
    stride = cache_lines_of(stride, sizeof(floating))
    ws = allocate(size * stride, <floating*>NULL, 0, "input-gradient")
    try:
        if n * net.n_params * passes > NOGIL_MIN_WORK:
            with nogil:
                team_rows(kind, net, &params[0], &X[0, 0], &J[0, 0, 0], m, n, rows, ws,
                          stride, size)
        else:
            team_rows(kind, net, &params[0], &X[0, 0], &J[0, 0, 0], m, n, rows, ws, stride,
                      size)
    finally:
        cache_aligned_free(ws)


cdef double chunked_loss(const NetLayout* net, const floating* params, const floating* X,
                         const floating* Y, const floating* w, Py_ssize_t n, Py_ssize_t rows,
                         double inv_weight_sum, int loss, floating* grad, floating* ws,
                         int size) noexcept nogil:
    """Data loss of n samples, `rows` at a time on `size` threads; with grad != NULL also
    its gradient (each chunk's added to the chunks' before it, in order)."""
    cdef Py_ssize_t start = 0, count, y_cols = loss_target_width(loss, net.n_out)
    cdef double total = 0
    while start < n:
        count = min(rows, n - start)
        total += team_loss_grad(net, params, X + start * net.n_in, Y + start * y_cols,
                                w + start if w != NULL else NULL, count, rows,
                                inv_weight_sum, loss, grad, start > 0, 0.0, NULL, ws, size)
        start += count
    return total


def loss_and_grad(Layout layout not None, const floating[::1] params,
                  const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] w,
                  int loss, double inv_weight_sum, floating[::1] grad=None, double l2=0.0,
                  int n_threads=1):
    """Data loss of (X, Y) plus the l2 term 0.5 l2 ΣW²; its gradient is written to grad
    when given.

    X (n, n_in), Y (n, n_out) (n_out / 2 columns for gaussian_nll), w (n,) or None,
    grad (n_params,) or None (forward only).
    """
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], rows = min(n, CHUNK_ROWS)
    cdef floating* ws
    cdef const floating* w_ptr
    cdef floating* grad_ptr
    cdef double total
    cdef int size
    check_entry(net, params.shape[0], X.shape[1], n_threads)
    check_loss_arguments(net, n, loss, Y.shape[0], Y.shape[1],
                         -1 if w is None else w.shape[0], -1 if grad is None else grad.shape[0])
    w_ptr = NULL if w is None else &w[0]
    grad_ptr = NULL if grad is None else &grad[0]
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&X[0, 0], sizeof(floating), "X")
    check_aligned(&Y[0, 0], sizeof(floating), "Y")
    check_aligned(w_ptr, sizeof(floating), "w")
    check_aligned(grad_ptr, sizeof(floating), "grad")
    size = team_size(net, rows, n_threads, 1 if grad is None else 3)
    ws = allocate(team_workspace_size(net, rows, size), <floating*>NULL, 0, "loss")
    with nogil:
        total = chunked_loss(net, &params[0], &X[0, 0], &Y[0, 0], w_ptr, n, rows,
                             inv_weight_sum, loss, grad_ptr, ws, size)
        if l2 != 0:
            total += weight_penalty(net, &params[0], grad_ptr, l2)
    cache_aligned_free(ws)
    return total


def loss(Layout layout not None, const floating[::1] params, const floating[:, ::1] X,
         const floating[:, ::1] Y, const floating[::1] w, int loss, double inv_weight_sum,
         double l2=0.0, int n_threads=1):
    """Data loss of (X, Y) plus the l2 term, forward only.   X (n, n_in), Y as for
    loss_and_grad"""
    return loss_and_grad(layout, params, X, Y, w, loss, inv_weight_sum, None, l2, n_threads)
