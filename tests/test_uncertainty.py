"""Calibrated error bars: on a known noisy function, the ±1 std intervals of both
uncertainty estimates cover between 60% and 76% of held-out points (68% when calibrated).

The data: y = sin(x) + noise with standard deviation 0.05 + 0.1 |x| on [-3, 3], 2000
training and 2000 held-out points. The example script that draws the README's plot runs too.
"""

import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from nnfast.sklearn import MLPEnsembleRegressor, MLPRegressor

ROOT = pathlib.Path(__file__).resolve().parent.parent


def noisy_curve(n, rng):
    x = rng.uniform(-3, 3, n)
    return x[:, None], np.sin(x) + (0.05 + 0.1 * np.abs(x)) * rng.normal(size=n)


def member(seed=0):
    return MLPRegressor(
        loss="gaussian_nll",
        hidden_layer_sizes=(32, 32),
        activation="tanh",
        learning_rate_init=0.003,
        max_iter=500,
        n_iter_no_change=50,
        random_state=seed,
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return noisy_curve(2000, rng) + noisy_curve(2000, rng)


def coverage(model, X, y):
    mean, std = model.predict(X, return_std=True)
    assert mean.shape == std.shape == y.shape
    assert np.all(std > 0)
    return np.mean(np.abs(y - mean) <= std)


@pytest.mark.parametrize("kind", ["gaussian_nll", "ensemble of gaussian_nll"])
def test_one_std_intervals_are_calibrated(data, kind):
    X, y, X_test, y_test = data
    model = (
        member()
        if kind == "gaussian_nll"
        else MLPEnsembleRegressor(member(), n_estimators=5, n_jobs=2, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert 0.60 <= coverage(model, X_test, y_test) <= 0.76
    # Heteroscedastic: the predicted noise grows with |x| as the true one does.
    _, std = model.predict(np.array([[0.0], [2.5]]), return_std=True)
    assert std[1] > 2 * std[0]


def test_ensemble_of_squared_error_members_reports_the_spread_of_the_fit(data):
    """Members fitted on the squared error disagree only about the fitted function: their
    spread is far below the noise (it is an epistemic error bar, not a predictive one),
    and it grows outside the training range."""
    X, y, X_test, y_test = data
    ensemble = MLPEnsembleRegressor(
        MLPRegressor(
            hidden_layer_sizes=(32, 32), activation="tanh", learning_rate_init=0.01, max_iter=100
        ),
        n_estimators=5,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ensemble.fit(X, y)
    assert coverage(ensemble, X_test, y_test) < 0.4
    _, std = ensemble.predict(np.array([[0.0], [6.0]]), return_std=True)
    assert std[1] > 5 * std[0]


def test_example_script_writes_the_readme_plot(tmp_path):
    out = tmp_path / "uncertainty.png"
    # The script imports the nnfast of this checkout, installed or not.
    path = os.pathsep.join([str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep))
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "uncertainty.py"), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)},
    )
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 10_000
    assert run.stdout.count("within ±1 std") == 2, run.stdout
