"""The NumPy twins of nnfast's kernels: dense products, activations and their derivatives,
losses with their output deltas, and the SGD / Adam / Rprop updates.

Part of the plain-NumPy reference (see :mod:`nnfast.reference`, which re-exports every public
name here and builds its :class:`~nnfast.reference.MLP` from them). All arithmetic happens
in the dtype of the inputs; validation is deliberately light.

Shapes: ``n`` samples, ``n_in`` inputs, ``n_out`` outputs of a layer, ``k`` maxout pieces,
``width = n_out * k`` pre-activation columns (``k = 1`` except for maxout).
"""

from __future__ import annotations

import math

import numpy as np

from nnfast._spec import LOG_VAR_RANGE

_ACTIVATIONS = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "maxout",
    "softmax",
    "exp",
)
# The output activation each loss is defined with (mse works with any of them).
_LOSS_OUTPUT = {
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "poisson": "exp",
    "gaussian_nll": "identity",
}
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


def loss_and_delta(
    loss, output_activation, Z, A, Y, sample_weight=None, leaky_slope=0.1, elu_alpha=1.0
):
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
        dZ = activation_backward(
            output_activation, Z, A, dA, leaky_slope=leaky_slope, elu_alpha=elu_alpha
        )
    elif loss == "gaussian_nll":
        mu, c, inside = gaussian_split(Z)
        e = np.exp(-c)
        r = mu - Y
        scale = (1 / (S * mu.shape[1])) if w is None else w / (S * mu.shape[1])
        dZ = np.concatenate(
            [r * e * scale, np.where(inside, 0.5 * (1 - r * r * e), 0) * scale], axis=1
        ).astype(Z.dtype, copy=False)
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


def rprop_update(
    params, step, prev_grad, grad, eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0
):
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
