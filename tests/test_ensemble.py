"""nnfast.sklearn.MLPEnsembleRegressor / MLPEnsembleClassifier: members differing by seed.

The ensemble's numbers are defined by its members: its mean and spread must be exactly
those of the members' predictions, threads must not change any result, and the members
must really differ (seeds, bootstrap rows). Then scikit-learn's estimator checks, pickling
and errors.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnfast.sklearn import (
    MLPClassifier,
    MLPEnsembleClassifier,
    MLPEnsembleRegressor,
    MLPRegressor,
)

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL_REGRESSOR = MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=30)
SMALL_CLASSIFIER = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30)


def noisy_curve(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 2))
    return X, np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=n)


def as_arrays(estimators, method, X):
    return np.stack([getattr(member, method)(X) for member in estimators])


# scikit-learn's own checks, with the default members (the checks require a good fit).
@parametrize_with_checks(
    [MLPEnsembleRegressor(n_estimators=2), MLPEnsembleClassifier(n_estimators=2)]
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@quiet
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regressor_mean_and_std_are_those_of_the_members(n_outputs):
    X, y = noisy_curve()
    Y = y if n_outputs == 1 else np.column_stack([y * (k + 1) for k in range(n_outputs)])
    ensemble = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=4, random_state=0).fit(X, Y)
    assert len(ensemble.estimators_) == 4
    members = as_arrays(ensemble.estimators_, "predict", X[:17])
    mean, std = ensemble.predict(X[:17], return_std=True)
    assert mean.shape == std.shape == Y[:17].shape
    np.testing.assert_array_equal(mean, members.mean(axis=0))
    np.testing.assert_array_equal(std, members.std(axis=0))
    np.testing.assert_array_equal(ensemble.predict(X[:17]), mean)
    assert np.all(std > 0), "members with different seeds must disagree somewhere"


@quiet
def test_members_get_different_seeds_and_reproducible_ones():
    X, y = noisy_curve()
    a = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=3, random_state=5).fit(X, y)
    b = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=3, random_state=5).fit(X, y)
    seeds = [member.random_state for member in a.estimators_]
    assert len(set(seeds)) == 3
    assert seeds == [member.random_state for member in b.estimators_]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert SMALL_REGRESSOR.random_state is None, "the template must not be modified"


@quiet
@pytest.mark.parametrize("bootstrap", [False, True])
def test_threads_give_the_serial_result_bit_for_bit(bootstrap):
    X, y = noisy_curve()
    fits = [
        MLPEnsembleRegressor(
            SMALL_REGRESSOR, n_estimators=4, bootstrap=bootstrap, n_jobs=n_jobs, random_state=1
        ).fit(X, y)
        for n_jobs in (1, 2)
    ]
    for serial, threaded in zip(*(f.estimators_ for f in fits)):
        for a, b in zip(serial.coefs_ + serial.intercepts_, threaded.coefs_ + threaded.intercepts_):
            np.testing.assert_array_equal(a, b)


@quiet
def test_bootstrap_fits_each_member_on_a_resample():
    X, y = noisy_curve(n=60)
    plain = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=2, random_state=3).fit(X, y)
    boot = MLPEnsembleRegressor(
        SMALL_REGRESSOR, n_estimators=2, bootstrap=True, random_state=3
    ).fit(X, y)
    # Same seeds, different rows: the members differ from the plain ones.
    for p, b in zip(plain.estimators_, boot.estimators_):
        assert p.random_state == b.random_state
        assert not np.array_equal(p.predict(X), b.predict(X))


@quiet
def test_sample_weight_reaches_the_members():
    X, y = noisy_curve(n=80)
    w = np.linspace(0.1, 2, 80)
    ensemble = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=2, random_state=0)
    ensemble.fit(X, y, sample_weight=w)
    member = (
        clone(SMALL_REGRESSOR)
        .set_params(random_state=ensemble.estimators_[0].random_state)
        .fit(X, y, sample_weight=w)
    )
    np.testing.assert_array_equal(member.predict(X), ensemble.estimators_[0].predict(X))


@quiet
def test_classifier_averages_probabilities():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    member = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=200)
    ensemble = MLPEnsembleClassifier(member, n_estimators=3, random_state=0).fit(X, names)
    np.testing.assert_array_equal(ensemble.classes_, np.unique(names))
    members = as_arrays(ensemble.estimators_, "predict_proba", X)
    proba, spread = ensemble.predict_proba(X, return_std=True)
    np.testing.assert_array_equal(proba, members.mean(axis=0))
    np.testing.assert_array_equal(spread, members.std(axis=0))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(ensemble.predict(X), ensemble.classes_[proba.argmax(axis=1)])
    assert ensemble.score(X, names) > 0.9


@quiet
def test_bootstrap_member_missing_a_class_gives_it_probability_zero():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = np.array([0] * 15 + [1] * 14 + [2])  # class 2 has one sample: resamples miss it
    ensemble = MLPEnsembleClassifier(
        SMALL_CLASSIFIER, n_estimators=6, bootstrap=True, random_state=0
    ).fit(X, y)
    missing = [m for m in ensemble.estimators_ if len(m.classes_) < 3]
    assert missing, "with this seed some resample misses class 2"
    proba = ensemble.predict_proba(X)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    member = missing[0]
    column = list(ensemble.classes_).index(member.classes_[0])
    aligned = ensemble._aligned_proba(member, X)
    np.testing.assert_array_equal(aligned[:, 2], 0)
    np.testing.assert_array_equal(aligned[:, column], member.predict_proba(X)[:, 0])


@quiet
def test_multilabel_classifier():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    member = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=200)
    ensemble = MLPEnsembleClassifier(member, n_estimators=2, random_state=0).fit(X, Y)
    proba = ensemble.predict_proba(X)
    assert proba.shape == (100, 2)
    np.testing.assert_array_equal(ensemble.predict(X), (proba > 0.5).astype(int))
    assert ensemble.score(X, Y) > 0.8  # exact match of both labels


@quiet
def test_pickle_clone_and_grid_search():
    X, y = noisy_curve()
    ensemble = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=2, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(
        again.predict(X, return_std=True), ensemble.predict(X, return_std=True)
    )
    assert clone(ensemble).get_params()["n_estimators"] == 2
    search = GridSearchCV(
        MLPEnsembleRegressor(SMALL_REGRESSOR, random_state=0), {"n_estimators": [1, 2]}, cv=2
    ).fit(X, y)
    assert search.best_params_["n_estimators"] in (1, 2)


def test_estimator_of_the_wrong_kind_is_refused_and_nothing_changes():
    X, y = noisy_curve(n=20)
    ensemble = MLPEnsembleRegressor(MLPClassifier(), n_estimators=2)
    with pytest.raises(TypeError, match=r"estimator must be a nnfast\.sklearn\.MLPRegressor"):
        ensemble.fit(X, y)
    assert not hasattr(ensemble, "estimators_")
    with pytest.raises(TypeError, match=r"MLPClassifier .*got MLPRegressor"):
        MLPEnsembleClassifier(MLPRegressor()).fit(X, y > 0)


def test_bad_parameters_name_themselves():
    X, y = noisy_curve(n=20)
    with pytest.raises(ValueError, match="n_estimators"):
        MLPEnsembleRegressor(n_estimators=0).fit(X, y)
    with pytest.raises(ValueError, match="bootstrap"):
        MLPEnsembleRegressor(bootstrap="yes").fit(X, y)
    with pytest.raises(ValueError, match="X"):
        MLPEnsembleRegressor(SMALL_REGRESSOR).fit(np.full((20, 2), np.nan), y)


@quiet
def test_a_failed_member_fit_leaves_a_fitted_ensemble_unchanged():
    X, y = noisy_curve()
    ensemble = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=2, random_state=0).fit(X, y)
    before = ensemble.estimators_
    ensemble.set_params(
        estimator=clone(SMALL_REGRESSOR).set_params(validation_fraction=0.9, early_stopping=True)
    )
    with pytest.raises(ValueError, match="train set will be empty"):
        ensemble.fit(X[:3], y[:3])
    assert ensemble.estimators_ is before


class _ConfigRecorder(MLPRegressor):
    """An MLPRegressor that records the scikit-learn configuration its fit ran under."""

    def fit(self, X, y, sample_weight=None):
        import threading

        from sklearn import get_config

        self.seen_ = (get_config()["working_memory"], threading.get_ident())
        return super().fit(X, y, sample_weight=sample_weight)


@quiet
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_members_run_under_the_callers_sklearn_config(n_jobs):
    import threading

    from sklearn import config_context

    X, y = noisy_curve(n=40)
    template = _ConfigRecorder(hidden_layer_sizes=(3,), max_iter=5)
    with config_context(working_memory=123):
        ensemble = MLPEnsembleRegressor(
            template, n_estimators=4, n_jobs=n_jobs, random_state=0
        ).fit(X, y)
    assert [m.seen_[0] for m in ensemble.estimators_] == [123] * 4
    threads = {m.seen_[1] for m in ensemble.estimators_}
    if n_jobs == 1:
        assert threads == {threading.get_ident()}
    else:
        assert threading.get_ident() not in threads


def test_the_template_is_validated_once_and_members_skip_it():
    """The ensemble checks its template's parameters itself (a bad one is refused before
    any member trains); members then skip scikit-learn's validation, as scikit-learn's
    estimators do under config_context(skip_parameter_validation=True)."""
    X, y = noisy_curve(n=20)
    with pytest.raises(ValueError, match="alpha"):
        MLPEnsembleRegressor(MLPRegressor(alpha=-1.0), n_estimators=2).fit(X, y)


def test_skipped_parameter_validation_still_leaves_nnfast_checks():
    """Under skip_parameter_validation an impossible layer size still reaches nnfast's own
    checks (never a kernel): a clear ValueError, no crash."""
    from sklearn import config_context

    X, y = noisy_curve(n=20)
    with config_context(skip_parameter_validation=True):
        with pytest.raises(ValueError, match="layer"):
            MLPRegressor(hidden_layer_sizes=(0,), max_iter=2).fit(X, y)


@quiet
def test_return_std_must_be_a_bool():
    X, y = noisy_curve(n=40)
    ensemble = MLPEnsembleRegressor(SMALL_REGRESSOR, n_estimators=2, random_state=0).fit(X, y)
    classifier = MLPEnsembleClassifier(SMALL_CLASSIFIER, n_estimators=2, random_state=0).fit(
        X, y > 0
    )
    for method in (ensemble.predict, classifier.predict_proba):
        for value in ("yes", 1, None):
            with pytest.raises(TypeError, match="return_std: expected True or False"):
                method(X, return_std=value)
