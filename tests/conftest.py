"""Shared tolerances and helpers for the kernel and gradient tests.

Every tolerance used to compare nnfast with nnfast.reference lives here, so that the
numerical assumptions of the tests are stated once.
"""

import contextlib
import re
import warnings

import numpy as np
import pytest

from nnfast import _spec, kernels, reference

DTYPES = (np.float64, np.float32)
# Sizes that are not powers of two or multiples of a vector width, so that loop tails,
# single rows and single columns are all exercised.
ODD_SIZES = (1, 3, 17, 65)

# Relative tolerance for comparing one computation done by nnfast and by the reference in
# the same dtype. Both evaluate the same formulas; they differ only because libm and NumPy's
# own exp/tanh/expm1 round differently (a few ulps) and because sums run in a different order
# (up to ~m ulps for an m-term sum; m <= 65 for elementwise/softmax kernels, the products use
# the size-aware bound of `product_atol`). eps is 2.2e-16 in float64 and 1.2e-7 in float32, so
# this leaves ~50 ulps (float64) and ~80 ulps (float32) of headroom while any real mistake
# (a wrong index, a missing term, a wrong formula) is off by far more.
RTOL = {np.dtype(np.float64): 1e-14, np.dtype(np.float32): 1e-5}
# Whole networks (several layers, sums over up to 2500 samples, BLAS vs loops, gradients that
# cancel): the rounding differences of every layer add up, so compare with a tolerance scaled
# by the largest entry of the result. Measured differences stay below 1e-14 (float64) and
# 2e-6 (float32) over the whole test matrix: these leave a 10x margin.
NET_RTOL = {np.dtype(np.float64): 1e-13, np.dtype(np.float32): 2e-5}

# Central differences (f(p + h) - f(p - h)) / 2h err by about h² |f'''| / 6 (truncation) plus
# δ / h, where δ ≈ eps |L| is the rounding noise of the loss value. Step and tolerance follow
# from that per dtype: atol = FD_NOISE_FACTOR eps |L| / h + FD_RTOL max|fd|, rtol = FD_RTOL.
# - float64: h = 1e-6 gives truncation ~1e-13 and noise eps64 |L| / h ~ 2e-10 |L|; measured
#   errors are <= 3e-9 of the largest entry, ~30x below FD_RTOL = 1e-7.
# - float32: the loss is evaluated in float32 (only its final sums run in double), so
#   δ ≈ eps32 |L| ≈ 1e-7 |L|. h = 3e-3 roughly balances noise (δ / h ≈ 4e-5 |L|) against
#   truncation (h² / 6 ≈ 1.5e-6 |f'''|) and keeps the steps clear of most kinks; measured
#   errors are <= 1e-4 of the largest entry and <= 0.4 δ / h, ~10x below the tolerance,
#   while a mistake in a backward rule costs tens of percent of some entry.
# The perturbed parameter is rounded to the dtype, so the true step (up - down) is used as
# the denominator rather than 2h.
FD_STEP = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 3e-3}
FD_RTOL = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 3e-4}
FD_NOISE_FACTOR = 5


def rtol(dtype):
    return RTOL[np.dtype(dtype)]


def eps(dtype):
    return float(np.finfo(dtype).eps)


def product_atol(A, B):
    """A rigorous bound on the rounding error of ``A @ B`` in the dtype of ``A``.

    Any order of summation of k products (loops, blocked BLAS) is within
    k * u * (|A| @ |B|) of the exact product (u = eps / 2); the reference NumPy product has
    the same bound, so the two differ by at most k * eps * (|A| @ |B|) elementwise. Factor 2
    for safety. Returned per element of the product.
    """
    A64 = np.abs(np.asarray(A, dtype=np.float64))
    B64 = np.abs(np.asarray(B, dtype=np.float64))
    k = A64.shape[-1]
    # Products and sums that land among the subnormals err by up to half the subnormal
    # spacing each, whatever their relative size: k of them add k * smallest_subnormal.
    subnormal = float(np.finfo(A.dtype).smallest_subnormal)
    return 2 * max(k, 1) * (eps(A.dtype) * (A64 @ B64) + subnormal)


def assert_product_close(actual, A, B, expected=None):
    """``actual`` equals ``A @ B`` up to the bound of :func:`product_atol`.

    ``expected`` defaults to the product evaluated in float64 from the same inputs (exact to
    far below the float32 bound, and within the float64 bound of the exact product).
    """
    if expected is None:
        expected = np.asarray(A, dtype=np.float64) @ np.asarray(B, dtype=np.float64)
    err = np.abs(np.asarray(actual, dtype=np.float64) - expected)
    bound = product_atol(A, B)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert (err <= bound).all(), (
        f"product differs by {err[worst]:.3g} at {worst}, allowed {bound[worst]:.3g}"
    )


def assert_close(actual, desired, dtype, scale=None, factor=1.0):
    """Elementwise ``|actual - desired| <= tol (|desired| + scale)`` with tol = RTOL[dtype].

    ``scale`` (default: the largest |desired|) sets the absolute part, for results that
    come from cancelling sums (softmax backward, gradients) and can be much smaller than
    the terms they are made of.
    """
    desired = np.asarray(desired)
    if scale is None:
        scale = float(np.abs(desired).max()) if desired.size else 0.0
    # Below the smallest normal number the spacing is fixed (subnormals), so a relative
    # tolerance means nothing there: tol * tiny is ~50-80 subnormal steps.
    scale = max(scale, float(np.finfo(dtype).tiny))
    tol = factor * RTOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * scale)


def assert_net_close(actual, desired, dtype, scale=None):
    """Whole-network results: NET_RTOL relative, NET_RTOL of ``scale`` absolute (default:
    the largest entry; larger for outputs that cancel terms much larger than themselves)."""
    desired = np.asarray(desired, dtype=np.float64)
    if scale is None:
        scale = float(np.abs(desired).max()) if desired.size else 0.0
    scale = max(scale, 1e-300)
    tol = NET_RTOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * scale)


class no_warnings:
    """Context manager: any warning, and any NumPy overflow / divide / invalid event,
    is an error (underflow to 0 is a correct result and stays allowed)."""

    def __enter__(self):
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error")
        self._e = np.errstate(over="raise", divide="raise", invalid="raise")
        self._e.__enter__()
        return self

    def __exit__(self, *exc):
        self._e.__exit__(*exc)
        return self._w.__exit__(*exc)


def central_differences(f, Z, h):
    """(f(Z + h e_i) - f(Z - h e_i)) / step for every entry i of Z: the finite-difference
    gradient of a scalar function f (shaped like Z), or the Jacobian of an array-valued f
    (shaped ``f(Z).shape + Z.shape``).

    The steps are taken in Z's dtype, so a float32 ``Z ± h`` is rounded: the true step
    (the difference of the two perturbed entries, exact in float64) is the denominator.
    """
    columns = []
    for index in np.ndindex(Z.shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[index] += h
        Zm[index] -= h
        step = float(Zp[index]) - float(Zm[index])
        up, down = (np.asarray(f(Zs), dtype=np.float64) for Zs in (Zp, Zm))
        columns.append((up - down) / step)
    fd = np.stack(columns, axis=-1)
    return fd.reshape(fd.shape[:-1] + Z.shape)


def kink_pattern(ref_net, X):
    """Which side of its kink every pre-activation of a kinked layer of the reference
    network is on (relu / leaky_relu / elu at 0, the maxout argmax), and the smallest
    distance to a kink. Patterns are arrays with one row per sample."""
    pattern, margin = [], np.inf
    for layer, (Z, _) in zip(ref_net.spec.layers, ref_net.forward(X)):
        if layer.activation in ("relu", "leaky_relu", "elu"):
            pattern.append(Z > 0)
            margin = min(margin, np.abs(Z).min())
        elif layer.activation == "maxout":
            pattern.append(Z.argmax(axis=-1))
            top2 = np.sort(Z, axis=-1)[..., -2:]
            margin = min(margin, (top2[..., 1] - top2[..., 0]).min())
    return pattern, margin


def reference_of(net):
    """The NumPy reference network holding exactly ``net``'s parameters, in ``net.dtype``."""
    return reference.MLP(
        net.layer_sizes,
        list(net.activations[:-1]),
        net.activations[-1],
        dtype=net.dtype,
        params=net.params,
        leaky_slope=net.leaky_slope,
        elu_alpha=net.elu_alpha,
        maxout_pieces=net.maxout_pieces,
    )


def assert_gradient_matches_fd(grad, fd, value, dtype):
    """``grad`` equals the central differences ``fd`` of a function whose values are of
    magnitude ``value``, within FD_RTOL and the rounding noise of those values."""
    dtype = np.dtype(dtype)
    noise = FD_NOISE_FACTOR * eps(dtype) * abs(value) / FD_STEP[dtype]
    scale = np.abs(fd).max()
    np.testing.assert_allclose(grad, fd, rtol=FD_RTOL[dtype], atol=FD_RTOL[dtype] * scale + noise)


def jacobian_magnitude(ref_net, X):
    """(n, n_out, n_in): per entry of the input Jacobian J of ``ref_net`` (a reference
    network) at X, the chain rule's sum over paths with every factor replaced by its absolute
    value. Two computations of J differ by rounding in proportion to this, not to |J|: an
    entry can be a sum that cancels.

    The derivatives of sigmoid, tanh and softmax count as 1 (their largest value is <= 1),
    in the output layer and in hidden layers alike: they are computed from the activation
    A (A (1 - A), 1 - A², A (e_j - A_j)), with an absolute rounding error of a few eps
    however small they are (saturated units; the long fuzz run found a hidden tanh at
    x = ±3 where |J| ~ 4e-17). The other hidden activations' derivatives are >= 0 (maxout
    selects a piece), so their backward applied to non-negative values gives the
    magnitudes.
    """
    X = np.asarray(X, dtype=ref_net.dtype)
    spec = ref_net.spec
    n, m = X.shape[0], spec.n_out
    cache = ref_net.forward(X)
    output = spec.layers[-1].activation
    if output == "softmax":
        dZ = np.ones((n, m, m), dtype=ref_net.dtype)
    elif output == "exp":
        dZ = cache[-1][1][:, :, np.newaxis] * np.eye(m, dtype=ref_net.dtype)
    else:
        dZ = np.broadcast_to(np.eye(m, dtype=ref_net.dtype), (n, m, m))
    for l in range(len(spec.layers) - 1, -1, -1):
        layer = spec.layers[l]
        W = np.abs(ref_net.weights[l].reshape(layer.n_in, layer.width))
        dA = dZ.reshape(n, m, layer.width) @ W.T
        if l > 0:
            below = spec.layers[l - 1]
            Z, A = (np.broadcast_to(a[:, np.newaxis], (n, m) + a.shape[1:]) for a in cache[l - 1])
            if below.activation in ("sigmoid", "tanh"):
                dZ = dA  # derivative from A: an absolute error of a few eps (saturation)
            else:
                dZ = reference.activation_backward(
                    below.activation, Z, A, dA, spec.leaky_slope, spec.elu_alpha
                )
    return dA


def assert_jacobian_close(J, expected, magnitude, dtype):
    """``|J - expected| <= NET_RTOL (|expected| + magnitude)`` entry by entry, with
    ``magnitude`` from :func:`jacobian_magnitude`."""
    tol = NET_RTOL[np.dtype(dtype)]
    err = np.abs(np.asarray(J, dtype=np.float64) - expected)
    bound = tol * (np.abs(np.asarray(expected, dtype=np.float64)) + magnitude)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert (err <= bound).all(), (
        f"J differs by {err[worst]:.3g} at {worst}, allowed {bound[worst]:.3g}"
    )


def autoencoder_reference(model):
    """``nnfast.reference`` networks ``(encoder, decoder, whole)`` computing what a fitted
    ``nnfast.sklearn.MLPAutoencoder`` should, from its public ``coefs_`` / ``intercepts_``:
    ``model.activation`` in the hidden layers, a linear bottleneck and a linear output."""
    from nnfast import reference

    name = {"logistic": "sigmoid"}.get(model.activation, model.activation)
    sizes = [W.shape[0] for W in model.coefs_] + [model.coefs_[-1].shape[1]]
    half = len(model.coefs_) // 2  # layers of the encoder (and of the decoder)
    flat = np.concatenate(
        [a.ravel() for pair in zip(model.coefs_, model.intercepts_) for a in pair]
    )
    split = sum(W.size + b.size for W, b in zip(model.coefs_[:half], model.intercepts_[:half]))
    hidden = [name] * (half - 1)
    dtype = model.coefs_[0].dtype
    encoder = reference.MLP(sizes[: half + 1], hidden, dtype=dtype, params=flat[:split])
    decoder = reference.MLP(sizes[half:], hidden, dtype=dtype, params=flat[split:])
    whole = reference.MLP(sizes, hidden + ["identity"] + hidden, dtype=dtype, params=flat)
    return encoder, decoder, whole


# Code paths of the compiled kernels (nnfast.kernels.set_simd_path), narrowest first.
SIMD_PATHS = ("baseline", "avx2", "avx512")
# The products' variants: every path, AVX-512 planned for 512-bit units, and AVX-512 planned
# for 256-bit units (nnfast.kernels.set_avx512_units), where narrow rows run in 256-bit vectors.
AVX512_ON_256 = "avx512/256"
PRODUCT_PATHS = SIMD_PATHS + (AVX512_ON_256,)


@contextlib.contextmanager
def simd_path(name, family):
    """Run the block with every kernel family limited to the code path ``name``, and skip the
    test ("CPU lacks ...") when ``family`` does not run ``name`` on this CPU. The previous
    setting is restored afterwards. ``"avx512"`` plans the AVX-512 products for 512-bit
    units, ``AVX512_ON_256`` ("avx512/256") for 256-bit units."""
    path = "avx512" if name == AVX512_ON_256 else name
    previous = kernels.set_simd_path(path)
    previous_units = kernels.set_avx512_units(256 if name == AVX512_ON_256 else 512)
    try:
        running = kernels.simd_paths()[family]
        if running != path:
            pytest.skip(f"CPU lacks {path} for the {family} kernels (they run {running})")
        yield name
    finally:
        kernels.set_simd_path(previous)
        kernels.set_avx512_units(previous_units)


# Shared by the kernel tests (test_kernels, test_activations, test_kernel_entry).
ALL_ACTIVATIONS = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "maxout",
    "softmax",
    "exp",
)
assert set(ALL_ACTIVATIONS) == set(kernels.ACTIVATIONS)
# Non-default activation parameters, so that a kernel ignoring them is caught.
LEAKY_SLOPE = 0.05
ELU_ALPHA = 0.7
ACT_PARAMS = dict(leaky_slope=LEAKY_SLOPE, elu_alpha=ELU_ALPHA)
PIECES = 3


@pytest.fixture(params=SIMD_PATHS)
def products_path(request):
    """The test runs with the products on each code path (skipped where the CPU lacks it)."""
    with simd_path(request.param, "products"):
        yield request.param


@pytest.fixture(params=SIMD_PATHS)
def elementwise_path(request):
    """The test runs with the elementwise loops (and every other family) on each code path."""
    with simd_path(request.param, "elementwise"):
        yield request.param


def rand(rng, shape, dtype, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(dtype)


def make_net(sizes, hidden, output, seed=0, dtype="float64", scale=0.6):
    """A reference network with random weights AND biases (biases start at zero otherwise)."""
    spec = _spec.build_spec(sizes, hidden, output, LEAKY_SLOPE, ELU_ALPHA, PIECES)
    params = np.random.default_rng(seed + 1000).normal(0.0, scale, spec.n_params)
    return reference.MLP(
        sizes,
        hidden,
        output,
        dtype=dtype,
        seed=seed,
        leaky_slope=LEAKY_SLOPE,
        elu_alpha=ELU_ALPHA,
        maxout_pieces=PIECES,
        params=params,
    )


def bits(array):
    """The exact bytes of an array, for bit-identity comparisons."""
    return np.ascontiguousarray(array).tobytes()


def make_data(loss, n, n_in, n_out, seed, labels=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "mse":
        y = rng.normal(size=(n, n_out))
    elif loss == "cross_entropy":
        y = rng.integers(0, n_out, size=n) if labels else rng.dirichlet(np.ones(n_out), size=n)
    else:
        y = rng.uniform(0.0, 1.0, size=(n, n_out))
    return X, y


@pytest.fixture(scope="module")
def fitted():
    """One fitted estimator of every kind the save/load tests use (estimator_cases.CASES)."""
    from estimator_cases import CASES  # scikit-learn is imported only by those tests

    return {name: make() for name, make in CASES.items()}


def markdown_python_blocks(path):
    """The ```python blocks of a Markdown file, in order (```py blocks are left out)."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def run_markdown_python_blocks(path):
    """Run a Markdown file's ```python blocks in order, as one session; a failing block
    fails the test with its number, the error and its text."""
    namespace = {}
    for i, block in enumerate(markdown_python_blocks(path)):
        try:
            exec(compile(block, f"{path.name} python block {i + 1}", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            pytest.fail(f"{path.name} python block {i + 1} failed: {err!r}\n{block}")
