# Sparse rows (CSR) for the compiled loops: each batch or chunk of rows is gathered into a
# dense buffer holding exactly the values of X.toarray(), so everything after the gather is
# the dense computation. The matrix itself is never densified whole.

from cython cimport floating


cdef struct CsrRows:
    const void* data            # (nnz,) values of the network's dtype
    const Py_ssize_t* indices   # (nnz,) the column of each value
    const Py_ssize_t* indptr    # (n_rows + 1,): row r is data[indptr[r]:indptr[r + 1]]
    Py_ssize_t n_rows
    Py_ssize_t n_cols


# A matrix's CSR arrays, checked once (sizes, dtypes, index ranges, alignment): `c` points
# into them, and the object keeps them alive while the pointers are in use.
cdef class CsrSource:
    cdef CsrRows c
    cdef readonly object matrix
    cdef const Py_ssize_t[::1] indices_view, indptr_view
    cdef const double[::1] data64
    cdef const float[::1] data32


# Whether X is sparse rows (an object with data, indices, indptr and shape) rather than an array.
cdef bint is_sparse_rows(X)

# out (size, n_cols) = the rows order[start:start + size] of X (rows start.. with order NULL).
cdef void gather_rows(floating* out, const CsrRows* X, const Py_ssize_t* order,
                      Py_ssize_t start, Py_ssize_t size) noexcept nogil
