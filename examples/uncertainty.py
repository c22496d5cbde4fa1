"""
Error bars: a noisy curve with its uncertainty band
===================================================

Two ways to get a standard deviation with each prediction, both in ``nnfast.sklearn``:

- ``MLPRegressor(loss="gaussian_nll")``: one network predicts a mean and a variance per
  point (heteroscedastic regression, trained on the Gaussian negative log-likelihood);
- ``MLPEnsembleRegressor`` of such networks, differing by seed: the std of the members'
  Gaussian mixture adds their disagreement (where data is sparse) to the noise.

The data is ``y = sin(x)`` plus noise whose standard deviation grows with :math:`|x|`. The
script prints the share of held-out points inside mean ± 1 std (68% for a calibrated
Gaussian) and draws the fits with their ±2 std bands. It needs scikit-learn and matplotlib
(``pip install -e ".[sklearn,plot]"``); given a file name, it also writes the figure there
(the README's ``docs/uncertainty.png``)::

    python examples/uncertainty.py [output.png]
"""

import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning  # noqa: E402  (after nnfast's hint)

from nnfast.sklearn import MLPEnsembleRegressor, MLPRegressor  # says how to install sklearn

# A file name on the command line: write the figure there, without a display.
path = sys.argv[1] if len(sys.argv) > 1 else None
if path is not None:
    import matplotlib

    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

# %%
# The data
# --------
# 2,000 training and 2,000 held-out points; the noise's standard deviation is
# :math:`0.05 + 0.1\,|x|`.


def noise_std(x):
    return 0.05 + 0.1 * np.abs(x)


def noisy_curve(n, rng):
    x = rng.uniform(-3, 3, n)
    return x[:, None], np.sin(x) + noise_std(x) * rng.normal(size=n)


rng = np.random.default_rng(0)
X, y = noisy_curve(2000, rng)
X_test, y_test = noisy_curve(2000, rng)

# %%
# Two models
# ----------
# One network of two hidden layers of 32 ``tanh`` units, trained on the Gaussian negative
# log-likelihood, and an ensemble of five such networks trained in two threads.


def models(random_state=0):
    member = MLPRegressor(
        loss="gaussian_nll",
        hidden_layer_sizes=(32, 32),
        activation="tanh",
        solver="adam",
        learning_rate_init=0.003,
        max_iter=500,
        n_iter_no_change=50,
        random_state=random_state,
    )
    ensemble = MLPEnsembleRegressor(member, n_estimators=5, n_jobs=2, random_state=random_state)
    return {"one network (gaussian_nll)": member, "ensemble of 5": ensemble}


def coverage(model, X, y):
    """Share of points with |y - mean| <= std."""
    mean, std = model.predict(X, return_std=True)
    return float(np.mean(np.abs(y - mean) <= std))


fitted = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for name, model in models().items():
        started = time.perf_counter()
        fitted[name] = model.fit(X, y)
        print(
            f"{name}: fitted in {time.perf_counter() - started:.2f} s, held-out points "
            f"within ±1 std: {coverage(model, X_test, y_test):.1%} (calibrated: 68%)"
        )

# %%
# The fits and their bands
# ------------------------
# Both bands follow the noise as it grows with :math:`|x|`; dotted: the true mean ± 2 std.

grid = np.linspace(-3.5, 3.5, 400)[:, None]
fig, axes = plt.subplots(1, len(fitted), figsize=(11, 4), sharey=True)
for ax, (name, model) in zip(axes, fitted.items()):
    mean, std = model.predict(grid, return_std=True)
    ax.scatter(X[::4, 0], y[::4], s=3, color="0.6", label="data (1 in 4)")
    ax.plot(grid[:, 0], np.sin(grid[:, 0]), "k--", lw=1, label="true mean")
    ax.plot(grid[:, 0], mean, color="C0", label="predicted mean")
    ax.fill_between(
        grid[:, 0], mean - 2 * std, mean + 2 * std, color="C0", alpha=0.25, label="± 2 std"
    )
    for sign in (-1, 1):
        ax.plot(
            grid[:, 0],
            np.sin(grid[:, 0]) + sign * 2 * noise_std(grid[:, 0]),
            "k:",
            lw=1,
            label="true ± 2 std" if sign > 0 else None,
        )
    ax.set_title(
        f"{name}: held-out coverage of ±1 std {coverage(model, X_test, y_test):.0%}", fontsize=9
    )
    ax.set_xlabel("x")
axes[0].set_ylabel("y")
axes[0].legend(fontsize=7, loc="upper left")
fig.tight_layout()
if path is not None:
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")
plt.show()
