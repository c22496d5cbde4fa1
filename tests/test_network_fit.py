"""Tests of nnfast.MLP's fit features one by one (history, validation loss, callbacks,
verbose, zero epochs, batch sizes, seeds, divergence, inputs left unmodified), direct
mutation of the parameters, and pickling."""

import copy
import pickle
import sys

import numpy as np
import pytest
from conftest import bits, make_data

import nnfast

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
