"""Forward and backward passes over a layer stack, and the Python entry points to them.

A workspace for up to `rows` samples holds, per layer, Z (rows, width) and A (rows, n_out)
(A shares Z's memory for identity layers), then two scratch blocks (rows, max_width) that
carry dA and dZ down the stack during backward, then room for one transposed W. Prediction,
loss_and_grad and input_grad run over the data in chunks of CHUNK_ROWS so that their workspace
stays small for any n. Forward-mode input_grad has its own workspace: two stacks of values
and tangents (see network_input_grad_forward).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from nnfast._kernels cimport (
    ACT_IDENTITY,
    ACT_MAXOUT,
    ACT_TANH,
    LOSS_GAUSSIAN_NLL,
    LOSS_MSE,
    activation_backward,
    activation_forward,
    check_aligned,
    check_shape,
    dense_backward,
    dense_forward,
    loss_target_width,
    matmul,
    matmul_nt_tanh_backward,
)
from nnfast._losses cimport l2_penalty, loss_delta


from nnfast._spec import ACTIVATION_CODES as _ACTIVATION_CODES

cdef Py_ssize_t CHUNK_ROWS = 1024
# Workspaces up to this many values live on the stack (predicting a few samples).
cdef enum:
    STACK_WORKSPACE = 2048


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
    cdef Py_ssize_t l
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
        dense_forward(Z, inp, params + layer.w_offset, params + layer.b_offset,
                      n, layer.n_in, layer.width)
        activation_forward(layer.activation, A, Z, n, layer.n_out, &net.act)
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
    either may be NULL. Both scratch blocks are overwritten (dX may be the second one);
    the forward values are kept.
    """
    cdef Py_ssize_t l
    cdef const Layer* layer
    cdef const Layer* below
    cdef floating* dZ = ws + rows * net.scratch_offset
    cdef floating* dA = dZ + rows * net.max_width
    cdef const floating* inp
    cdef bint fused
    for l in range(net.n_layers - 1, -1, -1):
        layer = &net.layers[l]
        if l > 0:
            below = &net.layers[l - 1]
            inp = ws + rows * below.a_offset
        else:
            inp = X
        # A tanh below: its backward runs in the epilogue of the product dZ @ W.T, which
        # writes the layer below's dZ into the other scratch block, and the blocks swap
        # roles (not when layer 0 would then write dX over its own dZ).
        fused = l > 0 and below.activation == ACT_TANH and not (l == 1 and dX == dA)
        dense_backward(grad + layer.w_offset if grad != NULL else NULL,
                       grad + layer.b_offset if grad != NULL else NULL,
                       NULL if fused else (dA if l > 0 else dX), dZ, inp,
                       params + layer.w_offset, n, layer.n_in, layer.width, accumulate,
                       ws + rows * net.ws_per_row)
        if fused:
            matmul_nt_tanh_backward(dA, dZ, params + layer.w_offset, inp, n, layer.width,
                                    layer.n_in, ws + rows * net.ws_per_row)
            dZ, dA = dA, dZ
        elif l > 0:
            activation_backward(below.activation, dZ, ws + rows * below.z_offset,
                                ws + rows * below.a_offset, dA, n, below.n_out, &net.act)


cdef void network_input_grad(const NetLayout* net, const floating* params,
                             const floating* X, floating* J, Py_ssize_t m, Py_ssize_t n,
                             Py_ssize_t rows, floating* ws) noexcept nogil:
    """J[i, j, :] = d out_j(X[i]) / d X[i] for the first m <= n_out outputs, n <= rows samples.

    X (n, n_in), J (n, m, n_in). One forward pass, then per output j one backward pass
    seeded with dA = e_j in every row: the output activation's backward turns it into
    row j of its Jacobian in every row (for softmax A * (e_j - A_j), which couples
    the outputs).
    """
    cdef const Layer* last = &net.layers[net.n_layers - 1]
    cdef Py_ssize_t i, j, n_in = net.n_in, n_out = net.n_out
    cdef floating* dZ = ws + rows * net.scratch_offset
    cdef floating* dA = dZ + rows * net.max_width
    cdef floating* out = network_forward(net, params, X, n, rows, ws)
    for j in range(m):
        memset(dA, 0, n * n_out * sizeof(floating))
        for i in range(n):
            dA[i * n_out + j] = 1
        activation_backward(last.activation, dZ, ws + rows * last.z_offset, out, dA, n,
                            n_out, &net.act)
        # With one output J (n, 1, n_in) is dX itself; else dX lands in the free scratch
        # block and is copied to J[:, j, :].
        network_backward(net, params, X, n, rows, ws, NULL, False, J if m == 1 else dA)
        if m > 1:
            for i in range(n):
                memcpy(J + (i * m + j) * n_in, dA + i * n_in, n_in * sizeof(floating))


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


# ---- forward mode: n_in tangents pushed up the stack with the values --------------------

# Forward mode takes chunks of up to this many rows of values and tangents (samples x
# (1 + n_in)).
cdef Py_ssize_t STACK_ROWS = 512


cdef void activation_tangents(int code, floating* dA, const floating* Z, const floating* A,
                              const floating* dZ, Py_ssize_t t, Py_ssize_t m,
                              const ActParams* p) noexcept nogil:
    """dA[k] = f'(Z) dZ[k] for the t tangents of one sample (Jacobian-vector products).

    dA (t, m), dZ (t, width), Z (width,), A (m,); width = m * pieces for maxout, else m;
    dA must not overlap dZ. The element-wise activations run their backward kernels (the
    same conventions at the kinks), and so does softmax, whose Jacobian diag(a) - a aᵀ is
    symmetric: a ⊙ (t − a·t). Maxout passes on the tangent of each unit's winning piece,
    the first of ties, as maxout_backward routes the gradient.
    """
    cdef Py_ssize_t k, u, q, best, pieces = p.pieces
    if code == ACT_MAXOUT:
        for u in range(m):
            best = 0
            for q in range(1, pieces):
                if Z[u * pieces + q] > Z[u * pieces + best]:
                    best = q
            for k in range(t):
                dA[k * m + u] = dZ[k * m * pieces + u * pieces + best]
    else:
        for k in range(t):
            activation_backward(code, dA + k * m, Z, A, dZ + k * m, 1, m, p)


cdef Py_ssize_t forward_workspace_size(const NetLayout* net, Py_ssize_t rows) noexcept nogil:
    """Elements of workspace of a forward-mode pass over up to `rows` samples: two stacks
    of rows * (1 + n_in) rows of max_width."""
    return 2 * rows * (1 + net.n_in) * net.max_width


cdef void network_input_grad_forward(const NetLayout* net, const floating* params,
                                     const floating* X, floating* J, Py_ssize_t m,
                                     Py_ssize_t n, Py_ssize_t rows,
                                     floating* ws) noexcept nogil:
    """J[i, j, :] = d out_j(X[i]) / d X[i] for the first m <= n_out outputs, n <= rows
    samples, by forward mode: dZ_l = dA_{l-1} @ W_l, dA_l = f_l'(Z_l) dZ_l.

    X (n, n_in), J (n, m, n_in); ws holds forward_workspace_size(net, rows) elements. Each
    of its two blocks is a stack of n value rows then n * n_in tangent rows, row
    n + i * n_in + k being the derivative of sample i's row with respect to its input k:
    [Z_l; dZ_l] = [A_{l-1}; dA_{l-1}] @ W_l (+ b on the value rows) is one product of
    n (1 + n_in) rows, whose tiles stay full even for one sample (a lone value row would be
    bound by FMA latency). dA_0 is the identity, so dZ_1 = W_1 in every sample: the first
    layer multiplies the values only.
    """
    cdef Py_ssize_t l, i, j, k, n_in = net.n_in, n_out = net.n_out, stack = n * (1 + n_in)
    cdef Py_ssize_t dz_step
    cdef const Layer* layer
    cdef floating* pre = ws  # [Z_l; dZ_l] (stack, width)
    cdef floating* post = ws + rows * (1 + n_in) * net.max_width  # [A_l; dA_l] (stack, n_out)
    cdef const floating* dZ
    cdef const floating* W
    cdef const floating* b
    for l in range(net.n_layers):
        layer = &net.layers[l]
        W = params + layer.w_offset
        b = params + layer.b_offset
        if l == 0:
            dense_forward(pre, X, W, b, n, n_in, layer.width)
            dZ = W
            dz_step = 0
        else:
            # Start the values' sums from b as dense_forward does: the same Z as predict and
            # reverse mode, so both modes see every kink on the same side.
            for i in range(n):
                memcpy(pre + i * layer.width, b, layer.width * sizeof(floating))
            memset(pre + n * layer.width, 0, n * n_in * layer.width * sizeof(floating))
            matmul(pre, post, W, stack, layer.n_in, layer.width, True)
            dZ = pre + n * layer.width
            dz_step = n_in * layer.width
            if layer.activation == ACT_IDENTITY:  # [A; dA] = [Z; dZ]: trade blocks, no copy
                pre, post = post, pre
                continue
        activation_forward(layer.activation, post, pre, n, layer.n_out, &net.act)
        for i in range(n):
            activation_tangents(layer.activation, post + (n + i * n_in) * layer.n_out,
                                pre + i * layer.width, post + i * layer.n_out,
                                dZ + i * dz_step, n_in, layer.n_out, &net.act)
    post += n * n_out  # the output's tangents; J[i] is the transpose of sample i's block
    for i in range(n):
        for j in range(m):
            for k in range(n_in):
                J[(i * m + j) * n_in + k] = post[(i * n_in + k) * n_out + j]


cdef void input_grad_forward_rows(const NetLayout* net, const floating* params,
                                  const floating* X, floating* J, Py_ssize_t m, Py_ssize_t n,
                                  Py_ssize_t rows, floating* ws) noexcept nogil:
    """J (n, m, n_in) = input Jacobians of X (n, n_in) by forward mode, `rows` at a time."""
    cdef Py_ssize_t start = 0, size
    while start < n:
        size = min(rows, n - start)
        network_input_grad_forward(net, params, X + start * net.n_in,
                                   J + start * m * net.n_in, m, size, rows, ws)
        start += size


cdef int input_grad_forward(const NetLayout* net, const floating* params, const floating* X,
                            floating* J, Py_ssize_t m, Py_ssize_t n) except -1:
    """input_grad's forward mode, in chunks of STACK_ROWS value and tangent rows."""
    cdef Py_ssize_t rows = min(n, max(1, STACK_ROWS // (1 + net.n_in)))
    cdef floating* ws = <floating*>malloc(forward_workspace_size(net, rows) * sizeof(floating))
    if ws == NULL:
        raise MemoryError("nnfast: cannot allocate the input-gradient workspace")
    if n * net.n_params * (net.n_in + 1) > 100_000:  # as in predict: short passes keep the GIL
        with nogil:
            input_grad_forward_rows(net, params, X, J, m, n, rows, ws)
    else:
        input_grad_forward_rows(net, params, X, J, m, n, rows, ws)
    free(ws)
    return 0


# ---- Python entry points (inputs validated by nnfast.network) ---------------------------
# Each re-checks every size it relies on against the buffers it gets, and the alignment of
# every pointer it passes on, and raises ValueError naming the argument: a last guard, so
# that no misuse or race in Python code (an estimator refitted on data of another width
# while it predicts) can make a kernel read or write outside an array.

cdef int check_entry(const NetLayout* net, Py_ssize_t n_params, Py_ssize_t x_cols) except -1:
    """params must hold the layout's n_params values and X have its n_in columns."""
    if n_params != net.n_params:
        raise ValueError(f"params: expected {net.n_params} values (the network's n_params), "
                         f"got {n_params}")
    if x_cols != net.n_in:
        raise ValueError(f"X: expected {net.n_in} columns (the network's input width), "
                         f"got {x_cols}")
    return 0


def predict(Layout layout not None, const floating[::1] params, const floating[:, ::1] X,
            floating[:, ::1] out):
    """out = network(X), in chunks of CHUNK_ROWS rows.   X (n, n_in), out (n, n_out)"""
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], rows = min(n, CHUNK_ROWS)
    cdef Py_ssize_t needed = workspace_size(net, rows)
    cdef floating small[STACK_WORKSPACE]
    cdef floating* ws = small
    check_entry(net, params.shape[0], X.shape[1])
    check_shape("out", out.shape[0], out.shape[1], n, net.n_out)
    if n == 0:
        return
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&X[0, 0], sizeof(floating), "X")
    check_aligned(&out[0, 0], sizeof(floating), "out")
    # Latency of one sample is dominated by fixed costs: small networks skip malloc, and the
    # GIL is released only when the pass is long enough for another thread to gain from it.
    if needed > STACK_WORKSPACE:
        ws = <floating*>malloc(needed * sizeof(floating))
        if ws == NULL:
            raise MemoryError("nnfast: cannot allocate the prediction workspace")
    if n * net.n_params > 100_000:
        with nogil:
            predict_rows(net, &params[0], &X[0, 0], &out[0, 0], n, rows, ws)
    else:
        predict_rows(net, &params[0], &X[0, 0], &out[0, 0], n, rows, ws)
    if ws != small:
        free(ws)


def input_grad(Layout layout not None, const floating[::1] params,
               const floating[:, ::1] X, floating[:, :, ::1] J, str mode="auto"):
    """J[i, j, :] = d network(X[i])_j / d X[i] for the first J.shape[1] <= n_out outputs,
    in chunks of CHUNK_ROWS rows.   X (n, n_in), J (n, m, n_in)

    mode "forward" pushes n_in tangents up the stack, "reverse" runs one backward pass per
    output; "auto" takes forward mode when n_in < m (fewer passes' worth of products).
    """
    cdef const NetLayout* net = &layout.c
    cdef Py_ssize_t n = X.shape[0], m = J.shape[1], rows = min(n, CHUNK_ROWS)
    cdef floating* ws
    check_entry(net, params.shape[0], X.shape[1])
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
        input_grad_forward(net, &params[0], &X[0, 0], &J[0, 0, 0], m, n)
        return
    ws = <floating*>malloc(workspace_size(net, rows) * sizeof(floating))
    if ws == NULL:
        raise MemoryError("nnfast: cannot allocate the input-gradient workspace")
    # As in predict: a short pass keeps the GIL (releasing it costs more than it gains).
    if n * net.n_params * (m + 1) > 100_000:
        with nogil:
            input_grad_rows(net, &params[0], &X[0, 0], &J[0, 0, 0], m, n, rows, ws)
    else:
        input_grad_rows(net, &params[0], &X[0, 0], &J[0, 0, 0], m, n, rows, ws)
    free(ws)


cdef int check_target_shape(Py_ssize_t rows, Py_ssize_t cols, int loss,
                            const NetLayout* net, Py_ssize_t n) except -1:
    """The targets must be (n, loss_target_width(loss, n_out)): the compiled loops read
    exactly that many values (a last guard; nnfast.network validates y with a clearer
    message first)."""
    cdef Py_ssize_t y_cols = loss_target_width(loss, net.n_out)
    if rows != n or cols != y_cols:
        raise ValueError(f"Y: expected shape ({n}, {y_cols}), got ({rows}, {cols})")
    return 0


cdef double chunked_loss(const NetLayout* net, const floating* params, const floating* X,
                         const floating* Y, const floating* w, Py_ssize_t n, Py_ssize_t rows,
                         double inv_weight_sum, int loss, floating* grad,
                         floating* ws) noexcept nogil:
    """Data loss of n samples, `rows` at a time; with grad != NULL also its gradient."""
    cdef const Layer* last = &net.layers[net.n_layers - 1]
    cdef Py_ssize_t start = 0, size, y_cols = loss_target_width(loss, net.n_out)
    cdef double total = 0
    cdef floating* out
    while start < n:
        size = min(rows, n - start)
        if grad != NULL:
            total += network_loss_grad(net, params, X + start * net.n_in,
                                       Y + start * y_cols, w + start if w != NULL else NULL,
                                       size, rows, inv_weight_sum, loss, grad, start > 0, ws)
        else:
            out = network_forward(net, params, X + start * net.n_in, size, rows, ws)
            # dZ goes to the scratch block; only the loss value is kept.
            total += loss_delta(loss, last.activation, ws + rows * net.scratch_offset,
                                ws + rows * last.z_offset, out, Y + start * y_cols,
                                w + start if w != NULL else NULL, size, last.n_out,
                                inv_weight_sum, &net.act)
        start += size
    return total


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


def loss_and_grad(Layout layout not None, const floating[::1] params,
                  const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] w,
                  int loss, double inv_weight_sum, floating[::1] grad=None, double l2=0.0):
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
    check_entry(net, params.shape[0], X.shape[1])
    if loss < LOSS_MSE or loss > LOSS_GAUSSIAN_NLL:
        raise ValueError(f"loss: expected a code in [{LOSS_MSE}, {LOSS_GAUSSIAN_NLL}], "
                         f"got {loss}")
    if n == 0:
        raise ValueError("X: expected at least one sample, got 0 rows")
    check_target_shape(Y.shape[0], Y.shape[1], loss, net, n)
    if w is not None and w.shape[0] != n:
        raise ValueError(f"w: expected {n} sample weights (one per row of X), got {w.shape[0]}")
    if grad is not None and grad.shape[0] != net.n_params:
        raise ValueError(f"grad: expected {net.n_params} values (the network's n_params), "
                         f"got {grad.shape[0]}")
    w_ptr = NULL if w is None else &w[0]
    grad_ptr = NULL if grad is None else &grad[0]
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&X[0, 0], sizeof(floating), "X")
    check_aligned(&Y[0, 0], sizeof(floating), "Y")
    check_aligned(w_ptr, sizeof(floating), "w")
    check_aligned(grad_ptr, sizeof(floating), "grad")
    ws = <floating*>malloc(workspace_size(net, rows) * sizeof(floating))
    if ws == NULL:
        raise MemoryError("nnfast: cannot allocate the loss workspace")
    with nogil:
        total = chunked_loss(net, &params[0], &X[0, 0], &Y[0, 0], w_ptr, n, rows,
                             inv_weight_sum, loss, grad_ptr, ws)
        if l2 != 0:
            total += weight_penalty(net, &params[0], grad_ptr, l2)
    free(ws)
    return total


def loss(Layout layout not None, const floating[::1] params, const floating[:, ::1] X,
         const floating[:, ::1] Y, const floating[::1] w, int loss, double inv_weight_sum,
         double l2=0.0):
    """Data loss of (X, Y) plus the l2 term, forward only.   X (n, n_in), Y as for
    loss_and_grad"""
    return loss_and_grad(layout, params, X, Y, w, loss, inv_weight_sum, None, l2)
