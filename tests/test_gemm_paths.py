"""Every code path of the matrix products (baseline, AVX2, AVX-512 planned for 512-bit units
and for 256-bit ones, conftest's PRODUCT_PATHS) gives correct products,
computes each element independently of the other rows and columns, and trains the same
networks; the AVX2 and AVX-512 paths agree bit for bit, products and whole trainings alike.

Each path is chosen in this process with nnfast.kernels.set_simd_path (through conftest's
``simd_path``); a path this CPU lacks is skipped ("CPU lacks ..."). The CPU's best path also
runs every other test. tests/test_simd_paths.py tests the choosing itself.
"""

import numpy as np
import pytest
from conftest import AVX512_ON_256, PRODUCT_PATHS, simd_path

from nnfast import MLP, kernels, reference

SHAPES = [
    (1, 1, 1),
    (1, 20, 20),
    (3, 17, 65),
    (9, 5, 2),
    (32, 1, 20),
    (32, 20, 1),
    (32, 20, 20),
    (33, 64, 3),
    (65, 17, 65),
    (128, 784, 10),
    (256, 64, 64),
    (1, 300, 200),
    (40, 512, 37),
    (300, 1000, 5),
]
ORDER_SHAPES = [(9, 5, 2), (9, 20, 20), (9, 20, 1), (13, 64, 3), (33, 17, 65), (3, 300, 7)]


@pytest.fixture(params=PRODUCT_PATHS)
def path(request):
    with simd_path(request.param, "products"):
        yield request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_products_are_within_the_rounding_bound(path, dtype):
    rng = np.random.default_rng(0)
    eps = np.finfo(dtype).eps
    for m, k, n in SHAPES:
        A = rng.standard_normal((m, k)).astype(dtype)
        B = rng.standard_normal((k, n)).astype(dtype)
        exact = A.astype(np.float64) @ B.astype(np.float64)
        bound = 2 * k * eps * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
        err = np.abs(kernels.matmul(A, B) - exact)
        assert (err <= bound).all(), (path, m, k, n, float((err / bound).max()))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_element_is_computed_independently(path, dtype):
    """One ordered chain of multiply-adds per element: a row's result does not depend on the
    other rows, their number or its position (nor a column's on the other columns)."""
    rng = np.random.default_rng(1)
    for m, k, n in ORDER_SHAPES:
        A = rng.standard_normal((m, k)).astype(dtype)
        B = rng.standard_normal((k, n)).astype(dtype)
        C = kernels.matmul(A, B)
        assert np.array_equal(kernels.matmul(A[::-1], B)[::-1], C), (m, k, n)
        for i in range(m):
            assert np.array_equal(kernels.matmul(A[i : i + 1], B)[0], C[i]), (m, k, n, i)
        for j in range(n):
            assert np.array_equal(kernels.matmul(A, B[:, j : j + 1])[:, 0], C[:, j]), (m, k, n, j)


def test_a_network_trains_like_the_reference(path):
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(50, 3))
    y = np.tanh(X @ rng.standard_normal((3, 2)))
    net = MLP([3, 17, 5, 2], activation="tanh", seed=1)
    ref = reference.MLP([3, 17, 5, 2], activation="tanh", seed=1)
    settings = dict(optimizer="adam", lr=0.01, batch_size=7, epochs=5, shuffle=False)
    net.fit(X, y, **settings)
    ref.fit(X, y, **settings)
    assert np.max(np.abs(net.params - ref.params)) < 1e-9


def _results_on(name):
    """Products, activations and a few trainings of both dtypes on the path ``name``."""
    rng = np.random.default_rng(3)
    results = []
    with simd_path(name, "products"):
        for dtype in (np.float64, np.float32):
            for m, k, n in SHAPES:
                A = rng.standard_normal((m, k)).astype(dtype)
                B = rng.standard_normal((k, n)).astype(dtype)
                results.append(kernels.matmul(A, B))
            Z = (rng.standard_normal((37, 24)) * 4).astype(dtype)
            dA = rng.standard_normal(Z.shape).astype(dtype)
            for act in ("tanh", "sigmoid", "elu", "softmax", "exp"):
                A = kernels.activation_forward(act, Z)
                results += [A, kernels.activation_backward(act, Z, A, dA)]
            X = rng.uniform(-1, 1, size=(203, 3))
            y = np.sin(X @ [[1.0], [2.0], [-1.0]])
            for optimizer in ("sgd", "adam", "lbfgs"):
                net = MLP([3, 20, 17, 1], activation="tanh", dtype=dtype.__name__, seed=3)
                net.fit(X, y, optimizer=optimizer, epochs=5, batch_size=32)
                results += [net.params, net.predict(X), net.input_grad(X[:5])]
    return results


@pytest.mark.parametrize("avx512", ["avx512", AVX512_ON_256])
def test_avx2_and_avx512_paths_agree_bit_for_bit(avx512):
    """Both use FMA and the same order of operations in every kernel family, so products,
    activations and whole trainings are identical (the baseline path, without FMA, is not),
    whether the AVX-512 products are planned for 512-bit units or for 256-bit ones (where
    narrow rows run kernels in 256-bit vectors)."""
    on_avx512 = _results_on(avx512)
    on_avx2 = _results_on("avx2")
    assert len(on_avx2) == len(on_avx512)
    for i, (a, b) in enumerate(zip(on_avx2, on_avx512)):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8)), i
