"""The products with an epilogue and the thin products, on every code path, bit for bit.

- ``dense_forward`` starts each chain from the bias (no pass filling Z with b first): every
  ``Z[i, j]`` is ``acc = b[j]; acc = fma(X[i, p], W[p, j], acc)`` for p in order, which is
  what the fill-then-accumulate product gave, and a block of rows or of columns of Z is
  the same block of the whole Z;
- the single-row kernel (m == 1: all of a row's chains in one pass), the NN kernel for one
  or two columns (vectors along m) and the thin shapes of the seed network (k = 1, n = 1,
  m = 1) keep every element one chain: blocks of rows and of columns of a product equal the
  same blocks of the whole product;
- the backward pass fuses tanh's derivative into the product dZ @ W.T: the input gradients
  equal, bit for bit, the unfused composition of the kernels (product with W.T, then
  tanh's backward), and each row's gradient is its own (blocks of rows agree).

Each path is chosen with conftest's ``simd_path``; a path this CPU lacks is skipped.
"""

import platform
from fractions import Fraction

import numpy as np
import pytest
from conftest import PRODUCT_PATHS, simd_path

from nnfast import MLP, kernels

# m x k x n: the seed network's thin products (k = 1, n = 1, m = 1), single rows on either
# side of the single-row kernel's widths, outer products (k = 1) on either side of one
# vector's width, and a few square-ish ones
THIN_SHAPES = [
    (32, 1, 20),
    (20, 1, 20),
    (2, 1, 16),
    (17, 1, 65),
    (9, 1, 3),
    (3, 1, 8),
    (32, 1, 5),  # k == 1, rows narrower than a vector: AVX-512's masked k == 1 kernel
    (17, 1, 7),
    (40, 1, 12),
    (32, 20, 1),
    (1, 32, 20),
    (1, 20, 20),
    (1, 20, 1),
    (1, 1, 20),
    (1, 7, 37),
    (1, 5, 129),
    (1, 3, 300),
    (40, 32, 1),
    (7, 3, 2),
    (33, 20, 2),
    (300, 9, 1),
    (20, 1, 1),
    (37, 6, 2),
    (33, 20, 20),
]
# The x86 baseline path rounds a*b and then + c; AArch64's baseline and the AVX paths fuse.
BASELINE_FUSES = platform.machine().lower() in ("aarch64", "arm64")


@pytest.fixture(params=PRODUCT_PATHS)
def path(request):
    with simd_path(request.param, "products"):
        yield request.param


def _chain(start, X, W, fused):
    """start[j] + X[i, 0] W[0, j] + X[i, 1] W[1, j] + ..., one rounding per step (fused:
    the exact a*b + acc rounded once, as an FMA; else a*b rounded, then the sum): float64."""
    m, k = X.shape
    n = W.shape[1]
    if not fused:
        acc = np.repeat(start[None, :], m, axis=0)
        for p in range(k):
            acc = acc + X[:, p : p + 1] * W[p]
        return acc
    out = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            acc = Fraction(float(start[j]))
            for p in range(k):
                acc = Fraction(float(acc)) + Fraction(float(X[i, p])) * Fraction(float(W[p, j]))
            out[i, j] = float(acc)
    return out


def _blocks_equal_whole(compute, m, n, label):
    """compute(rows, cols) (slices) equals compute(all, all)[rows, cols] for blocks of rows
    and of columns, first/last/middle."""
    whole = compute(slice(None), slice(None))
    cuts = sorted({0, 1, m // 3, m // 2, m - 1, m} & set(range(m + 1)))
    for a, b in zip(cuts, cuts[1:]):
        part = compute(slice(a, b), slice(None))
        assert np.array_equal(part, whole[a:b]), (label, "rows", a, b)
    cuts = sorted({0, 1, n // 3, n // 2, n - 1, n} & set(range(n + 1)))
    for a, b in zip(cuts, cuts[1:]):
        part = compute(slice(None), slice(a, b))
        assert np.array_equal(part, whole[:, a:b]), (label, "columns", a, b)


def test_dense_forward_chains_start_from_the_bias(path):
    """Z = X @ W + b is, per element, one chain started from b[j] (float64, exact reference)."""
    rng = np.random.default_rng(11)
    fused = path != "baseline" or BASELINE_FUSES
    for m, k, n in THIN_SHAPES:
        X = rng.standard_normal((m, k))
        W = rng.standard_normal((k, n))
        b = rng.standard_normal(n)
        Z = kernels.dense_forward(X, W, b)
        assert np.array_equal(Z, _chain(b, X, W, fused)), (path, m, k, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thin_products_and_dense_forward_blocks(path, dtype):
    """Blocks of rows and of columns of a product (and of X @ W + b) are the same blocks of
    the whole, for the thin shapes and the single-row kernel's widths."""
    rng = np.random.default_rng(12)
    for m, k, n in THIN_SHAPES:
        X = rng.standard_normal((m, k)).astype(dtype)
        W = rng.standard_normal((k, n)).astype(dtype)
        b = rng.standard_normal(n).astype(dtype)

        def product(rows, cols):
            return kernels.matmul(X[rows], np.ascontiguousarray(W[:, cols]))

        def forward(rows, cols):
            return kernels.dense_forward(X[rows], np.ascontiguousarray(W[:, cols]), b[cols])

        _blocks_equal_whole(product, m, n, (path, "matmul", m, k, n))
        _blocks_equal_whole(forward, m, n, (path, "dense_forward", m, k, n))


def _input_grad_by_composition(net, X):
    """J[i, j, :] = d out_j / d X[i] of a tanh network with an identity output, from the
    unfused kernels: forward, then per output dA = dZ @ W.T and dZ = dA * (1 - A²)."""
    activations = [X]
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        last = l == len(net.weights) - 1
        activations.append(
            kernels.dense_forward(activations[-1], W, b, "identity" if last else "tanh")
        )
    n_out = net.weights[-1].shape[1]
    J = np.empty((X.shape[0], n_out, X.shape[1]), dtype=X.dtype)
    for j in range(n_out):
        dZ = np.zeros((X.shape[0], n_out), dtype=X.dtype)
        dZ[:, j] = 1
        for l in range(len(net.weights) - 1, -1, -1):
            dA = kernels.matmul(dZ, np.ascontiguousarray(net.weights[l].T))
            if l > 0:
                A = activations[l]
                dZ = kernels.activation_backward("tanh", A, A, dA)
        J[:, j, :] = dA
    return J


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", [(1, 20, 20, 1), (3, 9, 2), (16, 64, 64, 3), (5, 1, 7, 1)])
def test_fused_tanh_backward_equals_the_unfused_kernels(path, dtype, sizes):
    """input_grad through the fused product-and-tanh-backward gives the bits of the product
    with W.T followed by tanh's backward, and each row's gradient is its own."""
    rng = np.random.default_rng(13)
    net = MLP(list(sizes), activation="tanh", dtype=dtype, seed=4)
    X = rng.standard_normal((33, sizes[0])).astype(dtype)
    J = net.input_grad(X)
    J_composed = _input_grad_by_composition(net, X)
    assert J.dtype == J_composed.dtype
    assert np.array_equal(J, J_composed), (path, dtype, sizes)
    for a, b in [(0, 1), (1, 17), (17, 33), (32, 33)]:
        assert np.array_equal(net.input_grad(X[a:b]), J[a:b]), (path, dtype, sizes, a, b)
