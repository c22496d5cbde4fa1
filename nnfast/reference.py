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

import numpy as np

from nnfast._history import History

# The kernels' twins live in nnfast/_reference_ops.py; every public name stays importable
# from here (and the private helpers the MLP below uses).
from nnfast._reference_ops import (  # noqa: F401 (re-exported)
    _ACTIVATIONS,
    _LOSS_OUTPUT,
    _LOSSES,
    _check_activation,
    _check_loss,
    _data_loss,
    _weighted_total,
    _weights,
    activation_backward,
    activation_forward,
    adam_update,
    dense_forward,
    gaussian_split,
    loss_and_delta,
    matmul,
    matvec,
    rprop_update,
    sgd_update,
)
from nnfast._spec import build_spec, check_dtype, check_seed

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

    def __init__(
        self,
        layer_sizes,
        activation="tanh",
        output_activation="identity",
        dtype="float64",
        seed=None,
        leaky_slope=0.1,
        elu_alpha=1.0,
        maxout_pieces=2,
        params=None,
    ):
        self.spec = build_spec(
            layer_sizes, activation, output_activation, leaky_slope, elu_alpha, maxout_pieces
        )
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
            dZ = activation_backward(layer.activation, Zb, Ab, dA, spec.leaky_slope, spec.elu_alpha)
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
        value, dZ = loss_and_delta(
            loss, self.activations[-1], Z, A, Y, sample_weight, spec.leaky_slope, spec.elu_alpha
        )
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
                dZ = activation_backward(
                    spec.layers[l - 1].activation,
                    Z_prev,
                    A_prev,
                    dA_prev,
                    spec.leaky_slope,
                    spec.elu_alpha,
                )
        if l2 != 0:
            for dW, W in zip(dWs, self.weights):
                dW += l2 * W
        return value + self._l2_penalty(l2), grad

    # ----- training -----------------------------------------------------------------------

    def fit(
        self,
        X,
        y,
        loss="mse",
        optimizer="adam",
        lr=1e-3,
        batch_size=32,
        epochs=100,
        shuffle=True,
        l2=0.0,
        sample_weight=None,
        momentum=0.9,
        nesterov=False,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        validation_data=None,
        callback=None,
        verbose=False,
        rng=None,
        max_fun=15000,
        tol=1e-5,
        restart=False,
    ):
        """Train with mini-batch ``"sgd"`` or ``"adam"``, or full-batch ``"rprop"`` (``lr`` its
        initial step), and return a :class:`History`.

        Each epoch draws one permutation from ``rng`` (default: the network's generator) when
        ``shuffle`` is true, then takes one optimizer step per batch of ``batch_size`` samples
        (``None``: the whole set). The epoch loss is the mean of the batch losses weighted by
        each batch's total sample weight. If it is NaN or infinite the parameters of the
        epoch's start are restored and ``FloatingPointError`` is raised, carrying the History
        as ``err.history``. ``callback(epoch, loss)`` returning False stops training;
        KeyboardInterrupt stops it with the parameters of the interrupted epoch's start.
        A later fit with the same optimizer continues its buffers and update count unless
        ``restart``; another optimizer, lbfgs or a diverged run start afresh.

        ``"lbfgs"`` minimises :meth:`loss` on the whole set with scipy's L-BFGS-B: at most
        ``epochs`` iterations and ``max_fun`` loss evaluations, stopping when the largest
        gradient component is <= ``tol``; one History entry per iteration (the iterates of
        nnfast.MLP's ``"lbfgs_scipy"``, accepted here as a second name for it).
        """
        if optimizer not in ("sgd", "adam", "rprop", "lbfgs", "lbfgs_scipy"):
            raise ValueError(
                "optimizer: expected 'sgd', 'adam', 'rprop', 'lbfgs' or 'lbfgs_scipy', got "
                f"{optimizer!r}"
            )
        _check_loss(loss, self.activations[-1])
        X = np.asarray(X, dtype=self.dtype)
        Y = self._targets(y, loss)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=self.dtype)
        if optimizer in ("lbfgs", "lbfgs_scipy"):
            self._state = None
            return self._fit_lbfgs(X, Y, loss, l2, w, epochs, max_fun, tol)
        n = X.shape[0]
        B = n if batch_size is None or optimizer == "rprop" else min(batch_size, n)
        generator = self._rng if rng is None else rng
        params = self.params

        state = getattr(self, "_state", None)
        if restart or state is None or state["optimizer"] != optimizer:
            zeros = np.zeros_like
            state = self._state = {"optimizer": optimizer, "t": 0, "velocity": zeros(params),
                                   "m": zeros(params), "v": zeros(params), "step":
                                   np.full_like(params, lr), "prev_grad": zeros(params)}  # fmt: skip
        velocity, step, prev_grad = state["velocity"], state["step"], state["prev_grad"]
        m, v = state["m"], state["v"]

        history = History()
        for epoch in range(1, epochs + 1):
            order = generator.permutation(n) if shuffle else np.arange(n)
            saved = params.copy()
            epoch_sum = 0.0
            wsum = 0.0
            try:
                for start in range(0, n, B):
                    idx = order[start : start + B]
                    w_batch = None if w is None else w[idx]
                    batch_loss, grad = self.loss_and_grad(X[idx], Y[idx], loss, l2, w_batch)
                    if optimizer == "sgd":
                        sgd_update(params, velocity, grad, lr, momentum, nesterov)
                    elif optimizer == "rprop":
                        rprop_update(params, step, prev_grad, grad)
                    else:
                        state["t"] += 1
                        adam_update(params, m, v, grad, state["t"], lr, beta1, beta2, eps)
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
                self._state = None
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
            objective,
            self.params.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            callback=record,
            options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol},
        )
        self.params[...] = result.x
        history.stop_reason = "converged" if result.status == 0 else "completed"
        return history
