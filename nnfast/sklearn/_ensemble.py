"""Ensembles of nnfast's MLP estimators that differ by seed: predictions with error bars."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from numbers import Integral

import joblib
import numpy as np
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from nnfast import _threads
from nnfast._validation import check_bool
from nnfast.sklearn import _state
from nnfast.sklearn._multilayer_perceptron import MLPClassifier, MLPRegressor
from nnfast.sklearn._targets import MeanStd


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
            delayed(_fit_member)(*args) for args in members
        )
    n_jobs = min(joblib.effective_n_jobs(n_jobs), len(members))
    if n_jobs == 1:
        return [_fit_member(*args) for args in members]
    config = get_config()

    def fit(args):
        # Members fitting side by side get one thread each (unless a member's n_threads
        # says otherwise): together they use the cores, none oversubscribes them.
        with config_context(**config), _threads.use(1):
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

    def __init__(
        self, estimator=None, n_estimators=5, *, bootstrap=False, n_jobs=None, random_state=None
    ):
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
                f"got {type(self.estimator).__name__}"
            )
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
        # One fit at a time, on a working copy installed whole at the end (see _state.py).
        with _state.fitting(self):
            work = _state.working_copy(self, deep=False)
            work._fit_members(X, y, sample_weight)
            _state.install(self, work)
        return self

    def _fit_members(self, X, y, sample_weight):
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
    ("deep ensembles", Lakshminarayanan et al. 2017). Both are in the units of ``y``: the
    members standardise gaussian_nll targets themselves.

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
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32)
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y, {}

    @_state.consistent
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
        return MeanStd(mean, np.sqrt(noise + means.var(axis=0)))


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

    @_state.consistent
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
