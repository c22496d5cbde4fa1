"""MLP.input_grad, the Jacobian of the outputs with respect to the inputs.

- Against central differences of ``MLP.predict`` itself (compiled, in the network's dtype;
  per input coordinate, steps of FD_STEP) for every hidden and every output activation, in
  float64 and float32, on odd sizes; inputs are redrawn until no step moves a pre-activation
  across a kink (relu, leaky_relu, elu, maxout).
- Against ``reference.MLP.input_grad`` (NumPy: every output backpropagated at once) on
  n = 1, 3, 17, 65 rows, n_in = 1, 3, 17 and n_out = 1, 3 (2, 3 for softmax).
- 2500 rows (three chunks of 1024, the GIL released) equal the rows taken one by one; a
  1-D X is one sample; bad X is refused with an error naming it.
"""

import numpy as np
import pytest
from conftest import (
    DTYPES,
    FD_STEP,
    ODD_SIZES,
    assert_gradient_matches_fd,
    assert_jacobian_close,
    assert_net_close,
    central_differences,
    jacobian_magnitude,
    kink_pattern,
    reference_of,
)

from nnfast import MLP
from nnfast import reference as ref
from nnfast._spec import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS

# Non-default activation parameters, so that a driver passing the defaults is caught.
NET_KWARGS = dict(leaky_slope=0.05, elu_alpha=0.7, maxout_pieces=3)
KINKED = ("relu", "leaky_relu", "elu", "maxout")  # elu with alpha != 1 has a kink in slope


def random_net(sizes, hidden, output, dtype, seed, scale=0.6):
    """A network with random weights AND biases (biases start at zero otherwise); the
    weights are divided by sqrt(n_in) so that wide layers do not saturate."""
    net = MLP(sizes, hidden, output, dtype=dtype, seed=seed, **NET_KWARGS)
    net.params = np.random.default_rng(seed + 1000).normal(0.0, scale, net.n_params)
    for W in net.weights:
        W /= np.sqrt(W.shape[0])  # in place: W views net.params
    return net


def n_outputs(output, n_out):
    """Softmax needs two outputs at least: it takes 2 where the others take 1."""
    return max(n_out, 2) if output == "softmax" else n_out


def inputs_away_from_kinks(net, rng, n):
    """X (n, n_in) in the network's dtype such that no central-difference step moves a
    pre-activation across a kink, decided in float64 by the reference network on exactly
    the perturbed inputs (rows are independent: one column is perturbed in every row at
    once). Networks without kinks take the first draw."""
    n_in = net.layer_sizes[0]
    h = FD_STEP[net.dtype]
    shadow = ref.MLP(
        net.layer_sizes,
        list(net.activations[:-1]),
        net.activations[-1],
        dtype="float64",
        params=net.params.astype(np.float64),
        **NET_KWARGS,
    )
    for attempt in range(20):
        X = rng.normal(size=(n, n_in)).astype(net.dtype)
        if not set(net.activations) & set(KINKED):
            return X
        base, margin = kink_pattern(shadow, X.astype(np.float64))
        if margin < 1e-4:  # float32 rounding of Z must not decide the side either
            continue
        moved = False
        for k in range(n_in):
            for step in (h, -h):
                Xs = X.copy()
                Xs[:, k] += step
                pattern = kink_pattern(shadow, Xs.astype(np.float64))[0]
                moved |= not all(np.array_equal(a, b) for a, b in zip(pattern, base))
        if not moved:
            return X
    pytest.fail("every draw of X puts a pre-activation near a kink: change the seed")


def jacobian_by_central_differences(net, X):
    """(n, n_out, n_in): central differences of net.predict in the network's dtype."""
    fd = central_differences(net.predict, X, FD_STEP[net.dtype])  # (n, n_out, n, n_in)
    rows = np.arange(X.shape[0])
    return fd[rows, :, rows, :]  # each output row depends on its own input row only


# --------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------

# (rows, layer sizes with n_out = 1 or 3): a single sample with many inputs, one input, and
# two hidden layers.
FD_CASES = [(1, [17, 5, 3]), (3, [1, 17, 1]), (17, [3, 5, 4, 3])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_input_grad_matches_finite_differences(hidden, output, dtype):
    seed = HIDDEN_ACTIVATIONS.index(hidden) * 10 + OUTPUT_ACTIVATIONS.index(output)
    rng = np.random.default_rng(seed)
    for n, sizes in FD_CASES:
        sizes = sizes[:-1] + [n_outputs(output, sizes[-1])]
        net = random_net(sizes, hidden, output, dtype, seed)
        X = inputs_away_from_kinks(net, rng, n)
        J = net.input_grad(X)
        assert J.shape == (n, sizes[-1], sizes[0]) and J.dtype == dtype
        fd = jacobian_by_central_differences(net, X)
        assert np.abs(fd).max() > 1e-3  # not a network whose units are all saturated or dead
        assert_gradient_matches_fd(J, fd, np.abs(net.predict(X)).max(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_grad_with_one_activation_per_layer(dtype):
    sizes = [3, 5, 17, 5, 3, 3]
    net = random_net(sizes, ["maxout", "elu", "leaky_relu", "relu"], "softmax", dtype, seed=5)
    X = inputs_away_from_kinks(net, np.random.default_rng(5), 7)
    J = net.input_grad(X)
    assert_gradient_matches_fd(
        J, jacobian_by_central_differences(net, X), np.abs(net.predict(X)).max(), dtype
    )
    reference = reference_of(net)
    assert_jacobian_close(J, reference.input_grad(X), jacobian_magnitude(reference, X), dtype)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_fd_check_is_sharp_enough_to_catch_a_wrong_jacobian(output):
    # In float32: one entry off by 1% fails; so does leaving out the output activation's
    # derivative. a (1 - a) times the Jacobian of the logits is sigmoid's Jacobian, but
    # only the diagonal of softmax's, and fails there.
    net = random_net([3, 17, 3], "tanh", output, np.float32, seed=3)
    X = np.random.default_rng(3).normal(size=(5, 3)).astype(np.float32)
    J = net.input_grad(X)
    fd = jacobian_by_central_differences(net, X)
    value = np.abs(net.predict(X)).max()
    assert_gradient_matches_fd(J, fd, value, np.float32)
    wrong = J.copy()
    wrong.flat[np.argmax(np.abs(J))] *= 1.01
    with pytest.raises(AssertionError):
        assert_gradient_matches_fd(wrong, fd, value, np.float32)
    logits = MLP([3, 17, 3], "tanh", "identity", dtype=np.float32)
    logits.params = net.params
    J_logits = logits.input_grad(X)
    A = net.predict(X)[:, :, np.newaxis]
    elementwise = A * (1 - A) * J_logits
    with pytest.raises(AssertionError):
        assert_gradient_matches_fd(J_logits, fd, value, np.float32)
    if output == "sigmoid":
        assert_net_close(J, elementwise, np.float32)
    else:
        with pytest.raises(AssertionError):
            assert_gradient_matches_fd(elementwise, fd, value, np.float32)


# --------------------------------------------------------------------------------------
# The compiled Jacobian against the NumPy reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_input_grad_matches_reference(hidden, output, dtype):
    seed = HIDDEN_ACTIVATIONS.index(hidden) * 10 + OUTPUT_ACTIVATIONS.index(output)
    rng = np.random.default_rng(seed)
    for n_in in (1, 3, 17):
        for n_out in (1, 3):
            sizes = [n_in, 17, 5, n_outputs(output, n_out)]
            net = random_net(sizes, hidden, output, dtype, seed, scale=0.5)
            reference = reference_of(net)
            for n in ODD_SIZES:
                X = rng.normal(size=(n, n_in))
                J = net.input_grad(X)
                assert J.shape == (n, sizes[-1], n_in) and J.dtype == dtype
                expected = reference.input_grad(X)
                assert_jacobian_close(J, expected, jacobian_magnitude(reference, X), dtype)
                if n == max(ODD_SIZES):  # not a network whose units are all dead
                    assert np.abs(expected).max() > 1e-4


def test_input_grad_of_a_single_layer_is_its_weights():
    # y = X @ W + b: J[i] = W.T for every row, exactly.
    net = random_net([3, 4], [], "identity", np.float64, seed=1)
    X = np.random.default_rng(1).normal(size=(5, 3))
    J = net.input_grad(X)
    np.testing.assert_array_equal(J, np.broadcast_to(net.weights[0].T, (5, 4, 3)))


def test_softmax_jacobian_rows_sum_to_zero():
    # The probabilities sum to 1 whatever the input: the columns of J sum to 0 over outputs.
    net = random_net([3, 17, 5, 4], "elu", "softmax", np.float64, seed=2)
    X = np.random.default_rng(2).normal(size=(17, 3))
    J = net.input_grad(X)
    assert np.abs(J).max() > 0.01
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "hidden,output", [("tanh", "softmax"), ("maxout", "sigmoid"), ("relu", "identity")]
)
def test_chunked_input_grad_equals_rows_one_by_one(hidden, output, dtype):
    # 2500 rows: two full chunks of 1024 and a short one, long enough to release the GIL.
    net = random_net([3, 17, 9, 3], hidden, output, dtype, seed=9, scale=0.5)
    X = np.random.default_rng(9).normal(size=(2500, 3))
    J = net.input_grad(X)
    assert J.shape == (2500, 3, 3) and J.dtype == dtype and J.flags.c_contiguous
    one_by_one = np.stack([net.input_grad(x) for x in X])
    reference = reference_of(net)
    magnitude = jacobian_magnitude(reference, X)
    assert_jacobian_close(J, one_by_one, magnitude, dtype)
    assert_jacobian_close(J, reference.input_grad(X), magnitude, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_sample_as_a_1d_array(dtype):
    net = random_net([3, 5, 2], "tanh", "sigmoid", dtype, seed=4)
    X = np.random.default_rng(4).normal(size=(4, 3))
    j = net.input_grad(X[2])
    assert j.shape == (2, 3) and j.dtype == dtype
    np.testing.assert_array_equal(j, net.input_grad(X[2:3])[0])
    assert_net_close(j, reference_of(net).input_grad(X[2]), dtype)


def test_input_grad_accepts_what_predict_accepts():
    net = random_net([2, 3, 1], "tanh", "identity", np.float32, seed=6)
    X = np.array([[1, 2], [3, 4], [5, 6]])
    expected = net.input_grad(X.astype(np.float32))
    for same in (X.tolist(), np.asfortranarray(X), X.astype(">f8"), X[::-1][::-1]):
        np.testing.assert_array_equal(net.input_grad(same), expected)


BAD_X = [
    (np.ones((4, 2)), "expected shape"),
    (np.ones(2), "expected one sample of shape"),
    (np.ones((2, 3, 1)), "2-D array"),
    (np.ones((0, 3)), "at least one sample"),
    (np.array([[1.0, np.nan, 0.0]]), "finite"),
    (np.array([[np.inf, 0.0, 0.0]]), "finite"),
    (np.array([[1e39, 0.0, 0.0]]), "fit in float32"),
    (np.ones((1, 3), dtype=complex), "real numbers"),
    (np.array([["a", "b", "c"]]), "real numbers"),
    ([[1.0, 2.0], [3.0]], "could not convert"),
    (None, "got None"),
]


@pytest.mark.parametrize("X,match", BAD_X, ids=[m for _, m in BAD_X])
def test_bad_X_is_refused_naming_it(X, match):
    net = random_net([3, 4, 2], "tanh", "softmax", np.float32, seed=7)
    before = net.params.copy()
    with pytest.raises((ValueError, TypeError), match=match) as info:
        net.input_grad(X)
    assert str(info.value).startswith("X: ")
    np.testing.assert_array_equal(net.params, before)
