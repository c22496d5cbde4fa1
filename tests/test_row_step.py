"""Batch-1 SGD in one call per sample (nnfast/src/row_step.h): the same bits as the general
path (forward, loss, backward, then the optimizer's pass), on every products path, and close
to nnfast.reference's NumPy training.

``nnfast._kernels._set_row_step(False)`` sends batch-1 SGD through the general path, which
the other batch sizes take; ``row_step_runs()`` says whether the one-call step is taken.
"""

import numpy as np
import pytest
from conftest import PRODUCT_PATHS, simd_path

from nnfast import MLP, _kernels, reference

NETWORKS = [
    ([1, 20, 20, 1], "tanh"),
    ([3, 17, 65, 2], "relu"),
    ([5, 3, 1, 4], "identity"),
    ([1, 1], "tanh"),
    ([2, 9, 7, 33, 3], ["tanh", "relu", "identity"]),
]
OPTIMIZERS = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, nesterov=True)]


@pytest.fixture(params=PRODUCT_PATHS)
def path(request):
    with simd_path(request.param, "products"):
        yield request.param


def _data(sizes, dtype, rows=41, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (rows, sizes[0])).astype(dtype)
    X[3] = 0  # zero inputs: gradients of +-0
    y = np.sin(3 * X[:, :1] + np.arange(sizes[-1])).astype(dtype)
    return X, y


def _fit(one_call, sizes, activation, dtype, epochs=3, **settings):
    previous = _kernels._set_row_step(one_call)
    try:
        X, y = _data(sizes, dtype)
        net = MLP(sizes, activation=activation, dtype=dtype, seed=0)
        settings = dict(batch_size=1, optimizer="sgd", lr=1e-2, shuffle=False) | settings
        history = net.fit(X, y, epochs=epochs, **settings)
        return net, history
    finally:
        _kernels._set_row_step(previous)


def _assert_same_training(settings, sizes, activation, dtype):
    (a, ha), (b, hb) = (
        _fit(one_call, sizes, activation, dtype, **settings) for one_call in (True, False)
    )
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(ha.loss, hb.loss)
    velocity_a, velocity_b = (net._train_state.optimizer.buffers for net in (a, b))
    assert velocity_a.keys() == velocity_b.keys()
    for name, buffer in velocity_a.items():
        np.testing.assert_array_equal(buffer, velocity_b[name])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes, activation", NETWORKS)
@pytest.mark.parametrize("settings", OPTIMIZERS, ids=["plain", "momentum", "nesterov"])
def test_one_call_step_gives_the_general_paths_bits(path, dtype, sizes, activation, settings):
    # The x86 baseline products round each multiply and add apart: the one-call step, which
    # fuses them, is not taken there (it is on AArch64, whose NEON baseline fuses too).
    assert _kernels._row_step_runs() == (path != "baseline" or _kernels.BASELINE_FMA)
    _assert_same_training(settings, sizes, activation, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_call_step_with_weights_and_shuffling(path, dtype):
    sizes = [1, 20, 20, 1]
    X, _ = _data(sizes, dtype)
    weights = np.random.default_rng(2).uniform(0, 3, len(X))
    weights[5] = 0
    weights[7] = 5e-324  # subnormal: the batch's weights are rescaled first
    _assert_same_training(
        dict(sample_weight=weights, shuffle=True, momentum=0.5), sizes, "tanh", dtype
    )


def test_one_call_step_is_not_taken_where_it_would_differ():
    # Not the x86 baseline (no fused multiply-add there), nor products sent to BLAS.
    assert _kernels._row_step_runs() in (True, False)
    previous = _kernels.set_blas_min_flops(1)
    try:
        assert not _kernels._row_step_runs()
    finally:
        _kernels.set_blas_min_flops(previous)
    previous = _kernels._set_row_step(False)
    try:
        assert not _kernels._row_step_runs()
    finally:
        _kernels._set_row_step(previous)


@pytest.mark.parametrize(
    "sizes, activation, settings",
    [
        ([1, 8, 1], "tanh", dict(l2=1e-3)),
        ([1, 8, 1], "tanh", dict(optimizer="adam")),
        ([1, 8, 1], "sigmoid", {}),
        ([1, 8, 2], "tanh", dict(loss="gaussian_nll")),
        ([1, 8, 1], "tanh", dict(n_threads=2)),
    ],
    ids=["l2", "adam", "sigmoid", "gaussian_nll", "two threads"],
)
def test_steps_it_leaves_to_the_general_path_keep_their_bits(sizes, activation, settings):
    X, y = _data(sizes, np.float64)
    nets = []
    for one_call in (True, False):
        previous = _kernels._set_row_step(one_call)
        try:
            net = MLP(sizes, activation=activation, seed=0)
            net.fit(X, y[:, :1], epochs=2, batch_size=1, lr=1e-2, shuffle=False, **settings)
            nets.append(net.params)
        finally:
            _kernels._set_row_step(previous)
    np.testing.assert_array_equal(*nets)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes, activation", NETWORKS[:3])
def test_one_call_step_trains_as_the_reference(dtype, sizes, activation):
    X, y = _data(sizes, dtype)
    settings = dict(batch_size=1, optimizer="sgd", lr=1e-2, momentum=0.9, shuffle=False, epochs=2)
    net = MLP(sizes, activation=activation, dtype=dtype, seed=0)
    ref = reference.MLP(sizes, activation=activation, dtype=dtype, seed=0)
    np.testing.assert_array_equal(net.params, ref.params)
    assert _kernels._row_step_runs() or _kernels.simd_paths()["products"] == "baseline"
    net.fit(X, y, **settings)
    ref.fit(X, y, **settings)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(net.params, ref.params, **tol)
