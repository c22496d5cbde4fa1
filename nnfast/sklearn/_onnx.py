"""The ONNX graphs of nnfast.sklearn's fitted estimators (see nnfast._onnx), built from their
public fitted attributes only: ``coefs_``, ``intercepts_``, ``activation``,
``out_activation_``, ``n_outputs_``, ``n_features_in_``, ``classes_``, ``estimators_``.
(So an ``activation`` changed by ``set_params`` after ``fit``, which ``predict`` ignores
until the next fit, is exported as set.) A gaussian_nll regressor is recognised by its
``2 * n_outputs_`` output units (its mean and std are mapped back to the targets' units
with ``target_mean_`` and ``target_scale_``), a multilabel classifier by several logistic
outputs.

Used by :func:`nnfast.to_onnx` and by the skl2onnx converters (nnfast.sklearn._skl2onnx).
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.exceptions import NotFittedError

from nnfast._onnx import Export, Network, Output, forward, gaussian_mean_std
from nnfast.network import MLP

_HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout")
_REGRESSOR_OUTPUTS = ("identity", "exp")
_CLASSIFIER_OUTPUTS = ("sigmoid", "softmax")


def describe(estimators, model, dtype, class_indices=False):
    """The Export of ``model``, an instance of a class of the module ``estimators``
    (nnfast.sklearn), or None if it is none of them; ``class_indices``: a classifier's
    labels are the indices of its classes."""
    if isinstance(model, estimators.MLPEnsembleClassifier):
        return _ensemble_classifier(model, dtype, class_indices)
    if isinstance(model, estimators.MLPClassifier):
        return _classifier(model, dtype, class_indices)
    kinds = [
        (estimators.MLPEnsembleRegressor, _ensemble_regressor),
        (estimators.MLPRegressor, _regressor),
        (estimators.MLPAutoencoder, _autoencoder),
    ]
    for cls, export in kinds:
        if isinstance(model, cls):
            return export(model, dtype)
    return None


# ---- reading a fitted estimator ---------------------------------------------------------------


def _check_fitted(model, attribute, where):
    if not hasattr(model, attribute):
        raise NotFittedError(
            f"{where}: expected a fitted {type(model).__name__}, got one that "
            "is not fitted yet; call fit before exporting it"
        )


def _model_dtype(model, dtype, where):
    """The export dtype: ``dtype``, or the dtype of the model's weights."""
    if dtype is not None:
        return dtype
    found = np.asarray(model.coefs_[0]).dtype
    if found not in (np.float32, np.float64):
        raise ValueError(f"{where}.coefs_[0]: expected float32 or float64 weights, got {found}")
    return found


def _layers(model, n_layers, hidden, output, dtype, where):
    """The first ``n_layers`` layers of a fitted estimator's ``coefs_``/``intercepts_`` as a
    :class:`Network`, every hidden layer ``hidden`` (a list: one name per layer but the
    last) and the last ``output``; shapes and values checked, ``where`` names the model in
    messages."""
    coefs, intercepts = list(model.coefs_), list(model.intercepts_)
    if len(coefs) != len(intercepts) or len(coefs) < n_layers:
        raise ValueError(
            f"{where}.coefs_, {where}.intercepts_: expected {n_layers} or more "
            f"arrays each, got {len(coefs)} and {len(intercepts)}"
        )
    activations = list(hidden) + [output]
    width = model.n_features_in_
    layers = []
    for i, (W, b, activation) in enumerate(zip(coefs, intercepts, activations)):
        W, b = np.asarray(W), np.asarray(b)
        maxout = activation == "maxout"
        if W.ndim != (3 if maxout else 2) or W.shape[0] != width or b.shape != W.shape[1:]:
            pieces = ", k" if maxout else ""
            raise ValueError(
                f"{where}.coefs_[{i}], {where}.intercepts_[{i}]: expected shapes (n_in, n_out"
                f"{pieces}) and (n_out{pieces}) with n_in = {width} for a {activation!r} "
                f"layer, got {W.shape} and {b.shape}"
            )
        for name, array in (("coefs_", W), ("intercepts_", b)):
            if array.dtype.kind != "f" or not np.isfinite(array).all():
                raise ValueError(f"{where}.{name}[{i}]: expected finite floating-point values")
        layers.append((W.astype(dtype), b.astype(dtype), activation))
        width = W.shape[1]
    # The estimators build their network with MLP's defaults for these (they have no
    # parameters of their own for them, yet).
    defaults = inspect.signature(MLP).parameters
    return Network(
        layers,
        getattr(model, "leaky_slope", defaults["leaky_slope"].default),
        getattr(model, "elu_alpha", defaults["elu_alpha"].default),
    )


def _sklearn_activation(name):
    """nnfast's name for a scikit-learn activation name."""
    return {"logistic": "sigmoid"}.get(name, name)


def _network(model, dtype, where, outputs, n_layers=None):
    """The first ``n_layers`` (default: all) layers of a fitted MLP estimator: its
    ``activation`` in every layer but the last, which is ``out_activation_`` (one of
    ``outputs``) or, with ``outputs=None``, linear (the autoencoder's bottleneck)."""
    _check_fitted(model, "coefs_", where)
    n_layers = n_layers or len(model.coefs_)
    hidden = _sklearn_activation(model.activation)
    if hidden not in _HIDDEN:
        raise ValueError(
            f"{where}.activation: expected one of {_HIDDEN} (scikit-learn's "
            f"'logistic' for sigmoid), got {model.activation!r}"
        )
    output = "identity"
    if outputs is not None:
        output = _sklearn_activation(model.out_activation_)
        if output not in outputs:
            raise ValueError(
                f"{where}.out_activation_: expected one of {outputs}, got {model.out_activation_!r}"
            )
    dtype = _model_dtype(model, dtype, where)
    return _layers(model, n_layers, [hidden] * (n_layers - 1), output, dtype, where)


def _width(net):
    return net.layers[-1][0].shape[1]


def _regressor_parts(model, dtype, where):
    """(network, n_outputs, whether the output holds gaussian_nll means and log-variances)."""
    net = _network(model, dtype, where, _REGRESSOR_OUTPUTS)
    k, width = model.n_outputs_, _width(net)
    if width not in (k, 2 * k) or (width == 2 * k and net.layers[-1][2] != "identity"):
        raise ValueError(
            f"{where}.coefs_[-1]: expected n_outputs_ = {k} columns (or 2 * {k} "
            f"for loss='gaussian_nll'), got {width}"
        )
    return net, k, width == 2 * k


def _target_scaling(model):
    """A gaussian_nll regressor's ``(target_mean_, target_scale_)``, None if it has none
    (pickled before its targets were standardised)."""
    if getattr(model, "target_scale_", None) is None:
        return None
    return model.target_mean_, model.target_scale_


def _classifier_parts(model, dtype, where):
    """(network, kind: "binary", "multiclass" or "multilabel")."""
    net = _network(model, dtype, where, _CLASSIFIER_OUTPUTS)
    k = model.n_outputs_
    if _width(net) != k:
        raise ValueError(
            f"{where}.coefs_[-1]: expected n_outputs_ = {k} columns, got {_width(net)}"
        )
    if net.layers[-1][2] == "softmax":
        return net, "multiclass"
    return net, "binary" if k == 1 else "multilabel"


def _class_labels(classes, where, class_indices=False):
    """(labels as an int64 or string array, "int64" or "string"): skl2onnx's types;
    ``class_indices``: ``0, 1, …`` instead."""
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.size == 0:
        raise ValueError(
            f"{where}.classes_: expected a non-empty 1-D array, got shape {classes.shape}"
        )
    if class_indices:
        return np.arange(classes.size, dtype=np.int64), "int64"
    if classes.dtype.kind in "US" or (
        classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes)
    ):
        return classes.astype(str), "string"
    if classes.dtype.kind in "biu" and np.all(classes <= np.iinfo(np.int64).max):
        return classes.astype(np.int64), "int64"
    if (
        classes.dtype.kind == "f"
        and np.all(np.isfinite(classes))
        and np.all(classes == np.round(classes))
        and np.all(np.abs(classes) < 2.0**63)
    ):
        return classes.astype(np.int64), "int64"
    raise ValueError(
        f"{where}.classes_: ONNX class labels are int64 or strings; expected "
        f"integers, integer-valued floats, booleans or strings, got {classes!r}"
    )


# ---- graph pieces ---------------------------------------------------------------------------


def _probabilities(graph, x, net, kind):
    """``predict_proba``: ``[1 - p, p]`` for a binary classifier, else the output."""
    p = forward(graph, x, net)
    if kind != "binary":
        return p
    one = graph.constant("c", np.array(1, dtype=net.dtype))
    return graph.op("Concat", [graph.op("Sub", [one, p]), p], axis=1)


def _labels(graph, proba, kind, classes, dtype):
    """``predict``: every label whose probability exceeds 0.5 (multilabel), else the class
    of the highest probability (the first of ties, as ``np.argmax``)."""
    from nnfast._onnx import _import_onnx

    if kind == "multilabel":
        above = graph.op("Greater", [proba, graph.constant("c", np.array(0.5, dtype=dtype))])
        return graph.op("Cast", [above], to=_import_onnx().TensorProto.INT64)
    best = graph.op("ArgMax", [proba], axis=1, keepdims=0)
    return graph.op("Gather", [graph.constant("classes", classes), best], axis=0)


def _mean(graph, tensors, dtype):
    total = graph.op("Sum", tensors)
    return graph.op("Div", [total, graph.constant("c", np.array(len(tensors), dtype=dtype))])


def _label_output(kind, label_kind, n_labels):
    if kind == "multilabel":
        return Output("label", "int64", [None, n_labels])
    return Output("label", label_kind, [None])


# ---- one Export per estimator ------------------------------------------------------------------


def _regressor(model, dtype, where="model"):
    net, k, gaussian = _regressor_parts(model, dtype, where)
    outputs = [Output("variable", "float", [None, k])]
    if gaussian:
        outputs.append(Output("std", "float", [None, k]))

    scaling = _target_scaling(model) if gaussian else None

    def emit(graph, x):
        out = forward(graph, x, net)
        return list(gaussian_mean_std(graph, out, k, net.dtype, scaling)) if gaussian else [out]

    return Export(model.n_features_in_, net.dtype, outputs, emit)


def _classifier(model, dtype, class_indices=False, where="model"):
    net, kind = _classifier_parts(model, dtype, where)
    classes, label_kind = _class_labels(model.classes_, where, class_indices)
    n_classes = 2 if kind == "binary" else model.n_outputs_

    def emit(graph, x):
        proba = _probabilities(graph, x, net, kind)
        return [_labels(graph, proba, kind, classes, net.dtype), proba]

    outputs = [
        _label_output(kind, label_kind, n_classes),
        Output("probabilities", "float", [None, n_classes]),
    ]
    return Export(model.n_features_in_, net.dtype, outputs, emit)


def _autoencoder(model, dtype, where="model"):
    """``transform``: the layers up to the (linear) bottleneck."""
    _check_fitted(model, "coefs_", where)
    net = _network(model, dtype, where, None, n_layers=len(model.coefs_) // 2)
    outputs = [Output("variable", "float", [None, _width(net)])]
    return Export(
        model.n_features_in_, net.dtype, outputs, lambda graph, x: [forward(graph, x, net)]
    )


def _members(model, where):
    _check_fitted(model, "estimators_", where)
    members = list(model.estimators_)
    if not members:
        raise ValueError(f"{where}.estimators_: expected at least one fitted member, got none")
    return members


def _ensemble_regressor(model, dtype, where="model"):
    """``predict(X, return_std=True)``: the members' mean, and the standard deviation of
    their means (with gaussian_nll members, of their mixture: ``sqrt(mean(std_i²) +
    var(mean_i))``)."""
    members = _members(model, where)
    dtype = _model_dtype(members[0], dtype, f"{where}.estimators_[0]")
    parts = [_regressor_parts(m, dtype, f"{where}.estimators_[{i}]") for i, m in enumerate(members)]
    k, gaussian = parts[0][1], parts[0][2]
    if any(part[1:] != (k, gaussian) for part in parts):
        raise ValueError(
            f"{where}.estimators_: expected members with the same outputs (n_outputs_ and loss)"
        )

    def emit(graph, x):
        outs = [forward(graph, x, net) for net, _, _ in parts]
        if gaussian:
            pairs = [
                gaussian_mean_std(graph, out, k, dtype, _target_scaling(member))
                for out, member in zip(outs, members)
            ]
            means = [mean for mean, _ in pairs]
            noise = _mean(graph, [graph.op("Mul", [std, std]) for _, std in pairs], dtype)
        else:
            means = outs
        mean = _mean(graph, means, dtype)
        deviations = [graph.op("Sub", [m, mean]) for m in means]
        variance = _mean(graph, [graph.op("Mul", [d, d]) for d in deviations], dtype)
        if gaussian:
            variance = graph.op("Add", [noise, variance])
        return [mean, graph.op("Sqrt", [variance])]

    outputs = [Output("variable", "float", [None, k]), Output("std", "float", [None, k])]
    return Export(model.n_features_in_, dtype, outputs, emit)


def _ensemble_classifier(model, dtype, class_indices=False, where="model"):
    """``predict`` and ``predict_proba``: the members' mean probabilities, each member's
    columns placed at its classes among the ensemble's (0 for a class it never saw)."""
    members = _members(model, where)
    dtype = _model_dtype(members[0], dtype, f"{where}.estimators_[0]")
    classes, label_kind = _class_labels(model.classes_, where, class_indices)
    n_classes = len(classes)
    parts = []
    for i, member in enumerate(members):
        name = f"{where}.estimators_[{i}]"
        net, kind = _classifier_parts(member, dtype, name)
        placement = None
        if kind != "multilabel" and not np.array_equal(member.classes_, model.classes_):
            columns = np.searchsorted(model.classes_, member.classes_)
            placement = np.zeros((len(member.classes_), n_classes), dtype=dtype)
            placement[np.arange(len(columns)), columns] = 1  # x·1 + 0 + … is exact
        parts.append((net, kind, placement))
    multilabel = parts[0][1] == "multilabel"
    if any((kind == "multilabel") != multilabel for _, kind, _ in parts):
        raise ValueError(f"{where}.estimators_: expected members that are all multilabel or none")

    def emit(graph, x):
        probas = []
        for net, kind, placement in parts:
            proba = _probabilities(graph, x, net, kind)
            if placement is not None:
                proba = graph.op("MatMul", [proba, graph.constant("placement", placement)])
            probas.append(proba)
        proba = _mean(graph, probas, dtype)
        return [_labels(graph, proba, parts[0][1], classes, dtype), proba]

    outputs = [
        _label_output(parts[0][1], label_kind, n_classes),
        Output("probabilities", "float", [None, n_classes]),
    ]
    return Export(model.n_features_in_, dtype, outputs, emit)
