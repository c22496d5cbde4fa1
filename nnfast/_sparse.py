"""Sparse input (SciPy CSR / CSC) for the scikit-learn estimators, never densified whole.

- :func:`as_csr` checks a CSR or CSC matrix's structure before SciPy touches it (SciPy's
  own conversions trust it: an out-of-range index would write outside an array), then
  returns a canonical CSR matrix (CSC converted once: a copy of the sparse data, not a
  densification; duplicates summed and indices sorted on a copy, never in the caller's
  matrix) with values of the network's dtype and intp indices.
- Training reads it as :class:`SparseRows` (:func:`compiled_rows`): the compiled loop
  gathers each batch's rows into its dense batch buffer (nnfast/_csr.pyx), so a fit
  equals the fit on ``X.toarray()`` bit for bit. L-BFGS's full-batch loss densifies one
  chunk of rows at a time in compiled code (``nnfast._csr.loss_and_grad``).
- Prediction (and so validation scores) and input Jacobians densify row chunks of at most
  DENSE_CHUNK_BYTES here: the network computes every row on its own, so chunks give
  exactly the dense result.
"""

from __future__ import annotations

import collections
import sys

import numpy as np

# The dense copy of one chunk of rows that prediction makes: at most this many bytes (and
# at least one row).
DENSE_CHUNK_BYTES = 4 << 20

# A CSR matrix as the compiled loops read it: values (nnz,) of the network's dtype,
# intp column indices (nnz,) and row pointers (n_rows + 1,), shape (n_rows, n_cols).
SparseRows = collections.namedtuple("SparseRows", "data indices indptr shape")


def is_sparse(X) -> bool:
    """Whether X is a SciPy sparse matrix or array (SciPy not imported: it cannot be)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def _check_structure(X, name):
    """ValueError naming ``name`` unless X's compressed arrays are consistent: indptr of
    n_major + 1 non-decreasing entries from 0 to nnz <= len(indices) == len(data), and
    every index of the first nnz in [0, n_minor)."""
    by_rows = X.format == "csr"
    n_major, n_minor = X.shape if by_rows else X.shape[::-1]
    what = "column" if by_rows else "row"
    indptr, indices, data = np.asarray(X.indptr), np.asarray(X.indices), np.asarray(X.data)
    for field, array in (("indptr", indptr), ("indices", indices)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(
                f"{name}: expected a {X.format} matrix with 1-D integer {field}, "
                f"got shape {array.shape} and dtype {array.dtype}"
            )
    if indptr.shape[0] != n_major + 1:
        raise ValueError(
            f"{name}: a {X.format} matrix of shape {X.shape} needs {n_major + 1} entries in "
            f"indptr, got {indptr.shape[0]}"
        )
    nnz = int(indptr[-1])
    if indptr[0] != 0 or not 0 <= nnz <= min(indices.shape[0], data.shape[0]):
        raise ValueError(
            f"{name}: expected indptr to run from 0 to at most {min(indices.size, data.size)} "
            f"(the stored entries), got {int(indptr[0])} to {nnz}"
        )
    steps = np.diff(indptr)
    if steps.size and steps.min() < 0:
        at = int(np.argmin(steps))
        raise ValueError(
            f"{name}: expected non-decreasing indptr, got {int(indptr[at])} then "
            f"{int(indptr[at + 1])} at position {at}"
        )
    if nnz:
        used = indices[:nnz]
        low, high = int(used.min()), int(used.max())
        if low < 0 or high >= n_minor:
            bad = low if low < 0 else high
            at = int(np.flatnonzero(used == bad)[0])
            raise ValueError(
                f"{name}: expected {what} indices in [0, {n_minor}) for shape {X.shape}, "
                f"got {bad} at position {at} of indices"
            )


def as_csr(X, name: str, dtype, check_finite: bool = True):
    """X (CSR or CSC, or any SciPy sparse format) as a canonical CSR matrix of the same
    kind (matrix or array) with values of ``dtype`` and intp indices; ``X`` itself is never
    modified. With check_finite, a value that does not fit in ``dtype`` (1e300 for float32)
    is refused, naming its row and column."""
    if X.format not in ("csr", "csc"):
        X = X.tocsr()  # SciPy's other formats check their indices when built
    _check_structure(X, name)
    nnz = int(X.indptr[-1])
    if X.indices.shape[0] != nnz or X.data.shape[0] != nnz:
        X = type(X)((X.data[:nnz], X.indices[:nnz], X.indptr), shape=X.shape)
    X = X.tocsr()  # a CSC matrix: one conversion, a copy of its entries
    if not X.has_canonical_format:
        X = X.copy()  # duplicates are summed in the input's dtype, as toarray() sums them
        X.sum_duplicates()
    dtype = np.dtype(dtype)
    data = X.data
    if data.dtype != dtype or not data.flags.aligned:
        with np.errstate(over="ignore"):
            data = np.ascontiguousarray(data, dtype=dtype).copy()
    if check_finite and data.dtype.kind == "f" and not np.isfinite(data).all():
        at = int(np.flatnonzero(~np.isfinite(data))[0])
        row = int(np.searchsorted(X.indptr, at, side="right")) - 1
        col = int(X.indices[at])
        given = X.data[at].item()
        if np.isfinite(given):
            raise ValueError(
                f"{name}: expected values that fit in {dtype.name} (magnitude at most "
                f"{float(np.finfo(dtype).max):.6g}), got {given!r} at index ({row}, {col})"
            )
        raise ValueError(f"{name}: expected finite values, got {given!r} at index ({row}, {col})")
    out = type(X)((data, X.indices, X.indptr), shape=X.shape, copy=False)
    # SciPy may store indices as int32 again: the compiled loops read intp.
    out.indices = np.asarray(X.indices, dtype=np.intp)
    out.indptr = np.asarray(X.indptr, dtype=np.intp)
    out.has_canonical_format = True
    return out


def compiled_rows(X):
    """X as the compiled loops take it: a dense array unchanged, a CSR matrix as
    SparseRows (intp indices: a copy only when SciPy stored them narrower)."""
    if not is_sparse(X):
        return X
    if X.format != "csr":
        X = X.tocsr()
    return SparseRows(
        X.data,
        np.ascontiguousarray(X.indices, dtype=np.intp),
        np.ascontiguousarray(X.indptr, dtype=np.intp),
        tuple(X.shape),
    )


def chunk_rows(n_cols: int, dtype) -> int:
    """Rows per dense chunk: DENSE_CHUNK_BYTES of them, at least one."""
    return max(1, DENSE_CHUNK_BYTES // max(1, n_cols * np.dtype(dtype).itemsize))


def dense_chunks(X, dtype):
    """(start, stop, dense rows start:stop of X as a C-contiguous array of dtype)."""
    n = X.shape[0]
    step = chunk_rows(X.shape[1], dtype)
    for start in range(0, n, step):
        stop = min(n, start + step)
        yield start, stop, np.ascontiguousarray(X[start:stop].toarray(), dtype=dtype)


def predict_into(net, X, out):
    """out (n, n_out) = the CompiledNetwork net at the rows of the CSR matrix X."""
    for start, stop, chunk in dense_chunks(X, net.dtype):
        net.predict_into(chunk, out[start:stop])


def input_grad_into(net, X, J):
    """J (n, m, n_in) = the input Jacobians of net's first m outputs at the rows of X."""
    for start, stop, chunk in dense_chunks(X, net.dtype):
        net.input_grad_into(chunk, J[start:stop])
