"""Fitted estimators to and from the header and arrays of a saved file (format version 2).

:func:`nnfast.save` hands an estimator to :func:`file_contents`, which returns the JSON
header and the networks' parameter arrays; :func:`nnfast.load` hands a header whose format
names an estimator to :func:`plan`, which checks every field and returns what to read and
how to build the estimator from it. The archive itself (ZIP, ``.npy``, the networks'
fields) is :mod:`nnfast.io`'s, the encoding of single values (non-finite numbers, class
labels) :mod:`nnfast.sklearn._persist_values`'s; the layout is specified in
``docs/file_format.md``.

An estimator is stored as ``{"params": ..., "attributes": ..., "network": ...}``: its
constructor parameters (``get_params(deep=False)``), the fitted attributes, and its
network's fields, whose parameters are the member ``params.npy``. An ensemble has no
network of its own; ``attributes.estimators_`` lists its members, member ``i``'s
parameters in ``estimators_/<i>/params.npy``.

A loaded estimator is the fitted one without its optimizer's state (Adam's moments, SGD's
velocity, rprop's steps) and random generator: ``predict`` & co. are identical; ``fit``
refits from scratch; ``fit`` with ``warm_start=True`` continues from the saved weights and
stopping-rule state exactly as the original's would (it starts a new optimizer anyway);
``partial_fit`` continues from the saved weights with a new optimizer.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from nnfast import io
from nnfast.sklearn import _persist_values as json_values
from nnfast.sklearn._autoencoder import MLPAutoencoder
from nnfast.sklearn._base import _OUTPUT_NAME
from nnfast.sklearn._ensemble import MLPEnsembleClassifier, MLPEnsembleRegressor
from nnfast.sklearn._multilayer_perceptron import MLPClassifier, MLPRegressor

CLASSES = {
    cls.__name__: cls
    for cls in (
        MLPRegressor,
        MLPClassifier,
        MLPAutoencoder,
        MLPEnsembleRegressor,
        MLPEnsembleClassifier,
    )
}
_ENSEMBLES = (MLPEnsembleRegressor, MLPEnsembleClassifier)

# Fitted attributes of MLPRegressor / MLPClassifier / MLPAutoencoder, by JSON key: (the
# attribute, its check). Every fit sets the REQUIRED ones; which OPTIONAL ones exist
# depends on the solvers and options of the fits so far, and a loaded estimator has
# exactly those the saved one had.
_REQUIRED = ("n_features_in_", "n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_")
_OPTIONAL = (
    "feature_names_in_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "no_improvement_count",
)
# The gaussian_nll regressor's target standardisation ((n_outputs_,) float64 arrays, or None).
_TARGET_SCALING = ("target_mean_", "target_scale_")
_PRIVATE = {"predicts_std": "_predicts_std", "no_improvement_count": "_no_improvement_count"}
# Attributes rebuilt on load (from the network, the classes, the parameters), or not saved.
_REBUILT = {"_net", "_views", "coefs_", "intercepts_", "_best_params", "_label_binarizer"}
_NOT_SAVED = {"_optimizer", "_random_state"}
_Y_TYPES = ("binary", "multiclass", "multilabel-indicator")


def _member(prefix):
    return f"{prefix}params.npy"


# ---- saving ------------------------------------------------------------------------------


def _encode_param(name, value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return json_values.number(value)
    if name == "random_state":  # a RandomState or Generator: its state is not saved
        return None
    if name == "hidden_layer_sizes":
        sizes = list(np.asarray(value).ravel())
        if all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
            return [int(s) for s in sizes]
    if name == "estimator" and type(value) in CLASSES.values():
        return {"class": type(value).__name__, "params": _encode_params(value)}
    raise ValueError(
        f"net: the parameter {name}={value!r} of this {type(value).__name__} cannot be saved "
        "(expected None, a bool, a number, a string, or integer layer sizes)"
    )


def _encode_params(estimator):
    cls = type(estimator)
    params = estimator.get_params(deep=False)
    try:  # load refuses what scikit-learn's fit would refuse: so does save
        validate_parameter_constraints(cls._parameter_constraints, params, cls.__name__)
    except InvalidParameterError as err:
        raise ValueError(
            f"net: {cls.__name__} cannot be saved, load would refuse it: {err}"
        ) from None
    # n_threads says how to run on this machine, not what the model is: stored only when
    # set, and files without it (all files of nnfast before it) load with the default.
    if params.get("n_threads", 0) is None:
        del params["n_threads"]
    return {name: _encode_param(name, value) for name, value in params.items()}


def _check_known(estimator, state, known):
    unknown = sorted(set(state) - set(known) - set(estimator.get_params(deep=False)))
    if unknown:
        # A fitted attribute the format does not know would be dropped silently.
        raise TypeError(
            f"net: this {type(estimator).__name__} has attributes {unknown} that "
            f"nnfast.save does not know how to store (format version {io.VERSION})"
        )


def _describe(estimator, prefix, arrays):
    """{"params", "attributes", "network"} of one fitted estimator; its arrays added."""
    check_is_fitted(estimator)
    # One attribute dictionary throughout (a fit in another thread installs a new one).
    current = object.__new__(type(estimator))
    current.__dict__ = dict(estimator.__dict__)
    state = current.__dict__
    if isinstance(estimator, _ENSEMBLES):
        known = {"n_features_in_", "feature_names_in_", "estimators_", "classes_", "_multilabel"}
        _check_known(estimator, state, known)
        template = state["estimator"]
        if template is not None and type(template) is not estimator._member_class:
            raise ValueError(
                f"net: the estimator parameter of this {type(estimator).__name__} is a "
                f"{type(template).__name__}, expected a {estimator._member_class.__name__}"
            )
        attributes = {"n_features_in_": int(state["n_features_in_"])}
        if "feature_names_in_" in state:
            attributes["feature_names_in_"] = [str(n) for n in state["feature_names_in_"]]
        if isinstance(estimator, MLPEnsembleClassifier):
            attributes["classes_"] = json_values.encode_classes(state["classes_"])
            attributes["multilabel"] = bool(state["_multilabel"])
        attributes["estimators_"] = [
            {"class": type(member).__name__, **_describe(member, f"estimators_/{i}/", arrays)}
            for i, member in enumerate(state["estimators_"])
        ]
        return {"params": _encode_params(current), "attributes": attributes}
    known = set(_REQUIRED) | set(_OPTIONAL) | _REBUILT | _NOT_SAVED | set(_PRIVATE.values())
    if isinstance(estimator, MLPRegressor):
        known |= set(_TARGET_SCALING)
    known |= {"classes_"}
    _check_known(estimator, state, known)
    current._sync_params()  # coefs_ / intercepts_ the user replaced are what predict uses
    attributes = {}
    for key in _REQUIRED + _OPTIONAL + _TARGET_SCALING:
        name = _PRIVATE.get(key, key)
        if name not in state:
            continue
        value = state[name]
        if key == "feature_names_in_":
            value = [str(n) for n in value]
        elif key == "out_activation_":
            value = str(value)
        elif key in ("loss_curve_", "validation_scores_") + _TARGET_SCALING:
            value = None if value is None else [json_values.number(v) for v in np.ravel(value)]
        elif key in ("loss_", "best_loss_", "best_validation_score_"):
            value = None if value is None else json_values.number(value)
        else:
            value = int(value)
        attributes[key] = value
    attributes["predicts_std"] = bool(state.get("_predicts_std", False))
    if isinstance(estimator, MLPClassifier):
        binarizer = state["_label_binarizer"]
        attributes["classes_"] = json_values.encode_classes(state["classes_"], binarizer)
        attributes["label_binarizer"] = {
            "y_type": str(binarizer.y_type_),
            "sparse_input": bool(binarizer.sparse_input_),
        }
    net = state["_net"]
    arrays[_member(prefix)] = net.params.copy()
    return {
        "params": _encode_params(current),
        "attributes": attributes,
        "network": io.network_fields(net),
    }


def file_contents(estimator):
    """(JSON header, {member name: parameter array}) of a fitted estimator."""
    name = type(estimator).__name__
    if CLASSES.get(name) is not type(estimator):
        raise TypeError(f"net: expected one of nnfast.sklearn's {list(CLASSES)}, got {name}")
    arrays = {}
    header = {"format": io.ESTIMATOR_FORMAT_PREFIX + name, "version": io.VERSION}
    header.update(_describe(estimator, "", arrays))
    return header, arrays


# ---- loading -------------------------------------------------------------------------------


# Constructor parameters a file may leave out (they then take their defaults).
_OPTIONAL_PARAMS = ("n_threads",)


def _decode_params(cls, params, check):
    """The constructor parameters of cls from their JSON, checked as scikit-learn's fit
    checks them."""
    check.mapping(params, "params")
    names = cls._get_param_names()
    optional = [name for name in names if name in _OPTIONAL_PARAMS]
    expected = [name for name in names if name not in _OPTIONAL_PARAMS]
    io.check_fields(params, expected, check.file, f"{check.where}params", optional)
    decoded = {}
    for name, value in params.items():
        if isinstance(value, str) and value in json_values.NON_FINITE:
            value = json_values.NON_FINITE[value]
        elif name == "hidden_layer_sizes":
            sizes = value if isinstance(value, list) else [value]
            for size in sizes:
                check.integer(size, "hidden_layer_sizes", minimum=1)
            value = tuple(value) if isinstance(value, list) else value
        elif name == "estimator" and value is not None:
            member = cls._member_class
            check.mapping(value, "estimator")
            io.check_fields(value, ("class", "params"), check.file, f"{check.where}estimator")
            if value["class"] != member.__name__:
                check.fail(f"'estimator' is a {value['class']!r}, expected a {member.__name__!r}")
            inner = json_values.Checker(check.file, f"{check.where}estimator ")
            value = member(**_decode_params(member, value["params"], inner))
        elif isinstance(value, (list, dict)):
            check.fail(f"params {name!r} is {value!r}, expected a number, string, bool or null")
        decoded[name] = value
    try:
        validate_parameter_constraints(cls._parameter_constraints, decoded, cls.__name__)
    except InvalidParameterError as err:
        check.fail(f"params: {err}")
    return decoded


def _check_outputs(cls, attributes, net, classes, y_type, check):
    """The fitted attributes agree with the network (as any fit leaves them)."""
    sizes, activations = net.layer_sizes, net.activations
    n_in, n_outputs = attributes["n_features_in_"], attributes["n_outputs_"]
    out = attributes["out_activation_"]
    if n_in != sizes[0]:
        check.fail(f"n_features_in_ is {n_in} but the network has {sizes[0]} inputs")
    if attributes["n_layers_"] != len(sizes):
        check.fail(f"n_layers_ is {attributes['n_layers_']}, the network has {len(sizes)} layers")
    allowed = {MLPRegressor: ("identity", "exp"), MLPClassifier: ("logistic", "softmax")}
    if out not in allowed.get(cls, ("identity",)) or _OUTPUT_NAME[out] != activations[-1]:
        check.fail(
            f"out_activation_ is {out!r} for a {cls.__name__} whose network's output "
            f"activation is {activations[-1]!r}"
        )
    std = attributes["predicts_std"]
    if std and (cls is not MLPRegressor or out != "identity"):
        check.fail("predicts_std is true for a model without a gaussian_nll output")
    width = n_outputs * (2 if std else 1)
    if sizes[-1] != width:
        check.fail(
            f"n_outputs_ is {n_outputs}: {width} outputs expected, the network has {sizes[-1]}"
        )
    for key in _TARGET_SCALING:
        values = attributes.get(key)
        if values is not None and (len(values) != n_outputs or not np.isfinite(values).all()):
            check.fail(f"{key} holds {values.tolist()}, expected {n_outputs} finite numbers")
    scale = attributes.get("target_scale_")
    if scale is not None and not (scale > 0).all():
        check.fail(f"target_scale_ holds {scale.tolist()}, expected positive numbers")
    if cls is MLPAutoencoder:
        middle = (len(sizes) - 1) // 2
        if n_outputs != n_in or len(sizes) % 2 == 0 or tuple(sizes) != tuple(sizes[::-1]):
            check.fail(f"the network's layer sizes {list(sizes)} are not an autoencoder's")
        if activations[middle - 1] != "identity":
            check.fail(
                f"the bottleneck (layer {middle - 1}) is {activations[middle - 1]!r}, not identity"
            )
    if cls is MLPClassifier:
        expected = {
            "binary": (1, "logistic", len(classes) <= 2),
            "multiclass": (len(classes), "softmax", len(classes) >= 3),
            "multilabel-indicator": (len(classes), "logistic", True),
        }[y_type]
        if (n_outputs, out) != expected[:2] or not expected[2]:
            check.fail(
                f"classes_ has {len(classes)} {y_type} classes, the network has {n_outputs} "
                f"outputs with {out!r}"
            )
        if y_type == "multilabel-indicator" and not np.array_equal(classes, np.arange(n_outputs)):
            check.fail(
                f"classes_ of a multilabel model are 0 … {n_outputs - 1}, got {classes.tolist()}"
            )


def _single(cls, description, check, fields):
    """Check one estimator's JSON (which has exactly ``fields``); return (its network's
    fields, build(network) -> estimator)."""
    io.check_fields(description, fields, check.file, check.where or "header")
    params = _decode_params(cls, description["params"], check)
    attributes = check.mapping(description["attributes"], "attributes")
    required = _REQUIRED + ("predicts_std",)
    if cls is MLPClassifier:
        required += ("classes_", "label_binarizer")
    optional = _OPTIONAL + (_TARGET_SCALING if cls is MLPRegressor else ())
    io.check_fields(attributes, required, check.file, f"{check.where}attributes", optional)
    fitted = {}
    for key in _REQUIRED[:5] + ("no_improvement_count",):
        if key in attributes:
            minimum = 1 if key in ("n_features_in_", "n_layers_", "n_outputs_") else 0
            fitted[key] = check.integer(attributes[key], key, minimum)
    if (
        not isinstance(attributes["out_activation_"], str)
        or attributes["out_activation_"] not in _OUTPUT_NAME
    ):
        check.fail(
            f"'out_activation_' is {attributes['out_activation_']!r}, expected one of {list(_OUTPUT_NAME)}"
        )
    fitted["out_activation_"] = attributes["out_activation_"]
    fitted["predicts_std"] = check.boolean(attributes["predicts_std"], "predicts_std")
    for key in ("loss_", "best_loss_", "best_validation_score_"):
        if key in attributes:
            fitted[key] = check.number(attributes[key], key, nullable=key != "loss_")
    for key in ("loss_curve_", "validation_scores_"):
        if key in attributes:
            fitted[key] = check.numbers(attributes[key], key, nullable=key == "validation_scores_")
    for key in _TARGET_SCALING:
        if key in attributes:
            values = check.numbers(attributes[key], key, nullable=True)
            fitted[key] = None if values is None else np.array(values, dtype=np.float64)
    names = _feature_names(attributes, fitted["n_features_in_"], check)
    classes = binarizer = y_type = None
    if cls is MLPClassifier:
        classes = json_values.decode_classes(attributes["classes_"], check)
        lb = check.mapping(attributes["label_binarizer"], "label_binarizer")
        io.check_fields(lb, ("y_type", "sparse_input"), check.file, f"{check.where}label_binarizer")
        if lb["y_type"] not in _Y_TYPES:
            check.fail(
                f"label_binarizer 'y_type' is {lb['y_type']!r}, expected one of {list(_Y_TYPES)}"
            )
        check.boolean(lb["sparse_input"], "sparse_input")
        y_type = lb["y_type"]
        binarizer = LabelBinarizer()  # as fit(y) leaves it
        binarizer.y_type_, binarizer.sparse_input_ = y_type, lb["sparse_input"]
        binarizer.classes_ = classes
    network = description["network"]
    io.check_network_fields(network, check.file, f"{check.where}network")

    def build(net):
        _check_outputs(cls, fitted, net, classes, y_type, check)
        estimator = cls(**params)
        state = estimator.__dict__
        state["n_features_in_"] = fitted["n_features_in_"]
        if names is not None:
            state["feature_names_in_"] = names
        if cls is MLPClassifier:
            state["_label_binarizer"], state["classes_"] = binarizer, classes
        for key, value in fitted.items():
            state[_PRIVATE.get(key, key)] = value
        state["_net"] = net
        estimator._bind_views()
        state["_best_params"] = net.params.copy()
        state["_optimizer"] = None
        return estimator

    return network, build


def _feature_names(attributes, n_features, check):
    if "feature_names_in_" not in attributes:
        return None
    names = attributes["feature_names_in_"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        check.fail(f"'feature_names_in_' is {names!r}, expected a list of strings")
    if len(names) != n_features:
        check.fail(f"feature_names_in_ has {len(names)} names for n_features_in_ = {n_features}")
    return np.asarray(names, dtype=object)


def _ensemble(cls, header, check):
    io.check_fields(header, ("format", "version", "params", "attributes"), check.file, "header")
    params = _decode_params(cls, header["params"], check)
    attributes = check.mapping(header["attributes"], "attributes")
    required = ("n_features_in_", "estimators_")
    if cls is MLPEnsembleClassifier:
        required += ("classes_", "multilabel")
    io.check_fields(attributes, required, check.file, "attributes", ("feature_names_in_",))
    n_features = check.integer(attributes["n_features_in_"], "n_features_in_", 1)
    names = _feature_names(attributes, n_features, check)
    classes = multilabel = None
    if cls is MLPEnsembleClassifier:
        classes = json_values.decode_classes(attributes["classes_"], check)
        multilabel = check.boolean(attributes["multilabel"], "multilabel")
    members = attributes["estimators_"]
    if not isinstance(members, list) or not members:
        check.fail(f"'estimators_' is {members!r}, expected a non-empty list of estimators")
    member_class = cls._member_class
    networks, builders = {}, []
    for i, member in enumerate(members):
        inner = json_values.Checker(check.file, f"estimators_[{i}]: ")
        inner.mapping(member, "estimator")
        if member.get("class") != member_class.__name__:
            inner.fail(f"'class' is {member.get('class')!r}, expected {member_class.__name__!r}")
        network, build = _single(
            member_class, member, inner, ("class", "params", "attributes", "network")
        )
        networks[_member(f"estimators_/{i}/")] = network
        builders.append((inner, build))

    def build(nets):
        estimators = []
        for (inner, build_member), net in zip(builders, nets.values()):
            member = build_member(net)
            if member.n_features_in_ != n_features:
                inner.fail(
                    f"n_features_in_ is {member.n_features_in_}, the ensemble's {n_features}"
                )
            if classes is not None:
                strings = {"U", "O"}  # np.isin compares only labels of one kind
                same_kind = (member.classes_.dtype.kind in strings) == (
                    classes.dtype.kind in strings
                )
                known = same_kind and np.isin(member.classes_, classes).all()
                if not known or (multilabel and len(member.classes_) != len(classes)):
                    inner.fail(
                        f"classes_ {member.classes_.tolist()} do not match the ensemble's "
                        f"classes_ {classes.tolist()}"
                    )
            estimators.append(member)
        ensemble = cls(**params)
        state = ensemble.__dict__
        state["n_features_in_"] = n_features
        if names is not None:
            state["feature_names_in_"] = names
        if classes is not None:
            state["classes_"], state["_multilabel"] = classes, multilabel
        state["estimators_"] = estimators
        return ensemble

    return io.Plan(networks, build)


def plan(header, file):
    """What to read for the estimator this header describes, and how to build it."""
    name = header["format"][len(io.ESTIMATOR_FORMAT_PREFIX) :]
    cls = CLASSES.get(name)
    if cls is None:
        file.fail(
            f"header 'format' is {header['format']!r}, expected {io.ESTIMATOR_FORMAT_PREFIX!r} "
            f"followed by one of {list(CLASSES)}"
        )
    check = json_values.Checker(file, "")
    if cls in _ENSEMBLES:
        return _ensemble(cls, header, check)
    fields = ("format", "version", "params", "attributes", "network")
    network, build = _single(cls, header, check, fields)
    return io.Plan({_member(""): network}, lambda nets: build(nets[_member("")]))
