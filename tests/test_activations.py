"""The activations (nnfast.kernels.activation_forward / activation_backward) against
nnfast.reference: every activation on 1-, 2- and 3-D shapes, both dtypes, the kink
conventions, the activation parameters, extreme inputs, relative accuracy, and the
``out=`` / in-place contract; the gradients run on every SIMD path (``elementwise_path``)."""

import math

import numpy as np
import pytest
from conftest import (
    ACT_PARAMS,
    ALL_ACTIVATIONS,
    DTYPES,
    ELU_ALPHA,
    LEAKY_SLOPE,
    PIECES,
    assert_close,
    no_warnings,
    rand,
    rtol,
)

from nnfast import kernels
from nnfast import reference as ref

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
