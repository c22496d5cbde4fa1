"""Python entry points of the compiled kernels (nnfast/_kernels.pyx, nnfast/_losses.pyx).

Each re-checks the sizes it relies on and the alignment of every pointer it passes on (a last
guard: nnfast/kernels.py validates with clearer messages and copies misaligned arrays first).
The code-path and BLAS settings stay in nnfast/_kernels.pyx: cpu.h keeps its dispatch state
per translation unit, so they must live where the kernels are compiled.
"""

from cython cimport floating

from nnfast._kernels cimport (
    ACT_EXP,
    ACT_IDENTITY,
    ACT_MAXOUT,
    LOSS_GAUSSIAN_NLL,
    LOSS_MSE,
    ActParams,
    activation_backward,
    activation_forward,
    adam_update,
    all_finite_values,
    check_aligned,
    check_shape,
    dense_forward,
    elu_forward,
    exp_forward,
    loss_target_width,
    matmul,
    matvec,
    rprop_update,
    sgd_update,
    sigmoid_forward,
    tanh_forward,
)
from nnfast._losses cimport loss_delta


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
        exp_forward(&out[0], &x[0], n)
    else:
        raise ValueError(f"name: expected one of {FASTMATH_FUNCTIONS}, got {name!r}")
