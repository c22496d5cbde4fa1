"""nnfast.sklearn: a drop-in for scikit-learn's MLPRegressor and MLPClassifier.

The estimators follow scikit-learn's definitions (initial weights, shuffling, losses, alpha
scaling, schedules, early stopping) with the same random draws, so most tests fit the same
model with both libraries and require the same result up to floating-point rounding. Then
scikit-learn's own estimator checks. Warnings, errors, scikit-learn's machinery (pipelines,
searches, pickling, DataFrames) and nnfast's additions are in test_sklearn_api.py.
"""

import io
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
import sklearn.neural_network as skl
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn_cases import curve

import nnfast.sklearn as nns
from nnfast.sklearn import MLPClassifier, MLPRegressor

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fit_both(kind, X, y, **params):
    """The same estimator fitted by scikit-learn and by nnfast (warnings silenced).

    solver="lbfgs" is nnfast's "lbfgs_scipy": scikit-learn's minimiser, for its exact
    iterates (nnfast's compiled "lbfgs" is compared in tests/test_lbfgs_fit.py)."""
    models = []
    for module in (skl, nns):
        options = dict(params)
        if module is nns and options.get("solver") == "lbfgs":
            options["solver"] = "lbfgs_scipy"
        model = getattr(module, kind)(**options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        models.append(model)
    return models


def assert_same_model(ref, ours, rtol=1e-9, atol=1e-11):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=rtol)
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------------
# scikit-learn's estimator checks
# ------------------------------------------------------------------------------------------


# Two checks are skipped by scikit-learn itself, with their reasons in the pytest report:
# check_array_api_input (needs SCIPY_ARRAY_API=1) and the decision_function output format
# (MLPClassifier, like scikit-learn's, has no decision_function). ConvergenceWarning is
# expected: the checks fit on tiny data with max_iter=200.
@quiet
@parametrize_with_checks([MLPRegressor(), MLPRegressor(loss="gaussian_nll"), MLPClassifier()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------------------------------
# The same script with either import
# ------------------------------------------------------------------------------------------

SCRIPT = """
from {module} import MLPClassifier, MLPRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

scores = {{}}
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(40,), max_iter=30,
                                                      random_state=0))
scores["digits adam"] = model.fit(X_train, y_train).score(X_test, y_test)

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(10,), solver={lbfgs!r},
                                                      max_iter=100, random_state=0))
scores["breast_cancer lbfgs"] = model.fit(X_train, y_train).score(X_test, y_test)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y / 100, random_state=0)
model = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(20, 20), solver="sgd",
                                                     learning_rate_init=0.01,
                                                     early_stopping=True, max_iter=100,
                                                     random_state=0))
scores["diabetes sgd early stopping"] = model.fit(X_train, y_train).score(X_test, y_test)
"""


def test_one_import_switch_gives_the_same_scores():
    """Tolerance: 1e-6 on each score (accuracy or R²). Both libraries start from the same
    weights and see the same batches; only rounding differs."""
    results = {}
    # nnfast's "lbfgs_scipy" is scikit-learn's minimiser: the same iterates, so the same
    # scores (its compiled "lbfgs" reaches as good a fit by other iterates).
    for module, lbfgs in (("sklearn.neural_network", "lbfgs"), ("nnfast.sklearn", "lbfgs_scipy")):
        namespace = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            exec(SCRIPT.format(module=module, lbfgs=lbfgs), namespace)
        results[module] = namespace["scores"]
    ref, ours = results["sklearn.neural_network"], results["nnfast.sklearn"]
    assert ref.keys() == ours.keys() and len(ref) == 3
    for name in ref:
        assert ours[name] == pytest.approx(ref[name], abs=1e-6), name
    assert ours["digits adam"] > 0.9 and ours["breast_cancer lbfgs"] > 0.9
    assert ours["diabetes sgd early stopping"] > 0.2


# ------------------------------------------------------------------------------------------
# Same definitions as scikit-learn, solver by solver
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam"),
        dict(solver="sgd", nesterovs_momentum=False, momentum=0.5, batch_size=37),
        dict(solver="sgd", learning_rate="invscaling", power_t=0.3, learning_rate_init=0.05),
        dict(
            solver="sgd",
            learning_rate="adaptive",
            learning_rate_init=0.05,
            tol=1e-2,
            n_iter_no_change=2,
        ),
        dict(solver="lbfgs", alpha=0.1),
        dict(solver="adam", shuffle=False, activation="logistic", alpha=1.0),
    ],
    ids=["adam", "sgd-momentum", "invscaling", "adaptive", "lbfgs", "logistic-noshuffle"],
)
def test_regressor_matches_sklearn(params):
    X, y = curve()
    ref, ours = fit_both(
        "MLPRegressor",
        X,
        y,
        hidden_layer_sizes=(20, 20),
        activation=params.pop("activation", "tanh"),
        max_iter=40,
        random_state=1,
        **params,
    )
    assert_same_model(ref, ours, rtol=1e-7 if params["solver"] == "lbfgs" else 1e-9)
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
        assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-9)
        assert ours.t_ == ref.t_
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-7, atol=1e-9)


def test_verbose_output_reads_like_sklearn():
    X, y = curve(60)
    outputs = []
    for module in (skl, nns):
        buffer = io.StringIO()
        model = module.MLPRegressor(
            hidden_layer_sizes=(5,),
            solver="sgd",
            learning_rate="adaptive",
            tol=0.5,
            n_iter_no_change=1,
            max_iter=12,
            random_state=0,
            verbose=True,
        )
        with redirect_stdout(buffer), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        outputs.append(buffer.getvalue().splitlines())
    ref, ours = outputs
    assert ours[0].startswith("Iteration 1, loss = ")
    assert any("Setting learning rate to" in line for line in ours)
    assert len(ours) == len(ref)
    for a, b in zip(ref, ours):  # equal up to the last printed digit of the losses
        if a.startswith("Iteration"):
            assert a.split("=")[0] == b.split("=")[0]
            assert float(b.split("=")[1]) == pytest.approx(float(a.split("=")[1]), abs=2e-8)
        else:
            assert a == b


@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel", "strings"])
def test_classifier_matches_sklearn(target):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if target == "binary":
        y = (y == 1).astype(int)
    elif target == "multilabel":
        y = np.column_stack([y == 0, y == 2, X[:, 0] > 0]).astype(int)
    elif target == "strings":
        y = np.array(["setosa", "versicolor", "virginica"])[y]
    ref, ours = fit_both(
        "MLPClassifier", X, y, hidden_layer_sizes=(8,), max_iter=30, random_state=3, batch_size=32
    )
    assert ours.out_activation_ == ref.out_activation_
    assert ours.n_outputs_ == ref.n_outputs_ and ours.n_layers_ == ref.n_layers_ == 3
    assert_same_model(ref, ours)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_log_proba(X), ref.predict_log_proba(X), rtol=1e-9)
    assert ours.score(X, y) == ref.score(X, y)
    if target == "strings":
        assert ours.predict(X[:1])[0] in ("setosa", "versicolor", "virginica")


def test_multi_output_and_poisson_regression_match_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    Y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    ref, ours = fit_both(
        "MLPRegressor", X, Y, hidden_layer_sizes=(10,), max_iter=25, random_state=0, batch_size=16
    )
    # Same training (the gradient is of the sum over outputs); loss_ differs by definition:
    # nnfast reports that sum, scikit-learn the mean over outputs (see the module docstring).
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert ours.predict(X).shape == (80, 2)
    counts = rng.poisson(np.exp(0.5 * X[:, 0]))
    ref, ours = fit_both(
        "MLPRegressor",
        X,
        counts,
        loss="poisson",
        hidden_layer_sizes=(6,),
        max_iter=30,
        random_state=0,
    )
    assert ours.out_activation_ == "exp"
    assert_same_model(ref, ours)
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        MLPRegressor(loss="poisson").fit(X, -counts)


def test_early_stopping_restores_the_best_weights_like_sklearn():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    ref, ours = fit_both(
        "MLPClassifier",
        X[:600],
        y[:600],
        hidden_layer_sizes=(20,),
        solver="sgd",
        learning_rate_init=0.3,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=200,
        random_state=0,
    )
    assert ours.n_iter_ < 200 and ours.n_iter_ == ref.n_iter_
    assert ours.best_loss_ is None
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    # The last epochs did not improve: the kept weights are the best epoch's, not the last.
    assert ours.validation_scores_[-1] < ours.best_validation_score_
    assert_same_model(ref, ours)


def test_partial_fit_and_warm_start_match_sklearn():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    models = []
    for module in (skl, nns):
        model = module.MLPClassifier(hidden_layer_sizes=(6,), random_state=0, batch_size=50)
        model.partial_fit(X[:75], y[:75], classes=[0, 1, 2])
        for _ in range(3):
            model.partial_fit(X, y)
        models.append(model)
    ref, ours = models
    assert ours.n_iter_ == 1 and ours.t_ == ref.t_ == 75 + 3 * 150
    assert_same_model(ref, ours)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        ours.partial_fit(X, y + 5)

    x, t = curve(100)
    models = []
    for module in (skl, nns):
        model = module.MLPRegressor(
            hidden_layer_sizes=(8,), max_iter=10, warm_start=True, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, t)
            model.fit(x, t)
        models.append(model)
    ref, ours = models
    assert len(ours.loss_curve_) == 20 and ours.n_iter_ == 10
    assert_same_model(ref, ours)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)


def test_alpha_is_scaled_by_the_batch_size_like_sklearn():
    """A last batch of 7 of 107 samples: the l2 term weighs more there, as in scikit-learn."""
    X, y = curve(107)
    w = np.linspace(0.5, 2.0, 107)
    models = []
    for module in (skl, nns):
        model = module.MLPRegressor(
            hidden_layer_sizes=(7,),
            alpha=3.0,
            batch_size=20,
            max_iter=5,
            random_state=0,
            shuffle=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models.append(model.fit(X, y, sample_weight=w))
    ref, ours = models
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------
