"""Gradients of nnfast.MLP against central finite differences, and the whole network against
nnfast.reference.MLP.

- ``MLP.loss_and_grad`` against central differences of ``MLP.loss`` itself (compiled, in the
  network's dtype) for every hidden activation and every (output activation, loss) pair of
  API.md, with ``l2 > 0`` and random positive ``sample_weight``, on odd layer sizes, in float64
  (per coordinate, h = 1e-6) and float32 (per coordinate, h = 3e-3; see FD_STEP); inputs are
  redrawn until no step moves a pre-activation across a kink (relu, leaky_relu, elu, maxout).
- ``predict``, ``loss`` and ``loss_and_grad`` against the NumPy reference network holding the
  same parameters, for every activation and loss, both dtypes, on 1 to 2500 rows (the compiled
  code works in chunks of 1024 rows and switches between loops and BLAS inside a chunk).
"""

import numpy as np
import pytest
from conftest import (
    DTYPES,
    FD_STEP,
    NET_RTOL,
    assert_gradient_matches_fd,
    assert_net_close,
    eps,
    kink_pattern,
    reference_of,
)

from nnfast import MLP
from nnfast import reference as ref
from nnfast._spec import HIDDEN_ACTIVATIONS

# (output_activation, loss, target kind); "labels" are integer class labels (n,); "half" are
# real targets (n, n_out / 2) of a gaussian_nll network, whose output width is doubled below.
OUTPUT_AND_LOSS = [
    ("identity", "mse", "real"),
    ("sigmoid", "mse", "real"),
    ("tanh", "mse", "real"),
    ("softmax", "mse", "real"),
    ("softmax", "cross_entropy", "labels"),
    ("softmax", "cross_entropy", "probabilities"),
    ("sigmoid", "binary_cross_entropy", "unit"),
    ("identity", "gaussian_nll", "half"),
]
PAIR_IDS = [f"{o}-{l}-{k}" for o, l, k in OUTPUT_AND_LOSS]
# Non-default activation parameters, so that a driver passing the defaults is caught.
NET_KWARGS = dict(leaky_slope=0.05, elu_alpha=0.7, maxout_pieces=3)
L2 = 0.3
KINKED = ("relu", "leaky_relu", "elu", "maxout")  # elu with alpha != 1 has a kink in slope

# Finite-difference steps and tolerances: FD_STEP, FD_RTOL, FD_NOISE_FACTOR in conftest.py.


def random_params(sizes, hidden, output, dtype, seed, scale=0.6):
    """Random weights AND biases (biases start at zero otherwise), exact in ``dtype``."""
    net = MLP(sizes, hidden, output, dtype=dtype, seed=seed, **NET_KWARGS)
    net.params = np.random.default_rng(seed + 1000).normal(0.0, scale, net.n_params)
    return net


def output_sizes(sizes, loss):
    """``sizes`` with the output width doubled for gaussian_nll (a mean and a log-variance per
    target), so that every loss runs on the same odd target widths."""
    return sizes[:-1] + [2 * sizes[-1]] if loss == "gaussian_nll" else sizes


def make_targets(kind, n, n_out, rng):
    if kind == "half":
        return rng.normal(size=(n, n_out // 2))
    if kind == "real":
        return rng.normal(size=(n, n_out))
    if kind == "labels":
        return rng.integers(0, n_out, size=n)
    if kind == "probabilities":
        return rng.dirichlet(np.ones(n_out), size=n)
    return rng.uniform(0.0, 1.0, size=(n, n_out))


# --------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------


def central_differences(net, X, y, loss, w, check_kinks):
    """Per-coordinate central differences of ``net.loss`` in the network's dtype.

    With ``check_kinks``, returns None when some perturbed parameter vector moves a
    pre-activation across a kink (relu / leaky_relu / elu at 0, a maxout argmax), where a
    central difference does not estimate the derivative; the side is decided in float64 by
    the reference network on exactly the perturbed (rounded) parameters.
    """
    h = FD_STEP[net.dtype]
    params = net.params
    fd = np.empty(net.n_params)
    if check_kinks:
        shadow = ref.MLP(
            net.layer_sizes,
            list(net.activations[:-1]),
            net.activations[-1],
            dtype="float64",
            params=params.astype(np.float64),
            **NET_KWARGS,
        )
        base, margin = kink_pattern(shadow, X)
        if margin < 1e-4:  # float32 rounding of Z must not decide the side either
            return None
    for i in range(net.n_params):
        saved = params[i]
        params[i] = saved + h
        up_at = float(params[i])
        up = net.loss(X, y, loss, L2, w)
        if check_kinks:
            shadow.params[i] = up_at
            moved = kink_pattern(shadow, X)[0]
        params[i] = saved - h
        down_at = float(params[i])
        down = net.loss(X, y, loss, L2, w)
        if check_kinks:
            shadow.params[i] = down_at
            moved += kink_pattern(shadow, X)[0]
            shadow.params[i] = float(saved)
            if not all(np.array_equal(a, b) for a, b in zip(moved, base + base)):
                params[i] = saved
                return None
        params[i] = saved
        fd[i] = (up - down) / (up_at - down_at)
    return fd


LAYER_SIZES = [[3, 5, 4, 2], [1, 17, 3]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", LAYER_SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("output,loss,kind", OUTPUT_AND_LOSS, ids=PAIR_IDS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_loss_and_grad_matches_finite_differences(hidden, output, loss, kind, sizes, dtype):
    seed = HIDDEN_ACTIVATIONS.index(hidden) * 100 + OUTPUT_AND_LOSS.index((output, loss, kind))
    sizes = output_sizes(sizes, loss)
    net = random_params(sizes, hidden, output, dtype, seed)
    n = 5
    rng = np.random.default_rng(seed)
    y = make_targets(kind, n, sizes[-1], rng)
    w = rng.uniform(0.2, 2.0, size=n)

    # Draw inputs until no finite-difference step crosses a kink (deterministic: fixed seeds;
    # smooth activations take the first draw).
    for attempt in range(20):
        X = rng.normal(size=(n, sizes[0]))
        fd = central_differences(net, X, y, loss, w, check_kinks=hidden in KINKED)
        if fd is not None:
            break
    else:
        pytest.fail("every draw of X puts a pre-activation near a kink: change the seed")

    value, grad = net.loss_and_grad(X, y, loss, L2, w)
    assert grad.shape == (net.n_params,) and grad.dtype == dtype
    assert value == pytest.approx(net.loss(X, y, loss, L2, w), rel=10 * eps(dtype), abs=0)
    assert_gradient_matches_fd(grad, fd, value, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_with_one_activation_per_layer(dtype):
    sizes = [3, 5, 17, 5, 3, 3]
    hidden = ["maxout", "elu", "leaky_relu", "relu"]
    net = MLP(sizes, hidden, "softmax", dtype=dtype, seed=5, **NET_KWARGS)
    net.params = np.random.default_rng(5).normal(0.0, 0.6, net.n_params)
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, size=7)
    w = rng.uniform(0.2, 2.0, size=7)
    for attempt in range(20):
        X = rng.normal(size=(7, 3))
        fd = central_differences(net, X, y, "cross_entropy", w, check_kinks=True)
        if fd is not None:
            break
    else:
        pytest.fail("every draw of X puts a pre-activation near a kink: change the seed")
    value, grad = net.loss_and_grad(X, y, "cross_entropy", L2, w)
    assert_gradient_matches_fd(grad, fd, value, dtype)


def test_fd_check_is_sharp_enough_to_catch_a_wrong_gradient():
    # A gradient off by 1% in one entry, or missing the l2 term, fails the float32 check.
    net = random_params([1, 17, 3], "tanh", "identity", np.float32, seed=3)
    rng = np.random.default_rng(3)
    X, y, w = rng.normal(size=(5, 1)), rng.normal(size=(5, 3)), rng.uniform(0.2, 2, 5)
    fd = central_differences(net, X, y, "mse", w, check_kinks=False)
    value, grad = net.loss_and_grad(X, y, "mse", L2, w)
    assert_gradient_matches_fd(grad, fd, value, np.float32)
    worst = np.argmax(np.abs(grad))
    wrong = grad.copy()
    wrong[worst] *= 1.01
    with pytest.raises(AssertionError):
        assert_gradient_matches_fd(wrong, fd, value, np.float32)
    _, no_l2 = net.loss_and_grad(X, y, "mse", 0.0, w)
    with pytest.raises(AssertionError):
        assert_gradient_matches_fd(no_l2, fd, value, np.float32)


# --------------------------------------------------------------------------------------
# The compiled network against the NumPy reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_same_seed_same_params_as_reference(hidden, output, dtype):
    for sizes, seed in [([3, 17, 9, 3], 0), ([1, 1, 2], 12345), ([65, 3, 17], 7)]:
        net = MLP(sizes, hidden, output, dtype=dtype, seed=seed, **NET_KWARGS)
        reference = ref.MLP(sizes, hidden, output, dtype=dtype, seed=seed, **NET_KWARGS)
        assert net.params.dtype == dtype and net.n_params == reference.n_params
        np.testing.assert_array_equal(net.params, reference.params)
        for W, W_ref, b, b_ref in zip(net.weights, reference.weights, net.biases, reference.biases):
            np.testing.assert_array_equal(W, W_ref)
            np.testing.assert_array_equal(b, b_ref)
    other = MLP(sizes, hidden, output, dtype=dtype, seed=seed + 1, **NET_KWARGS)
    assert not np.array_equal(other.params, net.params)


# Rows: a single sample, an odd handful, one past a chunk of 1024, and three chunks with a
# short last one. With these widths a 1024-row chunk takes the BLAS path in the first two
# layers (1024 * 3 * 17 >= 32768 multiply-adds) and the loops in the last, and the 452-row
# tail chunk mixes them differently.
NET_SIZES = [3, 17, 9, 3]
ROWS = (1, 17, 1025, 2500)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output,loss,kind", OUTPUT_AND_LOSS, ids=PAIR_IDS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_network_matches_reference(hidden, output, loss, kind, dtype):
    seed = HIDDEN_ACTIVATIONS.index(hidden) * 10 + OUTPUT_AND_LOSS.index((output, loss, kind))
    sizes = output_sizes(NET_SIZES, loss)
    net = random_params(sizes, hidden, output, dtype, seed, scale=0.5)
    reference = reference_of(net)
    tol = NET_RTOL[np.dtype(dtype)]
    rng = np.random.default_rng(seed)
    for n in ROWS:
        X = rng.normal(size=(n, sizes[0]))
        y = make_targets(kind, n, sizes[-1], rng)
        prediction = net.predict(X)
        assert prediction.shape == (n, sizes[-1]) and prediction.dtype == dtype
        assert_net_close(prediction, reference.predict(X), dtype)
        for w in (None, rng.uniform(0.0, 3.0, size=n)):
            if w is not None:
                w[::7] = 0.0  # zero weights are allowed; the weight sum stays positive
                w[0] = 0.5
            expected_value, expected_grad = reference.loss_and_grad(X, y, loss, L2, w)
            value, grad = net.loss_and_grad(X, y, loss, L2, w)
            assert grad.dtype == dtype
            assert value == pytest.approx(expected_value, rel=tol, abs=0)
            assert net.loss(X, y, loss, L2, w) == pytest.approx(expected_value, rel=tol, abs=0)
            assert_net_close(grad, expected_grad, dtype)
            # Without l2 as well: the data gradient alone, which l2 W could otherwise hide.
            _, grad0 = net.loss_and_grad(X, y, loss, 0.0, w)
            _, expected_grad0 = reference.loss_and_grad(X, y, loss, 0.0, w)
            assert_net_close(grad0, expected_grad0, dtype)
    # One sample as a 1-D X gives a 1-D prediction.
    x = X[3]
    assert net.predict(x).shape == (sizes[-1],)
    assert_net_close(net.predict(x), reference.predict(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_chunked_gradient_equals_sum_over_rows(dtype):
    # The gradient over 2500 rows is the weight-sum-weighted mean of the gradients of its
    # parts (independent of the reference: the same network on slices of the data).
    net = random_params(NET_SIZES, "tanh", "softmax", dtype, seed=9, scale=0.5)
    rng = np.random.default_rng(9)
    X = rng.normal(size=(2500, 3))
    y = rng.integers(0, 3, size=2500)
    w = rng.uniform(0.5, 2.0, size=2500)
    value, grad = net.loss_and_grad(X, y, "cross_entropy", 0.0, w)
    parts = [slice(0, 700), slice(700, 1024), slice(1024, 1025), slice(1025, 2500)]
    total = sum(float(w[s].sum()) for s in parts)
    value_sum = sum(net.loss(X[s], y[s], "cross_entropy", 0.0, w[s]) * w[s].sum() for s in parts)
    grad_sum = sum(
        net.loss_and_grad(X[s], y[s], "cross_entropy", 0.0, w[s])[1].astype(float) * w[s].sum()
        for s in parts
    )
    assert value == pytest.approx(value_sum / total, rel=NET_RTOL[np.dtype(dtype)], abs=0)
    assert_net_close(grad, grad_sum / total, dtype)
