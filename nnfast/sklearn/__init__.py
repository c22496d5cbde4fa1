"""scikit-learn's MLPRegressor and MLPClassifier, trained by nnfast; ensembles of them for
error bars, and an autoencoder.

Change one import and keep the rest of the code::

    # from sklearn.neural_network import MLPClassifier, MLPRegressor
    from nnfast.sklearn import MLPClassifier, MLPRegressor

The estimators take scikit-learn 1.9's parameters, defaults, attributes, warnings and
definitions (the same initial weights, shuffles and splits from the same ``random_state``).
Beyond scikit-learn: :class:`MLPEnsembleRegressor` and :class:`MLPEnsembleClassifier`
(members differing by seed, with ``return_std``) and :class:`MLPAutoencoder` (nonlinear
dimensionality reduction). What is followed exactly, what is added and the few differences
are documented in ``docs/sklearn.md``.

:func:`input_grad` gives the Jacobian of a fitted estimator in the units of the original
features and targets, through a Pipeline of linear scalers and a TransformedTargetRegressor.

Modules: ``_base`` (the shared parameters, fit and solvers), ``_multilayer_perceptron``
(the regressor and the classifier), ``_ensemble``, ``_autoencoder``, ``_jacobian``,
``_state`` (one consistent fitted state per call under threads), ``_persist`` and
``_persist_values`` (fitted estimators in the files of :func:`nnfast.save` /
:func:`nnfast.load`); ``_onnx`` (their ONNX
graphs, for :func:`nnfast.to_onnx`) and ``_skl2onnx`` (skl2onnx converters built from them,
registered automatically when skl2onnx is imported).
"""

try:
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "nnfast.sklearn needs scikit-learn, which is not installed: "
        'pip install scikit-learn (or pip install "nnfast[sklearn]")'
    ) from err

import sys

from nnfast.sklearn import _skl2onnx
from nnfast.sklearn._autoencoder import MLPAutoencoder
from nnfast.sklearn._ensemble import MLPEnsembleClassifier, MLPEnsembleRegressor
from nnfast.sklearn._jacobian import input_grad
from nnfast.sklearn._multilayer_perceptron import MLPClassifier, MLPRegressor

__all__ = [
    "MLPAutoencoder",
    "MLPClassifier",
    "MLPEnsembleClassifier",
    "MLPEnsembleRegressor",
    "MLPRegressor",
    "input_grad",
]

# skl2onnx converts Pipelines holding these estimators once their converters are registered:
# now if skl2onnx is imported, else right after its import (importing it here would add
# ~0.4 s to this import).
_skl2onnx.register_when_imported(sys.modules[__name__])
