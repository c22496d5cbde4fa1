"""Network structure shared by the compiled MLP and the NumPy reference.

A network is described by its layer sizes, one activation name per layer (the output
layer last) and the activation parameters. This module validates that description,
computes where each layer's ``W`` and ``b`` live in the flat parameter buffer, and draws
the initial weights. It is plain Python and NumPy (only the kernels' integer codes come
from nnfast._kernels): both :class:`nnfast.MLP` and :class:`nnfast.reference.MLP` use it,
so the two start from identical weights.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from nnfast._kernels import Activation, Loss
from nnfast._losses import GAUSSIAN_NLL_LOG_VAR_RANGE


def _codes(enum, prefix: str) -> dict:
    """{name: code} of a Cython enum, e.g. Activation.ACT_LEAKY_RELU -> "leaky_relu"."""
    return {key[len(prefix) :].lower(): int(code) for key, code in enum.__members__.items()}


# The integer codes of the compiled kernels, read from their one definition
# (nnfast/_kernels.pxd).
ACTIVATION_CODES = _codes(Activation, "ACT_")
LOSS_CODES = _codes(Loss, "LOSS_")

HIDDEN_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "tanh", "softmax", "exp")
LOSSES = tuple(LOSS_CODES)
# The gaussian_nll loss reads the output as means and log-variances s and clips s to this
# range before using it (the loss, its gradient and predict(return_std=True) alike): e^-s
# cannot overflow, nor e^-s · 0 make NaN, and the standard deviation e^(s/2) stays within
# [3.1e-7, 3.3e6] in the targets' units. Defined in nnfast/_losses.pyx (LOG_VAR_MIN/MAX).
LOG_VAR_RANGE = GAUSSIAN_NLL_LOG_VAR_RANGE

# Layers whose initial weights follow He (fan-in) scaling; the others use Glorot.
_HE_INIT = ("relu", "leaky_relu", "elu", "maxout")

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.float32`` or ``np.float64`` for ``dtype``, or raise a clear error."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: expected 'float32' or 'float64', got {dtype!r}") from None
    if resolved not in (np.float32, np.float64):
        raise ValueError(f"{name}: expected 'float32' or 'float64', got {dtype!r}")
    return resolved


def check_positive_real(value, name: str, allow_zero: bool = False) -> float:
    """Validate a finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if not _is_real(value):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    expected = ">= 0" if allow_zero else "> 0"
    try:
        value = float(value)
    except OverflowError:  # an int such as 10**400
        raise ValueError(
            f"{name}: expected a finite number {expected}, got an integer too large for a float"
        ) from None
    bound_ok = value >= 0 if allow_zero else value > 0
    if not (np.isfinite(value) and bound_ok):
        raise ValueError(f"{name}: expected a finite number {expected}, got {value!r}")
    return value


@dataclass(frozen=True)
class LayerSpec:
    """One dense layer ``f(X @ W + b)`` inside the flat parameter buffer."""

    n_in: int
    n_out: int
    activation: str
    pieces: int  # maxout pieces (1 for every other activation)
    w_offset: int
    b_offset: int

    @property
    def width(self) -> int:
        """Number of pre-activation columns: ``n_out * pieces``."""
        return self.n_out * self.pieces

    @property
    def w_shape(self) -> tuple:
        if self.activation == "maxout":
            return (self.n_in, self.n_out, self.pieces)
        return (self.n_in, self.n_out)

    @property
    def b_shape(self) -> tuple:
        if self.activation == "maxout":
            return (self.n_out, self.pieces)
        return (self.n_out,)

    @property
    def end(self) -> int:
        return self.b_offset + self.width


@dataclass(frozen=True)
class NetworkSpec:
    """Validated structure of a multi-layer perceptron."""

    layer_sizes: tuple
    activations: tuple  # one per layer, output last
    leaky_slope: float
    elu_alpha: float
    maxout_pieces: int
    layers: tuple  # LayerSpec per layer

    @property
    def n_params(self) -> int:
        return self.layers[-1].end

    @property
    def n_in(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_out(self) -> int:
        return self.layer_sizes[-1]

    def views(self, params: np.ndarray):
        """Return ``(weights, biases)``: lists of views into ``params``."""
        weights = [
            params[layer.w_offset : layer.b_offset].reshape(layer.w_shape) for layer in self.layers
        ]
        biases = [
            params[layer.b_offset : layer.end].reshape(layer.b_shape) for layer in self.layers
        ]
        return weights, biases

    def weight_mask(self) -> np.ndarray:
        """Boolean mask over ``params``: True where the entry is a weight (not a bias)."""
        mask = np.zeros(self.n_params, dtype=bool)
        for layer in self.layers:
            mask[layer.w_offset : layer.b_offset] = True
        return mask

    def init_params(self, rng: np.random.Generator, dtype) -> np.ndarray:
        """Glorot-uniform weights (He-uniform for the ReLU family, ELU and maxout), zero biases.

        Glorot: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); He: a = sqrt(6 / fan_in).
        Draws are made in float64 and rounded once, so float32 and float64 networks built
        from one seed hold the same weights up to rounding.
        """
        params = np.zeros(self.n_params, dtype=np.float64)
        for layer in self.layers:
            if layer.activation in _HE_INIT:
                limit = np.sqrt(6.0 / layer.n_in)
            else:
                limit = np.sqrt(6.0 / (layer.n_in + layer.n_out))
            params[layer.w_offset : layer.b_offset] = rng.uniform(
                -limit, limit, size=layer.b_offset - layer.w_offset
            )
        return params.astype(dtype)


def build_spec(
    layer_sizes,
    activation="tanh",
    output_activation="identity",
    leaky_slope=0.1,
    elu_alpha=1.0,
    maxout_pieces=2,
) -> NetworkSpec:
    """Validate the constructor arguments of an MLP and lay out its parameters."""
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(
            "layer_sizes: expected a sequence of positive integers such as [1, 20, 20, 1], "
            f"got {type(layer_sizes).__name__} {layer_sizes!r}"
        )
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            "layer_sizes: expected at least 2 sizes (input and output width), "
            f"got {len(sizes)}: {sizes!r}"
        )
    for i, size in enumerate(sizes):
        if not _is_int(size):
            raise TypeError(
                f"layer_sizes: expected integers, got {type(size).__name__} {size!r} at position {i}"
            )
        if size < 1:
            raise ValueError(f"layer_sizes: expected sizes >= 1, got {size!r} at position {i}")
    sizes = tuple(int(s) for s in sizes)
    n_hidden = len(sizes) - 2

    if isinstance(activation, str):
        hidden = [activation] * n_hidden
    elif isinstance(activation, (list, tuple)):
        hidden = list(activation)
        if len(hidden) != n_hidden:
            raise ValueError(
                f"activation: expected one name per hidden layer ({n_hidden}), "
                f"got {len(hidden)}: {hidden!r}"
            )
    else:
        raise TypeError(
            "activation: expected a name or a list of names, "
            f"got {type(activation).__name__} {activation!r}"
        )
    for name in hidden:
        if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"activation: expected one of {HIDDEN_ACTIVATIONS}, got {name!r}")
    if isinstance(activation, str) and activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"activation: expected one of {HIDDEN_ACTIVATIONS}, got {activation!r}")
    if not isinstance(output_activation, str) or output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"output_activation: expected one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
        )
    if output_activation == "softmax" and sizes[-1] < 2:
        raise ValueError(
            "output_activation: 'softmax' needs at least 2 outputs, "
            f"got layer_sizes[-1] = {sizes[-1]}"
        )

    if not _is_real(leaky_slope):
        raise TypeError(
            f"leaky_slope: expected a real number, got {type(leaky_slope).__name__} {leaky_slope!r}"
        )
    # max(slope*x, x) is the usual leaky ReLU only for 0 <= slope <= 1. (Comparisons, not
    # np.isfinite, so that an int too large for a float is refused as out of range.)
    if not (0 <= leaky_slope <= 1):
        raise ValueError(f"leaky_slope: expected a number in [0, 1], got {leaky_slope!r}")
    elu_alpha = check_positive_real(elu_alpha, "elu_alpha", allow_zero=True)
    if not _is_int(maxout_pieces):
        raise TypeError(
            f"maxout_pieces: expected an integer >= 1, got {type(maxout_pieces).__name__} "
            f"{maxout_pieces!r}"
        )
    if maxout_pieces < 1:
        raise ValueError(f"maxout_pieces: expected an integer >= 1, got {maxout_pieces!r}")
    if maxout_pieces > np.iinfo(np.intp).max:  # stored as a C index, even when unused
        raise ValueError(
            f"maxout_pieces: expected an integer in [1, {np.iinfo(np.intp).max}], "
            f"got {maxout_pieces!r}"
        )

    activations = tuple(hidden) + (output_activation,)
    layers = []
    offset = 0
    for n_in, n_out, act in zip(sizes[:-1], sizes[1:], activations):
        pieces = int(maxout_pieces) if act == "maxout" else 1
        w_offset = offset
        b_offset = w_offset + n_in * n_out * pieces
        layers.append(LayerSpec(n_in, n_out, act, pieces, w_offset, b_offset))
        offset = b_offset + n_out * pieces
    if offset > np.iinfo(np.intp).max:
        raise ValueError(
            f"layer_sizes: expected a network whose {offset} parameters fit in one array "
            f"(at most {np.iinfo(np.intp).max}), got layer_sizes={list(sizes)!r}"
        )
    return NetworkSpec(
        layer_sizes=sizes,
        activations=activations,
        leaky_slope=float(leaky_slope),
        elu_alpha=float(elu_alpha),
        maxout_pieces=int(maxout_pieces),
        layers=tuple(layers),
    )


def check_seed(seed):
    """Validate ``seed`` (None or a non-negative integer) and return a Generator."""
    if seed is not None and not _is_int(seed):
        raise TypeError(f"seed: expected an integer or None, got {type(seed).__name__} {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed: expected an integer >= 0 or None, got {seed!r}")
    return np.random.default_rng(seed)
