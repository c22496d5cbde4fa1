"""The private kernels of nnfast._kernel_entry that the network drivers use, against
nnfast.reference: the losses with their output deltas (weighted or not, extreme logits)
and the SGD and Adam updates on every SIMD path (``elementwise_path``)."""

import math

import numpy as np
import pytest
from conftest import (
    DTYPES,
    assert_close,
    eps,
    no_warnings,
    rand,
    rtol,
)

from nnfast import _kernel_entry, kernels
from nnfast import reference as ref
from nnfast._spec import ACTIVATION_CODES, LOSS_CODES

# --------------------------------------------------------------------------------------
# Private kernels: loss deltas and optimizer updates
# --------------------------------------------------------------------------------------

LOSS_CASES = [
    ("mse", "identity"),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("mse", "softmax"),
    ("cross_entropy", "softmax"),
    ("binary_cross_entropy", "sigmoid"),
]
LOSS_SHAPES = [(n, m) for n in (1, 17, 65) for m in (1, 3, 17)]


def loss_targets(loss, shape, rng, dtype):
    if loss == "mse":
        return rand(rng, shape, dtype)
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(shape[1]), size=shape[0]).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def run_loss_delta(loss, output, Z, A, Y, w):
    dZ = np.full_like(Z, np.nan)
    inv = 1.0 / (Z.shape[0] if w is None else float(w.sum(dtype=np.float64)))
    value = _kernel_entry.loss_delta_into(
        LOSS_CODES[loss], ACTIVATION_CODES[output], dZ, Z, A, Y, w, inv
    )
    return value, dZ


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n,m", LOSS_SHAPES)
@pytest.mark.parametrize("loss,output", LOSS_CASES)
def test_loss_delta_matches_reference(loss, output, n, m, weighted, dtype):
    if output == "softmax" and m == 1:
        m = 2  # softmax needs two outputs
    rng = np.random.default_rng(n * 100 + m)
    Z = rand(rng, (n, m), dtype, scale=2.0)
    A = ref.activation_forward(output, Z).astype(dtype)
    Y = loss_targets(loss, (n, m), rng, dtype)
    w = rng.uniform(0.1, 2.0, size=n).astype(dtype) if weighted else None
    value, dZ = run_loss_delta(loss, output, Z, A, Y, w)
    expected_value, expected_dZ = ref.loss_and_delta(loss, output, Z, A, Y, w)
    assert isinstance(value, float) and dZ.dtype == dtype
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)
    # ... and against the definition in float64 (catches an error shared with the reference).
    Z64, A64, Y64 = (a.astype(np.float64) for a in (Z, A, Y))
    w64 = np.ones(n) if w is None else w.astype(np.float64)
    if loss == "mse":
        per_sample = ((A64 - Y64) ** 2).mean(axis=1)
    elif loss == "cross_entropy":
        per_sample = -(Y64 * np.log(ref.activation_forward("softmax", Z64))).sum(axis=1)
    else:
        P = ref.activation_forward("sigmoid", Z64)
        per_sample = -(Y64 * np.log(P) + (1 - Y64) * np.log1p(-P)).mean(axis=1)
    definition_rtol = 1e-5 if dtype == np.float32 else 1e-12  # float32 rounding of A vs Z
    assert value == pytest.approx((w64 @ per_sample) / w64.sum(), rel=definition_rtol, abs=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_delta_with_rows_not_summing_to_one(dtype):
    # dZ = w (A Σ_k y_k - y) / S, not w (A - y) / S.
    rng = np.random.default_rng(8)
    Z = rand(rng, (17, 3), dtype)
    A = ref.activation_forward("softmax", Z)
    Y = rng.uniform(0.0, 2.0, size=(17, 3)).astype(dtype)
    w = rng.uniform(0.5, 1.5, size=17).astype(dtype)
    value, dZ = run_loss_delta("cross_entropy", "softmax", Z, A, Y, w)
    expected_value, expected_dZ = ref.loss_and_delta("cross_entropy", "softmax", Z, A, Y, w)
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,output", LOSS_CASES)
def test_loss_delta_at_extreme_logits(loss, output, dtype):
    Z = np.array([[-1e3, 0.0, 1e3], [1e3, -1e3, 5.0], [-80.0, 80.0, -0.5]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    with no_warnings():
        A = kernels.activation_forward(output, Z)
        value, dZ = run_loss_delta(loss, output, Z, A, Y, None)
        expected_value, expected_dZ = ref.loss_and_delta(loss, output, Z, A, Y)
    assert math.isfinite(value) and np.isfinite(dZ).all()
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)
    if loss == "cross_entropy":  # -log softmax: 2000 + 2000 + (80.5 + log(1 + e^-80.5 + ...))
        assert value == pytest.approx((2000.0 + 2000.0 + 80.5) / 3, rel=1e-6, abs=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_of_confident_right_answers_keeps_relative_accuracy(dtype):
    # The loss of almost perfect predictions is tiny (log(1 + e^-40) ≈ 4.2e-18), not 0:
    # log1p(e^-|z|), not log(1 + e^-|z|), keeps it accurate.
    Z = np.array([[40.0, -40.0], [-35.0, 35.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    A = kernels.activation_forward("sigmoid", Z)
    value, dZ = run_loss_delta("binary_cross_entropy", "sigmoid", Z, A, Y, None)
    with np.errstate(under="ignore"):
        expected_value, expected_dZ = ref.loss_and_delta("binary_cross_entropy", "sigmoid", Z, A, Y)
    exact = (2 * math.log1p(math.exp(-40.0)) + 2 * math.log1p(math.exp(-35.0))) / 4
    assert value == pytest.approx(exact, rel=1e-12, abs=0)
    assert value == pytest.approx(expected_value, rel=rtol(dtype), abs=0)
    assert_close(dZ, expected_dZ, dtype)


OPT_SIZES = (1, 17, 65, 1025)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", OPT_SIZES)
@pytest.mark.parametrize(
    "momentum,nesterov", [(0.0, False), (0.0, True), (0.9, False), (0.9, True), (0.5, True)]
)
def test_sgd_update_matches_reference(momentum, nesterov, size, dtype, elementwise_path):
    rng = np.random.default_rng(size)
    params = rand(rng, size, dtype)
    velocity = np.zeros(size, dtype)
    ref_params, ref_velocity = params.copy(), velocity.copy()
    lr = 0.03
    start = params.copy()
    for _ in range(3):
        grad = rand(rng, size, dtype)
        _kernel_entry.sgd_update_into(params, velocity, grad, lr, momentum, nesterov)
        ref.sgd_update(ref_params, ref_velocity, grad, lr, momentum, nesterov)
        assert params.dtype == dtype and velocity.dtype == dtype
        assert_close(velocity, ref_velocity, dtype)
        assert_close(params, ref_params, dtype)
    assert (params != start).all()  # every parameter moved


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", OPT_SIZES)
@pytest.mark.parametrize(
    "lr,beta1,beta2,adam_eps", [(1e-3, 0.9, 0.999, 1e-8), (0.05, 0.5, 0.9, 1e-4)]
)
def test_adam_update_matches_reference(lr, beta1, beta2, adam_eps, size, dtype, elementwise_path):
    rng = np.random.default_rng(size + 1)
    params = rand(rng, size, dtype)
    m, v = np.zeros(size, dtype), np.zeros(size, dtype)
    ref_params, ref_m, ref_v = params.copy(), m.copy(), v.copy()
    start = params.copy()
    for t in range(1, 5):
        grad = rand(rng, size, dtype)
        lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        _kernel_entry.adam_update_into(params, m, v, grad, lr_t, beta1, beta2, adam_eps)
        ref.adam_update(ref_params, ref_m, ref_v, grad, t, lr, beta1, beta2, adam_eps)
        assert_close(m, ref_m, dtype)
        assert_close(v, ref_v, dtype)
        assert_close(params, ref_params, dtype)
        # params move by ~lr per step, much less than their size: also compare the change, up
        # to its own tolerance plus the rounding of params (a few ulps of |params|).
        change, ref_change = params - start, ref_params - start
        np.testing.assert_allclose(
            change,
            ref_change,
            rtol=rtol(dtype),
            atol=rtol(dtype) * np.abs(ref_change).max() + 4 * eps(dtype) * np.abs(start).max(),
        )
    assert np.abs(params - start).max() > 0.5 * lr
