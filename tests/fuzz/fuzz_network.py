"""Fuzz cases of the network (``nnfast.MLP``): the constructor, ``predict``,
``input_grad``, ``loss``, ``loss_and_grad`` and ``fit``.

Valid inputs must give what ``nnfast.reference`` gives within the tolerances of
``tests/conftest.py``; one corrupted argument must raise ``ValueError`` or ``TypeError``
naming it and leave the network unchanged. Run by ``test_fuzz.py`` in a child process.
"""

import numpy as np
import pytest
from conftest import assert_jacobian_close, assert_net_close, jacobian_magnitude, no_warnings
from fuzz_harness import assert_names, fuzz, snapshot
from fuzz_inputs import (
    ANYTHING,
    NETWORK_DTYPES,
    ROWS,
    arrays,
    as64,
    bad_targets,
    corrupted,
    losses_for,
    networks,
    targets,
)
from hypothesis import given
from hypothesis import strategies as st

import nnfast
from nnfast import reference
from nnfast._spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

# ------------------------------------------------------------------------------------------
# MLP(...)
# ------------------------------------------------------------------------------------------


@given(
    sizes=st.one_of(
        st.lists(st.integers(-1, 7), min_size=0, max_size=4),
        st.lists(
            st.sampled_from([2, 10**12, 2**63, 2.0, True, "3", None, np.int64(3), np.uint8(2)]),
            max_size=3,
        ),
        ANYTHING,
    ),
    activation=st.one_of(
        st.sampled_from(HIDDEN_ACTIVATIONS + ("softmax", "TANH", "")),
        st.lists(st.sampled_from(HIDDEN_ACTIVATIONS), max_size=3),
        ANYTHING,
    ),
    output=st.one_of(st.sampled_from(OUTPUT_ACTIVATIONS + ("relu", "maxout")), ANYTHING),
    dtype=st.sampled_from(
        [
            "float64",
            "float32",
            np.float32,
            np.dtype("float64"),
            "float16",
            "int32",
            "complex128",
            None,
            3,
            ">f8",
        ]
    ),
    seed=st.one_of(st.none(), st.integers(-5, 2**70), st.sampled_from([1.5, "1", True])),
    slope=st.one_of(st.floats(-1, 2), st.sampled_from([np.nan, np.inf, "0.1", None])),
    alpha=st.one_of(st.floats(-1, 1e300), st.sampled_from([np.nan, -np.inf, "1"])),
    pieces=st.one_of(st.integers(-1, 4), st.sampled_from([2.0, True, None, 10**30])),
)
@fuzz(400)
def test_constructor(sizes, activation, output, dtype, seed, slope, alpha, pieces):
    kwargs = dict(
        activation=activation,
        output_activation=output,
        dtype=dtype,
        seed=seed,
        leaky_slope=slope,
        elu_alpha=alpha,
        maxout_pieces=pieces,
    )
    try:
        net = nnfast.MLP(sizes, **kwargs)
    except (ValueError, TypeError) as err:
        assert_names(
            err,
            "layer_sizes",
            "activation",
            "output_activation",
            "dtype",
            "seed",
            "leaky_slope",
            "elu_alpha",
            "maxout_pieces",
        )
        return
    oracle = reference.MLP(sizes, **kwargs)
    assert net.n_params == oracle.n_params == net.params.size
    if seed is not None:  # seed=None draws fresh entropy: the two differ by design
        assert net.params.tobytes() == oracle.params.tobytes()
    assert net.params.dtype == np.dtype(dtype)
    assert np.isfinite(net.params).all()


# ------------------------------------------------------------------------------------------
# predict, loss, loss_and_grad
# ------------------------------------------------------------------------------------------


@given(nets=networks(), n=ROWS, data=st.data())
@fuzz(300)
def test_predict(nets, n, data):
    net, oracle = nets
    n_in = net.layer_sizes[0]
    one = data.draw(st.booleans())
    X = data.draw(arrays((n_in,) if one else (n, n_in)))
    # return_std=True reads the output of a gaussian_nll network (identity, even width).
    return_std = "gaussian_nll" in losses_for(net) and data.draw(st.booleans())
    with no_warnings():
        out = net.predict(X, return_std=return_std)
    expected = oracle.predict(np.asarray(as64(X), dtype=net.dtype), return_std=return_std)
    for got, want in zip(out, expected) if return_std else [(out, expected)]:
        assert got.dtype == net.dtype and got.shape == want.shape
        assert_net_close(got, want, net.dtype)


@given(nets=networks(), n=ROWS, data=st.data())
@fuzz(250)
def test_predict_refuses_bad_X(nets, n, data):
    net, _ = nets
    X = _refuses_one_bad_X(net.predict, net, n, data)
    before = snapshot(net)
    # return_std: only True or False, and True only for a gaussian_nll output.
    return_std = data.draw(st.sampled_from([True, 1, "yes", None, np.array([True])]))
    if return_std is True and "gaussian_nll" in losses_for(net):
        return
    with pytest.raises((ValueError, TypeError)) as info:
        net.predict(X, return_std=return_std)
    assert_names(info.value, "return_std")
    assert snapshot(net) == before


@given(nets=networks(), n=ROWS, data=st.data())
@fuzz(150)
def test_input_grad(nets, n, data):
    net, oracle = nets
    n_in = net.layer_sizes[0]
    one = data.draw(st.booleans())
    X = data.draw(arrays((n_in,) if one else (n, n_in)))
    with no_warnings():
        J = net.input_grad(X)
    X_ref = np.asarray(as64(X), dtype=net.dtype)
    expected = oracle.input_grad(X_ref)
    assert J.dtype == net.dtype and J.shape == expected.shape
    magnitude = jacobian_magnitude(oracle, X_ref.reshape(-1, n_in)).reshape(expected.shape)
    assert_jacobian_close(J, expected, magnitude, net.dtype)


@given(nets=networks(), n=ROWS, data=st.data())
@fuzz(100)
def test_input_grad_refuses_bad_X(nets, n, data):
    net, _ = nets
    _refuses_one_bad_X(net.input_grad, net, n, data)


def _refuses_one_bad_X(method, net, n, data):
    """``method`` (predict, input_grad) refuses a corrupted X by name and leaves ``net`` as
    it was; returns the valid X the corruption was made from."""
    n_in = net.layer_sizes[0]
    X = data.draw(arrays((n, n_in)))
    bad = data.draw(corrupted(X, net.dtype, [(n, n_in + 1), (n, n_in, 1), (), (n * n_in + 1,)]))
    before = snapshot(net)
    with pytest.raises((ValueError, TypeError)) as info:
        method(bad)
    assert_names(info.value, "X")
    assert snapshot(net) == before
    return X


@given(
    X=st.sampled_from(
        [
            np.full((2, 3), 1e308),
            np.full((1, 3), -1e300),
            np.array([[1e308, -1e308, 5e-324]]),
            np.full((3, 3), 3e38),
        ]
    ),
    dtype=st.sampled_from(NETWORK_DTYPES),
    activation=st.sampled_from(HIDDEN_ACTIVATIONS),
    output=st.sampled_from(OUTPUT_ACTIVATIONS),
)
@fuzz(60)
def test_predict_huge_finite_values_never_crash(X, dtype, activation, output):
    """Finite values near the dtype's limit: refused when they do not fit the dtype, else a
    result of the right shape (overflow inside the network is the user's arithmetic)."""
    net = nnfast.MLP([3, 4, 2], activation, output, dtype=dtype, seed=0)
    if np.abs(X).max() > np.finfo(dtype).max:
        with pytest.raises(ValueError, match="X"):
            net.predict(X)
        return
    with np.errstate(all="ignore"):
        out = net.predict(X)
    assert out.shape == (X.shape[0], 2) and out.dtype == net.dtype


def unit_weights(w, dtype):
    """``w / max(w)`` in ``dtype``: the same weighted means, and a weight sum whose inverse
    the reference can compute without overflow (weights such as [0, 5e-324])."""
    if w is None:
        return None
    w = np.asarray(w, dtype=dtype)
    return w / w.max()


def _case(data, net, n):
    loss = data.draw(st.sampled_from(losses_for(net)))
    X = data.draw(arrays((n, net.layer_sizes[0])))
    y = data.draw(targets(loss, n, net.layer_sizes[-1]))
    w = data.draw(
        st.one_of(st.none(), arrays((n,), 0.0, 3.0, ["float64", "float32", "int64", "uint8"]))
    )
    if w is not None and not np.asarray(w, dtype=net.dtype).sum(dtype=np.float64) > 0:
        w = None
    l2 = data.draw(st.sampled_from([0.0, 0, 0.5, np.float32(1e-3)]))
    return loss, X, y, w, l2


@given(nets=networks(), n=ROWS, data=st.data())
@fuzz(300)
def test_loss_and_grad(nets, n, data):
    net, oracle = nets
    loss, X, y, w, l2 = _case(data, net, n)
    with no_warnings():
        value = net.loss(X, y, loss, l2, w)
        value2, grad = net.loss_and_grad(X, y, loss=loss, l2=l2, sample_weight=w)
    cast = lambda a: None if a is None else np.asarray(a, dtype=net.dtype)  # noqa: E731
    Xr, wr = cast(X), unit_weights(w, net.dtype)
    yr = np.asarray(y) if loss == "cross_entropy" and np.ndim(y) == 1 else cast(y)
    with np.errstate(all="ignore"):
        value_ref, grad_ref = oracle.loss_and_grad(Xr, yr, loss, float(l2), wr)
    assert value == value2
    assert_net_close(value, value_ref, net.dtype)
    assert grad.dtype == net.dtype and grad.shape == net.params.shape
    assert_net_close(grad, grad_ref, net.dtype)


ARGS = ["X", "y", "sample_weight", "loss", "l2"]


def _corrupt_one(data, net, n, loss, X, y, w, l2):
    arg = data.draw(st.sampled_from(ARGS))
    n_in, n_out = net.layer_sizes[0], net.layer_sizes[-1]
    if arg == "X":
        X = data.draw(corrupted(X, net.dtype, [(n, n_in + 1), (n + 1, n_in), (n_in,), ()]))
    elif arg == "y":
        y = bad_targets(data.draw, loss, n, n_out, net.dtype, y)
    elif arg == "sample_weight":
        w = data.draw(
            st.one_of(
                corrupted(np.ones(n), net.dtype, [(n + 1,), (n, 1), ()]),
                st.sampled_from([np.full(n, -1.0), np.zeros(n), "weights"]),
            )
        )
        if w is None:  # None is valid for sample_weight
            w = np.zeros(n)
    elif arg == "loss":
        wrong = [name for name in LOSSES if name not in losses_for(net)]
        loss = data.draw(st.sampled_from(wrong + ["MSE", "", None, 3, "hinge"]))
    else:
        l2 = data.draw(st.sampled_from([-1.0, np.nan, np.inf, "0.1", None, True, 1j]))
    return arg, (loss, X, y, w, l2)


@given(nets=networks(), n=ROWS, data=st.data())
@fuzz(300)
def test_loss_and_grad_refuse_one_bad_argument(nets, n, data):
    net, _ = nets
    arg, (loss, X, y, w, l2) = _corrupt_one(data, net, n, *_case(data, net, n))
    method = data.draw(st.sampled_from(["loss", "loss_and_grad", "fit"]))
    before = snapshot(net)
    with pytest.raises((ValueError, TypeError)) as info:
        if method == "fit":
            net.fit(X, y, loss=loss, l2=l2, sample_weight=w, epochs=1)
        else:
            getattr(net, method)(X, y, loss=loss, l2=l2, sample_weight=w)
    assert_names(info.value, arg)
    assert snapshot(net) == before


# ------------------------------------------------------------------------------------------
# fit
# ------------------------------------------------------------------------------------------


@given(nets=networks(), n=st.sampled_from([1, 2, 5, 9]), data=st.data())
@fuzz(150)
def test_fit(nets, n, data):
    net, oracle = nets
    loss, X, y, w, l2 = _case(data, net, n)
    optimizer = data.draw(st.sampled_from(["sgd", "adam", "rprop"]))
    batch = data.draw(st.sampled_from([1, 2, 3, None, 10**30]))
    epochs = data.draw(st.integers(0, 3))
    kwargs = dict(
        loss=loss,
        optimizer=optimizer,
        lr=0.01,
        batch_size=batch,
        epochs=epochs,
        shuffle=False,
        l2=l2,
        sample_weight=w,
        nesterov=data.draw(st.booleans()),
    )
    try:
        with no_warnings():
            history = net.fit(X, y, **kwargs)
    except FloatingPointError as err:  # allowed only for an exploding run (below)
        history = err.history
    cast = lambda a: None if a is None else np.asarray(a, dtype=net.dtype)  # noqa: E731
    yr = np.asarray(y) if loss == "cross_entropy" and np.ndim(y) == 1 else cast(y)
    kwargs["sample_weight"] = unit_weights(w, net.dtype)
    kwargs["l2"] = float(l2)  # NumPy 2 would keep the reference's l2 terms in float32
    with np.errstate(all="ignore"):
        try:
            history_ref = oracle.fit(cast(X), yr, **kwargs)
        except FloatingPointError as err:
            history_ref = err.history
    # An exploding run (the reference diverges, or its loss more than doubles: an exp
    # output trained on mse, say) amplifies every rounding difference epoch after epoch, so
    # comparing two such trajectories measures their conditioning, not the code (the long
    # fuzz run found 53.927819090 vs 53.927819089 after 3 epochs). nnfast must still end
    # cleanly: finite weights, its History or its documented FloatingPointError.
    ref_loss = history_ref.loss
    if history_ref.stop_reason != "completed" or (
        len(ref_loss) > 1 and ref_loss[-1] > 2 * ref_loss[0]
    ):
        assert np.isfinite(net.params).all()
        assert history.stop_reason in ("completed", "diverged")
        return
    assert history.stop_reason == history_ref.stop_reason == "completed"
    assert len(history.loss) == epochs
    assert_net_close(history.loss, history_ref.loss, net.dtype)
    assert_net_close(net.params, oracle.params, net.dtype)


FIT_BAD = {
    "optimizer": ["SGD", "lbfgs2", None, 1],
    "lr": [0, -1.0, np.nan, np.inf, "0.1"],
    "batch_size": [0, -1, 1.5, True, "32"],
    "epochs": [-1, 1.0, None, 2**70],
    "shuffle": [1, "yes", None],
    "momentum": [1.0, -0.1, np.nan],
    "nesterov": [1, "no"],
    "beta1": [1.0, -1e-9],
    "beta2": [1.5, np.inf],
    "eps": [0.0, -1e-8],
    "callback": [1, "print"],
    "verbose": [2, None],
    "validation_data": [1, (np.ones((1, 1)),), "data", (None, None)],
    "max_fun": [0, 1.5],
    "tol": [-1.0, np.nan],
}


@given(nets=networks(), data=st.data())
@fuzz(150)
def test_fit_refuses_bad_settings(nets, data):
    net, _ = nets
    loss, X, y, w, l2 = _case(data, net, 4)
    arg = data.draw(st.sampled_from(sorted(FIT_BAD)))
    value = data.draw(st.sampled_from(FIT_BAD[arg]))
    before = snapshot(net)
    with pytest.raises((ValueError, TypeError)) as info:
        net.fit(X, y, loss=loss, l2=l2, sample_weight=w, epochs=1, **{arg: value})
    assert_names(info.value, arg)
    assert snapshot(net) == before
