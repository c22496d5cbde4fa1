"""Smoke test of an installed nnfast (a wheel, or pip install .): run from outside the source
tree, it checks that the installed package is complete and that a tiny network trains.

Used by .ci/build and by cibuildwheel's test-command (pyproject.toml) on every wheel.
"""

import importlib
import sys
from pathlib import Path

import numpy as np

import nnfast

package = Path(nnfast.__file__).resolve().parent
print(f"nnfast {nnfast.__version__} from {package}")
if (package / "_kernels.pyx").exists():
    sys.exit(f"nnfast was imported from a source tree ({package}), not from an installed copy")

# What the wheel must carry besides the Python modules: every compiled module (each has a
# .pyi stub), the marker that the package is typed, and the .pxd files and C headers that
# let other Cython code cimport the kernels (API.md).
compiled = sorted(stub.stem for stub in package.glob("_*.pyi"))
missing = [] if {"_blas", "_kernels", "_network", "_train"} <= set(compiled) else ["stubs"]
for name in compiled:
    if not list(package.glob(f"{name}.*.so")) + list(package.glob(f"{name}.*.pyd")):
        missing.append(f"{name}'s compiled module")
    else:
        importlib.import_module(f"nnfast.{name}")
missing += [
    f"{name}.pxd"
    for name in ("_blas", "_kernels", "_network")
    if not (package / f"{name}.pxd").is_file()
]
missing += [] if (package / "py.typed").is_file() else ["py.typed"]
missing += [] if list((package / "src").glob("*.h")) else ["src/*.h"]
if missing:
    sys.exit(f"the installed package lacks {missing}")
print(f"compiled modules: {', '.join(compiled)}")
leftovers = [path.name for path in package.rglob("*") if path.suffix in (".c", ".pyx")]
if leftovers:
    sys.exit(f"the installed package carries build sources {leftovers}")

# The seed network on a smaller curve: it must learn it, in float64 and float32.
x = np.linspace(-3, 3, 64)[:, None]
y = np.sin(x)
for dtype in (np.float64, np.float32):
    net = nnfast.MLP([1, 16, 1], activation="tanh", seed=0, dtype=dtype)
    before = net.loss(x, y)
    history = net.fit(x, y, optimizer="adam", lr=0.02, batch_size=16, epochs=200)
    prediction = net.predict(x)
    after = net.loss(x, y)
    print(f"{np.dtype(dtype).name}: loss {before:.3g} -> {after:.3g} in {len(history.loss)} epochs")
    if prediction.shape != (64, 1) or not np.all(np.isfinite(prediction)):
        sys.exit(f"predict returned {prediction.shape} {prediction.dtype}, expected (64, 1) finite")
    if not after < 0.05 * before:
        sys.exit(f"{np.dtype(dtype).name}: the loss fell only from {before} to {after}")

try:
    from nnfast.sklearn import MLPRegressor
except ImportError as error:  # scikit-learn is optional
    print(f"nnfast.sklearn not tried: {error}")
else:
    model = MLPRegressor(
        hidden_layer_sizes=(16,), activation="tanh", solver="lbfgs", max_iter=500, random_state=0
    ).fit(x, y.ravel())
    score = model.score(x, y.ravel())
    print(f"nnfast.sklearn.MLPRegressor: R² {score:.4f}")
    if not score > 0.99:
        sys.exit(f"MLPRegressor reached R² {score} only")
print("smoke test passed")
