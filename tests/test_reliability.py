"""Reliability: training never loses the model, and nothing a user does crashes the process.

Divergence and Ctrl-C leave the weights and History of the last complete epoch; repeated
calls do not leak memory; threads predicting with one network agree with serial results;
two fits of one network at once are refused; the same seed gives bit-identical training in
separate processes; in-place changes to the parameters are caught. (Single-process basics —
the SGD divergence case, KeyboardInterrupt raised by a callback, assignment through
``net.params`` / ``net.weights[i]`` — are in test_network.py; bad input of every kind is
fuzzed by test_fuzz.py.)

``NNFAST_FUZZ_LONG=1`` runs the memory test with 10,000 rounds of calls instead of 3,000.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import bits

import nnfast

LONG = os.environ.get("NNFAST_FUZZ_LONG", "") not in ("", "0")


def data(n=64, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, n_in))
    return X, np.tanh(X @ rng.standard_normal((n_in, n_out)))


# ------------------------------------------------------------------------------------------
# Divergence
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lr", [1.0, 3.0])
def test_divergence_in_shuffled_mini_batches_keeps_the_last_finite_epoch(lr, dtype):
    """Mini-batches, shuffling, both dtypes: FloatingPointError, History says "diverged", and
    the weights are bit for bit those of the same run stopped after the last finite epoch."""
    X, y = data()
    kwargs = dict(optimizer="sgd", lr=lr, batch_size=8, shuffle=True)
    net = nnfast.MLP([3, 8, 2], activation="relu", dtype=dtype, seed=4)
    with pytest.raises(FloatingPointError, match="NaN or infinite") as info:
        net.fit(X, y, epochs=50, **kwargs)
    history = info.value.history
    assert history.stop_reason == "diverged"
    assert 1 <= history.epochs < 50 and np.isfinite(history.loss).all()
    assert np.isfinite(net.params).all()
    again = nnfast.MLP([3, 8, 2], activation="relu", dtype=dtype, seed=4)
    assert again.fit(X, y, epochs=history.epochs, **kwargs).loss == history.loss
    assert bits(again.params) == bits(net.params)


def test_sklearn_estimator_divergence_keeps_finite_weights():
    from nnfast.sklearn import MLPRegressor

    X, y = data()
    model = MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e30, max_iter=20, random_state=0
    )
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(X * 1e3, y)
    assert all(np.isfinite(W).all() for W in model.coefs_)


# ------------------------------------------------------------------------------------------
# Ctrl-C
# ------------------------------------------------------------------------------------------


def test_sigint_during_a_long_fit_stops_after_a_complete_epoch():
    """SIGINT from another thread during fit(epochs=10**6): KeyboardInterrupt within one
    epoch, and the weights are exactly those of a run of History.epochs epochs."""
    X, y = data(n=2000, n_in=8, n_out=2)
    kwargs = dict(optimizer="adam", lr=1e-3, batch_size=16, shuffle=True)
    net = nnfast.MLP([8, 32, 32, 2], seed=1)
    epochs_seen = []
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))

    def record(epoch, loss):
        epochs_seen.append(epoch)

    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, y, epochs=10**6, callback=record, **kwargs)
    finally:
        timer.cancel()
    history = info.value.history
    assert history.stop_reason == "interrupted"
    assert 1 <= history.epochs < 10**6
    # Stopped within one epoch of the signal: at most the epoch that was running finished.
    assert epochs_seen[-1] == history.epochs
    assert len(history.loss) == history.epochs
    again = nnfast.MLP([8, 32, 32, 2], seed=1)
    assert again.fit(X, y, epochs=history.epochs, **kwargs).loss == history.loss
    assert bits(again.params) == bits(net.params)
    assert net.fit(X, y, epochs=1).epochs == 1  # the network is not left locked


def test_sigint_during_one_very_long_epoch_stops_within_a_second():
    """An epoch of several seconds is not waited for: the driver runs the signal handlers
    every 0.1 s within an epoch, stops it and restores the weights it started from."""
    import time

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(30_000, 8))
    y = np.tanh(X[:, :2])
    net = nnfast.MLP([8, 512, 512, 2], seed=0)  # ~2.7 s per epoch (release build, 1 core)
    initial = bits(net.params)
    sent = []
    timer = threading.Timer(
        0.2, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT))
    )
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, y, epochs=2, batch_size=32)
    finally:
        timer.cancel()
    latency = time.perf_counter() - sent[0]
    assert latency < 1.0, f"fit stopped {latency:.2f} s after Ctrl-C"
    assert info.value.history.epochs == 0
    assert info.value.history.stop_reason == "interrupted"
    assert bits(net.params) == initial  # the unfinished epoch left no trace


def test_interrupt_between_loss_and_validation_loss_drops_the_half_recorded_epoch():
    """Ctrl-C can land anywhere in the per-epoch hook: here after the epoch's training loss
    is recorded and before its validation loss is. History and weights still agree."""
    X, y = data()
    kwargs = dict(batch_size=8, validation_data=(X[:10], y[:10]), l2=1e-3)
    net = nnfast.MLP([3, 8, 2], seed=6)
    calls = []
    compiled = net._compiled

    class Interrupting:  # the hook computes the validation loss: Ctrl-C lands there
        def __getattr__(self, name):
            return getattr(compiled, name)

        def loss(self, *args):
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return compiled.loss(*args)

    net._compiled = Interrupting()
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, y, epochs=10, **kwargs)
    history = info.value.history
    assert history.epochs == len(history.val_loss) == 3
    again = nnfast.MLP([3, 8, 2], seed=6)
    assert again.fit(X, y, epochs=3, **kwargs).loss == history.loss
    assert bits(again.params) == bits(net.params)


def test_sigint_during_lbfgs_keeps_the_last_accepted_iterate():
    X, y = data(n=3000, n_in=8)
    net = nnfast.MLP([8, 64, 64, 2], seed=2)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, y, optimizer="lbfgs", epochs=10**6, tol=0.0, max_fun=10**7)
    finally:
        timer.cancel()
    assert info.value.history.stop_reason == "interrupted"
    assert np.isfinite(net.params).all()
    if info.value.history.epochs:
        assert net.loss(X, y) == pytest.approx(info.value.history.loss[-1], rel=1e-12)


# ------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------


def _rss_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(
    not os.path.exists("/proc/self/statm"),
    reason="reads the resident set size from /proc (Linux only)",
)
def test_repeated_calls_do_not_grow_memory():
    X, y = data(n=100, n_in=4, n_out=3)
    labels = np.argmax(y, axis=1)
    reg = nnfast.MLP([4, 16, 3], seed=0)
    clf = nnfast.MLP(
        [4, 16, 3], activation="relu", output_activation="softmax", dtype="float32", seed=0
    )
    w = np.linspace(0.5, 1.5, 100)

    def one_round():
        reg.fit(X, y, epochs=1, batch_size=32, sample_weight=w, validation_data=(X, y))
        reg.predict(X)
        reg.loss_and_grad(X, y, l2=1e-3)
        clf.fit(X, labels, loss="cross_entropy", optimizer="sgd", epochs=1)
        clf.predict(X[0])
        clf.loss_and_grad(X, labels, loss="cross_entropy", sample_weight=w)

    for _ in range(200):  # warm up: allocator pools, caches
        one_round()
    before = _rss_bytes()
    for _ in range(10_000 if LONG else 3_000):
        one_round()
    grown = _rss_bytes() - before
    assert grown < 5 * 2**20, f"memory grew by {grown / 2**20:.1f} MB"


# ------------------------------------------------------------------------------------------
# Threads
# ------------------------------------------------------------------------------------------


def test_eight_threads_predicting_with_one_network_match_serial_results():
    net = nnfast.MLP([8, 64, 64, 3], activation="tanh", seed=3)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(n, 8)) for n in (1, 7, 500, 2049, 3000, 33, 4096, 1500)]
    serial = [net.predict(X) for X in inputs]
    results = [[] for _ in inputs]
    barrier = threading.Barrier(len(inputs))

    def work(i):
        barrier.wait()
        for _ in range(20):
            results[i].append(net.predict(inputs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for expected, got in zip(serial, results):
        assert len(got) == 20
        for prediction in got:
            assert bits(prediction) == bits(expected)


def test_fitting_one_network_from_two_threads_is_refused():
    X, y = data()
    net = nnfast.MLP([3, 8, 2], seed=5)
    first_epoch_done = threading.Event()
    second_call_made = threading.Event()
    outcome = {}

    def pause(epoch, loss):
        if epoch == 1:
            first_epoch_done.set()
            second_call_made.wait(timeout=60)
        return epoch < 3

    def train():
        outcome["history"] = net.fit(X, y, epochs=100, callback=pause)

    thread = threading.Thread(target=train)
    thread.start()
    assert first_epoch_done.wait(timeout=60)
    before = bits(net.params)
    with pytest.raises(RuntimeError, match="already being trained"):
        net.fit(X, y, epochs=1)
    assert bits(net.params) == before  # the refused call touched nothing
    second_call_made.set()
    thread.join()
    assert outcome["history"].epochs == 3
    reference_net = nnfast.MLP([3, 8, 2], seed=5)
    reference_net.fit(X, y, epochs=3)
    assert bits(net.params) == bits(reference_net.params)  # the first fit was not disturbed


# ------------------------------------------------------------------------------------------
# Determinism across processes
# ------------------------------------------------------------------------------------------

_TRAIN_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import nnfast
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 5))
    y = np.sin(X @ rng.standard_normal((5, 2)))
    digests = []
    for dtype in ("float64", "float32"):
        for optimizer in ("adam", "sgd", "rprop", "lbfgs"):
            net = nnfast.MLP([5, 24, 24, 2], activation=["relu", "tanh"], dtype=dtype, seed=42)
            net.fit(X, y, optimizer=optimizer, lr=1e-3, batch_size=17, epochs=15, l2=1e-4)
            digests.append(hashlib.sha256(net.params.tobytes()).hexdigest())
    print(" ".join(digests))
""")


def test_same_seed_gives_bit_identical_weights_across_processes():
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        child = subprocess.run(
            [sys.executable, "-c", _TRAIN_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert child.returncode == 0, child.stderr
        outputs.append(child.stdout.split())
    assert len(outputs[0]) == 8
    assert outputs[0] == outputs[1]
    # ... and equal to this process's own training.
    namespace = {}
    exec(compile(_TRAIN_SCRIPT.replace("print(", "result = ("), "<train>", "exec"), namespace)
    assert namespace["result"].split() == outputs[0]


# ------------------------------------------------------------------------------------------
# Direct mutation of the parameters
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_replacing_parameters_with_wrong_dtypes_or_sizes_is_refused(dtype):
    net = nnfast.MLP([2, 3, 2], activation=["maxout"], dtype=dtype, seed=0, maxout_pieces=2)
    before = bits(net.params)
    n = net.n_params
    cases = [
        (lambda: setattr(net, "params", np.zeros(n, complex)), TypeError, "params"),
        (lambda: setattr(net, "params", np.zeros(n, object)), TypeError, "params"),
        (lambda: setattr(net, "params", np.zeros(n, "U3")), TypeError, "params"),
        (lambda: setattr(net, "params", None), TypeError, "params"),
        (lambda: setattr(net, "params", 1.0), ValueError, "params"),
        (lambda: setattr(net, "params", np.zeros(n - 1)), ValueError, "params"),
        (lambda: setattr(net, "params", np.zeros((n, 1))), ValueError, "params"),
        (lambda: net.weights.__setitem__(0, np.zeros((2, 3), complex)), TypeError, r"weights\[0\]"),
        (lambda: net.weights.__setitem__(0, np.zeros((2, 3))), ValueError, r"weights\[0\]"),
        (lambda: net.weights.__setitem__(0, np.zeros((2, 3, 3))), ValueError, r"weights\[0\]"),
        (lambda: net.weights.__setitem__(1, "W"), TypeError, r"weights\[1\]"),
        (lambda: net.biases.__setitem__(0, np.zeros(3)), ValueError, r"biases\[0\]"),
        (lambda: net.biases.__setitem__(1, np.zeros(2, object)), TypeError, r"biases\[1\]"),
        (lambda: net.biases.__setitem__(-1, [np.nan, 0.0]), ValueError, r"biases\[-1\]"),
    ]
    for mutate, error, name in cases:
        with pytest.raises(error, match=name):
            mutate()
    assert bits(net.params) == before
    # Accepted: right shape, any real dtype or layout; converted into the same buffer.
    buffer = net.params
    net.weights[0] = np.asfortranarray(np.ones((2, 3, 2), dtype=np.int8))
    net.params = net.params.astype(np.float16)[::-1][::-1]
    assert net.params is buffer and net.params.dtype == np.dtype(dtype)


def test_non_finite_values_written_into_params_in_place_are_caught_by_fit():
    """``net.params[i] = nan`` bypasses the setter: fit refuses to start rather than
    "diverge" and keep non-finite weights; predict and the loss return NaN, never crash."""
    X, y = data()
    net = nnfast.MLP([3, 5, 2], seed=0)
    net.params[7] = np.nan
    before = bits(net.params)
    with pytest.raises(ValueError, match=r"params: expected finite values, got nan at index \(7\)"):
        net.fit(X, y, epochs=3)
    assert bits(net.params) == before
    assert np.isnan(net.predict(X)).any()
    assert np.isnan(net.loss(X, y))
    net.weights[0][...] = 1.0  # in-place writes through the views are fine
    net.params[7] = 0.0
    assert net.fit(X, y, epochs=2).epochs == 2


# ------------------------------------------------------------------------------------------
# Regressions found by the fuzzing (tests/fuzz/)
# ------------------------------------------------------------------------------------------


def test_sample_weights_with_a_subnormal_sum_give_the_weighted_mean():
    """[0, 5e-324, ...] has a positive sum whose inverse overflows: the loss was NaN."""
    X, y = data(n=4)
    net = nnfast.MLP([3, 4, 2], seed=0)
    tiny = np.array([0.0, 5e-324, 0.0, 1e-323])
    same = np.array([0.0, 1.0, 0.0, 2.0])
    assert net.loss(X, y, sample_weight=tiny) == net.loss(X, y, sample_weight=same)
    value, grad = net.loss_and_grad(X, y, sample_weight=tiny)
    value_same, grad_same = net.loss_and_grad(X, y, sample_weight=same)
    assert value == value_same and bits(grad) == bits(grad_same)
    net.fit(X, y, sample_weight=tiny, batch_size=None, epochs=2)
    assert np.isfinite(net.params).all()


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_mini_batch_of_subnormal_weights_trains_like_any_weight(shuffle):
    """A one-sample batch's weighted mean does not depend on the weight: 5e-324 must train
    exactly like 1 (1 / Σw overflowed in the driver and the run "diverged")."""
    X, y = data(n=5)
    runs = []
    for last in (5e-324, 1.0):
        net = nnfast.MLP([3, 4, 2], seed=0)
        net.fit(
            X, y, sample_weight=[1.0, 2.0, 1.0, 1.0, last], batch_size=1, epochs=3, shuffle=shuffle
        )
        runs.append(bits(net.params))
    assert runs[0] == runs[1]


def test_the_reference_trains_a_subnormal_weight_batch_like_nnfast():
    """Found by the long fuzz run: the NumPy reference computed 1 / 5e-324 for a one-sample
    batch and reported divergence where nnfast (rightly) trains as with weight 1."""
    from nnfast import reference

    X, y = data(n=5)
    w = [1.0, 2.0, 1.0, 1.0, 5e-324]
    net = nnfast.MLP([3, 4, 2], seed=0)
    ref = reference.MLP([3, 4, 2], seed=0)
    kwargs = dict(optimizer="sgd", lr=0.01, batch_size=1, epochs=2, shuffle=False)
    net.fit(X, y, sample_weight=w, **kwargs)
    ref.fit(X, y, sample_weight=w, **kwargs)
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-12, atol=1e-15)


def test_load_refuses_a_header_dtype_that_is_not_a_string(tmp_path):
    import io
    import json
    import zipfile

    header = {
        "format": "nnfast.MLP",
        "version": 1,
        "layer_sizes": [1, 1],
        "activations": ["identity"],
        "dtype": ["float64"],
        "leaky_slope": 0.1,
        "elu_alpha": 1.0,
        "maxout_pieces": 2,
        "n_params": 2,
    }
    members = {}
    for name, array in (
        ("header.npy", np.frombuffer(json.dumps(header).encode(), np.uint8)),
        ("params.npy", np.zeros(2)),
    ):
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        members[name] = buffer.getvalue()
    path = tmp_path / "net.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    with pytest.raises(ValueError, match="header 'dtype'"):
        nnfast.load(path)


def test_an_estimator_fitted_from_two_threads_at_once_refuses_the_second():
    import threading

    from nnfast.sklearn import MLPRegressor, _state

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(4000, 8))
    y = np.tanh(X.sum(axis=1))
    # About half a second of training: long enough to be caught in the middle of it.
    model = MLPRegressor(
        hidden_layer_sizes=(256, 256), max_iter=20, random_state=0, tol=0.0, n_iter_no_change=1000
    )
    errors = []

    def first_fit():
        try:
            model.fit(X, y)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        thread = threading.Thread(target=first_fit)
        thread.start()
        # Wait until the first fit holds the estimator, then try a second one.
        while not _state.is_being_fitted(model) and thread.is_alive():
            pass
        assert thread.is_alive(), "the first fit ended before a second could be tried"
        with pytest.raises(RuntimeError, match="already being fitted"):
            model.fit(X, y)
        thread.join()
    assert not errors
    assert model.n_iter_ == 20 and not _state.is_being_fitted(model)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "kind,bad_fit",
    [
        ("MLPRegressor", lambda m, X, y: m.fit(X.iloc[:, :3], y, sample_weight=-np.ones(len(y)))),
        ("MLPRegressor", lambda m, X, y: m.set_params(loss="poisson").fit(X.iloc[:, :3], -abs(y))),
        (
            "MLPClassifier",
            lambda m, X, y: m.fit(
                X.iloc[:, :3], np.arange(len(y)) % 3, sample_weight=np.zeros(len(y))
            ),
        ),
        ("MLPAutoencoder", lambda m, X, y: m.fit(X.iloc[:, :3], sample_weight=-np.ones(len(y)))),
        ("MLPAutoencoder", lambda m, X, y: m.set_params(warm_start=True, n_components=3).fit(X)),
    ],
)
def test_a_refit_refused_for_its_input_keeps_the_fitted_estimator(kind, bad_fit):
    """scikit-learn's input checks record n_features_in_ (and classes_) as they go: a refit
    refused after them used to leave n_features_in_ = 3 beside a network of 6 inputs, so that
    predicting 3 columns read past the end of each row."""
    import pandas as pd

    import nnfast.sklearn

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-1, 1, size=(30, 6)), columns=list("abcdef"))
    y = (X.sum(axis=1) > 0).astype(int) if kind == "MLPClassifier" else X.sum(axis=1)
    model = getattr(nnfast.sklearn, kind)(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    model.fit(X, y)
    out = (model.transform if kind == "MLPAutoencoder" else model.predict)(X)
    before = {key: value for key, value in model.__dict__.items() if key.endswith("_")}
    params = bits(model._net.params)
    with pytest.raises(ValueError):
        bad_fit(model, X, y)
    after = {key: value for key, value in model.__dict__.items() if key.endswith("_")}
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert model.n_features_in_ == 6 and list(model.feature_names_in_) == list("abcdef")
    assert bits(model._net.params) == params
    np.testing.assert_array_equal(
        (model.transform if kind == "MLPAutoencoder" else model.predict)(X), out
    )


def test_unbounded_compiled_fit_interrupted_keeps_history_and_weights_in_step():
    """Without shuffling or a callback the epochs run in compiled loops of a few thousand
    epochs: epochs=sys.maxsize needs no epoch-sized memory, and Ctrl-C leaves a History
    whose epochs are exactly those the weights went through."""
    X, y = data(n=16)
    net = nnfast.MLP([3, 4, 2], seed=1)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(
                X, y, optimizer="sgd", lr=1e-3, batch_size=None, shuffle=False, epochs=sys.maxsize
            )
    finally:
        timer.cancel()
    history = info.value.history
    assert history.stop_reason == "interrupted"
    assert history.epochs > 4096, "several compiled runs must have completed"
    again = nnfast.MLP([3, 4, 2], seed=1)
    rerun = again.fit(
        X, y, optimizer="sgd", lr=1e-3, batch_size=None, shuffle=False, epochs=history.epochs
    )
    assert rerun.loss == history.loss
    assert bits(again.params) == bits(net.params)


def test_ctrl_c_inside_one_long_compiled_run_is_a_keyboard_interrupt():
    """One compiled run (4096 epochs of 4000 samples) takes seconds, so Ctrl-C is seen by
    the check inside the run rather than between runs."""
    X, y = data(n=4000)
    net = nnfast.MLP([3, 32, 2], seed=1)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(
                X, y, optimizer="sgd", lr=1e-3, batch_size=None, shuffle=False, epochs=sys.maxsize
            )
    finally:
        timer.cancel()
    assert info.value.history.stop_reason == "interrupted"
    assert np.isfinite(net.params).all()
