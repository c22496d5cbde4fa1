"""nnfast: fast multi-layer perceptrons for scientists.

Compiled Cython kernels train and run small and medium MLPs without per-call overhead;
``nnfast.MLP`` is the network, ``nnfast.kernels`` the validated entry points to the kernels,
``nnfast.reference`` the same network in plain NumPy (the test oracle and benchmark baseline),
``nnfast.save`` / ``nnfast.load`` a pickle-free file format, ``nnfast.to_onnx`` an export
to ONNX (needs onnx), and ``nnfast.sklearn`` (needs scikit-learn) drop-in replacements for
scikit-learn's MLPRegressor and MLPClassifier.
"""

from nnfast._history import History
from nnfast._onnx import to_onnx
from nnfast._threads import effective_n_threads
from nnfast.io import load, save
from nnfast.network import MLP

__all__ = ["MLP", "History", "save", "load", "to_onnx", "effective_n_threads", "__version__"]
__version__ = "0.1.0"
