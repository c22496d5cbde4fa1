"""Export to ONNX: :func:`nnfast.to_onnx`, and the graph code that skl2onnx's converters
for nnfast's estimators share with it (nnfast.sklearn._onnx, nnfast.sklearn._skl2onnx).

The graph computes what ``predict`` computes, ``f(X @ W + b)`` layer by layer, with operators
of the default ONNX domain only (opset :data:`OPSET`; the skl2onnx converters accept any
target opset from :data:`MIN_OPSET`), in float32 or float64. Where onnxruntime's operator
is less accurate than nnfast's kernels, or has no float64 kernel, the graph composes the
function from exact or correctly rounded pieces instead (each measured within 2 ulp):

- ``sigmoid(x) = where(x >= 0, 1 / (1 + e), e / (1 + e))`` with ``e = exp(-|x|)``, which
  neither overflows nor loses relative accuracy (onnxruntime 1.32's Sigmoid is off by 2%
  in float32 and 3e-11 in float64 at ``x = -12``);
- ``elu(x) = where(x >= 0, x, alpha * expm1(x))``, ``expm1`` by Kahan's
  ``(u - 1) * x / log(u)`` with ``u = exp(x)`` (ONNX has no expm1; ``exp(x) - 1``, which
  onnxruntime's Elu computes, keeps no correct digit as ``x -> 0``);
- ``leaky_relu(x) = max(x, slope * x)``, the formula of nnfast's kernel;
- maxout: the Max of its ``k`` pieces, each ``X @ W[:, :, p] + b[:, p]``.

What the graph of each model outputs (the names and types skl2onnx uses for scikit-learn's
models; the input is ``X``, ``(N, n_features)``):

- :class:`nnfast.MLP`: ``Y``, the network's output ``(N, n_out)`` (``predict``; in the
  targets' units for a network with ``target_scaling``).
- ``MLPRegressor``: ``variable`` ``(N, n_outputs)`` (``predict``, also for one output);
  with ``loss="gaussian_nll"`` also ``std`` (``predict(X, return_std=True)``).
- ``MLPClassifier``: ``label`` (int64 or string, ``(N,)``; multilabel int64
  ``(N, n_labels)``) and ``probabilities`` ``(N, n_classes)`` (``predict``,
  ``predict_proba``). Float or bool ``classes_`` become int64 labels, as in skl2onnx
  (non-integer float labels are refused).
- ``MLPAutoencoder``: ``variable`` ``(N, n_components)`` (``transform``, the encoder).
- ``MLPEnsembleRegressor``: ``variable`` and ``std`` (``predict(X, return_std=True)``);
  ``MLPEnsembleClassifier``: ``label`` and ``probabilities``, as a classifier.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnfast._spec import LOG_VAR_RANGE, check_dtype
from nnfast.network import MLP

# The opset of the models to_onnx writes: onnxruntime >= 1.13 and onnx >= 1.12 read it.
OPSET = 17
# The graph uses no operator whose meaning changed after opset 13 (Softmax on 2-D input
# with axis=1 means the same before it; GreaterOrEqual needs 12).
MIN_OPSET = 13

# expm1(x) rounds to -1 below this in float32 and float64: the clamp keeps exp(x) > 0.
_EXPM1_FLOOR = -50.0


def _import_onnx():
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            "nnfast.to_onnx needs the onnx package, which is not installed: "
            'pip install onnx (or pip install "nnfast[onnx]")'
        ) from err
    return onnx


# ---- where the nodes go ---------------------------------------------------------------------


def _tensor(onnx, name, array):
    """A TensorProto of ``array`` (numbers, or strings stored as UTF-8)."""
    if array.dtype.kind in "OUS":
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel()]
        return onnx.helper.make_tensor(name, onnx.TensorProto.STRING, array.shape, values)
    return onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)


class ProtoGraph:
    """Nodes and initializers of a model built by :func:`to_onnx`."""

    def __init__(self, onnx, reserved=()):
        self._onnx = onnx
        self.nodes = []
        self.initializers = []
        self._names = set(reserved)  # the graph's input and output names
        self._constants = {}

    def _unique(self, hint):
        name, i = hint, 0
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def constant(self, hint, array):
        """The name of an initializer holding ``array`` (equal numeric arrays share one)."""
        key = None
        if array.dtype.kind not in "OUS":
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._constants:
                return self._constants[key]
        name = self._unique(hint)
        self.initializers.append(_tensor(self._onnx, name, array))
        if key is not None:
            self._constants[key] = name
        return name

    def op(self, op_type, inputs, output=None, **attrs):
        """Add ``op_type(*inputs)``; return the name of its one output."""
        output = output or self._unique(op_type.lower())
        self.nodes.append(
            self._onnx.helper.make_node(
                op_type, list(inputs), [output], name=f"{op_type}_{len(self.nodes)}", **attrs
            )
        )
        return output


class Skl2onnxGraph:
    """The same interface over skl2onnx's ``scope`` and ``container`` (a converter's
    arguments): nodes and initializers go into the model skl2onnx is building."""

    def __init__(self, scope, container):
        self._scope = scope
        self._container = container

    def constant(self, hint, array):
        onnx = _import_onnx()
        name = self._scope.get_unique_variable_name(hint)
        tensor = _tensor(onnx, name, array)
        if tensor.data_type == onnx.TensorProto.STRING:  # skl2onnx copies only raw_data
            self._container.add_initializer(
                name, tensor.data_type, list(array.shape), list(tensor.string_data)
            )
        else:
            self._container.add_initializer(name, tensor.data_type, list(array.shape), tensor)
        return name

    def op(self, op_type, inputs, output=None, **attrs):
        output = output or self._scope.get_unique_variable_name(op_type.lower())
        self._container.add_node(
            op_type,
            list(inputs),
            [output],
            name=self._scope.get_unique_operator_name(op_type),
            **attrs,
        )
        return output


# ---- the network ------------------------------------------------------------------------------


@dataclass
class Network:
    """One network's layers in the export dtype: ``(W, b, activation)`` each, nnfast's
    activation names, ``W`` ``(n_in, n_out)`` (``(n_in, n_out, k)`` for maxout)."""

    layers: list
    leaky_slope: float
    elu_alpha: float

    @property
    def dtype(self):
        return self.layers[0][0].dtype


def _scalar(graph, value, dtype):
    return graph.constant("c", np.array(value, dtype=dtype))


def _sigmoid(graph, x, net):
    one, zero = _scalar(graph, 1, net.dtype), _scalar(graph, 0, net.dtype)
    e = graph.op("Exp", [graph.op("Neg", [graph.op("Abs", [x])])])
    denominator = graph.op("Add", [e, one])
    positive = graph.op("Div", [one, denominator])
    negative = graph.op("Div", [e, denominator])
    return graph.op("Where", [graph.op("GreaterOrEqual", [x, zero]), positive, negative])


def _expm1_of_negative_part(graph, x, dtype):
    """``expm1(min(x, 0))`` by Kahan's ``(u - 1) * x / log(u)``, ``u = exp(x)`` (``x`` where
    ``u`` rounds to 1): the rounding errors of ``u - 1`` and ``log(u)`` cancel."""
    one = _scalar(graph, 1, dtype)
    x = graph.op("Min", [x, _scalar(graph, 0, dtype)])
    x = graph.op("Max", [x, _scalar(graph, _EXPM1_FLOOR, dtype)])
    u = graph.op("Exp", [x])
    kahan = graph.op("Div", [graph.op("Mul", [graph.op("Sub", [u, one]), x]), graph.op("Log", [u])])
    return graph.op("Where", [graph.op("Equal", [u, one]), x, kahan])


def _elu(graph, x, net):
    negative = graph.op(
        "Mul",
        [_scalar(graph, net.elu_alpha, net.dtype), _expm1_of_negative_part(graph, x, net.dtype)],
    )
    return graph.op(
        "Where", [graph.op("GreaterOrEqual", [x, _scalar(graph, 0, net.dtype)]), x, negative]
    )


def _leaky_relu(graph, x, net):
    return graph.op("Max", [x, graph.op("Mul", [x, _scalar(graph, net.leaky_slope, net.dtype)])])


_ACTIVATIONS: dict[str, Callable] = {
    "identity": lambda graph, x, net: x,
    "sigmoid": _sigmoid,
    "tanh": lambda graph, x, net: graph.op("Tanh", [x]),
    "relu": lambda graph, x, net: graph.op("Relu", [x]),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "softmax": lambda graph, x, net: graph.op("Softmax", [x], axis=1),
    "exp": lambda graph, x, net: graph.op("Exp", [x]),
}


def forward(graph, x, net):
    """The network's output for the tensor named ``x``: ``f(x @ W + b)`` layer by layer."""
    for W, b, activation in net.layers:
        if activation == "maxout":
            pieces = [
                graph.op(
                    "Add",
                    [
                        graph.op("MatMul", [x, graph.constant("W", W[:, :, p])]),
                        graph.constant("b", b[:, p]),
                    ],
                )
                for p in range(W.shape[2])
            ]
            x = graph.op("Max", pieces) if len(pieces) > 1 else pieces[0]
        else:
            z = graph.op(
                "Add", [graph.op("MatMul", [x, graph.constant("W", W)]), graph.constant("b", b)]
            )
            x = _ACTIVATIONS[activation](graph, z, net)
    return x


def _columns(graph, x, start, stop):
    """``x[:, start:stop]``."""

    def index(value):
        return graph.constant("i", np.array([value], dtype=np.int64))

    return graph.op("Slice", [x, index(start), index(stop), index(1)])


def _clipped_log_variance(graph, out, k, dtype):
    return graph.op(
        "Clip",
        [
            _columns(graph, out, k, 2 * k),
            _scalar(graph, LOG_VAR_RANGE[0], dtype),
            _scalar(graph, LOG_VAR_RANGE[1], dtype),
        ],
    )


def _in_target_units(graph, mean, scaling, dtype):
    """``target_mean + target_std · mean`` (nnfast._targets.scaled_mean_std)."""
    offset, scale = (graph.constant("target", np.asarray(a, dtype=dtype)) for a in scaling)
    return graph.op("Add", [graph.op("Mul", [mean, scale]), offset])


def gaussian_mean_std(graph, out, k, dtype, scaling=None):
    """``(mean, std)`` of a gaussian_nll output: its first ``k`` columns, and
    ``exp(clip(s, -30, 30) / 2)`` of the last ``k`` (nnfast.network.gaussian_mean_std);
    with ``scaling`` (the targets' ``(mean, std)``) both in the targets' units."""
    log_var = _clipped_log_variance(graph, out, k, dtype)
    std = graph.op("Exp", [graph.op("Mul", [log_var, _scalar(graph, 0.5, dtype)])])
    mean = _columns(graph, out, 0, k)
    if scaling is None:
        return mean, std
    scale = graph.constant("target", np.asarray(scaling[1], dtype=dtype))
    return _in_target_units(graph, mean, scaling, dtype), graph.op("Mul", [std, scale])


def gaussian_output_in_target_units(graph, out, k, dtype, scaling):
    """A gaussian output in the targets' units: the means ``target_mean + target_std · μ``,
    then ``clip(s) + 2 log target_std`` (nnfast._targets.scaled_output)."""
    mean = _in_target_units(graph, _columns(graph, out, 0, k), scaling, dtype)
    shift = graph.constant("target", np.asarray(2 * np.log(scaling[1]), dtype=dtype))
    log_var = graph.op("Add", [_clipped_log_variance(graph, out, k, dtype), shift])
    return graph.op("Concat", [mean, log_var], axis=1)


# ---- what each model exports -------------------------------------------------------------------


@dataclass
class Output:
    """One graph output: ``kind`` is "float" (the export dtype), "int64" or "string"."""

    name: str
    kind: str
    shape: list  # None for the batch dimension


@dataclass
class Export:
    """How a model becomes a graph: ``emit(graph, x)`` adds the nodes that compute
    ``outputs`` from the input tensor named ``x`` (float, ``(N, n_features)``) and returns
    the names of the tensors holding them, in the order of ``outputs``."""

    n_features: int
    dtype: np.dtype
    outputs: list
    emit: Callable


def describe(model, dtype=None, class_indices=False):
    """The :class:`Export` of ``model`` (an MLP or a fitted nnfast.sklearn estimator);
    with ``class_indices`` a classifier's labels are the indices of its classes (skl2onnx's
    option ``nocl``)."""
    if dtype is not None:
        dtype = check_dtype(dtype)
    if isinstance(model, MLP):
        return _describe_mlp(model, dtype)
    estimators = sys.modules.get("nnfast.sklearn")  # imported already if model is one
    if estimators is not None:
        from nnfast.sklearn import _onnx as estimator_onnx

        export = estimator_onnx.describe(estimators, model, dtype, class_indices)
        if export is not None:
            return export
    raise TypeError(
        "model: expected an nnfast.MLP or a fitted estimator of nnfast.sklearn (MLPRegressor, "
        "MLPClassifier, MLPAutoencoder, MLPEnsembleRegressor, MLPEnsembleClassifier), "
        f"got {type(model).__name__} {model!r:.80}"
    )


def _describe_mlp(net, dtype):
    dtype = dtype or net.dtype
    layers = [
        (np.asarray(W, dtype=dtype), np.asarray(b, dtype=dtype), activation)
        for W, b, activation in zip(net.weights, net.biases, net.activations)
    ]
    network = Network(layers, net.leaky_slope, net.elu_alpha)
    scaling, k = net.target_scaling, net.layer_sizes[-1] // 2

    def emit(graph, x):
        out = forward(graph, x, network)
        if scaling is None:
            return [out]
        return [gaussian_output_in_target_units(graph, out, k, dtype, scaling)]

    return Export(
        net.layer_sizes[0], dtype, [Output("Y", "float", [None, net.layer_sizes[-1]])], emit
    )


# ---- nnfast.to_onnx -----------------------------------------------------------------------------


def to_onnx(model, dtype=None):
    """An ONNX model computing what ``model`` predicts.

    Parameters
    ----------
    model : nnfast.MLP or a fitted estimator of nnfast.sklearn
        ``MLPRegressor``, ``MLPClassifier``, ``MLPAutoencoder`` (its ``transform``),
        ``MLPEnsembleRegressor`` or ``MLPEnsembleClassifier``.
    dtype : {None, "float32", "float64"}
        Precision of the graph's input, parameters and arithmetic; None: the model's.

    Returns
    -------
    onnx.ModelProto
        Opset :data:`OPSET` (onnxruntime >= 1.13), input ``X`` ``(N, n_features)``; the
        outputs are listed in the module docstring (:mod:`nnfast._onnx`): ``Y`` for an
        MLP; ``variable`` (and ``std``) for regressors and the autoencoder; ``label`` and
        ``probabilities`` for classifiers. Save it with ``onnx.save(model, path)``.

    Examples
    --------
    >>> import numpy as np, nnfast
    >>> net = nnfast.MLP([3, 8, 2], activation="elu", seed=0)
    >>> model = nnfast.to_onnx(net)
    >>> import onnxruntime  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession(model.SerializeToString())  # doctest: +SKIP
    >>> session.run(None, {"X": np.ones((5, 3))})[0].shape  # doctest: +SKIP
    (5, 2)
    """
    onnx = _import_onnx()
    from nnfast import __version__

    export = describe(model, dtype)
    helper = onnx.helper
    graph = ProtoGraph(onnx, reserved=["X"] + [out.name for out in export.outputs])
    for out, result in zip(export.outputs, export.emit(graph, "X")):
        graph.op("Identity", [result], output=out.name)
    float_type = helper.np_dtype_to_tensor_dtype(export.dtype)
    elem_types = {
        "float": float_type,
        "int64": onnx.TensorProto.INT64,
        "string": onnx.TensorProto.STRING,
    }
    inputs = [helper.make_tensor_value_info("X", float_type, [None, export.n_features])]
    outputs = [
        helper.make_tensor_value_info(out.name, elem_types[out.kind], out.shape)
        for out in export.outputs
    ]
    graph_proto = helper.make_graph(
        graph.nodes,
        f"nnfast_{type(model).__name__}",
        inputs,
        outputs,
        initializer=graph.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    return helper.make_model(
        graph_proto,
        opset_imports=opsets,
        producer_name="nnfast",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
    )
