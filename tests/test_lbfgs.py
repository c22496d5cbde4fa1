"""MLP.fit(optimizer="lbfgs") (nnfast's compiled L-BFGS) and "lbfgs_scipy" (scipy's
L-BFGS-B over the flat parameter buffer).

With "lbfgs_scipy" the compiled network and nnfast.reference run the same algorithm on the
same objective, so their iterates agree to rounding for a few dozen iterations; the stopping
rules (epochs, max_fun, tol, callback), validation, verbose output, float32, divergence and
bad arguments are checked one by one, for both optimizers. tests/test_lbfgs_fit.py compares
the two.
"""

import numpy as np
import pytest

import nnfast
from nnfast import reference as ref
from nnfast._spec import build_spec


def twins(sizes, activation, output, dtype="float64", seed=0):
    spec = build_spec(sizes, activation, output)
    params = np.random.default_rng(seed + 1).normal(0.0, 0.5, spec.n_params)
    net = nnfast.MLP(sizes, activation, output, dtype=dtype, seed=seed)
    net.params = params
    oracle = ref.MLP(sizes, activation, output, dtype=dtype, seed=seed, params=params)
    return net, oracle


def data(loss, n=40, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "cross_entropy":
        return X, rng.integers(0, n_out, size=n)
    if loss == "binary_cross_entropy":
        return X, (rng.uniform(size=(n, n_out)) > 0.5).astype(float)
    return X, np.tanh(X @ rng.normal(size=(n_in, n_out)))


CASES = {
    "tanh-mse-l2-weights": ([3, 8, 2], "tanh", "identity", "mse", True),
    "relu-softmax": ([3, 9, 3], "relu", "softmax", "cross_entropy", False),
    "elu-sigmoid-bce": (
        [3, 6, 5, 2],
        ["elu", "leaky_relu"],
        "sigmoid",
        "binary_cross_entropy",
        True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lbfgs_matches_reference(case):
    sizes, activation, output, loss, extras = CASES[case]
    net, oracle = twins(sizes, activation, output)
    X, y = data(loss, n_out=sizes[-1])
    # The reference is SciPy's L-BFGS-B: its exact iterates are those of "lbfgs_scipy".
    kwargs = dict(loss=loss, optimizer="lbfgs_scipy", epochs=15, tol=0.0)
    if extras:
        kwargs.update(l2=0.05, sample_weight=np.random.default_rng(2).uniform(0.2, 2.0, 40))
    start = net.loss(X, y, loss, kwargs.get("l2", 0.0), kwargs.get("sample_weight"))
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(X, y, **kwargs)
    assert history.stop_reason == "completed" and len(history.loss) == 15
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=1e-7)
    np.testing.assert_allclose(net.params, oracle.params, rtol=1e-6, atol=1e-8)
    # The history is the objective at each iterate, ending at the returned parameters.
    assert history.loss[-1] == pytest.approx(
        net.loss(X, y, loss, kwargs.get("l2", 0.0), kwargs.get("sample_weight")), rel=1e-12
    )
    assert history.loss[-1] < 0.9 * start


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_scipy"])
def test_lbfgs_fits_the_seed_curve_in_place(optimizer):
    x = np.linspace(-3, 3, 200)[:, None]
    y = np.sin(2 * x)
    net = nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=0)
    buffer, first_weights = net.params, net.weights[0]
    history = net.fit(x, y, optimizer=optimizer, epochs=300)
    assert net.loss(x, y) < 5e-3
    assert history.loss == sorted(history.loss, reverse=True)  # L-BFGS never goes uphill
    # Trained in the flat buffer itself: the same array, the views still view it.
    assert net.params is buffer and np.shares_memory(first_weights, net.params)


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_scipy"])
def test_lbfgs_float32(optimizer):
    x = np.linspace(-3, 3, 100, dtype=np.float32)[:, None]
    y = np.sin(2 * x)
    net = nnfast.MLP([1, 10, 1], activation="tanh", dtype="float32", seed=1)
    before = net.loss(x, y)
    history = net.fit(x, y, optimizer=optimizer, epochs=100)
    assert net.params.dtype == np.float32
    assert history.loss[-1] < 0.1 * before
    twin = nnfast.MLP([1, 10, 1], activation="tanh", dtype="float64", seed=1)
    twin.fit(x, y, optimizer=optimizer, epochs=5)
    net64 = nnfast.MLP([1, 10, 1], activation="tanh", dtype="float32", seed=1)
    h32 = net64.fit(x, y, optimizer=optimizer, epochs=5)
    np.testing.assert_allclose(net64.params, twin.params, rtol=1e-3, atol=1e-4)
    assert len(h32.loss) == 5


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_scipy"])
def test_lbfgs_stopping_rules(optimizer):
    X, y = data("mse")
    net = nnfast.MLP([3, 8, 2], seed=0)
    assert net.fit(X, y, optimizer=optimizer, epochs=7, tol=0.0).stop_reason == "completed"
    net = nnfast.MLP([3, 8, 2], seed=0)
    history = net.fit(X, y, optimizer=optimizer, epochs=500, tol=1e3)
    assert history.stop_reason == "converged" and history.epochs <= 1
    net = nnfast.MLP([3, 8, 2], seed=0)
    history = net.fit(X, y, optimizer=optimizer, epochs=500, max_fun=6, tol=0.0)
    assert history.stop_reason == "max_fun" and history.epochs <= 6
    net = nnfast.MLP([3, 8, 2], seed=0)
    before = net.params.copy()
    history = net.fit(X, y, optimizer=optimizer, epochs=0)
    assert history.epochs == 0 and np.array_equal(net.params, before)


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_scipy"])
def test_lbfgs_callback_validation_and_verbose(capsys, optimizer):
    X, y = data("mse")
    seen = []

    def callback(epoch, loss):
        seen.append((epoch, loss))
        return epoch < 4

    net = nnfast.MLP([3, 8, 2], seed=0)
    history = net.fit(
        X,
        y,
        optimizer=optimizer,
        epochs=50,
        callback=callback,
        verbose=True,
        validation_data=(X[:10], y[:10]),
    )
    assert history.stop_reason == "callback" and history.epochs == 4
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert [v for _, v in seen] == history.loss
    assert len(history.val_loss) == 4
    # Stopped at the 4th iterate: the validation loss was measured there.
    assert history.val_loss[-1] == pytest.approx(net.loss(X[:10], y[:10]), rel=1e-12)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("iteration  1/50  loss ")


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_scipy"])
def test_lbfgs_divergence_keeps_the_weights_and_raises(optimizer):
    X = np.random.default_rng(0).normal(size=(10, 2))
    net = nnfast.MLP([2, 4, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="L-BFGS loss or the weights became NaN") as info:
        net.fit(X, np.full(10, 1e200), optimizer=optimizer, epochs=10)
    assert info.value.history.stop_reason == "diverged"
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize(
    "kwargs,exc,fragments",
    [
        (dict(max_fun=0), ValueError, ["max_fun", ">= 1", "0"]),
        (dict(max_fun=2.5), TypeError, ["max_fun", "float"]),
        (dict(tol=-1.0), ValueError, ["tol", "[0, inf]", "-1.0"]),
        (dict(tol="small"), TypeError, ["tol", "real number", "'small'"]),
        (dict(optimizer="LBFGS"), ValueError, ["optimizer", "'lbfgs'", "'LBFGS'"]),
    ],
)
def test_lbfgs_bad_arguments(kwargs, exc, fragments):
    X, y = data("mse")
    net = nnfast.MLP([3, 8, 2], seed=0)
    before = net.params.copy()
    with pytest.raises(exc) as info:
        net.fit(X, y, **{"optimizer": "lbfgs", **kwargs})
    assert type(info.value) is exc
    for fragment in fragments:
        assert fragment in str(info.value)
    np.testing.assert_array_equal(net.params, before)


def test_scipy_blas_runs_on_one_thread_during_the_fit():
    """SciPy's L-BFGS-B makes tiny BLAS calls that a thread pool slows down many times:
    the fit limits BLAS to one thread (threadpoolctl) and restores the limit after."""
    threadpoolctl = pytest.importorskip(
        "threadpoolctl", reason="the limit needs threadpoolctl (installed with scikit-learn)"
    )
    import scipy.optimize  # noqa: F401  (loads SciPy's BLAS before it is inspected)

    def blas_threads():
        return [
            lib["num_threads"]
            for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"
        ]

    before = blas_threads()
    seen = []
    X = np.linspace(-1, 1, 20)[:, None]
    net = nnfast.MLP([1, 3, 1], seed=0)
    net.fit(
        X,
        X**2,
        optimizer="lbfgs_scipy",  # the compiled "lbfgs" calls no BLAS of SciPy's
        epochs=3,
        callback=lambda epoch, loss: seen.append(blas_threads()),
    )
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before
