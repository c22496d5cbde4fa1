"""One fit, prediction or gradient on several threads: the same bytes for any thread count.

The crossover that keeps small passes on one thread is set to 0 here (``threads_split``),
so that even these small networks and batches are split over teams of 2 and 3 threads, and
every test checks with ``nnfast._team.regions()`` that a team did run: an equality between
two one-thread runs would prove nothing. Speed-ups are measured by ``python -m nnfast
bench``, never asserted here.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nnfast
from nnfast import _team, _threads

pytestmark = pytest.mark.skipif(not _team.compiled(), reason="a build without OpenMP")

THREADS = (2, 3)


@pytest.fixture
def threads_split():
    """Every pass of >= 8 rows goes to a team (the crossover set to 0), and the test
    must see at least one such pass."""
    before_work, before_regions = _team.min_thread_work(), _team.regions()
    _team.set_min_thread_work(0)
    try:
        yield
    finally:
        _team.set_min_thread_work(before_work)
    assert _team.regions() > before_regions, "no pass ran on a team"


@pytest.fixture(params=["baseline", "avx2", "avx512"])
def simd_path(request):
    """Each SIMD path of the kernels in turn (one the CPU lacks runs a narrower one)."""
    before = nnfast.kernels.set_simd_path(request.param)
    try:
        yield request.param
    finally:
        nnfast.kernels.set_simd_path(before)


def _bits(*arrays):
    return [np.asarray(a).tobytes() for a in arrays]


def _data(n_in, n_out, n=97, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    Y = np.tanh(X @ rng.normal(size=(n_in, n_out))).astype(dtype)
    return X, Y


NETWORKS = [
    # sizes, hidden activation, output activation, loss
    ([1, 17, 3, 1], "tanh", "identity", "mse"),
    ([3, 65, 17, 2], "relu", "identity", "gaussian_nll"),
    ([17, 20, 20, 5], "sigmoid", "softmax", "cross_entropy"),
    ([5, 33, 4], "elu", "sigmoid", "binary_cross_entropy"),
    ([4, 24, 24, 3], "leaky_relu", "exp", "poisson"),
    ([6, 16, 16, 2], "maxout", "identity", "mse"),
]


def _targets(loss, X, Y):
    if loss == "cross_entropy":
        return np.argmax(Y, axis=1)
    if loss == "binary_cross_entropy":
        return (Y > 0).astype(X.dtype)
    if loss == "poisson":
        return np.exp(Y).astype(X.dtype)
    if loss == "gaussian_nll":
        return Y[:, :1]
    return Y


def _network(sizes, hidden, output, dtype, seed=3):
    return nnfast.MLP(sizes, activation=hidden, output_activation=output, dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes, hidden, output, loss", NETWORKS)
def test_passes_are_the_same_bytes_on_any_team(
    threads_split, simd_path, sizes, hidden, output, loss, dtype
):
    X, Y = _data(sizes[0], sizes[-1], dtype=dtype)
    y = _targets(loss, X, Y)
    w = np.random.default_rng(5).uniform(0.1, 2.0, size=len(X))
    net = _network(sizes, hidden, output, dtype)

    def passes(n_threads):
        value, grad = net.loss_and_grad(X, y, loss, l2=1e-3, sample_weight=w, n_threads=n_threads)
        return _bits(
            net.predict(X, n_threads=n_threads),
            net.loss(X, y, loss, l2=1e-3, n_threads=n_threads),
            value,
            grad,
            net.input_grad(X, n_threads=n_threads),
        )

    one = passes(1)
    for n_threads in THREADS:
        assert passes(n_threads) == one


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "optimizer, settings",
    [
        ("sgd", dict(lr=1e-2, momentum=0.9, nesterov=True)),
        ("adam", dict(lr=1e-2)),
        ("rprop", dict(lr=1e-2)),
        ("lbfgs", dict(max_fun=60)),
    ],
)
@pytest.mark.parametrize("sizes, hidden, output, loss", NETWORKS[:3] + NETWORKS[5:])
def test_fits_are_the_same_bytes_on_any_team(
    threads_split, sizes, hidden, output, loss, dtype, optimizer, settings
):
    X, Y = _data(sizes[0], sizes[-1], n=131, dtype=dtype)
    y = _targets(loss, X, Y)

    def fit(n_threads):
        net = _network(sizes, hidden, output, dtype)
        history = net.fit(
            X,
            y,
            loss=loss,
            optimizer=optimizer,
            batch_size=17,
            epochs=4,
            l2=1e-4,
            n_threads=n_threads,
            **settings,
        )
        return _bits(net.params, history.loss)

    one = fit(1)
    for n_threads in THREADS:
        assert fit(n_threads) == one


def test_a_prediction_does_not_depend_on_the_rows_beside_it(threads_split):
    net = _network([3, 65, 17, 2], "tanh", "identity", np.float64)
    X, _ = _data(3, 2, n=203)
    whole = net.predict(X, n_threads=3)
    for start, stop in [(0, 1), (5, 22), (100, 203)]:
        np.testing.assert_array_equal(net.predict(X[start:stop], n_threads=2), whole[start:stop])


def test_teams_in_several_python_threads_at_once_give_the_one_thread_bytes(threads_split):
    """Each Python thread's team has its own OpenMP pool: two threads running teams of 2
    and 3 at the same time, beside a third thread whose pool stays alive (libgomp's
    barriers then sleep instead of spinning, docs/threads.md), get the bytes of one
    thread, fits included."""
    sizes, hidden, output, loss = NETWORKS[0]
    X, Y = _data(sizes[0], sizes[-1], n=300)
    net = _network(sizes, hidden, output, np.float64)
    want_loss = _bits(*net.loss_and_grad(X, Y, loss, n_threads=1))
    start = net.copy()
    start.fit(X, Y, epochs=3, batch_size=64, n_threads=1)
    want_fit = _bits(start.params)
    idle, results, errors = threading.Event(), [], []

    def keep_a_pool():  # runs a team, then keeps its thread (and pool) alive
        net.loss_and_grad(X, Y, loss, n_threads=2)
        idle.wait(30)

    def work(n_threads):
        try:
            for _ in range(20):
                results.append(_bits(*net.loss_and_grad(X, Y, loss, n_threads=n_threads)))
            fitted = net.copy()
            fitted.fit(X, Y, epochs=3, batch_size=64, n_threads=n_threads)
            results.append(_bits(fitted.params) + [b"fit"])
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    keeper = threading.Thread(target=keep_a_pool)
    keeper.start()
    workers = [threading.Thread(target=work, args=(n,)) for n in (2, 3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    idle.set()
    keeper.join()
    assert not errors, errors
    assert len(results) == 42
    for result in results:
        assert result == (want_fit + [b"fit"] if result[-1] == b"fit" else want_loss)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer. Maximum iterations")
def test_the_estimators_fit_the_same_bytes_on_any_team(threads_split):
    pytest.importorskip("sklearn")
    from nnfast.sklearn import MLPClassifier

    X, Y = _data(6, 3, n=150)
    y = np.argmax(Y, axis=1)
    fitted = [
        MLPClassifier((20, 20), max_iter=5, random_state=0, n_threads=n).fit(X, y)
        for n in (1, 2, 3)
    ]
    for model in fitted[1:]:
        for a, b in zip(fitted[0].coefs_ + fitted[0].intercepts_, model.coefs_ + model.intercepts_):
            assert a.tobytes() == b.tobytes()
        assert model.predict_proba(X).tobytes() == fitted[0].predict_proba(X).tobytes()


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_n_threads_is_checked_and_a_refused_call_changes_nothing(bad):
    net = nnfast.MLP([2, 4, 1], seed=0)
    X, y = _data(2, 1, n=10)
    before = net.params.copy()
    kind = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    for call in (
        lambda: net.fit(X, y, epochs=1, n_threads=bad),
        lambda: net.predict(X, n_threads=bad),
        lambda: net.loss(X, y, n_threads=bad),
        lambda: net.loss_and_grad(X, y, n_threads=bad),
        lambda: net.input_grad(X, n_threads=bad),
    ):
        with pytest.raises(kind, match="n_threads"):
            call()
    np.testing.assert_array_equal(net.params, before)


def test_the_compiled_entry_points_refuse_a_thread_count_below_one():
    from nnfast import _network, _network_entry

    net = nnfast.MLP([2, 3, 1], seed=0)
    layout = _network.Layout(net._spec)
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="n_threads: expected an integer >= 1, got 0"):
        _network_entry.predict(layout, net.params, X, np.empty((4, 1)), 0)


def test_none_means_the_cores_this_process_may_use():
    assert _threads.effective_n_threads() == min(len(os.sched_getaffinity(0)), _team.max_threads())
    assert _threads.effective_n_threads(5) == 5


def test_omp_num_threads_caps_none():
    script = "from nnfast import _threads; print(_threads.effective_n_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "1"


def test_threadpoolctl_limits_cap_none():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _threads.effective_n_threads() == 1


def test_concurrent_calls_share_the_budget_and_nested_calls_keep_the_outer_count():
    wanted = _threads.effective_n_threads()
    with _threads.use() as outer:
        assert outer == wanted
        with _threads.use() as inner:
            assert inner == outer
        with _threads.use(3) as explicit:
            assert explicit == 3 and _threads.current() == 3
        assert _threads.current() == outer
        seen = []

        def call():
            with _threads.use() as count:
                seen.append(count)

        worker = threading.Thread(target=call)
        worker.start()
        worker.join()
        # Another thread's call gets what this one left: at least one core.
        assert seen == [max(1, wanted - outer)]
    assert _threads.current() == 1
    with _threads.use() as again:  # every count was given back
        assert again == wanted


def test_a_saved_estimator_keeps_its_n_threads_and_files_without_it_load(tmp_path):
    pytest.importorskip("sklearn")
    from nnfast.sklearn import MLPRegressor

    X, Y = _data(3, 1, n=40)
    for n_threads in (None, 2):
        model = MLPRegressor(
            hidden_layer_sizes=(5,), max_iter=3, random_state=0, n_threads=n_threads
        )
        with pytest.warns(Warning):  # ConvergenceWarning: 3 iterations
            model.fit(X, Y.ravel())
        path = tmp_path / f"model-{n_threads}.nnf"
        nnfast.save(model, path)
        loaded = nnfast.load(path)
        assert loaded.n_threads == n_threads
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_divergence_on_a_team_keeps_the_weights_one_thread_keeps(threads_split):
    X, Y = _data(3, 1, n=200)

    def diverging_fit(n_threads):
        net = _network([3, 32, 32, 1], "relu", "identity", np.float64)
        with pytest.raises(FloatingPointError) as info:
            net.fit(
                X, Y * 1e3, optimizer="sgd", lr=10.0, epochs=50, batch_size=64, n_threads=n_threads
            )
        return _bits(net.params, info.value.history.loss)

    assert diverging_fit(2) == diverging_fit(1)


def test_ctrl_c_stops_a_fit_on_a_team(threads_split):
    import signal
    import time

    X, Y = _data(16, 3, n=20_000)
    net = _network([16, 256, 256, 3], "tanh", "identity", np.float64)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, Y, epochs=10**6, batch_size=256, n_threads=2)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 30
    assert info.value.history.stop_reason == "interrupted"
    assert np.isfinite(net.params).all()


def test_joblib_process_workers_get_their_share_of_the_cores():
    """joblib's loky workers start with OMP_NUM_THREADS = cores // n_jobs, which None
    honours: a GridSearchCV(n_jobs=2) over nnfast estimators does not oversubscribe."""
    joblib = pytest.importorskip("joblib")
    counts = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_threads.effective_n_threads)() for _ in range(2)
    )
    assert counts == [max(1, joblib.cpu_count() // 2)] * 2
