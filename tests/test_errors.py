"""Every invalid input to nnfast.MLP is refused with a clear error, and nothing changes.

API.md: "Every invalid input raises ValueError or TypeError naming the argument, what was
expected and what came [...] Nothing invalid reaches a kernel." Each case below checks the
exception type exactly, that the message contains the argument's name and fragments of both
the expectation and the offending value, and that the network's parameters (and random
state) are bit-identical after the failed call. The constructor's own arguments are in
test_constructor_errors.py; the converse (valid but unusual inputs give the results of clean
float64 C arrays) in test_unusual_inputs.py; the helpers in refusal.py.
"""

import numpy as np
import pytest
from refusal import LOSS_OF, N_IN, N, assert_refused, clean_data, make_net


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
