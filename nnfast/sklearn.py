"""scikit-learn's MLPRegressor and MLPClassifier, trained by nnfast; ensembles of them for
error bars, and an autoencoder.

Change one import and keep the rest of the code::

    # from sklearn.neural_network import MLPClassifier, MLPRegressor
    from nnfast.sklearn import MLPClassifier, MLPRegressor

Beyond scikit-learn: :class:`MLPEnsembleRegressor` and :class:`MLPEnsembleClassifier`
(members differing by seed, trained in parallel, with ``return_std``) and
:class:`MLPAutoencoder` (nonlinear dimensionality reduction), built on the same training.

The estimators take scikit-learn 1.9's constructor parameters with the same defaults and
meanings, have the same methods and fitted attributes, raise the same warnings and errors,
and follow scikit-learn's definitions of the training itself:

- the same initial weights and biases (Glorot-uniform from ``random_state``, factor 2 for
  ``logistic``), the same shuffling, the same early-stopping split, all drawn from the same
  ``RandomState`` in the same order — with the same ``random_state`` nnfast and
  scikit-learn start from identical weights and visit the batches in the same order;
- the same objective: ``squared_error`` is half the squared error, ``poisson`` half the
  Poisson deviance with an ``exp`` output, classification the log-loss (softmax output for
  multiclass, logistic output for binary and multilabel targets), each summed over outputs;
  the L2 term is ``0.5 * alpha * ΣW² / n_batch`` for each batch (``n_batch`` its total
  sample weight), ``0.5 * alpha * ΣW² / n`` for L-BFGS;
- ``batch_size="auto"`` is ``min(200, n_samples)``; SGD with (Nesterov) momentum, Adam with
  scikit-learn's bias correction, the ``invscaling`` and ``adaptive`` schedules, the
  ``tol``/``n_iter_no_change`` stopping rule, early stopping on a ``validation_fraction``
  split that restores the best weights, L-BFGS through ``scipy.optimize.minimize``.

So nnfast and scikit-learn fit the same models up to floating-point rounding (which
chaotic training amplifies over many epochs). Additions: the hidden activations
``leaky_relu`` (slope 0.1), ``elu`` (alpha 1) and ``maxout`` (2 pieces; its ``coefs_`` are
``(n_in, n_out, 2)`` and ``intercepts_`` ``(n_out, 2)``), the regressor's
``loss="gaussian_nll"`` (heteroscedastic regression: a mean and a log-variance output per
target, ``predict(X, return_std=True)`` returning ``(mean, std)`` as scikit-learn's
``GaussianProcessRegressor``), the solver ``rprop`` (full-batch
iRprop-, ``learning_rate_init`` its initial step; it uses the stopping rules and early
stopping of the stochastic solvers and ignores ``batch_size``), and ``dtype``: None
(scikit-learn's rule: float32 when ``X`` is float32, else float64), ``"float32"`` or
``"float64"``. Training runs in that dtype. ``input_grad(X)`` gives the Jacobian of
``predict`` (regressor) or ``predict_proba`` (classifier) with respect to the features,
``(n_samples, n_outputs, n_features)``.

Where these estimators differ from scikit-learn:

- ``loss_`` and ``loss_curve_`` of a multi-output ``squared_error`` regressor are the
  objective actually minimised, half the squared error summed over outputs; scikit-learn
  reports the mean over outputs while its gradient is that of the sum (the two agree for
  one output). With ``sample_weight`` an epoch's loss is the mean of the batch losses
  weighted by batch weight (scikit-learn weights them by batch size).
- A diverging run keeps the weights of the last finite epoch before raising scikit-learn's
  ``ValueError("Solver produced non-finite parameter weights...")``.
- ``partial_fit`` exists for the iterative solvers (``sgd``, ``adam``, ``rprop``) of both
  estimators; scikit-learn's regressor also offers it for ``lbfgs``.
- ``sample_weight`` must be non-negative with a positive sum. Sparse ``X`` is refused
  (nnfast's kernels are dense): convert it with ``X.toarray()``.

And where nnfast's own :class:`nnfast.MLP` differs from these estimators: its ``mse`` is
the mean over samples *and* outputs without the 1/2, its ``l2`` is not divided by the batch
size, it draws He-uniform weights for the ReLU family and zero biases from a NumPy
``Generator``, and it calls the logistic function ``sigmoid``.

:class:`MLPAutoencoder`, which scikit-learn does not have, puts the same training to
nonlinear dimensionality reduction: a transformer fitting a mirrored network onto ``X``,
whose ``transform`` runs the encoder half and ``inverse_transform`` the decoder half.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from numbers import Integral, Real

try:
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "nnfast.sklearn needs scikit-learn, which is not installed: "
        "pip install scikit-learn (or pip install \"nnfast[sklearn]\")"
    ) from err

import joblib
import numpy as np
from sklearn import config_context, get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from nnfast import _network
from nnfast._spec import build_spec
from nnfast._validation import as_finite, check_bool
from nnfast.network import MLP, _OptimizerState, gaussian_mean_std

__all__ = ["MLPAutoencoder", "MLPClassifier", "MLPEnsembleClassifier", "MLPEnsembleRegressor",
           "MLPRegressor"]

_ITERATIVE_SOLVERS = ("sgd", "adam", "rprop")
# scikit-learn's activation names -> nnfast's.
_HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
           "leaky_relu": "leaky_relu", "elu": "elu", "maxout": "maxout"}
_OUTPUT_NAME = {"identity": "identity", "exp": "exp", "softmax": "softmax",
                "logistic": "sigmoid"}


# Guards the check-and-set of an estimator's "being fitted" flag.
_FIT_GUARD = threading.Lock()


class _BaseMLP(BaseEstimator):
    """What MLPRegressor and MLPClassifier share: fit, partial_fit, the solvers."""

    # True for a model fitted with loss="gaussian_nll": its network has 2 n_outputs_ units,
    # the means then the log-variances (set by _initialize; a class default for the rest).
    _predicts_std = False

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_HIDDEN))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "rprop"})],
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
    }

    def _validate_params(self):
        """scikit-learn's parameter validation; skipped, as scikit-learn's own estimators
        skip it, under ``sklearn.config_context(skip_parameter_validation=True)``."""
        if not get_config()["skip_parameter_validation"]:
            super()._validate_params()

    # ---- fitted network <-> coefs_ / intercepts_ ------------------------------------------

    def _bind_views(self):
        """coefs_ / intercepts_ become views into the network's flat parameter buffer."""
        weights, biases = self._net._spec.views(self._net.params)
        self._views = (weights, biases)
        self.coefs_ = list(weights)
        self.intercepts_ = list(biases)

    def _sync_params(self):
        """Copy coefs_ / intercepts_ into the network if the user replaced any of them."""
        weights, biases = self._views
        for name, current, views in (("coefs_", self.coefs_, weights),
                                     ("intercepts_", self.intercepts_, biases)):
            if len(current) != len(views):
                raise ValueError(f"{name}: expected {len(views)} arrays (one per layer), "
                                 f"got {len(current)}")
            for i, (array, view) in enumerate(zip(current, views)):
                if array is view:
                    continue
                array = np.asarray(array)
                if array.shape != view.shape:
                    raise ValueError(f"{name}[{i}]: expected shape {view.shape}, "
                                     f"got {array.shape}")
                view[...] = array
        self.coefs_ = list(weights)
        self.intercepts_ = list(biases)

    def __getstate__(self):
        if getattr(self, "_net", None) is not None:
            self._sync_params()
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        # Views would be pickled as copies detached from the buffer: rebuilt on load.
        for key in ("coefs_", "intercepts_", "_views"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if getattr(self, "_net", None) is not None:
            self._bind_views()

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

    def _init_params(self, spec, dtype):
        """scikit-learn's initialisation, drawn from self._random_state in its order."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        params = np.empty(spec.n_params, dtype=np.float64)
        for layer in spec.layers:
            bound = np.sqrt(factor / (layer.n_in + layer.n_out))
            params[layer.w_offset:layer.b_offset] = self._random_state.uniform(
                -bound, bound, (layer.n_in, layer.width)).ravel()
            params[layer.b_offset:layer.end] = self._random_state.uniform(
                -bound, bound, layer.width)
        return params.astype(dtype)

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self._predicts_std = self._gaussian_nll()
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self._net = MLP(layer_units, activation=self._hidden_activations(len(layer_units) - 2),
                        output_activation=_OUTPUT_NAME[self.out_activation_], dtype=dtype)
        self._net.params = self._init_params(self._net._spec, dtype)
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
            self._net = MLP(layer_units, activation=hidden, output_activation=net.activations[-1],
                            dtype=net.dtype)
            self._net.params = params
            self._bind_views()

    def _gaussian_nll(self):
        """Whether the loss parameter asks for mean and log-variance outputs."""
        return False

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

    def _fit(self, X, y, sample_weight=None, incremental=False):
        # One estimator trains in one thread at a time: a second fit is refused rather than
        # mixing two runs' weights (the compiled training releases the GIL).
        with _FIT_GUARD:
            if self.__dict__.get("_fitting_now", False):
                raise RuntimeError(
                    f"fit: this {type(self).__name__} is already being fitted in another "
                    "thread; fit a clone (sklearn.base.clone) instead"
                )
            self._fitting_now = True
        # Checking the input records n_features_in_, feature names and classes as it goes. A
        # call refused before training starts puts them back, so that they keep describing
        # the fitted network (rows of another width would reach the kernels unchecked).
        before = dict(self.__dict__)
        try:
            return self._fit_unguarded(X, y, sample_weight, incremental)
        except BaseException:
            if not self.__dict__.get("_training_started", False):
                self.__dict__.clear()
                self.__dict__.update(before)
            raise
        finally:
            self.__dict__.pop("_training_started", None)
            del self._fitting_now

    def _fit_unguarded(self, X, y, sample_weight=None, incremental=False):
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        dtype = (np.dtype(self.dtype) if self.dtype is not None else X.dtype) if first_pass \
            else self._net.dtype
        # A value too large for a float32 network is refused, not turned into infinity.
        X, Y = as_finite(X, "X", dtype), as_finite(y, "y", dtype)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=dtype,
                                                 ensure_non_negative=True)
            sample_weight = np.ascontiguousarray(sample_weight)
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
        self._training_started = True
        try:
            if self.solver == "lbfgs":
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
        verbose = self.verbose

        def report(iteration, value):
            if verbose:
                print(f"Iteration {iteration}, loss = {value:.8f}")

        history, result = self._net._run_lbfgs(
            X, Y, w, loss, self.alpha / weight_sum, scale / weight_sum, self.max_iter,
            self.max_fun, self.tol, callback=report)
        self.n_iter_ = min(result.nit, self.max_iter)
        self.loss_ = float(result.fun)
        if result.status != 0:
            message = result.message
            if isinstance(message, bytes):
                message = message.decode("latin1")
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}):\n{message}\n\nIncrease the number of iterations "
                f"to improve the convergence (max_iter={self.max_iter}).\nYou might also want "
                "to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html",
                ConvergenceWarning, stacklevel=3)

    def _fit_iterative(self, X, Y, w, incremental):
        net = self._net
        if not incremental or self._optimizer is None:
            self._optimizer = _OptimizerState(
                self.solver, net.params, self.learning_rate_init, l2=self.alpha,
                momentum=self.momentum if self.solver == "sgd" else 0.0,
                nesterov=self.nesterovs_momentum, beta1=self.beta_1, beta2=self.beta_2,
                eps=self.epsilon, l2_batch_scaled=True)
        state = self._optimizer
        state["l2"] = self.alpha
        loss, state["loss_scale"] = self._loss_setup()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, Y) if w is None else (X, Y, w)
            split = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, Y_train, Y_val = split[:4]
            w_train, w_val = (None, None) if w is None else (split[4], split[5])
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_train, Y_train = np.ascontiguousarray(X_train), np.ascontiguousarray(Y_train)
            w_train = None if w_train is None else np.ascontiguousarray(w_train)
            y_val = self._targets_for_score(Y_val)
        else:
            X_train, Y_train, w_train = X, Y, w
        n = X_train.shape[0]
        if self.solver == "rprop":
            batch = n
        elif self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=3)
            batch = int(np.clip(self.batch_size, 1, n))

        # scikit-learn's shuffle: sample_idx = shuffle(sample_idx, random_state) per epoch.
        rs = self._random_state
        sample_idx = np.arange(n, dtype=np.intp)

        def permutation(_n):
            nonlocal sample_idx
            indices = np.arange(n)
            rs.shuffle(indices)
            sample_idx = sample_idx[indices]
            return sample_idx

        verbose = self.verbose
        max_iter = self.max_iter
        epochs = 1 if incremental else max_iter
        stopped = False
        self.n_iter_ = 0

        def stop_or_go_on():
            """scikit-learn's reaction to no improvement for n_iter_no_change epochs."""
            what = ("Validation score" if early_stopping else "Training loss")
            msg = (f"{what} did not improve more than tol={self.tol:f} for "
                   f"{self.n_iter_no_change} consecutive epochs.")
            if self._trigger_stopping(msg, verbose):
                return False
            self._no_improvement_count = 0
            return True

        def epoch_end(epoch, value):
            nonlocal stopped
            self.n_iter_ += 1
            self.loss_ = value
            self.t_ += n
            self.loss_curve_.append(value)
            if verbose:
                print(f"Iteration {self.n_iter_}, loss = {value:.8f}")
            if early_stopping:
                self._update_validation(X_val, y_val, w_val)
            else:
                self._update_training_loss()
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                state["lr"] = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                stopped = not stop_or_go_on()
                return not stopped
            return True

        def record(losses, rule):
            """What `epoch_end` does for each epoch, for the epochs of a compiled run (whose
            loop updated best and count of `rule` as `_update_training_loss` does)."""
            if losses:
                self.n_iter_ += len(losses)
                self.t_ += n * len(losses)
                self.loss_ = losses[-1]
                self.loss_curve_.extend(losses)
                self.best_loss_, self._no_improvement_count = float(rule[2]), int(rule[3])

        def compiled_epochs():
            """The same epochs without calling Python between them: the compiled loop
            shuffles with `rs` and applies the stopping rule itself; it returns when the
            rule fires, and resumes if adaptive's lr division lets training go on."""
            nonlocal stopped
            run = 0
            while run < epochs and not stopped:
                rule = np.array([self.tol, self.n_iter_no_change, self.best_loss_,
                                 self._no_improvement_count], dtype=np.float64)
                try:
                    history = net._run(X_train, Y_train, w_train, loss, state, batch,
                                       epochs - run, self.shuffle, order=sample_idx,
                                       rule=rule, rng=rs)
                except (KeyboardInterrupt, FloatingPointError) as err:
                    record(err.history.loss, rule)
                    raise
                record(history.loss, rule)
                run += history.epochs
                if history.stop_reason != "converged":
                    break
                stopped = not stop_or_go_on()

        # Python is needed between epochs only for verbose output, validation scores and
        # the invscaling schedule.
        hooks = verbose or early_stopping or (self.solver == "sgd" and
                                              self.learning_rate == "invscaling")
        try:
            if hooks:
                net._run(X_train, Y_train, w_train, loss, state, batch, epochs, self.shuffle,
                         callback=epoch_end, permutation=permutation)
            else:
                compiled_epochs()
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        else:
            if not incremental and not stopped and self.n_iter_ == max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and the "
                    "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        if early_stopping:
            net.params[...] = self._best_params

    def _update_validation(self, X_val, y_val, w_val):
        score = self._score(X_val, y_val, w_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_params[...] = self._net.params

    def _update_training_loss(self):
        last = self.loss_curve_[-1]
        if last > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if last < self.best_loss_:
            self.best_loss_ = last

    def _trigger_stopping(self, msg, verbose):
        """scikit-learn's rule: stop, unless sgd's adaptive schedule can divide lr by 5."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        state = self._optimizer
        if state["lr"] <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        state["lr"] = state["lr"] / 5.0
        if verbose:
            print(msg + f" Setting learning rate to {state['lr']:f}")
        return False

    # ---- prediction -----------------------------------------------------------------------

    def _network_input(self, X, check_input=True):
        """``X`` checked as scikit-learn's predict does (feature names, n_features_in_,
        finite values) and converted to the network's dtype; the network's parameters
        brought up to date with coefs_ / intercepts_."""
        self._sync_params()
        if check_input:
            X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
            return as_finite(X, "X", self._net.dtype)  # 1e39 does not fit in float32
        return np.ascontiguousarray(X, dtype=self._net.dtype)

    def _forward(self, X, check_input=True):
        """The network's output (n_samples, n_outputs) in its dtype."""
        net = self._net
        X = self._network_input(X, check_input)
        out = np.empty((X.shape[0], net.layer_sizes[-1]), dtype=net.dtype)
        if X.shape[0]:
            _network.predict(net._layout, net.params, X, out)
        return out

    def _input_grad(self, X, n_outputs):
        """(n_samples, n_outputs, n_features): the Jacobian of the network's first
        ``n_outputs`` outputs with respect to ``X`` (see :meth:`nnfast.MLP.input_grad`)."""
        net = self._net
        X = self._network_input(X)
        J = np.empty((X.shape[0], n_outputs, X.shape[1]), dtype=net.dtype)
        net._compiled.input_grad(net._layout, net.params, X, J)
        return J

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's MLPRegressor, trained by nnfast.

    The parameters, attributes and methods are those of
    ``sklearn.neural_network.MLPRegressor`` (scikit-learn 1.9); see the module docstring for
    nnfast's additions (``activation`` ``leaky_relu``/``elu``/``maxout``, ``solver="rprop"``,
    ``dtype``) and the few differences.

    Parameters
    ----------
    loss : {"squared_error", "poisson", "gaussian_nll"}, default="squared_error"
        Half squared error, half Poisson deviance with an exp output (``y >= 0``), or
        ``gaussian_nll`` (an nnfast addition): heteroscedastic regression. The identity
        output layer then has ``2 * n_outputs_`` units, a mean ``mu`` and a log-variance
        ``s`` per target (``coefs_[-1]`` is ``(n_hidden, 2 * n_outputs_)``, the means
        first); the loss per sample is ``0.5 * Σ_targets (c + (y - mu)² e^-c)`` with
        ``c = clip(s, -30, 30)`` — the Gaussian negative log-likelihood without its
        constant ``0.5 log 2π``, equal to ``squared_error`` when ``s = 0``. ``predict``
        returns the mean, ``predict(X, return_std=True)`` ``(mean, std)`` as
        ``GaussianProcessRegressor``; ``score`` is the R² of the mean. Scale ``y`` to about
        unit variance: the clip bounds the standard deviation to [3.1e-7, 3.3e6].
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "maxout"}, \
default="relu"
    solver : {"lbfgs", "sgd", "adam", "rprop"}, default="adam"
    alpha : float, default=0.0001
        L2 strength; the term ``0.5 * alpha * ΣW²`` is divided by the batch's sample weight.
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``; not used by lbfgs and rprop.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of sgd: ``invscaling`` uses ``learning_rate_init / (t + 1) ** power_t``
        after each epoch (``t`` samples seen); ``adaptive`` divides the rate by 5 each time
        the stopping rule fires, until it is below 1e-6.
    learning_rate_init : float, default=0.001
        Step size of sgd and adam; the initial step of rprop.
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs of the iterative solvers; iterations of lbfgs.
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
        Initial weights, shuffling and the early-stopping split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Prints ``Iteration 12, loss = 0.01234000`` per epoch, as scikit-learn.
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its R² has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and keep the best weights.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
        Maximum loss evaluations of lbfgs.
    dtype : {None, "float32", "float64"}, default=None
        Precision of the network; None follows ``X`` (float32 stays float32).

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_,
    out_activation_
        As scikit-learn's. ``coefs_`` and ``intercepts_`` are views into the network's flat
        parameter buffer; assigning new arrays to them is also honoured.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "gaussian_nll"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None):
        self.loss = loss
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

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "Poisson regression (loss='poisson').")
        return X, y

    def _gaussian_nll(self):
        return self.loss == "gaussian_nll"

    def _targets_for_score(self, Y_val):
        return Y_val[:, 0] if Y_val.shape[1] == 1 else Y_val

    def predict(self, X, return_std=False):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the predicted standard deviation, as
            ``GaussianProcessRegressor.predict`` does. Only for a model fitted with
            ``loss="gaussian_nll"``; any other model raises ``ValueError`` (it has no
            predictive distribution).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The prediction; the predicted mean for ``loss="gaussian_nll"``.
        std : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Only with ``return_std=True``: ``exp(s / 2)`` for the predicted log-variances
            ``s`` clipped to [-30, 30], as the loss used them.
        """
        check_is_fitted(self)
        if not check_bool(return_std, "return_std"):
            return self._predict(X)
        if not self._predicts_std:
            raise ValueError(
                "return_std=True needs a model fitted with loss='gaussian_nll' (which predicts "
                f"a variance); this one was fitted with loss={self._fitted_loss()!r}"
            )
        return tuple(self._as_targets(a) for a in
                     gaussian_mean_std(self._forward(X), self.n_outputs_))

    def _fitted_loss(self):
        if self._predicts_std:
            return "gaussian_nll"
        return "poisson" if self.out_activation_ == "exp" else "squared_error"

    def _as_targets(self, Y):
        """(n, n_outputs) -> (n,) for a single target, as scikit-learn shapes predictions."""
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if self._predicts_std:
            y_pred = np.ascontiguousarray(y_pred[:, :self.n_outputs_])
        return self._as_targets(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    def input_grad(self, X):
        """Jacobian of :meth:`predict` with respect to the features, sample by sample.

        ``J[i, j, k] = ∂ predict(X)[i, j] / ∂ X[i, k]``, computed by backpropagation through
        the fitted network (:meth:`nnfast.MLP.input_grad`); with ``loss="poisson"`` the exp
        output's derivative is included. ``mean(|J|, axis=0)`` is a gradient-based saliency
        of each feature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Checked as :meth:`predict` checks it.

        Returns
        -------
        J : ndarray of shape (n_samples, n_outputs, n_features)
            In the network's dtype; 3-D also for one output (where :meth:`predict` returns
            ``(n_samples,)``, ``J[:, 0, :]`` is its gradient).
        """
        check_is_fitted(self)
        return self._input_grad(X, self.n_outputs_)  # predict: the first n_outputs_ outputs

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data (sgd, adam, rprop).

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's MLPClassifier, trained by nnfast.

    The parameters, attributes and methods are those of
    ``sklearn.neural_network.MLPClassifier`` (scikit-learn 1.9); the parameters are those of
    :class:`MLPRegressor` without ``loss``. Binary targets train a logistic output with the
    log-loss, multiclass targets a softmax output with the cross-entropy, multilabel
    indicator targets one logistic output per label. Early stopping scores accuracy.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels (any type LabelBinarizer accepts, e.g. strings).
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_,
    out_activation_
        As scikit-learn's.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None):
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

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def _targets_for_score(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data (sgd, adam, rprop).

        Parameters
        ----------
        classes : array of shape (n_classes,), default=None
            All the classes; required on the first call, as in scikit-learn.

        Returns
        -------
        self
        """
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X):
        """Probability estimates, columns in the order of ``classes_``.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def input_grad(self, X):
        """Jacobian of :meth:`predict_proba` with respect to the features, sample by sample.

        ``J[i, j, k] = ∂ predict_proba(X)[i, j] / ∂ X[i, k]``, computed by backpropagation
        through the fitted network (:meth:`nnfast.MLP.input_grad`), the softmax or logistic
        output included. Binary targets have one logistic output ``p`` and
        ``predict_proba = [1 - p, p]``: ``J = [-∂p, ∂p]``. Multiclass rows sum to zero over
        the classes (the probabilities sum to one). ``mean(|J|, axis=0)`` is a
        gradient-based saliency of each feature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Checked as :meth:`predict_proba` checks it.

        Returns
        -------
        J : ndarray of shape (n_samples, n_classes, n_features)
            In the network's dtype; the columns of :meth:`predict_proba` (``classes_``
            order, or one per label for multilabel targets).
        """
        check_is_fitted(self)
        J = self._input_grad(X, self.n_outputs_)
        if self.n_outputs_ == 1:
            return np.concatenate([-J, J], axis=1)
        return J

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):  # a probability that underflowed to 0 gives -inf
            return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _check_partial_fit_first_call(clf, classes=None):
    """True on the first partial_fit call (and set classes_), as scikit-learn's helper."""
    if getattr(clf, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if getattr(clf, "classes_", None) is not None:
            if not np.array_equal(clf.classes_, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                    f"was: {clf.classes_!r}"
                )
        else:
            clf.classes_ = unique_labels(classes)
            return True
    return False


# ------------------------------------------------------------------------------------------
# Ensembles
# ------------------------------------------------------------------------------------------


def _fit_member(make, seed, X, y, sample_weight):
    """Fit one ensemble member, ``make(random_state=seed)`` (in a thread, or in a worker of
    a joblib backend: building it there too keeps that part parallel)."""
    return make(random_state=seed).fit(X, y, sample_weight=sample_weight)


def _map_fit(members, n_jobs):
    """``[_fit_member(*args) for args in members]``, run by the active joblib backend.

    When that backend is joblib's threading one (the default here: ``prefer="threads"``),
    a plain thread pool runs the fits instead: joblib's result loop polls every 10 ms,
    which costs more than a small network's whole fit. Each thread sees the caller's
    scikit-learn configuration, as under joblib. Any other backend (``joblib.parallel_backend
    ("dask")``, processes) gets the work through ``sklearn.utils.parallel.Parallel``.
    """
    backend, _ = joblib.parallel.get_active_backend(prefer="threads")
    if not isinstance(backend, joblib.parallel.ThreadingBackend):
        return Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_fit_member)(*args) for args in members)
    n_jobs = min(joblib.effective_n_jobs(n_jobs), len(members))
    if n_jobs == 1:
        return [_fit_member(*args) for args in members]
    config = get_config()

    def fit(args):
        with config_context(**config):
            return _fit_member(*args)

    with ThreadPoolExecutor(n_jobs) as pool:
        return list(pool.map(fit, members))


class _BaseEnsemble(BaseEstimator):
    """What MLPEnsembleRegressor and MLPEnsembleClassifier share: fitting the members."""

    _parameter_constraints: dict = {
        "estimator": [None, HasMethods(["fit", "predict"])],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "n_jobs": [None, Integral],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, n_estimators=5, *, bootstrap=False, n_jobs=None,
                 random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _template(self):
        if self.estimator is None:
            return self._default_estimator()
        if not isinstance(self.estimator, self._member_class):
            raise TypeError(
                f"estimator must be a nnfast.sklearn.{self._member_class.__name__} (or None), "
                f"got {type(self.estimator).__name__}")
        return self.estimator

    def fit(self, X, y, sample_weight=None):
        """Fit ``n_estimators`` copies of ``estimator`` that differ by their random seed.

        Each member gets its own ``random_state`` (initial weights, shuffling and
        early-stopping split) drawn from this ensemble's ``random_state``; with
        ``bootstrap=True`` each is also fitted on a bootstrap resample of the rows. The
        members train in parallel through joblib: ``n_jobs`` threads by default (nnfast's
        epochs run without the GIL), or the workers of any active joblib backend such as
        ``joblib.parallel_backend("dask")``.

        Returns
        -------
        self
        """
        self._validate_params()
        template = self._template()
        X, y, targets = self._validate_input(X, y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        n = X.shape[0]
        # The template's parameters are read and checked once here, not by every member:
        # clone() per member would repeat that work, holding the GIL, in every thread.
        template._validate_params()
        params = template.get_params(deep=False)
        del params["random_state"]
        make = partial(type(template), **params)
        jobs = []
        for seed in seeds:
            rows = rng.randint(n, size=n) if self.bootstrap else slice(None)
            w = None if sample_weight is None else sample_weight[rows]
            jobs.append((make, int(seed), X[rows], y[rows], w))
        # X, y and the weights were validated above (finite); the members need not again.
        with config_context(skip_parameter_validation=True, assume_finite=True):
            estimators = _map_fit(jobs, self.n_jobs)
        vars(self).update(targets, estimators_=estimators)
        return self


class MLPEnsembleRegressor(RegressorMixin, _BaseEnsemble):
    """An ensemble of :class:`MLPRegressor` that differ by seed: predictions with error bars.

    ``predict(X, return_std=True)`` returns the ensemble mean and its spread, as
    ``sklearn.gaussian_process.GaussianProcessRegressor`` does. With members trained on
    ``loss="squared_error"`` the spread is the standard deviation of the members' means:
    the uncertainty of the fitted function (epistemic), which shrinks with more data and
    does not include the noise of the targets. With members trained on
    ``loss="gaussian_nll"`` (each predicting a mean and a variance) it is the standard
    deviation of the members' equally weighted Gaussian mixture,
    ``sqrt(mean(std_i²) + var(mean_i))``: noise plus disagreement, a predictive interval
    ("deep ensembles", Lakshminarayanan et al. 2017).

    Parameters
    ----------
    estimator : MLPRegressor or None, default=None
        The member template (None: ``MLPRegressor()``); its ``random_state`` is replaced.
    n_estimators : int, default=5
    bootstrap : bool, default=False
        Fit each member on a bootstrap resample of the rows.
    n_jobs : int or None, default=None
        Members trained at once (threads; -1: all cores). None means 1 unless in a
        ``joblib.parallel_backend`` context.
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds and bootstrap rows.

    Attributes
    ----------
    estimators_ : list of MLPRegressor
    n_features_in_, feature_names_in_
    """

    _member_class = MLPRegressor

    def _default_estimator(self):
        return MLPRegressor()

    def _validate_input(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y, {}

    def predict(self, X, return_std=False):
        """Ensemble mean, and with ``return_std=True`` its standard deviation.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        y_std : ndarray of the same shape, only with ``return_std=True``
        """
        check_is_fitted(self)
        return_std = check_bool(return_std, "return_std")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        if getattr(self.estimators_[0], "loss", None) == "gaussian_nll":
            pairs = [member.predict(X, return_std=True) for member in self.estimators_]
            means = np.stack([mean for mean, _ in pairs])
            noise = np.mean([np.square(std) for _, std in pairs], axis=0)
        else:
            means = np.stack([member.predict(X) for member in self.estimators_])
            noise = 0
        mean = means.mean(axis=0)
        if not return_std:
            return mean
        return mean, np.sqrt(noise + means.var(axis=0))


class MLPEnsembleClassifier(ClassifierMixin, _BaseEnsemble):
    """An ensemble of :class:`MLPClassifier` that differ by seed: averaged probabilities.

    ``predict_proba`` averages the members' probabilities; ``predict_proba(X,
    return_std=True)`` also returns their standard deviation across members, a measure of
    how much the members disagree. ``predict`` takes the most probable class (multilabel:
    each label whose mean probability exceeds 0.5). With ``bootstrap=True`` a member whose
    resample missed a class gives that class probability 0.

    Parameters
    ----------
    estimator : MLPClassifier or None, default=None
        The member template (None: ``MLPClassifier()``); its ``random_state`` is replaced.
    n_estimators, bootstrap, n_jobs, random_state
        As :class:`MLPEnsembleRegressor`.

    Attributes
    ----------
    estimators_ : list of MLPClassifier
    classes_, n_features_in_, feature_names_in_
    """

    _member_class = MLPClassifier

    def _default_estimator(self):
        return MLPClassifier()

    def _validate_input(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32))
        multilabel = type_of_target(y).startswith("multilabel")
        if multilabel:
            classes = np.arange(y.shape[1])
        else:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            classes = unique_labels(y)
        return X, y, {"classes_": classes, "_multilabel": multilabel}

    def predict_proba(self, X, return_std=False):
        """Mean of the members' class probabilities (columns in the order of ``classes_``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        proba_std : ndarray of the same shape, only with ``return_std=True``
        """
        check_is_fitted(self)
        return_std = check_bool(return_std, "return_std")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        probas = np.stack([self._aligned_proba(member, X) for member in self.estimators_])
        mean = probas.mean(axis=0)
        return (mean, probas.std(axis=0)) if return_std else mean

    def _aligned_proba(self, member, X):
        proba = member.predict_proba(X)
        if self._multilabel or len(member.classes_) == len(self.classes_):
            return proba
        full = np.zeros((X.shape[0], len(self.classes_)), dtype=proba.dtype)
        full[:, np.searchsorted(self.classes_, member.classes_)] = proba
        return full

    def predict(self, X):
        """The class with the highest mean probability (multilabel: every label above 0.5).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _negative_mse(X, X_reconstructed, sample_weight=None):
    """Minus the mean over samples and features of the squared reconstruction error."""
    return -mean_squared_error(X, X_reconstructed, sample_weight=sample_weight)


class MLPAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseMLP):
    """Nonlinear dimensionality reduction: a multi-layer perceptron trained to reproduce X.

    The network is a mirrored encoder and decoder around a linear bottleneck of
    ``n_components`` units::

        n_features -> h1 -> ... -> hk -> n_components -> hk -> ... -> h1 -> n_features
                   activation      identity        activation       identity

    ``transform`` runs the encoder (the layers up to the bottleneck), ``inverse_transform``
    the decoder, both compiled. The bottleneck is linear, as the components of PCA are, so
    that the code is not confined to the range of ``activation`` (a ReLU code would lose its
    negative half); with ``activation="identity"`` the network is an affine map of rank
    ``n_components`` and ``solver="lbfgs"`` reaches PCA's reconstruction error, the least
    such a map can have. The output is linear (the reconstruction of ``X``).

    Training is :class:`MLPRegressor`'s, of ``X`` onto ``X``, with the layer stack above: the
    same solvers, schedules, stopping rules, early stopping, warnings, initialisation and
    random draws (the autoencoder is ``MLPRegressor(hidden_layer_sizes=(h1, ..., hk,
    n_components, hk, ..., h1))`` with an identity bottleneck). The objective is half the
    squared reconstruction error summed over features and averaged over samples (weighted
    by ``sample_weight``), plus ``0.5 * alpha * ΣW² / n_batch``; ``loss_`` and
    ``loss_curve_`` report it. :meth:`score` is minus the mean squared reconstruction error
    (averaged over features too), so that model selection maximises it. Scale the features
    first (e.g. ``StandardScaler``): every feature's error counts the same.

    ``inverse_transform`` takes codes of ``n_components`` columns; like scikit-learn's
    transformers it calls its argument ``X``. Both halves refuse NaN, infinity and, for a
    float32 network, values too large for float32.

    Parameters
    ----------
    n_components : int, default=2
        Width of the code; from 1 to ``n_features`` (at ``n_features`` the code reduces no
        dimension but may still straighten the data, as PCA allows).
    hidden_layer_sizes : array-like of shape (n_encoder_layers,), default=(100,)
        Widths of the encoder's hidden layers, from the input inwards; the decoder uses them
        in reverse order. ``()`` gives a linear encoder and an affine decoder.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "maxout"}, \
default="relu"
        Activation of every hidden layer except the (linear) bottleneck.
    solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter, \
shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, \
early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, \
dtype
        As :class:`MLPRegressor`'s. ``early_stopping`` scores the held-out samples with
        :meth:`score` (minus the mean squared reconstruction error).

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Weights and biases of the ``2 * len(hidden_layer_sizes) + 2`` layers, encoder
        first; views into the network's flat parameter buffer (assigning new arrays is also
        honoured). A maxout layer's are ``(n_in, n_out, 2)`` and ``(n_out, 2)``.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, n_iter_
        As :class:`MLPRegressor`'s.
    n_features_in_, feature_names_in_
        Width and (for DataFrames) column names of ``X`` seen by ``fit``.
    n_layers_ : int
        Number of layers counting the input: ``2 * len(hidden_layer_sizes) + 3``.
    n_outputs_, out_activation_
        ``n_features_in_`` and ``"identity"``: the network's output is the reconstruction.

    Examples
    --------
    >>> import numpy as np
    >>> from nnfast.sklearn import MLPAutoencoder
    >>> t = np.linspace(0, 3 * np.pi, 300)
    >>> X = np.c_[np.cos(t), np.sin(t), t / 5]  # a helix: 1-D curve in 3-D
    >>> ae = MLPAutoencoder(n_components=1, hidden_layer_sizes=(32,), activation="tanh",
    ...                     learning_rate_init=0.01, max_iter=1000, random_state=0).fit(X)
    >>> ae.transform(X).shape, ae.inverse_transform(ae.transform(X)).shape
    ((300, 1), (300, 3))
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_components=2, hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None):
        self.n_components = n_components
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

    # ---- the mirrored layer stack (hooks of _BaseMLP) --------------------------------------

    def _hidden_sizes(self):
        encoder = super()._hidden_sizes()
        return encoder + [int(self.n_components)] + encoder[::-1]

    def _hidden_activations(self, n_hidden):
        side = (_HIDDEN[self.activation],) * (n_hidden // 2)
        return side + ("identity",) + side

    def _output_activation(self):
        return "identity"

    def _loss_setup(self):
        return "mse", self.n_outputs_ / 2.0  # half the squared error summed over features

    def _validate_input(self, X, y, incremental, reset):
        # X is checked, and n_components against its width, before validate_data records
        # n_features_in_: a refused X leaves a fitted autoencoder as it was. (Without reset,
        # validate_data refuses a width other than the fitted one.)
        checked = check_array(X, dtype=(np.float64, np.float32), estimator=self,
                              input_name="X")
        n_features = checked.shape[1]
        if reset and self.n_components > n_features:
            raise ValueError(
                f"n_components: expected an integer from 1 to n_features = {n_features} "
                f"(the number of columns of X), got {self.n_components}"
            )
        validate_data(self, X, reset=reset, skip_check_array=True)
        return checked, checked

    def _targets_for_score(self, Y_val):
        return Y_val

    def _predict(self, X, check_input=True):
        return self._forward(X, check_input=check_input)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, _negative_mse)

    # ---- encoder and decoder -----------------------------------------------------------------

    @property
    def _n_features_out(self):
        """The fitted code width (get_feature_names_out); AttributeError before fit."""
        sizes = self._net.layer_sizes
        return sizes[len(sizes) // 2]

    def _run_half(self, X, decoder):
        """The encoder's (or decoder's) output for validated X, in the network's dtype.

        Layers are stored one after the other in the flat buffer, so the encoder's
        parameters are a prefix of it and the decoder's the rest: each half runs as a
        network of its own on a view of its part of the buffer.
        """
        self._sync_params()
        net = self._net
        spec = net._spec
        middle = len(spec.layers) // 2
        layers = spec.layers[middle:] if decoder else spec.layers[:middle]
        sizes = spec.layer_sizes[middle:] if decoder else spec.layer_sizes[:middle + 1]
        activations = [layer.activation for layer in layers]
        half = build_spec(sizes, activations[:-1], activations[-1], spec.leaky_slope,
                          spec.elu_alpha, spec.maxout_pieces)
        params = net.params[layers[0].w_offset:layers[-1].end]
        X = as_finite(X, "X", net.dtype)  # 1e39 is finite, but infinity in float32
        out = np.empty((X.shape[0], half.n_out), dtype=net.dtype)
        _network.predict(_network.Layout(half), params, X, out)
        return out

    # ---- public methods ----------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, None, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one epoch over X (sgd, adam, rprop).

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, None, sample_weight=sample_weight, incremental=True)

    def transform(self, X):
        """Encode X: the output of the bottleneck layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            In the network's dtype.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._run_half(X, decoder=False)

    def inverse_transform(self, X):
        """Decode codes back to the data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, such as the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstruction, in the network's dtype.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=(np.float64, np.float32), estimator=self, input_name="X")
        n_components = self._n_features_out
        if X.shape[1] != n_components:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"expects codes of n_components = {n_components} features"
            )
        return self._run_half(X, decoder=True)

    def score(self, X, y=None, sample_weight=None):
        """Minus the mean squared reconstruction error, averaged over samples and features.

        Higher is better (0 is perfect), so that model selection maximises it. On the
        training data, ``-0.5 * n_features_in_ * score(X)`` is ``loss_`` without the L2 term.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._score(X, X, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
