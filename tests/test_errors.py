"""Every invalid input to nnfast.MLP is refused with a clear error, and nothing changes.

API.md: "Every invalid input raises ValueError or TypeError naming the argument, what was
expected and what came [...] Nothing invalid reaches a kernel." Each case below checks the
exception type exactly, that the message contains the argument's name and fragments of both
the expectation and the offending value, and that the network's parameters (and random
state) are bit-identical after the failed call. The second half checks the converse: inputs
that are valid but unusual (Fortran order, strides, other dtypes, lists, read-only,
big-endian) are accepted and give exactly the results of clean float64 C arrays.
"""

import copy

import numpy as np
import pytest

import nnfast

N, N_IN = 6, 3

# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


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


def call_method(net, method, X, y, **kwargs):
    """Run ``method`` of ``net`` (predict, loss, loss_and_grad or fit) on X, y."""
    if method == "predict":
        return lambda: net.predict(X)
    if method == "fit":
        kwargs.setdefault("epochs", 2)
    return lambda: getattr(net, method)(X, y, **kwargs)


DATA_METHODS = ["loss", "loss_and_grad", "fit"]
ALL_METHODS = ["predict"] + DATA_METHODS


def nan_at(shape, index, value=np.nan, seed=3):
    array = np.random.default_rng(seed).normal(size=shape)
    array[index] = value
    return array


# ------------------------------------------------------------------------------------------
# X
# ------------------------------------------------------------------------------------------

X_CASES = {
    # id: (X, exception, fragments)
    "3-D": (np.zeros((N, N_IN, 1)), ValueError, ["X", "2-D", "(6, 3, 1)"]),
    "0-D": (np.float64(1.0), ValueError, ["X", "2-D", "0-D"]),
    "wrong width": (np.zeros((N, 4)), ValueError, ["X", "(n_samples, 3)", "(6, 4)"]),
    "too narrow": (np.zeros((N, 1)), ValueError, ["X", "(n_samples, 3)", "(6, 1)"]),
    "0 samples": (np.zeros((0, N_IN)), ValueError, ["X", "at least one sample", "(0, 3)"]),
    "NaN": (nan_at((N, N_IN), (2, 1)), ValueError, ["X", "finite", "nan", "(2, 1)"]),
    "inf": (nan_at((N, N_IN), (5, 0), np.inf), ValueError, ["X", "finite", "inf", "(5, 0)"]),
    "-inf": (nan_at((N, N_IN), (0, 2), -np.inf), ValueError, ["X", "finite", "-inf"]),
    "NaN float32": (
        nan_at((N, N_IN), (1, 1)).astype(np.float32),
        ValueError,
        ["X", "finite", "nan"],
    ),
    "complex": (np.zeros((N, N_IN), dtype=complex), TypeError, ["X", "real", "complex"]),
    "object": (np.zeros((N, N_IN), dtype=object), TypeError, ["X", "real", "object"]),
    "strings": (np.full((N, N_IN), "1.0"), TypeError, ["X", "real", "<U3"]),
    "list of strings": ([["a", "b", "c"]] * N, TypeError, ["X", "real"]),
    "None": (None, TypeError, ["X", "None"]),
    "ragged": ([[1.0, 2.0, 3.0], [1.0, 2.0]], ValueError, ["X", "could not convert"]),
    "timedelta": (np.zeros((N, N_IN), dtype="m8[s]"), TypeError, ["X", "real", "timedelta"]),
}


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("case", list(X_CASES))
def test_bad_X(case, method):
    X, exc, fragments = X_CASES[case]
    net = make_net("reg")
    _, y = clean_data("reg")
    assert_refused(net, exc, call_method(net, method, X, y), *fragments)


def test_1d_X_for_predict_is_one_sample_of_the_right_width():
    net = make_net("reg")
    message = assert_refused(net, ValueError, lambda: net.predict(np.zeros(5)), "X", "3")
    assert "(5,)" in message, message  # what came, not the internal (1, 5) reshape
    assert_refused(net, ValueError, lambda: net.predict(np.zeros(0)), "X", "(0,)")


@pytest.mark.parametrize("method", DATA_METHODS)
def test_1d_X_is_refused_where_samples_are_needed(method):
    net = make_net("reg")
    assert_refused(
        net, ValueError, call_method(net, method, np.zeros(N_IN), np.zeros(2)), "X", "2-D", "(3,)"
    )


OVERFLOW_CASES = [("X", "predict")] + [
    (where, method) for method in DATA_METHODS for where in ("X", "y", "sample_weight")
]


@pytest.mark.parametrize("where,method", OVERFLOW_CASES)
def test_value_too_large_for_float32(where, method):
    """1e300 is finite in float64 but overflows to inf when converted to float32."""
    net = make_net("reg", dtype="float32")
    X, y = clean_data("reg")
    w = np.ones(N)
    if where == "X":
        X[1, 2] = 1e300
    elif where == "y":
        y[4, 1] = -1e300
    else:
        w[3] = 1e300
    kwargs = {} if method == "predict" else {"sample_weight": w}
    assert_refused(
        net, ValueError, call_method(net, method, X, y, **kwargs), where, "float32", "1e+300"
    )


def test_value_too_large_for_float32_in_validation_data():
    net = make_net("reg", dtype="float32")
    X, y = clean_data("reg")
    X_val = X.copy()
    X_val[0, 0] = 1e39
    assert_refused(
        net,
        ValueError,
        lambda: net.fit(X, y, validation_data=(X_val, y)),
        "validation_data",
        "X",
        "float32",
        "1e+39",
    )


def test_value_too_large_for_float32_in_params_and_layers():
    net = make_net("reg", dtype="float32")
    huge = np.zeros(net.n_params)
    huge[4] = -1e300
    assert_refused(net, ValueError, lambda: setattr(net, "params", huge), "params", "-1e+300")
    assert_refused(
        net,
        ValueError,
        lambda: net.weights.__setitem__(0, np.full((N_IN, 5), 1e39)),
        "weights[0]",
        "float32",
    )


# ------------------------------------------------------------------------------------------
# y
# ------------------------------------------------------------------------------------------

Y_CASES = {
    # id: (net kind, y, exception, fragments)
    "too few rows": ("reg", np.zeros((N - 1, 2)), ValueError, ["y", "6 rows", "(5, 2)"]),
    "too many rows": ("reg", np.zeros((N + 1, 2)), ValueError, ["y", "6 rows", "(7, 2)"]),
    "wrong columns": ("reg", np.zeros((N, 3)), ValueError, ["y", "(6, 2)", "(6, 3)"]),
    "1-D for 2 outputs": ("reg", np.zeros(N), ValueError, ["y", "(6, 2)", "(6,)"]),
    "3-D": ("reg", np.zeros((N, 2, 1)), ValueError, ["y", "(6, 2)", "(6, 2, 1)"]),
    "0-D": ("reg", np.float64(0.0), ValueError, ["y", "6 rows", "()"]),
    "NaN": ("reg", nan_at((N, 2), (3, 1)), ValueError, ["y", "finite", "nan", "(3, 1)"]),
    "inf": ("reg", nan_at((N, 2), (0, 0), np.inf), ValueError, ["y", "finite", "inf"]),
    "complex": ("reg", np.zeros((N, 2), dtype=complex), TypeError, ["y", "real", "complex"]),
    "object": ("reg", np.zeros((N, 2), dtype=object), TypeError, ["y", "real", "object"]),
    "None": ("reg", None, TypeError, ["y", "None"]),
    "strings": ("reg", [["0", "1"]] * N, TypeError, ["y", "real"]),
    "label out of range": ("clf", np.array([0, 1, 2, 4, 1, 0]), ValueError, ["y", "[0, 4)", "4"]),
    "label far out of range": (
        "clf",
        np.array([0, 1, 2, 3, 100, 0]),
        ValueError,
        ["y", "[0, 4)", "100"],
    ),
    "negative label": ("clf", np.array([0, -1, 2, 3, 1, 0]), ValueError, ["y", "[0, 4)", "-1"]),
    "non-integer label": (
        "clf",
        np.array([0.0, 1.5, 2.0, 3.0, 1.0, 0.0]),
        ValueError,
        ["y", "integer", "1.5"],
    ),
    "NaN label": (
        "clf",
        np.array([0.0, np.nan, 2.0, 3.0, 1.0, 0.0]),
        ValueError,
        ["y", "finite", "nan"],
    ),
    "inf label": (
        "clf",
        np.array([0.0, 1.0, np.inf, 3.0, 1.0, 0.0]),
        ValueError,
        ["y", "finite", "inf"],
    ),
    "boolean labels": ("clf", np.array([True, False] * 3), TypeError, ["y", "integer", "bool"]),
    "labels wrong count": ("clf", np.array([0, 1, 2]), ValueError, ["y", "6 rows", "(3,)"]),
    "label column": ("clf", np.zeros((N, 1), dtype=int), ValueError, ["y", "(6, 4)", "(6, 1)"]),
    "rows not summing to 1": (
        "clf",
        np.full((N, 4), 0.2),
        ValueError,
        ["y", "summing to 1", "0.8"],
    ),
    "one row not summing to 1": (
        "clf",
        np.eye(4)[[0, 1, 2, 3, 1, 0]] + np.eye(4)[[3]] * 0.5 * (np.arange(N) == 4)[:, None],
        ValueError,
        ["y", "summing to 1", "1.5", "row 4"],
    ),
    "negative probability": (
        "clf",
        np.tile([1.5, -0.5, 0.0, 0.0], (N, 1)),
        ValueError,
        ["y", "[0, 1]", "-0.5"],
    ),
    "bce above 1": ("bin", np.tile([0.5, 1.5], (N, 1)), ValueError, ["y", "[0, 1]", "1.5"]),
    "bce below 0": ("bin", np.tile([-0.25, 0.5], (N, 1)), ValueError, ["y", "[0, 1]", "-0.25"]),
    "bce labels 1-D": ("bin", np.zeros(N), ValueError, ["y", "(6, 2)", "(6,)"]),
    "bce NaN": ("bin", nan_at((N, 2), (2, 0)), ValueError, ["y", "finite", "nan"]),
}


@pytest.mark.parametrize("method", DATA_METHODS)
@pytest.mark.parametrize("case", list(Y_CASES))
def test_bad_y(case, method):
    kind, y, exc, fragments = Y_CASES[case]
    net = make_net(kind)
    X, _ = clean_data(kind)
    assert_refused(net, exc, call_method(net, method, X, y, loss=LOSS_OF[kind]), *fragments)


# ------------------------------------------------------------------------------------------
# sample_weight, l2, loss names
# ------------------------------------------------------------------------------------------

W_CASES = {
    "too short": (np.ones(N - 1), ValueError, ["sample_weight", "(6,)", "(5,)"]),
    "column": (np.ones((N, 1)), ValueError, ["sample_weight", "(6,)", "(6, 1)"]),
    "scalar": (1.0, ValueError, ["sample_weight", "(6,)", "()"]),
    "negative": (
        np.array([1.0, 2.0, -1.0, 1.0, 1.0, 1.0]),
        ValueError,
        ["sample_weight", ">= 0", "-1"],
    ),
    "all zero": (np.zeros(N), ValueError, ["sample_weight", "positive", "zero"]),
    "NaN": (
        np.array([1.0, np.nan, 1.0, 1.0, 1.0, 1.0]),
        ValueError,
        ["sample_weight", "finite", "nan"],
    ),
    "inf": (
        np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.inf]),
        ValueError,
        ["sample_weight", "finite", "inf"],
    ),
    "complex": (np.ones(N, dtype=complex), TypeError, ["sample_weight", "real", "complex"]),
    "object": (np.ones(N, dtype=object), TypeError, ["sample_weight", "real", "object"]),
    "strings": (["1"] * N, TypeError, ["sample_weight", "real"]),
}


@pytest.mark.parametrize("method", DATA_METHODS)
@pytest.mark.parametrize("case", list(W_CASES))
def test_bad_sample_weight(case, method):
    w, exc, fragments = W_CASES[case]
    net = make_net("reg")
    X, y = clean_data("reg")
    assert_refused(net, exc, call_method(net, method, X, y, sample_weight=w), *fragments)


LOSS_CASES = {
    # id: (net kind, loss, l2, exception, fragments)
    "unknown loss": ("reg", "hinge", 0.0, ValueError, ["loss", "mse", "'hinge'"]),
    "misspelt loss": (
        "clf",
        "crossentropy",
        0.0,
        ValueError,
        ["loss", "cross_entropy", "'crossentropy'"],
    ),
    "ce without softmax": (
        "reg",
        "cross_entropy",
        0.0,
        ValueError,
        ["loss", "softmax", "'identity'"],
    ),
    "ce with sigmoid": ("bin", "cross_entropy", 0.0, ValueError, ["loss", "softmax", "'sigmoid'"]),
    "bce without sigmoid": (
        "reg",
        "binary_cross_entropy",
        0.0,
        ValueError,
        ["loss", "sigmoid", "'identity'"],
    ),
    "bce with softmax": (
        "clf",
        "binary_cross_entropy",
        0.0,
        ValueError,
        ["loss", "sigmoid", "'softmax'"],
    ),
    "gaussian_nll with sigmoid": (
        "bin",
        "gaussian_nll",
        0.0,
        ValueError,
        ["loss", "'identity'", "'sigmoid'"],
    ),
    "gaussian_nll with softmax": (
        "clf",
        "gaussian_nll",
        0.0,
        ValueError,
        ["loss", "'identity'", "'softmax'"],
    ),
    "l2 negative": ("reg", "mse", -0.1, ValueError, ["l2", "[0, inf]", "-0.1"]),
    "l2 NaN": ("reg", "mse", float("nan"), ValueError, ["l2", "[0, inf]", "nan"]),
    "l2 inf": ("reg", "mse", float("inf"), ValueError, ["l2", "inf"]),
    "l2 string": ("reg", "mse", "0.1", TypeError, ["l2", "real number", "str"]),
    "l2 None": ("reg", "mse", None, TypeError, ["l2", "real number", "None"]),
}


@pytest.mark.parametrize("method", DATA_METHODS)
@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_bad_loss_and_l2(case, method):
    kind, loss, l2, exc, fragments = LOSS_CASES[case]
    net = make_net(kind)
    X, y = clean_data(kind)
    if kind == "clf" and loss != "cross_entropy":
        y = np.eye(4)[y]  # valid targets for any loss: only the loss name is wrong
    assert_refused(net, exc, call_method(net, method, X, y, loss=loss, l2=l2), *fragments)


# ------------------------------------------------------------------------------------------
# fit's own arguments
# ------------------------------------------------------------------------------------------

FIT_CASES = {
    "optimizer unknown": (dict(optimizer="rmsprop"), ValueError, ["optimizer", "adam", "rmsprop"]),
    "optimizer case": (dict(optimizer="Adam"), ValueError, ["optimizer", "'adam'", "'Adam'"]),
    "lr zero": (dict(lr=0.0), ValueError, ["lr", "(0, inf]", "0.0"]),
    "lr negative": (dict(lr=-0.01), ValueError, ["lr", "(0", "-0.01"]),
    "lr NaN": (dict(lr=float("nan")), ValueError, ["lr", "(0", "nan"]),
    "lr inf": (dict(lr=float("inf")), ValueError, ["lr", "finite", "inf"]),
    "lr string": (dict(lr="0.01"), TypeError, ["lr", "real number", "str"]),
    "lr None": (dict(lr=None), TypeError, ["lr", "real number", "None"]),
    "lr complex": (dict(lr=1e-3 + 0j), TypeError, ["lr", "real number", "complex"]),
    "batch_size 0": (dict(batch_size=0), ValueError, ["batch_size", ">= 1", "0"]),
    "batch_size negative": (dict(batch_size=-4), ValueError, ["batch_size", ">= 1", "-4"]),
    "batch_size 1.5": (dict(batch_size=1.5), TypeError, ["batch_size", "integer", "1.5"]),
    "batch_size 2.0": (dict(batch_size=2.0), TypeError, ["batch_size", "integer", "2.0"]),
    "batch_size True": (dict(batch_size=True), TypeError, ["batch_size", "integer", "True"]),
    "batch_size string": (dict(batch_size="32"), TypeError, ["batch_size", "integer", "'32'"]),
    "epochs -1": (dict(epochs=-1), ValueError, ["epochs", ">= 0", "-1"]),
    "epochs 2.5": (dict(epochs=2.5), TypeError, ["epochs", "integer", "2.5"]),
    "epochs None": (dict(epochs=None), TypeError, ["epochs", "integer", "None"]),
    "epochs beyond C size": (dict(epochs=10**20), ValueError, ["epochs", "integer", str(10**20)]),
    "lr int too large for a float": (dict(lr=10**400), ValueError, ["lr", "finite", "too large"]),
    "l2 int too large for a float": (dict(l2=10**400), ValueError, ["l2", "finite", "too large"]),
    "momentum 1": (dict(optimizer="sgd", momentum=1.0), ValueError, ["momentum", "[0, 1)", "1.0"]),
    "momentum negative": (
        dict(optimizer="sgd", momentum=-0.1),
        ValueError,
        ["momentum", "[0, 1)", "-0.1"],
    ),
    "momentum NaN": (dict(momentum=float("nan")), ValueError, ["momentum", "nan"]),
    "nesterov string": (dict(nesterov="yes"), TypeError, ["nesterov", "True or False", "'yes'"]),
    "beta1 1": (dict(beta1=1.0), ValueError, ["beta1", "[0, 1)", "1.0"]),
    "beta1 negative": (dict(beta1=-0.5), ValueError, ["beta1", "[0, 1)", "-0.5"]),
    "beta2 1": (dict(beta2=1.0), ValueError, ["beta2", "[0, 1)", "1.0"]),
    "beta2 above 1": (dict(beta2=1.5), ValueError, ["beta2", "[0, 1)", "1.5"]),
    "beta2 string": (dict(beta2="0.999"), TypeError, ["beta2", "real number", "str"]),
    "eps 0": (dict(eps=0.0), ValueError, ["eps", "(0, inf]", "0.0"]),
    "eps negative": (dict(eps=-1e-8), ValueError, ["eps", "(0", "-1e-08"]),
    "callback not callable": (dict(callback=5), TypeError, ["callback", "callable", "int"]),
    "callback string": (dict(callback="print"), TypeError, ["callback", "callable", "str"]),
    "shuffle string": (dict(shuffle="yes"), TypeError, ["shuffle", "True or False", "'yes'"]),
    "shuffle int": (dict(shuffle=1), TypeError, ["shuffle", "True or False", "int"]),
    "shuffle None": (dict(shuffle=None), TypeError, ["shuffle", "True or False", "None"]),
    "verbose int": (dict(verbose=1), TypeError, ["verbose", "True or False", "int"]),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_bad_fit_arguments(case):
    kwargs, exc, fragments = FIT_CASES[case]
    kwargs = {"epochs": 2, **kwargs}
    net = make_net("reg")
    X, y = clean_data("reg")
    assert_refused(net, exc, lambda: net.fit(X, y, **kwargs), *fragments)


def _val(kind="reg", n=4, seed=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, N_IN)), rng.normal(size=(n, 2))


VALIDATION_CASES = {
    "array": (lambda: _val()[0], TypeError, ["validation_data", "(X_val, y_val)", "ndarray"]),
    "one element": (
        lambda: (_val()[0],),
        ValueError,
        ["validation_data", "(X_val, y_val)", "length 1"],
    ),
    "three elements": (
        lambda: (*_val(), np.ones(4)),
        ValueError,
        ["validation_data", "(X_val, y_val)", "length 3"],
    ),
    "dict": (
        lambda: {"X": _val()[0], "y": _val()[1]},
        TypeError,
        ["validation_data", "(X_val, y_val)", "dict"],
    ),
    "X NaN": (
        lambda: (nan_at((4, N_IN), (1, 2)), _val()[1]),
        ValueError,
        ["validation_data", "X", "finite", "nan"],
    ),
    "X inf": (
        lambda: (nan_at((4, N_IN), (0, 0), np.inf), _val()[1]),
        ValueError,
        ["validation_data", "X", "finite", "inf"],
    ),
    "X width": (
        lambda: (np.zeros((4, 2)), _val()[1]),
        ValueError,
        ["validation_data", "X", "(n_samples, 3)", "(4, 2)"],
    ),
    "X empty": (
        lambda: (np.zeros((0, N_IN)), np.zeros((0, 2))),
        ValueError,
        ["validation_data", "X", "at least one sample"],
    ),
    "X complex": (
        lambda: (np.zeros((4, N_IN), dtype=complex), _val()[1]),
        TypeError,
        ["validation_data", "X", "complex"],
    ),
    "y NaN": (
        lambda: (_val()[0], nan_at((4, 2), (3, 1))),
        ValueError,
        ["validation_data", "y", "finite", "nan"],
    ),
    "y rows": (
        lambda: (_val()[0], np.zeros((3, 2))),
        ValueError,
        ["validation_data", "y", "4 rows", "(3, 2)"],
    ),
    "y columns": (
        lambda: (_val()[0], np.zeros((4, 1))),
        ValueError,
        ["validation_data", "y", "(4, 2)", "(4, 1)"],
    ),
    "y None": (lambda: (_val()[0], None), TypeError, ["validation_data", "y", "None"]),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES))
def test_bad_validation_data(case):
    make_validation, exc, fragments = VALIDATION_CASES[case]
    net = make_net("reg")
    X, y = clean_data("reg")
    assert_refused(
        net, exc, lambda: net.fit(X, y, epochs=2, validation_data=make_validation()), *fragments
    )


def test_bad_validation_labels_for_cross_entropy():
    net = make_net("clf")
    X, y = clean_data("clf")
    assert_refused(
        net,
        ValueError,
        lambda: net.fit(X, y, loss="cross_entropy", validation_data=(X[:3], np.array([0, 4, 1]))),
        "validation_data",
        "y",
        "[0, 4)",
        "4",
    )


def test_errors_are_raised_before_training_starts():
    """A bad late argument must not leave a partly trained network or a consumed generator."""
    net = make_net("reg")
    X, y = clean_data("reg")
    calls = []
    assert_refused(
        net,
        ValueError,
        lambda: net.fit(
            X,
            y,
            callback=lambda e, v: calls.append(e),
            validation_data=(X, np.full((N, 2), np.nan)),
        ),
        "validation_data",
    )
    assert_refused(
        net,
        TypeError,
        lambda: net.fit(X, y, verbose="loud", callback=lambda e, v: calls.append(e)),
        "verbose",
    )
    assert calls == []
    # ... and the network still trains exactly like an untouched twin.
    twin = make_net("reg")
    net.fit(X, y, epochs=3, batch_size=2)
    twin.fit(X, y, epochs=3, batch_size=2)
    assert net.params.tobytes() == twin.params.tobytes()


# ------------------------------------------------------------------------------------------
# Constructor
# ------------------------------------------------------------------------------------------

CONSTRUCTOR_CASES = {
    "layer_sizes one size": (dict(layer_sizes=[3]), ValueError, ["layer_sizes", "at least 2", "1"]),
    "layer_sizes empty": (dict(layer_sizes=[]), ValueError, ["layer_sizes", "at least 2", "0"]),
    "layer_sizes int": (dict(layer_sizes=5), TypeError, ["layer_sizes", "sequence", "int"]),
    "layer_sizes string": (
        dict(layer_sizes="1 20 1"),
        TypeError,
        ["layer_sizes", "sequence", "str"],
    ),
    "layer_sizes None": (dict(layer_sizes=None), TypeError, ["layer_sizes", "sequence", "None"]),
    "layer_sizes float": (
        dict(layer_sizes=[3, 2.5, 1]),
        TypeError,
        ["layer_sizes", "integer", "2.5", "position 1"],
    ),
    "layer_sizes float 2.0": (
        dict(layer_sizes=[3, 2.0, 1]),
        TypeError,
        ["layer_sizes", "integer", "2.0"],
    ),
    "layer_sizes bool": (
        dict(layer_sizes=[3, True, 1]),
        TypeError,
        ["layer_sizes", "integer", "True"],
    ),
    "layer_sizes string item": (
        dict(layer_sizes=[3, "4", 1]),
        TypeError,
        ["layer_sizes", "integer", "'4'"],
    ),
    "layer_sizes zero": (
        dict(layer_sizes=[3, 0, 1]),
        ValueError,
        ["layer_sizes", ">= 1", "0", "position 1"],
    ),
    "layer_sizes zero input": (
        dict(layer_sizes=[0, 4, 1]),
        ValueError,
        ["layer_sizes", ">= 1", "position 0"],
    ),
    "layer_sizes negative": (
        dict(layer_sizes=[3, 4, -1]),
        ValueError,
        ["layer_sizes", ">= 1", "-1"],
    ),
    "layer_sizes too many parameters": (
        dict(layer_sizes=[3, 10**20, 1]),
        ValueError,
        ["layer_sizes", "parameters", str(10**20)],
    ),
    "activation unknown": (dict(activation="swish"), ValueError, ["activation", "tanh", "'swish'"]),
    "activation softmax hidden": (
        dict(activation="softmax"),
        ValueError,
        ["activation", "relu", "'softmax'"],
    ),
    "activation list too short": (
        dict(layer_sizes=[3, 4, 5, 1], activation=["relu"]),
        ValueError,
        ["activation", "2", "1", "['relu']"],
    ),
    "activation list too long": (
        dict(activation=["relu", "tanh"]),
        ValueError,
        ["activation", "(1)", "2"],
    ),
    "activation list unknown": (
        dict(layer_sizes=[3, 4, 5, 1], activation=["relu", "gelu"]),
        ValueError,
        ["activation", "'gelu'"],
    ),
    "activation list non-str": (dict(activation=[3]), ValueError, ["activation", "3"]),
    "activation int": (dict(activation=3), TypeError, ["activation", "name", "int"]),
    "activation None": (dict(activation=None), TypeError, ["activation", "name", "None"]),
    "activation unknown no hidden": (
        dict(layer_sizes=[3, 1], activation="swish"),
        ValueError,
        ["activation", "'swish'"],
    ),
    "output unknown": (
        dict(output_activation="relu"),
        ValueError,
        ["output_activation", "softmax", "'relu'"],
    ),
    "output None": (
        dict(output_activation=None),
        ValueError,
        ["output_activation", "softmax", "None"],
    ),
    "softmax one output": (
        dict(layer_sizes=[3, 4, 1], output_activation="softmax"),
        ValueError,
        ["output_activation", "softmax", "2", "1"],
    ),
    "dtype int32": (dict(dtype="int32"), ValueError, ["dtype", "float32", "'int32'"]),
    "dtype float16": (dict(dtype="float16"), ValueError, ["dtype", "float64", "'float16'"]),
    "dtype np.float16": (dict(dtype=np.float16), ValueError, ["dtype", "float64", "float16"]),
    "dtype complex": (dict(dtype="complex128"), ValueError, ["dtype", "float64", "complex128"]),
    "dtype bogus": (dict(dtype="bogus"), TypeError, ["dtype", "float64", "'bogus'"]),
    "seed negative": (dict(seed=-1), ValueError, ["seed", ">= 0", "-1"]),
    "seed string": (dict(seed="x"), TypeError, ["seed", "integer", "'x'"]),
    "seed float": (dict(seed=1.5), TypeError, ["seed", "integer", "1.5"]),
    "seed bool": (dict(seed=True), TypeError, ["seed", "integer", "True"]),
    "maxout_pieces 0": (
        dict(activation="maxout", maxout_pieces=0),
        ValueError,
        ["maxout_pieces", ">= 1", "0"],
    ),
    "maxout_pieces negative": (dict(maxout_pieces=-2), ValueError, ["maxout_pieces", ">= 1", "-2"]),
    "maxout_pieces float": (
        dict(maxout_pieces=2.0),
        TypeError,
        ["maxout_pieces", "integer", "2.0"],
    ),
    "leaky_slope negative": (
        dict(activation="leaky_relu", leaky_slope=-0.1),
        ValueError,
        ["leaky_slope", "[0, 1]", "-0.1"],
    ),
    "leaky_slope above 1": (dict(leaky_slope=1.5), ValueError, ["leaky_slope", "[0, 1]", "1.5"]),
    "leaky_slope NaN": (
        dict(leaky_slope=float("nan")),
        ValueError,
        ["leaky_slope", "[0, 1]", "nan"],
    ),
    "leaky_slope string": (
        dict(leaky_slope="0.1"),
        TypeError,
        ["leaky_slope", "real number", "str"],
    ),
    "elu_alpha negative": (dict(elu_alpha=-1.0), ValueError, ["elu_alpha", ">= 0", "-1.0"]),
    "elu_alpha inf": (dict(elu_alpha=float("inf")), ValueError, ["elu_alpha", "finite", "inf"]),
    "elu_alpha None": (dict(elu_alpha=None), TypeError, ["elu_alpha", "real number", "None"]),
    "elu_alpha huge int": (dict(elu_alpha=10**400), ValueError, ["elu_alpha", "finite", "large"]),
    "leaky_slope huge int": (dict(leaky_slope=10**400), ValueError, ["leaky_slope", "[0, 1]"]),
}


@pytest.mark.parametrize("case", list(CONSTRUCTOR_CASES))
def test_bad_constructor_arguments(case):
    kwargs, exc, fragments = CONSTRUCTOR_CASES[case]
    kwargs = dict(kwargs)
    sizes = kwargs.pop("layer_sizes", [3, 4, 2])
    assert_refused(None, exc, lambda: nnfast.MLP(sizes, **kwargs), *fragments)


def test_valid_constructor_edge_values_are_accepted():
    assert nnfast.MLP([1, 1]).n_params == 2
    assert nnfast.MLP((2, 3, 1), seed=0).layer_sizes == (2, 3, 1)
    assert nnfast.MLP(np.array([2, 3, 1]), seed=np.int64(4)).layer_sizes == (2, 3, 1)
    assert nnfast.MLP([2, 3, 2], output_activation="softmax").activations[-1] == "softmax"
    assert nnfast.MLP([2, 3, 1], activation="leaky_relu", leaky_slope=0).leaky_slope == 0.0
    assert nnfast.MLP([2, 3, 1], activation="leaky_relu", leaky_slope=1).leaky_slope == 1.0
    assert nnfast.MLP([2, 3, 1], activation="elu", elu_alpha=0).elu_alpha == 0.0
    assert nnfast.MLP([2, 3, 1], activation="maxout", maxout_pieces=1).maxout_pieces == 1
    assert (
        nnfast.MLP([2, 3, 1], seed=0).params.tobytes()
        == nnfast.MLP([2, 3, 1], seed=np.uint8(0)).params.tobytes()
    )


# ------------------------------------------------------------------------------------------
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
