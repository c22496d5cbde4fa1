"""The exp output activation, the Poisson loss and the driver's loss_scale / l2_batch_scaled.

These were added for scikit-learn's MLPRegressor(loss="poisson") and its loss and alpha
conventions (nnfast.sklearn). As for every kernel: the reference is held against finite
differences and a textbook formula, the compiled code against the reference.
"""

import math

import numpy as np
import pytest
from conftest import central_differences

import nnfast
from nnfast import _kernel_entry, _solvers, kernels
from nnfast import reference as ref
from nnfast._spec import LOSS_CODES, build_spec


def poisson_data(n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.poisson(1.5, size=(n, n_out)).astype(float)  # zeros included
    assert (y == 0).any()
    return X, y


def params_for(sizes, hidden, output, seed, scale=0.4):
    spec = build_spec(sizes, hidden, output)
    return np.random.default_rng(seed).normal(0.0, scale, spec.n_params)


def test_exp_activation_reference_values_and_finite_differences():
    z = np.array([[-3.0, -0.5, 0.0, 0.7, 2.0]])
    A = ref.activation_forward("exp", z)
    np.testing.assert_allclose(A, np.exp(z), rtol=1e-15)
    dA = np.array([[0.3, -1.0, 2.0, 0.5, -0.25]])
    dZ = ref.activation_backward("exp", z, A, dA)
    h = 1e-6
    fd = (np.exp(z + h) - np.exp(z - h)) / (2 * h) * dA
    np.testing.assert_allclose(dZ, fd, rtol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_kernels_match_reference(dtype):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(7, 5)).astype(dtype)
    dA = rng.normal(size=(7, 5)).astype(dtype)
    A = kernels.activation_forward("exp", Z)
    assert A.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(A, ref.activation_forward("exp", Z), rtol=rtol)
    dZ = kernels.activation_backward("exp", Z, A, dA)
    np.testing.assert_allclose(dZ, ref.activation_backward("exp", Z, A, dA), rtol=rtol)


def test_poisson_reference_is_the_half_deviance_and_its_gradient():
    """Textbook formula per sample (math module) and central finite differences of Z."""
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(6, 2))
    Y = rng.poisson(1.0, size=(6, 2)).astype(float)
    Y[0, 0] = 0.0
    w = rng.uniform(0.2, 2.0, size=6)
    A = np.exp(Z)
    value, dZ = ref.loss_and_delta("poisson", "exp", Z, A, Y, w)
    total = 0.0
    for i in range(6):
        for j in range(2):
            y, a = Y[i, j], math.exp(Z[i, j])
            total += w[i] * ((y * math.log(y / a) if y > 0 else 0.0) - y + a)
    assert value == pytest.approx(total / (w.sum() * 2), rel=1e-13)
    fd = central_differences(
        lambda Zs: ref.loss_and_delta("poisson", "exp", Zs, np.exp(Zs), Y, w)[0], Z, 1e-6
    )
    np.testing.assert_allclose(dZ, fd, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_poisson_loss_kernel_matches_reference(dtype):
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(9, 3)).astype(dtype)
    A = np.exp(Z).astype(dtype)
    Y = rng.poisson(1.2, size=(9, 3)).astype(dtype)
    w = rng.uniform(0.0, 2.0, size=9).astype(dtype)
    dZ = np.empty_like(Z)
    code, act = LOSS_CODES["poisson"], nnfast._spec.ACTIVATION_CODES["exp"]
    value = _kernel_entry.loss_delta_into(code, act, dZ, Z, A, Y, w, 1 / float(w.sum()))
    value_ref, dZ_ref = ref.loss_and_delta("poisson", "exp", Z, A, Y, w)
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    assert value == pytest.approx(value_ref, rel=rtol)
    np.testing.assert_allclose(dZ, dZ_ref, rtol=rtol, atol=1e-7 if dtype == np.float32 else 0)


@pytest.mark.parametrize("output,loss", [("exp", "poisson"), ("exp", "mse")])
def test_network_with_exp_output_matches_reference_and_finite_differences(output, loss):
    sizes = [3, 6, 2]
    params = params_for(sizes, "tanh", output, seed=3)
    net = nnfast.MLP(sizes, "tanh", output, seed=0)
    net.params = params
    oracle = ref.MLP(sizes, "tanh", output, seed=0, params=params)
    X, y = poisson_data(11, 3, 2, seed=4)
    w = np.random.default_rng(5).uniform(0.1, 2.0, size=11)
    np.testing.assert_allclose(net.predict(X), oracle.predict(X), rtol=1e-13)
    value, grad = net.loss_and_grad(X, y, loss, l2=0.1, sample_weight=w)
    value_ref, grad_ref = oracle.loss_and_grad(X, y, loss, l2=0.1, sample_weight=w)
    assert value == pytest.approx(value_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-13)
    h = 1e-6
    fd = np.empty_like(params)
    for i in range(params.size):
        oracle.params[i] = params[i] + h
        up = oracle.loss(X, y, loss, 0.1, w)
        oracle.params[i] = params[i] - h
        down = oracle.loss(X, y, loss, 0.1, w)
        oracle.params[i] = params[i]
        fd[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_poisson_fit_matches_reference_and_learns():
    X, y = poisson_data(60, 3, 1, seed=6)
    rate = np.exp(0.5 * X[:, :1] - 0.3 * X[:, 1:2])
    y = np.random.default_rng(7).poisson(rate).astype(float)
    params = params_for([3, 8, 1], "relu", "exp", seed=8, scale=0.2)
    net = nnfast.MLP([3, 8, 1], "relu", "exp", seed=1)
    net.params = params
    oracle = ref.MLP([3, 8, 1], "relu", "exp", seed=1, params=params)
    kwargs = dict(
        loss="poisson", optimizer="adam", lr=0.01, batch_size=16, epochs=40, shuffle=False, l2=1e-3
    )
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-8, atol=1e-11)
    assert history.loss[-1] < 0.8 * history.loss[0]


def test_poisson_needs_exp_output_and_nonnegative_targets():
    net = nnfast.MLP([2, 3, 1], output_activation="identity", seed=0)
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="loss: 'poisson' needs output_activation='exp'"):
        net.loss(X, np.ones(4), "poisson")
    net = nnfast.MLP([2, 3, 1], output_activation="exp", seed=0)
    with pytest.raises(ValueError, match=r"y: loss='poisson' expects values >= 0, got -1.0"):
        net.loss(X, np.array([1.0, 0.0, -1.0, 2.0]), "poisson")


def manual_epoch(oracle, X, y, loss, batch, lr, l2, loss_scale, w=None):
    """One epoch of plain SGD (no momentum) with the sklearn-style batch scaling, in NumPy."""
    mask = oracle.spec.weight_mask()
    total, weight = 0.0, 0.0
    for start in range(0, X.shape[0], batch):
        rows = slice(start, start + batch)
        wb = None if w is None else w[rows]
        wsum = float(len(X[rows])) if w is None else float(wb.sum())
        data, grad = oracle.loss_and_grad(X[rows], y[rows], loss, 0.0, wb)
        grad *= loss_scale
        l2_batch = l2 / wsum
        grad[mask] += l2_batch * oracle.params[mask]
        value = loss_scale * data + 0.5 * l2_batch * float(
            oracle.params[mask] @ oracle.params[mask]
        )
        oracle.params -= lr * grad
        total += value * wsum
        weight += wsum
    return total / weight


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_scale_and_batch_scaled_l2_in_the_driver(weighted):
    """Objective.loss_scale multiplies the data loss and gradient; Objective.l2_batch_scaled
    divides l2 by each batch's total weight (the last batch is smaller)."""
    sizes = [3, 7, 2]
    params = params_for(sizes, "tanh", "identity", seed=9)
    net = nnfast.MLP(sizes, "tanh", seed=0)
    net.params = params
    oracle = ref.MLP(sizes, "tanh", seed=0, params=params)
    rng = np.random.default_rng(10)
    X, y = rng.normal(size=(23, 3)), rng.normal(size=(23, 2))
    w = rng.uniform(0.5, 2.0, size=23) if weighted else None
    Xc, Yc, wc, loss, _, _ = net._check_data(X, y, "mse", w, 0.0)
    state = _solvers.SGD(net.params, lr=0.05, momentum=0.0)
    objective = _solvers.make_objective(loss, loss_scale=1.5, l2=0.7, l2_batch_scaled=True)
    history = _solvers.EpochLoop(net, Xc, Yc, wc, objective, state, batch_size=10).run(3)
    expected = [manual_epoch(oracle, X, y, "mse", 10, 0.05, 0.7, 1.5, w) for _ in range(3)]
    np.testing.assert_allclose(history.loss, expected, rtol=1e-12)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-11, atol=1e-13)
