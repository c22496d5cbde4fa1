"""pytest-benchmark: nnfast's compiled L-BFGS (issue 13), the rows ``python -m nnfast bench``
prints under "L-BFGS": the seed-curve MLPRegressor and digits MLPClassifier against
scikit-learn, MLP.fit(optimizer="lbfgs") alone and beside a busy Python thread, and an
ensemble of 8 lbfgs members in one and two threads. These timings never fail a test.
"""

import pytest

from nnfast import _bench_lbfgs, bench

pytest.importorskip("sklearn", reason="the comparisons need scikit-learn")
bench.pin_threads(1)


@pytest.mark.parametrize("library", ["nnfast", "sklearn"])
def test_seed_curve_lbfgs(benchmark, library):
    fit = _bench_lbfgs.seed_curve_runners()[library]
    benchmark.group = "MLPRegressor((20, 20), tanh, lbfgs, max_iter=200), seed curve"
    benchmark.pedantic(fit, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("library", ["nnfast", "sklearn"])
def test_digits_lbfgs(benchmark, library):
    fit = _bench_lbfgs.digits_runners(_bench_lbfgs.digits_data())[library]
    benchmark.group = "MLPClassifier((64,), relu, lbfgs, max_iter=300), digits"
    benchmark.pedantic(fit, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("beside", ["alone", "busy thread"])
def test_mlp_fit_lbfgs_beside_a_busy_thread(benchmark, beside):
    fit = _bench_lbfgs.mlp_fit_runner()

    def run():
        if beside == "alone":
            return fit()
        with _bench_lbfgs.BusyThread():
            return fit()

    benchmark.group = "MLP.fit(optimizer='lbfgs') beside a busy Python thread"
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_lbfgs_ensemble(benchmark, n_jobs):
    fit = _bench_lbfgs.ensemble_runners()[n_jobs]
    benchmark.group = "MLPEnsembleRegressor, 8 lbfgs members"
    benchmark.pedantic(fit, rounds=5, warmup_rounds=1)
