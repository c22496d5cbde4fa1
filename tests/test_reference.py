"""Tests of nnfast.reference, the NumPy oracle, against independent mathematics.

The compiled library is tested against ``nnfast.reference``, so the reference itself is held
here against things that do not share its code: central finite differences of its own loss,
a per-sample pure-Python forward pass written with the ``math`` module, textbook loss
formulas (``-y log ŷ`` rather than log-softmax of the logits), scalar loops for the optimizer
rules, and identities (duplicated rows = integer weights, one-hot = labels).
"""

import math
import warnings

import numpy as np
import pytest
from conftest import ELU_ALPHA, LEAKY_SLOPE, central_differences, make_net

from nnfast import reference as ref
from nnfast._spec import HIDDEN_ACTIVATIONS, build_spec, check_seed

OUTPUT_AND_LOSS = [
    ("identity", "mse"),
    ("sigmoid", "mse"),
    ("tanh", "mse"),
    ("softmax", "mse"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
]


def make_targets(loss, n, n_out, rng):
    if loss == "mse":
        return rng.normal(size=(n, n_out))
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(n_out), size=n)  # rows of class probabilities
    return rng.uniform(0.0, 1.0, size=(n, n_out))


def assert_away_from_kinks(net, X, margin=1e-4):
    """Finite differences are only valid where every kinked activation is smooth."""
    for layer, (Z, _) in zip(net.spec.layers, net.forward(X)):
        if layer.activation in ("relu", "leaky_relu", "elu"):
            assert np.abs(Z).min() > margin, "test data sits on a kink: change the seed"
        elif layer.activation == "maxout":
            top2 = np.sort(Z, axis=-1)[..., -2:]
            assert (top2[..., 1] - top2[..., 0]).min() > margin, "maxout tie: change the seed"


def finite_difference_grad(net, X, y, loss, l2, sample_weight, h=1e-6):
    params = net.params
    fd = np.empty_like(params)
    for i in range(params.size):
        saved = params[i]
        params[i] = saved + h
        up = net.loss(X, y, loss, l2, sample_weight)
        params[i] = saved - h
        down = net.loss(X, y, loss, l2, sample_weight)
        params[i] = saved
        fd[i] = (up - down) / (2 * h)
    return fd


# --------------------------------------------------------------------------------------
# Gradients against finite differences
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("output,loss", OUTPUT_AND_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_loss_and_grad_matches_finite_differences(hidden, output, loss):
    rng = np.random.default_rng(7)
    net = make_net([3, 5, 4, 3], hidden, output, seed=3)
    X = rng.normal(size=(7, 3))
    y = make_targets(loss, 7, 3, rng)
    w = rng.uniform(0.2, 2.0, size=7)
    l2 = 0.3
    assert_away_from_kinks(net, X)

    value, grad = net.loss_and_grad(X, y, loss, l2, w)
    assert grad.shape == net.params.shape and grad.dtype == np.float64
    assert value == pytest.approx(net.loss(X, y, loss, l2, w), rel=1e-12)

    fd = finite_difference_grad(net, X, y, loss, l2, w)
    scale = np.abs(fd).max()
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_grad_with_one_activation_per_layer_and_labels(loss):
    rng = np.random.default_rng(11)
    net = make_net([3, 5, 5, 5, 3], ["maxout", "elu", "leaky_relu"], "softmax", seed=5)
    X = rng.normal(size=(9, 3))
    y = rng.integers(0, 3, size=9) if loss == "cross_entropy" else rng.normal(size=(9, 3))
    assert_away_from_kinks(net, X)
    _, grad = net.loss_and_grad(X, y, loss, 0.1)
    fd = finite_difference_grad(net, X, y, loss, 0.1, None)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_cross_entropy_grad_with_rows_not_summing_to_one():
    # -Σ y log softmax(z) is defined for any y; its gradient is A Σ_k y_k - y, not A - y.
    rng = np.random.default_rng(13)
    net = make_net([3, 4, 3], "tanh", "softmax", seed=9)
    X, Y = rng.normal(size=(5, 3)), rng.uniform(0.0, 2.0, size=(5, 3))
    w = rng.uniform(0.5, 1.5, size=5)
    _, grad = net.loss_and_grad(X, Y, "cross_entropy", 0.0, w)
    fd = finite_difference_grad(net, X, Y, "cross_entropy", 0.0, w)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_grad_single_sample_single_output():
    net = make_net([3, 5, 1], "tanh", "sigmoid", seed=2)
    X = np.array([[0.3, -1.2, 0.8]])
    y = np.array([0.25])
    _, grad = net.loss_and_grad(X, y, "binary_cross_entropy", 0.2)
    fd = finite_difference_grad(net, X, y, "binary_cross_entropy", 0.2, None)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------
# Forward pass and losses against a per-sample pure-Python implementation
# --------------------------------------------------------------------------------------


def naive_activation(name, z):
    """Scalar activation, or for softmax a list -> list, straight from the definitions."""
    if name == "identity":
        return z
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-z))
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return max(z, 0.0)
    if name == "leaky_relu":
        return max(LEAKY_SLOPE * z, z)
    if name == "elu":
        return z if z >= 0 else ELU_ALPHA * (math.exp(z) - 1.0)
    raise AssertionError(name)


def naive_predict_one(net, x):
    a = [float(v) for v in x]
    for layer, W, b in zip(net.spec.layers, net.weights, net.biases):
        out = []
        for j in range(layer.n_out):
            if layer.activation == "maxout":
                pieces = [
                    sum(a[i] * W[i, j, p] for i in range(layer.n_in)) + b[j, p]
                    for p in range(layer.pieces)
                ]
                out.append(max(pieces))
            else:
                out.append(sum(a[i] * W[i, j] for i in range(layer.n_in)) + b[j])
        if layer.activation == "softmax":
            exps = [math.exp(z) for z in out]
            out = [e / sum(exps) for e in exps]
        elif layer.activation != "maxout":
            out = [naive_activation(layer.activation, z) for z in out]
        a = out
    return a


def naive_loss(net, X, Y, loss, l2, w):
    total = 0.0
    for x, y_row, w_i in zip(X, Y, w):
        yhat = naive_predict_one(net, x)
        if loss == "mse":
            ell = sum((p - t) ** 2 for p, t in zip(yhat, y_row)) / len(yhat)
        elif loss == "cross_entropy":
            ell = -sum(t * math.log(p) for p, t in zip(yhat, y_row))
        else:
            ell = -sum(
                t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in zip(yhat, y_row)
            ) / len(yhat)
        total += w_i * ell
    penalty = 0.5 * l2 * sum(float((W**2).sum()) for W in net.weights)
    return total / sum(w) + penalty


@pytest.mark.parametrize("output,loss", OUTPUT_AND_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_predict_and_loss_match_naive_python(hidden, output, loss):
    rng = np.random.default_rng(21)
    net = make_net([3, 5, 4, 3], hidden, output, seed=4)
    X = rng.normal(size=(5, 3))
    Y = make_targets(loss, 5, 3, rng)
    w = rng.uniform(0.2, 2.0, size=5)

    expected = np.array([naive_predict_one(net, x) for x in X])
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.predict(X[2]), expected[2], rtol=1e-12, atol=1e-14)
    assert net.predict(X[2]).shape == (3,)
    assert net.loss(X, Y, loss, 0.25, w) == pytest.approx(
        naive_loss(net, X, Y, loss, 0.25, w), rel=1e-12
    )


def test_dense_forward_is_one_layer_of_the_network():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    for hidden in HIDDEN_ACTIVATIONS:
        net = make_net([3, 4, 2], hidden, "identity", seed=1)
        A = ref.dense_forward(X, net.weights[0], net.biases[0], hidden, LEAKY_SLOPE, ELU_ALPHA)
        np.testing.assert_array_equal(A, net.forward(X)[0][1])
    A = rng.normal(size=(4, 3))
    np.testing.assert_allclose(ref.matmul(A, X.T), A @ X.T)
    np.testing.assert_allclose(ref.matvec(A, X[0]), A @ X[0])


# --------------------------------------------------------------------------------------
# Activations: derivatives, ties, extreme inputs, dtypes
# --------------------------------------------------------------------------------------

ALL_ACTIVATIONS = HIDDEN_ACTIVATIONS + ("softmax",)
PARAMS = dict(leaky_slope=LEAKY_SLOPE, elu_alpha=ELU_ALPHA)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(4, 5, 3)) if name == "maxout" else rng.normal(size=(4, 6))
    A = ref.activation_forward(name, Z, **PARAMS)
    dA = rng.normal(size=A.shape)
    dZ = ref.activation_backward(name, Z, A, dA, **PARAMS)
    assert dZ.shape == Z.shape

    fd = central_differences(
        lambda Zs: (dA * ref.activation_forward(name, Zs, **PARAMS)).sum(), Z, 1e-6
    )
    np.testing.assert_allclose(dZ, fd, rtol=1e-6, atol=1e-8)


def test_activation_values():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    f = lambda name: ref.activation_forward(name, z, **PARAMS)
    np.testing.assert_allclose(f("sigmoid"), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(f("tanh"), np.tanh(z))
    np.testing.assert_array_equal(f("relu"), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(f("leaky_relu"), [-0.1, -0.025, 0, 0.5, 2])
    np.testing.assert_allclose(
        f("elu"), [ELU_ALPHA * math.expm1(-2), ELU_ALPHA * math.expm1(-0.5), 0, 0.5, 2]
    )
    assert f("softmax").sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(f("identity"), z)


def test_maxout_gradient_goes_to_the_first_maximum():
    Z = np.array([[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]])  # (n=1, n_out=2, k=3), with ties
    A = ref.activation_forward("maxout", Z)
    np.testing.assert_array_equal(A, [[3.0, 2.0]])
    dZ = ref.activation_backward("maxout", Z, A, np.array([[5.0, 7.0]]))
    np.testing.assert_array_equal(dZ, [[[0, 5, 0], [7, 0, 0]]])


def test_kink_conventions():
    Z = np.array([[-1.0, 0.0, 1.0]])
    dA = np.ones_like(Z)
    relu = ref.activation_backward("relu", Z, ref.activation_forward("relu", Z), dA)
    np.testing.assert_array_equal(relu, [[0, 0, 1]])
    leaky = ref.activation_backward("leaky_relu", Z, None, dA, leaky_slope=0.2)
    np.testing.assert_allclose(leaky, [[0.2, 0.2, 1]])
    A = ref.activation_forward("elu", Z, elu_alpha=0.5)
    np.testing.assert_allclose(
        ref.activation_backward("elu", Z, A, dA, elu_alpha=0.5), [[0.5 * math.exp(-1), 1, 1]]
    )


def raise_on_warnings():
    """Overflow, division by zero and invalid operations become errors.

    Underflow stays ignored (NumPy's default): exp(-1000) rounding to 0 is the correct
    result, not a problem, and ``errstate(all="raise")`` would flag it.
    """
    return np.errstate(over="raise", divide="raise", invalid="raise")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_at_extreme_inputs(dtype):
    big = np.array([[-np.inf, -1e3, -50.0, 0.0, 50.0, 1e3, np.inf]], dtype=dtype)
    finite = np.array([[-1e3, -50.0, 0.0, 50.0, 1e3]], dtype=dtype)
    expected = {
        "sigmoid": [0, 0, 0, 0.5, 1, 1, 1],
        "tanh": [-1, -1, -1, 0, 1, 1, 1],
        "elu": [-ELU_ALPHA, -ELU_ALPHA, -ELU_ALPHA, 0, 50, 1e3, np.inf],
    }
    with warnings.catch_warnings(), raise_on_warnings():
        warnings.simplefilter("error")
        for name, values in expected.items():
            A = ref.activation_forward(name, big, **PARAMS)
            np.testing.assert_allclose(A[0], values, atol=1e-6)
            dZ = ref.activation_backward(name, big, A, np.ones_like(big), **PARAMS)
            assert not np.isnan(A).any() and not np.isnan(dZ).any()
            assert A.dtype == dtype and dZ.dtype == dtype
        for name in ("identity", "relu", "leaky_relu", "softmax"):
            A = ref.activation_forward(name, finite, **PARAMS)
            dZ = ref.activation_backward(name, finite, A, np.ones_like(finite), **PARAMS)
            assert np.isfinite(A).all() and np.isfinite(dZ).all()
        np.testing.assert_allclose(ref.activation_forward("softmax", finite)[0], [0, 0, 0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_at_extreme_logits(dtype):
    Z = np.array([[-1e3, 0.0, 1e3], [1e3, -1e3, 5.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    with warnings.catch_warnings(), raise_on_warnings():
        warnings.simplefilter("error")
        for output, loss in OUTPUT_AND_LOSS:
            A = ref.activation_forward(output, Z)
            value, dZ = ref.loss_and_delta(loss, output, Z, A, Y)
            assert math.isfinite(value) and np.isfinite(dZ).all() and dZ.dtype == dtype
    # CE: -log softmax = 2000 for row 0 and 2000 for row 1; BCE of logit -1e3 with y = 1 is 1e3.
    A = ref.activation_forward("softmax", Z)
    assert ref.loss_and_delta("cross_entropy", "softmax", Z, A, Y)[0] == pytest.approx(2000.0)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_float32_activations_stay_float32(name):
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(3, 4, 2) if name == "maxout" else (3, 4)).astype(np.float32)
    A = ref.activation_forward(name, Z, leaky_slope=np.float64(0.1), elu_alpha=np.float64(1.0))
    dZ = ref.activation_backward(
        name, Z, A, np.ones_like(A), leaky_slope=np.float64(0.1), elu_alpha=np.float64(1.0)
    )
    assert A.dtype == np.float32 and dZ.dtype == np.float32


# --------------------------------------------------------------------------------------
# Loss details
# --------------------------------------------------------------------------------------


def test_cross_entropy_labels_equal_one_hot():
    rng = np.random.default_rng(3)
    net = make_net([3, 5, 4], "tanh", "softmax", seed=8)
    X = rng.normal(size=(10, 3))
    labels = rng.integers(0, 4, size=10)
    one_hot = np.eye(4)[labels]
    assert net.loss(X, labels, "cross_entropy") == net.loss(X, one_hot, "cross_entropy")
    l1, g1 = net.loss_and_grad(X, labels, "cross_entropy", 0.1)
    l2, g2 = net.loss_and_grad(X, one_hot, "cross_entropy", 0.1)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
    # Against the textbook definition: mean of -log p(label).
    P = net.predict(X)
    assert net.loss(X, labels, "cross_entropy") == pytest.approx(
        -np.log(P[np.arange(10), labels]).mean(), rel=1e-12
    )


@pytest.mark.parametrize("output,loss", OUTPUT_AND_LOSS)
def test_integer_weights_equal_repeated_samples(output, loss):
    rng = np.random.default_rng(9)
    net = make_net([3, 5, 3], "elu", output, seed=6)
    X = rng.normal(size=(6, 3))
    Y = make_targets(loss, 6, 3, rng)
    counts = np.array([1, 3, 0, 2, 1, 4])
    weighted = net.loss_and_grad(X, Y, loss, 0.2, counts.astype(float))
    repeated = net.loss_and_grad(
        np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0), loss, 0.2
    )
    assert weighted[0] == pytest.approx(repeated[0], rel=1e-12)
    np.testing.assert_allclose(weighted[1], repeated[1], rtol=1e-10, atol=1e-14)
    # Uniform weights are the unweighted mean.
    assert net.loss(X, Y, loss, 0.0, np.full(6, 2.5)) == pytest.approx(net.loss(X, Y, loss))


def test_zero_total_weight_gives_zero_loss_and_delta():
    Z = np.array([[0.5, -0.2]])
    A = ref.activation_forward("sigmoid", Z)
    value, dZ = ref.loss_and_delta(
        "binary_cross_entropy", "sigmoid", Z, A, np.ones_like(Z), sample_weight=np.zeros(1)
    )
    assert value == 0.0
    np.testing.assert_array_equal(dZ, np.zeros_like(Z))


def test_l2_penalises_weights_not_biases():
    rng = np.random.default_rng(4)
    net = make_net([3, 5, 2], "maxout", "identity", seed=7)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    squares = sum((W**2).sum() for W in net.weights)
    assert net.loss(X, Y, l2=0.8) - net.loss(X, Y) == pytest.approx(0.4 * squares, rel=1e-12)
    g0 = net.loss_and_grad(X, Y)[1]
    g1 = net.loss_and_grad(X, Y, l2=0.8)[1]
    mask = net.spec.weight_mask()
    np.testing.assert_allclose(g1[mask] - g0[mask], 0.8 * net.params[mask], rtol=1e-12)
    np.testing.assert_array_equal(g1[~mask], g0[~mask])


def test_loss_rejects_mismatched_output_activation():
    net = make_net([2, 3, 2], "tanh", "identity")
    with pytest.raises(ValueError, match="softmax"):
        net.loss(np.zeros((1, 2)), [0], "cross_entropy")
    with pytest.raises(ValueError, match="loss"):
        net.loss(np.zeros((1, 2)), np.zeros((1, 2)), "hinge")


# --------------------------------------------------------------------------------------
# Construction
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_init_equals_spec_init_params(dtype):
    args = ([4, 7, 5, 3], ["relu", "maxout"], "softmax")
    net = ref.MLP(*args, dtype=dtype, seed=123)
    spec = build_spec(*args)
    expected = spec.init_params(check_seed(123), np.dtype(dtype))
    assert net.params.dtype == np.dtype(dtype) and net.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(net.params, expected)
    assert net.n_params == spec.n_params == expected.size
    assert net.layer_sizes == (4, 7, 5, 3)
    assert net.activations == ("relu", "maxout", "softmax")
    assert [W.shape for W in net.weights] == [(4, 7), (7, 5, 2), (5, 3)]
    assert [b.shape for b in net.biases] == [(7,), (5, 2), (3,)]
    assert all(np.shares_memory(W, net.params) for W in net.weights + net.biases)
    assert "MLP" in repr(net) and "n_params" in repr(net)


def test_given_params_are_copied_and_checked():
    base = ref.MLP([2, 3, 1], seed=1)
    params = np.arange(base.n_params, dtype=np.float64)
    net = ref.MLP([2, 3, 1], dtype="float32", params=params)
    assert net.params.dtype == np.float32 and net.params.flags.c_contiguous
    np.testing.assert_array_equal(net.params, params)
    params[0] = 99.0
    assert net.params[0] == 0.0
    with pytest.raises(ValueError, match="params"):
        ref.MLP([2, 3, 1], params=np.zeros(base.n_params + 1))
    # The generator advances as if the weights were drawn, so fit shuffles alike.
    same_seed = ref.MLP([2, 3, 1], seed=1, params=params)
    assert same_seed._rng.random() == base._rng.random()


def test_float32_network_stays_float32_and_agrees_with_float64():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    w = rng.uniform(1.0, 2.0, size=8)
    n64 = make_net([3, 6, 2], "tanh", "identity", seed=2)
    n32 = make_net([3, 6, 2], "tanh", "identity", seed=2, dtype="float32")
    l32, g32 = n32.loss_and_grad(X, Y, l2=0.1, sample_weight=w)
    l64, g64 = n64.loss_and_grad(X, Y, l2=0.1, sample_weight=w)
    assert isinstance(l32, float) and g32.dtype == np.float32
    assert n32.predict(X).dtype == np.float32
    assert all(Z.dtype == A.dtype == np.float32 for Z, A in n32.forward(X))
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)
    for optimizer in ("sgd", "adam"):
        n32.fit(X, Y, optimizer=optimizer, epochs=2, batch_size=3, l2=0.1)
        assert n32.params.dtype == np.float32
        assert all(W.base is not None for W in n32.weights)


# --------------------------------------------------------------------------------------
