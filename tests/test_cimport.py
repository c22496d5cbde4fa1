"""Other Cython code can cimport nnfast's kernels through the shipped .pxd files (API.md)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnfast

pytest.importorskip("Cython", reason="compiling a Cython module needs Cython (test extra)")

SOURCE = textwrap.dedent("""
    # cython: language_level=3
    from nnfast._kernels cimport matmul, tanh_forward, tanh_backward

    def tanh_layer(double[:, ::1] out, const double[:, ::1] X, const double[:, ::1] W):
        matmul(&out[0, 0], &X[0, 0], &W[0, 0], X.shape[0], X.shape[1], W.shape[1], False)
        tanh_forward(&out[0, 0], &out[0, 0], out.shape[0] * out.shape[1])

    def tanh_grad(double[::1] dZ, const double[::1] A, const double[::1] dA):
        tanh_backward(&dZ[0], &A[0], &dA[0], A.shape[0])
""")

SETUP = textwrap.dedent("""
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    import nnfast, os
    root = os.path.dirname(os.path.dirname(nnfast.__file__))
    setup(ext_modules=cythonize([Extension("user_kernels", ["user_kernels.pyx"])],
                                include_path=[root], quiet=True),
          script_args=["build_ext", "--inplace"])
""")


def test_a_cython_module_cimports_and_runs_the_kernels(tmp_path):
    (tmp_path / "user_kernels.pyx").write_text(SOURCE)
    (tmp_path / "setup.py").write_text(SETUP)
    env = dict(os.environ, PYTHONPATH=str(Path(nnfast.__file__).resolve().parents[1]))
    build = subprocess.run(
        [sys.executable, "setup.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        import user_kernels
    finally:
        sys.path.remove(str(tmp_path))
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((17, 3)), rng.standard_normal((3, 5))
    out = np.empty((17, 5))
    user_kernels.tanh_layer(out, X, W)
    np.testing.assert_allclose(out, np.tanh(X @ W), rtol=1e-14, atol=1e-15)
    dA = rng.standard_normal(85)
    dZ = np.empty(85)
    user_kernels.tanh_grad(dZ, out.ravel(), dA)
    np.testing.assert_allclose(dZ, dA * (1 - out.ravel() ** 2), rtol=1e-15)
    assert Path(nnfast.__file__).with_name("_kernels.pxd").exists()
