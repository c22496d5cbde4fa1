"""scikit-learn's MLPRegressor and MLPClassifier, trained by nnfast.

Their parameters, attributes, methods, warnings and training follow scikit-learn 1.9's
``sklearn.neural_network`` estimators (see ``docs/sklearn.md`` for the details and the few
differences); what they share lives in :mod:`nnfast.sklearn._base`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from nnfast._targets import gaussian_mean_std, scaled_mean_std
from nnfast._validation import check_bool
from nnfast.sklearn import _state
from nnfast.sklearn._base import _BaseMLP
from nnfast.sklearn._targets import MeanStd, TargetScaling


class MLPRegressor(TargetScaling, RegressorMixin, _BaseMLP):
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
        ``GaussianProcessRegressor``; ``score`` is the R² of the mean. The targets need no
        scaling: the network trains on ``(y - target_mean_) / target_scale_`` (per target,
        the training targets' sample-weighted mean and standard deviation) and the mean,
        std, score and ``input_grad`` are reported in ``y``'s units (``mean = target_mean_
        + target_scale_ · μ``, ``std = target_scale_ · exp(c / 2)``); ``coefs_`` and
        ``intercepts_`` are those of the network on the standardised targets, and
        ``loss_``, ``best_loss_`` and ``loss_curve_`` its objective there (the negative
        log-likelihood in ``y``'s units is that plus ``Σ log target_scale_``). A warm start
        or ``partial_fit`` keeps the first fit's scaling.
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "maxout"}, \
default="relu"
    solver : {"lbfgs", "lbfgs_scipy", "sgd", "adam", "rprop"}, default="adam"
        ``lbfgs`` is nnfast's compiled L-BFGS (without the GIL; scikit-learn's stopping
        rules, ``n_iter_``, ``loss_`` and ConvergenceWarning, its own iterates);
        ``lbfgs_scipy`` is scikit-learn's own minimiser, SciPy's L-BFGS-B, for its exact
        iterates.
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
    n_threads : int or None, default=None
        The most threads one fit, prediction or Jacobian uses; None, the cores this
        process may use (OMP_NUM_THREADS and threadpoolctl's OpenMP limits honoured). The
        results are the same bytes for any number (see ``docs/threads.md``).

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_,
    out_activation_
        As scikit-learn's. ``coefs_`` and ``intercepts_`` are views into the network's flat
        parameter buffer; assigning new arrays to them is also honoured.
    target_mean_, target_scale_ : ndarray of shape ``(n_outputs_,)``
        Only with ``loss="gaussian_nll"``: the mean and standard deviation of the training
        targets (1 for a constant one), which standardise them for the network.
    """

    # Sparse X (CSR or CSC) as scikit-learn accepts it; trained without densifying it whole.
    _accept_sparse = ["csr", "csc"]

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "gaussian_nll"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        n_threads=None,
    ):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            n_threads=n_threads,
        )

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=self._accept_sparse,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for "
                "Poisson regression (loss='poisson')."
            )
        return X, y

    def _gaussian_nll(self):
        return self.loss == "gaussian_nll"

    @_state.consistent
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
            Only with ``return_std=True``: ``target_scale_ · exp(s / 2)`` for the predicted
            log-variances ``s`` clipped to [-30, 30], as the loss used them. The pair is a
            tuple; scikit-learn's ``TransformedTargetRegressor`` cannot pass
            ``return_std`` through (it inverse-transforms what ``predict`` returns) and gets
            an AttributeError saying so: fit this estimator on ``y`` directly instead.
        """
        check_is_fitted(self)
        if not check_bool(return_std, "return_std"):
            return self._predict(X)
        if not self._predicts_std:
            raise ValueError(
                "return_std=True needs a model fitted with loss='gaussian_nll' (which predicts "
                f"a variance); this one was fitted with loss={self._fitted_loss()!r}"
            )
        out, k, scaling = self._forward(X), self.n_outputs_, self._scaling()
        pair = gaussian_mean_std(out, k) if scaling is None else scaled_mean_std(out, k, scaling)
        return MeanStd(*(self._as_targets(a) for a in pair))

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
            y_pred = self._in_target_units(np.ascontiguousarray(y_pred[:, : self.n_outputs_]))
        return self._as_targets(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    @_state.consistent
    def input_grad(self, X):
        """Jacobian of :meth:`predict` with respect to the features, sample by sample.

        ``J[i, j, k] = ∂ predict(X)[i, j] / ∂ X[i, k]``, computed by backpropagation through
        the fitted network (:meth:`nnfast.MLP.input_grad`); with ``loss="poisson"`` the exp
        output's derivative is included, with ``loss="gaussian_nll"`` it is the mean's, in
        ``y``'s units (the network's times ``target_scale_``). ``mean(|J|, axis=0)`` is a gradient-based saliency
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
        J = self._input_grad(X, self.n_outputs_)  # predict: the first n_outputs_ outputs
        scaling = self._scaling()
        if scaling is not None:  # gaussian_nll: the means in y's units
            J *= scaling[1].astype(J.dtype)[None, :, None]
        return J

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data (sgd, adam, rprop).

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


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

    # Sparse X (CSR or CSC) as scikit-learn accepts it; trained without densifying it whole.
    _accept_sparse = ["csr", "csc"]

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        n_threads=None,
    ):
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            n_threads=n_threads,
        )

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=self._accept_sparse,
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
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

    @_state.consistent
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
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, classes=classes)

    def _start_partial_fit(self, y, classes):
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

    @_state.consistent
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

    @_state.consistent
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
        tags.input_tags.sparse = True
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
