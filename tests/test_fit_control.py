"""MLP.fit's training control: a callable lr, early stopping with patience, a fit that
continues the previous one's optimizer state, the progress bar, and Ctrl-C."""

import os
import pickle
import signal
import sys
import threading

import numpy as np
import pytest

import nnfast

SIZES = [2, 8, 8, 1]


def bits(array):
    return np.ascontiguousarray(array).tobytes()


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, np.sin(2 * X[:, :1]) * X[:, 1:]


OPTIMIZER_SETTINGS = {
    "sgd": dict(optimizer="sgd", lr=0.05, momentum=0.9),
    "sgd-nesterov": dict(optimizer="sgd", lr=0.05, momentum=0.8, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.01),
    "rprop": dict(optimizer="rprop", lr=0.01),
}


# ------------------------------------------------------------------------------------------
# A later fit continues the optimizer's state
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("setting", list(OPTIMIZER_SETTINGS))
def test_fit_4_then_6_equals_fit_10_bit_for_bit(setting, dtype, shuffle):
    X, y = data()
    kwargs = dict(OPTIMIZER_SETTINGS[setting], batch_size=8, shuffle=shuffle)
    whole = nnfast.MLP(SIZES, dtype=dtype, seed=3)
    history = whole.fit(X, y, epochs=10, **kwargs)
    split = nnfast.MLP(SIZES, dtype=dtype, seed=3)
    first = split.fit(X, y, epochs=4, **kwargs)
    second = split.fit(X, y, epochs=6, **kwargs)
    assert first.loss + second.loss == history.loss
    assert bits(split.params) == bits(whole.params)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("setting", ["sgd", "adam"])
def test_continued_fit_takes_the_new_settings_and_continues_the_schedule(setting, shuffle):
    """A continued fit keeps the buffers and counters and takes this call's settings: two
    fits with lr a then b are one fit whose lr(epoch) is a for 4 epochs, then b."""
    X, y = data()
    kwargs = dict(OPTIMIZER_SETTINGS[setting], batch_size=8, shuffle=shuffle)
    lr = kwargs.pop("lr")
    split = nnfast.MLP(SIZES, seed=5)
    split.fit(X, y, epochs=4, lr=lr, **kwargs)
    split.fit(X, y, epochs=6, lr=lr / 3, **kwargs)
    scheduled = nnfast.MLP(SIZES, seed=5)
    scheduled.fit(X, y, epochs=10, lr=lambda epoch: lr if epoch < 4 else lr / 3, **kwargs)
    assert bits(split.params) == bits(scheduled.params)


@pytest.mark.parametrize("setting", list(OPTIMIZER_SETTINGS))
def test_restart_starts_a_fresh_optimizer_from_the_current_weights(setting):
    X, y = data()
    kwargs = dict(OPTIMIZER_SETTINGS[setting], batch_size=8, shuffle=False)
    net = nnfast.MLP(SIZES, seed=2)
    net.fit(X, y, epochs=4, **kwargs)
    fresh = nnfast.MLP(SIZES, seed=99)
    fresh.params = net.params
    net.fit(X, y, epochs=6, restart=True, **kwargs)
    fresh.fit(X, y, epochs=6, **kwargs)
    assert bits(net.params) == bits(fresh.params)
    continued = nnfast.MLP(SIZES, seed=2)
    continued.fit(X, y, epochs=10, **kwargs)
    assert bits(continued.params) != bits(net.params)  # restarting did change something


def test_restart_keeps_the_shuffling_stream_of_the_network():
    """The row order comes from the network's random state, which restart does not reset:
    only the optimizer starts again."""
    X, y = data()
    a = nnfast.MLP(SIZES, seed=4)
    b = nnfast.MLP(SIZES, seed=4)
    a.fit(X, y, epochs=3, optimizer="sgd", lr=0.05, momentum=0.0, batch_size=8)
    b.fit(X, y, epochs=3, optimizer="sgd", lr=0.05, momentum=0.0, batch_size=8)
    # Without momentum SGD has no state that matters: restart or not, the same run.
    a.fit(X, y, epochs=3, optimizer="sgd", lr=0.05, momentum=0.0, batch_size=8, restart=True)
    b.fit(X, y, epochs=3, optimizer="sgd", lr=0.05, momentum=0.0, batch_size=8)
    assert bits(a.params) == bits(b.params)


def test_another_optimizer_starts_fresh_and_replaces_the_state():
    X, y = data()
    net = nnfast.MLP(SIZES, seed=2)
    net.fit(X, y, epochs=4, optimizer="adam", lr=0.01, shuffle=False)
    fresh = nnfast.MLP(SIZES, seed=0)
    fresh.params = net.params
    net.fit(X, y, epochs=3, optimizer="sgd", lr=0.05, shuffle=False)
    fresh.fit(X, y, epochs=3, optimizer="sgd", lr=0.05, shuffle=False)
    assert bits(net.params) == bits(fresh.params)
    # Back to adam: its old moments are gone, it starts again too.
    again = nnfast.MLP(SIZES, seed=0)
    again.params = net.params
    net.fit(X, y, epochs=3, optimizer="adam", lr=0.01, shuffle=False)
    again.fit(X, y, epochs=3, optimizer="adam", lr=0.01, shuffle=False)
    assert bits(net.params) == bits(again.params)


def test_lbfgs_in_between_starts_the_next_optimizer_fresh():
    X, y = data()
    net = nnfast.MLP(SIZES, seed=2)
    net.fit(X, y, epochs=4, optimizer="adam", lr=0.01, shuffle=False)
    net.fit(X, y, epochs=3, optimizer="lbfgs")
    fresh = nnfast.MLP(SIZES, seed=0)
    fresh.params = net.params
    net.fit(X, y, epochs=3, optimizer="adam", lr=0.01, shuffle=False)
    fresh.fit(X, y, epochs=3, optimizer="adam", lr=0.01, shuffle=False)
    assert bits(net.params) == bits(fresh.params)


@pytest.mark.parametrize("how", ["copy", "pickle"])
def test_copies_and_pickles_carry_the_optimizer_state(how):
    X, y = data()
    net = nnfast.MLP(SIZES, seed=6)
    net.fit(X, y, epochs=4, batch_size=8)
    clone = net.copy() if how == "copy" else pickle.loads(pickle.dumps(net))
    net.fit(X, y, epochs=6, batch_size=8)
    clone.fit(X, y, epochs=6, batch_size=8)
    assert bits(clone.params) == bits(net.params)
    whole = nnfast.MLP(SIZES, seed=6)
    whole.fit(X, y, epochs=10, batch_size=8)
    assert bits(whole.params) == bits(net.params)


def test_after_divergence_the_next_fit_starts_a_fresh_optimizer():
    """A diverged epoch leaves NaN or huge moments behind: they are not continued."""
    X, y = data()
    net = nnfast.MLP(SIZES, seed=1)
    with pytest.raises(FloatingPointError) as info:
        net.fit(X, y, optimizer="sgd", lr=1e300, batch_size=8, epochs=50, shuffle=False)
    assert info.value.history.epochs == 0  # the weights are the initial ones
    fresh = nnfast.MLP(SIZES, seed=0)
    fresh.params = net.params
    net.fit(X, y, optimizer="sgd", lr=1e-3, epochs=3, shuffle=False)
    fresh.fit(X, y, optimizer="sgd", lr=1e-3, epochs=3, shuffle=False)
    assert bits(net.params) == bits(fresh.params)


def test_restart_must_be_a_bool():
    X, y = data()
    with pytest.raises(TypeError, match="restart: expected True or False, got int"):
        nnfast.MLP(SIZES, seed=0).fit(X, y, epochs=1, restart=1)


# ------------------------------------------------------------------------------------------
# lr as a callable of the epoch
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_constant_callable_lr_trains_exactly_like_the_float(optimizer, dtype, shuffle):
    X, y = data()
    kwargs = dict(optimizer=optimizer, batch_size=8, shuffle=shuffle, epochs=7)
    a = nnfast.MLP(SIZES, dtype=dtype, seed=1)
    b = nnfast.MLP(SIZES, dtype=dtype, seed=1)
    ha = a.fit(X, y, lr=0.02, **kwargs)
    hb = b.fit(X, y, lr=lambda epoch: 0.02, **kwargs)
    assert ha.loss == hb.loss
    assert bits(a.params) == bits(b.params)


def test_callable_lr_is_the_step_of_each_epoch():
    """Full-batch SGD without momentum: epoch e is one step params -= lr(e) · grad."""
    X, y = data()
    net = nnfast.MLP(SIZES, seed=0)
    expected = net.copy()
    schedule = [0.3, 0.1, 0.03, 0.01]
    net.fit(
        X, y, optimizer="sgd", momentum=0.0, batch_size=None, epochs=4,
        lr=lambda epoch: schedule[epoch], shuffle=False,
    )  # fmt: skip
    for step in schedule:
        _, grad = expected.loss_and_grad(X, y)
        expected.params = expected.params - step * grad
    np.testing.assert_allclose(net.params, expected.params, rtol=1e-13, atol=1e-15)


def test_callable_lr_is_called_once_per_epoch_and_continues_across_fits():
    X, y = data()
    calls = []

    def lr(epoch):
        calls.append(epoch)
        return 1e-3

    net = nnfast.MLP(SIZES, seed=0)
    net.fit(X, y, lr=lr, epochs=4, shuffle=False)
    assert calls == [0, 1, 2, 3]
    net.fit(X, y, lr=lr, epochs=3)
    assert calls == [0, 1, 2, 3, 4, 5, 6]
    calls.clear()
    net.fit(X, y, lr=lr, epochs=2, restart=True)
    assert calls == [0, 1]
    calls.clear()
    net.fit(X, y, lr=lr, epochs=10, callback=lambda epoch, loss: epoch < 3)
    assert calls == [2, 3, 4]  # no call for an epoch that does not run
    calls.clear()
    net.fit(X, y, lr=lr, epochs=0)
    assert calls == []


@pytest.mark.parametrize(
    "value, exc, fragments",
    [
        (-0.1, ValueError, ["lr(0)", "(0, inf]", "-0.1"]),
        (0.0, ValueError, ["lr(0)", "(0, inf]"]),
        (float("nan"), ValueError, ["lr(0)", "nan"]),
        ("0.1", TypeError, ["lr(0)", "real number", "str"]),
        (None, TypeError, ["lr(0)", "real number", "None"]),
    ],
)
def test_a_bad_value_from_the_lr_callable_is_refused_before_training(value, exc, fragments):
    X, y = data()
    net = nnfast.MLP(SIZES, seed=0)
    before = bits(net.params)
    with pytest.raises(exc) as info:
        net.fit(X, y, lr=lambda epoch: value, epochs=3)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert bits(net.params) == before


def test_a_bad_value_later_in_the_schedule_stops_with_the_epochs_done():
    X, y = data()
    net = nnfast.MLP(SIZES, seed=0)
    with pytest.raises(ValueError, match=r"lr\(2\)"):
        net.fit(X, y, lr=lambda epoch: 1e-3 if epoch < 2 else -1.0, epochs=5)
    rerun = nnfast.MLP(SIZES, seed=0)
    rerun.fit(X, y, lr=1e-3, epochs=2)
    assert bits(rerun.params) == bits(net.params)


@pytest.mark.parametrize("optimizer", ["rprop", "lbfgs", "lbfgs_scipy"])
def test_callable_lr_needs_sgd_or_adam(optimizer):
    X, y = data()
    with pytest.raises(ValueError, match="lr: a callable.*sgd.*adam.*" + optimizer):
        nnfast.MLP(SIZES, seed=0).fit(X, y, optimizer=optimizer, lr=lambda e: 0.1, epochs=2)


def test_lr_neither_number_nor_callable_names_both():
    X, y = data()
    with pytest.raises(TypeError, match="lr: expected a real number or a callable"):
        nnfast.MLP(SIZES, seed=0).fit(X, y, lr=[0.1], epochs=1)


# ------------------------------------------------------------------------------------------
# Early stopping: patience with validation_data
# ------------------------------------------------------------------------------------------


def _overshooting_validation(X, y):
    """Validation targets of half the training targets: the validation loss falls while
    the network grows towards y / 2, then rises as it goes on towards y."""
    return X, 0.5 * y


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_patience_stops_and_restores_the_best_weights(dtype, shuffle):
    X, y = data()
    Xv, yv = _overshooting_validation(X, y)
    kwargs = dict(lr=0.01, batch_size=8, shuffle=shuffle, validation_data=(Xv, yv))
    net = nnfast.MLP(SIZES, dtype=dtype, seed=0)
    history = net.fit(X, y, epochs=2000, patience=5, **kwargs)
    assert history.stop_reason == "converged"
    val = history.val_loss
    best = history.best_epoch
    assert 1 < best < history.epochs < 2000
    assert history.epochs == best + 5
    assert val[best - 1] == min(val)
    assert all(value >= val[best - 1] for value in val[best:])
    assert net.loss(Xv, yv) == val[best - 1]
    # The kept weights are those of a run of best_epoch epochs.
    rerun = nnfast.MLP(SIZES, dtype=dtype, seed=0)
    rerun.fit(X, y, epochs=best, **kwargs)
    assert bits(rerun.params) == bits(net.params)


def test_patience_that_never_fires_still_restores_the_best_weights():
    X, y = data()
    Xv, yv = _overshooting_validation(X, y)
    net = nnfast.MLP(SIZES, seed=0)
    history = net.fit(X, y, lr=0.01, batch_size=8, epochs=300, patience=1000,
                      validation_data=(Xv, yv))  # fmt: skip
    assert history.stop_reason == "completed" and history.epochs == 300
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1 < 300
    assert net.loss(Xv, yv) == min(history.val_loss)


def test_patience_counts_epochs_without_a_strict_improvement():
    """patience=1 stops at the first epoch whose validation loss is not below the best."""
    X, y = data()
    Xv, yv = _overshooting_validation(X, y)
    net = nnfast.MLP(SIZES, seed=0)
    history = net.fit(X, y, lr=0.01, batch_size=8, epochs=2000, patience=1,
                      validation_data=(Xv, yv))  # fmt: skip
    val = history.val_loss
    assert all(b < a for a, b in zip(val[:-2], val[1:-1]))
    assert val[-1] >= val[-2] and history.best_epoch == history.epochs - 1


def test_without_patience_there_is_no_best_epoch():
    X, y = data()
    history = nnfast.MLP(SIZES, seed=0).fit(X, y, epochs=3, validation_data=(X, y))
    assert history.best_epoch is None


def test_patience_with_a_callback_stop_restores_the_best_weights_so_far():
    X, y = data()
    Xv, yv = _overshooting_validation(X, y)
    net = nnfast.MLP(SIZES, seed=0)
    history = net.fit(X, y, lr=0.01, batch_size=8, epochs=2000, patience=10**6,
                      validation_data=(Xv, yv), callback=lambda e, loss: e < 400)  # fmt: skip
    assert history.stop_reason == "callback" and history.epochs == 400
    assert net.loss(Xv, yv) == min(history.val_loss)


@pytest.mark.parametrize(
    "kwargs, exc, fragments",
    [
        (dict(patience=3), ValueError, ["patience", "validation_data"]),
        (dict(patience=0, validation_data=True), ValueError, ["patience", ">= 1", "0"]),
        (dict(patience=2.5, validation_data=True), TypeError, ["patience", "integer", "2.5"]),
        (dict(patience=True, validation_data=True), TypeError, ["patience", "integer", "True"]),
        (dict(patience=3, validation_data=True, optimizer="lbfgs"), ValueError,
         ["patience", "lbfgs"]),
    ],
)  # fmt: skip
def test_bad_patience_is_refused(kwargs, exc, fragments):
    X, y = data()
    if kwargs.get("validation_data") is True:
        kwargs["validation_data"] = (X, y)
    with pytest.raises(exc) as info:
        nnfast.MLP(SIZES, seed=0).fit(X, y, epochs=2, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


# ------------------------------------------------------------------------------------------
# progress=True
# ------------------------------------------------------------------------------------------


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_progress_without_tqdm_writes_a_bar_with_loss_and_val_loss_to_stderr(no_tqdm, capsys):
    X, y = data()
    net = nnfast.MLP(SIZES, seed=0)
    history = net.fit(X, y, epochs=20, progress=True, validation_data=(X[:10], y[:10]))
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 10  # stderr is not a terminal here: every tenth of the epochs
    assert lines[-1].startswith("fit [" + "#" * 30 + "] epoch 20/20")
    assert f"loss {history.loss[-1]:.4g}" in lines[-1]
    assert f"val_loss {history.val_loss[-1]:.4g}" in lines[-1]


def test_progress_with_tqdm(capfd):
    pytest.importorskip("tqdm")
    import tqdm

    X, y = data()
    history = nnfast.MLP(SIZES, seed=0).fit(
        X, y, epochs=5, progress=True, validation_data=(X, y), shuffle=False
    )
    err = capfd.readouterr().err
    assert "fit" in err and "5/5" in err
    assert f"val_loss {history.val_loss[-1]:.4g}" in err
    assert not tqdm.tqdm._instances  # closed


def test_progress_does_not_change_the_result_and_is_off_by_default(no_tqdm, capsys):
    X, y = data()
    a = nnfast.MLP(SIZES, seed=0)
    b = nnfast.MLP(SIZES, seed=0)
    a.fit(X, y, epochs=6, shuffle=False)
    assert capsys.readouterr() == ("", "")
    b.fit(X, y, epochs=6, shuffle=False, progress=True)
    assert "epoch 6/6" in capsys.readouterr().err
    assert bits(a.params) == bits(b.params)


def test_progress_with_lbfgs_shows_the_iterations(no_tqdm, capsys):
    X, y = data()
    history = nnfast.MLP(SIZES, seed=0).fit(X, y, optimizer="lbfgs", epochs=10, progress=True)
    err = capsys.readouterr().err
    assert f"epoch {history.epochs}/10" in err and f"loss {history.loss[-1]:.4g}" in err


def test_progress_must_be_a_bool():
    X, y = data()
    with pytest.raises(TypeError, match="progress: expected True or False, got str"):
        nnfast.MLP(SIZES, seed=0).fit(X, y, epochs=1, progress="yes")


def test_progress_bar_is_closed_when_the_fit_is_interrupted(capfd):
    pytest.importorskip("tqdm")
    import tqdm

    X, y = data()

    def interrupt(epoch, loss):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nnfast.MLP(SIZES, seed=0).fit(X, y, epochs=10, progress=True, callback=interrupt)
    assert not tqdm.tqdm._instances


# ------------------------------------------------------------------------------------------
# Ctrl-C (in a notebook: the kernel's interrupt button is SIGINT)
# ------------------------------------------------------------------------------------------


def test_ctrl_c_raises_keyboard_interrupt_with_the_history_and_the_fit_can_go_on(no_tqdm):
    """Ctrl-C is KeyboardInterrupt carrying ``.history`` (stop_reason "interrupted"); the
    weights are those of its last complete epoch, and a later fit continues the schedule
    at the next epoch."""
    X, y = data(n=2000)
    Xv, yv = _overshooting_validation(X, y)
    epochs_asked = []

    def lr(epoch):
        epochs_asked.append(epoch)
        return 1e-3

    net = nnfast.MLP([2, 64, 64, 1], seed=1)
    kwargs = dict(lr=lr, batch_size=16, validation_data=(Xv, yv), patience=10**6, progress=True)
    # The signal comes from another thread, 0.2 s after the second epoch (a busy machine
    # cannot make it land before any epoch finished).
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))

    def start_timer(epoch, loss):
        if epoch == 2:
            timer.start()

    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, y, epochs=10**6, callback=start_timer, **kwargs)
    finally:
        timer.cancel()
    history = info.value.history
    assert history.stop_reason == "interrupted"
    assert 2 <= history.epochs == len(history.val_loss) < 10**6
    assert history.best_epoch is None  # the weights are the last complete epoch's
    assert net.loss(Xv, yv) == history.val_loss[-1]
    epochs_asked.clear()
    assert net.fit(X, y, epochs=1, lr=lr).epochs == 1
    assert epochs_asked == [history.epochs]


def test_fit_docstring_says_what_ctrl_c_does():
    doc = nnfast.MLP.fit.__doc__
    assert "KeyboardInterrupt" in doc and ".history" in doc and "restart" in doc


@pytest.mark.parametrize("setting", list(OPTIMIZER_SETTINGS))
def test_continued_fits_match_the_numpy_reference(setting):
    """nnfast.reference keeps its optimizer state across fits the same way (an independent
    implementation of the contract)."""
    from nnfast import reference

    X, y = data()
    kwargs = dict(OPTIMIZER_SETTINGS[setting], batch_size=8, shuffle=False)
    net = nnfast.MLP(SIZES, seed=8)
    oracle = reference.MLP(SIZES, seed=8, params=net.params)
    for epochs in (3, 4):
        history = net.fit(X, y, epochs=epochs, **kwargs)
        history_ref = oracle.fit(X, y, epochs=epochs, **kwargs)
        np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-9)
        np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)
    net.fit(X, y, epochs=3, restart=True, **kwargs)
    oracle.fit(X, y, epochs=3, restart=True, **kwargs)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-9, atol=1e-11)
