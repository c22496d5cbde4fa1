# Row-major wrappers over the BLAS that SciPy ships (scipy.linalg.cython_blas).
#
# The routines are looked up once, at import, from the C-API capsules of
# scipy.linalg.cython_blas, so building nnfast does not need SciPy's .pxd files.
from cython cimport floating


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating* A, int lda, const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil
