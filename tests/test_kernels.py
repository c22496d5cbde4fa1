"""The compiled kernels against nnfast.reference (plain NumPy).

Public entry points (nnfast.kernels: matvec, matmul, dense_forward, activation_forward,
activation_backward) over odd sizes, both sides of the BLAS crossover, both dtypes, every
activation, extreme inputs, every accepted input layout and the ``out=`` contract; the
private ``*_into`` kernels of nnfast._kernel_entry (losses with their output deltas, SGD and Adam
updates) that the network drivers use; and a small hypothesis search over shapes and values.
The products, dense layers, activation gradients and optimizer updates run on every SIMD
code path this CPU has (nnfast.kernels.set_simd_path, through the ``products_path`` and
``elementwise_path`` fixtures); the fast math has its own per-path tests (test_fastmath.py).
"""

import itertools
import math

import numpy as np
import pytest
from conftest import (
    DTYPES,
    ODD_SIZES,
    SIMD_PATHS,
    assert_close,
    assert_product_close,
    eps,
    no_warnings,
    product_atol,
    rtol,
    simd_path,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnfast import _kernel_entry, _kernels, kernels
from nnfast import reference as ref
from nnfast._spec import ACTIVATION_CODES, LOSS_CODES

ALL_ACTIVATIONS = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "maxout",
    "softmax",
    "exp",
)
assert set(ALL_ACTIVATIONS) == set(kernels.ACTIVATIONS)
# Non-default activation parameters, so that a kernel ignoring them is caught.
LEAKY_SLOPE = 0.05
ELU_ALPHA = 0.7
ACT_PARAMS = dict(leaky_slope=LEAKY_SLOPE, elu_alpha=ELU_ALPHA)
PIECES = 3

# Larger products: with BLAS switched on at 32768 multiply-adds (set_blas_min_flops, as in
# test_blas_path_matches_reference) these sit on both sides of that crossover, including
# single rows / columns on the BLAS side and the exact threshold; by default they run in
# the register-tiled kernels of nnfast/src/gemm_small.h like every other product.
BLAS_MIN_FLOPS = 32768
BLAS_SHAPES = [
    (65, 129, 257),
    (200, 300, 100),
    (32, 32, 32),  # exactly BLAS_MIN_FLOPS: BLAS
    (31, 33, 32),  # 32736: loops
    (1, 129, 257),
    (257, 129, 1),
    (129, 257, 1),
    (1, 32768, 1),
    (3, 65, 257),
]


@pytest.fixture(params=SIMD_PATHS)
def products_path(request):
    """The test runs with the products on each code path (skipped where the CPU lacks it)."""
    with simd_path(request.param, "products"):
        yield request.param


@pytest.fixture(params=SIMD_PATHS)
def elementwise_path(request):
    """The test runs with the elementwise loops (and every other family) on each code path."""
    with simd_path(request.param, "elementwise"):
        yield request.param


def rand(rng, shape, dtype, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(dtype)


# --------------------------------------------------------------------------------------
# matvec, matmul
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "m,n", list(itertools.product(ODD_SIZES, ODD_SIZES)) + [(257, 129), (1, 4097)]
)
def test_matvec_matches_reference(m, n, dtype, products_path):
    rng = np.random.default_rng(m * 1000 + n)
    A, x = rand(rng, (m, n), dtype), rand(rng, (n,), dtype)
    y = kernels.matvec(A, x)
    assert y.shape == (m,) and y.dtype == dtype and y.flags.c_contiguous
    assert_product_close(y, A, x, expected=ref.matvec(A.astype(np.float64), x.astype(np.float64)))
    # The same-dtype reference answer, within the same bound.
    assert_product_close(y, A, x, expected=ref.matvec(A, x).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", list(itertools.product(ODD_SIZES, repeat=3)) + BLAS_SHAPES)
def test_matmul_matches_reference(m, k, n, dtype, products_path):
    rng = np.random.default_rng(m * 10**6 + k * 1000 + n)
    A, B = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    C = kernels.matmul(A, B)
    assert C.shape == (m, n) and C.dtype == dtype and C.flags.c_contiguous
    assert_product_close(C, A, B, expected=ref.matmul(A.astype(np.float64), B.astype(np.float64)))
    assert_product_close(C, A, B, expected=ref.matmul(A, B).astype(np.float64))


def test_product_check_is_sharp_enough_to_catch_a_wrong_entry():
    # The bound of assert_product_close is far below the size of a real mistake.
    rng = np.random.default_rng(0)
    A, B = rand(rng, (65, 129), np.float32), rand(rng, (129, 257), np.float32)
    C = kernels.matmul(A, B)
    C[7, 11] += 1e-3 * abs(C).max()
    with pytest.raises(AssertionError):
        assert_product_close(C, A, B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_products_with_empty_dimensions(dtype):
    A = np.zeros((3, 0), dtype=dtype)
    np.testing.assert_array_equal(kernels.matvec(A, np.zeros(0, dtype)), np.zeros(3))
    C = kernels.matmul(A, np.zeros((0, 5), dtype))
    assert C.shape == (3, 5) and C.dtype == dtype
    np.testing.assert_array_equal(C, 0)
    assert kernels.matmul(np.ones((0, 4), dtype), np.ones((4, 2), dtype)).shape == (0, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_out_is_filled_and_returned(dtype):
    rng = np.random.default_rng(1)
    for m, k, n in [(3, 17, 65), (65, 129, 257)]:  # loops and BLAS
        A, B = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
        out = np.full((m, n), np.nan, dtype=dtype)
        result = kernels.matmul(A, B, out=out)
        assert result is out
        np.testing.assert_array_equal(out, kernels.matmul(A, B))
    x = rand(rng, (k,), dtype)
    out = np.full(m, np.nan, dtype=dtype)
    assert kernels.matvec(A, x, out=out) is out
    np.testing.assert_array_equal(out, kernels.matvec(A, x))


def bad_outs(shape, dtype):
    """(out, expected exception) pairs that must be refused for a result of shape/dtype."""
    other = np.float32 if dtype == np.float64 else np.float64
    big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=dtype)
    readonly = np.zeros(shape, dtype=dtype)
    readonly.flags.writeable = False
    cases = [
        (np.zeros(shape[:-1] + (shape[-1] + 1,), dtype=dtype), ValueError),  # wrong shape
        (np.zeros(shape[::-1] + (1,), dtype=dtype), ValueError),  # wrong ndim
        (np.zeros(shape, dtype=other), TypeError),  # wrong float dtype
        (np.zeros(shape, dtype=np.int64), TypeError),
        (big[..., ::2], ValueError),  # right shape, not contiguous
        (readonly, ValueError),
        (np.zeros(shape, dtype=dtype).tolist(), TypeError),  # not an array
    ]
    if len(shape) >= 2:
        cases.append((np.asfortranarray(np.zeros(shape, dtype=dtype)), ValueError))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
def test_wrong_out_is_refused(dtype):
    rng = np.random.default_rng(2)
    A, B, x = rand(rng, (3, 17), dtype), rand(rng, (17, 5), dtype), rand(rng, (17,), dtype)
    W, b = rand(rng, (17, 5), dtype), rand(rng, (5,), dtype)
    Z = rand(rng, (3, 5), dtype)
    calls = [
        ((3, 5), lambda out: kernels.matmul(A, B, out=out)),
        ((3,), lambda out: kernels.matvec(A, x, out=out)),
        ((3, 5), lambda out: kernels.dense_forward(A, W, b, "tanh", out=out)),
        ((3, 5), lambda out: kernels.activation_forward("sigmoid", Z, out=out)),
        ((3, 5), lambda out: kernels.activation_backward("tanh", Z, np.tanh(Z), Z, out=out)),
    ]
    for shape, call in calls:
        for out, error in bad_outs(shape, dtype):
            snapshot = np.array(out, copy=True)
            with pytest.raises(error, match="out"):
                call(out)
            np.testing.assert_array_equal(out, snapshot)  # nothing written on refusal


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_may_overlap_the_inputs(dtype):
    # As with NumPy's out=, a result written over an input is still the right answer.
    rng = np.random.default_rng(9)
    for size in (3, 65):  # loops and BLAS
        A, B = rand(rng, (size, size), dtype), rand(rng, (size, size), dtype)
        expected = kernels.matmul(A, B)
        for target in ("A", "B"):
            A2, B2 = A.copy(), B.copy()
            out = A2 if target == "A" else B2
            assert kernels.matmul(A2, B2, out=out) is out
            np.testing.assert_array_equal(out, expected, err_msg=f"out={target}, size {size}")
        x = rand(rng, size, dtype)
        expected = kernels.matvec(A, x)
        x2 = x.copy()
        assert kernels.matvec(A, x2, out=x2) is x2
        np.testing.assert_array_equal(x2, expected)
    # Elementwise kernels: out shifted by one element against the input.
    buffer = rand(rng, 66, dtype)
    for name in ("sigmoid", "softmax", "elu"):
        for z_at, out_at in ((slice(0, 65), slice(1, 66)), (slice(1, 66), slice(0, 65))):
            work = buffer.copy()
            expected = kernels.activation_forward(name, work[z_at].copy())
            assert kernels.activation_forward(name, work[z_at], out=work[out_at]) is not None
            np.testing.assert_array_equal(work[out_at], expected, err_msg=name)
            work = buffer.copy()
            Z, A = work[z_at].copy(), kernels.activation_forward(name, work[z_at].copy())
            expected = kernels.activation_backward(name, Z, A, work[z_at].copy())
            kernels.activation_backward(name, Z, A, work[z_at], out=work[out_at])
            np.testing.assert_array_equal(work[out_at], expected, err_msg=name)
    # maxout: dZ (n, m, pieces) over the memory of dA (n, m).
    Z = rand(rng, (17, 3, PIECES), dtype)
    A = kernels.activation_forward("maxout", Z)
    dA = rand(rng, (17, 3), dtype)
    expected = kernels.activation_backward("maxout", Z, A, dA)
    work = np.zeros(Z.size, dtype)
    work[: dA.size] = dA.reshape(-1)
    out = work.reshape(Z.shape)
    kernels.activation_backward("maxout", Z, A, work[: dA.size].reshape(dA.shape), out=out)
    np.testing.assert_array_equal(out, expected)
    # dense_forward writing over X
    X, W, b = rand(rng, (5, 17), dtype), rand(rng, (17, 17), dtype), rand(rng, 17, dtype)
    expected = kernels.dense_forward(X, W, b, "tanh")
    kernels.dense_forward(X, W, b, "tanh", out=X)
    np.testing.assert_array_equal(X, expected)


def test_maxout_needs_at_least_one_piece():
    # Zero pieces would make the kernel read past an empty buffer.
    with pytest.raises(ValueError, match="pieces"):
        kernels.activation_forward("maxout", np.zeros((3, 0)))
    with pytest.raises(ValueError, match="pieces"):
        kernels.activation_backward("maxout", np.zeros((3, 0)), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="pieces"):
        kernels.dense_forward(np.ones((2, 3)), np.ones((3, 4, 0)), np.ones((4, 0)), "maxout")


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_four_dimensional_inputs_forward_and_backward(name):
    # activation_forward takes Z up to 4-D (maxout: A up to 3-D); backward takes the same.
    rng = np.random.default_rng(10)
    shape = (3, 1, 5, 3) if name == "maxout" else (3, 1, 5, 17)
    Z = act_input(name, shape[:-1] if name == "maxout" else shape, np.float64, rng)
    A = kernels.activation_forward(name, Z, **ACT_PARAMS)
    assert_close(A, ref.activation_forward(name, Z, **ACT_PARAMS), np.float64)
    dA = rand(rng, A.shape, np.float64)
    dZ = kernels.activation_backward(name, Z, A, dA, **ACT_PARAMS)
    assert_close(
        dZ,
        ref.activation_backward(name, Z, A, dA, **ACT_PARAMS),
        np.float64,
        scale=float(np.abs(dA).max()),
    )


def test_mismatched_inputs_are_refused():
    A = np.ones((3, 4))
    with pytest.raises(ValueError, match="x"):
        kernels.matvec(A, np.ones(5))
    with pytest.raises(ValueError, match="B"):
        kernels.matmul(A, np.ones((5, 2)))
    with pytest.raises(ValueError, match="A"):
        kernels.matmul(np.ones(4), np.ones((4, 2)))
    with pytest.raises(TypeError, match="A"):
        kernels.matmul(np.array([["a"]]), np.ones((1, 1)))
    with pytest.raises(ValueError, match="activation"):
        kernels.activation_forward("swish", A)
    with pytest.raises(ValueError, match="Z"):
        kernels.activation_forward("maxout", np.ones(3))
    with pytest.raises(ValueError, match="dA"):
        kernels.activation_backward("tanh", A, A, np.ones((3, 5)))
    with pytest.raises(ValueError, match="b"):
        kernels.dense_forward(A, np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="leaky_slope"):
        kernels.activation_forward("leaky_relu", A, leaky_slope=2.0)


# --------------------------------------------------------------------------------------
# dense_forward
# --------------------------------------------------------------------------------------

DENSE_SHAPES = [
    (1, 1, 1),
    (3, 17, 1),
    (17, 3, 65),
    (65, 17, 3),
    (1, 65, 17),
    (200, 65, 17),
    (65, 129, 33),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("n,n_in,n_out", DENSE_SHAPES)
def test_dense_forward_matches_reference(n, n_in, n_out, activation, dtype, elementwise_path):
    rng = np.random.default_rng(n * 7 + n_in * 13 + n_out)
    maxout = activation == "maxout"
    w_shape = (n_in, n_out, PIECES) if maxout else (n_in, n_out)
    X = rand(rng, (n, n_in), dtype)
    W = rand(rng, w_shape, dtype, scale=1 / math.sqrt(n_in))
    b = rand(rng, w_shape[1:], dtype)
    out = kernels.dense_forward(X, W, b, activation, **ACT_PARAMS)
    assert out.shape == (n, n_out) and out.dtype == dtype

    # Same-dtype reference, and the float64 evaluation of the same inputs. The product's
    # rounding (bounded by product_atol over the k + 1 terms of X @ W + b) passes through
    # activations whose slope is at most 1 (elu: max(1, alpha)).
    expected = ref.dense_forward(X, W, b, activation, **ACT_PARAMS)
    exact = ref.dense_forward(
        X.astype(np.float64), W.astype(np.float64), b.astype(np.float64), activation, **ACT_PARAMS
    )
    X1 = np.hstack([X, np.ones((n, 1), dtype)])
    Wb = np.vstack([W.reshape(n_in, -1), b.reshape(1, -1)])
    atol = 2 * product_atol(X1, Wb).max() + rtol(dtype) * np.abs(exact).max()
    np.testing.assert_allclose(out, exact, rtol=rtol(dtype), atol=atol)
    np.testing.assert_allclose(out, expected, rtol=rtol(dtype), atol=2 * atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_dense_forward_out_and_no_inputs(activation, dtype):
    rng = np.random.default_rng(3)
    w_shape = (17, 3, PIECES) if activation == "maxout" else (17, 3)
    X, W, b = rand(rng, (5, 17), dtype), rand(rng, w_shape, dtype), rand(rng, w_shape[1:], dtype)
    out = np.full((5, 3), np.nan, dtype=dtype)
    assert kernels.dense_forward(X, W, b, activation, out=out, **ACT_PARAMS) is out
    np.testing.assert_array_equal(out, kernels.dense_forward(X, W, b, activation, **ACT_PARAMS))
    # n_in = 0: the layer is f(b) for every row.
    X0, W0 = np.zeros((5, 0), dtype), np.zeros((0,) + w_shape[1:], dtype)
    result = kernels.dense_forward(X0, W0, b, activation, **ACT_PARAMS)
    expected = ref.activation_forward(activation, np.broadcast_to(b, (5,) + b.shape), **ACT_PARAMS)
    assert result.dtype == dtype
    assert_close(result, expected, dtype)


# --------------------------------------------------------------------------------------
# activation_forward / activation_backward
# --------------------------------------------------------------------------------------

# Shapes of the activation output A (maxout's Z has one more axis of PIECES): 1-D, 2-D, 3-D.
ACT_SHAPES = [(1,), (17,), (65, 3), (1, 17), (3, 17, 1), (3, 1, 65)]


def act_input(name, shape, dtype, rng, pieces=PIECES):
    """Pre-activations with exact zeros (the kinks) and, for maxout, tied pieces."""
    z_shape = shape + (pieces,) if name == "maxout" else shape
    Z = rng.normal(scale=3.0, size=z_shape)
    Z.reshape(-1)[::5] = 0.0
    if name == "maxout" and pieces > 1:
        Z[..., 1].reshape(-1)[::3] = Z[..., 0].reshape(-1)[::3]  # ties: first piece wins
    return Z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ACT_SHAPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_forward_matches_reference(name, shape, dtype):
    rng = np.random.default_rng(sum(shape) + len(shape))
    Z = act_input(name, shape, dtype, rng)
    A = kernels.activation_forward(name, Z, **ACT_PARAMS)
    assert A.shape == shape and A.dtype == dtype
    assert_close(A, ref.activation_forward(name, Z, **ACT_PARAMS), dtype)
    if name in ("identity", "relu", "leaky_relu", "maxout"):  # exact operations
        np.testing.assert_array_equal(A, ref.activation_forward(name, Z, **ACT_PARAMS))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ACT_SHAPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_backward_matches_reference(name, shape, dtype, elementwise_path):
    rng = np.random.default_rng(100 + sum(shape) + len(shape))
    Z = act_input(name, shape, dtype, rng)
    A = ref.activation_forward(name, Z, **ACT_PARAMS).astype(dtype)
    dA = rand(rng, shape, dtype)
    dZ = kernels.activation_backward(name, Z, A, dA, **ACT_PARAMS)
    assert dZ.shape == Z.shape and dZ.dtype == dtype
    expected = ref.activation_backward(name, Z, A, dA, **ACT_PARAMS)
    # softmax's dZ = A (dA - <dA, A>) cancels: compare on the scale of |A| |dA|.
    scale = float(np.abs(dA).max() * np.abs(A).max())
    assert_close(dZ, expected, dtype, scale=scale)
    if name in ("identity", "relu", "leaky_relu", "maxout"):
        np.testing.assert_array_equal(dZ, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxout_with_one_piece_and_ties(dtype):
    Z = np.array([[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-1.0, -5.0, -1.0]]], dtype)
    A = kernels.activation_forward("maxout", Z)
    np.testing.assert_array_equal(A, [[3.0, 2.0, -1.0]])
    dZ = kernels.activation_backward("maxout", Z, A, np.array([[5.0, 7.0, 9.0]], dtype))
    np.testing.assert_array_equal(dZ, [[[0, 5, 0], [7, 0, 0], [9, 0, 0]]])
    Z1 = rand(np.random.default_rng(0), (17, 3, 1), dtype)
    np.testing.assert_array_equal(kernels.activation_forward("maxout", Z1), Z1[..., 0])


def test_kink_conventions():
    # The kernels and the reference agree at z = 0: relu' = leaky' = slope side, elu' = 1.
    Z = np.array([[-1.0, 0.0, 1.0]])
    dA = np.ones_like(Z)
    for name, expected in [
        ("relu", [0, 0, 1]),
        ("leaky_relu", [LEAKY_SLOPE, LEAKY_SLOPE, 1]),
        ("elu", [ELU_ALPHA * math.exp(-1), 1, 1]),
    ]:
        A = kernels.activation_forward(name, Z, **ACT_PARAMS)
        dZ = kernels.activation_backward(name, Z, A, dA, **ACT_PARAMS)
        np.testing.assert_allclose(dZ[0], expected, rtol=1e-15)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_parameters_are_used(name):
    # Defaults and non-defaults give different results exactly where the activation uses them.
    Z = np.array([[-2.0, -0.5, 0.5, 2.0]])
    if name == "maxout":
        Z = Z.reshape(1, 2, 2)
    default = kernels.activation_forward(name, Z)
    custom = kernels.activation_forward(name, Z, leaky_slope=0.3, elu_alpha=2.5)
    np.testing.assert_array_equal(default, ref.activation_forward(name, Z))
    np.testing.assert_allclose(custom, ref.activation_forward(name, Z, 0.3, 2.5), rtol=1e-15)
    assert (default != custom).any() == (name in ("leaky_relu", "elu"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_at_extreme_inputs(dtype):
    inf = np.inf
    z = np.array([-inf, -1e3, -50.0, 0.0, 50.0, 1e3, inf], dtype=dtype)
    limits = {  # (A, dZ for dA = 1)
        "sigmoid": ([0, 0, 0, 0.5, 1, 1, 1], [0, 0, 0, 0.25, 0, 0, 0]),
        "tanh": ([-1, -1, -1, 0, 1, 1, 1], [0, 0, 0, 1, 0, 0, 0]),
        "elu": ([-ELU_ALPHA] * 3 + [0, 50, 1e3, inf], [0, 0, 0, 1, 1, 1, 1]),
        "relu": ([0, 0, 0, 0, 50, 1e3, inf], [0, 0, 0, 0, 1, 1, 1]),
        "leaky_relu": ([-inf, -50, -2.5, 0, 50, 1e3, inf], [LEAKY_SLOPE] * 4 + [1, 1, 1]),
        "identity": (z, np.ones(7)),
    }
    with no_warnings():
        for name, (values, slopes) in limits.items():
            for Z in (z, z.reshape(1, 7), z[::-1].reshape(7, 1, 1)):  # 1-D, 2-D, 3-D
                A = kernels.activation_forward(name, Z, **ACT_PARAMS)
                dZ = kernels.activation_backward(name, Z, A, np.ones_like(A), **ACT_PARAMS)
                assert A.dtype == dtype and dZ.dtype == dtype
                assert not np.isnan(A).any() and not np.isnan(dZ).any(), name
                if name == "relu":  # max(z, 0) is +0 for z <= 0, as np.maximum gives
                    assert not np.signbit(A).any()
                order = slice(None, None, -1) if Z.ndim == 3 else slice(None)
                np.testing.assert_allclose(
                    A.reshape(-1)[order], values, rtol=1e-6, atol=1e-6, err_msg=name
                )
                np.testing.assert_allclose(
                    dZ.reshape(-1)[order], slopes, rtol=1e-6, atol=1e-6, err_msg=name
                )
                assert_close(A, ref.activation_forward(name, Z, **ACT_PARAMS), dtype, scale=1.0)

        # softmax: huge logits and rows holding -inf next to a finite maximum.
        Z = np.array(
            [
                [-1e3, 0.0, 1e3],
                [1e3, 1e3, -1e3],
                [-inf, 0.0, 0.0],
                [-inf, -inf, 5.0],
                [-1e3, -inf, -1e3 - 1.0],
            ],
            dtype=dtype,
        )
        A = kernels.activation_forward("softmax", Z)
        e = math.exp(-1.0)
        expected = [
            [0, 0, 1],
            [0.5, 0.5, 0],
            [0, 0.5, 0.5],
            [0, 0, 1],
            [1 / (1 + e), 0, e / (1 + e)],
        ]
        assert A.dtype == dtype and np.isfinite(A).all()
        np.testing.assert_allclose(A, expected, rtol=1e-6, atol=1e-7)
        dA = np.array([[1.0, 2.0, 3.0]] * 5, dtype)
        dZ = kernels.activation_backward("softmax", Z, A, dA)
        assert np.isfinite(dZ).all()
        assert_close(dZ, ref.activation_backward("softmax", Z, A, dA), dtype, scale=3.0)
        # maxout with infinite pieces
        Zm = np.array([[[-inf, 1.0], [inf, 2.0], [-inf, -inf]]], dtype)
        Am = kernels.activation_forward("maxout", Zm)
        np.testing.assert_array_equal(Am, [[1.0, inf, -inf]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "elu"])
def test_elementwise_activations_are_accurate_relative_to_each_value(name, dtype):
    # Tiny results (sigmoid's lower tail, tanh and elu near 0) must keep their relative
    # accuracy, which an absolute tolerance scaled by the largest value would not check.
    info = np.finfo(dtype)
    magnitudes = np.logspace(
        math.log10(info.tiny) + 1, math.log10(-math.log(info.tiny)) - 0.01, 201
    )
    z = np.concatenate([-magnitudes[::-1], [0.0], magnitudes]).astype(dtype)
    A = kernels.activation_forward(name, z, **ACT_PARAMS)
    with np.errstate(under="ignore"):
        expected = ref.activation_forward(name, z, **ACT_PARAMS)
    assert (expected != 0).sum() >= 400
    np.testing.assert_allclose(A, expected, rtol=rtol(dtype), atol=0)
    dA = np.ones_like(A)
    with np.errstate(under="ignore"):
        dZ = kernels.activation_backward(name, z, A, dA, **ACT_PARAMS)
        expected_dZ = ref.activation_backward(name, z, A, dA, **ACT_PARAMS)
    np.testing.assert_allclose(dZ, expected_dZ, rtol=rtol(dtype), atol=0)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_float32_in_float32_out(name):
    rng = np.random.default_rng(4)
    Z = rand(rng, (3, 17, 3) if name == "maxout" else (3, 17), np.float32)
    A = kernels.activation_forward(name, Z, leaky_slope=np.float64(0.2), elu_alpha=np.float64(1.5))
    dZ = kernels.activation_backward(
        name, Z, A, np.ones_like(A), leaky_slope=np.float64(0.2), elu_alpha=np.float64(1.5)
    )
    assert A.dtype == np.float32 and dZ.dtype == np.float32
    # int with float32 is not "every input float32": float64.
    assert kernels.activation_backward(name, Z, A, np.ones(A.shape, int)).dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_out_and_in_place(name, dtype):
    rng = np.random.default_rng(5)
    Z = act_input(name, (17, 3), dtype, rng)
    A = kernels.activation_forward(name, Z, **ACT_PARAMS)
    out = np.full(A.shape, np.nan, dtype)
    assert kernels.activation_forward(name, Z, out=out, **ACT_PARAMS) is out
    np.testing.assert_array_equal(out, A)
    dA = rand(rng, A.shape, dtype)
    dZ = kernels.activation_backward(name, Z, A, dA, **ACT_PARAMS)
    out = np.full(Z.shape, np.nan, dtype)
    assert kernels.activation_backward(name, Z, A, dA, out=out, **ACT_PARAMS) is out
    np.testing.assert_array_equal(out, dZ)
    if name != "maxout":  # out may be the input itself (same shape)
        Z2 = Z.copy()
        assert kernels.activation_forward(name, Z2, out=Z2, **ACT_PARAMS) is Z2
        np.testing.assert_array_equal(Z2, A)
        dA2 = dA.copy()
        kernels.activation_backward(name, Z, A, dA2, out=dA2, **ACT_PARAMS)
        np.testing.assert_array_equal(dA2, dZ)


# --------------------------------------------------------------------------------------
# Input layouts: everything is converted once to C-contiguous arrays of one dtype
# --------------------------------------------------------------------------------------


def layouts(A):
    """Views and copies of the float64 array ``A`` that hold exactly its values."""
    wide = np.zeros(A.shape[:-1] + (2 * A.shape[-1],))
    wide[..., ::2] = A
    flipped = A[::-1].copy()
    return {
        "fortran": np.asfortranarray(A),
        "strided": wide[..., ::2],
        "reversed": flipped[::-1],
        "transposed-view": np.ascontiguousarray(A.T).T,
        "list": A.tolist(),
    }


def integer_valued(rng, shape):
    return rng.integers(-5, 6, size=shape).astype(np.float64)


def test_input_layouts_are_converted():
    rng = np.random.default_rng(6)
    A = rng.normal(size=(17, 65))
    B = rng.normal(size=(65, 3))
    x = rng.normal(size=65)
    W3 = rng.normal(size=(65, 3, PIECES))
    b3 = rng.normal(size=(3, PIECES))
    Z = rng.normal(size=(17, 3, PIECES))
    dA = rng.normal(size=(17, 3))
    cases = [
        (lambda A, B: kernels.matmul(A, B), (A, B)),
        (lambda A, x: kernels.matvec(A, x), (A, x)),
        (lambda X, W, b: kernels.dense_forward(X, W, b, "tanh"), (A, B, x[:3])),
        (lambda X, W, b: kernels.dense_forward(X, W, b, "maxout"), (A, W3, b3)),
        (lambda Z: kernels.activation_forward("softmax", Z), (A,)),
        (lambda Z: kernels.activation_forward("maxout", Z), (Z,)),
        (
            lambda Z, A, dA: kernels.activation_backward("elu", Z, A, dA, elu_alpha=ELU_ALPHA),
            (A, ref.activation_forward("elu", A, elu_alpha=ELU_ALPHA), A[::-1].copy()),
        ),
        (lambda Z, A, dA: kernels.activation_backward("maxout", Z, A, dA), (Z, Z.max(axis=-1), dA)),
    ]
    for call, args in cases:
        expected = call(*args)
        assert expected.dtype == np.float64
        for i, arg in enumerate(args):
            for kind, variant in layouts(arg).items():
                got = call(*args[:i], variant, *args[i + 1 :])
                assert got.dtype == np.float64 and got.flags.c_contiguous
                np.testing.assert_array_equal(got, expected, err_msg=f"{kind} argument {i}")


def test_integer_and_mixed_dtypes():
    rng = np.random.default_rng(7)
    A, B, x = integer_valued(rng, (17, 65)), integer_valued(rng, (65, 3)), integer_valued(rng, 65)
    for int_type in (np.int8, np.int32, np.int64, np.uint16, bool):
        unsigned = np.dtype(int_type).kind in "ub"
        Ai, xi = ((np.abs(a) if unsigned else a).astype(int_type) for a in (A, x))
        Af, xf = Ai.astype(np.float64), xi.astype(np.float64)
        got = kernels.matmul(Ai, B)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, kernels.matmul(Af, B))
        np.testing.assert_array_equal(kernels.matvec(Ai, xi), kernels.matvec(Af, xf))
        np.testing.assert_array_equal(kernels.matvec(Ai, xi), Af @ xf)  # small integers: exact
    np.testing.assert_array_equal(
        kernels.activation_forward("relu", A.astype(np.int16)),
        kernels.activation_forward("relu", A),
    )
    # float32 mixed with float64 computes in float64 with the float32 values.
    A32 = rng.normal(size=(17, 65)).astype(np.float32)
    B64 = rng.normal(size=(65, 3))
    got = kernels.matmul(A32, B64)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, kernels.matmul(A32.astype(np.float64), B64))
    got = kernels.dense_forward(A32, B64, np.zeros(3, np.float32), "sigmoid")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(
        got, kernels.dense_forward(A32.astype(np.float64), B64, np.zeros(3), "sigmoid")
    )
    # every input float32: float32
    assert kernels.matmul(A32, B64.astype(np.float32)).dtype == np.float32
    assert kernels.matvec(A32, B64[:, 0].astype(np.float32)).dtype == np.float32


# --------------------------------------------------------------------------------------
# Private kernels: loss deltas and optimizer updates
# --------------------------------------------------------------------------------------

LOSS_CASES = [
    ("mse", "identity"),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("mse", "softmax"),
    ("cross_entropy", "softmax"),
    ("binary_cross_entropy", "sigmoid"),
]
LOSS_SHAPES = [(n, m) for n in (1, 17, 65) for m in (1, 3, 17)]


def loss_targets(loss, shape, rng, dtype):
    if loss == "mse":
        return rand(rng, shape, dtype)
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(shape[1]), size=shape[0]).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def run_loss_delta(loss, output, Z, A, Y, w):
    dZ = np.full_like(Z, np.nan)
    inv = 1.0 / (Z.shape[0] if w is None else float(w.sum(dtype=np.float64)))
    value = _kernel_entry.loss_delta_into(
        LOSS_CODES[loss], ACTIVATION_CODES[output], dZ, Z, A, Y, w, inv
    )
    return value, dZ


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n,m", LOSS_SHAPES)
@pytest.mark.parametrize("loss,output", LOSS_CASES)
def test_loss_delta_matches_reference(loss, output, n, m, weighted, dtype):
    if output == "softmax" and m == 1:
        m = 2  # softmax needs two outputs
    rng = np.random.default_rng(n * 100 + m)
    Z = rand(rng, (n, m), dtype, scale=2.0)
    A = ref.activation_forward(output, Z).astype(dtype)
    Y = loss_targets(loss, (n, m), rng, dtype)
    w = rng.uniform(0.1, 2.0, size=n).astype(dtype) if weighted else None
    value, dZ = run_loss_delta(loss, output, Z, A, Y, w)
    expected_value, expected_dZ = ref.loss_and_delta(loss, output, Z, A, Y, w)
    assert isinstance(value, float) and dZ.dtype == dtype
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)
    # ... and against the definition in float64 (catches an error shared with the reference).
    Z64, A64, Y64 = (a.astype(np.float64) for a in (Z, A, Y))
    w64 = np.ones(n) if w is None else w.astype(np.float64)
    if loss == "mse":
        per_sample = ((A64 - Y64) ** 2).mean(axis=1)
    elif loss == "cross_entropy":
        per_sample = -(Y64 * np.log(ref.activation_forward("softmax", Z64))).sum(axis=1)
    else:
        P = ref.activation_forward("sigmoid", Z64)
        per_sample = -(Y64 * np.log(P) + (1 - Y64) * np.log1p(-P)).mean(axis=1)
    definition_rtol = 1e-5 if dtype == np.float32 else 1e-12  # float32 rounding of A vs Z
    assert value == pytest.approx((w64 @ per_sample) / w64.sum(), rel=definition_rtol, abs=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_delta_with_rows_not_summing_to_one(dtype):
    # dZ = w (A Σ_k y_k - y) / S, not w (A - y) / S.
    rng = np.random.default_rng(8)
    Z = rand(rng, (17, 3), dtype)
    A = ref.activation_forward("softmax", Z)
    Y = rng.uniform(0.0, 2.0, size=(17, 3)).astype(dtype)
    w = rng.uniform(0.5, 1.5, size=17).astype(dtype)
    value, dZ = run_loss_delta("cross_entropy", "softmax", Z, A, Y, w)
    expected_value, expected_dZ = ref.loss_and_delta("cross_entropy", "softmax", Z, A, Y, w)
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,output", LOSS_CASES)
def test_loss_delta_at_extreme_logits(loss, output, dtype):
    Z = np.array([[-1e3, 0.0, 1e3], [1e3, -1e3, 5.0], [-80.0, 80.0, -0.5]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    with no_warnings():
        A = kernels.activation_forward(output, Z)
        value, dZ = run_loss_delta(loss, output, Z, A, Y, None)
        expected_value, expected_dZ = ref.loss_and_delta(loss, output, Z, A, Y)
    assert math.isfinite(value) and np.isfinite(dZ).all()
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)
    if loss == "cross_entropy":  # -log softmax: 2000 + 2000 + (80.5 + log(1 + e^-80.5 + ...))
        assert value == pytest.approx((2000.0 + 2000.0 + 80.5) / 3, rel=1e-6, abs=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_of_confident_right_answers_keeps_relative_accuracy(dtype):
    # The loss of almost perfect predictions is tiny (log(1 + e^-40) ≈ 4.2e-18), not 0:
    # log1p(e^-|z|), not log(1 + e^-|z|), keeps it accurate.
    Z = np.array([[40.0, -40.0], [-35.0, 35.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    A = kernels.activation_forward("sigmoid", Z)
    value, dZ = run_loss_delta("binary_cross_entropy", "sigmoid", Z, A, Y, None)
    with np.errstate(under="ignore"):
        expected_value, expected_dZ = ref.loss_and_delta("binary_cross_entropy", "sigmoid", Z, A, Y)
    exact = (2 * math.log1p(math.exp(-40.0)) + 2 * math.log1p(math.exp(-35.0))) / 4
    assert value == pytest.approx(exact, rel=1e-12, abs=0)
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)


OPT_SIZES = (1, 17, 65, 1025)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", OPT_SIZES)
@pytest.mark.parametrize(
    "momentum,nesterov", [(0.0, False), (0.0, True), (0.9, False), (0.9, True), (0.5, True)]
)
def test_sgd_update_matches_reference(momentum, nesterov, size, dtype, elementwise_path):
    rng = np.random.default_rng(size)
    params = rand(rng, size, dtype)
    velocity = np.zeros(size, dtype)
    ref_params, ref_velocity = params.copy(), velocity.copy()
    lr = 0.03
    start = params.copy()
    for _ in range(3):
        grad = rand(rng, size, dtype)
        _kernel_entry.sgd_update_into(params, velocity, grad, lr, momentum, nesterov)
        ref.sgd_update(ref_params, ref_velocity, grad, lr, momentum, nesterov)
        assert params.dtype == dtype and velocity.dtype == dtype
        assert_close(velocity, ref_velocity, dtype)
        assert_close(params, ref_params, dtype)
    assert (params != start).all()  # every parameter moved


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", OPT_SIZES)
@pytest.mark.parametrize(
    "lr,beta1,beta2,adam_eps", [(1e-3, 0.9, 0.999, 1e-8), (0.05, 0.5, 0.9, 1e-4)]
)
def test_adam_update_matches_reference(lr, beta1, beta2, adam_eps, size, dtype, elementwise_path):
    rng = np.random.default_rng(size + 1)
    params = rand(rng, size, dtype)
    m, v = np.zeros(size, dtype), np.zeros(size, dtype)
    ref_params, ref_m, ref_v = params.copy(), m.copy(), v.copy()
    start = params.copy()
    for t in range(1, 5):
        grad = rand(rng, size, dtype)
        lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        _kernel_entry.adam_update_into(params, m, v, grad, lr_t, beta1, beta2, adam_eps)
        ref.adam_update(ref_params, ref_m, ref_v, grad, t, lr, beta1, beta2, adam_eps)
        assert_close(m, ref_m, dtype)
        assert_close(v, ref_v, dtype)
        assert_close(params, ref_params, dtype)
        # params move by ~lr per step, much less than their size: also compare the change, up
        # to its own tolerance plus the rounding of params (a few ulps of |params|).
        change, ref_change = params - start, ref_params - start
        np.testing.assert_allclose(
            change,
            ref_change,
            rtol=rtol(dtype),
            atol=rtol(dtype) * np.abs(ref_change).max() + 4 * eps(dtype) * np.abs(start).max(),
        )
    assert np.abs(params - start).max() > 0.5 * lr


# --------------------------------------------------------------------------------------
# Property-based: random shapes and values
# --------------------------------------------------------------------------------------

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None)


@st.composite
def matmul_problems(draw):
    dtype = draw(st.sampled_from(DTYPES))
    m, k, n = (draw(st.integers(1, 70)) for _ in range(3))
    elements = st.floats(-1e3, 1e3, width=32 if dtype == np.float32 else 64)
    A = draw(hnp.arrays(dtype, (m, k), elements=elements))
    B = draw(hnp.arrays(dtype, (k, n), elements=elements))
    return A, B


@SETTINGS
@given(matmul_problems())
def test_matmul_property(problem):
    A, B = problem
    C = kernels.matmul(A, B)
    assert C.dtype == A.dtype
    assert_product_close(C, A, B, expected=ref.matmul(A.astype(np.float64), B.astype(np.float64)))


@st.composite
def activation_problems(draw):
    dtype = draw(st.sampled_from(DTYPES))
    name = draw(st.sampled_from(ALL_ACTIVATIONS))
    shape = tuple(draw(st.lists(st.integers(1, 20), min_size=1, max_size=3)))
    if name == "maxout":
        shape += (draw(st.integers(1, 4)),)
    # exp overflows past ~709 (float64) / ~88 (float32), where a relative comparison means
    # nothing: its overflow to +inf is checked in test_fastmath.py.
    bound = (80 if dtype == np.float32 else 700) if name == "exp" else 1e4
    elements = st.floats(-bound, bound, width=32 if dtype == np.float32 else 64)
    Z = draw(hnp.arrays(dtype, shape, elements=elements))
    slope = draw(st.floats(0.0, 1.0))
    alpha = draw(st.floats(0.0, 5.0))
    return name, Z, slope, alpha


@SETTINGS
@given(activation_problems())
def test_activation_forward_property(problem):
    name, Z, slope, alpha = problem
    dtype = Z.dtype
    with no_warnings():
        A = kernels.activation_forward(name, Z, leaky_slope=slope, elu_alpha=alpha)
    with np.errstate(under="ignore"):
        expected = ref.activation_forward(name, Z, leaky_slope=slope, elu_alpha=alpha)
    assert A.dtype == dtype and A.shape == expected.shape
    assert_close(A, expected, dtype)
    dA = np.ones_like(A)
    dZ = kernels.activation_backward(name, Z, A, dA, leaky_slope=slope, elu_alpha=alpha)
    assert_close(
        dZ,
        ref.activation_backward(name, Z, A, dA, leaky_slope=slope, elu_alpha=alpha),
        dtype,
        scale=1.0,
    )


@pytest.fixture
def blas_on():
    """Products of at least BLAS_MIN_FLOPS multiply-adds go to scipy's BLAS in this test."""
    old = _kernels.set_blas_min_flops(BLAS_MIN_FLOPS)
    try:
        yield
    finally:
        _kernels.set_blas_min_flops(old)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", BLAS_SHAPES)
def test_blas_path_matches_reference(blas_on, m, k, n, dtype):
    rng = np.random.default_rng(m * 10**6 + k * 1000 + n)
    A, B = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    C = kernels.matmul(A, B)
    assert_product_close(C, A, B, expected=ref.matmul(A.astype(np.float64), B.astype(np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_blas_path_trains_like_the_kernels(dtype):
    """Forward, dW (A.T @ B) and dA (A @ B.T) through BLAS agree with the kernels."""
    import nnfast

    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(300, 40)).astype(dtype)
    y = rng.standard_normal((300, 3)).astype(dtype)
    net = nnfast.MLP([40, 65, 33, 3], activation="tanh", dtype=dtype, seed=0)
    loss, grad = net.loss_and_grad(X, y)
    old = _kernels.set_blas_min_flops(BLAS_MIN_FLOPS)
    try:
        blas_loss, blas_grad = net.loss_and_grad(X, y)
    finally:
        _kernels.set_blas_min_flops(old)
    assert_close(blas_loss, loss, dtype)
    assert_close(blas_grad, grad, dtype, factor=10)


def test_blas_threshold_is_validated():
    with pytest.raises(ValueError, match="flops"):
        _kernels.set_blas_min_flops(-1)
