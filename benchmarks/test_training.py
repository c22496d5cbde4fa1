"""pytest-benchmark: one training epoch of nnfast, NumPy (nnfast.reference) and PyTorch.

Run with ``python -m pytest benchmarks/ --benchmark-group-by=param:case`` (one thread: the
BLAS and OpenMP pools are pinned to one thread below). The same cases as
``python -m nnfast bench``; these timings never fail a test.
"""

import pytest

from nnfast import bench

bench.pin_threads(1)
torch = bench._torch()

LIBRARIES = ["nnfast", "numpy"] + (["torch"] if torch is not None else [])
CASES = [
    pytest.param(sizes, n, batch, id=f"{name}-b{'full' if batch is None else batch}")
    for name, sizes, n, batches in bench.CASES
    for batch in batches
]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, n, batch", CASES)
def test_epoch(benchmark, sizes, n, batch, dtype, library):
    run_epochs = bench.epoch_runner(library, sizes, n, batch, dtype, torch)
    benchmark.group = f"{sizes} n={n} batch={batch} {dtype}"
    benchmark.pedantic(run_epochs, args=(1,), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("library", ["nnfast", "numpy"])
@pytest.mark.parametrize("rows", [1, 1_000_000])
def test_predict(benchmark, rows, library):
    predict = bench.predict_runner(library, rows)
    benchmark.group = f"predict seed network, {rows} rows"
    benchmark.pedantic(predict, rounds=5 if rows > 1 else 200, warmup_rounds=1)
