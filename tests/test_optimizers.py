"""Rprop (iRprop-): the kernel, the reference and full-batch training agree."""

import numpy as np
import pytest

import nnfast
from nnfast import _kernel_entry, reference


def rprop_scalar(params, step, prev, grad, eta_plus=1.2, eta_minus=0.5, lo=1e-6, hi=50.0):
    """iRprop- written out per parameter, as in Igel & Hüsken (2000)."""
    params, step, prev = params.copy(), step.copy(), prev.copy()
    for i, g in enumerate(grad):
        if g * prev[i] > 0:
            step[i] = min(step[i] * eta_plus, hi)
        elif g * prev[i] < 0:
            step[i] = max(step[i] * eta_minus, lo)
            g = 0.0
        params[i] -= np.sign(g) * step[i]
        prev[i] = g
    return params, step, prev


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [1, 3, 17, 65])
def test_rprop_kernel_and_reference_match_scalar_rule(size, dtype):
    rng = np.random.default_rng(size)
    params = rng.standard_normal(size).astype(dtype)
    step = rng.uniform(1e-6, 60, size).astype(dtype)  # some at the clamps after scaling
    prev = rng.standard_normal(size).astype(dtype)
    prev[::4] = 0
    grad = rng.standard_normal(size).astype(dtype)
    grad[1::5] = 0
    expected = rprop_scalar(params, step, prev, grad)

    ref = (params.copy(), step.copy(), prev.copy())
    reference.rprop_update(*ref, grad)
    kernel = (params.copy(), step.copy(), prev.copy())
    _kernel_entry.rprop_update_into(*kernel, grad, 1.2, 0.5, 1e-6, 50.0)
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    for want, got_ref, got_kernel in zip(expected, ref, kernel):
        np.testing.assert_allclose(got_ref, want, rtol=rtol)
        np.testing.assert_allclose(got_kernel, want, rtol=rtol)
        assert got_kernel.dtype == dtype


@pytest.mark.parametrize("batch_size", [None, 7])
def test_rprop_fit_matches_reference_and_uses_full_batches(batch_size):
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(41, 3))
    y = np.tanh(X @ rng.standard_normal((3, 2)))
    net = nnfast.MLP([3, 17, 2], activation="tanh", seed=5)
    ref = reference.MLP([3, 17, 2], activation="tanh", seed=5)
    kwargs = dict(
        optimizer="rprop", lr=0.01, epochs=20, batch_size=batch_size, l2=1e-3, shuffle=False
    )
    history = net.fit(X, y, **kwargs)
    ref_history = ref.fit(X, y, **kwargs)
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(history.loss, ref_history.loss, rtol=1e-9)
    # Full batches: batch_size is ignored, so both settings train identically.
    full = nnfast.MLP([3, 17, 2], activation="tanh", seed=5)
    full.fit(X, y, **{**kwargs, "batch_size": None})
    np.testing.assert_array_equal(full.params, net.params)


def test_rprop_fits_the_seed_curve():
    x = np.linspace(-3, 3, 200)[:, None]
    y = np.sin(2 * x)
    net = nnfast.MLP([1, 20, 20, 1], activation="tanh", seed=0)
    history = net.fit(x, y, optimizer="rprop", lr=0.01, epochs=1500)
    assert history.loss[-1] < 1e-3
