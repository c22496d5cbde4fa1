"""Fuzz cases of ``nnfast.kernels``: ``matvec``, ``matmul``, ``activation_forward``,
``activation_backward`` and ``dense_forward``, with and without ``out=``.

Valid inputs of every dtype and layout (the kernels compute in float32 when every input is
float32, else in float64) must match NumPy / ``nnfast.reference`` within the bounds of
``tests/conftest.py``; one corrupted argument must raise naming it (NaN in gives NaN out,
as in NumPy, so NaN is not a corruption here). Run by ``test_fuzz.py`` in a child process.
"""

import numpy as np
import pytest
from conftest import assert_close, assert_product_close, no_warnings
from fuzz_harness import assert_names, fuzz
from fuzz_inputs import DIMS, KDTYPES, arrays, corrupted, outs
from hypothesis import assume, given
from hypothesis import strategies as st

from nnfast import kernels, reference


def _kernel_dtype(*arrays_):
    return np.float32 if all(np.asarray(a).dtype == np.float32 for a in arrays_) else np.float64


def check_out(call, out, error, expected_shape):
    if error is not None:
        with pytest.raises(error) as info:
            call(out)
        assert_names(info.value, "out")
        return None
    with no_warnings():
        result = call(out)
    assert result.shape == expected_shape
    if out is not None:
        assert result is out
    return result


@given(m=DIMS, k=DIMS, data=st.data())
@fuzz(250)
def test_matvec_and_matmul(m, k, data):
    A = data.draw(arrays((m, k), dtypes=KDTYPES))
    if data.draw(st.booleans()):
        x = data.draw(arrays((k,), dtypes=KDTYPES))
        dtype = _kernel_dtype(A, x)
        out, error = data.draw(outs((m,), dtype))
        result = check_out(lambda o: kernels.matvec(A, x, out=o), out, error, (m,))
        if result is not None:
            A_, x_ = np.asarray(A, dtype=dtype), np.asarray(x, dtype=dtype)
            assert result.dtype == dtype
            assert_product_close(result[:, None], A_, x_[:, None])
    else:
        n = data.draw(DIMS)
        B = data.draw(arrays((k, n), dtypes=KDTYPES))
        dtype = _kernel_dtype(A, B)
        out, error = data.draw(outs((m, n), dtype))
        result = check_out(lambda o: kernels.matmul(A, B, out=o), out, error, (m, n))
        if result is not None:
            assert result.dtype == dtype
            assert_product_close(result, np.asarray(A, dtype=dtype), np.asarray(B, dtype=dtype))


@given(m=DIMS, k=DIMS, data=st.data())
@fuzz(150)
def test_matvec_and_matmul_refuse_bad_inputs(m, k, data):
    A = data.draw(arrays((m, k), dtypes=KDTYPES))
    B = data.draw(arrays((k, 2), dtypes=KDTYPES))
    arg = data.draw(st.sampled_from(["A", "B"]))
    bad = data.draw(
        corrupted(
            A if arg == "A" else B,
            np.float64,
            [(k + 1, 2)] if arg == "B" else [(m,), (m, k, 1)],
            finite=False,
        )
    )
    # An empty B of 0 columns, or A of 0 rows, is a legal product: only count real errors.
    assume(
        not (
            isinstance(bad, np.ndarray)
            and bad.dtype.kind == "f"
            and bad.ndim == 2
            and bad.size == 0
            and (arg == "A" and bad.shape[1] == k or arg == "B" and bad.shape[0] == k)
        )
    )
    args = {"A": A, "B": B, arg: bad}
    with pytest.raises((ValueError, TypeError)) as info:
        kernels.matmul(args["A"], args["B"])
    assert_names(info.value, arg)


ACT_NAMES = kernels.ACTIVATIONS


@given(name=st.sampled_from(ACT_NAMES), data=st.data())
@fuzz(250)
def test_activations(name, data):
    shape = data.draw(st.sampled_from([(0,), (1,), (5,), (3, 4), (2, 3, 2), (1, 17), (4, 0)]))
    if name == "maxout" and len(shape) < 2:
        shape = shape + (2,)
    if name == "maxout" and shape[-1] == 0:
        shape = shape[:-1] + (1,)
    slope = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    alpha = data.draw(st.sampled_from([0.0, 1.0, 3.0]))
    Z = data.draw(arrays(shape, -30.0, 30.0, KDTYPES))
    out_shape = shape[:-1] if name == "maxout" else shape
    if data.draw(st.booleans()):
        dtype = _kernel_dtype(Z)
        out, error = data.draw(outs(out_shape, dtype))
        result = check_out(
            lambda o: kernels.activation_forward(
                name, Z, out=o, leaky_slope=slope, elu_alpha=alpha
            ),
            out,
            error,
            out_shape,
        )
        if result is not None and result.size:
            expected = reference.activation_forward(name, np.asarray(Z, dtype=dtype), slope, alpha)
            assert result.dtype == dtype
            assert_close(result, expected, dtype, factor=4 if name == "softmax" else 1)
        return
    A = data.draw(arrays(out_shape, -1.0, 1.0, KDTYPES))
    dA = data.draw(arrays(out_shape, -3.0, 3.0, KDTYPES))
    dtype = _kernel_dtype(Z, A, dA)
    out, error = data.draw(outs(shape, dtype))
    if name in ("sigmoid", "tanh", "softmax") and np.size(Z):  # backward reads A = f(Z)
        A = reference.activation_forward(name, np.asarray(Z, dtype=dtype), slope, alpha)
    result = check_out(
        lambda o: kernels.activation_backward(
            name, Z, A, dA, out=o, leaky_slope=slope, elu_alpha=alpha
        ),
        out,
        error,
        shape,
    )
    if result is not None and result.size:
        args = [np.asarray(a, dtype=dtype) for a in (Z, A, dA)]
        expected = reference.activation_backward(name, *args, slope, alpha)
        assert result.dtype == dtype
        assert_close(result, expected, dtype, factor=4 if name == "softmax" else 1)


@given(name=st.sampled_from(ACT_NAMES), data=st.data())
@fuzz(150)
def test_activations_refuse_bad_inputs(name, data):
    shape = (3, 2)
    Z = data.draw(arrays(shape, dtypes=KDTYPES))
    out_shape = shape[:-1] if name == "maxout" else shape
    A, dA = np.zeros(out_shape), np.ones(out_shape)
    arg = data.draw(st.sampled_from(["Z", "A", "dA", "activation", "leaky_slope", "elu_alpha"]))
    args = dict(Z=Z, A=A, dA=dA, activation=name, leaky_slope=0.1, elu_alpha=1.0)
    if arg == "activation":
        args[arg] = data.draw(st.sampled_from(["Tanh", "", None, 3, "softplus"]))
    elif arg in ("leaky_slope", "elu_alpha"):
        args[arg] = data.draw(st.sampled_from([-0.5, np.nan, np.inf, "1", None]))
        if arg == "leaky_slope" and args[arg] is np.inf:
            args[arg] = 2.0
    elif arg == "Z":
        args[arg] = data.draw(
            st.one_of(
                st.sampled_from(
                    [np.ones((3, 2), complex), np.array([["a"]]), None, np.ones((1, 1, 1, 1, 1))]
                ),
                st.just(np.ones(3)) if name == "maxout" else st.nothing(),
            )
        )
    else:
        args[arg] = data.draw(
            st.sampled_from(
                [np.ones((4, 2)), np.ones(out_shape, complex), None, np.ones(out_shape, object)]
            )
        )
    backward = arg in ("A", "dA") or data.draw(st.booleans())
    with pytest.raises((ValueError, TypeError)) as info:
        if backward:
            kernels.activation_backward(
                args["activation"],
                args["Z"],
                args["A"],
                args["dA"],
                leaky_slope=args["leaky_slope"],
                elu_alpha=args["elu_alpha"],
            )
        else:
            kernels.activation_forward(
                args["activation"],
                args["Z"],
                leaky_slope=args["leaky_slope"],
                elu_alpha=args["elu_alpha"],
            )
    assert_names(info.value, arg)


@given(
    name=st.sampled_from(ACT_NAMES),
    n=DIMS,
    n_in=DIMS,
    n_out=st.sampled_from([1, 2, 5]),
    data=st.data(),
)
@fuzz(200)
def test_dense_forward(name, n, n_in, n_out, data):
    pieces = data.draw(st.integers(1, 3)) if name == "maxout" else None
    wshape = (n_in, n_out, pieces) if pieces else (n_in, n_out)
    X = data.draw(arrays((n, n_in), dtypes=KDTYPES))
    W = data.draw(arrays(wshape, dtypes=KDTYPES))
    b = data.draw(arrays(wshape[1:], dtypes=KDTYPES))
    dtype = _kernel_dtype(X, W, b)
    out, error = data.draw(outs((n, n_out), dtype))
    if data.draw(st.integers(0, 4)) == 0:  # one corrupted input
        arg = data.draw(st.sampled_from(["X", "W", "b"]))
        good = {"X": X, "W": W, "b": b}[arg]
        shapes = {
            "X": [(n, n_in + 1)],
            "W": [(n_in + 1,) + wshape[1:]],
            "b": [(n_out + 1,) + wshape[2:]],
        }[arg]
        bad = data.draw(corrupted(good, np.float64, shapes, finite=False))
        assume(
            not (
                arg == "X"
                and isinstance(bad, np.ndarray)
                and bad.ndim == 2
                and bad.shape[1] == n_in
                and bad.dtype.kind == "f"
                and bad.size == 0
            )
        )
        args = {"X": X, "W": W, "b": b, arg: bad}
        with pytest.raises((ValueError, TypeError)) as info:
            kernels.dense_forward(args["X"], args["W"], args["b"], name)
        assert_names(info.value, arg)
        return
    result = check_out(
        lambda o: kernels.dense_forward(X, W, b, name, out=o), out, error, (n, n_out)
    )
    if result is not None and result.size:
        args = [np.asarray(a, dtype=dtype) for a in (X, W, b)]
        if n_in == 0:  # f(b) in every row (the reference cannot reshape an empty W)
            Zb = np.broadcast_to(args[2], (n,) + wshape[1:]).copy()
            expected = reference.activation_forward(name, Zb)
        else:
            expected = reference.dense_forward(*args, name)
        assert result.dtype == dtype
        # The product is the only source of rounding beyond the activation's few ulps.
        Z = args[0] @ args[1].reshape(n_in, n_out * (pieces or 1)) + args[2].reshape(-1)
        scale = float(np.abs(Z).max()) if Z.size else 0.0
        assert_close(result, expected, dtype, scale=max(scale, 1.0), factor=max(n_in, 1))
