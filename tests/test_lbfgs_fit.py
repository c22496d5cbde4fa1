"""nnfast's compiled L-BFGS as the default of MLP.fit(optimizer="lbfgs") and of the
estimators' solver="lbfgs", beside SciPy's L-BFGS-B ("lbfgs_scipy").

On the MLP test problems the compiled run ends within 10% of SciPy's final loss (or lower)
at the same limits; the limits (max_iter, max_fun) stop both as SciPy does, through
MLP.fit and the estimators (n_iter_, ConvergenceWarning, max_fun limiting n_iter_); a
non-finite loss inside a line search shortens the step instead of ending the run;
concurrent fits leave threadpoolctl's limits as they were; Ctrl-C ends a fit with the
history and the weights of the same iterate; the fit runs without the GIL.
"""

import os
import signal
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import nnfast
from nnfast._lbfgs import minimize

OPTIMIZERS = ["lbfgs", "lbfgs_scipy"]


def curve(n=200):
    x = np.linspace(-3, 3, n)[:, None]
    return x, np.sin(2 * x)


def blobs(n=150, n_in=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    return X, np.argmax(X @ rng.normal(size=(n_in, classes)), axis=1)


# Limits at which the two minimisers' runs are still comparable: beyond ~60 iterations on
# the seed curve (~100 for the float32 network) a rounding difference (a debug build, another
# code path) sends either run to another local path, its final loss anywhere within 0.3-3x;
# the long runs are checked for the fit they reach instead
# (test_long_runs_reach_a_good_fit).
def _seed_curve():
    return nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=0), curve(), {}, 50


def _softmax():
    X, y = blobs()
    net = nnfast.MLP([4, 16, 3], activation="relu", output_activation="softmax", seed=1)
    return net, (X, y), {"loss": "cross_entropy"}, 100


def _float32():
    x, y = curve(100)
    net = nnfast.MLP([1, 12, 1], activation="tanh", dtype="float32", seed=2)
    return net, (x.astype(np.float32), y.astype(np.float32)), {}, 80


def _weighted_bce():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 5))
    y = (rng.uniform(size=(120, 2)) < 1 / (1 + np.exp(-X[:, :2]))).astype(float)
    net = nnfast.MLP([5, 10, 8, 2], ["elu", "leaky_relu"], "sigmoid", seed=3)
    extras = {
        "loss": "binary_cross_entropy",
        "l2": 0.01,
        "sample_weight": rng.uniform(0.2, 2.0, 120),
    }
    return net, (X, y), extras, 80


def _gaussian_nll():
    x, y = curve(300)
    y = y + 0.1 * (1 + np.abs(x)) * np.random.default_rng(4).normal(size=y.shape)
    net = nnfast.MLP([1, 16, 2], activation="tanh", seed=4)
    return net, (x, y), {"loss": "gaussian_nll"}, 200


PROBLEMS = {
    "seed-curve": _seed_curve,
    "relu-softmax": _softmax,
    "float32": _float32,
    "weighted-l2-bce": _weighted_bce,
    "gaussian-nll": _gaussian_nll,
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_final_loss_within_ten_percent_of_scipys(problem):
    net, (X, y), extras, epochs = PROBLEMS[problem]()
    twin = net.copy()
    ours = net.fit(X, y, optimizer="lbfgs", epochs=epochs, **extras)
    scipys = twin.fit(X, y, optimizer="lbfgs_scipy", epochs=epochs, **extras)
    # Within 10% of SciPy's (or lower); a Gaussian NLL may be negative.
    final, reference = ours.loss[-1], scipys.loss[-1]
    assert final <= reference + 0.1 * abs(reference), (final, reference)
    assert ours.epochs <= epochs and ours.stop_reason in ("completed", "converged")
    # The history ends at the weights left in place, and L-BFGS never goes uphill.
    loss = net.loss(
        X, y, extras.get("loss", "mse"), extras.get("l2", 0.0), extras.get("sample_weight")
    )
    assert ours.loss[-1] == pytest.approx(loss, rel=1e-6 if net.dtype == np.float32 else 1e-12)
    assert all(b <= a for a, b in zip(ours.loss, ours.loss[1:]))


@pytest.mark.parametrize("seed", range(4))
def test_long_runs_reach_a_good_fit(seed):
    """300 iterations on the seed curve: each minimiser fits it, whichever path it took."""
    x, y = curve()
    for optimizer in OPTIMIZERS:
        net = nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=seed)
        history = net.fit(x, y, optimizer=optimizer, epochs=300)
        assert history.loss[-1] < 1e-2 * history.loss[0], optimizer
        assert net.loss(x, y) < 1e-2, optimizer


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(
    "epochs,max_fun,expected",
    [
        (1, 15000, (1, "completed")),
        (2, 15000, (2, "completed")),
        (1, 1, (1, "completed")),  # max_iter is checked before max_fun, as SciPy does
        (5, 1, (1, "max_fun")),  # one iteration always runs: max_fun is checked after it
        (0, 1, (0, "completed")),
    ],
)
def test_max_iter_and_max_fun_edge_cases(optimizer, epochs, max_fun, expected):
    X, y = curve(50)
    net = nnfast.MLP([1, 6, 1], activation="tanh", seed=0)
    before = net.params.copy()
    history = net.fit(X, y, optimizer=optimizer, epochs=epochs, max_fun=max_fun, tol=0.0)
    assert (history.epochs, history.stop_reason) == expected
    assert np.array_equal(net.params, before) == (epochs == 0)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_max_fun_limits_the_iterations(optimizer):
    X, y = curve(50)
    for max_fun in (3, 7, 20):
        net = nnfast.MLP([1, 8, 1], activation="tanh", seed=1)
        history = net.fit(X, y, optimizer=optimizer, epochs=10**6, max_fun=max_fun, tol=0.0)
        assert history.stop_reason == "max_fun" and 1 <= history.epochs <= max_fun


def test_huge_limits_need_no_huge_buffer():
    """epochs and max_fun beyond any array of losses: the run records them one by one."""
    X, y = curve(50)
    net = nnfast.MLP([1, 8, 1], activation="tanh", seed=1)
    twin, third = net.copy(), net.copy()
    history = net.fit(X, y, optimizer="lbfgs", epochs=10**15, max_fun=10**15, tol=1e-3)
    reference = twin.fit(X, y, optimizer="lbfgs", epochs=10**5, tol=1e-3)
    assert history.stop_reason == reference.stop_reason == "converged"
    assert history.loss == reference.loss
    seen = []
    history = third.fit(
        X,
        y,
        optimizer="lbfgs",
        epochs=10**15,
        max_fun=10**15,
        callback=lambda epoch, loss: seen.append(loss) or epoch < 3,
    )
    assert history.stop_reason == "callback" and history.loss == seen and len(seen) == 3


def test_a_non_finite_loss_inside_a_line_search_shortens_the_step():
    """An exp output on inputs of a few hundred: trial steps overflow. SciPy's L-BFGS-B
    gives up at the first one; nnfast's line search steps back and goes on."""
    rng = np.random.default_rng(0)
    X = 300 * rng.normal(size=(50, 2))
    y = np.abs(X[:, 0])
    net = nnfast.MLP([2, 8, 1], activation="relu", output_activation="exp", seed=0)
    twin = net.copy()
    evaluated = []

    def objective(x):
        twin.params[...] = x
        value, grad = twin.loss_and_grad(X, y, "poisson")
        evaluated.append(value)
        return value, grad

    # The same minimiser on the same loss, driven from Python: it meets non-finite values.
    same = minimize(objective, net.params.copy(), max_iter=50)
    assert not all(np.isfinite(evaluated))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = net.fit(X, y, loss="poisson", optimizer="lbfgs", epochs=50)
    assert history.stop_reason == "completed" and history.epochs == same.nit == 50
    np.testing.assert_allclose(history.loss[-1], same.fun, rtol=1e-9)
    assert np.isfinite(net.params).all() and np.isfinite(history.loss).all()
    assert net.loss(X, y, "poisson") < 0.1 * history.loss[0]


# ---- the estimators ------------------------------------------------------------------------


def test_estimator_lbfgs_stops_and_warns_as_scikit_learn():
    from sklearn.exceptions import ConvergenceWarning

    from nnfast.sklearn import MLPRegressor

    X, y = curve(100)
    y = y.ravel()
    for max_iter in (1, 3):
        with pytest.warns(ConvergenceWarning, match=f"after {max_iter} iteration"):
            model = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=max_iter).fit(
                X, y
            )
        assert model.n_iter_ == max_iter
    with pytest.warns(ConvergenceWarning, match="EVALUATIONS EXCEEDS LIMIT"):
        model = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100, max_fun=1).fit(
            X, y
        )
    assert model.n_iter_ == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopped by tol: no warning
        model = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", tol=10.0, random_state=0).fit(
            X, y
        )
    assert model.n_iter_ <= 1
    # loss_ is the objective at the fitted weights (scikit-learn's: half the squared error
    # plus 0.5 alpha ΣW² / n).
    model = MLPRegressor(
        hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", max_iter=50, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    penalty = 0.5 * model.alpha * sum((W**2).sum() for W in model.coefs_) / len(y)
    expected = 0.5 * np.mean((model.predict(X) - y) ** 2) + penalty
    assert model.loss_ == pytest.approx(expected, rel=1e-9)
    assert not hasattr(model, "loss_curve_")  # as scikit-learn: stochastic solvers only


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_max_fun_limits_n_iter_like_scikit_learns_test(activation):
    """scikit-learn's test_lbfgs_classification_maxfun: max_fun alone limits n_iter_."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from nnfast.sklearn import MLPClassifier

    X, y = load_digits(n_class=3, return_X_y=True)
    model = MLPClassifier(
        solver="lbfgs",
        hidden_layer_sizes=50,
        max_iter=150,
        max_fun=10,
        shuffle=True,
        random_state=1,
        activation=activation,
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X[:200], y[:200])
    assert 1 <= model.n_iter_ <= 10


def test_estimator_lbfgs_ends_within_ten_percent_of_scipys():
    """At limits where both runs are comparable (see _seed_curve)."""
    from sklearn.exceptions import ConvergenceWarning

    from nnfast.sklearn import MLPClassifier, MLPRegressor

    X, y = curve()
    options = dict(hidden_layer_sizes=(20, 20), activation="tanh", max_iter=50, random_state=0)
    X_digits, y_digits = blobs(300, 8, 4, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in (MLPRegressor, MLPClassifier):
            data = (X, y.ravel()) if model is MLPRegressor else (X_digits, y_digits)
            ours = model(solver="lbfgs", **options).fit(*data)
            scipys = model(solver="lbfgs_scipy", **options).fit(*data)
            assert ours.loss_ <= 1.1 * scipys.loss_
            assert ours.n_iter_ <= 50


# ---- threads, Ctrl-C, the GIL ----------------------------------------------------------------


def test_concurrent_fits_leave_threadpoolctl_limits_as_they_were():
    """Fit A starts, fit B starts, A ends, B ends (with compiled fits beside them): the
    BLAS limits are the original ones after all of them. (SciPy's path limits BLAS to one
    thread while it runs; OpenBLAS's count read from another thread is not reliable, so
    tests/test_lbfgs.py checks that in one thread.)"""
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="the limit needs threadpoolctl")
    import scipy.optimize  # noqa: F401  (loads SciPy's BLAS before it is inspected)

    def blas_threads():
        return [
            lib["num_threads"]
            for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"
        ]

    before = blas_threads()
    X, y = curve(40)
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def fit_a():
        def callback(epoch, loss):
            a_inside.set()
            b_inside.wait(10)

        nnfast.MLP([1, 4, 1], seed=0).fit(
            X, y, optimizer="lbfgs_scipy", epochs=2, callback=callback
        )
        a_done.set()

    def fit_b():
        a_inside.wait(10)

        def callback(epoch, loss):
            b_inside.set()
            a_done.wait(10)

        nnfast.MLP([1, 4, 1], seed=1).fit(
            X, y, optimizer="lbfgs_scipy", epochs=2, callback=callback
        )

    def fit_compiled():
        for seed in range(5):
            nnfast.MLP([1, 8, 1], seed=seed).fit(X, y, optimizer="lbfgs", epochs=50)

    def guarded(target):
        try:
            target()
        except BaseException as err:  # reported below, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(f,)) for f in (fit_a, fit_b, fit_compiled)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert blas_threads() == before


def _interrupted_fit(net, X, y, **kwargs):
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, y, optimizer="lbfgs", epochs=10**6, tol=0.0, max_fun=10**7, **kwargs)
    finally:
        timer.cancel()
    return info.value.history


@pytest.mark.parametrize("per_iteration", [False, True], ids=["compiled", "with-validation"])
def test_ctrl_c_ends_the_fit_at_the_last_iterate(per_iteration):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8))
    y = np.tanh(X @ rng.normal(size=(8, 2)))
    net = nnfast.MLP([8, 64, 64, 2], seed=2)
    kwargs = {"validation_data": (X[:100], y[:100])} if per_iteration else {}
    history = _interrupted_fit(net, X, y, **kwargs)
    assert history.stop_reason == "interrupted"
    assert np.isfinite(net.params).all()
    assert history.epochs < 10**6
    if per_iteration:
        assert len(history.val_loss) == history.epochs
    if history.epochs:
        assert net.loss(X, y) == pytest.approx(history.loss[-1], rel=1e-12)
        if per_iteration:
            assert net.loss(X[:100], y[:100]) == pytest.approx(history.val_loss[-1], rel=1e-12)


def test_a_python_thread_runs_while_mlp_fit_runs_lbfgs():
    """With switching between threads off (a 100 s interval), a thread waiting for the GIL
    runs only when the holder releases it: it counts only if the fit runs without it."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 8))
    y = np.tanh(X @ rng.normal(size=(8, 2)))
    net = nnfast.MLP([8, 64, 64, 2], seed=2)
    inside = threading.Event()
    counts = []

    def count():
        inside.wait()
        n = 0
        while inside.is_set():
            n += 1
            time.sleep(0)
        counts.append(n)

    counter = threading.Thread(target=count)
    counter.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        inside.set()
        history = net.fit(X, y, optimizer="lbfgs", epochs=30, tol=0.0)
        inside.clear()
    finally:
        inside.clear()
        sys.setswitchinterval(interval)
    counter.join()
    assert history.epochs == 30
    assert counts[0] > 0
