"""The gaussian_nll loss (heteroscedastic regression) end to end.

The network's output is read as k means ``mu`` then k log-variances ``s`` of k targets; the
loss is the mean over samples and targets of ``0.5 (c + (y - mu)² e^-c)`` with
``c = clip(s, *LOG_VAR_RANGE)``. As for every loss: the reference against a textbook formula
(scipy's normal log-density) and central differences, the compiled kernel against the
reference in float64 and float32 on odd sizes, the extremes, the refusals, training that
learns the noise, ``predict(return_std=True)``, and scikit-learn's MLPRegressor on top.
(The whole network against the reference, over chunks of 1024 rows, and gradients against
finite differences for every hidden activation are in test_gradients.py.)
"""

import math
import pickle
import warnings

import numpy as np
import pytest
import scipy.stats
from conftest import DTYPES, ODD_SIZES, RTOL, assert_close, central_differences, no_warnings, rtol
from test_gradients import KINKED, assert_gradient_matches_fd, random_params
from test_gradients import central_differences as network_differences

import nnfast
from nnfast import _kernel_entry, _losses
from nnfast import reference as ref
from nnfast._spec import ACTIVATION_CODES, LOG_VAR_RANGE, LOSS_CODES

LOW, HIGH = LOG_VAR_RANGE


def run_kernel(Z, Y, w):
    dZ = np.full_like(Z, np.nan)
    inv = 1.0 / (Z.shape[0] if w is None else float(w.sum(dtype=np.float64)))
    value = _kernel_entry.loss_delta_into(
        LOSS_CODES["gaussian_nll"], ACTIVATION_CODES["identity"], dZ, Z, Z, Y, w, inv
    )
    return value, dZ


def reference_delta(Z, Y, w=None):
    return ref.loss_and_delta("gaussian_nll", "identity", Z, Z, Y, w)


def textbook(Z, Y, w):
    """Mean of -log N(y; mu, e^c) + 0.5 log 2π over samples (weighted) and targets, float64."""
    k = Y.shape[1]
    mu = Z[:, :k].astype(np.float64)
    c = np.clip(Z[:, k:].astype(np.float64), LOW, HIGH)
    nll = -scipy.stats.norm.logpdf(Y.astype(np.float64), mu, np.exp(c / 2))
    per_sample = (nll - 0.5 * math.log(2 * math.pi)).mean(axis=1)
    w = np.ones(Z.shape[0]) if w is None else w.astype(np.float64)
    return float(w @ per_sample / w.sum())


def gaussian_case(n, k, rng, dtype, outside=True):
    """Z (n, 2k) of means and log-variances (some beyond the clip range), Y (n, k)."""
    mu = rng.normal(size=(n, k))
    s = rng.normal(0.0, 1.5, size=(n, k))
    if outside:
        s.flat[::5] = rng.choice([-45.0, -31.0, 31.0, 45.0], size=s.flat[::5].shape)
    Y = mu + rng.normal(size=(n, k)) * np.exp(np.clip(s, LOW, HIGH) / 2)
    return np.hstack([mu, s]).astype(dtype), Y.astype(dtype)


# ------------------------------------------------------------------------------------------
# The reference: definition and derivative
# ------------------------------------------------------------------------------------------


def test_clip_range_is_shared_by_the_kernel_and_the_python_side():
    assert _losses.GAUSSIAN_NLL_LOG_VAR_RANGE == LOG_VAR_RANGE == (-30.0, 30.0)


def test_reference_is_the_gaussian_nll_without_its_constant_and_its_gradient():
    rng = np.random.default_rng(1)
    Z, Y = gaussian_case(9, 3, rng, np.float64)
    w = rng.uniform(0.2, 2.0, size=9)
    value, dZ = reference_delta(Z, Y, w)
    assert value == pytest.approx(textbook(Z, Y, w), rel=1e-13)
    # No entry is within the step of a clip edge, so central differences are the derivative;
    # beyond the clip range the log-variance has none.
    assert np.abs(np.abs(Z[:, 3:]) - HIGH).min() > 0.5
    fd = central_differences(lambda Zs: reference_delta(Zs, Y, w)[0], Z, 1e-6)
    np.testing.assert_allclose(dZ, fd, rtol=1e-6, atol=1e-10)
    clipped = np.abs(Z[:, 3:]) > HIGH
    assert clipped.any() and (dZ[:, 3:][clipped] == 0).all()


def test_unit_variance_gives_half_the_mse():
    # With s = 0 the loss is 0.5 (y - mu)²: mse / 2, the same scaling (mean over samples and
    # targets), and the mean's gradient is half mse's.
    rng = np.random.default_rng(2)
    mu, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    value, dZ = reference_delta(np.hstack([mu, np.zeros((7, 3))]), Y)
    mse, dmu = ref.loss_and_delta("mse", "identity", mu, mu, Y)
    assert value == pytest.approx(mse / 2, rel=1e-14)
    np.testing.assert_allclose(dZ[:, :3], dmu / 2, rtol=1e-14)


# ------------------------------------------------------------------------------------------
# The compiled kernel
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", ODD_SIZES)
@pytest.mark.parametrize("n", ODD_SIZES)
def test_kernel_matches_reference(n, k, weighted, dtype):
    rng = np.random.default_rng(100 * n + k)
    Z, Y = gaussian_case(n, k, rng, dtype)
    w = rng.uniform(0.1, 2.0, size=n).astype(dtype) if weighted else None
    value, dZ = run_kernel(Z, Y, w)
    expected_value, expected_dZ = reference_delta(Z, Y, w)
    assert isinstance(value, float) and dZ.dtype == dtype and dZ.shape == Z.shape
    # The loss sums terms of both signs: its rounding is relative to the sum of |terms|.
    mu, c = Z[:, :k].astype(float), np.clip(Z[:, k:].astype(float), LOW, HIGH)
    terms = np.abs(0.5 * (c + (Y - mu) ** 2 * np.exp(-c))).mean()
    assert abs(value - expected_value) <= 10 * rtol(dtype) * terms
    assert_close(dZ, expected_dZ, dtype)
    # ... and against the textbook definition in float64 (the kernel sums in double).
    assert abs(value - textbook(Z, Y, w)) <= 1e-12 * terms


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_gradient_matches_central_differences(dtype):
    # Independent of the reference: central differences of the kernel's own value, in float64
    # from the same float32 inputs (the kernel sums in double).
    rng = np.random.default_rng(3)
    Z, Y = gaussian_case(17, 3, rng, np.float64)
    w = rng.uniform(0.2, 2.0, size=17)
    _, dZ = run_kernel(Z.astype(dtype), Y.astype(dtype), w.astype(dtype))
    fd = central_differences(
        lambda Zs: run_kernel(Zs, Y.astype(dtype).astype(float), w.astype(dtype).astype(float))[0],
        Z.astype(dtype).astype(np.float64),
        1e-6,
    )
    assert_close(dZ, fd, dtype, factor=1e3 if dtype == np.float64 else 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_extremes_are_finite(dtype):
    """Log-variances of ±1e3 are clipped (e^-s would overflow, or underflow to 0 and make
    inf · 0 = NaN); huge and zero residuals give finite values; at the clip edges the
    gradient is the inside one."""
    big = 1e8
    Z = np.array(
        [
            [0.0, 1e3],
            [0.0, -1e3],
            [big, -1e3],
            [big, 1e3],
            [0.0, LOW],
            [0.0, HIGH],
            [-big, 0.0],
            [1.0, -40.0],
        ],
        dtype=dtype,
    )
    Y = np.array([[0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [1.0]], dtype=dtype)
    with no_warnings():
        value, dZ = run_kernel(Z, Y, None)
    assert math.isfinite(value) and np.isfinite(dZ).all()
    e_low, e_high = math.exp(-LOW), math.exp(-HIGH)
    per_row = (
        np.array([HIGH, LOW, LOW + big**2 * e_low, HIGH + big**2 * e_high, LOW, HIGH, big**2, LOW])
        * 0.5
    )
    assert value == pytest.approx(per_row.mean(), rel=1e-12)
    n = Z.shape[0]
    expected_dmu = np.array([0, 0, big * e_low, big * e_high, 0, 0, -big, 0]) / n
    expected_ds = np.array([0, 0, 0, 0, 0.5, 0.5, 0.5 * (1 - big**2), 0]) / n
    np.testing.assert_allclose(dZ[:, 0], expected_dmu, rtol=RTOL[np.dtype(dtype)])
    np.testing.assert_allclose(dZ[:, 1], expected_ds, rtol=RTOL[np.dtype(dtype)])
    if dtype == np.float64:
        expected_value, expected_dZ = reference_delta(Z, Y)
        assert value == pytest.approx(expected_value, rel=1e-14)
        assert_close(dZ, expected_dZ, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_network_extremes_are_finite(dtype):
    # Output biases that put every log-variance at ±1e3, residuals of 1e6 and 0.
    for s in (-1e3, 1e3):
        net = nnfast.MLP([2, 3, 2], dtype=dtype, seed=0)
        net.biases[-1][...] = [0.0, s]
        X = np.random.default_rng(4).normal(size=(5, 2))
        mean = net.predict(X)[:, 0]
        for y in (mean.astype(float), mean + 1e6):
            with no_warnings():
                value, grad = net.loss_and_grad(X, y, "gaussian_nll", l2=0.1)
                std = net.predict(X, return_std=True)[1]
            assert math.isfinite(value) and np.isfinite(grad).all()
            np.testing.assert_allclose(std, math.exp(np.clip(s, LOW, HIGH) / 2), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# MLP: the loss, its gradient, refusals
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_gradient_with_clipped_log_variances_matches_finite_differences(hidden, dtype):
    """Some samples' log-variances are beyond the clip range (no gradient through them),
    none within a finite-difference step of it."""
    net = random_params([3, 5, 6], hidden, "identity", dtype, seed=7)
    net.biases[-1][3:] = [-31.0, 0.0, 31.0]
    rng = np.random.default_rng(7)
    y = rng.normal(size=(6, 3))
    w = rng.uniform(0.2, 2.0, size=6)
    for _ in range(20):
        X = rng.normal(size=(6, 3))
        s = net.predict(X)[:, 3:].astype(float)
        if np.abs(np.abs(s) - HIGH).min() > 0.05:
            fd = network_differences(net, X, y, "gaussian_nll", w, check_kinks=hidden in KINKED)
            if fd is not None:
                break
    else:
        pytest.fail("every draw of X puts an output near a kink or a clip edge: change the seed")
    assert (np.abs(s) > HIGH).any() and (np.abs(s) < HIGH).any()
    value, grad = net.loss_and_grad(X, y, "gaussian_nll", 0.3, w)
    assert value == pytest.approx(net.loss(X, y, "gaussian_nll", 0.3, w), rel=1e-6)
    assert_gradient_matches_fd(grad, fd, value, dtype)


def test_single_target_may_be_1d_and_unit_variance_is_half_the_mse():
    net = nnfast.MLP([2, 4, 2], seed=0)
    net.weights[-1][:, 1] = 0.0
    net.biases[-1][1] = 0.0  # s = 0 everywhere
    mean_net = nnfast.MLP([2, 4, 1], seed=0)
    mean_net.params = np.concatenate([net.params[:-10], net.weights[-1][:, 0], net.biases[-1][:1]])
    X, y = np.random.default_rng(5).normal(size=(9, 2)), np.random.default_rng(6).normal(size=9)
    assert net.loss(X, y, "gaussian_nll") == net.loss(X, y[:, None], "gaussian_nll")
    assert net.loss(X, y, "gaussian_nll") == pytest.approx(0.5 * mean_net.loss(X, y), rel=1e-14)


def snapshot(net):
    return net.params.tobytes(), repr(net._rng.bit_generator.state)


REFUSALS = {
    # id: (layer_sizes, output activation, y columns, fragments of the message)
    "odd width": (
        [3, 4, 3],
        "identity",
        1,
        ["loss", "'gaussian_nll'", "even", "layer_sizes[-1] = 3"],
    ),
    "tanh output": ([3, 4, 2], "tanh", 1, ["loss", "output_activation='identity'", "'tanh'"]),
    "softmax output": ([3, 4, 2], "softmax", 1, ["loss", "'identity'", "'softmax'"]),
    "y as wide as the output": (
        [3, 4, 4],
        "identity",
        4,
        ["y", "expected shape (6, 2)", "got (6, 4)", "log-variances"],
    ),
    "y too narrow": ([3, 4, 4], "identity", 1, ["y", "(6, 2)", "got (6, 1)"]),
}


@pytest.mark.parametrize("method", ["loss", "loss_and_grad", "fit", "fit lbfgs", "validation"])
@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_name_the_argument_and_change_nothing(case, method):
    sizes, output, y_cols, fragments = REFUSALS[case]
    net = nnfast.MLP(sizes, output_activation=output, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, y_cols))
    calls = {
        "loss": lambda: net.loss(X, y, "gaussian_nll"),
        "loss_and_grad": lambda: net.loss_and_grad(X, y, "gaussian_nll"),
        "fit": lambda: net.fit(X, y, "gaussian_nll", epochs=2),
        "fit lbfgs": lambda: net.fit(X, y, "gaussian_nll", optimizer="lbfgs", epochs=2),
        "validation": lambda: net.fit(
            X,
            rng.normal(size=(6, sizes[-1] // 2)),
            "gaussian_nll",
            epochs=2,
            validation_data=(X, y),
        ),
    }
    if (
        method == "validation"
        and y_cols != sizes[-1] // 2
        and sizes[-1] % 2 == 0
        and output == "identity"
    ):
        fragments = ["validation_data y"] + fragments[1:]
    before = snapshot(net)
    with pytest.raises(ValueError) as info:
        calls[method]()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    assert snapshot(net) == before


def test_predict_return_std_refusals():
    X = np.ones((2, 3))
    for net in (
        nnfast.MLP([3, 4, 3], seed=0),
        nnfast.MLP([3, 4, 2], output_activation="sigmoid", seed=0),
    ):
        with pytest.raises(
            ValueError,
            match=r"return_std: .*output_activation='identity' and an "
            r"even number of outputs",
        ):
            net.predict(X, return_std=True)
        assert net.predict(X, return_std=False).shape == (2, net.layer_sizes[-1])
    net = nnfast.MLP([3, 4, 2], seed=0)
    for bad in ("yes", 1, None):
        with pytest.raises(TypeError, match="return_std: expected True or False"):
            net.predict(X, return_std=bad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_return_std_matches_reference(dtype):
    net = random_params([3, 7, 6], "tanh", "identity", dtype, seed=8, scale=0.5)
    net.biases[-1][3:] = [-40.0, 0.0, 40.0]  # two of the log-variances beyond the clip
    oracle = ref.MLP([3, 7, 6], "tanh", "identity", dtype=dtype, params=net.params)
    X = np.random.default_rng(8).normal(size=(17, 3))
    mean, std = net.predict(X, return_std=True)
    expected_mean, expected_std = oracle.predict(X, return_std=True)
    raw = net.predict(X)  # the default is the raw output, unchanged
    assert raw.shape == (17, 6)
    assert mean.shape == std.shape == (17, 3) and mean.dtype == std.dtype == dtype
    assert mean.flags.c_contiguous and np.array_equal(mean, raw[:, :3])
    assert_close(mean, expected_mean, dtype, factor=10)
    assert_close(std, expected_std, dtype, factor=10)
    np.testing.assert_allclose(std[:, 0], math.exp(LOW / 2), rtol=1e-6)
    np.testing.assert_allclose(std[:, 2], math.exp(HIGH / 2), rtol=1e-6)
    one_mean, one_std = net.predict(X[4], return_std=True)
    assert one_mean.shape == one_std.shape == (3,)
    np.testing.assert_array_equal(one_std, std[4])


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


def heteroscedastic(n, seed):
    """y = sin(3x) + noise whose sd grows from 0.05 at x = -1 to 0.3 at x = 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 1))
    sd = 0.05 + 0.125 * (x + 1)
    return x, np.sin(3 * x) + sd * rng.normal(size=x.shape), sd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rprop"])
def test_fit_matches_reference(optimizer, dtype):
    # Shuffled batches of an odd size with a short last one: the driver gathers target rows
    # of k = 2 columns for a network with 4 outputs.
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(37, 3)), rng.normal(size=(37, 2))
    w = rng.uniform(0.2, 2.0, size=37)
    net = random_params([3, 6, 4], "tanh", "identity", dtype, seed=9, scale=0.4)
    oracle = ref.MLP([3, 6, 4], "tanh", "identity", dtype=dtype, seed=9, params=net.params)
    net._rng = np.random.default_rng(10)
    kwargs = dict(
        loss="gaussian_nll",
        optimizer=optimizer,
        lr=0.01,
        batch_size=8,
        epochs=5,
        l2=1e-3,
        sample_weight=w,
    )
    history = net.fit(X, y, **kwargs)
    history_ref = oracle.fit(
        X.astype(dtype),
        y.astype(dtype),
        rng=np.random.default_rng(10),
        **{**kwargs, "sample_weight": w.astype(dtype)},
    )
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(history.loss, history_ref.loss, rtol=tol)
    np.testing.assert_allclose(net.params, oracle.params, rtol=tol, atol=tol)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_fit_learns_the_noise_and_is_calibrated(optimizer):
    x, y, _ = heteroscedastic(2000, seed=0)
    x_test, y_test, sd_test = heteroscedastic(4000, seed=1)
    net = nnfast.MLP([1, 32, 32, 2], activation="tanh", seed=0)
    settings = (
        dict(lr=3e-3, batch_size=64, epochs=300) if optimizer == "adam" else dict(epochs=1000)
    )
    history = net.fit(x, y, loss="gaussian_nll", optimizer=optimizer, **settings)
    assert history.loss[-1] < history.loss[0] - 1.0
    mean, std = net.predict(x_test, return_std=True)
    assert np.sqrt(np.mean((mean - np.sin(3 * x_test)) ** 2)) < 0.05
    # The predicted sd follows the true one (0.05 ... 0.3) ...
    assert np.abs(np.log(std / sd_test)).mean() < 0.15
    # ... so that ±1 sd holds about 68% of new points, ±2 sd about 95%.
    assert 0.64 < np.mean(np.abs(y_test - mean) <= std) < 0.72
    assert 0.93 < np.mean(np.abs(y_test - mean) <= 2 * std) < 0.97


def test_fit_over_more_than_one_chunk_with_validation():
    # 2500 rows: loss and lbfgs run in chunks of 1024 rows, each reading its own target rows.
    x, y, _ = heteroscedastic(2500, seed=2)
    Y = np.hstack([y, -2 * y])
    net = nnfast.MLP([1, 8, 4], seed=3)
    history = net.fit(
        x, Y, loss="gaussian_nll", optimizer="lbfgs", epochs=30, validation_data=(x[:100], Y[:100])
    )
    assert history.loss[-1] == pytest.approx(net.loss(x, Y, "gaussian_nll"), rel=1e-12)
    assert history.val_loss[-1] == pytest.approx(
        net.loss(x[:100], Y[:100], "gaussian_nll"), rel=1e-12
    )
    value = (
        sum(
            net.loss(x[s], Y[s], "gaussian_nll") * len(range(2500)[s])
            for s in (slice(0, 1024), slice(1024, 2048), slice(2048, 2500))
        )
        / 2500
    )
    assert net.loss(x, Y, "gaussian_nll") == pytest.approx(value, rel=1e-12)


# ------------------------------------------------------------------------------------------
# scikit-learn's MLPRegressor(loss="gaussian_nll")
# ------------------------------------------------------------------------------------------

sk = pytest.importorskip("nnfast.sklearn", reason="scikit-learn is not installed")


def regressor(**params):
    defaults = dict(
        loss="gaussian_nll",
        hidden_layer_sizes=(16,),
        activation="tanh",
        random_state=0,
        max_iter=100,
        learning_rate_init=0.01,
    )
    return sk.MLPRegressor(**{**defaults, **params})


def fit_quietly(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kwargs)


@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_shapes_like_gaussian_process_regressor(n_targets):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.metrics import r2_score

    x, y, _ = heteroscedastic(60, seed=4)
    y = y.ravel() if n_targets == 1 else np.hstack([y, 2 * y, -y])
    model = fit_quietly(regressor(), x, y)
    gp = fit_quietly(GaussianProcessRegressor(), x, y)
    mean, std = model.predict(x, return_std=True)
    gp_mean, gp_std = gp.predict(x, return_std=True)
    assert mean.shape == gp_mean.shape and std.shape == gp_std.shape
    assert model.n_outputs_ == n_targets and model.out_activation_ == "identity"
    assert model.coefs_[-1].shape == (16, 2 * n_targets)
    assert model.intercepts_[-1].shape == (2 * n_targets,)
    np.testing.assert_array_equal(model.predict(x), mean)
    assert (std > 0).all()
    assert model.score(x, y) == pytest.approx(r2_score(y, mean), rel=1e-12)


def test_regressor_objective_is_the_nll_summed_over_targets_plus_alpha():
    x, y, _ = heteroscedastic(50, seed=5)
    Y = np.hstack([y, -y])
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=50)
    model = fit_quietly(regressor(solver="lbfgs", alpha=0.01, max_iter=20), x, Y, sample_weight=w)
    # The network is trained on the standardised targets, and loss_ is its objective there.
    Z = (Y - model.target_mean_) / model.target_scale_
    out = model._forward(x)
    mu, c = out[:, :2], np.clip(out[:, 2:], LOW, HIGH)
    nll = (0.5 * (c + (Z - mu) ** 2 * np.exp(-c))).sum(axis=1)
    penalty = 0.5 * 0.01 * sum((W**2).sum() for W in model.coefs_) / w.sum()
    assert model.loss_ == pytest.approx(w @ nll / w.sum() + penalty, rel=1e-10)
    # Integer weights are repeated rows.
    counts = np.arange(50) % 3 + 1
    weighted = fit_quietly(regressor(solver="lbfgs", max_iter=20), x, Y, sample_weight=counts)
    repeated = fit_quietly(
        regressor(solver="lbfgs", max_iter=20),
        np.repeat(x, counts, axis=0),
        np.repeat(Y, counts, axis=0),
    )
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-8)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs", "rprop"])
def test_regressor_every_solver_learns_the_noise(solver):
    # (400 iterations: on the standardised targets rprop converges after 354.)
    x, y, _ = heteroscedastic(400, seed=6)
    model = fit_quietly(
        regressor(
            solver=solver,
            max_iter=400,
            hidden_layer_sizes=(16, 16),
            learning_rate_init=0.01 if solver != "sgd" else 0.003,
        ),
        x,
        y.ravel(),
    )
    x_test, y_test, sd_test = heteroscedastic(2000, seed=7)
    mean, std = model.predict(x_test, return_std=True)
    assert model.score(x_test, y_test.ravel()) > 0.85
    assert np.corrcoef(std, sd_test.ravel())[0, 1] > 0.9
    assert 0.55 < np.mean(np.abs(y_test.ravel() - mean) <= std) < 0.8
    assert np.isfinite(model.loss_) and model.loss_ < 0


def test_regressor_partial_fit_warm_start_and_early_stopping():
    x, y, _ = heteroscedastic(200, seed=8)
    y = y.ravel()
    model = regressor()
    for _ in range(3):
        model.partial_fit(x, y)
    assert len(model.loss_curve_) == 3 and model.loss_curve_[-1] < model.loss_curve_[0]
    model = fit_quietly(regressor(max_iter=5, warm_start=True), x, y)
    first = model.coefs_[-1].copy()
    fit_quietly(model, x, y)
    assert model.coefs_[-1].shape == first.shape and not np.array_equal(model.coefs_[-1], first)
    # Changing the loss of a warm-started model is refused, and the model is unchanged.
    before = [a.copy() for a in model.coefs_]
    model.set_params(loss="squared_error")
    with pytest.raises(ValueError, match="warm_start/partial_fit: .*loss='gaussian_nll'.*refit"):
        model.fit(x, y)
    for a, b in zip(before, model.coefs_):
        np.testing.assert_array_equal(a, b)
    # Early stopping scores the R² of the mean.
    model = fit_quietly(regressor(early_stopping=True, max_iter=50), x, y)
    assert len(model.validation_scores_) == model.n_iter_
    assert 0.5 < model.best_validation_score_ <= 1


def test_regressor_pickle_dtype_and_return_std_refusals():
    x, y, _ = heteroscedastic(40, seed=9)
    model = fit_quietly(regressor(dtype="float32"), x, y.ravel())
    mean, std = model.predict(x, return_std=True)
    assert mean.dtype == std.dtype == np.float32
    clone = pickle.loads(pickle.dumps(model))
    for a, b in zip(clone.predict(x, return_std=True), (mean, std)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="return_std: expected True or False"):
        model.predict(x, return_std="yes")
    for loss in ("squared_error", "poisson"):
        other = fit_quietly(regressor(loss=loss, max_iter=3), x, np.abs(y.ravel()))
        with pytest.raises(
            ValueError,
            match=f"return_std=True needs a model fitted with loss='gaussian_nll'.*loss='{loss}'",
        ):
            other.predict(x, return_std=True)
        assert other.predict(x, return_std=False).shape == (40,)
