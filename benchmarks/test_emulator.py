"""pytest-benchmark: the emulator workflow, MLP([5, 128, 128, 500], tanh) from 5 labels to
a 500-pixel spectrum, float64, one thread.

- ``input_grad`` (forward mode) against ``predict`` of 1 and of 64 spectra (targets: at most
  3x and 4x the time of predict);
- ``scipy.optimize.least_squares`` recovering the labels of one noisy spectrum with
  ``jac=net.input_grad`` against ``jac="2-point"`` (target: faster, to the same labels).

The same cases as the emulator rows of ``python -m nnfast bench``; run with
``python -m pytest benchmarks/test_emulator.py``. These timings never fail a test.
"""

import numpy as np
import pytest

from nnfast import bench

bench.pin_threads(1)
RUNNERS = bench.emulator_runners()


@pytest.mark.parametrize("call", ["predict", "input_grad"])
@pytest.mark.parametrize("count", ["1 spectrum", "64 spectra"])
def test_jacobian_against_predict(benchmark, count, call):
    benchmark.group = f"emulator, {count}"
    benchmark.pedantic(RUNNERS[f"{call}, {count}"], rounds=50, iterations=10, warmup_rounds=1)


@pytest.mark.parametrize("jac", ["input_grad", "2-point"])
def test_least_squares(benchmark, jac):
    benchmark.group = "emulator, least_squares on one noisy spectrum"
    result = benchmark.pedantic(RUNNERS[f"least_squares, jac={jac}"], rounds=20, warmup_rounds=1)
    assert result.success  # a benchmark of a fit that failed would time the wrong thing
    other = RUNNERS[
        "least_squares, jac=2-point" if jac == "input_grad" else "least_squares, jac=input_grad"
    ]()
    np.testing.assert_allclose(result.x, other.x, atol=1e-6)
