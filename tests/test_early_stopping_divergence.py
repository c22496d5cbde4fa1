"""A diverging SGD run under early stopping ends as scikit-learn 1.9 ends it (issue 14).

scikit-learn (since its fix for issue #29504) keeps training a diverged network to
``max_iter``: the validation score of non-finite predictions is NaN, which never counts as
"no improvement", so the run never stops early; it then restores the best weights, which
are finite, and finishes without error after its ConvergenceWarning. nnfast stops
computing at the first non-finite epoch and records the remaining epochs as scikit-learn's
outcome: NaN losses and validation scores up to ``max_iter``, the best weights, no error.
Without early stopping both raise ValueError (non-finite weights).
"""

import warnings

import numpy as np
import pytest
import sklearn
import sklearn.neural_network as skl
from sklearn.exceptions import ConvergenceWarning

import nnfast.sklearn as nn

if sklearn.__version__ < "1.9":  # pragma: no cover - the behaviour compared is 1.9's
    pytest.skip("needs scikit-learn >= 1.9", allow_module_level=True)


def diverging_data(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    if kind == "regressor":
        return X, X @ [100.0, 200.0, 300.0] + rng.normal(size=200)
    # Inputs of 1e100 overflow the first layer at once.
    if kind == "binary":
        return X * 1e100, (X[:, 0] > 0).astype(int)
    return X * 1e100, np.digitize(X[:, 0], [-0.5, 0.5])


def fit_recording(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            model.fit(X, y)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


PARAMS = dict(
    hidden_layer_sizes=(8,), solver="sgd", early_stopping=True, max_iter=30, random_state=0
)


def pair(kind, **params):
    if kind == "regressor":
        return nn.MLPRegressor(**params, **PARAMS), skl.MLPRegressor(**params, **PARAMS)
    return nn.MLPClassifier(**params, **PARAMS), skl.MLPClassifier(**params, **PARAMS)


@pytest.mark.parametrize(
    ("kind", "lr", "ran_to_max_iter"),
    [
        ("regressor", 0.1, True),  # NaN scores never count: on to max_iter
        ("regressor", 1.0, True),
        ("multiclass", 1.0, False),  # the NaN network's accuracy counts: stopped early
    ],
)
def test_diverging_run_under_early_stopping_ends_as_scikit_learn(kind, lr, ran_to_max_iter):
    X, y = diverging_data(kind)
    ours, theirs = pair(kind, learning_rate_init=lr)
    our_warnings, their_warnings = fit_recording(ours, X, y), fit_recording(theirs, X, y)
    # Neither raises; both warn (or not) that max_iter was reached.
    assert [str(w.message) for w in our_warnings] == [str(w.message) for w in their_warnings]
    assert len(our_warnings) == ran_to_max_iter
    assert ours.n_iter_ == theirs.n_iter_ == (30 if ran_to_max_iter else theirs.n_iter_) > 2
    assert ours.t_ == theirs.t_
    assert ours._no_improvement_count == theirs._no_improvement_count
    # The same curves: the same run while finite, then non-finite losses and the scores of
    # a NaN network (NaN for a regressor, an accuracy for a classifier).
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == ours.n_iter_
    np.testing.assert_array_equal(np.isfinite(ours.loss_curve_), np.isfinite(theirs.loss_curve_))
    assert not np.isfinite(ours.loss_curve_[-1]) and np.isnan(ours.loss_)
    if kind == "regressor":  # (logits of 1e99: scikit-learn's log-loss clips the probability)
        finite = np.isfinite(theirs.loss_curve_)
        np.testing.assert_allclose(
            np.array(ours.loss_curve_)[finite], np.array(theirs.loss_curve_)[finite], rtol=1e-8
        )
    np.testing.assert_allclose(
        ours.validation_scores_, theirs.validation_scores_, rtol=1e-8, equal_nan=True
    )
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-8)
    # The best weights are kept, finite.
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    with np.errstate(all="ignore"):  # scikit-learn's predict on inputs of 1e100 overflows
        if kind == "regressor":
            np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7)
        else:
            np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_nan_network_scoring_best_fails_as_scikit_learn():
    """A binary classifier whose NaN network (it predicts the first class) scores better
    than every finite epoch: scikit-learn keeps those NaN weights as the best and fails."""
    X, y = diverging_data("binary")
    for model in pair("binary", learning_rate_init=1.0):
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
            fit_recording(model, X, y)


def test_verbose_reports_the_diverged_epochs(capsys):
    X, y = diverging_data("regressor")
    fit_recording(nn.MLPRegressor(learning_rate_init=1.0, verbose=True, **PARAMS), X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["Iteration 30, loss = nan", "Validation score: nan"]


def test_diverging_run_without_early_stopping_raises_as_scikit_learn():
    X, y = diverging_data("regressor")
    params = {**PARAMS, "early_stopping": False}
    for model in (nn.MLPRegressor(learning_rate_init=1.0, **params),):
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
            fit_recording(model, X, y)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        fit_recording(skl.MLPRegressor(learning_rate_init=1.0, **params), X, y)
