"""The arrays nnfast keeps for its kernels start on 64-byte cache lines, and nothing computed
depends on where an array starts.

The parameters of every network (built, copied, loaded) and the optimizer buffers are
allocated on a line (nnfast/_validation.py's cache_aligned_zeros), as are the compiled
workspaces (nnfast/_kernels.pyx's cache_aligned_malloc). This is for speed only: a vector
that straddles two lines costs two accesses. The kernels themselves take any alignment and
give the same bits (tests/test_alignment.py covers views at odd byte offsets), so a network
whose parameters are placed off a line must train and predict exactly as one on a line.
"""

import numpy as np
import pytest
from conftest import bits

import nnfast
from nnfast import _solvers, _validation, network

LINE = _validation.CACHE_LINE
DTYPES = (np.float64, np.float32)


def line_offset(a):
    return a.ctypes.data % LINE


def off_line_copy(a, offset):
    """A copy of the 1-D array `a` starting `offset` bytes past a cache line."""
    raw = np.zeros(a.nbytes + 2 * LINE, dtype=np.uint8)
    start = -raw.ctypes.data % LINE + offset
    out = raw[start : start + a.nbytes].view(a.dtype)
    out[...] = a
    assert line_offset(out) == offset
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [[1, 20, 20, 1], [16, 64, 64, 3], [3, 1], [7, 33, 17, 5]])
def test_parameters_start_on_a_line(dtype, sizes, tmp_path):
    net = nnfast.MLP(sizes, dtype=dtype, seed=0)
    assert line_offset(net.params) == 0
    assert line_offset(net.copy().params) == 0
    path = tmp_path / "net.npz"
    nnfast.save(net, path)
    loaded = nnfast.load(path)
    assert line_offset(loaded.params) == 0
    np.testing.assert_array_equal(loaded.params, net.params)
    # weights and biases stay views into params
    assert all(np.shares_memory(W, net.params) for W in net.weights)


@pytest.mark.parametrize("name", ["sgd", "adam", "rprop"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_buffers_start_on_a_line(name, dtype):
    params = off_line_copy(np.arange(37, dtype=dtype), np.dtype(dtype).itemsize)
    optimizer = _solvers.make_optimizer(name, params, 0.01)
    for buffer in optimizer.buffers.values():
        assert line_offset(buffer) == 0
        assert buffer.shape == params.shape and buffer.dtype == params.dtype
    if name == "rprop":
        np.testing.assert_array_equal(optimizer.buffers["step_sizes"], np.full(37, 0.01, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cache_aligned_copies_only_what_is_off_a_line(dtype):
    size = np.dtype(dtype).itemsize
    zeros = _validation.cache_aligned_zeros(5, dtype)
    assert line_offset(zeros) == 0 and zeros.dtype == dtype
    np.testing.assert_array_equal(zeros, np.zeros(5, dtype))
    assert _validation.cache_aligned(zeros) is zeros
    for offset in (size, 2 * size, LINE - size):
        a = off_line_copy(np.arange(11, dtype=dtype), offset)
        b = _validation.cache_aligned(a)
        assert b is not a and line_offset(b) == 0
        np.testing.assert_array_equal(bits(b), bits(a))
    assert _validation.cache_aligned_zeros(0, dtype).shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "settings",
    [
        dict(optimizer="sgd", momentum=0.0, batch_size=32),
        dict(optimizer="sgd", momentum=0.9, batch_size=13),
        dict(optimizer="adam", batch_size=1),
        dict(optimizer="rprop", batch_size=None),
        dict(optimizer="lbfgs", batch_size=None),
    ],
    ids=lambda s: f"{s['optimizer']}-{s['batch_size']}",
)
def test_training_does_not_depend_on_where_the_parameters_start(monkeypatch, dtype, settings):
    """The same training from parameters placed on a line and at every element offset off
    it: the same parameters, losses and predictions, bit for bit."""
    rng = np.random.default_rng(4)
    X = rng.uniform(-2, 2, (70, 3)).astype(dtype)
    y = np.sin(X @ rng.standard_normal((3, 2))).astype(dtype)
    settings = dict(settings)
    batch = settings.pop("batch_size") or len(X)
    size = np.dtype(dtype).itemsize

    def train(offset):
        net = nnfast.MLP([3, 17, 9, 2], dtype=dtype, seed=1)
        if offset:
            moved = off_line_copy(net.params, offset)
            # _setup would copy it back onto a line: keep it where it is
            monkeypatch.setattr(network, "cache_aligned", lambda a: a)
            net._setup(net._spec, net._dtype, moved, net._rng)
            monkeypatch.undo()
            assert line_offset(net.params) == offset
        history = net.fit(X, y, epochs=4, batch_size=batch, lr=1e-2, shuffle=False, **settings)
        assert line_offset(net.params) == offset  # trained in place, where it was put
        return net.params.copy(), np.array(history.loss), net.predict(X)

    want = train(0)
    for offset in range(size, LINE, size):
        got = train(offset)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(bits(g), bits(w))
