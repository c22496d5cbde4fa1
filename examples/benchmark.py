"""
How fast: nnfast against NumPy on the seed network
==================================================

Times the training and the prediction of the 1→20→20→1 ``tanh`` network (481 parameters)
on 200 samples, in nnfast and in the same arithmetic written in NumPy
(:mod:`nnfast.reference`, what a careful NumPy programmer would write). Both start from
the same weights and take the same steps: plain SGD, learning rate 1e-4, no shuffling,
the mean squared error. Each number is the best of 5 runs, timed alternately in this
process, with NumPy's BLAS held to one thread (nnfast trains on one thread too).

For networks this small, NumPy's time goes to the overhead of its calls, not to
arithmetic: each batch costs a few dozen NumPy calls of a few microseconds each. nnfast
runs a whole epoch in one compiled loop. The larger the batch, the more arithmetic per
call, and the smaller the gap. The numbers below were measured on the machine that built
this page; ``python -m nnfast bench`` runs a fuller comparison (wider networks, PyTorch).

Run on its own with ``python examples/benchmark.py``.
"""

import contextlib
import time

import matplotlib.pyplot as plt
import numpy as np

import nnfast
from nnfast import reference

try:  # installed with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # time NumPy with whatever threads its BLAS uses

    def threadpool_limits(limits):
        return contextlib.nullcontext()

# %%
# The task and the timer
# ----------------------

x = np.linspace(-3, 3, 200)[:, None]
y = np.sin(2 * x)
# Batch size -> epochs per timed fit (about the same work for each).
BATCHES = {1: 3, 32: 30, 200: 100}
REPEATS = 5


def seconds(function):
    """Wall-clock time of one call of ``function()``."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def best_time(function, repeats=REPEATS):
    """The shortest of ``repeats`` wall-clock times of ``function()``, in seconds."""
    return min(seconds(function) for _ in range(repeats))


def epoch_times(dtype, batch_size, epochs):
    """Seconds per epoch for nnfast and NumPy, fitted alternately from the same weights."""
    net = nnfast.MLP([1, 20, 20, 1], activation="tanh", dtype=dtype, seed=0)
    ref = reference.MLP([1, 20, 20, 1], activation="tanh", dtype=dtype, seed=0)
    settings = {
        "optimizer": "sgd",
        "lr": 1e-4,
        "momentum": 0.0,
        "batch_size": batch_size,
        "epochs": epochs,
        "shuffle": False,
    }
    nnfast_times, numpy_times = [], []
    for _ in range(REPEATS):
        nnfast_times.append(seconds(lambda: net.fit(x, y, **settings)))
        numpy_times.append(seconds(lambda: ref.fit(x, y, **settings)))
    # The same steps from the same weights: the same network, to rounding.
    assert np.allclose(net.params, ref.params, rtol=1e-3, atol=1e-5)
    return min(nnfast_times) / epochs, min(numpy_times) / epochs


# %%
# Training
# --------

rows = []
with threadpool_limits(1):
    for dtype in ("float64", "float32"):
        for batch_size, epochs in BATCHES.items():
            nnfast_seconds, numpy_seconds = epoch_times(dtype, batch_size, epochs)
            rows.append((dtype, batch_size, nnfast_seconds, numpy_seconds))

print("per-epoch training time, seed network, 200 samples, SGD")
print(f"{'dtype':8} {'batch':>5} {'nnfast':>10} {'NumPy':>10} {'speed-up':>9}")
for dtype, batch_size, nnfast_seconds, numpy_seconds in rows:
    print(
        f"{dtype:8} {batch_size:5d} {nnfast_seconds * 1e6:8.1f} µs "
        f"{numpy_seconds * 1e6:8.1f} µs {numpy_seconds / nnfast_seconds:8.1f}x"
    )

# %%
# Prediction
# ----------
# One sample (the cost of a call) and 100,000 samples (the cost of the arithmetic).

net = nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=0)
ref = reference.MLP([1, 20, 20, 1], activation="tanh", seed=0)
one, many = x[:1], np.linspace(-3, 3, 100_000)[:, None]
with threadpool_limits(1):
    predictions = [
        (
            "1 sample",
            best_time(lambda: net.predict(one), 200),
            best_time(lambda: ref.predict(one), 200),
        ),
        (
            "100,000 samples",
            best_time(lambda: net.predict(many)),
            best_time(lambda: ref.predict(many)),
        ),
    ]
assert np.allclose(net.predict(many), ref.predict(many))
for label, nnfast_seconds, numpy_seconds in predictions:
    print(
        f"predict, {label:>15}: nnfast {nnfast_seconds * 1e6:9.1f} µs, NumPy "
        f"{numpy_seconds * 1e6:9.1f} µs, {numpy_seconds / nnfast_seconds:5.1f}x"
    )

# %%
# The training times side by side (a logarithmic scale: each step up is 10 times slower).

fig, ax = plt.subplots(figsize=(8, 4))
labels = [f"{dtype}\nbatch {batch}" for dtype, batch, _, _ in rows]
positions = np.arange(len(rows))
ax.bar(positions - 0.2, [r[2] * 1e6 for r in rows], width=0.4, label="nnfast")
ax.bar(positions + 0.2, [r[3] * 1e6 for r in rows], width=0.4, label="NumPy reference")
for position, (_, _, nnfast_seconds, numpy_seconds) in zip(positions, rows):
    ax.annotate(
        f"{numpy_seconds / nnfast_seconds:.0f}x",
        (position, numpy_seconds * 1e6),
        ha="center",
        va="bottom",
        fontsize=9,
    )
ax.set_yscale("log")
ax.set_xticks(positions, labels, fontsize=8)
ax.set_ylabel("time per epoch (µs)")
ax.set_title("training the 481-parameter network on 200 samples, one thread")
ax.legend()
fig.tight_layout()
plt.show()
