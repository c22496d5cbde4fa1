"""The shared base of nnfast's scikit-learn estimators: parameters, fitting, the solvers.

``_BaseMLP`` holds what :class:`~nnfast.sklearn.MLPRegressor`,
:class:`~nnfast.sklearn.MLPClassifier` and :class:`~nnfast.sklearn.MLPAutoencoder` share:
the constructor parameters of scikit-learn 1.9's multi-layer perceptrons, their validation,
scikit-learn's initialisation, the fit / partial_fit machinery and prediction through the
fitted :class:`nnfast.MLP`. How the estimators follow scikit-learn, and where they differ,
is documented in ``docs/sklearn.md``.
"""

from __future__ import annotations

import functools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from nnfast import _lbfgs_solver, _solvers, _threads
from nnfast._validation import FLOATS, as_finite, as_finite_rows, as_kernel_array, as_kernel_rows
from nnfast.network import MLP
from nnfast.sklearn import _state
from nnfast.sklearn._early_stopping import finish_diverged_run
from nnfast.sklearn._views import _ParameterViews

_ITERATIVE_SOLVERS = ("sgd", "adam", "rprop")
# scikit-learn's activation names -> nnfast's.
_HIDDEN = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "maxout": "maxout",
}
_OUTPUT_NAME = {"identity": "identity", "exp": "exp", "softmax": "softmax", "logistic": "sigmoid"}


@functools.cache
def _param_names(cls):
    """BaseEstimator._get_param_names of an estimator class (its __init__ is fixed)."""
    return BaseEstimator._get_param_names.__func__(cls)


class _BaseMLP(_ParameterViews, BaseEstimator):
    """What MLPRegressor, MLPClassifier and MLPAutoencoder share: the parameters, fit,
    partial_fit, the solvers, prediction."""

    # True for a model fitted with loss="gaussian_nll": its network has 2 n_outputs_ units,
    # the means then the log-variances (set by _initialize; a class default for the rest).
    _predicts_std = False

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_HIDDEN))],
        "solver": [StrOptions({"lbfgs", "lbfgs_scipy", "sgd", "adam", "rprop"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        *,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        dtype,
        n_threads,
    ):
        # The estimators spell out their own signatures (scikit-learn reads get_params from
        # them) and pass the shared parameters on to this one assignment body.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads

    @classmethod
    def _get_param_names(cls):
        """scikit-learn's sorted constructor parameters, read from the signature once per
        class: ``inspect.signature`` took ~0.1 ms a call, and every fit reads them twice
        (the parameter validation and the working copy's get_params)."""
        return _param_names(cls)

    def _validate_params(self):
        """scikit-learn's parameter validation; skipped, as scikit-learn's own estimators
        skip it, under ``sklearn.config_context(skip_parameter_validation=True)``."""
        if not get_config()["skip_parameter_validation"]:
            super()._validate_params()

    # ---- set-up --------------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden):
        """nnfast's activation name of each of the n_hidden hidden layers (a tuple)."""
        return (_HIDDEN[self.activation],) * n_hidden

    def _init_params(self, net):
        """scikit-learn's initialisation of net, drawn from self._random_state in its order:
        per layer W then b, uniform in ±sqrt(factor / (fan_in + fan_out))."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        draws = []
        for W, b in zip(net.weights, net.biases):  # W (n_in, n_out[, pieces])
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            draws.append(self._random_state.uniform(-bound, bound, (W.shape[0], b.size)).ravel())
            draws.append(self._random_state.uniform(-bound, bound, b.size))
        return np.concatenate(draws).astype(net.dtype)

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self._predicts_std = self._gaussian_nll()
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self._net = MLP(
            layer_units,
            activation=self._hidden_activations(len(layer_units) - 2),
            output_activation=_OUTPUT_NAME[self.out_activation_],
            dtype=dtype,
        )
        self._net.params = self._init_params(self._net)
        self._bind_views()
        self._best_params = self._net.params.copy()
        self._optimizer = None
        if self.solver in _ITERATIVE_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _check_network(self, layer_units):
        """warm_start / partial_fit: the architecture must still be the fitted one."""
        net = self._net
        if list(net.layer_sizes) != list(layer_units):
            raise ValueError(
                "warm_start/partial_fit: the network was fitted with layer sizes "
                f"{list(net.layer_sizes)} (inputs, hidden_layer_sizes, outputs), this call needs "
                f"{list(layer_units)}; set warm_start=False or refit to change the architecture"
            )
        hidden = self._hidden_activations(len(layer_units) - 2)
        if net.activations[:-1] != hidden:
            if "maxout" in hidden + net.activations[:-1]:
                raise ValueError(
                    f"warm_start/partial_fit: activation changed from {net.activations[0]!r} "
                    f"to {self.activation!r}, which changes the number of parameters; refit"
                )
            params = net.params.copy()  # same shapes: continue with the new activation
            self._net = MLP(
                layer_units,
                activation=hidden,
                output_activation=net.activations[-1],
                dtype=net.dtype,
            )
            self._net.params = params
            self._bind_views()

    def _gaussian_nll(self):
        """Whether the loss parameter asks for mean and log-variance outputs."""
        return False

    def _training_targets(self, Y, sample_weight, first_pass):
        """Y in the units the network trains in (MLPRegressor standardises gaussian_nll's)."""
        return Y

    def _loss_setup(self):
        """(nnfast loss name, loss_scale) giving scikit-learn's objective for n_outputs_."""
        m = self.n_outputs_
        if self._predicts_std:
            return "gaussian_nll", float(m)  # Σ_targets mean_samples 0.5 (s + r² e^-s)
        if self.out_activation_ == "identity":
            return "mse", m / 2.0  # 0.5 Σ_outputs mean_samples (ŷ - y)²
        if self.out_activation_ == "exp":
            return "poisson", float(m)
        if self.out_activation_ == "softmax":
            return "cross_entropy", 1.0
        return "binary_cross_entropy", float(m)

    # ---- fit -----------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels in classification, real numbers in regression.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _ITERATIVE_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        # One fit per estimator at a time (the compiled training releases the GIL), on a
        # working copy whose state is installed whole at the end (see _state.py): methods
        # running meanwhile in other threads see the old model, never a half-fitted one. A
        # call refused before training starts leaves the estimator as it was; one that
        # fails during training (divergence) installs what it trained, as scikit-learn does.
        with _state.fitting(self):
            work = _state.working_copy(self)
            if getattr(work, "_net", None) is not None:
                work._bind_views()
                # coefs_ / intercepts_ the user replaced reach the copy's network.
                work.coefs_, work.intercepts_ = list(self.coefs_), list(self.intercepts_)
                work._sync_params()
            if incremental:
                work._start_partial_fit(y, classes)
            try:
                with _threads.use(self.n_threads):
                    work._fit_unguarded(X, y, sample_weight, incremental)
            except BaseException:
                if work.__dict__.pop("_training_started", False):
                    _state.install(self, work)
                raise
            del work._training_started
            _state.install(self, work)
        return self

    def _start_partial_fit(self, y, classes):
        """What the first partial_fit call sets up before the input is checked (classes)."""

    def _fit_unguarded(self, X, y, sample_weight=None, incremental=False):
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        dtype = (
            (np.dtype(self.dtype) if self.dtype is not None else X.dtype)
            if first_pass
            else self._net.dtype
        )
        # A value too large for a float32 network is refused, not turned into infinity.
        X, Y = as_finite_rows(X, "X", dtype), as_finite(y, "y", dtype)  # X: dense or CSR
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=dtype, ensure_non_negative=True
            )
            sample_weight = as_kernel_array(sample_weight, sample_weight.dtype)
        # gaussian_nll: a mean and a log-variance unit per target.
        layer_units = [X.shape[1]] + hidden + [y.shape[1] * (2 if self._gaussian_nll() else 1)]
        if not first_pass and self._gaussian_nll() != self._predicts_std:
            raise ValueError(
                "warm_start/partial_fit: the model was fitted with "
                f"{'' if self._predicts_std else 'a loss other than '}loss='gaussian_nll', "
                f"this call has loss={self.loss!r}, which changes the output layer; set "
                "warm_start=False or refit"
            )
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, dtype)
        else:
            self._sync_params()
            self._check_network(layer_units)
        Y = self._training_targets(Y, sample_weight, first_pass)
        self._training_started = True
        try:
            if self.solver in ("lbfgs", "lbfgs_scipy"):
                self._fit_lbfgs(X, Y, sample_weight)
            else:
                self._fit_iterative(X, Y, sample_weight, incremental)
        except FloatingPointError as err:
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed. (nnfast kept the weights of the "
                "last finite epoch.)"
            ) from err
        return self

    def _fit_lbfgs(self, X, Y, w):
        loss, scale = self._loss_setup()
        weight_sum = float(X.shape[0]) if w is None else float(w.sum(dtype=np.float64))

        def report(iteration, value):
            print(f"Iteration {iteration}, loss = {value:.8f}")

        history, result = _lbfgs_solver.run_lbfgs(
            self._net,
            X,
            Y,
            w,
            loss,
            self.alpha / weight_sum,
            scale / weight_sum,
            self.max_iter,
            self.max_fun,
            self.tol,
            # Python between iterations only to print them: otherwise the GIL stays free.
            callback=report if self.verbose else None,
            method="scipy" if self.solver == "lbfgs_scipy" else "compiled",
        )
        self.n_iter_ = min(result.nit, self.max_iter)
        self.loss_ = float(result.fun)
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}):\n{result.message}\n\nIncrease the number of iterations "
                f"to improve the convergence (max_iter={self.max_iter}).\nYou might also want "
                "to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _fit_iterative(self, X, Y, w, incremental):
        """sgd, adam or rprop: max_iter epochs (one for partial_fit) until scikit-learn's
        stopping rule ends the run."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        optimizer = self._optimizer_state(incremental)
        loss, loss_scale = self._loss_setup()
        objective = _solvers.make_objective(
            loss, loss_scale=loss_scale, l2=self.alpha, l2_batch_scaled=True
        )
        X, Y, w, validation = self._validation_split(X, Y, w)
        n = X.shape[0]
        batch = self._batch_rows(n)
        self.n_iter_ = 0
        rule = self._stopping_rule()
        # Python is needed between epochs only for verbose output, validation scores and
        # the invscaling schedule; otherwise the epochs run in compiled loops.
        report = self.verbose or optimizer.schedule == "invscaling"
        loop = _solvers.EpochLoop(
            self._net,
            X,
            Y,
            w,
            objective,
            optimizer,
            batch,
            shuffle=self._random_state if self.shuffle else None,
            callback=self._epoch_report if report else None,
            rule=rule,
            watch=None if validation is None else lambda: self._validation_step(*validation),
            on_plateau=self._on_plateau,
            on_epochs=lambda losses: self._epochs_done(losses, n),
        )
        reached_max_iter = False
        try:
            history = loop.run(1 if incremental else self.max_iter)
            reached_max_iter = not incremental and history.stop_reason != "converged"
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        except FloatingPointError:
            if not self.early_stopping:
                raise
            # scikit-learn trains on to max_iter and keeps the best weights (see the module).
            reached_max_iter = finish_diverged_run(self, rule, n, validation)
        finally:
            self._no_improvement_count = rule.count
            if not self.early_stopping:
                self.best_loss_ = rule.best
        if reached_max_iter and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.early_stopping:
            self._net.params[...] = self._best_params

    def _optimizer_state(self, incremental):
        """The optimizer's state: new for fit, continued by partial_fit; sgd's schedule
        follows the current parameters."""
        if not incremental or self._optimizer is None:
            self._optimizer = _solvers.make_optimizer(
                self.solver,
                self._net.params,
                self.learning_rate_init,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum,
                beta1=self.beta_1,
                beta2=self.beta_2,
                eps=self.epsilon,
            )
        if isinstance(self._optimizer, _solvers.SGD):
            self._optimizer.set_schedule(
                self.learning_rate if self.solver == "sgd" else "constant",
                self.learning_rate_init,
                self.power_t,
            )
        return self._optimizer

    def _validation_split(self, X, Y, w):
        """(X, Y, w) to train on and, with early stopping, (X_val, y_val, w_val) to score."""
        if not self.early_stopping:
            return X, Y, w, None
        # scikit-learn stratifies on the binarized labels (bool): the same split as on
        # Y in the network's dtype, and the same message for a class of one member.
        stratify = Y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, Y) if w is None else (X, Y, w)
        split = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, Y_train, Y_val = split[:4]
        w_train, w_val = (None, None) if w is None else (split[4], split[5])
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase "
                "'validation_fraction' or the size of your dataset."
            )
        w_train = None if w_train is None else as_kernel_array(w_train, w_train.dtype)
        return (
            as_kernel_rows(X_train, X_train.dtype),
            as_kernel_array(Y_train, Y_train.dtype),
            w_train,
            (X_val, self._targets_for_score(Y_val), w_val),
        )

    def _batch_rows(self, n):
        if self.solver == "rprop":
            return n
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. "
                "It is going to be clipped",
                stacklevel=4,
            )
        return int(np.clip(self.batch_size, 1, n))

    def _stopping_rule(self):
        """scikit-learn's tol / n_iter_no_change rule, continuing from the last fit: on the
        training loss, or with early stopping on minus the validation score."""
        best = self.best_validation_score_ if self.early_stopping else self.best_loss_
        # A warm start that switched early_stopping finds None there: NaN, as the compiled
        # loop always read it (the rule then never fires: comparisons with NaN are false).
        best = np.nan if best is None else (-best if self.early_stopping else best)
        return _solvers.StoppingRule(
            self.tol, self.n_iter_no_change, best, self._no_improvement_count
        )

    def _epochs_done(self, losses, n):
        """Bookkeeping of finished epochs (n samples each)."""
        self.n_iter_ += len(losses)
        self.t_ += n * len(losses)
        self.loss_ = losses[-1]
        self.loss_curve_.extend(losses)

    def _epoch_report(self, epoch, value):
        """After each epoch when Python runs between epochs: verbose output, the schedule."""
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {value:.8f}")
        self._optimizer.iteration_ends(self.t_)

    def _validation_step(self, X_val, y_val, w_val):
        """Score the epoch's model, keep the best one; the value the rule watches."""
        score = self._score(X_val, y_val, w_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_params[...] = self._net.params
        return -score

    def _on_plateau(self):
        """No improvement for n_iter_no_change epochs: True to go on (sgd's adaptive
        schedule divides lr by 5), False to stop."""
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = (
            f"{what} did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        return not self._optimizer.trigger_stopping(msg, self.verbose)

    # ---- prediction -----------------------------------------------------------------------

    def _network_input(self, X, check_input=True):
        """``X`` checked as scikit-learn's predict does (feature names, n_features_in_,
        finite values) and converted to the network's dtype; the network's parameters
        brought up to date with coefs_ / intercepts_."""
        self._sync_params()
        if check_input:
            X = validate_data(self, X, reset=False, dtype=FLOATS, accept_sparse=self._accept_sparse)
            return as_finite_rows(X, "X", self._net.dtype)  # 1e39 does not fit in float32
        return as_kernel_rows(X, self._net.dtype)

    def _forward(self, X, check_input=True):
        """The network's output (n_samples, n_outputs) in its dtype."""
        net = self._net
        X = self._network_input(X, check_input)
        out = np.empty((X.shape[0], net.layer_sizes[-1]), dtype=net.dtype)
        with _threads.use(self.n_threads):
            _solvers.predict_into(net, X, out)
        return out

    def _input_grad(self, X, n_outputs):
        """(n_samples, n_outputs, n_features): the Jacobian of the network's first
        ``n_outputs`` outputs with respect to ``X`` (see :meth:`nnfast.MLP.input_grad`)."""
        net = self._net
        X = self._network_input(X)
        J = np.empty((X.shape[0], n_outputs, X.shape[1]), dtype=net.dtype)
        with _threads.use(self.n_threads):
            _solvers.input_grad_into(net, X, J)
        return J

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)
