"""Every code path of the matrix products (portable, AVX2, AVX-512) gives correct products,
computes each element independently of the other rows and columns, and trains the same
networks.

The path is chosen once per process (NNF_GEMM_ISA lowers it), so each path runs in a child
process; the CPU's best path also runs in this one through every other test.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nnfast import _kernels

PATHS = ("baseline", "avx2", "avx512")
RANK = {name: i for i, name in enumerate(PATHS)}

CHILD = textwrap.dedent("""
    import json
    import numpy as np
    from nnfast import _kernels, kernels, reference, MLP

    rng = np.random.default_rng(0)
    worst = 0.0
    shapes = [(1, 1, 1), (1, 20, 20), (3, 17, 65), (9, 5, 2), (32, 1, 20), (32, 20, 1),
              (32, 20, 20), (33, 64, 3), (65, 17, 65), (128, 784, 10), (256, 64, 64)]
    for dtype in (np.float64, np.float32):
        eps = np.finfo(dtype).eps
        for m, k, n in shapes:
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            exact = A.astype(np.float64) @ B.astype(np.float64)
            bound = 2 * k * eps * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
            err = np.abs(kernels.matmul(A, B) - exact)
            worst = max(worst, float((err / bound).max()))
    # Every element is one ordered chain of multiply-adds: a row's result does not depend on
    # the other rows, their number or its position (nor a column's on the other columns).
    order_independent = True
    for dtype in (np.float64, np.float32):
        for m, k, n in [(9, 5, 2), (9, 20, 20), (9, 20, 1), (13, 64, 3), (33, 17, 65),
                        (3, 300, 7)]:
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            C = kernels.matmul(A, B)
            same = np.array_equal(kernels.matmul(A[::-1], B)[::-1], C)
            same &= all(np.array_equal(kernels.matmul(A[i:i + 1], B)[0], C[i]) for i in range(m))
            same &= all(np.array_equal(kernels.matmul(A, B[:, j:j + 1])[:, 0], C[:, j])
                        for j in range(n))
            order_independent &= bool(same)
    # A network trained on this path matches the NumPy reference.
    X = rng.uniform(-1, 1, size=(50, 3))
    y = np.tanh(X @ rng.standard_normal((3, 2)))
    net = MLP([3, 17, 5, 2], activation="tanh", seed=1)
    ref = reference.MLP([3, 17, 5, 2], activation="tanh", seed=1)
    settings = dict(optimizer="adam", lr=0.01, batch_size=7, epochs=5, shuffle=False)
    net.fit(X, y, **settings)
    ref.fit(X, y, **settings)
    fit_err = float(np.max(np.abs(net.params - ref.params)))
    print(json.dumps({"path": _kernels.gemm_path(), "worst": worst, "fit_err": fit_err,
                      "order_independent": order_independent}))
""")


@pytest.mark.parametrize("path", PATHS)
def test_each_path_computes_correct_products_and_trains_like_the_reference(path):
    best = _kernels.gemm_path()
    if RANK[path] > RANK[best]:
        pytest.skip(f"CPU lacks {path} (best path here: {best})")
    env = dict(os.environ, NNF_GEMM_ISA=path)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["path"] == path
    assert result["worst"] <= 1.0  # within the rigorous rounding bound 2 k eps |A||B|
    assert result["fit_err"] < 1e-9
    assert result["order_independent"]
