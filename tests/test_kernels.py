"""The compiled products and dense layers against nnfast.reference (plain NumPy).

Public entry points (nnfast.kernels: matvec, matmul, dense_forward) over odd sizes, both
sides of the BLAS crossover, both dtypes, every activation, every accepted input layout and
the ``out=`` contract, and a small hypothesis search over shapes and values. The products
and dense layers run on every SIMD code path this CPU has (nnfast.kernels.set_simd_path,
through the ``products_path`` and ``elementwise_path`` fixtures of conftest.py). The
activations are in test_activations.py, the private ``*_into`` kernels of
nnfast._kernel_entry (loss deltas, optimizer updates) in test_kernel_entry.py, and the fast
math has its own per-path tests (test_fastmath.py).
"""

import itertools
import math

import numpy as np
import pytest
from conftest import (
    ACT_PARAMS,
    ALL_ACTIVATIONS,
    DTYPES,
    ELU_ALPHA,
    ODD_SIZES,
    PIECES,
    assert_close,
    assert_product_close,
    no_warnings,
    product_atol,
    rand,
    rtol,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnfast import _kernels, kernels
from nnfast import reference as ref

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
