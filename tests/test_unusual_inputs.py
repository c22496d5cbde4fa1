"""Valid but unusual inputs to nnfast.MLP (Fortran order, strides, reversed views, other
dtypes, lists, read-only and big-endian arrays, numpy scalars, label encodings) are
accepted and give exactly the results of clean float64 C arrays."""

import numpy as np
import pytest
from refusal import N_IN, clean_data, make_net

import nnfast

# Valid but unusual inputs are accepted and give the results of clean float64 C arrays
# ------------------------------------------------------------------------------------------


def results(net, X, y, loss="mse", sample_weight=None, l2=0.01):
    """Everything the public methods compute from (X, y), as exact bytes."""
    twin = net.copy()
    value, grad = twin.loss_and_grad(X, y, loss=loss, l2=l2, sample_weight=sample_weight)
    history = twin.fit(
        X,
        y,
        loss=loss,
        l2=l2,
        sample_weight=sample_weight,
        epochs=3,
        batch_size=4,
        shuffle=True,
        optimizer="adam",
        lr=0.01,
        validation_data=(X, y),
    )
    return (
        net.predict(X).tobytes(),
        twin.loss(X, y, loss=loss, l2=l2, sample_weight=sample_weight),
        value,
        grad.tobytes(),
        twin.params.tobytes(),
        history.loss,
        history.val_loss,
    )


def base_data(n=9):
    rng = np.random.default_rng(6)
    return rng.normal(size=(n, N_IN)), rng.normal(size=(n, 2))


def fortran(a):
    return np.asfortranarray(a)


def strided(a):
    """The same values, but every other row/column of a larger array."""
    big = np.zeros((2 * a.shape[0],) + tuple(2 * s for s in a.shape[1:]), dtype=a.dtype)
    index = (slice(None, None, 2),) * a.ndim
    big[index] = a
    view = big[index]
    assert not view.flags.c_contiguous
    return view


def reversed_view(a):
    view = a[::-1].copy()[::-1]
    assert view.strides[0] < 0
    return view


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def big_endian(a):
    return a.astype(a.dtype.newbyteorder(">"))


X_VARIANTS = {
    "fortran": fortran,
    "strided": strided,
    "reversed": reversed_view,
    "read-only": read_only,
    "big-endian": big_endian,
    "list": lambda a: a.tolist(),
    "tuple rows": lambda a: tuple(tuple(r) for r in a),
}


@pytest.mark.parametrize("variant", list(X_VARIANTS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unusual_layouts_give_identical_results(variant, dtype):
    net = make_net("reg", dtype=dtype)
    X, y = base_data()
    w = np.linspace(0.5, 2.0, X.shape[0])
    expected = results(net, X, y, sample_weight=w)
    convert = X_VARIANTS[variant]
    assert results(net, convert(X), y, sample_weight=w) == expected
    assert results(net, X, convert(y), sample_weight=w) == expected
    if variant not in ("tuple rows",):
        assert results(net, X, y, sample_weight=convert(w)) == expected


def test_reversed_rows_match_reversed_predictions():
    net = make_net("reg")
    X, _ = base_data()
    np.testing.assert_array_equal(net.predict(X[::-1]), net.predict(X)[::-1])
    np.testing.assert_array_equal(net.predict(X[:, ::-1][:, ::-1]), net.predict(X))


def test_integer_and_bool_inputs_equal_their_float64_values():
    net = make_net("reg")
    rng = np.random.default_rng(7)
    Xi = rng.integers(-3, 4, size=(9, N_IN))
    yi = rng.integers(-2, 3, size=(9, 2))
    wi = rng.integers(1, 4, size=9)
    expected = results(net, Xi.astype(float), yi.astype(float), sample_weight=wi.astype(float))
    for dtype in (np.int8, np.int32, np.int64):
        assert results(net, Xi.astype(dtype), yi.astype(dtype), sample_weight=wi) == expected
    for dtype in (np.uint8, np.uint64, np.int16):
        assert results(net, Xi, yi, sample_weight=wi.astype(dtype)) == expected
    Xb = Xi > 0
    assert results(net, Xb, yi) == results(net, Xb.astype(float), yi.astype(float))


def test_float32_X_for_float64_net_equals_its_float64_values():
    net = make_net("reg")
    X, y = base_data()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    assert results(net, X32, y32) == results(net, X32.astype(np.float64), y32.astype(np.float64))
    X16 = X.astype(np.float16)
    assert results(net, X16, y) == results(net, X16.astype(np.float64), y)


def test_float64_X_for_float32_net_equals_float32_X():
    net = make_net("reg", dtype="float32")
    X, y = base_data()
    w = np.linspace(0.5, 2.0, X.shape[0])
    assert results(net, X, y, sample_weight=w) == results(
        net, X.astype(np.float32), y.astype(np.float32), sample_weight=w.astype(np.float32)
    )
    assert net.predict(X).dtype == np.float32
    # float32 data for a float32 network, even read-only, is used as it is.
    X32 = read_only(X.astype(np.float32))
    X32.flags.writeable = False
    assert results(net, X32, y) == results(net, X.astype(np.float32), y)
    # Large values that still fit in float32 are accepted.
    assert np.isfinite(net.predict(np.full((2, N_IN), 1e30))).all()


def test_one_sample_and_single_output_shapes():
    net = nnfast.MLP([N_IN, 4, 1], seed=0)
    X, _ = base_data()
    y = X[:, 0] ** 2
    expected = results(net, X, y[:, None], l2=0.0)
    assert results(net, X, y, l2=0.0) == expected  # (n,) == (n, 1) for one output
    assert results(net, X, list(y), l2=0.0) == expected
    one = net.predict(X[0].tolist())
    assert one.shape == (1,)
    net.loss(X[:1], y[:1])  # a single sample is a valid data set
    net.fit(X[:1], y[:1], epochs=1)


def test_label_encodings_are_equivalent():
    net = make_net("clf")
    X, labels = clean_data("clf")
    expected = results(net, X, labels, loss="cross_entropy")
    for variant in (
        labels.astype(np.int8),
        labels.astype(np.uint8),
        labels.astype(np.float64),
        labels.astype(np.float32),
        labels.tolist(),
        labels[::-1].copy()[::-1],
    ):
        assert results(net, X, variant, loss="cross_entropy") == expected
    one_hot = np.eye(4)[labels]
    assert results(net, X, one_hot, loss="cross_entropy") == expected
    assert results(net, X, one_hot.astype(int), loss="cross_entropy") == expected
    assert results(net, X, fortran(one_hot), loss="cross_entropy") == expected


def test_scalars_of_numpy_types_are_accepted():
    net = make_net("reg")
    X, y = clean_data("reg")
    twin = net.copy()
    net.fit(
        X,
        y,
        lr=np.float32(0.01),
        batch_size=np.int64(2),
        epochs=np.int32(2),
        shuffle=np.bool_(True),
        l2=np.float64(0.01),
        momentum=np.float64(0.5),
        beta1=np.float32(0.9),
        eps=np.float64(1e-8),
    )
    twin.fit(
        X,
        y,
        lr=float(np.float32(0.01)),
        batch_size=2,
        epochs=2,
        shuffle=True,
        l2=0.01,
        momentum=0.5,
        beta1=float(np.float32(0.9)),
        eps=1e-8,
    )
    assert net.params.tobytes() == twin.params.tobytes()
    assert net.loss(X, y, l2=1) == twin.loss(X, y, l2=1.0)  # int l2


def test_maxout_pieces_too_large_for_an_index_is_refused_even_without_maxout():
    """Found by the long fuzz run: 10**30 pieces with no maxout layer reached the C layer
    table and raised OverflowError instead of a ValueError naming the argument."""
    with pytest.raises(ValueError, match=r"maxout_pieces: expected an integer in \[1, "):
        nnfast.MLP([1, 1], maxout_pieces=10**30)
