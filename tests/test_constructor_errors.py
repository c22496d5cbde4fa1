"""Every invalid argument of nnfast.MLP's constructor is refused with a clear error
(ValueError or TypeError naming the argument, the expectation and what came), and valid
edge values are accepted."""

import numpy as np
import pytest
from refusal import assert_refused

import nnfast

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
