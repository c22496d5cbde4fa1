"""The multi-layer perceptron: one flat parameter buffer, compiled forward, backward and fit.

Every public method validates its input here, converts it once to a C-contiguous array of
the network's dtype and hands it to the solver layer (nnfast/_solvers.py), which calls the
compiled modules: nnfast/_network.pyx for prediction and gradients, nnfast/_train.pyx for
whole training epochs without the GIL.
"""

from __future__ import annotations

import copy as _copy
import threading

import numpy as np

from nnfast import _lbfgs_solver, _solvers, _team, _threads
from nnfast import _training_control as control
from nnfast._history import History
from nnfast._progress import ProgressBar
from nnfast._spec import LOSS_CODES, build_spec, check_dtype, check_seed
from nnfast._targets import (
    check_target_scaling,
    gaussian_mean_std,
    in_training_units,
    scaled_mean_std,
    scaled_output,
    target_statistics,
)
from nnfast._validation import (
    as_finite,
    as_matrix,
    as_numeric_array,
    cache_aligned,
    check_bool,
    check_finite,
    check_int,
    check_loss,
    check_name,
    check_real,
    check_sample_weight,
    check_targets,
)

OPTIMIZERS = ("sgd", "adam", "rprop", "lbfgs", "lbfgs_scipy")


class _ViewList(list):
    """The list of a network's weight (or bias) views.

    Item assignment copies the new values into the parameter buffer after checking their
    shape, so ``net.weights[0] = W`` cannot detach a layer from ``net.params``. The list's
    length cannot change.
    """

    def __init__(self, views, name):
        super().__init__(views)
        self._name = name

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            raise TypeError(f"{self._name}: assign one layer at a time, e.g. {self._name}[0] = W")
        target = self[index]
        array = as_numeric_array(value, f"{self._name}[{index}]")
        if array.shape != target.shape:
            raise ValueError(
                f"{self._name}[{index}]: expected shape {target.shape}, got {array.shape}"
            )
        target[...] = as_finite(array, f"{self._name}[{index}]", target.dtype)

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{self._name}: the number of layers of a network is fixed")

    append = extend = insert = pop = remove = clear = __delitem__ = __iadd__ = _refuse
    sort = reverse = __imul__ = _refuse


class MLP:
    """A multi-layer perceptron ``y = f_L(… f_1(X @ W_1 + b_1) … @ W_L + b_L)``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input width, hidden widths, output width, e.g. ``[1, 20, 20, 1]`` (481 parameters).
    activation : str or list of str
        Hidden activation(s): ``identity``, ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``,
        ``elu``, ``maxout``; one name for all hidden layers or one per hidden layer.
    output_activation : str
        ``identity``, ``sigmoid``, ``tanh`` or ``softmax``.
    dtype : {"float64", "float32"}
        Precision of the parameters and of all arithmetic.
    seed : int or None
        Seeds the initial weights and the shuffling of ``fit``: the same seed gives the
        same weights and the same training result.
    leaky_slope : float
        Slope of ``leaky_relu`` for negative inputs, in [0, 1].
    elu_alpha : float
        ``elu(x) = elu_alpha * (exp(x) - 1)`` for ``x < 0``; >= 0.
    maxout_pieces : int
        Linear pieces of each ``maxout`` unit.

    Attributes
    ----------
    params : ndarray (n_params,)
        Every parameter in one buffer: per layer, ``W`` row-major then ``b``.
    weights, biases : list of ndarray
        Views into ``params``: ``W`` is ``(n_in, n_out)`` (``(n_in, n_out, k)`` for maxout),
        ``b`` is ``(n_out,)`` (``(n_out, k)`` for maxout).
    target_scaling : None or (mean, std)
        For a gaussian_nll network trained on standardised targets
        (``fit(..., standardize_targets=True)``): the targets' means and standard
        deviations, two (k,) float64 arrays. See :attr:`target_scaling`.
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
    ):
        spec = build_spec(
            layer_sizes, activation, output_activation, leaky_slope, elu_alpha, maxout_pieces
        )
        dtype = check_dtype(dtype)
        rng = check_seed(seed)
        self._setup(spec, dtype, spec.init_params(rng, dtype), rng)
        self._seed = seed

    def _setup(self, spec, dtype, params, rng):
        self._spec = spec
        self._dtype = dtype
        params = cache_aligned(params)
        self._params = params
        self._rng = rng
        self._compiled = _solvers.CompiledNetwork(spec, dtype, params)
        self._fit_lock = threading.Lock()
        self._train_state = None  # the optimizer a later fit continues (_training_control)
        weights, biases = spec.views(params)
        self._weights = _ViewList(weights, "weights")
        self._biases = _ViewList(biases, "biases")
        self._target_scaling = None

    # ---- structure -------------------------------------------------------------------------

    @property
    def layer_sizes(self) -> tuple:
        return self._spec.layer_sizes

    @property
    def activations(self) -> tuple:
        """Activation name of every layer, the output layer last."""
        return self._spec.activations

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def n_params(self) -> int:
        return self._spec.n_params

    @property
    def leaky_slope(self) -> float:
        return self._spec.leaky_slope

    @property
    def elu_alpha(self) -> float:
        return self._spec.elu_alpha

    @property
    def maxout_pieces(self) -> int:
        return self._spec.maxout_pieces

    @property
    def params(self) -> np.ndarray:
        """All parameters in one contiguous 1-D array (writable; weights/biases view it)."""
        return self._params

    @params.setter
    def params(self, value):
        array = as_numeric_array(value, "params")
        if array.shape != (self.n_params,):
            raise ValueError(f"params: expected shape ({self.n_params},), got {array.shape}")
        self._params[...] = as_finite(array, "params", self._dtype)

    @property
    def weights(self) -> list:
        return self._weights

    @property
    def biases(self) -> list:
        return self._biases

    @property
    def target_scaling(self):
        """None, or ``(mean, std)`` of the targets of a gaussian_nll network trained on
        standardised targets ``z = (y - mean) / std`` (two read-only (k,) float64 arrays).

        Set by ``fit(..., standardize_targets=True)`` from the (weighted) training targets,
        kept by later fits, copies and pickles (not by :func:`nnfast.save` yet, which
        refuses such a network). While set, the network works in the targets' units:
        :meth:`predict` returns means ``mean + std · μ`` and log-variances
        ``clip(s) + 2 log std`` (``return_std=True``: standard deviations
        ``std · exp(clip(s) / 2)``), :meth:`input_grad` is that output's Jacobian, and
        :meth:`loss`, :meth:`loss_and_grad` and ``fit`` take ``y`` in the targets' units
        and standardise it (loss ``gaussian_nll`` only). Their loss values are those of the
        standardised targets, the objective minimised: the negative log-likelihood in the
        targets' units is that plus ``mean(log(std))``. Assign ``(mean, std)`` to set it,
        None to read the raw network again.
        """
        return self._target_scaling

    @target_scaling.setter
    def target_scaling(self, value):
        if value is not None:
            self._check_gaussian_output("target_scaling: a scaling")
        self._target_scaling = check_target_scaling(value, self.layer_sizes[-1] // 2)

    def __repr__(self) -> str:
        hidden = self.activations[:-1]
        act = hidden[0] if len(set(hidden)) == 1 else list(hidden)
        scaling = ""
        if self._target_scaling is not None:
            mean, std = (a.tolist() for a in self._target_scaling)
            scaling = f", target_scaling=({mean}, {std})"
        return (
            f"MLP({list(self.layer_sizes)}, activation={act!r}, "
            f"output_activation={self.activations[-1]!r}, dtype={self._dtype.name!r}, "
            f"n_params={self.n_params}{scaling})"
        )

    def copy(self) -> MLP:
        """An independent network with the same structure, parameters, random state and
        optimizer state (the copy trains on as the original would)."""
        clone = MLP.__new__(MLP)
        clone._setup(self._spec, self._dtype, self._params.copy(), _copy.deepcopy(self._rng))
        clone._seed = self._seed
        clone._train_state = _copy.deepcopy(self._train_state)
        clone._target_scaling = self._target_scaling  # read-only arrays: shared
        return clone

    def __getstate__(self):
        return {
            "spec": self._spec,
            "dtype": self._dtype.name,
            "params": self._params,
            "rng": self._rng,
            "seed": self._seed,
            "train_state": self._train_state,
            "target_scaling": self._target_scaling,
        }

    def __setstate__(self, state):
        self._setup(
            state["spec"], np.dtype(state["dtype"]), np.array(state["params"]), state["rng"]
        )
        self._seed = state["seed"]
        self._train_state = state.get("train_state")  # (absent from older pickles)
        scaling = state.get("target_scaling")  # absent from pickles of earlier versions
        self._target_scaling = (
            None if scaling is None else check_target_scaling(scaling, self.layer_sizes[-1] // 2)
        )

    # ---- input checks ----------------------------------------------------------------------

    def _check_X(self, X, name="X", allow_1d=True):
        return as_matrix(X, name, self._dtype, n_cols=self.layer_sizes[0], allow_1d=allow_1d)

    def _check_data(self, X, y, loss, sample_weight, l2, prefix=""):
        """Validated (X, Y, w, loss code, l2, 1 / weight sum) for loss, gradient and fit."""
        loss = check_loss(loss, self.activations[-1], self.layer_sizes[-1])
        l2 = check_real(l2, "l2", low=0)
        X, _ = self._check_X(X, prefix + "X", allow_1d=False)
        n = X.shape[0]
        try:
            Y = check_targets(y, loss, n, self.layer_sizes[-1], self._dtype)
        except (TypeError, ValueError) as err:
            raise type(err)(prefix + str(err)) from None
        w = check_sample_weight(sample_weight, n, self._dtype)
        weight_sum = float(n) if w is None else float(w.sum(dtype=np.float64))
        return X, Y, w, loss, l2, 1.0 / weight_sum

    # ---- evaluation ------------------------------------------------------------------------

    def predict(self, X, return_std=False, n_threads=None):
        """Network output for ``X`` (n, n_in) → (n, n_out); a 1-D ``X`` is one sample.

        With ``return_std=True`` the output is read as ``loss="gaussian_nll"`` trains it —
        ``k = n_out / 2`` means, then ``k`` log-variances ``s`` — and ``(mean, std)`` is
        returned, each (n, k) ((k,) for a 1-D ``X``), with ``std = exp(clip(s, -30, 30) / 2)``,
        the standard deviation the loss used. This needs an identity output activation and
        an even ``n_out``. The default (``return_std=False``) returns the raw output, means
        and log-variances side by side, as for any other network.

        ``n_threads`` (here and in every method that computes): the most threads the call
        may use; None, the cores this process may use (see ``docs/threads.md``). The result
        is the same bytes for any number.
        """
        if return_std is not False:
            return_std = check_bool(return_std, "return_std")
            if return_std:
                self._check_gaussian_output()
        spec, compiled = self._spec, self._compiled
        plain_threads = n_threads is None or (type(n_threads) is int and n_threads >= 1)
        # A few samples already in the network's dtype: checked and predicted in one
        # compiled call (a sample's latency is these fixed costs); None for anything else.
        out = compiled.predict_small(compiled.layout, self._params, X) if plain_threads else None
        if out is None:
            X, single = as_matrix(X, "X", self._dtype, spec.layer_sizes[0], True)
            out = np.empty((X.shape[0], spec.layer_sizes[-1]), dtype=self._dtype)
            # A pass too short for a team (nnfast._team's crossover) skips the thread
            # budget (about 1 µs of bookkeeping: 3.5 -> 2.4 µs for one sample, before
            # predict_small).
            if plain_threads and not _team.splits(compiled.layout, X.shape[0], 1):
                compiled.fast_predict(compiled.layout, self._params, X, out)
            else:
                with _threads.use(n_threads) as count:
                    compiled.fast_predict(compiled.layout, self._params, X, out, count)
            if single:
                out = out[0]
        k, scaling = spec.layer_sizes[-1] // 2, self._target_scaling
        if scaling is not None:
            return (
                scaled_mean_std(out, k, scaling) if return_std else scaled_output(out, k, scaling)
            )
        if not return_std:
            return out
        return gaussian_mean_std(out, k)

    def _check_gaussian_output(self, what="return_std: True"):
        """predict(return_std=True) and target_scaling need a gaussian_nll network's output."""
        n_out, output = self.layer_sizes[-1], self.activations[-1]
        if output != "identity" or n_out % 2:
            raise ValueError(
                f"{what} reads the output as k means then k log-variances "
                "(loss='gaussian_nll'), which needs output_activation='identity' and an even "
                f"number of outputs; this network has output_activation={output!r} and "
                f"layer_sizes[-1] = {n_out}"
            )

    def input_grad(self, X, n_threads=None) -> np.ndarray:
        """Jacobian of the output with respect to the input, one matrix per sample.

        ``J[i, j, k] = ∂ predict(X)[i, j] / ∂ X[i, k]``: ``X`` (n, n_in) → ``J``
        (n, n_out, n_in), in the network's dtype; a 1-D ``X`` is one sample and gives one
        (n_out, n_in) matrix (as :meth:`predict` gives one output row).

        With ``z_l = a_{l-1} @ W_l + b_l`` and ``a_l = f_l(z_l)`` (``a_0 = x``), the chain rule
        gives, for each sample, ``J = D_L W_Lᵀ D_{L-1} W_{L-1}ᵀ … D_1 W_1ᵀ`` with
        ``D_l = ∂f_l / ∂z_l``: ``diag(f_l'(z_l))`` for the element-wise activations,
        ``diag(a) - a aᵀ`` for softmax (which couples the outputs), and for maxout the
        selection of each unit's winning piece.

        With fewer inputs than outputs (``n_in < n_out``: an emulator from a few labels to a
        spectrum) it is computed in forward mode: the ``n_in`` tangents of every sample go up
        the layers together with the values, ``dz_l = da_{l-1} @ W_l`` and
        ``da_l = D_l dz_l``, each layer one product over all samples and tangents (for one
        spectrum of a 5→128→128→500 network, about 3× the time of :meth:`predict`). Otherwise
        it is computed by backpropagation, one forward pass and then one backward pass per
        output. Both modes use the kernels of :meth:`loss_and_grad`, so the conventions at
        the kinks are those of training: relu'(0) = 0, leaky_relu'(0) = leaky_slope,
        elu'(0) = 1, and maxout follows the first of tied pieces; they agree to rounding, and
        a row's Jacobian does not depend on the other rows.
        """
        X, single = self._check_X(X)
        n_in, n_out = self.layer_sizes[0], self.layer_sizes[-1]
        J = np.empty((X.shape[0], n_out, n_in), dtype=self._dtype)
        with _threads.use(n_threads):
            self._compiled.input_grad_into(X, J)
        if self._target_scaling is not None:  # the means' rows, in the targets' units
            J[:, : n_out // 2] *= self._target_scaling[1].astype(self._dtype)[:, None]
        return J[0] if single else J

    def loss(self, X, y, loss="mse", l2=0.0, sample_weight=None, n_threads=None) -> float:
        """Mean (or sample-weighted mean) loss on ``(X, y)`` plus ``0.5·l2·ΣW²``.

        ``loss`` is one of

        - ``mse``: mean over samples and outputs of ``(ŷ − y)²``;
        - ``cross_entropy`` (softmax output; ``y`` integer labels (n,) or class
          probabilities (n, n_out)): mean over samples of ``−Σ y log ŷ``;
        - ``binary_cross_entropy`` (sigmoid output; ``y`` in [0, 1]): mean over samples and
          outputs;
        - ``poisson`` (exp output; ``y >= 0``): mean over samples and outputs of the half
          Poisson deviance ``y log(y / ŷ) − y + ŷ``;
        - ``gaussian_nll`` (identity output with ``n_out = 2k``; ``y`` (n, k), or (n,) for
          k = 1): heteroscedastic regression. The output's first ``k`` columns are the means
          ``μ``, the last ``k`` the log-variances ``s`` of ``k`` Gaussian targets; the loss is
          the mean over samples and targets of ``0.5 (c + (y − μ)² e^−c)`` with
          ``c = clip(s, -30, 30)``: the negative log-likelihood without its constant
          ``0.5 log 2π`` (as PyTorch's ``GaussianNLLLoss``), scaled like ``mse`` (a mean over
          samples and targets). Outside the clip range ``s`` gets no gradient; the range
          keeps ``e^−c`` finite and non-zero (standard deviations from 3.1e-7 to 3.3e6 in the
          units the network trains in: targets far from unit variance train best with
          ``fit(..., standardize_targets=True)``, see :attr:`target_scaling`, which this
          method honours). With ``s = 0`` the loss is ``mse / 2``. :meth:`predict` with ``return_std=True`` returns ``(μ, e^(c/2))``.
        """
        X, Y, w, loss, l2, inv_wsum = self._check_data(X, y, loss, sample_weight, l2)
        Y = in_training_units(Y, loss, self._target_scaling, self._dtype)
        with _threads.use(n_threads):
            return float(self._compiled.loss(X, Y, w, LOSS_CODES[loss], inv_wsum, l2))

    def loss_and_grad(self, X, y, loss="mse", l2=0.0, sample_weight=None, n_threads=None):
        """``(loss, grad)``: the value of :meth:`loss` and its gradient in the layout of
        ``params``."""
        X, Y, w, loss, l2, inv_wsum = self._check_data(X, y, loss, sample_weight, l2)
        Y = in_training_units(Y, loss, self._target_scaling, self._dtype)
        grad = np.empty_like(self._params)
        with _threads.use(n_threads):
            value = self._compiled.loss_and_grad(X, Y, w, LOSS_CODES[loss], inv_wsum, grad, l2)
        return float(value), grad

    # ---- training --------------------------------------------------------------------------

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
        max_fun=15000,
        tol=1e-5,
        patience=None,
        progress=False,
        restart=False,
        standardize_targets=False,
        n_threads=None,
    ) -> History:
        """Train in place by mini-batch ``sgd`` (with ``momentum``, ``nesterov``), ``adam``,
        full-batch ``rprop`` (iRprop-, with ``lr`` as the initial step size) or ``lbfgs``.

        Each epoch visits every sample once, in batches of ``batch_size`` (None: the whole
        set; ``rprop`` always uses the whole set), in a new seeded random order when
        ``shuffle``. Every step minimises the batch's
        :meth:`loss` (``l2`` and ``sample_weight`` included). Returns a :class:`History`.
        ``callback(epoch, loss)`` runs after each epoch; returning False stops training.

        ``lbfgs`` minimises :meth:`loss` on the whole set by nnfast's compiled L-BFGS
        (memory 10, a strong-Wolfe line search), the whole fit without the GIL, over a
        float64 iterate (a float32 network is evaluated at its rounding). One "epoch" is
        one L-BFGS iteration: ``epochs`` is the maximum number of iterations, ``max_fun``
        the maximum number of loss evaluations (checked after each iteration), and it stops
        when the largest gradient component is <= ``tol`` or the relative reduction
        ``(f_k - f_k+1) / max(|f_k|, |f_k+1|, 1)`` is <= 2.2e-9, as SciPy's L-BFGS-B does.
        A trial step whose loss is not finite only shortens the line search.
        ``lbfgs_scipy`` is the same problem through ``scipy.optimize.minimize(method=
        "L-BFGS-B")`` (scikit-learn's minimiser, for its exact iterates; SciPy's BLAS on one
        thread during the fit when threadpoolctl is installed). ``lr``, ``batch_size``,
        ``shuffle`` and the other optimizers' settings are not used. ``History.stop_reason``
        is ``"converged"``, ``"completed"`` (``epochs`` iterations), ``"max_fun"``,
        ``"stalled"`` (the line search could not make progress), ``"callback"``,
        ``"interrupted"`` or ``"diverged"``.

        ``lr`` may be a callable ``lr(epoch) -> float`` (sgd, adam), called before each
        epoch, ``epoch`` counting from 0 every epoch of the optimizer's state. With
        ``validation_data``, ``patience`` stops once that many epochs in a row brought no
        val_loss below the best (``stop_reason="converged"``); the network then gets back
        the weights of its best epoch, ``History.best_epoch``. ``progress=True`` shows a bar
        with loss and val_loss (tqdm when installed, else one line on standard error).

        A later fit with the same optimizer continues its state (moments or velocity,
        update count, the epoch of a callable lr) with this call's settings, and every fit
        continues the network's random state (the row order): ``fit(X, y, epochs=4)`` then
        ``fit(X, y, epochs=6)`` equals ``fit(X, y, epochs=10)`` bit for bit.
        ``restart=True`` starts a fresh optimizer from the current weights (as another
        optimizer, lbfgs or a diverged run do); ``copy()`` and pickles carry the state,
        ``nnfast.save`` does not. After early stopping the state is the last epoch's.

        A loss (or weights) that becomes NaN or infinite raises ``FloatingPointError`` after
        restoring the weights of the last finite epoch; the exception carries ``.history``.
        Ctrl-C (a notebook's interrupt) raises ``KeyboardInterrupt`` within an epoch (so a
        loop over fits stops too) after restoring the weights of the last complete epoch; it
        carries ``.history`` (``stop_reason="interrupted"``), and a later fit goes on from
        there (not bit for bit: the interrupted epoch's first batches stay in the moments)::

            try:
                history = net.fit(X, y, epochs=10_000, progress=True)
            except KeyboardInterrupt as interrupt:
                history = interrupt.history

        ``standardize_targets=True`` (``loss="gaussian_nll"`` only) trains on
        ``(y - mean) / std`` per target, with the (``sample_weight``-weighted) mean and
        standard deviation of ``y``, stored as :attr:`target_scaling`: :meth:`predict`
        then reports means and standard deviations in ``y``'s units, whatever its scale.
        The loss values reported (``History``, ``callback``) are those of the standardised
        targets. A later fit with the default False keeps the network's scaling.

        ``n_threads``: the most threads each batch (each L-BFGS evaluation) may use, as in
        :meth:`predict`; the weights are the same bytes for any number.
        """
        X, Y, w, loss, l2, inv_wsum = self._check_data(X, y, loss, sample_weight, l2)
        if check_bool(standardize_targets, "standardize_targets") and loss != "gaussian_nll":
            raise ValueError(
                "standardize_targets: True trains on standardised targets with "
                f"loss='gaussian_nll' only; got loss={loss!r}"
            )
        scaling = target_statistics(Y, w) if standardize_targets else self._target_scaling
        Y = in_training_units(Y, loss, scaling, self._dtype)
        check_name(optimizer, "optimizer", OPTIMIZERS)
        lr = control.check_lr(lr, optimizer)
        n = X.shape[0]
        # Any batch_size >= n means the whole set; clipping here keeps huge values (10**20)
        # from overflowing the compiled driver's Py_ssize_t.
        batch = n if batch_size is None else min(check_int(batch_size, "batch_size", 1), n)
        if optimizer == "rprop":
            batch = n
        epochs = check_int(epochs, "epochs", 0, high=np.iinfo(np.intp).max)
        shuffle = check_bool(shuffle, "shuffle")
        momentum = check_real(momentum, "momentum", low=0, high=1, high_open=True)
        nesterov = check_bool(nesterov, "nesterov")
        beta1 = check_real(beta1, "beta1", low=0, high=1, high_open=True)
        beta2 = check_real(beta2, "beta2", low=0, high=1, high_open=True)
        eps = check_real(eps, "eps", low=0, low_open=True)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable or None, got {type(callback).__name__}")
        verbose = check_bool(verbose, "verbose")
        max_fun = check_int(max_fun, "max_fun", 1)
        tol = check_real(tol, "tol", low=0)
        validation = control.check_validation(
            validation_data,
            lambda X_val, y_val: self._check_data(X_val, y_val, loss, None, l2, "validation_data "),
            lambda Y_val: in_training_units(Y_val, loss, scaling, self._dtype),
        )
        patience = control.check_patience(patience, validation, optimizer)
        progress = check_bool(progress, "progress")
        restart = check_bool(restart, "restart")
        threads = _threads.use(n_threads)

        # params is writable in place (net.params[0] = np.nan bypasses the setter's check):
        # training from non-finite weights could only "diverge" and keep them.
        check_finite(self._params, "params")
        if not self._fit_lock.acquire(blocking=False):
            raise RuntimeError(
                "fit: this network is already being trained in another thread; "
                "train a copy (net.copy()) instead"
            )
        self._target_scaling = scaling
        bar = ProgressBar(epochs, label="fit") if progress else None
        try:
            with threads:
                if optimizer in ("lbfgs", "lbfgs_scipy"):
                    self._train_state = None
                    return _lbfgs_solver.run_lbfgs(
                        self,
                        X,
                        Y,
                        w,
                        loss,
                        l2,
                        inv_wsum,
                        epochs,
                        max_fun,
                        tol,
                        validation,
                        control.progress_callback(bar, callback),
                        verbose,
                        method="scipy" if optimizer == "lbfgs_scipy" else "compiled",
                    )[0]
                settings = dict(
                    momentum=momentum, nesterov=nesterov, beta1=beta1, beta2=beta2, eps=eps
                )
                state = self._train_state = control.start_state(
                    self._train_state, optimizer, self._params, lr, settings, restart, epochs
                )
                fit_control = control.FitControl(state, self._params, lr, patience, bar)
                loop = _solvers.EpochLoop(
                    self,
                    X,
                    Y,
                    w,
                    _solvers.make_objective(loss, l2=l2),
                    state.optimizer,
                    batch,
                    shuffle=self._rng.permutation if shuffle else None,
                    validation=validation,
                    verbose=verbose,
                    callback=callback,
                    control=fit_control if fit_control.needed else None,
                )
                return fit_control.run(loop, epochs)
        finally:
            if bar is not None:
                bar.close()
            self._fit_lock.release()
