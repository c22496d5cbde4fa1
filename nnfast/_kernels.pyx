"""Compiled kernels: dense products, activations and optimizer updates (the losses are in
nnfast/_losses.pyx, the Python entry points in nnfast/_kernel_entry.pyx).

All arrays are C-contiguous (row-major) raw buffers; shapes are given in each kernel's
comment. Nothing here checks its input: nnfast/kernels.py and nnfast/network.py do.
"""

from cython cimport floating
from libc.stdlib cimport free, malloc

from nnfast._blas cimport gemm
from nnfast._kernels_c cimport *  # the products, fast math and dispatch of nnfast/src


# Products with at least this many multiply-adds go to BLAS; 0 (the default) means never.
# Measured here, one thread, the kernels of gemm_small.h match or beat OpenBLAS at every size
# on every path (AVX-512: 1.2-2x; AVX2: equal from ~512^3) and compute each element as one
# ordered chain, so a prediction never depends on the other rows of X. A multi-threaded BLAS
# can win on large products: NNFAST_BLAS_MIN_FLOPS (read at import) or set_blas_min_flops()
# hands them over, at the price of that independence.
cdef Py_ssize_t BLAS_MIN_FLOPS = 0
cdef double ONE_D = 1  # op(A) of the bias gradients' product (column_sums)
cdef float ONE_F = 1


# ---- products -------------------------------------------------------------------------

cdef inline void _small_gemm(floating* C, const floating* A, Py_ssize_t a_row,
                             Py_ssize_t a_col, const floating* B, Py_ssize_t m, Py_ssize_t k,
                             Py_ssize_t n, bint accumulate) noexcept nogil:
    """C (m, n) (+)= op(A) (m, k) @ B (k, n) with op(A)[i, p] = A[i a_row + p a_col]."""
    if floating is float:
        nnf_gemm_f(m, n, k, A, a_row, a_col, B, n, C, n, accumulate)
    else:
        nnf_gemm_d(m, n, k, A, a_row, a_col, B, n, C, n, accumulate)


cdef inline void _small_gemm_ex(floating* C, const floating* A, Py_ssize_t a_row,
                                Py_ssize_t a_col, const floating* B, Py_ssize_t m,
                                Py_ssize_t k, Py_ssize_t n, const floating* bias,
                                const floating* act) noexcept nogil:
    """C (m, n) = op(A) (m, k) @ B (k, n) (+ bias, each chain starting from bias[j]), then
    times (1 - act²) when act is not NULL (act (m, n))."""
    if floating is float:
        nnf_gemm_ex_f(m, n, k, A, a_row, a_col, B, n, C, n, False, bias, act)
    else:
        nnf_gemm_ex_d(m, n, k, A, a_row, a_col, B, n, C, n, False, bias, act)


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


cdef void matmul_tn_block(floating* C, Py_ssize_t ldc, const floating* A, Py_ssize_t lda,
                          const floating* B, Py_ssize_t ldb, Py_ssize_t m, Py_ssize_t k,
                          Py_ssize_t n, bint accumulate) noexcept nogil:
    """C (+)= A.T @ B on strided blocks.   C (m, n) row stride ldc, A (k, m) row stride
    lda, B (k, n) row stride ldb. Each element is the chain matmul_tn computes for it, so
    the blocks of a product split over threads are the bytes of the whole product."""
    if floating is float:
        nnf_gemm_f(m, n, k, A, 1, lda, B, ldb, C, ldc, accumulate)
    else:
        nnf_gemm_d(m, n, k, A, 1, lda, B, ldb, C, ldc, accumulate)


cdef bint blas_products() noexcept nogil:
    return BLAS_MIN_FLOPS > 0


cdef void transpose(floating* out, const floating* inp, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil:
    """out = inp.T.   out (cols, rows), inp (rows, cols)"""
    # 4 x 4 blocks through registers, in column blocks that keep the written rows in L1
    # (gemm_small.h): ~2 instructions per value, where a Cython double loop took ~7.
    if floating is float:
        nnf_transpose_f(out, inp, rows, cols)
    else:
        nnf_transpose_d(out, inp, rows, cols)


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
        # B.T costs n k copies against m n k multiply-adds of the product (none when k or n
        # is 1: B is then laid out as B.T).
        if k > 1 and n > 1:
            transpose(scratch, B, n, k)
            B = scratch
        _small_gemm(C, A, k, 1, B, m, k, n, accumulate)


cdef void matmul_nt_tanh_backward(floating* dZ, const floating* A, const floating* B,
                                  const floating* T, Py_ssize_t m, Py_ssize_t k,
                                  Py_ssize_t n, floating* scratch) noexcept nogil:
    """dZ = (A @ B.T) * (1 - T²).   dZ, T (m, n), A (m, k), B (n, k), scratch (n * k,)

    The input gradient of a dense layer fused with the backward of the tanh below it
    (T = tanh's output): the same values as matmul_nt then tanh_backward, in one pass.
    """
    if _use_blas(m, k, n):
        matmul_nt(dZ, A, B, m, k, n, False, scratch)
        tanh_backward(dZ, T, dZ, m * n)
        return
    if m == 1:
        # dZ.T (n, 1) = B (n, k) @ A.T (k, 1); T (1, n) is laid out as dZ.T
        _small_gemm_ex(dZ, B, k, 1, A, n, k, 1, NULL, T)
    else:
        if k > 1 and n > 1:
            transpose(scratch, B, n, k)
            B = scratch
        _small_gemm_ex(dZ, A, k, 1, B, m, k, n, NULL, T)


# ---- dense layer ------------------------------------------------------------------------

cdef void dense_forward(floating* out, const floating* inp, const floating* W,
                        const floating* b, Py_ssize_t n, Py_ssize_t n_in,
                        Py_ssize_t n_out) noexcept nogil:
    """out = inp @ W + b.   out (n, n_out), inp (n, n_in), W (n_in, n_out), b (n_out,)

    Each out[i, j] is one chain started from b[j] (the product kernel's accumulators start
    from b: no pass filling out with b first).
    """
    if _use_blas(n, n_in, n_out):
        if floating is float:
            nnf_fill_rows_f(out, b, n, n_out)
        else:
            nnf_fill_rows_d(out, b, n, n_out)
        matmul(out, inp, W, n, n_in, n_out, True)
    else:
        _small_gemm_ex(out, inp, n_in, 1, W, n, n_in, n_out, b, NULL)


cdef void column_sums(floating* s, const floating* D, Py_ssize_t ld, Py_ssize_t rows,
                      Py_ssize_t cols, bint accumulate) noexcept nogil:
    """s (cols,) (+)= the sums over the rows of D (rows, cols; row stride ld): a bias
    gradient, or a block of its columns. The single-row product kernel with op(A) the
    constant 1 (a_col = 0): all of s's chains in registers over the rows, each still
    s[j] + D[0, j] + D[1, j] + ... in order (fma(1, d, s) rounds as s + d)."""
    if floating is float:
        nnf_gemm_f(1, cols, rows, &ONE_F, 0, 0, D, ld, s, cols, accumulate)
    else:
        nnf_gemm_d(1, cols, rows, &ONE_D, 0, 0, D, ld, s, cols, accumulate)


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
        column_sums(db, dout, n_out, n, n_out, accumulate)
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


# ---- one sample's SGD step ----------------------------------------------------------------

cdef bint ROW_STEP_ON = True  # _set_row_step (tests compare the step with the general path)
# Whether the baseline products fuse each multiply-add (NEON), as AVX2 and AVX-512 do.
BASELINE_FMA = bool(NNF_GEMM_BASELINE_FMA)
if <int>ROW_STEP_FIELDS != <int>NNF_ROW_FIELDS:  # _kernels.pxd's copy of the header's count
    raise ImportError(f"nnfast._kernels: ROW_STEP_FIELDS is {ROW_STEP_FIELDS}, row_step.h "
                      f"has {NNF_ROW_FIELDS} fields per layer")


cdef bint row_step_runs() noexcept nogil:
    """Whether sgd_row_step gives the general path's bits now: the products fuse their
    multiply-adds (not the x86 baseline) and none goes to BLAS."""
    return ROW_STEP_ON and nnf_row_step_runs() and not blas_products()


cdef double sgd_row_step(Py_ssize_t n_layers, const Py_ssize_t* table, Py_ssize_t scratch,
                         Py_ssize_t max_width, floating* params, floating* velocity,
                         const floating* x, const floating* y, double w,
                         double inv_weight_sum, double lr, double momentum, bint nesterov,
                         floating* ws) noexcept nogil:
    """Forward, MSE loss, backward and SGD update of one sample in one call; returns the
    loss (nnfast/src/row_step.h: table, NNF_ROW_FIELDS values per layer; the same bits as
    the general path while row_step_runs())."""
    if floating is float:
        return nnf_sgd_row_step_f(n_layers, table, scratch, max_width, params, velocity, x,
                                  y, w, inv_weight_sum, lr, momentum, nesterov, ws)
    else:
        return nnf_sgd_row_step_d(n_layers, table, scratch, max_width, params, velocity, x,
                                  y, w, inv_weight_sum, lr, momentum, nesterov, ws)


def _row_step_runs():
    """Whether batch-1 SGD takes the one-call step now (row_step_runs)."""
    return bool(row_step_runs())


def _set_row_step(bint enabled):
    """Let batch-1 SGD take sgd_row_step (True, the default) or not; returns the old
    setting. For tests and the bench: both give the same bits."""
    global ROW_STEP_ON
    old, ROW_STEP_ON = ROW_STEP_ON, enabled
    return old


# ---- checks shared by the compiled entry points (nnfast/_kernel_entry.pyx, _network.pyx) --
# A last guard: nnfast/kernels.py validates with clearer messages and copies misaligned
# arrays first.

# The same value for Python (nnfast/_validation.py aligns the NumPy arrays it allocates to it).
CACHE_LINE_BYTES = CACHE_LINE


cdef void* cache_aligned_malloc(size_t nbytes) noexcept nogil:
    """nbytes of malloc'd memory starting at a 64-byte boundary (a cache line, one AVX-512
    vector), or NULL; free it with cache_aligned_free. The kernels take any alignment, but
    vectors that straddle two cache lines cost two accesses: on Zen 4 the seed network's
    batch-32 epoch ran 6 % slower with its buffers 8 or 16 bytes off a line (docs/kernels.md)."""
    cdef char* raw
    cdef size_t address
    if nbytes > <size_t>-1 - CACHE_LINE - sizeof(void*):
        return NULL
    raw = <char*>malloc(nbytes + CACHE_LINE + sizeof(void*))
    if raw == NULL:
        return NULL
    # The first line boundary past room for one pointer, which keeps malloc's address.
    address = (<size_t>raw + sizeof(void*) + CACHE_LINE - 1) & ~(<size_t>CACHE_LINE - 1)
    (<void**>(address - sizeof(void*)))[0] = raw
    return <void*>address


cdef void cache_aligned_free(void* block) noexcept nogil:
    """Free a block from cache_aligned_malloc (NULL: nothing)."""
    if block != NULL:
        free((<void**>(<char*>block - sizeof(void*)))[0])


cdef Py_ssize_t cache_lines_of(Py_ssize_t count, size_t itemsize) noexcept nogil:
    """count rounded up to a whole number of cache lines of itemsize-byte values: the
    length to give a region of a block so that the next one starts on a line."""
    cdef Py_ssize_t per_line = CACHE_LINE // itemsize
    return (count + per_line - 1) // per_line * per_line


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
    """The CPU as the kernels see it: vendor, brand, family, model, stepping (-1 if unknown),
    the SIMD features the kernels use that the CPU and the OS support, and the width of the
    units that execute AVX-512 (256 on AMD family 25, Zen 4; 512 otherwise; 0 without it)."""
    cdef const nnf_cpu_info* cpu = nnf_cpu()
    return {"vendor": cpu.vendor.decode("ascii", "replace"),
            "brand": cpu.brand.decode("ascii", "replace").strip(),
            "family": cpu.family, "model": cpu.model, "stepping": cpu.stepping,
            "features": tuple(nnf_feature_name(bit).decode() for bit in range(NNF_FEATURE_COUNT)
                              if cpu.features & (<unsigned>1 << bit)),
            "avx512_unit_bits": cpu.avx512_unit_bits}


AVX512_UNIT_WIDTHS = (256, 512)


def set_avx512_units(bits):
    """Plan the AVX-512 products for units of `bits` (256 or 512; None: as detected, see
    cpu_info); returns the previous setting. Not thread-safe, like set_simd_path."""
    if bits is not None and (type(bits) is not int or bits not in AVX512_UNIT_WIDTHS):
        raise ValueError(f"bits: expected None, 256 or 512, got {bits!r}")
    previous = nnf_avx512_unit_bits_request()
    nnf_set_avx512_unit_bits(0 if bits is None else bits)
    return previous or None


def avx512_units():
    """The AVX-512 unit width the products plan for now (256 or 512), or None when they do
    not run AVX-512."""
    if nnf_family_path(KERNEL_FAMILIES.index("products")) != SIMD_PATHS.index("avx512"):
        return None
    return nnf_avx512_unit_bits()


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


def _avx512_units_from_environment():
    import os

    text = os.environ.get("NNFAST_AVX512_UNITS", "")
    if text:
        if text not in [str(bits) for bits in AVX512_UNIT_WIDTHS]:
            raise ValueError(f"NNFAST_AVX512_UNITS: expected 256 or 512, got {text!r}")
        set_avx512_units(int(text))


_avx512_units_from_environment()
