"""skl2onnx converters for nnfast.sklearn's estimators, so that ``skl2onnx.to_onnx`` converts
Pipelines holding them.

The converters build the graphs of :func:`nnfast.to_onnx` (the same code, nnfast._onnx and
nnfast.sklearn._onnx) inside skl2onnx's model, with skl2onnx's conventions: the graph
computes in the type of its input (float64 for a double input, float32 otherwise, an
integer or boolean input cast to float32), classifiers output ``label`` and
``probabilities`` and accept skl2onnx's options ``zipmap`` (default True: probabilities as
a list of dicts, outputs ``output_label`` and ``output_probability``) and
``output_class_labels``; a gaussian_nll regressor and the ensemble regressor output
``variable`` and ``std``.

Registration is automatic and costs nothing when skl2onnx is not used: the end of
nnfast/sklearn/__init__.py calls :func:`register_when_imported`, which registers at once if skl2onnx is
imported already, and otherwise adds a finder to ``sys.meta_path`` that registers just
after skl2onnx's own import (importing skl2onnx eagerly would add ~0.3-0.5 s to
``import nnfast.sklearn``). :func:`register` does it explicitly.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings

import numpy as np

from nnfast._onnx import MIN_OPSET, Skl2onnxGraph, describe

_CLASSIFIERS = ("MLPClassifier", "MLPEnsembleClassifier")
_OTHERS = ("MLPRegressor", "MLPEnsembleRegressor", "MLPAutoencoder")
# skl2onnx's own classifier parser handles these options (it adds the ZipMap).
_CLASSIFIER_OPTIONS = {
    "zipmap": [True, False, "columns"],
    "output_class_labels": [False, True],
    "nocl": [False, True],
}


def _alias(model_class):
    return f"Nnfast{model_class.__name__}"


def _input_dtype(input_type):
    """The graph's float type for an input of skl2onnx type ``input_type``."""
    from skl2onnx.common.data_types import DoubleTensorType

    return np.dtype(np.float64 if isinstance(input_type, DoubleTensorType) else np.float32)


def _plan(operator):
    """(graph dtype, Export of ``operator``'s model, [(skl2onnx type, whether to cast the
    output to float32)] per output).

    Classifier options: ``nocl`` makes the labels class indices; ``zipmap=True`` feeds the
    probabilities to ONNX's ZipMap, which takes float32 only, so a float64 graph casts them.
    """
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    model, inp = operator.raw_operator, operator.inputs[0]
    dtype = _input_dtype(inp.type)
    nocl = zipmap = False
    if type(model).__name__ in _CLASSIFIERS:
        options = operator.scope_inst.get_options(model, {"nocl": False, "zipmap": True})
        nocl, zipmap = options["nocl"], options["zipmap"] is True
    export = describe(model, dtype, class_indices=nocl)
    n_features = inp.get_second_dimension()
    if n_features is not None and n_features != export.n_features:
        raise ValueError(
            f"X: expected {export.n_features} features for {type(model).__name__}, got {n_features}"
        )
    kinds = {
        "float": DoubleTensorType if dtype == np.float64 else FloatTensorType,
        "int64": Int64TensorType,
        "string": StringTensorType,
    }
    n, plan = inp.get_first_dimension(), []
    for out in export.outputs:
        cast = zipmap and out.name == "probabilities" and dtype == np.float64
        onnx_type = FloatTensorType if cast else kinds[out.kind]
        plan.append((onnx_type([n] + out.shape[1:]), cast))
    return dtype, export, plan


def _parse(scope, model, inputs, custom_parsers=None):
    """Declare the outputs of a regressor or the autoencoder: ``variable`` (and ``std``)."""
    operator = scope.declare_local_operator(_alias(type(model)), model)
    operator.inputs = inputs
    export = describe(model, _input_dtype(inputs[0].type))
    for out in export.outputs:
        operator.outputs.append(scope.declare_local_variable(out.name, inputs[0].type.__class__()))
    return operator.outputs


def _calculate_shapes(operator):
    from skl2onnx.common.utils import check_input_and_output_numbers

    _, export, plan = _plan(operator)
    check_input_and_output_numbers(
        operator, input_count_range=1, output_count_range=len(export.outputs)
    )
    for variable, (onnx_type, _) in zip(operator.outputs, plan):
        variable.set_type(onnx_type)


def _convert(scope, operator, container):
    from onnx import TensorProto
    from onnx.helper import np_dtype_to_tensor_dtype
    from skl2onnx.common.data_types import guess_proto_type

    if container.target_opset is not None and container.target_opset < MIN_OPSET:
        raise ValueError(
            f"target_opset: nnfast's converters need opset {MIN_OPSET} or "
            f"later, got {container.target_opset}"
        )
    dtype, export, plan = _plan(operator)
    graph = Skl2onnxGraph(scope, container)
    x = operator.inputs[0].full_name
    float_type = np_dtype_to_tensor_dtype(dtype)
    if guess_proto_type(operator.inputs[0].type) != float_type:
        x = graph.op("Cast", [x], to=float_type)
    for variable, result, (_, cast) in zip(operator.outputs, export.emit(graph, x), plan):
        if cast:
            graph.op("Cast", [result], output=variable.full_name, to=TensorProto.FLOAT)
        else:
            graph.op("Identity", [result], output=variable.full_name)


def register(estimators=None):
    """Register nnfast.sklearn's estimators with skl2onnx (again: harmless).

    ``estimators`` is the module holding them (default: nnfast.sklearn).
    """
    from skl2onnx import update_registered_converter

    if estimators is None:
        import nnfast.sklearn as estimators
    for name in _CLASSIFIERS:
        cls = getattr(estimators, name)
        update_registered_converter(
            cls, _alias(cls), _calculate_shapes, _convert, options=dict(_CLASSIFIER_OPTIONS)
        )
    for name in _OTHERS:
        cls = getattr(estimators, name)
        update_registered_converter(cls, _alias(cls), _calculate_shapes, _convert, parser=_parse)


def _register_after_import(estimators):
    try:
        register(estimators)
    except Exception as err:  # noqa: BLE001 - a failure must not break `import skl2onnx`
        warnings.warn(
            f"nnfast.sklearn: could not register its skl2onnx converters ({err!r}); "
            "skl2onnx cannot convert nnfast's estimators",
            RuntimeWarning,
            stacklevel=2,
        )


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds skl2onnx as the other finders do, and has its loader register nnfast's
    converters right after skl2onnx's ``__init__`` has run; then leaves ``sys.meta_path``.

    It stays until skl2onnx is actually imported: ``importlib.util.find_spec("skl2onnx")``
    (a check whether it is installed) asks the finders too, for a spec that is never run.
    """

    def __init__(self, estimators):
        self._estimators = estimators
        self._searching = False  # the inner find_spec below asks this finder again

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx" or self._searching:
            return None
        self._searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _register_after_import(self._estimators)

        spec.loader.exec_module = exec_then_register  # this spec's own loader instance
        return spec


def register_when_imported(estimators):
    """Register now if skl2onnx is imported, else as soon as it is."""
    if "skl2onnx" in sys.modules:
        if sys.modules["skl2onnx"] is not None:  # None: its import is blocked
            _register_after_import(estimators)
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport(estimators))
