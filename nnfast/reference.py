"""The nnfast multi-layer perceptron in plain NumPy: the test oracle and the benchmark baseline.

Everything the compiled library computes — activations and their derivatives, losses and
their output deltas, dense layers, backpropagation, the SGD and Adam updates and the epoch
loop of ``fit`` — is written here once more as short, vectorised NumPy, following the same
definitions (see ``API.md``) so that the compiled kernels and drivers can be checked against
it, and so that benchmarks compare nnfast with what a good NumPy programmer would write.

The network structure, the flat parameter layout and the initial weights come from
:mod:`nnfast._spec`, shared with :class:`nnfast.MLP`: a reference network and a compiled one
built with the same arguments and seed hold the same parameters.

All arithmetic happens in the dtype of the network (float32 or float64); inputs are cast
once with ``np.asarray(..., dtype)``. Validation is deliberately light: this module trusts
its inputs (unknown names still raise ``ValueError``).

Shapes: ``n`` samples, ``n_in`` inputs, ``n_out`` outputs of a layer, ``k`` maxout pieces,
``width = n_out * k`` pre-activation columns (``k = 1`` except for maxout).
"""

from __future__ import annotations

import math

import numpy as np

from nnfast._history import History
from nnfast._spec import LOG_VAR_RANGE, build_spec, check_dtype, check_seed

__all__ = [
    "MLP",
    "activation_forward",
    "activation_backward",
    "loss_and_delta",
    "sgd_update",
    "adam_update",
    "matmul",
    "matvec",
    "dense_forward",
]

_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout", "softmax",
                "exp")
# The output activation each loss is defined with (mse works with any of them).
_LOSS_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "poisson": "exp",
                "gaussian_nll": "identity"}
_LOSSES = ("mse", "cross_entropy", "binary_cross_entropy", "poisson", "gaussian_nll")


# --------------------------------------------------------------------------------------
# Dense products
# --------------------------------------------------------------------------------------


def matmul(A, B):
    """Matrix product ``A @ B``: ``(m, k) @ (k, n) -> (m, n)``."""
    return np.matmul(A, B)


def matvec(A, x):
    """Matrix-vector product ``A @ x``: ``(m, k) @ (k,) -> (m,)``."""
    return np.matmul(A, x)


def dense_forward(X, W, b, activation, leaky_slope=0.1, elu_alpha=1.0):
    """One dense layer ``f(X @ W + b)``.

    ``X`` is ``(n, n_in)``, ``W`` is ``(n_in, n_out)`` and ``b`` ``(n_out,)``; for maxout ``W``
    is ``(n_in, n_out, k)`` and ``b`` ``(n_out, k)``, and the result is the maximum over the
    ``k`` pieces. Returns ``(n, n_out)``.
    """
    n_in = W.shape[0]
    Z = X @ W.reshape(n_in, -1)
    Z += b.reshape(-1)
    if activation == "maxout":
        Z = Z.reshape(Z.shape[:-1] + W.shape[1:])  # (n, n_out, k)
    return activation_forward(activation, Z, leaky_slope=leaky_slope, elu_alpha=elu_alpha)


# --------------------------------------------------------------------------------------
# Activations: forward and backward side by side
# --------------------------------------------------------------------------------------


def _check_activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {_ACTIVATIONS}, got {name!r}")


def activation_forward(name, Z, leaky_slope=0.1, elu_alpha=1.0):
    """Apply the activation ``name`` to the pre-activations ``Z`` and return ``A``.

    Element-wise for every name except ``softmax`` (over the last axis, max-subtracted) and
    ``maxout``, where ``Z`` is ``(..., n_out, k)`` and ``A = Z.max(axis=-1)`` is ``(..., n_out)``.
    ``identity`` returns ``Z`` itself (no copy).
    """
    _check_activation(name)
    if name == "identity":
        return Z
    if name == "sigmoid":
        # 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) for z < 0: with e = exp(-|z|) <= 1
        # neither branch can overflow, even at z = +-inf.
        e = np.exp(-np.abs(Z))
        d = 1 + e
        return np.where(Z >= 0, 1 / d, e / d)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, float(leaky_slope) * Z)
    if name == "elu":
        # expm1 only sees z <= 0, so large positive z cannot overflow.
        return np.where(Z >= 0, Z, float(elu_alpha) * np.expm1(np.minimum(Z, 0)))
    if name == "maxout":
        return Z.max(axis=-1)
    if name == "exp":
        return np.exp(Z)
    # softmax: subtracting the row maximum keeps exp in [0, 1].
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    E /= E.sum(axis=-1, keepdims=True)
    return E


def activation_backward(name, Z, A, dA, leaky_slope=0.1, elu_alpha=1.0):
    """Return ``dZ``, the gradient with respect to ``Z``, given ``dA`` for ``A = f(Z)``.

    ``A`` is the output of :func:`activation_forward` for ``Z``. For ``maxout`` ``Z`` is
    ``(..., n_out, k)`` and ``dA`` ``(..., n_out)``: the gradient goes to the first piece that
    attains the maximum (``np.argmax``), the other pieces get 0. ``identity`` returns ``dA``
    itself.
    """
    _check_activation(name)
    if name == "identity":
        return dA
    if name == "sigmoid":
        return dA * A * (1 - A)
    if name == "tanh":
        return dA * (1 - A * A)
    if name == "relu":
        return np.where(Z > 0, dA, 0)
    if name == "leaky_relu":
        return np.where(Z > 0, dA, float(leaky_slope) * dA)
    if name == "elu":
        # For z < 0, d/dz alpha * (e^z - 1) = alpha * e^z = A + alpha.
        return np.where(Z >= 0, dA, dA * (A + float(elu_alpha)))
    if name == "maxout":
        dZ = np.zeros_like(Z)
        winner = Z.argmax(axis=-1)[..., np.newaxis]
        np.put_along_axis(dZ, winner, dA[..., np.newaxis], axis=-1)
        return dZ
    if name == "exp":
        return dA * A
    # softmax: dZ = J^T dA with J = diag(A) - A A^T, applied row by row.
    return A * (dA - (dA * A).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _check_loss(loss, output_activation):
    if loss not in _LOSSES:
        raise ValueError(f"loss: expected one of {_LOSSES}, got {loss!r}")
    needed = _LOSS_OUTPUT.get(loss)
    if needed is not None and output_activation != needed:
        raise ValueError(
            f"loss: {loss!r} needs output_activation={needed!r}, got {output_activation!r}"
        )


def gaussian_split(Z):
    """``(mu, c, inside)`` of a gaussian_nll output ``Z`` (n, 2k): the means ``Z[:, :k]``,
    the log-variances ``Z[:, k:]`` clipped to ``LOG_VAR_RANGE``, and where they were not
    clipped (the clip passes the gradient there only)."""
    k = Z.shape[1] // 2
    s = Z[:, k:]
    low, high = LOG_VAR_RANGE
    return Z[:, :k], np.clip(s, low, high), (s >= low) & (s <= high)


def _weights(sample_weight, n, dtype):
    """Return ``(w, S)``: the weights as an ``(n, 1)`` column (None when unweighted), and their sum."""
    if sample_weight is None:
        return None, n
    w = np.asarray(sample_weight, dtype=dtype)
    S = w.sum()
    with np.errstate(over="ignore", divide="ignore"):
        if S > 0 and not np.isfinite(1.0 / S):
            # Subnormal weights (5e-324): 1 / S overflows, but the weighted mean is the
            # same with the weights divided by their maximum (as nnfast's driver does).
            w = w / w.max()
            S = w.sum()
    return w[:, np.newaxis], S


def _weighted_total(per_sample, w):
    """``Σ_i w_i per_sample_i`` (plain sum when unweighted)."""
    if w is None:
        return per_sample.sum()
    return w[:, 0] @ per_sample


def _data_loss(loss, Z, A, Y, w, S):
    """The (weighted) data loss of ``Z, A`` against ``Y``, as a float; ``S > 0``."""
    m = Z.shape[1]
    if loss == "mse":
        diff = A - Y
        per_sample = (diff * diff).sum(axis=1)
        return float(_weighted_total(per_sample, w) / (S * m))
    if loss == "cross_entropy":
        # log softmax(z) = z - max - log Σ exp(z - max): finite for any finite z.
        shifted = Z - Z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        per_sample = -(Y * logp).sum(axis=1)
        return float(_weighted_total(per_sample, w) / S)
    if loss == "gaussian_nll":
        # 0.5 (c + r² e^-c) with c the clipped log-variance: e^-c is finite and non-zero.
        mu, c, _ = gaussian_split(Z)
        ell = 0.5 * (c + np.square(mu - Y) * np.exp(-c))
        return float(_weighted_total(ell.sum(axis=1), w) / (S * mu.shape[1]))
    if loss == "poisson":
        # Half Poisson deviance y log(y / A) - y + A with A = exp(Z); xlogy-style 0 at y = 0.
        ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1)), 0)
        ell = ylogy - Y * Z - Y + A
        return float(_weighted_total(ell.sum(axis=1), w) / (S * m))
    # binary_cross_entropy from the logits: -y log σ(z) - (1 - y) log(1 - σ(z))
    # = max(z, 0) - y z + log(1 + e^-|z|), with no log of 0 and no overflow.
    ell = np.maximum(Z, 0) - Y * Z + np.log1p(np.exp(-np.abs(Z)))
    return float(_weighted_total(ell.sum(axis=1), w) / (S * m))


def loss_and_delta(loss, output_activation, Z, A, Y, sample_weight=None,
                   leaky_slope=0.1, elu_alpha=1.0):
    """Return ``(loss_value, dZ)`` for the output layer.

    ``Z`` and ``A = f(Z)`` are the output layer's pre-activations and activations, ``Y`` the
    targets as a float array of the same shape ``(n, m)`` (rows of class probabilities for
    ``cross_entropy``), ``sample_weight`` ``(n,)`` or None (all ones). With ``S = Σ w_i``:

    - ``mse``: ``Σ_i w_i Σ_j (A_ij - Y_ij)² / (S m)``;
    - ``cross_entropy`` (softmax output): ``Σ_i w_i (-Σ_j Y_ij log softmax(Z)_ij) / S``,
      ``dZ_ij = w_i (A_ij Σ_k Y_ik - Y_ij) / S``;
    - ``binary_cross_entropy`` (sigmoid output): mean over samples and outputs of
      ``max(z, 0) - y z + log(1 + e^-|z|)``, ``dZ_ij = w_i (A_ij - Y_ij) / (S m)``;
    - ``poisson`` (exp output): mean over samples and outputs of the half Poisson deviance
      ``y log(y / A) - y + A``, ``dZ_ij = w_i (A_ij - Y_ij) / (S m)``;
    - ``gaussian_nll`` (identity output, ``m = 2k``, ``Y`` of shape ``(n, k)``): ``Z = [mu | s]``,
      ``c = clip(s, *LOG_VAR_RANGE)``, mean over samples and the ``k`` targets of
      ``0.5 (c + (y - mu)² e^-c)``; ``dmu = w_i (mu - y) e^-c / (S k)``,
      ``ds = w_i 0.5 (1 - (y - mu)² e^-c) / (S k)`` where ``s`` is inside the range, else 0.

    ``dZ`` is the gradient of the loss with respect to ``Z``. When ``S == 0`` the loss is 0.0
    and ``dZ`` is zeros.
    """
    _check_loss(loss, output_activation)
    n, m = Z.shape
    w, S = _weights(sample_weight, n, Z.dtype)
    if S == 0:
        return 0.0, np.zeros_like(Z)
    value = _data_loss(loss, Z, A, Y, w, S)
    if loss == "mse":
        dA = (A - Y) * (2 / (S * m))
        if w is not None:
            dA *= w
        dZ = activation_backward(output_activation, Z, A, dA,
                                 leaky_slope=leaky_slope, elu_alpha=elu_alpha)
    elif loss == "gaussian_nll":
        mu, c, inside = gaussian_split(Z)
        e = np.exp(-c)
        r = mu - Y
        scale = (1 / (S * mu.shape[1])) if w is None else w / (S * mu.shape[1])
        dZ = np.concatenate([r * e * scale, np.where(inside, 0.5 * (1 - r * r * e), 0) * scale],
                            axis=1).astype(Z.dtype, copy=False)
    elif loss == "cross_entropy":
        # Softmax and cross-entropy together: the Jacobian product collapses to A Σ_k Y_k - Y.
        dZ = A * Y.sum(axis=1, keepdims=True) - Y
        dZ *= (1 / S) if w is None else w / S
    else:
        # Sigmoid and binary cross-entropy, or exp and Poisson, together: dZ = A - Y.
        dZ = A - Y
        dZ *= (1 / (S * m)) if w is None else w / (S * m)
    return value, dZ


# --------------------------------------------------------------------------------------
# Optimizer updates (scikit-learn's rules), in place over flat buffers
# --------------------------------------------------------------------------------------


def sgd_update(params, velocity, grad, lr, momentum, nesterov):
    """One SGD step in place: ``v = momentum v - lr g``; ``params += momentum v - lr g``
    with Nesterov momentum, else ``params += v``."""
    lr, momentum = float(lr), float(momentum)  # Python floats keep float32 buffers float32
    velocity *= momentum
    velocity -= lr * grad
    if nesterov:
        params += momentum * velocity - lr * grad
    else:
        params += velocity


def adam_update(params, m, v, grad, t, lr, beta1, beta2, eps):
    """One Adam step in place; ``t`` is the step number, starting at 1.

    ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)``; ``m = beta1 m + (1 - beta1) g``;
    ``v = beta2 v + (1 - beta2) g²``; ``params -= lr_t m / (sqrt(v) + eps)``.
    """
    # Python floats keep float32 buffers float32 (a NumPy float64 scalar would promote them).
    lr, beta1, beta2, eps = float(lr), float(beta1), float(beta2), float(eps)
    lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * np.square(grad)
    params -= lr_t * m / (np.sqrt(v) + eps)


def rprop_update(params, step, prev_grad, grad, eta_plus=1.2, eta_minus=0.5, step_min=1e-6,
                 step_max=50.0):
    """One iRprop- step in place.

    Where ``grad`` keeps the sign of ``prev_grad`` the step grows (``× eta_plus``, at most
    ``step_max``); where the sign flips it shrinks (``× eta_minus``, at least ``step_min``)
    and that gradient is zeroed (no move, and no sign to compare next time). Then
    ``params -= sign(grad) * step`` and ``prev_grad = grad``.
    """
    g = grad.copy()
    same = g * prev_grad
    step[same > 0] = np.minimum(step[same > 0] * eta_plus, step_max)
    step[same < 0] = np.maximum(step[same < 0] * eta_minus, step_min)
    g[same < 0] = 0
    params -= np.sign(g) * step
    prev_grad[...] = g


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------


class MLP:
    """A multi-layer perceptron in NumPy, with the structure and weights of :class:`nnfast.MLP`.

    Parameters are those of :class:`nnfast.MLP`; ``params`` (optional, 1-D of length
    ``n_params``) replaces the initial weights with a copy of the given ones. The random
    generator built from ``seed`` advances exactly as if the initial weights were drawn even
    when ``params`` is given, so shuffling in :meth:`fit` is the same as for a network built
    from that seed.
    """

    def __init__(self, layer_sizes, activation="tanh", output_activation="identity",
                 dtype="float64", seed=None, leaky_slope=0.1, elu_alpha=1.0, maxout_pieces=2,
                 params=None):
        self.spec = build_spec(layer_sizes, activation, output_activation,
                               leaky_slope, elu_alpha, maxout_pieces)
        self.dtype = check_dtype(dtype)
        self._rng = check_seed(seed)
        initial = self.spec.init_params(self._rng, self.dtype)
        if params is not None:
            initial = np.array(params, dtype=self.dtype, order="C", copy=True)
            if initial.shape != (self.spec.n_params,):
                raise ValueError(
                    f"params: expected a 1-D array of {self.spec.n_params} values, "
                    f"got shape {initial.shape}"
                )
        self.params = initial
        self.weights, self.biases = self.spec.views(self.params)
        self.layer_sizes = self.spec.layer_sizes
        self.activations = self.spec.activations
        self.n_params = self.spec.n_params
        self.leaky_slope = self.spec.leaky_slope
        self.elu_alpha = self.spec.elu_alpha
        self.maxout_pieces = self.spec.maxout_pieces

    def __repr__(self):
        return (
            f"reference.MLP(layer_sizes={list(self.layer_sizes)}, "
            f"activations={list(self.activations)}, dtype='{self.dtype.name}', "
            f"n_params={self.n_params})"
        )

    # ----- data ---------------------------------------------------------------------------

    def _targets(self, y, loss):
        """``y`` as the ``(n, n_out)`` float array the losses take.

        Integer labels ``(n,)`` become one-hot rows for ``cross_entropy``; a 1-D ``y`` of a
        single-output network (a single target of a ``gaussian_nll`` network, whose targets
        are ``(n, n_out / 2)``) becomes a column.
        """
        n_out = self.spec.n_out // 2 if loss == "gaussian_nll" else self.spec.n_out
        y = np.asarray(y)
        if loss == "cross_entropy" and y.ndim == 1:
            labels = y.astype(np.intp, copy=False)
            Y = np.zeros((labels.shape[0], self.spec.n_out), dtype=self.dtype)
            Y[np.arange(labels.shape[0]), labels] = 1
            return Y
        Y = np.asarray(y, dtype=self.dtype)
        if Y.ndim == 1 and n_out == 1:
            Y = Y.reshape(-1, 1)
        return Y

    def _activate(self, layer, Z):
        return activation_forward(layer.activation, Z, self.spec.leaky_slope, self.spec.elu_alpha)

    # ----- forward ------------------------------------------------------------------------

    def forward(self, X):
        """Run the network on ``X`` ``(n, n_in)`` and return ``[(Z, A), ...]``, one per layer.

        ``Z`` is the layer's pre-activation ``(n, n_out)`` — ``(n, n_out, k)`` for maxout — and
        ``A`` its output ``(n, n_out)``: exactly what :meth:`loss_and_grad` needs for backward.
        """
        A = np.asarray(X, dtype=self.dtype)
        cache = []
        for layer, W, b in zip(self.spec.layers, self.weights, self.biases):
            Z = A @ W.reshape(layer.n_in, layer.width)
            Z += b.reshape(layer.width)
            if layer.activation == "maxout":
                Z = Z.reshape(Z.shape[0], layer.n_out, layer.pieces)
            A = self._activate(layer, Z)
            cache.append((Z, A))
        return cache

    def predict(self, X, return_std=False):
        """Network output ``(n, n_out)`` for ``X`` ``(n, n_in)``; a 1-D ``X`` gives a 1-D result.

        ``return_std=True`` (a gaussian_nll network) returns ``(mean, std)``: the first half of
        the output and ``exp(c / 2)`` for the clipped log-variances ``c`` of the second half.
        """
        X = np.asarray(X, dtype=self.dtype)
        single = X.ndim == 1
        out = self.forward(X[np.newaxis, :] if single else X)[-1][1]
        if return_std:
            mu, c, _ = gaussian_split(out)
            out = (mu, np.exp(c / 2))
            return tuple(a[0] for a in out) if single else out
        return out[0] if single else out

    def input_grad(self, X):
        """Jacobian of :meth:`predict` with respect to the input, ``(n, n_out, n_in)``
        (``(n_out, n_in)`` for a 1-D ``X``): ``J[i, j, k] = ∂ out_ij / ∂ X_ik``.

        Backpropagation of every output at once: ``dA`` of the output layer starts as the
        identity, one row ``e_j`` per output ``j`` (an extra axis after the samples), and goes
        down the layers as in :meth:`loss_and_grad`: ``dZ = f'(dA)`` with each sample's ``Z``
        and ``A`` broadcast over that axis, then ``dA_prev = dZ @ W.T``.
        """
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim == 1:
            return self.input_grad(X[np.newaxis, :])[0]
        spec = self.spec
        n, m = X.shape[0], spec.n_out
        dA = np.broadcast_to(np.eye(m, dtype=self.dtype), (n, m, m))
        for layer, W, (Z, A) in reversed(list(zip(spec.layers, self.weights, self.forward(X)))):
            Zb = np.broadcast_to(Z[:, np.newaxis], (n, m) + Z.shape[1:])
            Ab = np.broadcast_to(A[:, np.newaxis], (n, m) + A.shape[1:])
            dZ = activation_backward(layer.activation, Zb, Ab, dA, spec.leaky_slope,
                                     spec.elu_alpha)
            dA = dZ.reshape(n, m, layer.width) @ W.reshape(layer.n_in, layer.width).T
        return dA

    # ----- loss and gradient --------------------------------------------------------------

    def _l2_penalty(self, l2):
        """``0.5 l2 Σ W²`` over every weight (biases excluded)."""
        if l2 == 0:
            return 0.0
        squares = sum(float(np.vdot(W, W)) for W in self.weights)
        return 0.5 * l2 * squares

    def loss(self, X, y, loss="mse", l2=0.0, sample_weight=None):
        """The loss of the network on ``(X, y)``: data loss plus ``0.5 l2 Σ W²``."""
        _check_loss(loss, self.activations[-1])
        Z, A = self.forward(X)[-1]
        Y = self._targets(y, loss)
        w, S = _weights(sample_weight, Z.shape[0], self.dtype)
        data = 0.0 if S == 0 else _data_loss(loss, Z, A, Y, w, S)
        return data + self._l2_penalty(l2)

    def loss_and_grad(self, X, y, loss="mse", l2=0.0, sample_weight=None):
        """Return ``(loss, grad)``: :meth:`loss` and its gradient in the layout of ``params``.

        Backpropagation: ``dZ`` of the output layer from :func:`loss_and_delta`, then for each
        layer, last to first, ``dW = A_prev.T @ dZ``, ``db = Σ_samples dZ`` and
        ``dZ_prev = f'_prev(dZ @ W.T)``; ``l2 W`` is added to every ``dW``.
        """
        X = np.asarray(X, dtype=self.dtype)
        Y = self._targets(y, loss)
        spec = self.spec
        cache = self.forward(X)
        Z, A = cache[-1]
        value, dZ = loss_and_delta(loss, self.activations[-1], Z, A, Y, sample_weight,
                                   spec.leaky_slope, spec.elu_alpha)
        grad = np.empty(spec.n_params, dtype=self.dtype)
        dWs, dbs = spec.views(grad)
        n = X.shape[0]
        for l in range(len(spec.layers) - 1, -1, -1):
            layer = spec.layers[l]
            W2 = self.weights[l].reshape(layer.n_in, layer.width)
            dZ = dZ.reshape(n, layer.width)
            A_prev = X if l == 0 else cache[l - 1][1]
            np.matmul(A_prev.T, dZ, out=dWs[l].reshape(layer.n_in, layer.width))
            dZ.sum(axis=0, out=dbs[l].reshape(layer.width))
            if l > 0:
                Z_prev = cache[l - 1][0]
                dA_prev = dZ @ W2.T
                dZ = activation_backward(spec.layers[l - 1].activation, Z_prev, A_prev, dA_prev,
                                         spec.leaky_slope, spec.elu_alpha)
        if l2 != 0:
            for dW, W in zip(dWs, self.weights):
                dW += l2 * W
        return value + self._l2_penalty(l2), grad

    # ----- training -----------------------------------------------------------------------

    def fit(self, X, y, loss="mse", optimizer="adam", lr=1e-3, batch_size=32, epochs=100,
            shuffle=True, l2=0.0, sample_weight=None, momentum=0.9, nesterov=False,
            beta1=0.9, beta2=0.999, eps=1e-8, validation_data=None, callback=None,
            verbose=False, rng=None, max_fun=15000, tol=1e-5):
        """Train with mini-batch ``"sgd"`` or ``"adam"``, or full-batch ``"rprop"`` (``lr`` its
        initial step), and return a :class:`History`.

        Each epoch draws one permutation from ``rng`` (default: the network's generator) when
        ``shuffle`` is true, then takes one optimizer step per batch of ``batch_size`` samples
        (``None``: the whole set). The epoch loss is the mean of the batch losses weighted by
        each batch's total sample weight. If it is NaN or infinite the parameters of the
        epoch's start are restored and ``FloatingPointError`` is raised, carrying the History
        as ``err.history``. ``callback(epoch, loss)`` returning False stops training;
        KeyboardInterrupt stops it with the parameters of the interrupted epoch's start.

        ``"lbfgs"`` minimises :meth:`loss` on the whole set with scipy's L-BFGS-B: at most
        ``epochs`` iterations and ``max_fun`` loss evaluations, stopping when the largest
        gradient component is <= ``tol``; one History entry per iteration.
        """
        if optimizer not in ("sgd", "adam", "rprop", "lbfgs"):
            raise ValueError(
                f"optimizer: expected 'sgd', 'adam', 'rprop' or 'lbfgs', got {optimizer!r}")
        _check_loss(loss, self.activations[-1])
        X = np.asarray(X, dtype=self.dtype)
        Y = self._targets(y, loss)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=self.dtype)
        if optimizer == "lbfgs":
            return self._fit_lbfgs(X, Y, loss, l2, w, epochs, max_fun, tol)
        n = X.shape[0]
        B = n if batch_size is None or optimizer == "rprop" else min(batch_size, n)
        generator = self._rng if rng is None else rng
        params = self.params

        # Fresh optimizer state for every fit call.
        if optimizer == "sgd":
            velocity = np.zeros_like(params)
        elif optimizer == "rprop":
            step, prev_grad = np.full_like(params, lr), np.zeros_like(params)
        else:
            m, v = np.zeros_like(params), np.zeros_like(params)
            t = 0

        history = History()
        for epoch in range(1, epochs + 1):
            order = generator.permutation(n) if shuffle else np.arange(n)
            saved = params.copy()
            epoch_sum = 0.0
            wsum = 0.0
            try:
                for start in range(0, n, B):
                    idx = order[start:start + B]
                    w_batch = None if w is None else w[idx]
                    batch_loss, grad = self.loss_and_grad(X[idx], Y[idx], loss, l2, w_batch)
                    if optimizer == "sgd":
                        sgd_update(params, velocity, grad, lr, momentum, nesterov)
                    elif optimizer == "rprop":
                        rprop_update(params, step, prev_grad, grad)
                    else:
                        t += 1
                        adam_update(params, m, v, grad, t, lr, beta1, beta2, eps)
                    wsum_batch = len(idx) if w_batch is None else float(w_batch.sum())
                    epoch_sum += batch_loss * wsum_batch
                    wsum += wsum_batch
            except KeyboardInterrupt:
                params[...] = saved
                history.stop_reason = "interrupted"
                break
            # All-zero weights leave the weighted mean undefined; report 0 rather than NaN.
            epoch_loss = epoch_sum / wsum if wsum > 0 else 0.0

            # The epoch loss is measured before each step: the last step can still overflow
            # the weights behind a finite loss, so the weights are checked too.
            if not (np.isfinite(epoch_loss) and np.isfinite(params).all()):
                params[...] = saved
                history.stop_reason = "diverged"
                err = FloatingPointError(
                    f"training diverged: the loss ({epoch_loss}) or the weights became "
                    f"non-finite at epoch {epoch} "
                    f"with lr={lr}; the weights of the last finite epoch were kept "
                    "(try a smaller lr)"
                )
                err.history = history
                raise err

            history.loss.append(epoch_loss)
            line = f"epoch {epoch}/{epochs}  loss {epoch_loss:.6f}"
            if validation_data is not None:
                X_val, y_val = validation_data
                val_loss = self.loss(X_val, y_val, loss, l2)
                history.val_loss.append(val_loss)
                line += f"  val_loss {val_loss:.6f}"
            if verbose:
                print(line)
            if callback is not None and callback(epoch, epoch_loss) is False:
                history.stop_reason = "callback"
                break
        return history

    def _fit_lbfgs(self, X, Y, loss, l2, w, max_iter, max_fun, tol):
        """L-BFGS-B over a float64 copy of ``params``, evaluated in the network's dtype."""
        import scipy.optimize

        history = History()
        if max_iter == 0:
            return history

        def objective(x):
            self.params[...] = x
            value, grad = self.loss_and_grad(X, Y, loss, l2, w)
            return value, grad.astype(np.float64)

        def record(intermediate_result):
            history.loss.append(float(intermediate_result.fun))

        result = scipy.optimize.minimize(
            objective, self.params.astype(np.float64), method="L-BFGS-B", jac=True,
            callback=record, options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
        self.params[...] = result.x
        history.stop_reason = "converged" if result.status == 0 else "completed"
        return history
