"""Forward-mode input Jacobian: what MLP.input_grad runs when n_in < n_out.

The compiled ``_network_entry.input_grad`` takes a private ``mode`` ("auto", "forward",
"reverse"); these tests force each one.

- Forward and reverse mode agree to rounding, and both agree with the NumPy reference
  (``reference.MLP.input_grad``), for every hidden and every output activation, in float64
  and float32, on layer sizes 1, 3, 17, 65 and on 1, 2 and 1025 samples (1025 crosses the
  chunk boundary of both modes for the input widths used here), with maxout pieces.
- Both modes agree with central differences of ``MLP.predict``.
- At exact kinks both modes follow the training conventions: relu'(0) = 0,
  leaky_relu'(0) = leaky_slope, elu'(0) = 1, and maxout takes the first of tied pieces.
- A row's Jacobian does not depend on the other rows (bit for bit), and "auto" picks
  forward mode exactly when n_in < the outputs asked for.
"""

import numpy as np
import pytest
from conftest import (
    DTYPES,
    assert_jacobian_close,
    assert_net_close,
    jacobian_magnitude,
    reference_of,
)
from test_input_grad import (
    NET_KWARGS,
    assert_gradient_matches_fd,
    inputs_away_from_kinks,
    jacobian_by_central_differences,
    n_outputs,
    random_net,
)

from nnfast import MLP, _network_entry
from nnfast._spec import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS

MODES = ("forward", "reverse")


def compiled_jacobian(net, X, mode, n_outputs=None):
    """What MLP.input_grad computes, with the mode forced; ``n_outputs`` (default: all)
    asks for the first outputs only, as the estimators do."""
    X, single = net._check_X(X)
    m = net.layer_sizes[-1] if n_outputs is None else n_outputs
    J = np.empty((X.shape[0], m, net.layer_sizes[0]), dtype=net.dtype)
    # The network's compiled layout: on the network, or on its CompiledNetwork.
    layout = getattr(net._compiled, "layout", None) or net._layout
    _network_entry.input_grad(layout, np.ascontiguousarray(net.params), X, J, mode)
    return J[0] if single else J


# (layer sizes, samples): every size of ODD_SIZES appears as an input, hidden and output
# width; single samples, two samples, and 1025 (a chunk of rows and one more).
AGREEMENT_CASES = [
    ([1, 3, 65], 1025),
    ([3, 17, 1, 17], 1025),
    ([3, 17, 5, 17], 2),
    ([5, 65, 17, 65], 1),
    ([17, 65, 3], 2),  # n_in > n_out: forward mode forced where auto would not take it
    ([65, 1], 1),  # one layer: J is W.T
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_forward_and_reverse_agree_with_the_reference(hidden, output, dtype):
    seed = 100 + HIDDEN_ACTIVATIONS.index(hidden) * 10 + OUTPUT_ACTIVATIONS.index(output)
    rng = np.random.default_rng(seed)
    for sizes, n in AGREEMENT_CASES:
        sizes = sizes[:-1] + [n_outputs(output, sizes[-1])]
        net = random_net(sizes, [hidden] * (len(sizes) - 2), output, dtype, seed, scale=0.5)
        reference = reference_of(net)
        X = rng.normal(size=(n, sizes[0]))
        expected = reference.input_grad(X)
        magnitude = jacobian_magnitude(reference, X)
        assert np.abs(expected).max() > 1e-4  # not a network whose units are all dead
        forward, reverse = (compiled_jacobian(net, X, mode) for mode in MODES)
        for J in (forward, reverse):
            assert J.shape == (n, sizes[-1], sizes[0]) and J.dtype == dtype
            assert_jacobian_close(J, expected, magnitude, dtype)
        assert_jacobian_close(forward, reverse.astype(np.float64), magnitude, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_with_one_activation_per_layer(mode, dtype):
    sizes = [3, 5, 17, 5, 3, 17]
    net = random_net(sizes, ["maxout", "elu", "leaky_relu", "relu"], "softmax", dtype, seed=5)
    X = inputs_away_from_kinks(net, np.random.default_rng(5), 7)
    J = compiled_jacobian(net, X, mode)
    assert_gradient_matches_fd(
        J, jacobian_by_central_differences(net, X), np.abs(net.predict(X)).max(), dtype
    )
    reference = reference_of(net)
    assert_jacobian_close(J, reference.input_grad(X), jacobian_magnitude(reference, X), dtype)


# (samples, layer sizes): forward mode's own shape (n_in < n_out) with one input and with
# several, and the reverse shape with forward mode forced.
FD_CASES = [(1, [3, 17, 17]), (2, [1, 5, 3, 17]), (3, [17, 5, 3])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_both_modes_match_finite_differences(hidden, output, dtype):
    seed = 200 + HIDDEN_ACTIVATIONS.index(hidden) * 10 + OUTPUT_ACTIVATIONS.index(output)
    rng = np.random.default_rng(seed)
    for n, sizes in FD_CASES:
        sizes = sizes[:-1] + [n_outputs(output, sizes[-1])]
        net = random_net(sizes, hidden, output, dtype, seed)
        X = inputs_away_from_kinks(net, rng, n)
        fd = jacobian_by_central_differences(net, X)
        assert np.abs(fd).max() > 1e-4  # not all saturated (17 softmax outputs: ~1e-3)
        for mode in MODES:
            assert_gradient_matches_fd(
                compiled_jacobian(net, X, mode), fd, np.abs(net.predict(X)).max(), dtype
            )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", ["relu", "leaky_relu", "elu", "maxout"])
def test_kink_conventions_at_exact_kinks(hidden, dtype):
    # x = 0 and zero biases put every hidden pre-activation exactly on its kink (and tie
    # all of maxout's pieces, whose weights differ): J = W2ᵀ diag(f'(0)) W1ᵀ with
    # relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = 1, and maxout's first piece.
    net = random_net([3, 4, 5], hidden, "identity", dtype, seed=8)
    for b in net.biases:
        b[...] = 0
    W1 = net.weights[0]
    W1_used = W1[:, :, 0] if hidden == "maxout" else W1
    slope = {"relu": 0.0, "leaky_relu": NET_KWARGS["leaky_slope"], "elu": 1.0, "maxout": 1.0}
    W1_used = W1_used.astype(np.float64) * slope[hidden]
    expected = (W1_used @ net.weights[1].astype(np.float64)).T
    X = np.zeros((2, 3))
    for mode in MODES:
        J = compiled_jacobian(net, X, mode)
        assert_net_close(J, np.broadcast_to(expected, (2, 5, 3)), dtype)
    if hidden == "relu":
        assert not compiled_jacobian(net, X, "forward").any()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "hidden,output",
    [("tanh", "identity"), ("maxout", "softmax"), ("elu", "sigmoid"), ("relu", "exp")],
)
def test_a_rows_jacobian_does_not_depend_on_the_other_rows(hidden, output, dtype, mode):
    # Bit for bit: alone, among others, at another position, in another chunk (forward
    # mode takes 128 samples of 3 inputs at a time, reverse mode 1024).
    net = random_net([3, 17, 9, 65], hidden, output, dtype, seed=9, scale=0.5)
    X = np.random.default_rng(9).normal(size=(1025, 3))
    J = compiled_jacobian(net, X, mode)
    for i in (0, 1, 127, 128, 1023, 1024):
        np.testing.assert_array_equal(compiled_jacobian(net, X[i], mode), J[i])
    np.testing.assert_array_equal(compiled_jacobian(net, X[::-1], mode), J[::-1])
    np.testing.assert_array_equal(compiled_jacobian(net, X[5:7], mode), J[5:7])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_sample_as_a_1d_array(dtype):
    net = random_net([3, 5, 17], "tanh", "sigmoid", dtype, seed=4)
    X = np.random.default_rng(4).normal(size=(4, 3))
    for mode in MODES:
        j = compiled_jacobian(net, X[2], mode)
        assert j.shape == (17, 3) and j.dtype == dtype
        np.testing.assert_array_equal(j, compiled_jacobian(net, X[2:3], mode)[0])
    np.testing.assert_array_equal(net.input_grad(X[2]), compiled_jacobian(net, X[2], "forward"))


@pytest.mark.parametrize("mode", MODES)
def test_the_first_outputs_only(mode):
    # The estimators ask for the first n_outputs_ outputs (gaussian_nll: the means).
    net = random_net([3, 17, 18], "tanh", "identity", np.float64, seed=6)
    X = np.random.default_rng(6).normal(size=(5, 3))
    full = compiled_jacobian(net, X, mode)
    for m in (1, 9):
        assert_net_close(compiled_jacobian(net, X, mode, n_outputs=m), full[:, :m], np.float64)


def test_auto_takes_forward_mode_exactly_when_there_are_fewer_inputs_than_outputs():
    # In float32 the two modes round differently, which tells them apart.
    for sizes, m, expected in [
        ([3, 17, 4], 4, "forward"),
        ([4, 17, 4], 4, "reverse"),
        ([5, 17, 4], 4, "reverse"),
        ([3, 17, 8], 2, "reverse"),
        ([3, 17, 8], 4, "forward"),
    ]:
        net = random_net(sizes, "tanh", "identity", np.float32, seed=sum(sizes) + m)
        X = np.random.default_rng(m).normal(size=(64, sizes[0]))
        forward, reverse = (compiled_jacobian(net, X, mode, m) for mode in MODES)
        assert not np.array_equal(forward, reverse)
        auto = compiled_jacobian(net, X, "auto", m)
        np.testing.assert_array_equal(auto, forward if expected == "forward" else reverse)
        if m == sizes[-1]:
            np.testing.assert_array_equal(net.input_grad(X), auto)


def test_an_unknown_mode_is_refused_naming_it():
    net = random_net([2, 3, 4], "tanh", "identity", np.float64, seed=1)
    with pytest.raises(ValueError, match="mode: expected one of 'auto', 'forward', 'reverse'"):
        compiled_jacobian(net, np.ones((1, 2)), "sideways")


def test_emulator_shape_in_both_modes():
    # The shape the forward mode exists for: 5 labels to a spectrum.
    net = MLP([5, 128, 128, 500], activation="tanh", seed=3)
    X = np.random.default_rng(3).normal(size=(64, 5))
    forward = compiled_jacobian(net, X, "forward")
    reference = reference_of(net)
    assert_jacobian_close(
        forward, reference.input_grad(X), jacobian_magnitude(reference, X), np.float64
    )
    assert_jacobian_close(
        forward, compiled_jacobian(net, X, "reverse"), jacobian_magnitude(reference, X), np.float64
    )


def test_the_emulator_benchmark_fits_the_same_labels_both_ways():
    # benchmarks/test_emulator.py and `python -m nnfast bench` time these: they must be fits
    # that succeed, to the same labels, from the Jacobian of the right shape.
    from nnfast import bench

    runners = bench.emulator_runners()
    assert runners["input_grad, 1 spectrum"]().shape == (500, 5)
    assert runners["input_grad, 64 spectra"]().shape == (64, 500, 5)
    exact, finite = (runners[f"least_squares, jac={jac}"]() for jac in ("input_grad", "2-point"))
    assert exact.success and finite.success
    np.testing.assert_allclose(exact.x, finite.x, atol=1e-6)
    assert exact.cost <= finite.cost * (1 + 1e-9)
