"""nnfast.sklearn beyond the one-to-one comparisons of test_sklearn.py: convergence
warnings and errors, scikit-learn's machinery (pipelines, grid searches, clone, pickle and
joblib, editable coefs_, DataFrames' feature names) and nnfast's additions (activations,
rprop and dtype, the import guard, compiled epochs against per-epoch hooks, shuffling,
early stopping with a class of one member)."""

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
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnfast.sklearn as nns
from nnfast.sklearn import MLPClassifier, MLPRegressor

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
from sklearn_cases import curve

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


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


def test_parameter_names_are_read_from_each_signature_once():
    # get_params reads a cached list, which must be scikit-learn's own reading of __init__.
    from sklearn.base import BaseEstimator

    for cls in (MLPRegressor, MLPClassifier, nns.MLPAutoencoder):
        assert cls._get_param_names() == BaseEstimator._get_param_names.__func__(cls)

    class Wider(MLPRegressor):
        def __init__(self, extra=1, **kwargs):
            super().__init__(**kwargs)
            self.extra = extra

    assert Wider._get_param_names() == ["extra"]
    assert "extra" not in MLPRegressor._get_param_names()


def test_a_first_fit_shares_its_parameters_and_a_refit_copies_its_state():
    rng = np.random.RandomState(0)
    sizes = [20, 20]
    est = MLPRegressor(hidden_layer_sizes=sizes, max_iter=5, random_state=rng)
    X, y = curve(50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        assert est.hidden_layer_sizes is sizes and est.random_state is rng
        curve_before, coefs = list(est.loss_curve_), [c.copy() for c in est.coefs_]
        est.set_params(warm_start=True, max_iter=3)
        with pytest.raises(ValueError, match="features"):
            est.fit(np.hstack([X, X]), y)  # refused after the working copy: state untouched
        assert est.loss_curve_ == curve_before
        for before, after in zip(coefs, est.coefs_):
            np.testing.assert_array_equal(before, after)
        est.fit(X, y)  # a warm start continues from a deep copy of the state
    assert len(est.loss_curve_) == len(curve_before) + 3
    assert est.loss_curve_[: len(curve_before)] == curve_before
    assert all(not np.array_equal(a, b) for a, b in zip(coefs, est.coefs_))
