"""pytest-benchmark: nnfast's thread scaling, the cases of the scaling table that
``python -m nnfast bench`` prints (``--threads-only`` prints only the thread tables): wide
and tabular training epochs, predict on 10⁶ rows, loss_and_grad on 20,000 rows and the seed
network at batch 32, each with ``n_threads = 1, 2, … every allowed core`` and None.

Run with ``python -m pytest benchmarks/test_threads.py --benchmark-group-by=group``: one
group per case, the thread counts side by side. These timings never fail a test. The other
benchmark modules pin the BLAS and OpenMP pools to one thread when they are collected; a
fixture lifts the pin for this module (``n_threads=None`` reads the OpenMP limit; an int
does not).
"""

import os

import pytest

import nnfast.bench  # noqa: F401 (first: nnfast._bench_threads imports from it)
from nnfast import _bench_threads, bench

# Epochs per round: a round of the seed case takes a few ms at least.
EPOCHS_PER_ROUND = {"seed": 20, "tabular": 1, "wide": 1}
THREADS = [*_bench_threads.thread_counts(), None]
CASES = [
    pytest.param(case, id=f"{case.label}-{case.kind}-{case.dtype}")
    for case in _bench_threads.SCALING_CASES
]


@pytest.fixture(scope="module", autouse=True)
def every_allowed_core():
    saved = {var: os.environ.pop(var, None) for var in bench.PINNED_VARIABLES}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = None
    else:
        limits = threadpool_limits(limits=_bench_threads.allowed_cores(), user_api="openmp")
    yield
    if limits is not None:
        limits.restore_original_limits()
    for var, value in saved.items():
        if value is not None:
            os.environ[var] = value


@pytest.mark.parametrize("n_threads", THREADS, ids=lambda n: f"threads-{n}")
@pytest.mark.parametrize("case", CASES)
def test_scaling(benchmark, case, n_threads):
    name = f"{case.label} {'-'.join(map(str, case.sizes))} {case.dtype}"
    if case.kind == "fit":
        epochs = EPOCHS_PER_ROUND[case.label]
        run = bench.epoch_runner(
            "nnfast", list(case.sizes), case.rows, case.batch, case.dtype, None, n_threads
        )
        benchmark.group = f"{name} batch {case.batch}, {epochs} epochs per round"
        benchmark.pedantic(run, args=(epochs,), rounds=5, warmup_rounds=1)
    else:
        benchmark.group = f"{case.kind} {name}, {case.rows} rows"
        benchmark.pedantic(_bench_threads.call_runner(case, n_threads), rounds=5, warmup_rounds=1)
    benchmark.extra_info["n_threads"] = n_threads
