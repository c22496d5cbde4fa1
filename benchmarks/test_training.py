"""pytest-benchmark: training epochs of nnfast, NumPy (nnfast.reference), PyTorch and JAX.

Run with ``python -m pytest benchmarks/ --benchmark-group-by=param:case`` (one thread: the
BLAS and OpenMP pools are pinned to one thread below). The same cases as
``python -m nnfast bench``; these timings never fail a test.

JAX (when installed) runs in a child process pinned to one CPU with ``NPROC=1``
(nnfast._bench_jax.JaxPeer); each round asks it for ``EPOCHS_PER_ROUND`` epochs of one
variant, so that the pipe's round trip (tens of µs) is well under 1% of a round. Every
library runs the same number of epochs per round.
"""

import pytest

from nnfast import _bench_jax, bench

bench.pin_threads(1)
torch = bench._torch()
JAX_SKIP = _bench_jax.jax_missing_reason()
JAX = None if JAX_SKIP else _bench_jax.JaxPeer(one_core=True)

LIBRARIES = (
    ["nnfast", "numpy"]
    + (["torch"] if torch is not None else [])
    + [
        pytest.param(f"jax {v}", marks=pytest.mark.skipif(JAX is None, reason=str(JAX_SKIP)))
        for v in _bench_jax.VARIANTS
    ]
)
# Epochs per round: a round of the seed cases takes a few ms at least.
EPOCHS_PER_ROUND = {"seed": 20, "tabular": 1, "wide": 1}
CASES = [
    pytest.param(
        sizes, n, batch, EPOCHS_PER_ROUND[name], id=f"{name}-b{'full' if batch is None else batch}"
    )
    for name, sizes, n, batches in bench.CASES
    for batch in batches
]


def teardown_module():
    if JAX is not None:
        JAX.close()


def runner(library, sizes, n, batch, dtype):
    if library.startswith("jax "):
        return JAX.runner(sizes, n, batch, dtype, library[len("jax ") :])
    return bench.epoch_runner(library, sizes, n, batch, dtype, torch)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, n, batch, epochs", CASES)
def test_epoch(benchmark, sizes, n, batch, epochs, dtype, library):
    run_epochs = runner(library, sizes, n, batch, dtype)
    benchmark.group = f"{sizes} n={n} batch={batch} {dtype}, {epochs} epochs per round"
    benchmark.pedantic(run_epochs, args=(epochs,), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("library", ["nnfast", "numpy"])
@pytest.mark.parametrize("rows", [1, 1_000_000])
def test_predict(benchmark, rows, library):
    predict = bench.predict_runner(library, rows)
    benchmark.group = f"predict seed network, {rows} rows"
    benchmark.pedantic(predict, rounds=5 if rows > 1 else 200, warmup_rounds=1)


@pytest.mark.skipif(JAX is None, reason=str(JAX_SKIP))
@pytest.mark.parametrize("rows", [1, 1_000_000])
def test_predict_jax(benchmark, rows):
    """The child times its own calls (a pipe round trip would dwarf one sample's latency);
    pytest-benchmark times a batch of them, and extra_info holds the child's seconds per
    call."""
    calls = 2000 if rows == 1 else 1
    seconds = []
    benchmark.group = f"predict seed network, {rows} rows"
    benchmark.extra_info["calls per round"] = calls
    benchmark.pedantic(
        lambda: seconds.append(JAX.predict_seconds(rows, calls)), rounds=5, warmup_rounds=1
    )
    benchmark.extra_info["child seconds per call, best"] = min(seconds)
