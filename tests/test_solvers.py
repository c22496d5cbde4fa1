"""The solver layer and the driver's structured arguments.

- ``nnfast._train.train`` re-checks every size it relies on against the layout and raises a
  ValueError naming the argument, with what it expected and what it got;
- the codes shared by Python and Cython come from their one definition in Cython;
- the stopping rule is scikit-learn's, and the optimizer states keep named buffers;
- the estimators reach the compiled modules only through nnfast._solvers.
"""

import os
import pathlib
import re
import signal
import threading
import types

import numpy as np
import pytest

import nnfast
from nnfast import _kernels, _losses, _network, _solvers, _spec, _train

SIZES = [3, 5, 2]
N = 7


def driver_call(dtype=np.float64, loss="mse", sizes=SIZES, optimizer="adam", **changes):
    """The arguments of one valid ``_train.train`` call, with `changes` applied: keys of
    the data (X, Y, w, order), of the optimizer (buffers, step) or train's own keywords."""
    spec = _spec.build_spec(sizes, "tanh", "identity")
    rng = np.random.default_rng(0)
    params = rng.normal(size=spec.n_params).astype(dtype)
    state = _solvers.make_optimizer(optimizer, params, 0.01)
    data = dict(
        X=rng.normal(size=(N, sizes[0])).astype(dtype),
        Y=rng.normal(size=(N, sizes[-1])).astype(dtype),
        w=np.ones(N, dtype),
        order=np.arange(N, dtype=np.intp),
    )
    holder = dict(hyperparameters=state.hyperparameters, buffers=state.buffers, step=state.step)
    run = dict(
        batch_size=4,
        epochs=2,
        backup=np.empty_like(params),
        epoch_end=None,
        losses=np.empty(2),
        rule=None,
        rng=None,
    )
    params = changes.pop("params", params)
    for key, value in changes.items():
        (data if key in data else holder if key in holder else run)[key] = value
    return (
        (
            _network.Layout(spec),
            params,
            _solvers.TrainingData(**data),
            _train.Objective(_spec.LOSS_CODES[loss]),
            types.SimpleNamespace(**holder),
        ),
        run,
    )


def test_a_valid_call_trains():
    args, run = driver_call()
    before = args[1].copy()
    assert _train.train(*args, **run) == 2
    assert not np.array_equal(args[1], before) and np.isfinite(run["losses"]).all()


def n_params(sizes=SIZES):
    return _spec.build_spec(sizes, "tanh", "identity").n_params


def adam_buffers(size, second=None):
    return {"first_moment": np.zeros(size), "second_moment": np.zeros(second or size)}


P = n_params()
MISMATCHES = [
    # (argument named in the message, what it expected, what it got, the change)
    ("params", f"{P} values", P - 1, dict(params=np.zeros(P - 1))),
    ("backup", f"{P} values", P + 1, dict(backup=np.zeros(P + 1))),
    ("data.X", "3 columns", 4, dict(X=np.zeros((N, 4)))),
    ("data.X", "at least one row", 0, dict(X=np.zeros((0, 3)))),
    ("data.Y", f"{N} rows", N - 1, dict(Y=np.zeros((N - 1, 2)))),
    ("data.Y", "2 columns", 3, dict(Y=np.zeros((N, 3)))),
    ("data.w", f"{N} sample weights", N + 1, dict(w=np.ones(N + 1))),
    ("data.order", f"{N} row indices", N - 1, dict(order=np.arange(N - 1, dtype=np.intp))),
    (
        "data.order",
        f"row indices in [0, {N})",
        N,
        dict(order=np.array([0, 1, 2, 3, 4, 5, N], dtype=np.intp)),
    ),
    (
        "data.order",
        f"row indices in [0, {N})",
        -1,
        dict(order=np.array([0, 1, 2, -1, 4, 5, 6], dtype=np.intp)),
    ),
    ("optimizer.first_moment", f"{P} values", P - 1, dict(buffers=adam_buffers(P - 1, P))),
    ("optimizer.second_moment", f"{P} values", 1, dict(buffers=adam_buffers(P, 1))),
    ("optimizer.buffers", "2 buffers", 1, dict(buffers={"first_moment": np.zeros(P)})),
    ("optimizer.step", "1 counter", 2, dict(step=np.zeros(2, dtype=np.longlong))),
    ("losses", "room for 2 values", 1, dict(losses=np.empty(1))),
    ("losses", "room for 2 values", None, dict(losses=None)),
    ("batch_size", "an integer >= 1", 0, dict(batch_size=0)),
    ("epochs", "an integer >= 0", -1, dict(epochs=-1)),
]


@pytest.mark.parametrize(
    "name, expected, got, change", MISMATCHES, ids=[f"{m[0]}-{m[2]}" for m in MISMATCHES]
)
def test_train_checks_every_size_against_the_layout(name, expected, got, change):
    args, run = driver_call(**change)
    before = args[1].copy()
    pattern = rf"^{re.escape(name)}: expected {re.escape(expected)}.*got {got}\b"
    with pytest.raises(ValueError, match=pattern):
        _train.train(*args, **run)
    np.testing.assert_array_equal(args[1], before)  # refused before any step


def test_train_checks_the_sgd_buffer_and_the_loss_targets():
    args, run = driver_call(optimizer="sgd", buffers={"velocity": np.zeros(P - 2)})
    with pytest.raises(ValueError, match=rf"^optimizer.velocity: expected {P} values.*got {P - 2}"):
        _train.train(*args, **run)
    # gaussian_nll reads k means and k log-variances: k = 1 target column for 2 outputs.
    args, run = driver_call(loss="gaussian_nll", Y=np.zeros((N, 2)))
    with pytest.raises(ValueError, match=r"^data.Y: expected 1 columns.*got 2"):
        _train.train(*args, **run)
    args, run = driver_call(loss="gaussian_nll", sizes=[3, 5, 3], Y=np.zeros((N, 1)))
    with pytest.raises(ValueError, match="gaussian_nll needs an even number of outputs"):
        _train.train(*args, **run)
    args, run = driver_call(order=None, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="^rng: shuffles data.order"):
        _train.train(*args, **run)


def test_train_refuses_buffers_of_another_dtype():
    args, run = driver_call(np.float32)
    run["backup"] = np.zeros(P)  # float64 beside float32 parameters
    with pytest.raises(ValueError, match="dtype mismatch"):
        _train.train(*args, **run)


def test_the_structures_refuse_unknown_codes():
    with pytest.raises(ValueError, match="^optimizer: expected an Optimizer code"):
        _train.Hyperparameters(3, lr=0.1)
    with pytest.raises(ValueError, match="^loss: expected a Loss code"):
        _train.Objective(len(_spec.LOSS_CODES))
    settings = _train.Hyperparameters(_train.Optimizer.OPT_ADAM, lr=0.1)
    settings.lr = 0.5
    assert (settings.optimizer, settings.lr, settings.beta2) == (1, 0.5, 0.999)
    with pytest.raises(AttributeError):
        settings.optimizer = 0  # fixed: the buffers were made for this optimizer


def test_shared_codes_come_from_the_cython_enums():
    assert {
        name[len("ACT_") :].lower(): int(code)
        for name, code in _kernels.Activation.__members__.items()
    } == _spec.ACTIVATION_CODES
    assert _spec.LOSS_CODES == {
        "mse": 0,
        "cross_entropy": 1,
        "binary_cross_entropy": 2,
        "poisson": 3,
        "gaussian_nll": 4,
    }
    assert tuple(_spec.LOSS_CODES) == _spec.LOSSES
    assert set(_spec.HIDDEN_ACTIVATIONS + _spec.OUTPUT_ACTIVATIONS) == set(_spec.ACTIVATION_CODES)
    assert _spec.LOG_VAR_RANGE is _losses.GAUSSIAN_NLL_LOG_VAR_RANGE
    assert [cls.code for cls in (_solvers.SGD, _solvers.Adam, _solvers.Rprop)] == list(
        _train.Optimizer
    )
    assert not hasattr(_spec, "OPTIMIZERS")


def sklearn_rule(losses, tol, patience, best=np.inf, count=0):
    """scikit-learn's _update_no_improvement_count on the training loss, transcribed."""
    fired = []
    for loss in losses:
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        fired.append(count > patience)
    return fired, best, count


def test_stopping_rule_is_scikit_learns():
    rng = np.random.default_rng(3)
    losses = list(np.cumsum(rng.normal(-0.01, 0.05, size=300)) + 5)
    for tol, patience in ((1e-4, 2), (0.05, 0), (0.0, 10), (1e-3, np.inf)):
        rule = _solvers.StoppingRule(tol, patience)
        fired = [rule.update(value) for value in losses]
        assert (fired, rule.best, rule.count) == sklearn_rule(losses, tol, patience)
        assert rule.fired == fired[-1]


def test_optimizer_states_name_their_buffers():
    params = np.zeros(4, np.float32)
    assert list(_solvers.SGD(params, 0.1).buffers) == ["velocity"]
    assert list(_solvers.Adam(params, 0.1).buffers) == ["first_moment", "second_moment"]
    rprop = _solvers.Rprop(params, 0.25)
    assert list(rprop.buffers) == ["step_sizes", "previous_gradient"]
    assert rprop.step_sizes.dtype == np.float32 and (rprop.step_sizes == 0.25).all()
    sgd = _solvers.SGD(params, 0.1, schedule="invscaling", power_t=0.5)
    sgd.iteration_ends(3)
    assert sgd.lr == 0.1 / 4**0.5
    sgd.set_schedule("adaptive", 0.1)
    assert not sgd.trigger_stopping("", False) and sgd.lr == 0.1 / 4**0.5 / 5


def test_only_the_solver_layer_calls_the_drivers():
    """No module but the solver layer (nnfast/_solvers.py and, for L-BFGS,
    nnfast/_lbfgs_solver.py) imports the drivers, and no estimator reads a private
    attribute of its network."""
    root = pathlib.Path(nnfast.__file__).parent
    solver_layer = {root / "_solvers.py", root / "_lbfgs_solver.py"}
    drivers = r"(network|train|lbfgs|linesearch)"
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if path not in solver_layer:
            assert not re.search(rf"import .*\b_{drivers}\b|\b_{drivers}\.(?!py[xdi])", text), path
        if "sklearn" in path.parts:
            assert not re.search(r"_net\._", text), path


def test_ctrl_c_inside_a_compiled_run_that_shuffles_releases_the_generator():
    """The compiled loop holds the RandomState's lock while it draws the shuffles; Ctrl-C
    inside the run is a KeyboardInterrupt carrying the history, and the lock is free after."""
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (20000, 3)), rng.uniform(-1, 1, (20000, 2))
    net = nnfast.MLP([3, 64, 2], seed=1)  # some ms per epoch: far fewer than 4096 in 0.5 s
    shuffle = np.random.RandomState(0)
    loop = _solvers.EpochLoop(
        net,
        X,
        Y,
        None,
        _solvers.make_objective("mse"),
        _solvers.SGD(net.params, 1e-3),
        20000,
        shuffle=shuffle,
    )
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            loop.run(10**9)
    finally:
        timer.cancel()
    assert info.value.history.stop_reason == "interrupted"
    assert info.value.history.epochs < loop.CHUNK_EPOCHS  # stopped inside the first run
    assert shuffle._bit_generator.lock.acquire(blocking=False)
    shuffle._bit_generator.lock.release()
