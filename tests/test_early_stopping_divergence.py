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


def diverging_data(classification):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    if classification:
        return X * 1000, (X[:, 0] > 0).astype(int)
    return X, X @ [100.0, 200.0, 300.0] + rng.normal(size=200)


def fit_recording(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            model.fit(X, y)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


PARAMS = dict(
    hidden_layer_sizes=(8,), solver="sgd", early_stopping=True, max_iter=30, random_state=0
)


@pytest.mark.parametrize(
    ("kind", "lr"), [("regressor", 0.1), ("regressor", 1.0), ("classifier", 10.0)]
)
def test_diverging_run_under_early_stopping_ends_as_scikit_learn(kind, lr):
    X, y = diverging_data(kind == "classifier")
    ours_class, theirs_class = (
        (nn.MLPRegressor, skl.MLPRegressor)
        if kind == "regressor"
        else (nn.MLPClassifier, skl.MLPClassifier)
    )
    ours = ours_class(learning_rate_init=lr, **PARAMS)
    theirs = theirs_class(learning_rate_init=lr, **PARAMS)
    our_warnings, their_warnings = fit_recording(ours, X, y), fit_recording(theirs, X, y)
    # Neither raises; both warn that max_iter was reached.
    assert [str(w.message) for w in our_warnings] == [str(w.message) for w in their_warnings]
    assert len(our_warnings) == 1 and "Maximum iterations (30)" in str(our_warnings[0].message)
    assert ours.n_iter_ == theirs.n_iter_ == 30
    assert ours.t_ == theirs.t_
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 30
    assert len(ours.validation_scores_) == len(theirs.validation_scores_) == 30
    # The run diverged: the last epochs are not finite, in both.
    assert not np.isfinite(ours.loss_curve_[-1]) and not np.isfinite(theirs.loss_curve_[-1])
    assert np.isnan(ours.validation_scores_[-1]) and np.isnan(theirs.validation_scores_[-1])
    assert np.isnan(ours.loss_)
    assert ours._no_improvement_count == theirs._no_improvement_count == 0
    # Before it diverged, the same run; the best weights are kept and finite.
    first = int(np.argmin(np.isfinite(theirs.loss_curve_)))  # first non-finite epoch
    assert first >= 2
    np.testing.assert_allclose(ours.loss_curve_[:2], theirs.loss_curve_[:2], rtol=1e-8)
    np.testing.assert_allclose(
        ours.validation_scores_[:2], theirs.validation_scores_[:2], rtol=1e-8
    )
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-8)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    if kind == "regressor":
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_verbose_reports_the_diverged_epochs(capsys):
    X, y = diverging_data(False)
    fit_recording(nn.MLPRegressor(learning_rate_init=1.0, verbose=True, **PARAMS), X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["Iteration 30, loss = nan", "Validation score: nan"]


def test_diverging_run_without_early_stopping_raises_as_scikit_learn():
    X, y = diverging_data(False)
    params = {**PARAMS, "early_stopping": False}
    for model in (nn.MLPRegressor(learning_rate_init=1.0, **params),):
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
            fit_recording(model, X, y)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        fit_recording(skl.MLPRegressor(learning_rate_init=1.0, **params), X, y)
