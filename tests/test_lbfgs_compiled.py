"""nnfast's compiled L-BFGS (nnfast/_lbfgs.pyx): its Python entry `minimize`, and the
network driver `fit_lbfgs`.

SciPy's L-BFGS-B is the reference: the same minimiser on convex problems, no more than 1.5x
its evaluations on Rosenbrock, its stopping rules (max_iter, max_fun checked at the end of
an iteration, gtol on max |g|, the relative reduction ftol). Every accepted step satisfies
the strong Wolfe conditions; non-finite values inside a line search shorten the step
instead of ending the run. On networks it follows SciPy driven by the same loss, fits
float32 networks through a float64 iterate, stops on Ctrl-C and runs without the GIL.
"""

import itertools
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
import scipy.optimize

import nnfast
from nnfast._lbfgs import DEFAULT_FTOL, STOP_REASONS, fit_lbfgs, minimize
from nnfast._spec import LOSS_CODES


def rosenbrock(x):
    return scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)


def least_squares_problem(seed=0, n=60, d=15):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    b = A @ rng.normal(size=d) + 0.3 * rng.normal(size=n)

    def fun(x):
        r = A @ x - b
        return 0.5 * r @ r, A.T @ r

    return fun, np.linalg.lstsq(A, b, rcond=None)[0]


def logistic_problem(seed=1, n=200, d=8, alpha=0.1):
    """Mean log-loss of a linear classifier plus 0.5 alpha |w|^2 (a bias, unpenalised)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    labels = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(float)

    def fun(theta):
        w, b = theta[:-1], theta[-1]
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        loss = np.mean(np.logaddexp(0, z) - labels * z) + 0.5 * alpha * w @ w
        r = (p - labels) / n
        return loss, np.append(X.T @ r + alpha * w, r.sum())

    return fun, np.zeros(d + 1)


def scipy_run(fun, x0, **options):
    return scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", options=options)


def record_run(fun, x0, **kwargs):
    """minimize with every iterate and the evaluation count after each iteration."""
    calls = []
    iterates = []

    def counted(x):
        calls.append(1)
        return fun(x)

    def callback(x, f):
        iterates.append((x, f, len(calls)))

    result = minimize(counted, x0, callback=callback, **kwargs)
    assert result.nfev == len(calls)
    return result, iterates


def test_least_squares_reaches_scipys_minimiser():
    fun, exact = least_squares_problem()
    x0 = np.zeros_like(exact)
    ours = minimize(fun, x0, gtol=1e-12, ftol=0.0)
    theirs = scipy_run(fun, x0, gtol=1e-12, ftol=0.0)
    np.testing.assert_allclose(ours.x, exact, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=0, atol=1e-8)
    # gtol 1e-12 and ftol 0 ask for more than float64 gives: the run ends at the minimiser,
    # by gtol or when f - f* is below f's rounding and no step lowers f any more.
    assert ours.stop_reason in ("gtol", "stalled")
    assert np.abs(ours.jac).max() < 1e-6 * np.abs(fun(x0)[1]).max()


def test_regularised_logistic_regression_reaches_scipys_minimiser():
    fun, x0 = logistic_problem()
    ours = minimize(fun, x0, gtol=1e-12, ftol=0.0)
    theirs = scipy_run(fun, x0, gtol=1e-12, ftol=0.0)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=0, atol=1e-8)
    assert np.abs(fun(ours.x)[1]).max() < 1e-9
    # With the default tolerances both stop near the minimiser.
    loose = minimize(fun, x0)
    assert loose.fun == pytest.approx(theirs.fun, rel=1e-8)


@pytest.mark.parametrize(
    "x0",
    [[-1.2, 1.0], np.full(10, -1.0), np.linspace(-2, 2, 10)],
    ids=["2-D", "10-D", "10-D-spread"],
)
def test_rosenbrock_in_no_more_than_one_and_a_half_times_scipys_evaluations(x0):
    x0 = np.asarray(x0, dtype=float)
    ours = minimize(rosenbrock, x0)
    theirs = scipy_run(rosenbrock, x0)
    print(
        f"Rosenbrock {x0.size}-D: nnfast {ours.nit} iterations, {ours.nfev} evaluations; "
        f"scipy {theirs.nit}, {theirs.nfev}"
    )
    assert ours.nfev <= 1.5 * theirs.nfev
    np.testing.assert_allclose(ours.x, np.ones_like(x0), atol=1e-4)
    assert ours.fun <= max(10 * theirs.fun, 1e-9)
    assert ours.stop_reason in ("gtol", "ftol")


@pytest.mark.parametrize("problem", ["rosenbrock", "logistic"])
def test_accepted_steps_satisfy_the_strong_wolfe_conditions(problem):
    if problem == "rosenbrock":
        fun, x0 = rosenbrock, np.full(10, -1.0)
    else:
        fun, x0 = logistic_problem()
    _, iterates = record_run(fun, x0, gtol=1e-9, ftol=0.0)
    points = [x0] + [x for x, _, _ in iterates]
    assert len(points) > 10
    for before, after in itertools.pairwise(points):
        f0, g0 = fun(before)
        f1, g1 = fun(after)
        s = after - before
        assert g0 @ s < 0
        assert f1 <= f0 + 1e-3 * (g0 @ s) + 1e-12 * abs(f0)  # sufficient decrease
        assert abs(g1 @ s) <= 0.9 * abs(g0 @ s) * (1 + 1e-9) + 1e-15  # curvature


def test_max_iter_edge_cases():
    x0 = np.array([-1.2, 1.0])
    full, iterates = record_run(rosenbrock, x0)
    assert full.nit == len(iterates) > 5
    zero = minimize(rosenbrock, x0, max_iter=0)
    assert (zero.nit, zero.nfev, zero.stop_reason) == (0, 1, "max_iter")
    np.testing.assert_array_equal(zero.x, x0)
    one = minimize(rosenbrock, x0, max_iter=1)
    assert (one.nit, one.stop_reason, one.nfev) == (1, "max_iter", iterates[0][2])
    np.testing.assert_array_equal(one.x, iterates[0][0])
    assert one.fun == iterates[0][1]
    # Exactly the iterations the full run needed: max_iter is tested before convergence,
    # as SciPy does, so the same iterate is reported as stopped by max_iter.
    exact = minimize(rosenbrock, x0, max_iter=full.nit)
    assert (exact.nit, exact.stop_reason) == (full.nit, "max_iter")
    np.testing.assert_array_equal(exact.x, full.x)


def test_max_fun_is_checked_after_each_iteration_as_scipy_does():
    x0 = np.array([-1.2, 1.0])
    _, iterates = record_run(rosenbrock, x0)
    counts = [c for _, _, c in iterates]
    one = minimize(rosenbrock, x0, max_fun=1)
    assert (one.nit, one.stop_reason, one.nfev) == (1, "max_fun", counts[0])
    # An iteration that ends with exactly max_fun evaluations does not stop the run; the
    # next one (more than max_fun) does.
    j = next(j for j in range(1, len(counts) - 1) if counts[j] - counts[j - 1] >= 2)
    hit = minimize(rosenbrock, x0, max_fun=counts[j])
    assert (hit.nit, hit.stop_reason, hit.nfev) == (j + 2, "max_fun", counts[j + 1])
    np.testing.assert_array_equal(hit.x, iterates[j + 1][0])
    below = minimize(rosenbrock, x0, max_fun=counts[j] - 1)
    assert (below.nit, below.stop_reason, below.nfev) == (j + 1, "max_fun", counts[j])
    # SciPy stops at the same iteration under the same rule.
    theirs = scipy_run(rosenbrock, x0, maxfun=counts[j])
    assert theirs.nit == hit.nit and theirs.nfev == hit.nfev


def test_gtol_stop():
    fun, _ = least_squares_problem()
    result, iterates = record_run(fun, np.zeros(15), gtol=1e-3, ftol=0.0)
    assert result.stop_reason == "gtol"
    assert np.abs(result.jac).max() <= 1e-3
    assert np.abs(fun(iterates[-2][0])[1]).max() > 1e-3
    np.testing.assert_array_equal(result.jac, fun(result.x)[1])
    at_start = minimize(fun, np.zeros(15), gtol=1e6)
    assert (at_start.nit, at_start.nfev, at_start.stop_reason) == (0, 1, "gtol")


def test_ftol_stop():
    result, iterates = record_run(rosenbrock, np.full(10, -1.0), ftol=1e-3, gtol=0.0)
    assert result.stop_reason == "ftol"
    values = [rosenbrock(np.full(10, -1.0))[0]] + [f for _, f, _ in iterates]

    def reduction(a, b):
        return (a - b) / max(abs(a), abs(b), 1.0)

    assert reduction(values[-2], values[-1]) <= 1e-3
    assert all(reduction(a, b) > 1e-3 for a, b in itertools.pairwise(values[:-1]))
    assert DEFAULT_FTOL == 2.220446049250313e-09


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_value_inside_a_line_search_shortens_the_step(bad):
    """From 0 the first trial (unit length) lands at 1, where f is not finite: the search
    steps back and the run still reaches the minimiser at 0.3."""
    seen = []

    def fun(x):
        seen.append(float(x[0]))
        if x[0] > 0.5:
            return bad, np.array([bad])
        return (x[0] - 0.3) ** 2, 2 * (x - 0.3)

    result = minimize(fun, np.zeros(1))
    assert seen[1] == pytest.approx(1.0)
    assert result.x[0] == pytest.approx(0.3, abs=1e-6)
    assert result.stop_reason in ("gtol", "ftol")


def test_a_non_finite_gradient_inside_a_line_search_is_a_failed_step():
    rng = np.random.default_rng(3)
    H = rng.normal(size=(6, 6))
    H = H @ H.T + np.eye(6)

    def fun(x):
        g = H @ (x - 1)
        if np.abs(x).max() > 1.5:
            g = g.copy()
            g[2] = np.nan
        return 0.5 * (x - 1) @ H @ (x - 1), g

    result = minimize(fun, np.zeros(6), gtol=1e-8)
    np.testing.assert_allclose(result.x, np.ones(6), atol=1e-6)


def test_non_finite_at_the_start_is_diverged_and_the_start_is_kept():
    result = minimize(lambda x: (np.inf, np.zeros(2)), np.array([1.0, 2.0]))
    assert (result.nit, result.nfev, result.stop_reason) == (0, 1, "diverged")
    np.testing.assert_array_equal(result.x, [1.0, 2.0])


def test_no_descent_at_all_is_stalled_at_the_start():
    """A gradient of the wrong sign: every trial goes uphill, along steepest descent too."""
    result = minimize(lambda x: (x @ x, -2 * x), np.array([1.0, -2.0]))
    assert result.stop_reason == "stalled" and result.nit == 0
    np.testing.assert_array_equal(result.x, [1.0, -2.0])


def test_callback_stops_and_exceptions_propagate():
    x0 = np.array([-1.2, 1.0])
    stopped = minimize(rosenbrock, x0, callback=lambda x, f: False)
    assert (stopped.nit, stopped.stop_reason) == (1, "callback")

    def broken_callback(x, f):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        minimize(rosenbrock, x0, callback=broken_callback)
    calls = []

    def broken(x):
        calls.append(1)
        if len(calls) == 3:
            raise ZeroDivisionError("from fun")
        return rosenbrock(x)

    with pytest.raises(ZeroDivisionError, match="from fun"):
        minimize(broken, x0)
    with pytest.raises(ValueError, match=r"gradient of shape \(2,\), got \(3,\)"):
        minimize(lambda x: (0.0, np.zeros(3)), x0)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"max_iter": -1}, "max_iter >= 0"),
        ({"max_fun": 0}, "max_fun"),
        ({"memory": 0}, "memory"),
        ({"max_line_search": 0}, "max_line_search"),
        ({"gtol": -1.0}, "gtol >= 0"),
        ({"ftol": np.nan}, "ftol >= 0"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        minimize(rosenbrock, np.zeros(2), **kwargs)
    with pytest.raises(TypeError, match="callable"):
        minimize(None, np.zeros(2))
    with pytest.raises(ValueError, match="x0"):
        minimize(rosenbrock, np.zeros(0))


def test_memory_one_still_converges_and_stop_reasons_are_named():
    result = minimize(rosenbrock, np.array([-1.2, 1.0]), memory=1, max_iter=2000)
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-3)
    assert STOP_REASONS[:6] == ("running", "gtol", "ftol", "max_iter", "max_fun", "stalled")


# ---- the network driver ----------------------------------------------------------------------


def layout(net):
    """The network's C layer table (kept by its CompiledNetwork once the solver layer
    exists)."""
    compiled = getattr(net, "_compiled", None)
    return compiled.layout if hasattr(compiled, "layout") else net._layout


def network_problem(dtype="float64", sizes=(3, 16, 2), n=120, seed=0, sample_weight=None, l2=0.0):
    """A network and its validated (X, Y, w, l2, 1 / weight sum)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    y = np.tanh(X @ rng.normal(size=(sizes[0], sizes[-1])))
    net = nnfast.MLP(list(sizes), dtype=dtype, seed=seed)
    X, Y, w, _, l2, inv_wsum = net._check_data(X, y, "mse", sample_weight, l2)
    return net, (X, Y, w, l2, inv_wsum)


def run_fit(
    net, data, max_iter=50, max_fun=15000, gtol=1e-5, ftol=DEFAULT_FTOL, memory=10, hook=None
):
    X, Y, w, l2, inv_wsum = data
    losses = np.full(min(max_iter, max_fun), np.nan)
    iterations, evaluations, code, final = fit_lbfgs(
        layout(net),
        net.params,
        X,
        Y,
        w,
        LOSS_CODES["mse"],
        inv_wsum,
        l2,
        max_iter,
        max_fun,
        gtol,
        ftol,
        memory,
        losses,
        hook,
    )
    assert np.isnan(losses[iterations:]).all()
    return iterations, evaluations, STOP_REASONS[code], final, losses[:iterations]


def test_network_fit_follows_scipy_on_the_same_loss():
    weights = np.random.default_rng(5).uniform(0.2, 2.0, 120)
    net, data = network_problem(sample_weight=weights, l2=0.01)
    X, Y, w, l2, _ = data
    start = net.params.copy()
    twin = net.copy()
    scipy_losses = []

    def objective(x):
        twin.params = x
        value, grad = twin.loss_and_grad(X, Y, l2=l2, sample_weight=w)
        return value, grad

    def record(intermediate_result):  # scipy passes the result by this name
        scipy_losses.append(intermediate_result.fun)

    scipy.optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        callback=record,
        options={"maxiter": 25, "gtol": 0.0, "ftol": 0.0},
    )
    iterations, _, reason, final, losses = run_fit(net, data, max_iter=25, gtol=0.0, ftol=0.0)
    assert (iterations, reason) == (25, "max_iter")
    np.testing.assert_allclose(losses, scipy_losses, rtol=1e-6)
    assert final == losses[-1]
    # The reported loss is the network's loss at the parameters left in place.
    assert final == pytest.approx(net.loss(X, Y, l2=l2, sample_weight=w), rel=1e-12)
    assert not np.array_equal(net.params, start)


def test_float32_network_fits_through_a_float64_iterate():
    net32, data32 = network_problem("float32")
    net64, data64 = network_problem("float64")
    net64.params = net32.params.astype(np.float64)
    before = net32.loss(*data32[:2])
    buffer = net32.params
    _, _, reason, final32, losses32 = run_fit(net32, data32, max_iter=100)
    _, _, _, _, losses64 = run_fit(net64, data64, max_iter=100)
    assert net32.params is buffer and net32.params.dtype == np.float32
    assert final32 < 0.05 * before
    assert list(losses32) == sorted(losses32, reverse=True)
    np.testing.assert_allclose(losses32[:5], losses64[:5], rtol=1e-3)
    X, Y = data32[:2]
    assert final32 == pytest.approx(net32.loss(X, Y), rel=1e-12)
    assert reason in ("gtol", "ftol", "max_iter")


def test_hook_sees_each_iterate_and_can_stop_or_raise():
    net, data = network_problem()
    X, Y = data[:2]
    seen = []

    def hook(iteration, value):
        seen.append((iteration, value, net.loss(X, Y)))
        return iteration < 3

    iterations, _, reason, _, losses = run_fit(net, data, hook=hook)
    assert (iterations, reason) == (3, "callback")
    assert [i for i, _, _ in seen] == [1, 2, 3]
    assert [v for _, v, _ in seen] == list(losses)
    for _, value, measured in seen:  # params hold the iterate while the hook runs
        assert measured == pytest.approx(value, rel=1e-12)

    def broken(iteration, value):
        if iteration == 2:
            raise LookupError("from the hook")

    with pytest.raises(LookupError, match="from the hook") as info:
        run_fit(net, data, hook=broken)
    assert info.value.lbfgs_state[0] == 2
    assert np.isfinite(net.params).all()


def test_network_max_fun_limits_the_iterations():
    net, data = network_problem()
    iterations, evaluations, reason, _, _ = run_fit(
        net, data, max_iter=500, max_fun=7, gtol=0.0, ftol=0.0
    )
    assert reason == "max_fun" and iterations <= 7 < evaluations


def test_non_finite_loss_at_the_start_is_diverged_and_keeps_the_weights():
    net, (X, Y, w, l2, inv_wsum) = network_problem()
    before = net.params.copy()
    result = run_fit(net, (X, np.full_like(Y, 1e200), w, l2, inv_wsum))
    assert result[:3] == (0, 1, "diverged")
    np.testing.assert_array_equal(net.params, before)


def test_fit_lbfgs_rechecks_sizes():
    net, (X, Y, w, l2, inv_wsum) = network_problem()
    code = LOSS_CODES["mse"]
    losses = np.zeros(10)

    def call(params=None, X=X, Y=Y, w=w, max_iter=10, max_fun=10, memory=5, losses=losses):
        fit_lbfgs(
            layout(net),
            net.params if params is None else params,
            X,
            Y,
            w,
            code,
            inv_wsum,
            l2,
            max_iter,
            max_fun,
            1e-5,
            0.0,
            memory,
            losses,
        )

    with pytest.raises(ValueError, match="params must hold"):
        call(params=np.zeros(net.n_params + 1))
    with pytest.raises(ValueError, match="3 columns"):
        call(X=np.zeros((120, 4)))
    with pytest.raises(ValueError, match="Y: expected shape"):
        call(Y=np.zeros((120, 3)))
    with pytest.raises(ValueError, match="sample_weight"):
        call(w=np.ones(5))
    with pytest.raises(ValueError, match="losses must hold"):
        call(max_iter=11, max_fun=20)
    with pytest.raises(ValueError, match="memory >= 1"):
        call(memory=0)
    with pytest.raises(ValueError, match="at least one sample"):
        call(X=X[:0], Y=Y[:0])


def test_sigint_stops_a_long_fit_at_the_last_iterate():
    net, data = network_problem(sizes=(8, 64, 64, 2), n=3000)
    X, Y = data[:2]
    losses = np.full(10**6, np.nan)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            fit_lbfgs(
                layout(net),
                net.params,
                X,
                Y,
                None,
                LOSS_CODES["mse"],
                1 / 3000,
                0.0,
                10**6,
                10**7,
                0.0,
                0.0,
                10,
                losses,
            )
    finally:
        timer.cancel()
    iterations, evaluations = info.value.lbfgs_state
    assert evaluations >= 1 and np.isfinite(net.params).all()
    if iterations:
        assert net.loss(X, Y) == pytest.approx(losses[iterations - 1], rel=1e-12)


def test_a_python_thread_runs_while_a_network_fits():
    """With switching between threads off (a 100 s interval), a thread waiting for the GIL
    runs only when the holder releases it: it counts only if the fit runs without it."""
    net, data = network_problem(sizes=(8, 64, 64, 2), n=3000)
    inside = threading.Event()
    counts = []

    def count():
        inside.wait()
        n = 0
        while inside.is_set():
            n += 1
            time.sleep(0)  # releases the GIL, so the fit can take it back
        counts.append(n)

    counter = threading.Thread(target=count)
    counter.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        inside.set()
        started = time.perf_counter()
        iterations = run_fit(net, data, max_iter=30, gtol=0.0, ftol=0.0)[0]
        elapsed = time.perf_counter() - started
        inside.clear()
    finally:
        inside.clear()
        sys.setswitchinterval(interval)
    counter.join()
    print(
        f"{iterations} iterations in {elapsed * 1e3:.1f} ms beside a counting thread "
        f"({counts[0]} counts)"
    )
    assert iterations == 30
    assert counts[0] > 0
