"""
The seed network: fitting a noisy curve, nnfast against NumPy
=============================================================

The classic small network of curve fitting — one input, two hidden layers of 20 ``tanh``
units, one output; 481 parameters — trained on 200 noisy samples of a curve. The same
network is trained twice from the same initial weights and the same shuffles: by nnfast's
compiled training loop (:class:`nnfast.MLP`) and by the same arithmetic written in plain
NumPy (:class:`nnfast.reference.MLP`, the oracle nnfast's tests hold it against). Both
reach the same fit, to rounding; nnfast gets there many times faster.

Run on its own with ``python examples/seed_fit.py``.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import nnfast
from nnfast import reference

# %%
# The data: 200 points of :math:`y = \sin(2x) + 0.3\,x` with Gaussian noise of standard
# deviation 0.1, on :math:`x \in [-3, 3]`.

rng = np.random.default_rng(0)
x = np.sort(rng.uniform(-3, 3, 200))[:, None]


def curve(x):
    return np.sin(2 * x) + 0.3 * x


y = curve(x) + 0.1 * rng.normal(size=x.shape)

# %%
# Two networks with the same structure and the same seed: nnfast and the NumPy reference
# draw the same initial weights into the same flat layout.

net = nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=0)
ref = reference.MLP([1, 20, 20, 1], activation="tanh", seed=0)
print(net)
print(
    f"{net.n_params} parameters; identical initial weights: "
    f"{np.array_equal(net.params, ref.params)}"
)

# %%
# Train both: Adam, learning rate 0.01, batches of 32 in a shuffled order, 300 epochs, the
# mean squared error. The shuffles come from each network's seeded generator, so both see
# the same batches in the same order.

settings = {"loss": "mse", "optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 300}

started = time.perf_counter()
history = net.fit(x, y, **settings)
nnfast_seconds = time.perf_counter() - started

started = time.perf_counter()
ref_history = ref.fit(x, y, **settings)
numpy_seconds = time.perf_counter() - started

print(f"nnfast: {nnfast_seconds * 1e3:7.1f} ms, final training MSE {history.loss[-1]:.5f}")
print(f"NumPy:  {numpy_seconds * 1e3:7.1f} ms, final training MSE {ref_history.loss[-1]:.5f}")
print(f"nnfast is {numpy_seconds / nnfast_seconds:.0f}x faster on this machine")

# %%
# The two fits agree to rounding: training is chaotic enough to amplify the last bits of
# floating-point differences over 300 epochs, but not to a visible difference.

grid = np.linspace(-3, 3, 400)[:, None]
difference = np.max(np.abs(net.predict(grid) - ref.predict(grid)))
print(f"largest difference between the two fitted curves: {difference:.1e}")
print(
    f"MSE against the noise-free curve: "
    f"{np.mean((net.predict(grid) - curve(grid)) ** 2):.5f} (noise variance 0.01)"
)

fig, (ax_fit, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
ax_fit.scatter(x[:, 0], y[:, 0], s=8, color="0.6", label="data")
ax_fit.plot(grid[:, 0], curve(grid[:, 0]), "k--", lw=1, label="true curve")
ax_fit.plot(grid[:, 0], net.predict(grid)[:, 0], color="C0", lw=2, label="nnfast")
ax_fit.plot(grid[:, 0], ref.predict(grid)[:, 0], color="C1", lw=1, ls=":", label="NumPy reference")
ax_fit.set_xlabel("x")
ax_fit.set_ylabel("y")
ax_fit.legend()
history.plot(ax=ax_loss)
ax_loss.plot(
    range(1, ref_history.epochs + 1), ref_history.loss, color="C1", ls=":", label="NumPy reference"
)
ax_loss.legend(["nnfast", "NumPy reference"])
fig.tight_layout()
plt.show()
