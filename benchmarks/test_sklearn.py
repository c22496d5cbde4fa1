"""pytest-benchmark: nnfast.sklearn against scikit-learn's MLPRegressor on the seed curve.

``MLPRegressor(hidden_layer_sizes=(20, 20), activation="tanh", solver=..., max_iter=200)``
fitted on 200 points of y = sin(2x), one thread; the same row ``python -m nnfast bench``
prints at the end. These timings never fail a test.
"""

import pytest

from nnfast import bench

pytest.importorskip("sklearn", reason="the comparison needs scikit-learn")
bench.pin_threads(1)


@pytest.mark.parametrize("library", ["nnfast", "sklearn"])
@pytest.mark.parametrize("solver", bench.SKLEARN_SOLVERS)
def test_mlp_regressor_fit(benchmark, solver, library):
    fit = bench.sklearn_runner(library, solver)
    benchmark.group = f"MLPRegressor seed curve, solver={solver}"
    benchmark.pedantic(fit, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ensemble_fit(benchmark, n_jobs):
    """Eight seed-sized members in one or two threads (the epochs run without the GIL)."""
    fit = bench.ensemble_runner(n_jobs)
    benchmark.group = "MLPEnsembleRegressor, 8 seed-sized members"
    benchmark.pedantic(fit, rounds=5, warmup_rounds=1)
