"""gaussian_nll in the target's own units (issue 14).

The estimators standardise the targets internally — per output, with the (weighted) mean
and standard deviation of the training targets — and report means, standard deviations,
scores and Jacobians in the units of ``y``; ``nnfast.MLP`` does the same with
``fit(..., standardize_targets=True)``. The acceptance case is the issue's: unscaled
targets y ≈ 5000 + 800 sin(3x) with heteroscedastic noise of standard deviation 40 to 160,
where the ±1 std band held 0% of held-out points before; calibrated, it holds 68%.
"""

import pickle
import warnings

import numpy as np
import pytest

import nnfast

sk = pytest.importorskip("nnfast.sklearn", reason="scikit-learn is not installed")
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def temperatures(n, seed):
    """x in [-1, 1]; y = 5000 + 800 sin(3x) + noise of sd 40 (x = -1) to 160 (x = 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    sd = 40 + 60 * (x + 1)
    return x[:, None], 5000 + 800 * np.sin(3 * x) + sd * rng.normal(size=n), sd


def regressor(**params):
    defaults = dict(
        loss="gaussian_nll",
        hidden_layer_sizes=(32, 32),
        activation="tanh",
        learning_rate_init=0.003,
        max_iter=300,
        n_iter_no_change=50,
        random_state=0,
    )
    return sk.MLPRegressor(**{**defaults, **params})


def fit_quietly(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def band_coverage(mean, std, y):
    return float(np.mean(np.abs(y - mean) <= std))


COVERAGE = {}  # measured coverages, printed as they are measured (pytest -s)


def record_coverage(name, mean, std, y):
    COVERAGE[name] = band_coverage(mean, std, y)
    print(f"\n±1 std band of {name}: {COVERAGE[name]:.1%} of {len(y)} held-out points")
    return COVERAGE[name]


@pytest.fixture(scope="module")
def data():
    return temperatures(2000, seed=0), temperatures(2000, seed=1)


@pytest.fixture(scope="module")
def fitted_regressor(data):
    (x, y, _), _ = data
    return fit_quietly(regressor(), x, y)


def test_regressor_band_is_calibrated_in_the_targets_units(data, fitted_regressor):
    _, (x_test, y_test, sd_test) = data
    model = fitted_regressor
    mean, std = model.predict(x_test, return_std=True)
    assert 0.60 <= record_coverage("MLPRegressor", mean, std, y_test) <= 0.76
    assert model.score(x_test, y_test) > 0.9
    # The predicted noise is the true one, in the targets' units (40 to 160).
    assert np.corrcoef(std, sd_test)[0, 1] > 0.9
    assert 30 < np.median(std[x_test[:, 0] < -0.8]) < 60
    assert 120 < np.median(std[x_test[:, 0] > 0.8]) < 200
    np.testing.assert_array_equal(model.predict(x_test), mean)
    assert model.score(x_test, y_test) == pytest.approx(r2_score(y_test, mean), rel=1e-12)


def test_ensemble_band_is_calibrated_in_the_targets_units(data):
    (x, y, _), (x_test, y_test, _) = data
    ensemble = sk.MLPEnsembleRegressor(regressor(), n_estimators=3, random_state=0)
    fit_quietly(ensemble, x, y)
    mean, std = ensemble.predict(x_test, return_std=True)
    assert 0.60 <= record_coverage("MLPEnsembleRegressor (3)", mean, std, y_test) <= 0.76
    assert r2_score(y_test, mean) > 0.9


def standardized(Y, w=None):
    mean = np.average(Y, axis=0, weights=w)
    std = np.sqrt(np.average((Y - mean) ** 2, axis=0, weights=w))
    return mean, std


@pytest.mark.parametrize("weighted", [False, True])
def test_training_on_standardized_targets_and_reporting_in_their_units(weighted):
    """Per output: a model fitted on Y predicts what a model fitted on (Y - mean) / std
    predicts, mapped back (mean + std · ·), the std multiplied by std. Two targets of
    very different scales, with and without sample weights (weighted mean and std)."""
    x, y, _ = temperatures(300, seed=2)
    Y = np.column_stack([y, 1e-3 * np.cos(3 * x[:, 0]) + 2.0])
    w = np.random.default_rng(2).uniform(0.5, 2.0, 300) if weighted else None
    mean, std = standardized(Y, w)
    params = dict(hidden_layer_sizes=(8,), max_iter=5)
    model = fit_quietly(regressor(**params), x, Y, sample_weight=w)
    unit = fit_quietly(regressor(**params), x, (Y - mean) / std, sample_weight=w)
    np.testing.assert_allclose(model.target_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(model.target_scale_, std, rtol=1e-12)
    for a, b in zip(model.coefs_ + model.intercepts_, unit.coefs_ + unit.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    m, s = model.predict(x, return_std=True)
    mu, su = unit.predict(x, return_std=True)
    np.testing.assert_allclose(m, mean + std * mu, rtol=1e-7)
    np.testing.assert_allclose(s, std * su, rtol=1e-6)
    # The Jacobian is that of predict, in the targets' units.
    np.testing.assert_allclose(
        model.input_grad(x), unit.input_grad(x) * std[None, :, None], rtol=1e-5, atol=1e-9
    )


def test_input_grad_matches_central_differences_of_predict(fitted_regressor):
    x = np.linspace(-0.9, 0.9, 7)[:, None]
    h = 1e-5
    fd = (fitted_regressor.predict(x + h) - fitted_regressor.predict(x - h)) / (2 * h)
    J = fitted_regressor.input_grad(x)
    assert J.shape == (7, 1, 1)
    np.testing.assert_allclose(J[:, 0, 0], fd, rtol=1e-5, atol=1e-3)


def test_loss_is_the_objective_of_the_standardized_targets():
    """loss_ is the minimised objective: the gaussian NLL of the standardised targets plus
    the L2 term; the NLL in y's units is that plus Σ_j log(target_scale_[j])."""
    x, y, _ = temperatures(200, seed=3)
    w = np.random.default_rng(3).uniform(0.5, 2.0, 200)
    model = fit_quietly(regressor(solver="lbfgs", alpha=0.01, max_iter=30), x, y, sample_weight=w)
    mean, std = model.predict(x, return_std=True)
    nll_in_y_units = 0.5 * (np.log(std**2) + (y - mean) ** 2 / std**2)
    penalty = 0.5 * 0.01 * sum((W**2).sum() for W in model.coefs_) / w.sum()
    expected = w @ nll_in_y_units / w.sum() - np.log(model.target_scale_).sum() + penalty
    assert model.loss_ == pytest.approx(expected, rel=1e-9)
    sgd = fit_quietly(regressor(max_iter=3), x, y)
    assert len(sgd.loss_curve_) == 3 and sgd.loss_ == sgd.loss_curve_[-1]
    assert sgd.best_loss_ == min(sgd.loss_curve_)


def test_warm_start_and_partial_fit_keep_the_first_fits_units():
    x, y, _ = temperatures(200, seed=4)
    model = regressor(hidden_layer_sizes=(8,))
    model.partial_fit(x, y)
    mean, scale = model.target_mean_.copy(), model.target_scale_.copy()
    model.partial_fit(x, y + 1000.0)
    np.testing.assert_array_equal(model.target_mean_, mean)
    np.testing.assert_array_equal(model.target_scale_, scale)
    warm = fit_quietly(regressor(hidden_layer_sizes=(8,), max_iter=3, warm_start=True), x, y)
    mean = warm.target_mean_.copy()
    fit_quietly(warm, x, 2 * y)
    np.testing.assert_array_equal(warm.target_mean_, mean)
    # A refit computes them again.
    fit_quietly(warm.set_params(warm_start=False), x, 2 * y)
    assert warm.target_mean_ == pytest.approx(2 * mean, rel=1e-12)


def test_constant_target_and_other_losses():
    x, y, _ = temperatures(50, seed=5)
    model = fit_quietly(regressor(hidden_layer_sizes=(4,), max_iter=3), x, np.full(50, 7.0))
    assert model.target_mean_ == pytest.approx([7.0]) and model.target_scale_ == [1.0]
    assert np.isfinite(model.predict(x, return_std=True)[1]).all()
    # squared_error and poisson train as scikit-learn does: no standardisation.
    for loss in ("squared_error", "poisson"):
        other = fit_quietly(regressor(loss=loss, hidden_layer_sizes=(4,), max_iter=2), x, y)
        assert not hasattr(other, "target_mean_") and not hasattr(other, "target_scale_")


def test_float32_and_pickle(data):
    x, y, _ = temperatures(100, seed=6)
    model = fit_quietly(regressor(hidden_layer_sizes=(8,), max_iter=5, dtype="float32"), x, y)
    mean, std = model.predict(x, return_std=True)
    assert mean.dtype == std.dtype == np.float32
    assert abs(np.mean(mean) - 5000) < 1000
    clone = pickle.loads(pickle.dumps(model))
    for a, b in zip(clone.predict(x, return_std=True), (mean, std)):
        np.testing.assert_array_equal(a, b)


def test_transformed_target_regressor_with_return_std_is_a_clear_error(fitted_regressor):
    """scikit-learn's TransformedTargetRegressor.predict applies inverse_transform to what
    the regressor returns, so it cannot pass return_std through (scikit-learn issue #24638,
    the same with GaussianProcessRegressor): nnfast's error says so and what to do."""
    x, y, _ = temperatures(100, seed=7)
    ttr = TransformedTargetRegressor(
        regressor(hidden_layer_sizes=(4,), max_iter=3), transformer=StandardScaler()
    )
    fit_quietly(ttr, x, y)
    assert ttr.predict(x).shape == (100,)
    with pytest.raises(AttributeError, match="TransformedTargetRegressor.*return_std.*own units"):
        ttr.predict(x, return_std=True)
    # What predict(return_std=True) returns is still a plain pair.
    result = fitted_regressor.predict(x, return_std=True)
    mean, std = result
    assert isinstance(result, tuple) and len(result) == 2 and not hasattr(result, "ndim")
    assert tuple(result) == (result[0], result[1]) and mean is result[0] and std is result[1]


# ---- nnfast.MLP(fit(..., standardize_targets=True)) ----------------------------------------


@pytest.fixture(scope="module")
def fitted_network(data):
    (x, y, _), _ = data
    net = nnfast.MLP([1, 32, 32, 2], activation="tanh", seed=0)
    net.fit(x, y, loss="gaussian_nll", lr=3e-3, batch_size=64, epochs=150, standardize_targets=True)
    return net


def test_network_band_is_calibrated_in_the_targets_units(data, fitted_network):
    (_, y, _), (x_test, y_test, _) = data
    net = fitted_network
    mean, std = net.predict(x_test, return_std=True)
    assert mean.shape == std.shape == (2000, 1)
    coverage = record_coverage("MLP (standardize_targets)", mean[:, 0], std[:, 0], y_test)
    assert 0.60 <= coverage <= 0.76
    target_mean, target_std = net.target_scaling
    np.testing.assert_allclose(target_mean, [y.mean()], rtol=1e-12)
    np.testing.assert_allclose(target_std, [y.std()], rtol=1e-12)
    # The raw output is the gaussian output in y's units: means, then log-variances.
    out = net.predict(x_test)
    np.testing.assert_allclose(out[:, :1], mean, rtol=1e-12)
    np.testing.assert_allclose(np.exp(out[:, 1:] / 2), std, rtol=1e-12)


def test_network_scaling_equals_training_on_standardized_targets():
    x, y, _ = temperatures(300, seed=8)
    w = np.random.default_rng(8).uniform(0.5, 2.0, 300)
    mean, std = standardized(y[:, None], w)
    z = (y[:, None] - mean) / std
    kwargs = dict(loss="gaussian_nll", lr=3e-3, epochs=5, sample_weight=w)
    net = nnfast.MLP([1, 8, 2], seed=1)
    plain = net.copy()
    history = net.fit(x, y, standardize_targets=True, validation_data=(x, y), **kwargs)
    plain_history = plain.fit(x, z, validation_data=(x, z), **kwargs)
    np.testing.assert_allclose(net.params, plain.params, rtol=1e-10, atol=1e-13)
    # Every loss value reported is that of the standardised targets (the objective).
    np.testing.assert_allclose(history.loss, plain_history.loss, rtol=1e-10)
    np.testing.assert_allclose(history.val_loss, plain_history.val_loss, rtol=1e-10)
    assert net.loss(x, y, "gaussian_nll") == pytest.approx(plain.loss(x, z, "gaussian_nll"))
    value, grad = net.loss_and_grad(x, y, "gaussian_nll", sample_weight=w)
    plain_value, plain_grad = plain.loss_and_grad(x, z, "gaussian_nll", sample_weight=w)
    assert value == pytest.approx(plain_value, rel=1e-12)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-9, atol=1e-12)
    m, s = net.predict(x, return_std=True)
    pm, ps = plain.predict(x, return_std=True)
    np.testing.assert_allclose(m, mean + std * pm, rtol=1e-12)
    np.testing.assert_allclose(s, std * ps, rtol=1e-12)
    J, PJ = net.input_grad(x), plain.input_grad(x)
    np.testing.assert_allclose(J[:, :1], std * PJ[:, :1], rtol=1e-12)
    np.testing.assert_allclose(J[:, 1:], PJ[:, 1:], rtol=1e-12)
    np.testing.assert_allclose(net.target_scaling[0], mean, rtol=1e-15)
    np.testing.assert_allclose(net.target_scaling[1], std, rtol=1e-14)
    # A later fit without the flag continues in the same units.
    before = net.target_scaling
    net.fit(x, 2 * y, loss="gaussian_nll", epochs=1)
    for a, b in zip(net.target_scaling, before):
        np.testing.assert_array_equal(a, b)


def test_network_scaling_survives_copy_and_pickle_and_can_be_set(fitted_network):
    x = np.linspace(-1, 1, 9)[:, None]
    expected = fitted_network.predict(x, return_std=True)
    for clone in (fitted_network.copy(), pickle.loads(pickle.dumps(fitted_network))):
        for a, b in zip(clone.predict(x, return_std=True), expected):
            np.testing.assert_array_equal(a, b)
    net = fitted_network.copy()
    net.target_scaling = None
    raw_mean, raw_std = net.predict(x, return_std=True)
    np.testing.assert_allclose(expected[1], raw_std * fitted_network.target_scaling[1])
    net.target_scaling = ([1.0], [2.0])
    np.testing.assert_allclose(net.predict(x, return_std=True)[0], 1.0 + 2.0 * raw_mean)
    assert "target_scaling" in repr(fitted_network)


def test_network_scaling_refusals(tmp_path):
    x, y, _ = temperatures(20, seed=9)
    net = nnfast.MLP([1, 4, 2], seed=0)
    with pytest.raises(ValueError, match="standardize_targets.*loss='gaussian_nll'.*'mse'"):
        net.fit(x, np.column_stack([y, y]), loss="mse", standardize_targets=True)
    assert net.target_scaling is None
    with pytest.raises(TypeError, match="standardize_targets: expected True or False"):
        net.fit(x, y, loss="gaussian_nll", standardize_targets="yes")
    for value, message in [
        (([1.0],), "target_scaling: expected None or a pair"),
        (([1.0, 2.0], [1.0, 1.0]), r"target_scaling: expected .*1 target"),
        (([1.0], [0.0]), "target_scaling: .*std.* > 0"),
        (([np.nan], [1.0]), "target_scaling.*finite"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            net.target_scaling = value
    assert net.target_scaling is None
    with pytest.raises(ValueError, match="target_scaling.*output_activation='identity'"):
        nnfast.MLP([1, 4, 3], seed=0).target_scaling = ([0.0], [1.0])
    net.target_scaling = ([0.0], [2.0])
    with pytest.raises(ValueError, match="target_scaling.*loss='gaussian_nll'.*'mse'"):
        net.loss(x, np.column_stack([y, y]), "mse")
    # The file format has no field for it yet: saving refuses rather than drop it.
    with pytest.raises(ValueError, match="save: .*target_scaling"):
        nnfast.save(net, tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()


# ---- ONNX export: the de-standardisation is part of the graph ------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_onnx_export_reports_the_targets_units(fitted_regressor, fitted_network, dtype):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx_cases import assert_matches, run

    x = np.linspace(-1, 1, 17)[:, None].astype(dtype)
    got = run(nnfast.to_onnx(fitted_regressor, dtype=dtype), x)
    mean, std = fitted_regressor.predict(x.astype(np.float64), return_std=True)
    assert abs(np.mean(got["variable"]) - 5000) < 1000
    assert_matches(f"gaussian_nll regressor {dtype} mean", got["variable"][:, 0], mean, dtype)
    assert_matches(f"gaussian_nll regressor {dtype} std", got["std"][:, 0], std, dtype)
    net = fitted_network if dtype == "float64" else None
    if net is not None:
        got = run(nnfast.to_onnx(net), x)
        assert_matches("MLP with target_scaling", got["Y"], net.predict(x), dtype)
    (x_train, y_train, _) = temperatures(300, seed=10)
    ensemble = fit_quietly(
        sk.MLPEnsembleRegressor(
            regressor(hidden_layer_sizes=(8,), max_iter=5), n_estimators=2, random_state=0
        ),
        x_train,
        y_train,
    )
    got = run(nnfast.to_onnx(ensemble, dtype=dtype), x)
    mean, std = ensemble.predict(x.astype(np.float64), return_std=True)
    assert_matches(f"gaussian_nll ensemble {dtype} mean", got["variable"][:, 0], mean, dtype)
    assert_matches(f"gaussian_nll ensemble {dtype} std", got["std"][:, 0], std, dtype)


def test_model_pickled_before_target_scaling_keeps_predicting_and_training_in_y():
    """A gaussian_nll model from before (no target_mean_ / target_scale_) was trained on y
    itself: it predicts, and a warm start trains, as it did."""
    x, y, _ = temperatures(100, seed=11)
    y = (y - 5000) / 800
    model = fit_quietly(regressor(hidden_layer_sizes=(4,), max_iter=3, warm_start=True), x, y)
    del model.target_mean_, model.target_scale_
    old = pickle.loads(pickle.dumps(model))
    out = old._forward(x)
    np.testing.assert_array_equal(old.predict(x), out[:, 0])
    np.testing.assert_array_equal(old.predict(x, return_std=True)[1], np.exp(out[:, 1] / 2))
    fit_quietly(old, x, y)
    assert not hasattr(old, "target_mean_") and old.n_iter_ == 3
