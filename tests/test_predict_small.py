"""The compiled path for a few samples (nnfast._network_entry.predict_small), which
MLP.predict takes first: the same bytes as the general path, None (the general path then
checks and names the problem) for anything it does not take, and a refusal of parameters
that do not fit the layout.
"""

import numpy as np
import pytest
from conftest import bits
from test_entry_checks import misaligned

import nnfast
from nnfast import _network_entry

DTYPES = (np.float64, np.float32)
SIZES = [[1, 20, 20, 1], [3, 17, 2], [5, 1, 7, 65]]


def network(sizes, dtype):
    return nnfast.MLP(sizes, activation="tanh", dtype=dtype, seed=3)


def general(net, X):
    """The general path's prediction of X (2-D), bypassing predict_small."""
    out = np.empty((X.shape[0], net.layer_sizes[-1]), dtype=net.dtype)
    compiled = net._compiled
    compiled.fast_predict(compiled.layout, net._params, X, out)
    return out


def small(net, X):
    compiled = net._compiled
    return _network_entry.predict_small(compiled.layout, net._params, X)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", SIZES)
def test_same_bytes_as_the_general_path(sizes, dtype):
    net = network(sizes, dtype)
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5):
        X = rng.uniform(-2, 2, (n, sizes[0])).astype(dtype)
        out = small(net, X)
        assert out is not None and out.shape == (n, sizes[-1]) and out.dtype == dtype
        assert bits(out) == bits(general(net, X))
        # one sample as a 1-D array gives one (n_out,) row, the same row as in the batch
        one = small(net, X[1 % n].copy())
        assert one.shape == (sizes[-1],)
        assert bits(one) == bits(general(net, X)[1 % n])
        assert bits(net.predict(X[1 % n])) == bits(one)
        assert bits(net.predict(X)) == bits(out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_none_for_what_it_does_not_take(dtype):
    net = network([3, 17, 2], dtype)
    X = np.random.default_rng(1).uniform(-1, 1, (4, 3)).astype(dtype)
    assert small(net, X) is not None
    other = np.float32 if dtype == np.float64 else np.float64
    bad = X.copy()
    bad[2, 1] = np.nan
    cases = {
        "a list": X.tolist(),
        "a subclass": X.view(np.matrix),
        "another dtype": X.astype(other),
        "the other byte order": X.astype(X.dtype.newbyteorder()),
        "integers": np.ones((4, 3), dtype=np.int64),
        "not C-contiguous": np.asfortranarray(X),
        "a strided view": np.repeat(X, 2, axis=1)[:, ::2],
        "misaligned": misaligned(X),
        "3-D": X[None],
        "0-D": np.array(1.0, dtype=dtype),
        "another width": X[:, :2].copy(),
        "no rows": X[:0],
        "non-finite": bad,
        "too many rows": np.zeros((100_000 // net._compiled.spec.n_params + 1, 3), dtype),
    }
    for label, value in cases.items():
        assert small(net, value) is None, label


def test_general_path_still_names_the_problem():
    net = network([3, 17, 2], np.float64)
    with pytest.raises(ValueError, match="X"):
        net.predict(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="X"):
        net.predict(np.zeros(4))
    with pytest.raises(ValueError, match="n_threads"):
        net.predict(np.zeros(3), n_threads=0)
    # what predict_small declines is still predicted by the general path, to the same bytes
    X = np.random.default_rng(2).uniform(-1, 1, (3, 3))
    assert bits(net.predict(np.asfortranarray(X))) == bits(net.predict(X))
    assert bits(net.predict(X.tolist())) == bits(net.predict(X))


@pytest.mark.parametrize("dtype", DTYPES)
def test_params_that_do_not_fit_are_refused(dtype):
    net = network([3, 17, 2], dtype)
    layout, params = net._compiled.layout, net._params
    X = np.zeros((2, 3), dtype=dtype)
    with pytest.raises(ValueError, match=r"params: expected .*\(n_params,\)"):
        _network_entry.predict_small(layout, params[:-1].copy(), X)
    with pytest.raises(ValueError, match=r"params: expected .*\(n_params,\)"):
        _network_entry.predict_small(layout, params.reshape(1, -1), X)
    with pytest.raises(ValueError, match="params: expected float64 or float32"):
        _network_entry.predict_small(layout, params.astype(np.int64), X)
    with pytest.raises(ValueError, match=r"params: expected .*\(n_params,\)"):
        _network_entry.predict_small(layout, params.astype(params.dtype.newbyteorder()), X)
    with pytest.raises(TypeError):
        _network_entry.predict_small(layout, params.tolist(), X)
    with pytest.raises(TypeError):
        _network_entry.predict_small(None, params, X)
