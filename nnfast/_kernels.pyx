"""Compiled kernels: dense products, activations, losses and optimizer updates.

All arrays are C-contiguous (row-major) raw buffers; shapes are given in each kernel's
comment. Nothing here checks its input: nnfast/kernels.py and nnfast/network.py do.
"""

from cython cimport floating
from libc.math cimport exp, fabs, log, log1p
from libc.string cimport memset

from nnfast._blas cimport gemm


cdef extern from "elementwise.h" nogil:
    # Loops of the layer kernels compiled for AVX-512 / AVX2 / baseline (cpu.h chooses).
    void nnf_tanh_backward_d(double* dZ, const double* A, const double* dA, Py_ssize_t n)
    void nnf_tanh_backward_f(float* dZ, const float* A, const float* dA, Py_ssize_t n)
    void nnf_sigmoid_backward_d(double* dZ, const double* A, const double* dA, Py_ssize_t n)
    void nnf_sigmoid_backward_f(float* dZ, const float* A, const float* dA, Py_ssize_t n)
    void nnf_fill_rows_d(double* Z, const double* b, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_fill_rows_f(float* Z, const float* b, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_add_column_sums_d(double* s, const double* D, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_add_column_sums_f(float* s, const float* D, Py_ssize_t rows, Py_ssize_t cols)
    void nnf_sgd_update_d(double* p, double* v, const double* g, Py_ssize_t n, double lr,
                          double mu, int nesterov)
    void nnf_sgd_update_f(float* p, float* v, const float* g, Py_ssize_t n, float lr,
                          float mu, int nesterov)
    void nnf_adam_update_d(double* p, double* m, double* v, const double* g, Py_ssize_t n,
                           double lr, double b1, double b2, double c1, double c2, double eps)
    void nnf_adam_update_f(float* p, float* m, float* v, const float* g, Py_ssize_t n,
                           float lr, float b1, float b2, float c1, float c2, float eps)


cdef extern from "finite.h" nogil:
    bint nnf_all_finite_d(const double* x, Py_ssize_t n)
    bint nnf_all_finite_f(const float* x, Py_ssize_t n)


cdef extern from "gemm_small.h" nogil:
    # Register-tiled products for small and medium matrices (nnfast/src/gemm_small.h):
    # C (m, n) = op(A) @ B (+ C), op(A)[i, p] = A[i a_row + p a_col], B rows contiguous;
    # AVX-512 / AVX2+FMA / portable paths, chosen by cpu.h.
    void nnf_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* A,
                    Py_ssize_t a_row, Py_ssize_t a_col, const double* B, Py_ssize_t ldb,
                    double* C, Py_ssize_t ldc, int accumulate)
    void nnf_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                    Py_ssize_t a_row, Py_ssize_t a_col, const float* B, Py_ssize_t ldb,
                    float* C, Py_ssize_t ldc, int accumulate)


cdef extern from "fastmath.h" nogil:
    # Vectorised tanh, sigmoid, exp and elu over arrays (nnfast/src/fastmath.h): within
    # 2.5 ulp over the whole range, exact at ±0, ±inf and NaN, with AVX-512 / AVX2 / SSE2
    # code paths chosen by cpu.h. out == in is allowed.
    void nnf_tanh_d(double* out, const double* inp, Py_ssize_t n)
    void nnf_tanh_f(float* out, const float* inp, Py_ssize_t n)
    void nnf_sigmoid_d(double* out, const double* inp, Py_ssize_t n)
    void nnf_sigmoid_f(float* out, const float* inp, Py_ssize_t n)
    void nnf_exp_d(double* out, const double* inp, Py_ssize_t n)
    void nnf_exp_f(float* out, const float* inp, Py_ssize_t n)
    void nnf_elu_d(double* out, const double* inp, Py_ssize_t n, double alpha)
    void nnf_elu_f(float* out, const float* inp, Py_ssize_t n, float alpha)


cdef extern from "cpu.h" nogil:
    # The CPU's features, detected once, and the code path of each kernel family: the
    # widest it can run here, up to the limit set by nnf_set_path_limit.
    ctypedef struct nnf_cpu_info:
        char vendor[13]
        char brand[49]
        int family, model, stepping
        unsigned features
    const nnf_cpu_info* nnf_cpu()
    const char* nnf_path_name(int path)
    const char* nnf_feature_name(int bit)
    int nnf_family_path(int family)
    void nnf_set_path_limit(int limit)
    int NNF_FEATURE_COUNT

# Products with at least this many multiply-adds go to BLAS; 0 (the default) means never.
# Measured here, one thread, the kernels of gemm_small.h match or beat OpenBLAS at every size
# on every path (AVX-512: 1.2-2x; AVX2: equal from ~512^3) and compute each element as one
# ordered chain, so a prediction never depends on the other rows of X. A multi-threaded BLAS
# can win on large products: NNFAST_BLAS_MIN_FLOPS (read at import) or set_blas_min_flops()
# hands them over, at the price of that independence.
cdef Py_ssize_t BLAS_MIN_FLOPS = 0


# ---- products -------------------------------------------------------------------------

cdef inline void _small_gemm(floating* C, const floating* A, Py_ssize_t a_row,
                             Py_ssize_t a_col, const floating* B, Py_ssize_t m, Py_ssize_t k,
                             Py_ssize_t n, bint accumulate) noexcept nogil:
    """C (m, n) (+)= op(A) (m, k) @ B (k, n) with op(A)[i, p] = A[i a_row + p a_col]."""
    if floating is float:
        nnf_gemm_f(m, n, k, A, a_row, a_col, B, n, C, n, accumulate)
    else:
        nnf_gemm_d(m, n, k, A, a_row, a_col, B, n, C, n, accumulate)


cdef inline bint _use_blas(Py_ssize_t m, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    return BLAS_MIN_FLOPS > 0 and m * k * n >= BLAS_MIN_FLOPS


cdef void matvec(floating* y, const floating* A, const floating* x,
                 Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """y = A @ x.   y (m,), A (m, n), x (n,)"""
    _small_gemm(y, A, n, 1, x, m, n, 1, False)


cdef void matmul(floating* C, const floating* A, const floating* B,
                 Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, bint accumulate) noexcept nogil:
    """C = A @ B  (C += A @ B when accumulate).   C (m, n), A (m, k), B (k, n)"""
    if _use_blas(m, k, n):
        gemm(False, False, <int>m, <int>n, <int>k, <floating>1, A, <int>k, B, <int>n,
             <floating>(1 if accumulate else 0), C, <int>n)
    else:
        _small_gemm(C, A, k, 1, B, m, k, n, accumulate)


cdef void matmul_tn(floating* C, const floating* A, const floating* B,
                    Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, bint accumulate) noexcept nogil:
    """C = A.T @ B  (C += … when accumulate).   C (m, n), A (k, m), B (k, n)"""
    if _use_blas(m, k, n):
        gemm(True, False, <int>m, <int>n, <int>k, <floating>1, A, <int>m, B, <int>n,
             <floating>(1 if accumulate else 0), C, <int>n)
    else:
        _small_gemm(C, A, 1, m, B, m, k, n, accumulate)


cdef void transpose(floating* out, const floating* inp, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil:
    """out = inp.T.   out (cols, rows), inp (rows, cols)"""
    # 32 x 32 tiles: one tile of each array stays in L1, so neither the strided reads nor
    # the strided writes miss the cache (a plain double loop is 4-5x slower on 512 x 512).
    cdef Py_ssize_t i0, j0, i, j, i_end, j_end
    for i0 in range(0, rows, 32):
        i_end = min(i0 + 32, rows)
        for j0 in range(0, cols, 32):
            j_end = min(j0 + 32, cols)
            for i in range(i0, i_end):
                for j in range(j0, j_end):
                    out[j * rows + i] = inp[i * cols + j]


cdef void matmul_nt(floating* C, const floating* A, const floating* B,
                    Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, bint accumulate,
                    floating* scratch) noexcept nogil:
    """C = A @ B.T  (C += … when accumulate).   C (m, n), A (m, k), B (n, k)

    scratch holds n * k values (used when m > 1: the kernels want B.T with contiguous rows).
    """
    if _use_blas(m, k, n):
        gemm(False, True, <int>m, <int>n, <int>k, <floating>1, A, <int>k, B, <int>k,
             <floating>(1 if accumulate else 0), C, <int>n)
    elif m == 1:
        # One row: C.T (n, 1) = B (n, k) @ A.T (k, 1), and A.T's rows are A's elements.
        _small_gemm(C, B, k, 1, A, n, k, 1, accumulate)
    else:
        # B.T costs n k copies against m n k multiply-adds of the product.
        transpose(scratch, B, n, k)
        _small_gemm(C, A, k, 1, scratch, m, k, n, accumulate)


# ---- dense layer ------------------------------------------------------------------------

cdef void dense_forward(floating* out, const floating* inp, const floating* W,
                        const floating* b, Py_ssize_t n, Py_ssize_t n_in,
                        Py_ssize_t n_out) noexcept nogil:
    """out = inp @ W + b.   out (n, n_out), inp (n, n_in), W (n_in, n_out), b (n_out,)"""
    if floating is float:
        nnf_fill_rows_f(out, b, n, n_out)
    else:
        nnf_fill_rows_d(out, b, n, n_out)
    matmul(out, inp, W, n, n_in, n_out, True)


cdef void dense_backward(floating* dW, floating* db, floating* dinp, const floating* dout,
                         const floating* inp, const floating* W, Py_ssize_t n,
                         Py_ssize_t n_in, Py_ssize_t n_out, bint accumulate,
                         floating* scratch) noexcept nogil:
    """dW (+)= inp.T @ dout;  db (+)= sum_rows(dout)  (if dW != NULL);
    dinp = dout @ W.T  (if dinp != NULL).

    dW (n_in, n_out), db (n_out,), dinp (n, n_in), dout (n, n_out), inp (n, n_in),
    W (n_in, n_out), scratch (n_in * n_out,). With dW == NULL, db and inp are not used
    (input gradients only).
    """
    if dW != NULL:
        matmul_tn(dW, inp, dout, n_in, n, n_out, accumulate)
        if not accumulate:
            memset(db, 0, n_out * sizeof(floating))
        if floating is float:
            nnf_add_column_sums_f(db, dout, n, n_out)
        else:
            nnf_add_column_sums_d(db, dout, n, n_out)
    if dinp != NULL:
        matmul_nt(dinp, dout, W, n, n_out, n_in, False, scratch)


# ---- activations --------------------------------------------------------------------------
# Elementwise forward/backward pairs over `size` values; A is the forward output and dA the
# gradient with respect to it. Backward may run in place (dZ == dA).

cdef void sigmoid_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil:
    """A = 1 / (1 + exp(-Z))"""
    if floating is float:
        nnf_sigmoid_f(A, Z, size)
    else:
        nnf_sigmoid_d(A, Z, size)


cdef void sigmoid_backward(floating* dZ, const floating* A, const floating* dA,
                           Py_ssize_t size) noexcept nogil:
    """dZ = dA * A * (1 - A)"""
    if floating is float:
        nnf_sigmoid_backward_f(dZ, A, dA, size)
    else:
        nnf_sigmoid_backward_d(dZ, A, dA, size)


cdef void tanh_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil:
    """A = tanh(Z)"""
    if floating is float:
        nnf_tanh_f(A, Z, size)
    else:
        nnf_tanh_d(A, Z, size)


cdef void tanh_backward(floating* dZ, const floating* A, const floating* dA,
                        Py_ssize_t size) noexcept nogil:
    """dZ = dA * (1 - A²)"""
    if floating is float:
        nnf_tanh_backward_f(dZ, A, dA, size)
    else:
        nnf_tanh_backward_d(dZ, A, dA, size)


cdef void relu_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil:
    """A = max(Z, 0)"""
    # Not leaky_relu with slope 0: 0 * Z is NaN at Z = -inf and -0.0 for Z < 0.
    cdef Py_ssize_t i
    for i in range(size):
        A[i] = 0 if Z[i] <= 0 else Z[i]  # NaN propagates, as in np.maximum


cdef void relu_backward(floating* dZ, const floating* Z, const floating* dA,
                        Py_ssize_t size) noexcept nogil:
    """dZ = dA if Z > 0 else 0"""
    cdef Py_ssize_t i
    for i in range(size):
        dZ[i] = dA[i] if Z[i] > 0 else 0


cdef void leaky_relu_forward(floating* A, const floating* Z, Py_ssize_t size,
                             floating slope) noexcept nogil:
    """A = Z if Z > 0 else slope * Z"""
    cdef Py_ssize_t i
    for i in range(size):
        A[i] = Z[i] if Z[i] > 0 else slope * Z[i]


cdef void leaky_relu_backward(floating* dZ, const floating* Z, const floating* dA,
                              Py_ssize_t size, floating slope) noexcept nogil:
    """dZ = dA if Z > 0 else slope * dA"""
    cdef Py_ssize_t i
    for i in range(size):
        dZ[i] = dA[i] if Z[i] > 0 else slope * dA[i]


cdef void elu_forward(floating* A, const floating* Z, Py_ssize_t size,
                      floating alpha) noexcept nogil:
    """A = Z if Z >= 0 else alpha * (exp(Z) - 1)"""
    if floating is float:
        nnf_elu_f(A, Z, size, alpha)
    else:
        nnf_elu_d(A, Z, size, alpha)


cdef void elu_backward(floating* dZ, const floating* Z, const floating* A,
                       const floating* dA, Py_ssize_t size, floating alpha) noexcept nogil:
    """dZ = dA if Z >= 0 else dA * (A + alpha)   (A + alpha = alpha * exp(Z))"""
    cdef Py_ssize_t i
    for i in range(size):
        dZ[i] = dA[i] if Z[i] >= 0 else dA[i] * (A[i] + alpha)


cdef void maxout_forward(floating* A, const floating* Z, Py_ssize_t rows,
                         Py_ssize_t pieces) noexcept nogil:
    """A[r] = max_p Z[r, p].   A (rows,), Z (rows, pieces); rows = n * n_out"""
    cdef Py_ssize_t r, p
    cdef floating best
    for r in range(rows):
        best = Z[r * pieces]
        for p in range(1, pieces):
            if Z[r * pieces + p] > best:
                best = Z[r * pieces + p]
        A[r] = best


cdef void maxout_backward(floating* dZ, const floating* Z, const floating* dA,
                          Py_ssize_t rows, Py_ssize_t pieces) noexcept nogil:
    """dZ[r, p] = dA[r] for the first p where Z[r, p] is largest, 0 elsewhere."""
    cdef Py_ssize_t r, p, best
    cdef floating g
    for r in range(rows):
        best = 0
        for p in range(1, pieces):
            if Z[r * pieces + p] > Z[r * pieces + best]:
                best = p
        g = dA[r]  # read before writing: dZ may not alias dA here (shapes differ)
        for p in range(pieces):
            dZ[r * pieces + p] = g if p == best else 0


cdef void softmax_forward(floating* A, const floating* Z, Py_ssize_t n,
                          Py_ssize_t m) noexcept nogil:
    """A[i] = exp(Z[i] - max Z[i]) / sum(exp(Z[i] - max Z[i])).   A, Z (n, m)"""
    cdef Py_ssize_t i, j
    cdef floating zmax, total
    cdef const floating* z
    cdef floating* a
    # Shift every row by its maximum, exponentiate all rows in one vectorised call, then
    # normalise: one call over n * m values instead of n short ones.
    for i in range(n):
        z = Z + i * m
        a = A + i * m
        zmax = z[0]
        for j in range(1, m):
            if z[j] > zmax:
                zmax = z[j]
        for j in range(m):
            a[j] = z[j] - zmax
    if floating is float:
        nnf_exp_f(A, A, n * m)
    else:
        nnf_exp_d(A, A, n * m)
    for i in range(n):
        a = A + i * m
        total = 0
        for j in range(m):
            total += a[j]
        for j in range(m):
            a[j] = a[j] / total


cdef void softmax_backward(floating* dZ, const floating* A, const floating* dA,
                           Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    """dZ[i] = A[i] * (dA[i] - <dA[i], A[i]>).   dZ, A, dA (n, m)"""
    cdef Py_ssize_t i, j
    cdef double dot
    for i in range(n):
        dot = 0
        for j in range(m):
            dot += dA[i * m + j] * A[i * m + j]
        for j in range(m):
            dZ[i * m + j] = A[i * m + j] * (dA[i * m + j] - <floating>dot)


cdef void exp_forward(floating* A, const floating* Z, Py_ssize_t size) noexcept nogil:
    """A = exp(Z)   (the output activation of the Poisson loss; +inf past ~709 / ~88)"""
    if floating is float:
        nnf_exp_f(A, Z, size)
    else:
        nnf_exp_d(A, Z, size)


cdef void exp_backward(floating* dZ, const floating* A, const floating* dA,
                       Py_ssize_t size) noexcept nogil:
    """dZ = dA * A   (exp' = exp)"""
    cdef Py_ssize_t i
    for i in range(size):
        dZ[i] = dA[i] * A[i]


cdef void activation_forward(int code, floating* A, const floating* Z, Py_ssize_t n,
                             Py_ssize_t m, const ActParams* p) noexcept nogil:
    """A = f(Z).   A (n, m); Z (n, m), or (n, m, pieces) for maxout"""
    cdef Py_ssize_t i, size = n * m
    if code == ACT_IDENTITY:
        if A != Z:
            for i in range(size):
                A[i] = Z[i]
    elif code == ACT_SIGMOID:
        sigmoid_forward(A, Z, size)
    elif code == ACT_TANH:
        tanh_forward(A, Z, size)
    elif code == ACT_RELU:
        relu_forward(A, Z, size)
    elif code == ACT_LEAKY_RELU:
        leaky_relu_forward(A, Z, size, <floating>p.leaky_slope)
    elif code == ACT_ELU:
        elu_forward(A, Z, size, <floating>p.elu_alpha)
    elif code == ACT_MAXOUT:
        maxout_forward(A, Z, size, p.pieces)
    elif code == ACT_SOFTMAX:
        softmax_forward(A, Z, n, m)
    elif code == ACT_EXP:
        exp_forward(A, Z, size)


cdef void activation_backward(int code, floating* dZ, const floating* Z, const floating* A,
                              const floating* dA, Py_ssize_t n, Py_ssize_t m,
                              const ActParams* p) noexcept nogil:
    """dZ = dA * f'(Z).   dA, A (n, m); dZ, Z (n, m), or (n, m, pieces) for maxout"""
    cdef Py_ssize_t i, size = n * m
    if code == ACT_IDENTITY:
        if dZ != dA:
            for i in range(size):
                dZ[i] = dA[i]
    elif code == ACT_SIGMOID:
        sigmoid_backward(dZ, A, dA, size)
    elif code == ACT_TANH:
        tanh_backward(dZ, A, dA, size)
    elif code == ACT_RELU:
        relu_backward(dZ, Z, dA, size)
    elif code == ACT_LEAKY_RELU:
        leaky_relu_backward(dZ, Z, dA, size, <floating>p.leaky_slope)
    elif code == ACT_ELU:
        elu_backward(dZ, Z, A, dA, size, <floating>p.elu_alpha)
    elif code == ACT_MAXOUT:
        maxout_backward(dZ, Z, dA, size, p.pieces)
    elif code == ACT_SOFTMAX:
        softmax_backward(dZ, A, dA, n, m)
    elif code == ACT_EXP:
        exp_backward(dZ, A, dA, size)


# ---- losses -----------------------------------------------------------------------------
# Each returns the weighted mean loss and writes dZ, the gradient of that mean with respect
# to the output layer's pre-activation Z. w (n,) are sample weights (NULL: all ones) and
# inv_weight_sum = 1 / sum(w) (0 when the weights sum to zero: no data term).
# Sums run in double, also for float32 data.

cdef double mse_delta(floating* dZ, const floating* Z, const floating* A, const floating* Y,
                      const floating* w, Py_ssize_t n, Py_ssize_t m, double inv_weight_sum,
                      int output_activation, const ActParams* p) noexcept nogil:
    """L = sum_i w_i sum_j (A_ij - Y_ij)² / (S m);  dA = 2 w_i (A_ij - Y_ij) / (S m) → dZ"""
    cdef Py_ssize_t i, j
    cdef double total = 0, row, d
    cdef double scale = inv_weight_sum / m
    cdef double wi
    for i in range(n):
        wi = w[i] if w != NULL else 1.0
        row = 0
        for j in range(m):
            d = A[i * m + j] - Y[i * m + j]
            row += d * d
            dZ[i * m + j] = <floating>(2 * wi * scale * d)
        total += wi * row
    activation_backward(output_activation, dZ, Z, A, dZ, n, m, p)
    return total * scale


cdef double softmax_cross_entropy_delta(floating* dZ, const floating* Z, const floating* A,
                                        const floating* Y, const floating* w, Py_ssize_t n,
                                        Py_ssize_t m, double inv_weight_sum) noexcept nogil:
    """L = sum_i w_i sum_j Y_ij (logsumexp(Z_i) - Z_ij) / S;
    dZ_ij = w_i (A_ij sum_k Y_ik - Y_ij) / S"""
    cdef Py_ssize_t i, j
    cdef double total = 0, row, y_sum, zmax, expsum, lse, wi
    cdef const floating* z
    for i in range(n):
        wi = (w[i] if w != NULL else 1.0) * inv_weight_sum
        z = Z + i * m
        zmax = z[0]
        for j in range(1, m):
            if z[j] > zmax:
                zmax = z[j]
        expsum = 0
        y_sum = 0
        for j in range(m):
            expsum += exp(z[j] - zmax)
            y_sum += Y[i * m + j]
        lse = zmax + log(expsum)
        row = 0
        for j in range(m):
            row += Y[i * m + j] * (lse - z[j])
            dZ[i * m + j] = <floating>(wi * (A[i * m + j] * y_sum - Y[i * m + j]))
        total += wi * row
    return total


cdef double sigmoid_binary_cross_entropy_delta(floating* dZ, const floating* Z,
                                               const floating* A, const floating* Y,
                                               const floating* w, Py_ssize_t n, Py_ssize_t m,
                                               double inv_weight_sum) noexcept nogil:
    """L = sum_ij w_i (max(z, 0) - y z + log(1 + exp(-|z|))) / (S m);
    dZ_ij = w_i (A_ij - Y_ij) / (S m)"""
    cdef Py_ssize_t i, j
    cdef double total = 0, row, z, y, wi
    cdef double scale = inv_weight_sum / m
    for i in range(n):
        wi = (w[i] if w != NULL else 1.0) * scale
        row = 0
        for j in range(m):
            z = Z[i * m + j]
            y = Y[i * m + j]
            # log(1 + e^z) - y z written so that no exponential can overflow.
            row += (z if z > 0 else 0) - y * z + log1p(exp(-fabs(z)))
            dZ[i * m + j] = <floating>(wi * (A[i * m + j] - y))
        total += wi * row
    return total


cdef double exp_poisson_delta(floating* dZ, const floating* Z, const floating* A,
                              const floating* Y, const floating* w, Py_ssize_t n,
                              Py_ssize_t m, double inv_weight_sum) noexcept nogil:
    """L = sum_ij w_i (y log(y / A) - y + A) / (S m) with A = exp(Z) (half Poisson deviance);
    dZ_ij = w_i (A_ij - Y_ij) / (S m)"""
    cdef Py_ssize_t i, j
    cdef double total = 0, row, y, a, wi
    cdef double scale = inv_weight_sum / m
    for i in range(n):
        wi = (w[i] if w != NULL else 1.0) * scale
        row = 0
        for j in range(m):
            y = Y[i * m + j]
            a = A[i * m + j]
            # y log(y / A) = y log y - y Z: no division, and y = 0 contributes 0 (xlogy).
            row += (y * log(y) if y > 0 else 0) - y * Z[i * m + j] - y + a
            dZ[i * m + j] = <floating>(wi * (a - y))
        total += wi * row
    return total


# Log-variances of gaussian_nll are clipped to [LOG_VAR_MIN, LOG_VAR_MAX] (nnfast/_spec.py:
# LOG_VAR_RANGE, where the choice is explained).
cdef double LOG_VAR_MIN = -30.0
cdef double LOG_VAR_MAX = 30.0
GAUSSIAN_NLL_LOG_VAR_RANGE = (LOG_VAR_MIN, LOG_VAR_MAX)


cdef double gaussian_nll_delta(floating* dZ, const floating* Z, const floating* Y,
                               const floating* w, Py_ssize_t n, Py_ssize_t m,
                               double inv_weight_sum) noexcept nogil:
    """Z = [mu | s] (k = m / 2 columns each), c = clip(s, LOG_VAR_MIN, LOG_VAR_MAX):
    L = sum_ij w_i 0.5 (c_ij + (mu_ij - Y_ij)² e^-c_ij) / (S k);
    dmu_ij = w_i (mu_ij - Y_ij) e^-c_ij / (S k),
    ds_ij = w_i 0.5 (1 - (mu_ij - Y_ij)² e^-c_ij) / (S k) inside the range, 0 outside.
    Z, dZ (n, m); Y (n, k); identity output (A = Z)."""
    cdef Py_ssize_t i, j, k = m // 2
    cdef double total = 0, row, c, r, e, q, wi
    cdef double scale = inv_weight_sum / k
    cdef bint clipped
    for i in range(n):
        wi = (w[i] if w != NULL else 1.0) * scale
        row = 0
        for j in range(k):
            r = <double>Z[i * m + j] - Y[i * k + j]
            c = Z[i * m + k + j]
            clipped = c < LOG_VAR_MIN or c > LOG_VAR_MAX
            if c < LOG_VAR_MIN:
                c = LOG_VAR_MIN
            elif c > LOG_VAR_MAX:
                c = LOG_VAR_MAX
            # e^-c is in [e^-30, e^30]: finite and non-zero, so r² e^-c is never inf · 0.
            e = exp(-c)
            q = r * r * e
            row += c + q
            dZ[i * m + j] = <floating>(wi * r * e)
            dZ[i * m + k + j] = <floating>(0.0 if clipped else wi * 0.5 * (1 - q))
        total += wi * 0.5 * row
    return total


cdef double loss_delta(int loss, int output_activation, floating* dZ, const floating* Z,
                       const floating* A, const floating* Y, const floating* w,
                       Py_ssize_t n, Py_ssize_t m, double inv_weight_sum,
                       const ActParams* p) noexcept nogil:
    """Weighted mean loss of the output layer; writes dZ = dL/dZ.   Z, A, dZ (n, m);
    Y (n, loss_target_width(loss, m)); w (n,)"""
    if loss == LOSS_GAUSSIAN_NLL:
        return gaussian_nll_delta(dZ, Z, Y, w, n, m, inv_weight_sum)
    if loss == LOSS_CROSS_ENTROPY:
        return softmax_cross_entropy_delta(dZ, Z, A, Y, w, n, m, inv_weight_sum)
    if loss == LOSS_BINARY_CROSS_ENTROPY:
        return sigmoid_binary_cross_entropy_delta(dZ, Z, A, Y, w, n, m, inv_weight_sum)
    if loss == LOSS_POISSON:
        return exp_poisson_delta(dZ, Z, A, Y, w, n, m, inv_weight_sum)
    return mse_delta(dZ, Z, A, Y, w, n, m, inv_weight_sum, output_activation, p)


cdef double l2_penalty(floating* grad, const floating* W, Py_ssize_t size,
                       double l2) noexcept nogil:
    """grad += l2 * W; returns 0.5 * l2 * sum(W²)"""
    cdef Py_ssize_t i
    cdef double total = 0
    cdef floating l2f = <floating>l2
    for i in range(size):
        total += <double>W[i] * W[i]
        grad[i] += l2f * W[i]
    return 0.5 * l2 * total


cdef bint all_finite_values(const floating* x, Py_ssize_t size) noexcept nogil:
    """True when no x[i] is NaN or infinite."""
    if floating is float:
        return nnf_all_finite_f(x, size)
    else:
        return nnf_all_finite_d(x, size)


# ---- optimizers ---------------------------------------------------------------------------

cdef void sgd_update(floating* params, floating* velocity, const floating* grad,
                     Py_ssize_t size, double lr, double momentum, bint nesterov) noexcept nogil:
    """v = momentum v - lr g;  params += (momentum v - lr g) if nesterov else v"""
    if floating is float:
        nnf_sgd_update_f(params, velocity, grad, size, <float>lr, <float>momentum, nesterov)
    else:
        nnf_sgd_update_d(params, velocity, grad, size, lr, momentum, nesterov)


cdef void adam_update(floating* params, floating* m, floating* v, const floating* grad,
                      Py_ssize_t size, double lr_t, double beta1, double beta2,
                      double eps) noexcept nogil:
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²;  params -= lr_t m / (sqrt(v) + eps)

    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) carries the bias correction (scikit-learn's form).
    """
    if floating is float:
        nnf_adam_update_f(params, m, v, grad, size, <float>lr_t, <float>beta1, <float>beta2,
                          <float>(1 - beta1), <float>(1 - beta2), <float>eps)
    else:
        nnf_adam_update_d(params, m, v, grad, size, lr_t, beta1, beta2, 1 - beta1, 1 - beta2,
                          eps)


cdef void rprop_update(floating* params, floating* step, floating* prev_grad,
                       const floating* grad, Py_ssize_t size, double eta_plus,
                       double eta_minus, double step_min, double step_max) noexcept nogil:
    """iRprop-: per-parameter steps grow (×eta_plus, up to step_max) while the gradient keeps
    its sign and shrink (×eta_minus, down to step_min) when it flips; after a flip the
    parameter rests one step and its remembered gradient is zeroed.

    params -= sign(g) * step;  step, prev_grad (size,) persist between calls (full batches).
    """
    cdef Py_ssize_t i
    cdef floating g, s
    for i in range(size):
        g = grad[i]
        s = g * prev_grad[i]
        if s > 0:
            step[i] = <floating>min(step[i] * eta_plus, step_max)
        elif s < 0:
            step[i] = <floating>max(step[i] * eta_minus, step_min)
            g = 0
        if g > 0:
            params[i] -= step[i]
        elif g < 0:
            params[i] += step[i]
        prev_grad[i] = g


# ---- Python entry points (inputs validated by nnfast/kernels.py) -----------------------
# Each re-checks the sizes it relies on and the alignment of every pointer it passes on
# (a last guard: nnfast/kernels.py validates with clearer messages and copies misaligned
# arrays first).

cdef int check_aligned(const void* data, size_t itemsize, str name) except -1:
    """ValueError unless data (NULL for an empty array) is aligned to its elements."""
    if <size_t>data % itemsize:
        raise ValueError(
            f"{name}: expected an array aligned to its {itemsize}-byte elements, got one at "
            f"address {<size_t>data:#x} (a view at a byte offset, such as np.frombuffer(..., "
            "offset=1)); pass a copy")
    return 0


cdef int check_shape(str name, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t want_rows,
                     Py_ssize_t want_cols) except -1:
    """ValueError unless an argument's (rows, cols) are the expected ones."""
    if rows != want_rows or cols != want_cols:
        raise ValueError(f"{name}: expected shape ({want_rows}, {want_cols}), got "
                         f"({rows}, {cols})")
    return 0


cdef int check_length(str name, Py_ssize_t length, Py_ssize_t expected) except -1:
    if length != expected:
        raise ValueError(f"{name}: expected {expected} values, got {length}")
    return 0


cdef int check_pieces(int activation, Py_ssize_t pieces) except -1:
    """Only maxout reads more than one value per output (`pieces` of them)."""
    if activation < ACT_IDENTITY or activation > ACT_EXP:
        raise ValueError(f"activation: expected a code in [{ACT_IDENTITY}, {ACT_EXP}], "
                         f"got {activation}")
    if pieces < 1 or (pieces != 1 and activation != ACT_MAXOUT):
        raise ValueError(f"pieces: expected 1 (or >= 1 for maxout), got {pieces}")
    return 0


cdef inline const void* first1(const floating[::1] x) noexcept:
    return &x[0] if x.shape[0] > 0 else NULL


cdef inline const void* first2(const floating[:, ::1] x) noexcept:
    return &x[0, 0] if x.shape[0] > 0 and x.shape[1] > 0 else NULL


cdef ActParams _act_params(double leaky_slope, double elu_alpha, Py_ssize_t pieces) noexcept:
    cdef ActParams p
    p.leaky_slope = leaky_slope
    p.elu_alpha = elu_alpha
    p.pieces = pieces
    return p


def matvec_into(floating[::1] y, const floating[:, ::1] A, const floating[::1] x):
    """y = A @ x"""
    check_length("y", y.shape[0], A.shape[0])
    check_length("x", x.shape[0], A.shape[1])
    check_aligned(first1(y), sizeof(floating), "y")
    check_aligned(first2(A), sizeof(floating), "A")
    check_aligned(first1(x), sizeof(floating), "x")
    with nogil:
        matvec(&y[0], &A[0, 0], &x[0], A.shape[0], A.shape[1])


def matmul_into(floating[:, ::1] C, const floating[:, ::1] A, const floating[:, ::1] B):
    """C = A @ B"""
    check_shape("B", B.shape[0], B.shape[1], A.shape[1], B.shape[1])
    check_shape("C", C.shape[0], C.shape[1], A.shape[0], B.shape[1])
    check_aligned(first2(C), sizeof(floating), "C")
    check_aligned(first2(A), sizeof(floating), "A")
    check_aligned(first2(B), sizeof(floating), "B")
    with nogil:
        matmul(&C[0, 0], &A[0, 0], &B[0, 0], A.shape[0], A.shape[1], B.shape[1], False)


def dense_forward_into(floating[:, ::1] out, floating[:, ::1] Z, const floating[:, ::1] X,
                       const floating[:, ::1] W, const floating[::1] b, int activation,
                       double leaky_slope, double elu_alpha, Py_ssize_t pieces):
    """Z = X @ W + b; out = f(Z).   W (n_in, width), Z (n, width), out (n, width / pieces)"""
    cdef ActParams p = _act_params(leaky_slope, elu_alpha, pieces)
    check_pieces(activation, pieces)
    check_shape("W", W.shape[0], W.shape[1], X.shape[1], W.shape[1])
    check_length("b", b.shape[0], W.shape[1])
    check_shape("Z", Z.shape[0], Z.shape[1], X.shape[0], W.shape[1])
    if W.shape[1] % pieces:
        raise ValueError(f"W: expected a multiple of pieces={pieces} columns, got {W.shape[1]}")
    check_shape("out", out.shape[0], out.shape[1], X.shape[0], W.shape[1] // pieces)
    check_aligned(first2(out), sizeof(floating), "out")
    check_aligned(first2(Z), sizeof(floating), "Z")
    check_aligned(first2(X), sizeof(floating), "X")
    check_aligned(first2(W), sizeof(floating), "W")
    check_aligned(first1(b), sizeof(floating), "b")
    with nogil:
        dense_forward(&Z[0, 0], &X[0, 0], &W[0, 0], &b[0], X.shape[0], X.shape[1],
                      W.shape[1])
        activation_forward(activation, &out[0, 0], &Z[0, 0], out.shape[0], out.shape[1], &p)


def activation_forward_into(int activation, floating[:, ::1] A, const floating[:, ::1] Z,
                            double leaky_slope, double elu_alpha, Py_ssize_t pieces):
    """A = f(Z).   A (n, m), Z (n, m * pieces)"""
    cdef ActParams p = _act_params(leaky_slope, elu_alpha, pieces)
    check_pieces(activation, pieces)
    check_shape("Z", Z.shape[0], Z.shape[1], A.shape[0], A.shape[1] * pieces)
    check_aligned(first2(A), sizeof(floating), "A")
    check_aligned(first2(Z), sizeof(floating), "Z")
    with nogil:
        activation_forward(activation, &A[0, 0], &Z[0, 0], A.shape[0], A.shape[1], &p)


def activation_backward_into(int activation, floating[:, ::1] dZ, const floating[:, ::1] Z,
                             const floating[:, ::1] A, const floating[:, ::1] dA,
                             double leaky_slope, double elu_alpha, Py_ssize_t pieces):
    """dZ = dA * f'(Z).   dZ, Z (n, m * pieces), A, dA (n, m)"""
    cdef ActParams p = _act_params(leaky_slope, elu_alpha, pieces)
    check_pieces(activation, pieces)
    check_shape("dA", dA.shape[0], dA.shape[1], A.shape[0], A.shape[1])
    check_shape("Z", Z.shape[0], Z.shape[1], A.shape[0], A.shape[1] * pieces)
    check_shape("dZ", dZ.shape[0], dZ.shape[1], A.shape[0], A.shape[1] * pieces)
    check_aligned(first2(dZ), sizeof(floating), "dZ")
    check_aligned(first2(Z), sizeof(floating), "Z")
    check_aligned(first2(A), sizeof(floating), "A")
    check_aligned(first2(dA), sizeof(floating), "dA")
    with nogil:
        activation_backward(activation, &dZ[0, 0], &Z[0, 0], &A[0, 0], &dA[0, 0],
                            A.shape[0], A.shape[1], &p)


def loss_delta_into(int loss, int output_activation, floating[:, ::1] dZ,
                    const floating[:, ::1] Z, const floating[:, ::1] A,
                    const floating[:, ::1] Y, const floating[::1] w, double inv_weight_sum):
    """Weighted mean loss; dZ = its gradient w.r.t. Z.   dZ, Z, A (n, m),
    Y (n, m) or (n, m / 2) for gaussian_nll, w (n,) or None"""
    cdef ActParams p = _act_params(0.1, 1.0, 1)
    cdef const floating* w_ptr
    cdef Py_ssize_t n = Z.shape[0], m = Z.shape[1]
    if loss < LOSS_MSE or loss > LOSS_GAUSSIAN_NLL:
        raise ValueError(f"loss: expected a code in [{LOSS_MSE}, {LOSS_GAUSSIAN_NLL}], "
                         f"got {loss}")
    check_pieces(output_activation, 1)
    check_shape("dZ", dZ.shape[0], dZ.shape[1], n, m)
    check_shape("A", A.shape[0], A.shape[1], n, m)
    check_shape("Y", Y.shape[0], Y.shape[1], n, loss_target_width(loss, m))
    if w is not None:
        check_length("w", w.shape[0], n)
        check_aligned(first1(w), sizeof(floating), "w")
    check_aligned(first2(dZ), sizeof(floating), "dZ")
    check_aligned(first2(Z), sizeof(floating), "Z")
    check_aligned(first2(A), sizeof(floating), "A")
    check_aligned(first2(Y), sizeof(floating), "Y")
    w_ptr = NULL if w is None else &w[0]
    return loss_delta(loss, output_activation, &dZ[0, 0], &Z[0, 0], &A[0, 0], &Y[0, 0], w_ptr,
                      Z.shape[0], Z.shape[1], inv_weight_sum, &p)


def sgd_update_into(floating[::1] params, floating[::1] velocity, const floating[::1] grad,
                    double lr, double momentum, bint nesterov):
    """One SGD step in place (see sgd_update)."""
    check_length("velocity", velocity.shape[0], params.shape[0])
    check_length("grad", grad.shape[0], params.shape[0])
    check_aligned(first1(params), sizeof(floating), "params")
    check_aligned(first1(velocity), sizeof(floating), "velocity")
    check_aligned(first1(grad), sizeof(floating), "grad")
    sgd_update(&params[0], &velocity[0], &grad[0], params.shape[0], lr, momentum, nesterov)


def rprop_update_into(floating[::1] params, floating[::1] step, floating[::1] prev_grad,
                      const floating[::1] grad, double eta_plus, double eta_minus,
                      double step_min, double step_max):
    """One iRprop- step in place (see rprop_update)."""
    check_length("step", step.shape[0], params.shape[0])
    check_length("prev_grad", prev_grad.shape[0], params.shape[0])
    check_length("grad", grad.shape[0], params.shape[0])
    check_aligned(first1(params), sizeof(floating), "params")
    check_aligned(first1(step), sizeof(floating), "step")
    check_aligned(first1(prev_grad), sizeof(floating), "prev_grad")
    check_aligned(first1(grad), sizeof(floating), "grad")
    rprop_update(&params[0], &step[0], &prev_grad[0], &grad[0], params.shape[0], eta_plus,
                 eta_minus, step_min, step_max)


def adam_update_into(floating[::1] params, floating[::1] m, floating[::1] v,
                     const floating[::1] grad, double lr_t, double beta1, double beta2,
                     double eps):
    """One Adam step in place (see adam_update)."""
    check_length("m", m.shape[0], params.shape[0])
    check_length("v", v.shape[0], params.shape[0])
    check_length("grad", grad.shape[0], params.shape[0])
    check_aligned(first1(params), sizeof(floating), "params")
    check_aligned(first1(m), sizeof(floating), "m")
    check_aligned(first1(v), sizeof(floating), "v")
    check_aligned(first1(grad), sizeof(floating), "grad")
    adam_update(&params[0], &m[0], &v[0], &grad[0], params.shape[0], lr_t, beta1, beta2, eps)


def all_finite(const floating[::1] x):
    """True when no value of x is NaN or infinite (a vectorised check, no temporary array)."""
    if x.shape[0] == 0:
        return True
    check_aligned(&x[0], sizeof(floating), "x")
    return all_finite_values(&x[0], x.shape[0])


# ---- the vectorised math functions, for tests and benchmarks ----------------------------

FASTMATH_FUNCTIONS = ("tanh", "sigmoid", "exp", "elu")


def fastmath_into(str name, floating[::1] out, const floating[::1] x, double alpha=1.0):
    """out = name(x) with the vectorised functions of fastmath.h (out may be x)."""
    cdef Py_ssize_t n = x.shape[0]
    if name not in FASTMATH_FUNCTIONS:
        raise ValueError(f"name: expected one of {FASTMATH_FUNCTIONS}, got {name!r}")
    if out.shape[0] != n:
        raise ValueError(f"out: expected {n} values, got {out.shape[0]}")
    if n == 0:
        return
    check_aligned(&out[0], sizeof(floating), "out")
    check_aligned(&x[0], sizeof(floating), "x")
    if name == "tanh":
        tanh_forward(&out[0], &x[0], n)
    elif name == "sigmoid":
        sigmoid_forward(&out[0], &x[0], n)
    elif name == "elu":
        elu_forward(&out[0], &x[0], n, <floating>alpha)
    elif name == "exp":
        if floating is float:
            nnf_exp_f(&out[0], &x[0], n)
        else:
            nnf_exp_d(&out[0], &x[0], n)
    else:
        raise ValueError(f"name: expected one of {FASTMATH_FUNCTIONS}, got {name!r}")


def set_blas_min_flops(Py_ssize_t flops):
    """Send products of at least `flops` multiply-adds to BLAS (0: never); returns the old
    value. Not thread-safe: set it before training or predicting in threads."""
    global BLAS_MIN_FLOPS
    if flops < 0:
        raise ValueError(f"flops: expected an integer >= 0, got {flops}")
    old, BLAS_MIN_FLOPS = BLAS_MIN_FLOPS, flops
    return old


def _blas_min_flops_from_environment():
    import os

    text = os.environ.get("NNFAST_BLAS_MIN_FLOPS", "0")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"NNFAST_BLAS_MIN_FLOPS: expected an integer >= 0, got {text!r}") from None
    set_blas_min_flops(value)


_blas_min_flops_from_environment()


# ---- code paths (nnfast/src/cpu.h) -------------------------------------------------------

SIMD_PATHS = ("baseline", "avx2", "avx512")  # NNF_PATH_*: narrowest first
KERNEL_FAMILIES = ("products", "fast_math", "elementwise")  # NNF_FAMILY_*
_simd_path_request = "best"


def set_simd_path(str name):
    """Let every kernel family use code paths up to `name` ("avx512", "avx2" or "baseline";
    "best": the widest this CPU runs); returns the previous setting.

    Each family then runs the widest of its paths, up to `name`, that this CPU supports
    (see simd_paths). Not thread-safe: set it before training or predicting in threads.
    """
    global _simd_path_request
    if name != "best" and name not in SIMD_PATHS:
        raise ValueError(f"name: expected one of {('best',) + SIMD_PATHS[::-1]}, got {name!r}")
    nnf_set_path_limit(-1 if name == "best" else SIMD_PATHS.index(name))
    previous, _simd_path_request = _simd_path_request, name
    return previous


def simd_paths():
    """{kernel family: the code path it runs now}, e.g. {"products": "avx512", ...}."""
    return {family: nnf_path_name(nnf_family_path(code)).decode()
            for code, family in enumerate(KERNEL_FAMILIES)}


def cpu_info():
    """The CPU as the kernels see it: vendor, brand, family, model, stepping (-1 if unknown)
    and the SIMD features the kernels use that the CPU and the OS support."""
    cdef const nnf_cpu_info* cpu = nnf_cpu()
    return {"vendor": cpu.vendor.decode("ascii", "replace"),
            "brand": cpu.brand.decode("ascii", "replace").strip(),
            "family": cpu.family, "model": cpu.model, "stepping": cpu.stepping,
            "features": tuple(nnf_feature_name(bit).decode() for bit in range(NNF_FEATURE_COUNT)
                              if cpu.features & (<unsigned>1 << bit))}


def _simd_path_from_environment():
    import os

    text = os.environ.get("NNFAST_SIMD", "")
    if text:
        try:
            set_simd_path(text)
        except ValueError:
            raise ValueError(f"NNFAST_SIMD: expected one of {('best',) + SIMD_PATHS[::-1]}, "
                             f"got {text!r}") from None


_simd_path_from_environment()
