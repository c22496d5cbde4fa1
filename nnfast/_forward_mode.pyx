"""Forward-mode input Jacobians: the n_in tangents of each sample pushed up the stack with
its values (nnfast.MLP.input_grad's mode "forward", chosen when n_in < the outputs asked
for: fewer passes' worth of products than one backward pass per output).
"""

from cython cimport floating
from libc.string cimport memcpy, memset

from nnfast._kernels cimport (
    ACT_IDENTITY,
    ACT_MAXOUT,
    ActParams,
    activation_backward,
    activation_forward,
    dense_forward,
    matmul,
)
from nnfast._network cimport Layer, NetLayout


# Forward mode takes chunks of up to this many rows of values and tangents (samples x
# (1 + n_in)).
cdef Py_ssize_t STACK_ROWS = 512


cdef Py_ssize_t forward_mode_rows(const NetLayout* net, Py_ssize_t n) noexcept nogil:
    """Samples per chunk of a forward-mode pass over n samples."""
    return min(n, max(1, STACK_ROWS // (1 + net.n_in)))


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
