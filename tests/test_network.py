"""Tests of nnfast.MLP: structure, parameter views, fit against the NumPy oracle, quality.

The compiled network is held against ``nnfast.reference.MLP`` (plain NumPy, same fit
semantics) started from the same weights: predictions, losses, gradients and whole training
runs (SGD with and without Nesterov momentum, Adam; several batch sizes, l2, sample weights,
shuffling with the same generator state) must agree to rounding. Then two small problems show
that training actually learns (a 1-20-20-1 tanh curve fit and the digits data set), and the
features of ``fit`` (history, validation, callbacks, verbose, divergence), direct mutation of
the parameters and pickling are in test_network_fit.py.
"""

import copy

import numpy as np
import pytest
from conftest import bits, make_data

import nnfast
from nnfast import reference as ref
from nnfast._spec import build_spec

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
