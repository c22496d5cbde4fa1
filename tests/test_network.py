"""Tests of nnfast.MLP: structure, parameter views, fit against the NumPy oracle, quality.

The compiled network is held against ``nnfast.reference.MLP`` (plain NumPy, same fit
semantics) started from the same weights: predictions, losses, gradients and whole training
runs (SGD with and without Nesterov momentum, Adam; several batch sizes, l2, sample weights,
shuffling with the same generator state) must agree to rounding. Then two small problems show
that training actually learns (a 1-20-20-1 tanh curve fit and the digits data set), and the
features of ``fit`` (history, validation, callbacks, verbose, divergence) are checked one by one.
"""

import copy
import pickle
import sys

import numpy as np
import pytest

import nnfast
from nnfast import reference as ref
from nnfast._spec import build_spec

# ------------------------------------------------------------------------------------------
# Helpers (kept in this file: tests/conftest.py belongs to someone else)
# ------------------------------------------------------------------------------------------


def random_params(sizes, activation, output, seed, scale=0.5, **kwargs):
    """Random weights AND biases (initial biases are zero, which would hide bias bugs)."""
    spec = build_spec(sizes, activation, output, **kwargs)
    return np.random.default_rng(seed + 7919).normal(0.0, scale, spec.n_params)


def twin_networks(sizes, activation="tanh", output="identity", dtype="float64", seed=0, **kwargs):
    """An nnfast.MLP and a reference.MLP with identical parameters and generator states."""
    params = random_params(sizes, activation, output, seed, **kwargs)
    net = nnfast.MLP(sizes, activation, output, dtype=dtype, seed=seed, **kwargs)
    net.params = params
    oracle = ref.MLP(sizes, activation, output, dtype=dtype, seed=seed, params=params, **kwargs)
    np.testing.assert_array_equal(net.params, oracle.params)
    return net, oracle


def make_data(loss, n, n_in, n_out, seed, labels=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "mse":
        y = rng.normal(size=(n, n_out))
    elif loss == "cross_entropy":
        y = rng.integers(0, n_out, size=n) if labels else rng.dirichlet(np.ones(n_out), size=n)
    else:
        y = rng.uniform(0.0, 1.0, size=(n, n_out))
    return X, y


def bits(array):
    """The exact bytes of an array, for bit-identity comparisons."""
    return np.ascontiguousarray(array).tobytes()


# ------------------------------------------------------------------------------------------
# Construction
# ------------------------------------------------------------------------------------------


def test_classic_network_has_481_parameters():
    net = nnfast.MLP([1, 20, 20, 1], activation="tanh")
    assert net.n_params == 481
    assert net.params.shape == (481,)
    assert net.layer_sizes == (1, 20, 20, 1)
    assert isinstance(net.layer_sizes, tuple)
    assert net.activations == ("tanh", "tanh", "identity")
    assert net.dtype == np.dtype(np.float64)
    assert [W.shape for W in net.weights] == [(1, 20), (20, 20), (20, 1)]
    assert [b.shape for b in net.biases] == [(20,), (20,), (1,)]


def test_params_is_one_contiguous_buffer_laid_out_layer_by_layer():
    net = nnfast.MLP([3, 5, 4, 2], activation="relu", seed=3)
    net.params = np.arange(net.n_params, dtype=float) / 100  # distinct values everywhere
    p = net.params
    assert p.ndim == 1 and p.flags.c_contiguous and p.flags.writeable
    pieces = []
    for W, b in zip(net.weights, net.biases):
        assert np.shares_memory(W, p) and np.shares_memory(b, p)
        pieces += [W.ravel(), b.ravel()]
    np.testing.assert_array_equal(np.concatenate(pieces), p)
    # W is (n_in, n_out) row-major: W[i, j] sits at offset i * n_out + j.
    assert net.weights[0][1, 2] == p[1 * 5 + 2]
    assert net.biases[0][3] == p[3 * 5 + 3]
    assert net.weights[1][0, 0] == p[3 * 5 + 5]


def test_weights_and_biases_are_writable_views():
    net = nnfast.MLP([2, 3, 1], seed=0)
    net.weights[1][2, 0] = 42.0
    assert net.params[2 * 3 + 3 + 2] == 42.0
    net.biases[0][1] = -7.0
    assert net.params[2 * 3 + 1] == -7.0
    net.params[-1] = 3.5
    assert net.biases[1][0] == 3.5
    net.params[0] = 9.0
    assert net.weights[0][0, 0] == 9.0


def test_maxout_shapes_and_views():
    net = nnfast.MLP([3, 4, 2], activation="maxout", maxout_pieces=3, seed=1)
    assert net.maxout_pieces == 3
    assert net.weights[0].shape == (3, 4, 3)
    assert net.biases[0].shape == (4, 3)
    assert net.weights[1].shape == (4, 2)
    assert net.biases[1].shape == (2,)
    assert net.n_params == 3 * 4 * 3 + 4 * 3 + 4 * 2 + 2
    net.weights[0][1, 2, 0] = 11.0
    assert net.params[(1 * 4 + 2) * 3 + 0] == 11.0
    net.biases[0][3, 2] = 12.0
    assert net.params[36 + 3 * 3 + 2] == 12.0


def test_per_layer_activation_lists():
    net = nnfast.MLP(
        [2, 6, 5, 4, 3], activation=["relu", "elu", "sigmoid"], output_activation="softmax", seed=2
    )
    assert net.activations == ("relu", "elu", "sigmoid", "softmax")
    oracle = ref.MLP([2, 6, 5, 4, 3], ["relu", "elu", "sigmoid"], "softmax", seed=2)
    X = np.random.default_rng(0).normal(size=(9, 2))
    np.testing.assert_allclose(net.predict(X), oracle.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.predict(X).sum(axis=1), 1.0, rtol=1e-12)
    assert nnfast.MLP([2, 3], activation=[]).activations == ("identity",)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.dtype("float64")])
def test_dtype_attribute(dtype):
    net = nnfast.MLP([2, 3, 1], dtype=dtype, seed=0)
    assert net.dtype == np.dtype(dtype)
    assert isinstance(net.dtype, np.dtype)
    assert net.params.dtype == np.dtype(dtype)


def test_same_seed_same_params_and_equal_to_reference():
    kwargs = dict(
        activation=["leaky_relu", "maxout", "tanh"],
        output_activation="sigmoid",
        leaky_slope=0.2,
        maxout_pieces=3,
    )
    a = nnfast.MLP([4, 8, 6, 5, 2], seed=123, **kwargs)
    b = nnfast.MLP([4, 8, 6, 5, 2], seed=123, **kwargs)
    c = nnfast.MLP([4, 8, 6, 5, 2], seed=124, **kwargs)
    oracle = ref.MLP([4, 8, 6, 5, 2], seed=123, **kwargs)
    assert bits(a.params) == bits(b.params) == bits(oracle.params)
    assert not np.array_equal(a.params, c.params)
    # float32 and float64 networks from one seed hold the same weights up to rounding.
    f32 = nnfast.MLP([4, 8, 6, 5, 2], seed=123, dtype="float32", **kwargs)
    np.testing.assert_array_equal(f32.params, a.params.astype(np.float32))


def test_unseeded_networks_differ():
    a, b = nnfast.MLP([3, 10, 1]), nnfast.MLP([3, 10, 1])
    assert not np.array_equal(a.params, b.params)


def test_glorot_and_he_limits():
    # Wide layers so that the largest |W| comes close to the limit of its distribution.
    net = nnfast.MLP(
        [60, 200, 150, 40, 10],
        activation=["relu", "tanh", "elu"],
        output_activation="softmax",
        seed=5,
    )
    limits = [
        np.sqrt(6 / 60),  # relu: He, fan-in only
        np.sqrt(6 / (200 + 150)),  # tanh: Glorot
        np.sqrt(6 / 150),  # elu: He
        np.sqrt(6 / (40 + 10)),  # softmax output: Glorot
    ]
    for W, b, limit in zip(net.weights, net.biases, limits):
        assert np.abs(W).max() <= limit
        assert np.abs(W).max() > 0.97 * limit
        assert abs(W.mean()) < 0.05 * limit  # centred
        assert not b.any()  # biases start at zero
    maxout = nnfast.MLP([30, 40, 1], activation="maxout", maxout_pieces=4, seed=0)
    assert 0.97 * np.sqrt(6 / 30) < np.abs(maxout.weights[0]).max() <= np.sqrt(6 / 30)
    leaky = nnfast.MLP([30, 400, 1], activation="leaky_relu", output_activation="sigmoid", seed=0)
    assert 0.97 * np.sqrt(6 / 30) < np.abs(leaky.weights[0]).max() <= np.sqrt(6 / 30)
    assert np.abs(leaky.weights[1]).max() <= np.sqrt(6 / 401)


def test_repr():
    net = nnfast.MLP([1, 20, 20, 1], activation="tanh")
    assert repr(net) == (
        "MLP([1, 20, 20, 1], activation='tanh', output_activation='identity', "
        "dtype='float64', n_params=481)"
    )
    mixed = nnfast.MLP(
        [2, 3, 4, 2], activation=["relu", "elu"], output_activation="softmax", dtype="float32"
    )
    text = repr(mixed)
    assert "['relu', 'elu']" in text and "'softmax'" in text and "'float32'" in text
    assert "n_params=" + str(mixed.n_params) in text


def test_copy_is_independent():
    net = nnfast.MLP([2, 8, 1], seed=4)
    clone = net.copy()
    assert type(clone) is nnfast.MLP
    assert bits(clone.params) == bits(net.params)
    assert not np.shares_memory(clone.params, net.params)
    assert repr(clone) == repr(net)
    before = net.params.copy()
    clone.params[:] = 0.0
    clone.weights[0][0, 0] = 1.0
    np.testing.assert_array_equal(net.params, before)
    assert clone.params[0] == 1.0  # the clone's views point at the clone's buffer
    # The clone carries the random state too: fitting both (shuffled) gives the same result.
    X, y = make_data("mse", 40, 2, 1, seed=0)
    clone = net.copy()
    net.fit(X, y, epochs=3, batch_size=8, shuffle=True)
    np.testing.assert_array_equal(clone.params, before)  # fitting net left clone alone
    clone.fit(X, y, epochs=3, batch_size=8, shuffle=True)
    assert bits(clone.params) == bits(net.params)


def test_float32_network_stays_float32():
    net = nnfast.MLP([3, 7, 2], activation="relu", dtype="float32", seed=0)
    X, y = make_data("mse", 30, 3, 2, seed=1)  # float64 data
    assert net.params.dtype == np.float32
    assert all(W.dtype == np.float32 for W in net.weights)
    assert all(b.dtype == np.float32 for b in net.biases)
    assert net.predict(X).dtype == np.float32
    assert net.predict(X[0]).dtype == np.float32
    value, grad = net.loss_and_grad(X, y, l2=0.1)
    assert grad.dtype == np.float32 and isinstance(value, float)
    assert isinstance(net.loss(X, y), float)
    net.fit(X, y, epochs=2, l2=0.01)
    assert net.params.dtype == np.float32
    net.params = np.zeros(net.n_params)  # float64 in, float32 kept
    assert net.params.dtype == np.float32
    assert net.copy().params.dtype == np.float32


def test_predict_single_sample_is_1d():
    net = nnfast.MLP([3, 5, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(4, 3))
    out = net.predict(X[2])
    assert out.shape == (2,)
    np.testing.assert_array_equal(out, net.predict(X)[2])


# ------------------------------------------------------------------------------------------
# Evaluation against the reference
# ------------------------------------------------------------------------------------------

EVAL_CASES = [
    ([3, 17, 5, 2], "tanh", "identity", "mse"),
    ([4, 9, 3], "relu", "softmax", "cross_entropy"),
    ([5, 6, 4, 3], ["elu", "leaky_relu"], "sigmoid", "binary_cross_entropy"),
    ([3, 5, 4, 2], ["maxout", "sigmoid"], "tanh", "mse"),
    ([3, 4, 6, 3], ["identity", "relu"], "softmax", "mse"),
    ([2, 1, 1], "identity", "sigmoid", "mse"),
]


@pytest.mark.parametrize("sizes,activation,output,loss", EVAL_CASES)
def test_predict_loss_and_grad_match_reference(sizes, activation, output, loss):
    net, oracle = twin_networks(sizes, activation, output, seed=11, maxout_pieces=3)
    X, y = make_data(loss, 23, sizes[0], sizes[-1], seed=2)
    w = np.random.default_rng(3).uniform(0.0, 2.0, size=23)
    np.testing.assert_allclose(net.predict(X), oracle.predict(X), rtol=1e-12, atol=1e-13)
    for l2, sw in [(0.0, None), (0.3, w)]:
        assert net.loss(X, y, loss, l2, sw) == pytest.approx(
            oracle.loss(X, y, loss, l2, sw), rel=1e-12
        )
        value, grad = net.loss_and_grad(X, y, loss, l2, sw)
        value_ref, grad_ref = oracle.loss_and_grad(X, y, loss, l2, sw)
        assert value == pytest.approx(value_ref, rel=1e-12)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-13)


def test_more_than_1024_rows_predict_loss_and_grad():
    """Prediction, loss and gradient run in chunks of 1024 rows: the chunks must add up."""
    net, oracle = twin_networks([4, 12, 3], "tanh", "softmax", seed=1)
    X, y = make_data("cross_entropy", 2500, 4, 3, seed=4)
    w = np.random.default_rng(5).uniform(0.1, 1.0, size=2500)
    pred = net.predict(X)
    np.testing.assert_allclose(pred, oracle.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(pred[1024:2048], net.predict(X[1024:2048]))
    np.testing.assert_array_equal(pred[-1], net.predict(X[-1]))
    assert net.loss(X, y, "cross_entropy", sample_weight=w) == pytest.approx(
        oracle.loss(X, y, "cross_entropy", sample_weight=w), rel=1e-11
    )
    value, grad = net.loss_and_grad(X, y, "cross_entropy", l2=0.01, sample_weight=w)
    value_ref, grad_ref = oracle.loss_and_grad(X, y, "cross_entropy", l2=0.01, sample_weight=w)
    assert value == pytest.approx(value_ref, rel=1e-11)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-9, atol=1e-13)


# ------------------------------------------------------------------------------------------
# fit against the reference
# ------------------------------------------------------------------------------------------

FIT_NETS = {
    "tanh-mse": ([3, 17, 5, 2], "tanh", "identity", "mse"),
    "relu-softmax-ce": ([4, 16, 3], "relu", "softmax", "cross_entropy"),
    "sigmoid-bce": ([5, 8, 6, 3], ["elu", "sigmoid"], "sigmoid", "binary_cross_entropy"),
    "maxout-leaky-mse": ([3, 7, 6, 2], ["maxout", "leaky_relu"], "tanh", "mse"),
    "identity-softmax-mse": ([3, 6, 5, 3], ["identity", "relu"], "softmax", "mse"),
}
OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", lr=0.01, momentum=0.9, nesterov=False),
    "nesterov": dict(optimizer="sgd", lr=0.01, momentum=0.8, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.01, beta1=0.85, beta2=0.99, eps=1e-7),
}
N_FIT = 50  # not a multiple of 7 or 32


@pytest.mark.parametrize("batch_size", [1, 7, 32, None])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(FIT_NETS))
def test_fit_matches_reference(name, opt, batch_size):
    sizes, activation, output, loss = FIT_NETS[name]
    net, oracle = twin_networks(sizes, activation, output, seed=21, maxout_pieces=2)
    X, y = make_data(loss, N_FIT, sizes[0], sizes[-1], seed=8)
    kwargs = dict(loss=loss, batch_size=batch_size, epochs=5, shuffle=False, **OPTIMIZERS[opt])
    if name in ("tanh-mse", "sigmoid-bce"):  # l2 and sample weights (with a few zeros)
        w = np.random.default_rng(9).uniform(0.0, 3.0, size=N_FIT)
        w[[0, 5, 6, 49]] = 0.0
        kwargs.update(l2=0.02, sample_weight=w)
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    assert history.stop_reason == history_ref.stop_reason == "completed"
    assert len(history.loss) == 5
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9, atol=0)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)
    assert not np.allclose(
        net.params, random_params(sizes, activation, output, 21, maxout_pieces=2)
    )  # training moved them


def test_fit_cross_entropy_with_probability_rows_matches_reference():
    net, oracle = twin_networks([4, 10, 3], "tanh", "softmax", seed=2)
    X, y = make_data("cross_entropy", 37, 4, 3, seed=1, labels=False)
    kwargs = dict(
        loss="cross_entropy",
        optimizer="adam",
        lr=0.02,
        batch_size=8,
        epochs=5,
        shuffle=False,
        l2=0.05,
    )
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_shuffled_matches_reference_with_same_generator(optimizer):
    # Reference built with the same seed: same generator state after initialisation.
    net, oracle = twin_networks([3, 9, 2], "tanh", "identity", seed=33)
    X, y = make_data("mse", 45, 3, 2, seed=3)
    kwargs = dict(optimizer=optimizer, lr=0.02, batch_size=8, epochs=5, shuffle=True)
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)
    # A second call continues from the same generator state (a new order, still equal).
    net.fit(X, y, **kwargs)
    oracle.fit(X, y, **kwargs)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)
    # And the order did matter: unshuffled training ends elsewhere.
    plain, _ = twin_networks([3, 9, 2], "tanh", "identity", seed=33)
    plain.fit(X, y, **dict(kwargs, shuffle=False))
    plain.fit(X, y, **dict(kwargs, shuffle=False))
    assert not np.allclose(plain.params, net.params, rtol=1e-6)


def test_fit_shuffled_matches_reference_given_a_copy_of_the_generator():
    net = nnfast.MLP([2, 6, 1], activation="relu", seed=17)
    # A reference with another generator: only the rng argument makes the orders equal.
    oracle = ref.MLP([2, 6, 1], activation="relu", seed=18, params=net.params)
    X, y = make_data("mse", 30, 2, 1, seed=5)
    rng = copy.deepcopy(net._rng)
    kwargs = dict(optimizer="sgd", lr=0.01, batch_size=4, epochs=4, shuffle=True)
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, rng=rng, **kwargs)
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_fit_float32_matches_reference(opt):
    sizes, activation, output, loss = FIT_NETS["relu-softmax-ce"]
    net, oracle = twin_networks(sizes, activation, output, dtype="float32", seed=4)
    X, y = make_data(loss, N_FIT, sizes[0], sizes[-1], seed=6)
    kwargs = dict(loss=loss, batch_size=7, epochs=5, shuffle=False, l2=0.01, **OPTIMIZERS[opt])
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    assert net.params.dtype == oracle.params.dtype == np.float32
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=2e-5)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-4, atol=1e-5)
    # ... and stays close to the float64 run from the same (rounded) start.
    net64 = nnfast.MLP(sizes, activation, output, seed=4)
    net64.params = random_params(sizes, activation, output, 4).astype(np.float32)
    net64.fit(X, y, **kwargs)
    np.testing.assert_allclose(net.params, net64.params, rtol=1e-3, atol=1e-4)


def test_fit_more_than_1024_rows_full_batch_matches_reference():
    net, oracle = twin_networks([3, 8, 1], "tanh", "identity", seed=6)
    X, y = make_data("mse", 2100, 3, 1, seed=7)
    kwargs = dict(optimizer="adam", lr=0.01, batch_size=None, epochs=3, shuffle=False)
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)
    history = net.fit(X, y, optimizer="sgd", lr=0.01, batch_size=1500, epochs=2, shuffle=True)
    assert len(history.loss) == 2 and np.isfinite(net.params).all()


# ------------------------------------------------------------------------------------------
# Quality: training actually learns
# ------------------------------------------------------------------------------------------


def test_fits_sin_2x_to_small_mse():
    x = np.linspace(-3.0, 3.0, 200)[:, np.newaxis]
    y = np.sin(2 * x)
    net = nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=0)
    start = net.loss(x, y)
    history = net.fit(x, y, optimizer="adam", lr=5e-3, batch_size=16, epochs=3000)
    mse = net.loss(x, y)
    assert start > 0.3
    assert mse < 1e-3, f"MSE {mse} after {history.epochs} epochs"
    assert history.loss[-1] < 2e-3
    assert np.mean((net.predict(x) - y) ** 2) == pytest.approx(mse, rel=1e-10)


def test_digits_classifier_reaches_95_percent():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-8
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    net = nnfast.MLP([64, 64, 10], activation="relu", output_activation="softmax", seed=0)
    history = net.fit(
        X_train,
        y_train,
        loss="cross_entropy",
        optimizer="adam",
        lr=3e-3,
        batch_size=32,
        epochs=40,
        l2=1e-4,
        validation_data=(X_test, y_test),
    )
    accuracy = np.mean(net.predict(X_test).argmax(axis=1) == y_test)
    assert accuracy >= 0.95, f"test accuracy {accuracy}"
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.loss[-1] < 0.1


# ------------------------------------------------------------------------------------------
# fit features
# ------------------------------------------------------------------------------------------


def regression_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    y = np.sin(X[:, :1]) * X[:, 1:]
    return X, y


def test_history_has_one_loss_per_epoch_and_decreases():
    X, y = regression_data()
    net = nnfast.MLP([2, 10, 1], seed=0)
    history = net.fit(X, y, epochs=17, lr=0.01)
    assert isinstance(history, nnfast.History)
    assert len(history.loss) == history.epochs == 17
    assert history.val_loss == []
    assert history.stop_reason == "completed"
    assert all(isinstance(v, float) for v in history.loss)
    assert history.loss[-1] < history.loss[0]
    assert "epochs=17" in repr(history)


def test_validation_loss_equals_loss_on_validation_data():
    X, y = regression_data(80, seed=1)
    X_val, y_val = regression_data(25, seed=2)
    net = nnfast.MLP([2, 8, 1], seed=1)
    history = net.fit(
        X,
        y,
        epochs=6,
        l2=0.05,
        validation_data=(X_val, y_val),
        sample_weight=np.linspace(0.5, 1.5, 80),
    )
    assert len(history.val_loss) == 6
    assert history.val_loss[-1] == pytest.approx(net.loss(X_val, y_val, l2=0.05), rel=1e-12)
    # After each epoch: compare with stopping training earlier.
    for epochs in (1, 3):
        early = nnfast.MLP([2, 8, 1], seed=1)
        h = early.fit(
            X,
            y,
            epochs=epochs,
            l2=0.05,
            validation_data=[X_val, y_val],
            sample_weight=np.linspace(0.5, 1.5, 80),
        )
        assert h.val_loss == history.val_loss[:epochs]
        assert h.val_loss[-1] == pytest.approx(early.loss(X_val, y_val, l2=0.05), rel=1e-12)


def test_validation_loss_for_labels():
    X, y = make_data("cross_entropy", 40, 3, 4, seed=0)
    net = nnfast.MLP([3, 6, 4], output_activation="softmax", seed=0)
    history = net.fit(
        X[:30], y[:30], loss="cross_entropy", epochs=3, validation_data=(X[30:], y[30:])
    )
    assert history.val_loss[-1] == pytest.approx(
        net.loss(X[30:], y[30:], loss="cross_entropy"), rel=1e-12
    )


def test_callback_receives_epoch_and_loss_and_can_stop():
    X, y = regression_data()
    calls = []

    def record(epoch, loss):
        calls.append((epoch, loss))
        return None  # anything but False continues

    net = nnfast.MLP([2, 5, 1], seed=0)
    history = net.fit(X, y, epochs=4, callback=record)
    assert [e for e, _ in calls] == [1, 2, 3, 4]
    assert [v for _, v in calls] == history.loss

    def stop_at_three(epoch, loss):
        return epoch < 3

    stopped = nnfast.MLP([2, 5, 1], seed=0)
    history = stopped.fit(X, y, epochs=10, callback=stop_at_three)
    assert history.stop_reason == "callback"
    assert history.epochs == 3
    three = nnfast.MLP([2, 5, 1], seed=0)
    three.fit(X, y, epochs=3)
    assert bits(stopped.params) == bits(three.params)


def test_callback_exception_propagates_and_network_stays_usable():
    X, y = regression_data()
    net = nnfast.MLP([2, 5, 1], seed=0)

    def fail(epoch, loss):
        if epoch == 2:
            raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        net.fit(X, y, epochs=5, callback=fail)
    assert np.isfinite(net.params).all()
    history = net.fit(X, y, epochs=2)  # not locked by the interrupted run
    assert history.epochs == 2

    def interrupt(epoch, loss):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, y, epochs=5, callback=interrupt)
    assert info.value.history.stop_reason == "interrupted"
    assert info.value.history.epochs == 3
    assert net.fit(X, y, epochs=1).epochs == 1


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = regression_data()
    net = nnfast.MLP([2, 5, 1], seed=0)
    net.fit(X, y, epochs=3, verbose=False)
    assert capsys.readouterr().out == ""
    history = net.fit(X, y, epochs=3, verbose=True, validation_data=(X, y))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, start=1):
        assert f"{i}/3" in line and "loss" in line and "val_loss" in line
    assert f"{history.loss[-1]:.6g}" in lines[-1]


def test_zero_epochs_changes_nothing():
    X, y = regression_data()
    net = nnfast.MLP([2, 5, 1], seed=0)
    before = net.params.copy()
    state = copy.deepcopy(net._rng.bit_generator.state)
    history = net.fit(X, y, epochs=0)
    assert history.loss == [] and history.stop_reason == "completed"
    assert bits(net.params) == bits(before)
    assert net._rng.bit_generator.state == state


def test_batch_size_none_is_full_batch():
    X, y = regression_data(50)
    a = nnfast.MLP([2, 5, 1], seed=0)
    b = a.copy()
    c = a.copy()
    a.fit(X, y, optimizer="sgd", lr=0.1, epochs=4, batch_size=None)
    b.fit(X, y, optimizer="sgd", lr=0.1, epochs=4, batch_size=50)
    c.fit(X, y, optimizer="sgd", lr=0.1, epochs=4, batch_size=1000)
    assert bits(a.params) == bits(b.params) == bits(c.params)
    # Full-batch gradient descent without momentum is one loss_and_grad step per epoch.
    d = a.copy()
    d.params = nnfast.MLP([2, 5, 1], seed=0).params
    e = d.copy()
    d.fit(X, y, optimizer="sgd", lr=0.1, momentum=0.0, epochs=1, batch_size=None)
    _, grad = e.loss_and_grad(X, y)
    np.testing.assert_allclose(d.params, e.params - 0.1 * grad, rtol=1e-13, atol=1e-15)


def test_huge_batch_size_and_epochs():
    """batch_size beyond any n is the whole set; epochs up to sys.maxsize (stopped by a
    callback) run; neither overflows the compiled driver's C integers."""
    X, y = regression_data(30)
    a = nnfast.MLP([2, 5, 1], seed=0)
    b = a.copy()
    a.fit(X, y, epochs=3, batch_size=None)
    b.fit(X, y, epochs=3, batch_size=10**20)
    assert bits(a.params) == bits(b.params)
    for epochs in (sys.maxsize, sys.maxsize - 1, 2**62):
        history = a.copy().fit(X, y, epochs=epochs, callback=lambda epoch, loss: epoch < 3)
        assert history.epochs == 3 and history.stop_reason == "callback"


def test_same_seed_gives_bit_identical_training():
    X, y = regression_data()
    nets = [nnfast.MLP([2, 12, 12, 1], activation="relu", seed=99) for _ in range(2)]
    for net in nets:
        net.fit(X, y, epochs=10, batch_size=8, shuffle=True, l2=1e-3)
    assert bits(nets[0].params) == bits(nets[1].params)
    other = nnfast.MLP([2, 12, 12, 1], activation="relu", seed=98)
    other.params = nnfast.MLP([2, 12, 12, 1], activation="relu", seed=99).params
    other.fit(X, y, epochs=10, batch_size=8, shuffle=True, l2=1e-3)
    assert not np.array_equal(other.params, nets[0].params)  # seed drives the shuffling too


def test_divergence_raises_and_keeps_last_finite_epoch():
    X, y = regression_data()
    kwargs = dict(optimizer="sgd", lr=1e3, batch_size=None, shuffle=False, momentum=0.9)
    net = nnfast.MLP([2, 5, 1], seed=0)
    with pytest.raises(FloatingPointError, match="lr") as info:
        net.fit(X, y, epochs=200, **kwargs)
    history = info.value.history
    assert history.stop_reason == "diverged"
    assert 1 <= history.epochs < 200
    assert np.isfinite(history.loss).all()
    assert np.isfinite(net.params).all()
    # The same run stopped after the last finite epoch ends with the same weights.
    again = nnfast.MLP([2, 5, 1], seed=0)
    h = again.fit(X, y, epochs=history.epochs, **kwargs)
    assert h.loss == history.loss
    assert bits(again.params) == bits(net.params)


@pytest.mark.parametrize("lr", [1e307, 1e300])
def test_divergence_never_leaves_non_finite_weights(lr):
    """A finite epoch loss whose last update overflows the weights must not count as finite."""
    X, y = regression_data()
    net = nnfast.MLP([2, 5, 1], seed=0)
    with pytest.raises(FloatingPointError) as info:
        net.fit(X, 100 * y, optimizer="sgd", lr=lr, batch_size=None, epochs=5, shuffle=False)
    assert info.value.history.stop_reason == "diverged"
    assert np.isfinite(net.params).all()
    again = nnfast.MLP([2, 5, 1], seed=0)
    again.fit(
        X,
        100 * y,
        optimizer="sgd",
        lr=lr,
        batch_size=None,
        epochs=info.value.history.epochs,
        shuffle=False,
    )
    assert bits(again.params) == bits(net.params)


def test_fit_does_not_modify_its_inputs():
    X, y = make_data("mse", 40, 3, 2, seed=0)
    w = np.linspace(0.1, 2.0, 40)
    X_val, y_val = make_data("mse", 10, 3, 2, seed=1)
    copies = [a.copy() for a in (X, y, w, X_val, y_val)]
    net = nnfast.MLP([3, 6, 2], seed=0)
    net.fit(X, y, sample_weight=w, validation_data=(X_val, y_val), epochs=3, batch_size=7, l2=0.1)
    net.loss_and_grad(X, y, sample_weight=w, l2=0.1)
    net.predict(X)
    for before, after in zip(copies, (X, y, w, X_val, y_val)):
        assert bits(before) == bits(after)


def test_fit_returns_float_losses_for_int_targets():
    X, y = regression_data()
    net = nnfast.MLP([2, 4, 1], seed=0)
    history = net.fit(X, (y > 0).astype(int), epochs=2)
    assert len(history.loss) == 2 and np.isfinite(history.loss).all()


# ------------------------------------------------------------------------------------------
# Direct mutation of the parameters
# ------------------------------------------------------------------------------------------


def test_assigning_params_copies_into_the_buffer():
    net = nnfast.MLP([2, 3, 1], seed=0)
    buffer = net.params
    new = np.arange(net.n_params, dtype=float)
    net.params = new
    assert net.params is buffer  # same buffer, the views stay attached
    np.testing.assert_array_equal(buffer, new)
    new[0] = 100.0
    assert net.params[0] == 0.0  # a copy, not the caller's array
    assert net.weights[0][0, 1] == 1.0
    net.params = list(range(net.n_params))  # any sequence of numbers
    assert net.params[3] == 3.0
    with pytest.raises(ValueError, match="params"):
        net.params = np.zeros(net.n_params + 1)
    with pytest.raises(ValueError, match="params"):
        net.params = np.zeros((1, net.n_params))
    with pytest.raises(ValueError, match="params"):
        net.params = np.full(net.n_params, np.nan)
    with pytest.raises(TypeError, match="params"):
        net.params = ["a"] * net.n_params
    np.testing.assert_array_equal(net.params, np.arange(net.n_params))


def test_assigning_a_layer_copies_into_the_buffer():
    net = nnfast.MLP([2, 3, 1], seed=0)
    buffer = net.params
    W = np.ones((2, 3))
    net.weights[0] = W
    net.biases[1] = [5.0]
    assert net.params is buffer
    np.testing.assert_array_equal(net.params[:6], 1.0)
    assert net.params[-1] == 5.0
    W[0, 0] = 9.0
    assert net.weights[0][0, 0] == 1.0
    assert np.shares_memory(net.weights[0], net.params)
    net.weights[-1] = np.full((3, 1), 2.0)
    np.testing.assert_array_equal(net.params[9:12], 2.0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"weights\[0\]"):
        net.weights[0] = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        net.biases[0] = np.ones(4)
    with pytest.raises(ValueError, match="weights"):
        net.weights[0] = np.full((2, 3), np.inf)
    for mutate in (
        lambda: net.weights.append(W),
        lambda: net.biases.pop(),
        lambda: net.weights.insert(0, W),
        lambda: net.weights.clear(),
        lambda: net.weights.extend([W]),
        lambda: net.weights.__delitem__(0),
    ):
        with pytest.raises(TypeError, match="weights|biases"):
            mutate()
    with pytest.raises(TypeError):
        net.weights[0:1] = [W]
    assert len(net.weights) == len(net.biases) == 2
    assert bits(net.params) == bits(before)


# ------------------------------------------------------------------------------------------
# Pickle
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pickle_round_trip(dtype):
    net = nnfast.MLP(
        [3, 6, 5, 2],
        activation=["maxout", "elu"],
        output_activation="softmax",
        dtype=dtype,
        seed=7,
        maxout_pieces=3,
        elu_alpha=0.5,
    )
    X, y = make_data("cross_entropy", 20, 3, 2, seed=0)
    net.fit(X, y, loss="cross_entropy", epochs=2)
    clone = pickle.loads(pickle.dumps(net))
    assert repr(clone) == repr(net)
    assert clone.dtype == net.dtype and clone.maxout_pieces == 3 and clone.elu_alpha == 0.5
    assert bits(clone.params) == bits(net.params)
    assert bits(clone.predict(X)) == bits(net.predict(X))
    assert np.shares_memory(clone.weights[0], clone.params)
    assert not np.shares_memory(clone.params, net.params)
    # The random state travels too: both continue training identically.
    net.fit(X, y, loss="cross_entropy", epochs=2)
    clone.fit(X, y, loss="cross_entropy", epochs=2)
    assert bits(clone.params) == bits(net.params)
    deep = copy.deepcopy(net)
    assert bits(deep.predict(X)) == bits(net.predict(X))
