"""nnfast.sklearn: a drop-in for scikit-learn's MLPRegressor and MLPClassifier.

The estimators follow scikit-learn's definitions (initial weights, shuffling, losses, alpha
scaling, schedules, early stopping) with the same random draws, so most tests fit the same
model with both libraries and require the same result up to floating-point rounding. Then
scikit-learn's own estimator checks, the meta-estimators, pickling, warnings, errors,
labels and DataFrames, and nnfast's additions.
"""

import io
import pickle
import subprocess
import sys
import warnings
from contextlib import redirect_stdout

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn.neural_network as skl
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nnfast.sklearn as nns
from nnfast.sklearn import MLPClassifier, MLPRegressor

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def curve(n=200):
    x = np.linspace(-3, 3, n)[:, None]
    return x, np.sin(2 * x).ravel()


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
# Warnings and errors
# ------------------------------------------------------------------------------------------


def test_convergence_warnings():
    X, y = curve(50)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=3).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge after 3 iteration"):
        MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopped by tol: no warning
        model = MLPRegressor(hidden_layer_sizes=(4,), tol=10.0, max_iter=50).fit(X, y)
    assert model.n_iter_ == 12  # no improvement > tol in epochs 2..12: 11 > n_iter_no_change


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(alpha=-1.0), "The 'alpha' parameter of MLPRegressor must be a float in the range"),
        (dict(solver="newton"), "The 'solver' parameter of MLPRegressor must be a str among"),
        (dict(activation="softplus"), "The 'activation' parameter of MLPRegressor must be"),
        (dict(dtype="float16"), "The 'dtype' parameter of MLPRegressor must be"),
        (dict(hidden_layer_sizes=(3, 0)), r"hidden_layer_sizes must be > 0, got \[3, 0\]"),
    ],
)
def test_invalid_parameters_name_the_parameter(params, match):
    X, y = curve(20)
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**params).fit(X, y)


def test_other_errors():
    X, y = curve(30)
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        MLPRegressor(solver="lbfgs").partial_fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPRegressor(early_stopping=True).partial_fit(X, y)
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        MLPRegressor().fit(X, y, sample_weight=-np.ones(30))
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        MLPRegressor().fit(X, y, sample_weight=np.zeros(30))
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPRegressor(early_stopping=True).fit(X[:10], y[:10])
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same"):
        model.fit(X, np.arange(30) % 3)
    model.set_params(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match=r"warm_start/partial_fit: .* layer sizes \[1, 3, 1\]"):
        model.fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        MLPRegressor(
            hidden_layer_sizes=(3,),
            solver="sgd",
            learning_rate_init=10.0,
            momentum=0.0,
            max_iter=50,
        ).fit(X, y * 1e30)


# ------------------------------------------------------------------------------------------
# scikit-learn's machinery
# ------------------------------------------------------------------------------------------


@quiet
def test_pipeline_grid_search_cross_val_score_clone():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[::3], y[::3]
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    )
    grid = GridSearchCV(
        pipe,
        {"mlpclassifier__alpha": [1e-4, 1.0], "mlpclassifier__solver": ["adam", "lbfgs"]},
        cv=3,
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.85
    assert set(grid.best_params_) == {"mlpclassifier__alpha", "mlpclassifier__solver"}
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7
    fitted = pipe.fit(X, y)
    copy = clone(fitted)
    assert not hasattr(copy[-1], "coefs_")
    assert copy.get_params()["mlpclassifier__hidden_layer_sizes"] == (5,)


@quiet
@pytest.mark.parametrize("dumper", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trip(dumper, tmp_path):
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(
        hidden_layer_sizes=(6,), activation="maxout", max_iter=20, random_state=0
    ).fit(X, y)
    if dumper == "pickle":
        loaded = pickle.loads(pickle.dumps(model))
    else:
        joblib.dump(model, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # The loaded coefs_ are views of the loaded network's buffer again.
    assert np.shares_memory(loaded.coefs_[0], loaded._net.params)
    loaded.partial_fit(X, y)  # training continues from the loaded state
    assert loaded.t_ == model.t_ + 150


def test_coefs_can_be_edited_or_replaced():
    X, y = curve(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    model.intercepts_[1][...] = 10.0  # in place
    model.coefs_[1] = np.zeros((4, 1))  # replaced
    np.testing.assert_array_equal(model.predict(X), np.full(40, 10.0))
    model.coefs_ = [np.zeros((1, 4)), np.ones((4, 1))]
    model.intercepts_ = [np.ones(4), np.zeros(1)]
    # relu(0 x + 1) = 1 in each of the 4 hidden units, summed by the output layer.
    np.testing.assert_allclose(model.predict(X), np.full(40, 4.0))
    model.coefs_[0] = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"coefs_\[0\]: expected shape \(1, 4\), got \(2, 4\)"):
        model.predict(X)


def test_dataframes_keep_feature_names():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = (X - X.mean()) / X.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.feature_names_in_, X.columns)
    assert model.n_features_in_ == 10
    assert model.predict(X).shape == (len(X),)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X.to_numpy())
    with pytest.raises(ValueError, match="The feature names should match those"):
        model.predict(X[X.columns[::-1]])
    labels = pd.Series(np.where(y > y.median(), "high", "low"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["high", "low"]
    assert set(clf.predict(X)) <= {"high", "low"}


# ------------------------------------------------------------------------------------------
# nnfast's additions
# ------------------------------------------------------------------------------------------


@quiet
@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "maxout"])
def test_nnfast_activations(activation):
    X, y = curve(100)
    model = MLPRegressor(
        hidden_layer_sizes=(16, 8),
        activation=activation,
        solver="lbfgs",
        max_iter=200,
        random_state=0,
    ).fit(X, y)
    assert model.score(X, y) > 0.9
    expected = (
        [(1, 16, 2), (16, 8, 2), (8, 1)] if activation == "maxout" else [(1, 16), (16, 8), (8, 1)]
    )
    assert [c.shape for c in model.coefs_] == expected


def test_rprop_solver_and_dtype():
    X, y = curve(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(
            hidden_layer_sizes=(20, 20),
            activation="tanh",
            solver="rprop",
            learning_rate_init=0.01,
            max_iter=300,
            random_state=0,
        ).fit(X, y)
    assert model.score(X, y) > 0.95
    assert model.n_iter_ == len(model.loss_curve_)
    model32 = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model32.fit(X.astype(np.float32), y)  # dtype=None follows X, as scikit-learn
    assert model32.coefs_[0].dtype == np.float32
    assert model32.predict(X).dtype == np.float32
    forced = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, dtype="float32")
    with pytest.warns(ConvergenceWarning):
        forced.fit(X, y)
    assert forced.coefs_[0].dtype == np.float32


def test_import_without_scikit_learn():
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "import nnfast\n"
        "net = nnfast.MLP([1, 3, 1], seed=0)\n"
        "try:\n"
        "    import nnfast.sklearn\n"
        "except ImportError as err:\n"
        "    print('ImportError:', err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ImportError: nnfast.sklearn needs scikit-learn" in done.stdout
    assert "pip install scikit-learn" in done.stdout


@quiet
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam"),
        dict(solver="sgd", learning_rate="adaptive", tol=1e-2, n_iter_no_change=2),
        dict(solver="sgd", shuffle=False, momentum=0.5),
        dict(solver="rprop", tol=1e-3),
        dict(solver="adam", tol=0.5, n_iter_no_change=3),  # the rule stops the run early
        dict(solver="adam", n_iter_no_change=np.inf),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_epochs_equal_the_per_epoch_hooks_bit_for_bit(params, weighted):
    """Without verbose output or early stopping, the epochs run in one compiled loop that
    shuffles and applies the stopping rule itself; verbose=True calls Python after every
    epoch instead. Both must train exactly the same model."""
    X, y = curve(150)
    w = np.linspace(0.5, 2, 150) if weighted else None
    models = []
    for verbose in (False, True):
        model = MLPRegressor(
            hidden_layer_sizes=(7,),
            activation="tanh",
            max_iter=60,
            random_state=2,
            verbose=verbose,
            **params,
        )
        with redirect_stdout(io.StringIO()):
            model.fit(X, y, sample_weight=w)
            model.partial_fit(X, y)
        models.append(model)
    fast, hooked = models
    assert fast.loss_curve_ == hooked.loss_curve_
    assert (fast.n_iter_, fast.t_, fast.best_loss_, fast._no_improvement_count) == (
        hooked.n_iter_,
        hooked.t_,
        hooked.best_loss_,
        hooked._no_improvement_count,
    )
    assert type(fast.best_loss_) is type(hooked.best_loss_) is float
    for a, b in zip(fast.coefs_ + fast.intercepts_, hooked.coefs_ + hooked.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert fast._random_state.randint(1 << 30) == hooked._random_state.randint(1 << 30)


def test_shuffle_like_sklearn_draws_what_sklearn_draws():
    from sklearn.utils import shuffle

    from nnfast import _train

    for n in (0, 1, 2, 3, 17, 200, 65537):
        for seed in range(3):
            ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
            a = np.arange(n, dtype=np.intp)[::-1].copy()
            b = a.copy()
            for _ in range(3):
                _train.shuffle_like_sklearn(ours, a)
                b = shuffle(b, random_state=theirs)
                np.testing.assert_array_equal(a, b)
            assert ours.randint(1 << 30) == theirs.randint(1 << 30)


def test_values_too_large_for_a_float32_network_are_refused():
    """1e39 is finite in float64 but not in float32: a float32 estimator refuses it by name
    (in fit, predict and input_grad) instead of computing with infinity."""
    X, y = curve(20)
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, dtype="float32", random_state=0)
    with pytest.raises(ValueError, match=r"X: expected values that fit in float32"):
        model.fit(np.where(X > 2.9, 1e39, X), y)
    assert not hasattr(model, "coefs_")
    with pytest.raises(ValueError, match=r"y: expected values that fit in float32"):
        model.fit(X, np.where(y > 0.99, 1e39, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    before = [c.copy() for c in model.coefs_]
    for method in (model.predict, model.input_grad):
        with pytest.raises(ValueError, match=r"X: expected values that fit in float32"):
            method(np.array([[1e39]]))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.coefs_))


def test_early_stopping_with_a_class_of_one_member_raises_scikit_learns_message():
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = np.array([0] * 29 + [1])
    messages = []
    for cls in (skl.MLPClassifier, nns.MLPClassifier):
        with pytest.raises(ValueError) as info:
            cls(early_stopping=True, max_iter=5).fit(X, y)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "Classes with too few members are: ['True']" in messages[1]
