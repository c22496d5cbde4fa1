"""nnfast.reference's training against independent mathematics: its SGD and Adam rules
against scalar loops, and its fit (loss decrease, one full-batch epoch as one gradient step,
batches following the permutation and the weights, reproducibility from the seed, the
callback and verbose output, divergence, unknown optimizers)."""

import math

import numpy as np
import pytest
from conftest import make_net

from nnfast import reference as ref

# Optimizer rules against scalar loops
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_update_matches_scalar_rule(nesterov):
    rng = np.random.default_rng(0)
    params, grads = rng.normal(size=5), rng.normal(size=(3, 5))
    p, v = params.copy(), np.zeros(5)
    for g in grads:
        ref.sgd_update(p, v, g, 0.1, 0.9, nesterov)
    for i in range(5):
        x, vel = params[i], 0.0
        for g in grads[:, i]:
            vel = 0.9 * vel - 0.1 * g
            x += (0.9 * vel - 0.1 * g) if nesterov else vel
        assert p[i] == pytest.approx(x, rel=1e-14)


def test_adam_update_matches_scalar_rule():
    rng = np.random.default_rng(1)
    params, grads = rng.normal(size=4), rng.normal(size=(3, 4))
    p, m, v = params.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        ref.adam_update(p, m, v, g, t, 0.01, 0.9, 0.999, 1e-8)
    for i in range(4):
        x, mi, vi = params[i], 0.0, 0.0
        for t, g in enumerate(grads[:, i], start=1):
            mi = 0.9 * mi + 0.1 * g
            vi = 0.999 * vi + 0.001 * g * g
            x -= 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * mi / (math.sqrt(vi) + 1e-8)
        assert p[i] == pytest.approx(x, rel=1e-12)
    p32, m32, v32 = (np.ones(4, np.float32) for _ in range(3))
    ref.adam_update(
        p32,
        m32,
        v32,
        np.ones(4, np.float32),
        np.int64(2),
        np.float64(0.1),
        np.float64(0.9),
        np.float64(0.999),
        np.float64(1e-8),
    )
    ref.sgd_update(p32, m32, np.ones(4, np.float32), np.float64(0.1), np.float64(0.9), True)
    assert p32.dtype == m32.dtype == v32.dtype == np.float32


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


def regression_data(n=64):
    X = np.linspace(-1.0, 1.0, n)[:, None]
    return X, np.sin(3.0 * X)


def test_fit_sgd_decreases_the_loss():
    X, y = regression_data()
    net = ref.MLP([1, 10, 1], seed=0)
    before = net.loss(X, y)
    history = net.fit(X, y, optimizer="sgd", lr=0.05, batch_size=8, epochs=60)
    assert history.stop_reason == "completed" and history.epochs == 60
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert net.loss(X, y) < 0.2 * before


def test_one_full_batch_epoch_is_one_gradient_step():
    X, y = regression_data(20)
    for optimizer in ("sgd", "adam"):
        net = ref.MLP([1, 6, 1], activation="elu", seed=3)
        start = net.params.copy()
        loss0, grad = net.loss_and_grad(X, y, l2=0.01)
        history = net.fit(
            X,
            y,
            optimizer=optimizer,
            lr=0.1,
            momentum=0.0,
            batch_size=None,
            epochs=1,
            shuffle=False,
            l2=0.01,
        )
        if optimizer == "sgd":
            expected = start - 0.1 * grad
        else:  # t = 1: lr_t = lr sqrt(1 - b2) / (1 - b1), m = (1 - b1) g, v = (1 - b2) g²
            lr_t = 0.1 * math.sqrt(0.001) / 0.1
            expected = start - lr_t * (0.1 * grad) / (np.sqrt(0.001 * grad**2) + 1e-8)
        np.testing.assert_allclose(net.params, expected, rtol=1e-12, atol=1e-15)
        assert history.loss == [pytest.approx(loss0, rel=1e-14)]


def test_fit_batches_follow_the_permutation_and_weights():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 1))
    w = rng.uniform(0.5, 2.0, size=7)
    net = make_net([2, 4, 1], "tanh", "identity", seed=1)
    manual = ref.MLP([2, 4, 1], params=net.params)

    history = net.fit(
        X,
        y,
        optimizer="sgd",
        lr=0.1,
        momentum=0.5,
        batch_size=3,
        epochs=1,
        sample_weight=w,
        rng=np.random.default_rng(42),
    )

    order = np.random.default_rng(42).permutation(7)
    velocity, total, wsum = np.zeros(manual.n_params), 0.0, 0.0
    for start in range(0, 7, 3):
        idx = order[start : start + 3]
        value, grad = manual.loss_and_grad(X[idx], y[idx], sample_weight=w[idx])
        ref.sgd_update(manual.params, velocity, grad, 0.1, 0.5, False)
        total += value * w[idx].sum()
        wsum += w[idx].sum()
    np.testing.assert_allclose(net.params, manual.params, rtol=1e-14)
    assert history.loss == [pytest.approx(total / wsum, rel=1e-12)]


def test_fit_is_reproducible_from_the_seed():
    X, y = regression_data(30)
    a, b = ref.MLP([1, 5, 1], seed=9), ref.MLP([1, 5, 1], seed=9)
    ha = a.fit(X, y, epochs=5, batch_size=4)
    hb = b.fit(X, y, epochs=5, batch_size=4)
    np.testing.assert_array_equal(a.params, b.params)
    assert ha.loss == hb.loss


def test_fit_callback_validation_and_verbose(capsys):
    X, y = regression_data(30)
    net = ref.MLP([1, 5, 1], seed=1)
    seen = []

    def callback(epoch, loss):
        seen.append((epoch, loss))
        return epoch < 3

    history = net.fit(
        X, y, epochs=10, validation_data=(X[:5], y[:5]), callback=callback, verbose=True
    )
    assert history.stop_reason == "callback" and history.epochs == 3
    assert [e for e, _ in seen] == [1, 2, 3] and [l for _, l in seen] == history.loss
    assert len(history.val_loss) == 3
    assert history.val_loss[-1] == pytest.approx(net.loss(X[:5], y[:5]))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/10  loss ") and "val_loss" in lines[0]


def test_fit_divergence_keeps_last_finite_weights():
    X, y = regression_data(16)
    net = ref.MLP([1, 8, 1], activation="relu", seed=0)
    snapshots = [net.params.copy()]
    callback = lambda epoch, loss: snapshots.append(net.params.copy())
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="epoch") as info:
        net.fit(X, y * 100, optimizer="sgd", lr=10.0, batch_size=4, epochs=200, callback=callback)
    history = info.value.history
    assert history.stop_reason == "diverged"
    assert len(snapshots) == history.epochs + 1
    assert all(math.isfinite(v) for v in history.loss)
    np.testing.assert_array_equal(net.params, snapshots[-1])
    assert np.isfinite(net.params).all()


def test_fit_rejects_unknown_optimizer():
    X, y = regression_data(4)
    with pytest.raises(ValueError, match="optimizer"):
        ref.MLP([1, 2, 1]).fit(X, y, optimizer="rmsprop")
