"""Row-major GEMM over scipy.linalg.cython_blas, callable without the GIL.

    C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C[m, n]

Arrays are row-major. A row-major matrix is the transpose of the same memory read
column-major, so the row-major product is computed as the column-major
C^T = op(B)^T @ op(A)^T: the operands swap places and keep their transpose flags.
"""

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython cimport floating

ctypedef void (*dgemm_ptr)(char* transa, char* transb, int* m, int* n, int* k,
                           double* alpha, double* a, int* lda, double* b, int* ldb,
                           double* beta, double* c, int* ldc) noexcept nogil
ctypedef void (*sgemm_ptr)(char* transa, char* transb, int* m, int* n, int* k,
                           float* alpha, float* a, int* lda, float* b, int* ldb,
                           float* beta, float* c, int* ldc) noexcept nogil

cdef dgemm_ptr _dgemm = NULL
cdef sgemm_ptr _sgemm = NULL


cdef void* _blas_function(str name) except NULL:
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__[name]
    return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))


_dgemm = <dgemm_ptr>_blas_function("dgemm")
_sgemm = <sgemm_ptr>_blas_function("sgemm")


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating* A, int lda, const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C = alpha * op(A) @ op(B) + beta * C (leading dimensions in elements)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m == 0 or n == 0:
        return
    if floating is double:
        _dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
               &beta, C, &ldc)
    else:
        _sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
               &beta, C, &ldc)
