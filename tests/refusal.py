"""Helpers of the error tests (test_errors, test_constructor_errors, test_unusual_inputs):
small networks of each output kind, clean data for them, and assert_refused, which checks
the exception type, the message fragments and that the refused call changed nothing."""

import copy

import numpy as np
import pytest

import nnfast

N, N_IN = 6, 3


def make_net(kind, dtype="float64"):
    """reg: identity output (mse); clf: softmax over 4 classes; bin: sigmoid, 2 outputs."""
    if kind == "reg":
        net = nnfast.MLP([N_IN, 5, 2], dtype=dtype, seed=0)
    elif kind == "clf":
        net = nnfast.MLP([N_IN, 5, 4], output_activation="softmax", dtype=dtype, seed=0)
    else:
        net = nnfast.MLP([N_IN, 5, 2], output_activation="sigmoid", dtype=dtype, seed=0)
    # Non-zero biases, so that nothing in the checks below depends on them being zero.
    net.params = np.random.default_rng(1).normal(0.0, 0.5, net.n_params)
    return net


def clean_data(kind):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(N, N_IN))
    if kind == "reg":
        y = rng.normal(size=(N, 2))
    elif kind == "clf":
        y = np.array([0, 1, 2, 3, 1, 0])
    else:
        y = rng.uniform(0.0, 1.0, size=(N, 2))
    return X, y


LOSS_OF = {"reg": "mse", "clf": "cross_entropy", "bin": "binary_cross_entropy"}


def snapshot(net):
    return net.params.tobytes(), copy.deepcopy(net._rng.bit_generator.state)


def assert_refused(net, exc, call, *fragments):
    """``call()`` raises exactly ``exc`` whose message holds every fragment; net unchanged."""
    before = snapshot(net) if net is not None else None
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert type(info.value) is exc, (
        f"expected {exc.__name__}, got {info.type.__name__}: {info.value}"
    )
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in message {message!r}"
    if net is not None:
        assert snapshot(net) == before, "a refused call changed the network"
    return message
