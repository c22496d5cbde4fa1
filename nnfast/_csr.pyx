"""Sparse rows for the compiled loops: the CSR checks, the row gather, the full-batch loss.

A CSR matrix X (n_rows, n_cols) is three arrays: ``data`` (nnz,) values, ``indices`` (nnz,)
their columns and ``indptr`` (n_rows + 1,), row r being ``data[indptr[r]:indptr[r + 1]]``.
`gather_rows` writes chosen rows densely into a buffer, adding up duplicate entries as
``X.toarray()`` does (zeros, then ``+=`` in storage order), so the buffer holds exactly the
values of the dense matrix: a training batch (nnfast/_train.pyx) or a loss chunk here then
runs the dense computation unchanged, and gives the dense result bit for bit.

`CsrSource` checks everything the gather relies on (indptr starts at 0, never decreases and
ends at nnz, which is the length of indices and data; every index lies in [0, n_cols);
intp indices, values of the network's dtype, aligned) and raises ValueError or TypeError
naming the argument: the entry points call it before any pointer is read.
"""

from cython cimport floating
from libc.string cimport memset

import numpy as np

from nnfast._kernels cimport (
    cache_aligned_free,
    cache_aligned_malloc,
    cache_lines_of,
    check_aligned,
    loss_target_width,
)
from nnfast._losses cimport loss_delta
from nnfast._network cimport (
    Layer,
    Layout,
    NetLayout,
    check_loss_arguments,
    network_forward,
    network_loss_grad,
    weight_penalty,
    workspace_size,
)

# loss_and_grad densifies CHUNK_ROWS rows at a time, the chunk of nnfast._network's own
# loss_and_grad: the same sums in the same order, so the dense result bit for bit. A chunk
# is kept within CHUNK_BYTES; wider rows get fewer per chunk (equal up to summation order).
cdef Py_ssize_t CHUNK_ROWS = 1024
cdef Py_ssize_t CHUNK_BYTES = 8 << 20


cdef bint is_sparse_rows(X):
    return not isinstance(X, np.ndarray) and hasattr(X, "indptr")


cdef object index_array(X, str field, str name):
    array = getattr(X, field)
    if not isinstance(array, np.ndarray) or array.dtype != np.intp or array.ndim != 1:
        raise TypeError(f"{name}.{field}: expected a 1-D array of intp ({np.dtype(np.intp)}), "
                        f"got {type(array).__name__} of dtype {getattr(array, 'dtype', None)}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name}.{field}: expected a contiguous array, got strides "
                         f"{array.strides}")
    return array


cdef class CsrSource:
    """The checked CSR arrays of `matrix`, with float64 values (double_values) or float32."""

    def __cinit__(self, matrix, bint double_values, str name):
        cdef Py_ssize_t n_rows, n_cols, nnz, i
        cdef const Py_ssize_t[::1] indptr
        cdef const Py_ssize_t[::1] indices
        shape = tuple(matrix.shape)
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"{name}: expected a 2-D shape, got {shape}")
        n_rows, n_cols = shape
        self.matrix = matrix
        self.indptr_view = indptr = index_array(matrix, "indptr", name)
        self.indices_view = indices = index_array(matrix, "indices", name)
        values = matrix.data
        expected = np.float64 if double_values else np.float32
        if not isinstance(values, np.ndarray) or values.dtype != expected or values.ndim != 1:
            raise TypeError(f"{name}.data: expected a 1-D array of {np.dtype(expected)} "
                            f"(the network's dtype), got {type(values).__name__} of dtype "
                            f"{getattr(values, 'dtype', None)}")
        if not values.flags.c_contiguous:
            raise ValueError(f"{name}.data: expected a contiguous array, got strides "
                             f"{values.strides}")
        if double_values:
            self.data64 = values
        else:
            self.data32 = values
        if indptr.shape[0] != n_rows + 1:
            raise ValueError(f"{name}.indptr: expected {n_rows + 1} row pointers (one per row "
                             f"and one past the last), got {indptr.shape[0]}")
        if indptr[0] != 0:
            raise ValueError(f"{name}.indptr: expected 0 as its first entry, got {indptr[0]}")
        for i in range(n_rows):
            if indptr[i + 1] < indptr[i]:
                raise ValueError(f"{name}.indptr: expected non-decreasing row pointers, got "
                                 f"{indptr[i]} then {indptr[i + 1]} at position {i}")
        nnz = indptr[n_rows]
        if indices.shape[0] != nnz:
            raise ValueError(f"{name}.indices: expected {nnz} column indices (the last entry "
                             f"of indptr), got {indices.shape[0]}")
        if values.shape[0] != nnz:
            raise ValueError(f"{name}.data: expected {nnz} values (the last entry of indptr), "
                             f"got {values.shape[0]}")
        for i in range(nnz):
            if not 0 <= indices[i] < n_cols:
                raise ValueError(f"{name}.indices: expected column indices in [0, {n_cols}), "
                                 f"got {indices[i]} at position {i}")
        self.c.n_rows, self.c.n_cols = n_rows, n_cols
        self.c.indptr = &indptr[0]
        self.c.indices = &indices[0] if nnz else NULL
        if nnz == 0:
            self.c.data = NULL
        elif double_values:
            self.c.data = &self.data64[0]
        else:
            self.c.data = &self.data32[0]
        check_aligned(self.c.indptr, sizeof(Py_ssize_t), f"{name}.indptr")
        check_aligned(self.c.indices, sizeof(Py_ssize_t), f"{name}.indices")
        check_aligned(self.c.data, sizeof(double) if double_values else sizeof(float),
                      f"{name}.data")


cdef void gather_rows(floating* out, const CsrRows* X, const Py_ssize_t* order,
                      Py_ssize_t start, Py_ssize_t size) noexcept nogil:
    """out (size, n_cols) = rows order[start:start + size] of X, dense (rows start to
    start + size when order is NULL); duplicate entries add up, as in X.toarray()."""
    cdef const floating* values = <const floating*>X.data
    cdef Py_ssize_t r, k, row, n_cols = X.n_cols
    cdef floating* dense
    memset(out, 0, size * n_cols * sizeof(floating))
    for r in range(size):
        row = order[start + r] if order != NULL else start + r
        dense = out + r * n_cols
        for k in range(X.indptr[row], X.indptr[row + 1]):
            dense[X.indices[k]] += values[k]


cdef double sparse_chunked_loss(const NetLayout* net, const floating* params,
                                const CsrRows* X, const floating* Y, const floating* w,
                                Py_ssize_t rows, double inv_weight_sum, int loss,
                                floating* grad, floating* Xc, floating* ws) noexcept nogil:
    """nnfast._network's chunked loss (and gradient when grad != NULL) over the rows of X,
    each chunk of `rows` rows densified into Xc first."""
    cdef const Layer* last = &net.layers[net.n_layers - 1]
    cdef Py_ssize_t start = 0, size, n = X.n_rows, y_cols = loss_target_width(loss, net.n_out)
    cdef double total = 0
    cdef floating* out
    while start < n:
        size = min(rows, n - start)
        gather_rows(Xc, X, NULL, start, size)
        if grad != NULL:
            total += network_loss_grad(net, params, Xc, Y + start * y_cols,
                                       w + start if w != NULL else NULL, size, rows,
                                       inv_weight_sum, loss, grad, start > 0, ws)
        else:
            out = network_forward(net, params, Xc, size, rows, ws)
            total += loss_delta(loss, last.activation, ws + rows * net.scratch_offset,
                                ws + rows * last.z_offset, out, Y + start * y_cols,
                                w + start if w != NULL else NULL, size, last.n_out,
                                inv_weight_sum, &net.act)
        start += size
    return total


def loss_and_grad(Layout layout not None, const floating[::1] params, X,
                  const floating[:, ::1] Y, const floating[::1] w, int loss,
                  double inv_weight_sum, floating[::1] grad=None, double l2=0.0):
    """nnfast._network.loss_and_grad for sparse rows X (data, indices, indptr, shape):
    the data loss plus 0.5 l2 ΣW², its gradient written to grad when given.

    X (n, n_in) CSR with intp indices and values of params' dtype, Y (n, n_out) (n_out / 2
    columns for gaussian_nll), w (n,) or None, grad (n_params,) or None.
    """
    cdef const NetLayout* net = &layout.c
    cdef CsrSource source = CsrSource(X, floating is double, "X")
    cdef Py_ssize_t n = source.c.n_rows, rows, row_bytes, ws_values
    cdef floating* ws
    cdef const floating* w_ptr
    cdef floating* grad_ptr
    cdef double total
    if params.shape[0] != net.n_params:
        raise ValueError(f"params: expected {net.n_params} values (the network's n_params), "
                         f"got {params.shape[0]}")
    if source.c.n_cols != net.n_in:
        raise ValueError(f"X: expected {net.n_in} columns (the network's input width), "
                         f"got {source.c.n_cols}")
    check_loss_arguments(net, n, loss, Y.shape[0], Y.shape[1],
                         -1 if w is None else w.shape[0], -1 if grad is None else grad.shape[0])
    w_ptr = NULL if w is None else &w[0]
    grad_ptr = NULL if grad is None else &grad[0]
    check_aligned(&params[0], sizeof(floating), "params")
    check_aligned(&Y[0, 0], sizeof(floating), "Y")
    check_aligned(w_ptr, sizeof(floating), "w")
    check_aligned(grad_ptr, sizeof(floating), "grad")
    row_bytes = max(1, net.n_in) * <Py_ssize_t>sizeof(floating)
    rows = min(n, CHUNK_ROWS, max(1, CHUNK_BYTES // row_bytes))
    ws_values = cache_lines_of(workspace_size(net, rows), sizeof(floating))
    ws = <floating*>cache_aligned_malloc((ws_values + rows * net.n_in) * sizeof(floating))
    if ws == NULL:
        raise MemoryError("nnfast: cannot allocate the loss workspace")
    with nogil:
        total = sparse_chunked_loss(net, &params[0], &source.c, &Y[0, 0], w_ptr, rows,
                                    inv_weight_sum, loss, grad_ptr, ws + ws_values, ws)
        if l2 != 0:
            total += weight_penalty(net, &params[0], grad_ptr, l2)
    cache_aligned_free(ws)
    return total
