"""The workflow rows of ``python -m nnfast bench``: nnfast.sklearn against scikit-learn on
the seed curve, ensembles in threads, and the emulator (predict, input_grad, least_squares).

Moved out of nnfast/bench.py to keep both files short; nnfast.bench re-exports every name.
"""

from __future__ import annotations

import os

import numpy as np

from nnfast.bench import _fmt, best_alternating

SKLEARN_SOLVERS = ("adam", "lbfgs")


def seed_curve_fit(make_model):
    """A function fitting a fresh ``make_model()`` on the seed curve (200 points of
    y = sin(2x) on [-3, 3]); 200 iterations do not converge, so ConvergenceWarning is
    silenced."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    x = np.linspace(-3, 3, 200)[:, None]
    y = np.sin(2 * x).ravel()

    def fit():
        model = make_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(x, y)

    return fit


def sklearn_runner(library, solver):
    """A function fitting ``MLPRegressor(hidden_layer_sizes=(20, 20), activation="tanh",
    solver=solver, max_iter=200, random_state=0)`` on the seed curve with ``library``:
    "nnfast" (nnfast.sklearn) or "sklearn"."""
    if library == "nnfast":
        from nnfast.sklearn import MLPRegressor
    else:
        from sklearn.neural_network import MLPRegressor
    return seed_curve_fit(
        lambda: MLPRegressor(
            hidden_layer_sizes=(20, 20),
            activation="tanh",
            solver=solver,
            max_iter=200,
            random_state=0,
        )
    )


def time_sklearn(repeat) -> dict:
    """Best seconds per whole fit, {solver: {"nnfast": s, "sklearn": s}}, timed alternately."""
    return {
        solver: best_alternating(
            {lib: sklearn_runner(lib, solver) for lib in ("nnfast", "sklearn")}, repeat
        )
        for solver in SKLEARN_SOLVERS
    }


def ensemble_runner(n_jobs):
    """A function fitting ``MLPEnsembleRegressor`` of eight seed-sized members (the
    MLPRegressor of the sklearn row, solver adam) on the seed curve in ``n_jobs`` threads."""
    from nnfast.sklearn import MLPEnsembleRegressor, MLPRegressor

    member = MLPRegressor(hidden_layer_sizes=(20, 20), activation="tanh", max_iter=200)
    return seed_curve_fit(
        lambda: MLPEnsembleRegressor(member, n_estimators=8, n_jobs=n_jobs, random_state=0)
    )


def time_ensemble(repeat) -> dict:
    """Best seconds per ensemble fit, {n_jobs: s} for 1 and 2 threads, timed alternately."""
    return best_alternating({n_jobs: ensemble_runner(n_jobs) for n_jobs in (1, 2)}, repeat)


def print_sklearn_rows(repeat):
    """The drop-in row: nnfast.sklearn vs scikit-learn's MLPRegressor, same settings."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("\nscikit-learn not installed: no nnfast.sklearn row (pip install scikit-learn)")
        return
    print("\nMLPRegressor((20, 20), tanh, max_iter=200) on the seed curve (200 points), whole fit")
    print(f"{'solver':<8}{'nnfast':>12}{'sklearn':>12}{'speed-up':>10}")
    for solver, best in time_sklearn(repeat).items():
        print(
            f"{solver:<8}{_fmt(best['nnfast']):>12}{_fmt(best['sklearn']):>12}"
            f"{best['sklearn'] / best['nnfast']:>9.1f}x",
            flush=True,
        )
    best = time_ensemble(repeat)
    print(
        f"MLPEnsembleRegressor, 8 such members (adam), n_jobs=1 vs n_jobs=2: "
        f"{_fmt(best[1]).strip()} vs {_fmt(best[2]).strip()} = {best[2] / best[1]:.2f}x "
        f"the serial time ({os.cpu_count()} cores)",
        flush=True,
    )


def emulator_runners():
    """The emulator workflow (issue 14): ``MLP([5, 128, 128, 500], activation="tanh")``,
    float64, from 5 labels to a 500-pixel spectrum. Zero-argument callables keyed by case:
    predict and input_grad of 1 spectrum (a 1-D label vector) and of 64, and
    ``scipy.optimize.least_squares`` recovering the labels of one noisy spectrum from a
    start off by 0.3 in each label, with ``jac`` the network's Jacobian and with
    ``jac="2-point"`` (these two return their ``OptimizeResult``)."""
    from scipy.optimize import least_squares

    from nnfast import MLP

    net = MLP([5, 128, 128, 500], activation="tanh", seed=0)
    rng = np.random.default_rng(0)
    labels = rng.uniform(-0.5, 0.5, size=(64, 5))
    truth = labels[0]
    spectrum = net.predict(truth) + rng.normal(0.0, 0.01, size=500)
    start = truth + 0.3

    def residuals(theta):
        return net.predict(theta) - spectrum

    return {
        "predict, 1 spectrum": lambda: net.predict(truth),
        "input_grad, 1 spectrum": lambda: net.input_grad(truth),
        "predict, 64 spectra": lambda: net.predict(labels),
        "input_grad, 64 spectra": lambda: net.input_grad(labels),
        "least_squares, jac=input_grad": lambda: least_squares(
            residuals, start, jac=net.input_grad
        ),
        "least_squares, jac=2-point": lambda: least_squares(residuals, start, jac="2-point"),
    }


def print_emulator_rows(repeat):
    """input_grad against predict on the emulator (targets: at most 3x for one spectrum and
    4x for 64), and least_squares with the Jacobian against "2-point" (target: faster, to
    the same solution)."""
    runners = emulator_runners()
    jacobians = ("input_grad", "2-point")
    best = best_alternating(runners, repeat, calls=20)
    print(
        "\nemulator MLP([5, 128, 128, 500], tanh), float64: the Jacobian (forward mode) "
        "against predict"
    )
    for count, target in (("1 spectrum", 3), ("64 spectra", 4)):
        predict, jacobian = best[f"predict, {count}"], best[f"input_grad, {count}"]
        print(
            f"{count:<12}predict {_fmt(predict)}  input_grad {_fmt(jacobian)}  "
            f"{jacobian / predict:5.2f}x (target <= {target}x)"
        )
    exact, finite = (runners[f"least_squares, jac={jac}"]() for jac in jacobians)
    with_jac, two_point = (best[f"least_squares, jac={jac}"] for jac in jacobians)
    print(
        f"least_squares, 5 labels of one noisy spectrum: jac=input_grad "
        f"{_fmt(with_jac).strip()} ({exact.nfev} evaluations, {exact.njev} Jacobians) vs "
        f"jac='2-point' {_fmt(two_point).strip()} ({finite.nfev} evaluations): "
        f"{two_point / with_jac:.2f}x faster; the labels found differ by "
        f"{np.abs(exact.x - finite.x).max():.1e} at most",
        flush=True,
    )
