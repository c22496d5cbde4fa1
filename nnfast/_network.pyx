"""Forward and backward passes over a layer stack, on raw buffers.

A workspace for up to `rows` samples holds, per layer, Z (rows, width) and A (rows, n_out)
(A shares Z's memory for identity layers), then two scratch blocks (rows, max_width) that
carry dZ and dA down the stack during backward, then room for one transposed W per thread
of a team. The passes take a block of rows, or a thread's part of a batch (rank of size),
so that nnfast/_team.pyx can split one pass over a team of threads with the same result
for any team; the Python entry points are in nnfast/_network_entry.pyx, the forward-mode
Jacobians in nnfast/_forward_mode.pyx.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.string cimport memcpy, memset

from nnfast._kernels cimport (
    ACT_IDENTITY,
    ACT_MAXOUT,
    LOSS_GAUSSIAN_NLL,
    LOSS_MSE,
    ACT_TANH,
    activation_backward,
    activation_forward,
    column_sums,
    dense_backward,
    dense_forward,
    loss_target_width,
    matmul_nt_tanh_backward,
    matmul_tn_block,
)
from nnfast._losses cimport l2_penalty, loss_delta


from nnfast._spec import ACTIVATION_CODES as _ACTIVATION_CODES


cdef extern from "team.h" nogil:
    void nnf_team_barrier()


cdef class Layout:
    """C layer table for a :class:`nnfast._spec.NetworkSpec` (kept alive by the MLP)."""

    def __cinit__(self, spec):
        cdef Py_ssize_t i, per_row = 0, max_width = 0, max_weights = 0
        cdef Layer* layer
        self.spec = spec
        n_layers = len(spec.layers)
        self.c.layers = <Layer*>PyMem_Malloc(n_layers * sizeof(Layer))
        if self.c.layers == NULL:
            raise MemoryError()
        self.c.n_layers = n_layers
        for i, ls in enumerate(spec.layers):
            layer = &self.c.layers[i]
            layer.n_in = ls.n_in
            layer.n_out = ls.n_out
            layer.width = ls.width
            layer.w_offset = ls.w_offset
            layer.b_offset = ls.b_offset
            layer.activation = _ACTIVATION_CODES[ls.activation]
            layer.z_offset = per_row
            per_row += ls.width
            if layer.activation == ACT_IDENTITY:
                layer.a_offset = layer.z_offset
            else:
                layer.a_offset = per_row
                per_row += ls.n_out
            max_width = max(max_width, ls.width, ls.n_in)
            max_weights = max(max_weights, ls.n_in * ls.width)
        self.c.n_in = spec.n_in
        self.c.n_out = spec.n_out
        self.c.n_params = spec.n_params
        self.c.max_width = max_width
        self.c.scratch_offset = per_row
        self.c.ws_per_row = per_row + 2 * max_width
        self.c.ws_fixed = max_weights
        self.c.act.leaky_slope = spec.leaky_slope
        self.c.act.elu_alpha = spec.elu_alpha
        self.c.act.pieces = spec.maxout_pieces

    def __dealloc__(self):
        PyMem_Free(self.c.layers)

    @property
    def workspace_per_row(self):
        """Workspace elements one batch row needs (Z and A of every layer, two scratch rows)."""
        return self.c.ws_per_row

    def workspace_size(self, rows):
        """Workspace elements of a pass over up to `rows` samples (rows * per row + one W)."""
        return workspace_size(&self.c, rows)


cdef Py_ssize_t workspace_size(const NetLayout* net, Py_ssize_t rows) noexcept nogil:
    """Elements of workspace that a pass over up to `rows` samples needs."""
    return rows * net.ws_per_row + net.ws_fixed


cdef floating* network_forward(const NetLayout* net, const floating* params,
                               const floating* X, Py_ssize_t n, Py_ssize_t rows,
                               floating* ws, floating* final=NULL) noexcept nogil:
    """Forward pass of n <= rows samples; returns a pointer to the output A (n, n_out).

    X (n, n_in); ws holds workspace_size(net, rows) elements. With `final`, the output is
    written there (and, for an identity output, its Z too) instead of the workspace.
    """
    return forward_rows(net, params, X, 0, n, rows, ws, final)


cdef floating* forward_rows(const NetLayout* net, const floating* params, const floating* X,
                            Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t rows, floating* ws,
                            floating* final) noexcept nogil:
    """network_forward of the rows [r0, r1) of a batch: X, the workspace's Z and A and
    `final` all point at the batch's row 0, and only those rows are read and written (a
    row's values never depend on the others, so a team splits a batch by rows)."""
    cdef Py_ssize_t l, count = r1 - r0
    cdef const Layer* layer
    cdef const floating* inp = X
    cdef floating* Z
    cdef floating* A = NULL
    for l in range(net.n_layers):
        layer = &net.layers[l]
        Z = ws + rows * layer.z_offset
        A = ws + rows * layer.a_offset
        if final != NULL and l == net.n_layers - 1:
            A = final
            if layer.activation == ACT_IDENTITY:
                Z = final
        if count > 0:
            dense_forward(Z + r0 * layer.width, inp + r0 * layer.n_in,
                          params + layer.w_offset, params + layer.b_offset, count,
                          layer.n_in, layer.width)
            activation_forward(layer.activation, A + r0 * layer.n_out, Z + r0 * layer.width,
                               count, layer.n_out, &net.act)
        inp = A
    return A


cdef double network_loss_grad(const NetLayout* net, const floating* params,
                              const floating* X, const floating* Y, const floating* w,
                              Py_ssize_t n, Py_ssize_t rows, double inv_weight_sum, int loss,
                              floating* grad, bint accumulate, floating* ws) noexcept nogil:
    """Forward, loss and backward of n <= rows samples; returns the data loss (no l2).

    grad (n_params,) receives dL/dparams (added to it when accumulate). X (n, n_in),
    Y (n, loss_target_width(loss, n_out)), w (n,) or NULL; inv_weight_sum = 1 / (sum of
    the weights of the whole data set this call is a chunk of).
    """
    cdef const Layer* last = &net.layers[net.n_layers - 1]
    cdef floating* out = network_forward(net, params, X, n, rows, ws)
    cdef double value = loss_delta(loss, last.activation, ws + rows * net.scratch_offset,
                                   ws + rows * last.z_offset, out, Y, w, n, last.n_out,
                                   inv_weight_sum, &net.act)
    network_backward(net, params, X, n, rows, ws, grad, accumulate, NULL)
    return value


cdef void network_backward(const NetLayout* net, const floating* params, const floating* X,
                           Py_ssize_t n, Py_ssize_t rows, floating* ws, floating* grad,
                           bint accumulate, floating* dX) noexcept nogil:
    """Backpropagate dZ of the output layer down the stack, to the parameters and to X.

    On entry ws holds network_forward of these n <= rows samples X (n, n_in) and, in its
    first scratch block, dZ (n, width) of the last layer. grad (n_params,) receives the
    parameter gradients (added to it when accumulate), dX (n, n_in) the input gradient;
    either may be NULL; dX must not be in the workspace. Both scratch blocks are
    overwritten; the forward values are kept.
    """
    backward_part(net, params, X, n, rows, ws, grad, accumulate, dX, 0, 1)


cdef void weight_grad_part(floating* dW, floating* db, const floating* inp,
                           const floating* dZ, Py_ssize_t n, Py_ssize_t n_in,
                           Py_ssize_t width, bint accumulate, int rank,
                           int size) noexcept nogil:
    """rank's share (of a team of size > 1) of dW (+)= inp.T @ dZ and db (+)= sum_rows(dZ):
    dW (n_in, width) in blocks of its rows when it has at least 8 per thread, else of its
    columns; db by columns. Every element is one chain over the n rows in order, as in
    dense_backward."""
    cdef Py_ssize_t i0, i1, j0, j1
    if n_in >= 8 * size:
        share(n_in, 8, rank, size, &i0, &i1)
        if i1 > i0:
            matmul_tn_block(dW + i0 * width, width, inp + i0, n_in, dZ, width, i1 - i0, n,
                            width, accumulate)
    else:
        share(width, 16, rank, size, &j0, &j1)
        if j1 > j0:
            matmul_tn_block(dW + j0, width, inp, n_in, dZ + j0, width, n_in, n, j1 - j0,
                            accumulate)
    share(width, 16, rank, size, &j0, &j1)
    if j1 > j0:
        column_sums(db + j0, dZ + j0, width, n, j1 - j0, accumulate)


cdef void backward_part(const NetLayout* net, const floating* params, const floating* X,
                        Py_ssize_t n, Py_ssize_t rows, floating* ws, floating* grad,
                        bint accumulate, floating* dX, int rank, int size) noexcept nogil:
    """network_backward, rank's part of it in a team of `size` (nnfast/_team.pyx); every
    thread of the team calls it with the same arguments, and it returns after a barrier.

    Per layer, top down: dW and db in blocks (weight_grad_part), and dA = dZ @ W.T for the
    thread's rows of the batch, turned into the layer below's dZ by its activation's
    backward in place; then one barrier, as the layer below reads every row. dZ and dA
    trade the two scratch blocks at each layer (maxout, whose dZ is wider than dA, writes
    its dZ back over the block above after a barrier of its own). A team's thread `rank`
    transposes W into its own copy (ws_fixed values past the first rank * ws_fixed).
    """
    cdef Py_ssize_t l, r0, r1
    cdef const Layer* layer
    cdef const Layer* below
    cdef floating* dZ = ws + rows * net.scratch_offset
    cdef floating* free_block = dZ + rows * net.max_width
    cdef floating* swap
    cdef floating* dA
    cdef floating* scratch = ws + rows * net.ws_per_row + rank * net.ws_fixed
    cdef const floating* inp
    cdef bint fused
    r0, r1 = 0, n
    if size > 1:
        share(n, 8, rank, size, &r0, &r1)
    for l in range(net.n_layers - 1, -1, -1):
        layer = &net.layers[l]
        below = NULL
        inp = X
        if l > 0:
            below = &net.layers[l - 1]
            inp = ws + rows * below.a_offset
        dA = free_block if l > 0 else dX
        # A tanh below: its backward runs in the epilogue of the product dZ @ W.T
        # (matmul_nt_tanh_backward, row-local), which writes the layer below's dZ.
        fused = l > 0 and below.activation == ACT_TANH
        if size == 1:  # one call for both (a batch of one row is mostly calls)
            dense_backward(grad + layer.w_offset if grad != NULL else NULL,
                           grad + layer.b_offset if grad != NULL else NULL,
                           NULL if fused else dA, dZ, inp, params + layer.w_offset, n,
                           layer.n_in, layer.width, accumulate, scratch)
            if fused:
                matmul_nt_tanh_backward(dA, dZ, params + layer.w_offset, inp, n, layer.width,
                                        layer.n_in, scratch)
        else:
            if grad != NULL:
                weight_grad_part(grad + layer.w_offset, grad + layer.b_offset, inp, dZ, n,
                                 layer.n_in, layer.width, accumulate, rank, size)
            if dA != NULL and r1 > r0 and fused:
                matmul_nt_tanh_backward(dA + r0 * layer.n_in, dZ + r0 * layer.width,
                                        params + layer.w_offset, inp + r0 * layer.n_in,
                                        r1 - r0, layer.width, layer.n_in, scratch)
            elif dA != NULL and r1 > r0:
                dense_backward(<floating*>NULL, <floating*>NULL, dA + r0 * layer.n_in,
                               dZ + r0 * layer.width, inp, params + layer.w_offset, r1 - r0,
                               layer.n_in, layer.width, False, scratch)
        if l > 0:
            if below.activation == ACT_MAXOUT:
                if size > 1:
                    nnf_team_barrier()  # every thread has read dZ for its dW
                activation_backward(below.activation, dZ + r0 * below.width,
                                    ws + rows * below.z_offset + r0 * below.width,
                                    ws + rows * below.a_offset + r0 * below.n_out,
                                    dA + r0 * below.n_out, r1 - r0, below.n_out, &net.act)
            else:
                if not fused:
                    activation_backward(below.activation, dA + r0 * below.width,
                                        ws + rows * below.z_offset + r0 * below.width,
                                        ws + rows * below.a_offset + r0 * below.n_out,
                                        dA + r0 * below.n_out, r1 - r0, below.n_out, &net.act)
                swap = dZ
                dZ = dA
                free_block = swap
        if size > 1:
            nnf_team_barrier()


cdef Py_ssize_t input_grad_workspace_size(const NetLayout* net, Py_ssize_t rows) noexcept nogil:
    """Elements of workspace of network_input_grad over up to `rows` samples: a pass's,
    and one (rows, n_in) block for each output's dX."""
    return workspace_size(net, rows) + rows * net.n_in


cdef void network_input_grad(const NetLayout* net, const floating* params,
                             const floating* X, floating* J, Py_ssize_t m, Py_ssize_t n,
                             Py_ssize_t rows, floating* ws) noexcept nogil:
    """J[i, j, :] = d out_j(X[i]) / d X[i] for the first m <= n_out outputs, n <= rows samples.

    X (n, n_in), J (n, m, n_in); ws holds input_grad_workspace_size(net, rows) elements.
    One forward pass, then per output j one backward pass seeded with dA = e_j in every
    row: the output activation's backward turns it into row j of its Jacobian in every row
    (for softmax A * (e_j - A_j), which couples the outputs).
    """
    cdef const Layer* last = &net.layers[net.n_layers - 1]
    cdef Py_ssize_t i, j, n_in = net.n_in, n_out = net.n_out
    cdef floating* dZ = ws + rows * net.scratch_offset
    cdef floating* dA = dZ + rows * net.max_width
    cdef floating* dX = ws + workspace_size(net, rows)
    cdef floating* out = network_forward(net, params, X, n, rows, ws)
    for j in range(m):
        memset(dA, 0, n * n_out * sizeof(floating))
        for i in range(n):
            dA[i * n_out + j] = 1
        activation_backward(last.activation, dZ, ws + rows * last.z_offset, out, dA, n,
                            n_out, &net.act)
        # With one output J (n, 1, n_in) is dX itself; else dX is copied to J[:, j, :].
        network_backward(net, params, X, n, rows, ws, NULL, False, J if m == 1 else dX)
        if m > 1:
            for i in range(n):
                memcpy(J + (i * m + j) * n_in, dX + i * n_in, n_in * sizeof(floating))


cdef void predict_rows(const NetLayout* net, const floating* params, const floating* X,
                       floating* out, Py_ssize_t n, Py_ssize_t rows,
                       floating* ws) noexcept nogil:
    """out (n, n_out) = network(X (n, n_in)), `rows` samples at a time."""
    cdef Py_ssize_t start = 0, size
    while start < n:
        size = min(rows, n - start)
        network_forward(net, params, X + start * net.n_in, size, rows, ws,
                        out + start * net.n_out)
        start += size


cdef void input_grad_rows(const NetLayout* net, const floating* params, const floating* X,
                          floating* J, Py_ssize_t m, Py_ssize_t n, Py_ssize_t rows,
                          floating* ws) noexcept nogil:
    """J (n, m, n_in) = input Jacobians of X (n, n_in), `rows` samples at a time."""
    cdef Py_ssize_t start = 0, size
    while start < n:
        size = min(rows, n - start)
        network_input_grad(net, params, X + start * net.n_in, J + start * m * net.n_in, m,
                           size, rows, ws)
        start += size


cdef int check_target_shape(Py_ssize_t rows, Py_ssize_t cols, int loss,
                            const NetLayout* net, Py_ssize_t n) except -1:
    """The targets must be (n, loss_target_width(loss, n_out)): the compiled loops read
    exactly that many values (a last guard; nnfast.network validates y with a clearer
    message first)."""
    cdef Py_ssize_t y_cols = loss_target_width(loss, net.n_out)
    if rows != n or cols != y_cols:
        raise ValueError(f"Y: expected shape ({n}, {y_cols}), got ({rows}, {cols})")
    return 0


cdef int check_loss_arguments(const NetLayout* net, Py_ssize_t n, int loss, Py_ssize_t y_rows,
                              Py_ssize_t y_cols, Py_ssize_t w_size,
                              Py_ssize_t grad_size) except -1:
    """The sizes a loss_and_grad entry point relies on besides params and X: a loss code, at
    least one sample, Y's shape, and w's and grad's lengths (-1: not given)."""
    if loss < LOSS_MSE or loss > LOSS_GAUSSIAN_NLL:
        raise ValueError(f"loss: expected a code in [{LOSS_MSE}, {LOSS_GAUSSIAN_NLL}], "
                         f"got {loss}")
    if n == 0:
        raise ValueError("X: expected at least one sample, got 0 rows")
    check_target_shape(y_rows, y_cols, loss, net, n)
    if w_size >= 0 and w_size != n:
        raise ValueError(f"w: expected {n} sample weights (one per row of X), got {w_size}")
    if grad_size >= 0 and grad_size != net.n_params:
        raise ValueError(f"grad: expected {net.n_params} values (the network's n_params), "
                         f"got {grad_size}")
    return 0


cdef double weight_penalty(const NetLayout* net, const floating* params, floating* grad,
                           double l2) noexcept nogil:
    """0.5 l2 ΣW² over every layer's weights (not its biases); adds l2 W to grad unless
    grad is NULL."""
    cdef Py_ssize_t l, i
    cdef const Layer* layer
    cdef double total = 0, squares
    for l in range(net.n_layers):
        layer = &net.layers[l]
        if grad != NULL:
            total += l2_penalty(grad + layer.w_offset, params + layer.w_offset,
                                layer.b_offset - layer.w_offset, l2)
        else:
            squares = 0
            for i in range(layer.w_offset, layer.b_offset):
                squares += <double>params[i] * params[i]
            total += 0.5 * l2 * squares
    return total
