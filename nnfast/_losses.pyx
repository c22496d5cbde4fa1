"""Compiled loss kernels: each output delta with its weighted mean loss, and the L2 penalty.

Like nnfast/_kernels.pyx, nothing here checks its input (nnfast/kernels.py and
nnfast/network.py do). Only libm is called here, so no CPU dispatch state is involved (that
lives in nnfast/_kernels.pyx: see nnfast/src/cpu.h).
"""

from cython cimport floating
from libc.math cimport exp, fabs, log, log1p

from nnfast._kernels cimport (
    ActParams,
    LOSS_BINARY_CROSS_ENTROPY,
    LOSS_CROSS_ENTROPY,
    LOSS_GAUSSIAN_NLL,
    LOSS_POISSON,
    activation_backward,
)


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
