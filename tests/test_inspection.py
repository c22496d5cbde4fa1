"""Model inspection with the scikit-learn estimators: their ``input_grad`` and
``sklearn.inspection``.

- ``MLPRegressor.input_grad`` is the Jacobian of ``predict``, ``MLPClassifier.input_grad``
  that of ``predict_proba`` (binary, multiclass, multilabel): against central differences
  of those very methods; X is checked exactly as ``predict`` checks it.
- ``permutation_importance`` and ``partial_dependence`` work on the estimators, alone and
  in a Pipeline after a StandardScaler, without any warning: on data where only feature 0
  matters (y = sin(2 x0) + noise, five features), feature 0 ranks first by far, its
  partial dependence follows sin(2 x0), another feature's is flat, and the mean |input_grad|
  (gradient saliency) ranks feature 0 first as well.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_gradient_matches_fd, central_differences, no_warnings
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nnfast.sklearn import MLPClassifier, MLPRegressor

N_FEATURES = 5
# In the pipeline, features on different scales give the StandardScaler work to do.
PIPELINE_SCALES = np.array([1.0, 10.0, 0.1, 100.0, 1.0])
# Small and fast: adam's tol rule stops each fit within 300 epochs (no ConvergenceWarning).
SETTINGS = dict(
    hidden_layer_sizes=(10,),
    activation="tanh",
    solver="adam",
    learning_rate_init=0.01,
    max_iter=1000,
    tol=1e-3,
    random_state=0,
)


def informative_data(kind, n=1000, seed=0, scales=None):
    """X (n, 5) where only feature 0 matters: y = sin(2 x0) + noise (regression), or its
    sign (binary) or its band (-inf, -0.5, 0.5, inf) (three classes) with noisy labels.
    The features are standard normal, times ``scales`` when given."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    signal = np.sin(2 * X[:, 0])
    if kind == "regressor":
        y = signal + 0.05 * rng.normal(size=n)
    elif kind == "binary":
        y = np.where(signal + 0.3 * rng.normal(size=n) > 0, "up", "down")
    else:
        y = np.digitize(signal + 0.2 * rng.normal(size=n), [-0.5, 0.5])
    return (X if scales is None else X * scales), y


def fitted(kind, pipeline=False):
    """The estimator (in a pipeline after a StandardScaler, on scaled features) fitted to
    informative_data(kind)."""
    X, y = informative_data(kind, scales=PIPELINE_SCALES if pipeline else None)
    model = MLPRegressor(**SETTINGS) if kind == "regressor" else MLPClassifier(**SETTINGS)
    if pipeline:
        model = make_pipeline(StandardScaler(), model)
    with no_warnings():
        model.fit(X, y)
    return model, X, y


KINDS = ["regressor", "binary", "multiclass"]


# ------------------------------------------------------------------------------------------
# sklearn.inspection
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", [False, True], ids=["estimator", "pipeline"])
@pytest.mark.parametrize("kind", KINDS)
def test_permutation_importance_ranks_the_informative_feature_first(kind, pipeline):
    model, X, y = fitted(kind, pipeline)
    with no_warnings():
        result = permutation_importance(model, X, y, n_repeats=5, random_state=0)
    importance = result.importances_mean
    assert importance.shape == (N_FEATURES,)
    assert np.argmax(importance) == 0
    assert importance[0] > 0.2
    assert importance[0] > 10 * np.abs(importance[1:]).max()


def pd_of(model, X, feature, grid):
    """partial_dependence of ``feature`` on the given grid: (n_outputs, len(grid))."""
    with no_warnings():
        result = partial_dependence(model, X, [feature], custom_values={feature: grid})
    np.testing.assert_array_equal(result["grid_values"][0], grid)
    return result["average"]


def true_curves(kind, x0):
    """What the partial dependence on feature 0 estimates: E[y | x0] for the regressor, the
    probability of each class in the order of classes_ (binary: of "up") under the label
    noise of informative_data."""
    signal = np.sin(2 * x0)
    if kind == "regressor":
        return [signal]
    if kind == "binary":
        return [norm.cdf(signal / 0.3)]
    low, high = norm.cdf((-0.5 - signal) / 0.2), norm.cdf((signal - 0.5) / 0.2)
    return [low, 1 - low - high, high]


@pytest.mark.parametrize("pipeline", [False, True], ids=["estimator", "pipeline"])
@pytest.mark.parametrize("kind", KINDS)
def test_partial_dependence_follows_the_true_function(kind, pipeline):
    model, X, _ = fitted(kind, pipeline)
    grid = np.linspace(-1.5, 1.5, 25)  # feature 0 is standard normal
    informative = pd_of(model, X, 0, grid)
    flat = pd_of(model, X, 3, grid * (100 if pipeline else 1))
    assert informative.shape == flat.shape == (3 if kind == "multiclass" else 1, 25)
    for curve, truth in zip(informative, true_curves(kind, grid)):
        assert np.corrcoef(curve, truth)[0, 1] > 0.9
    spread = np.ptp(informative, axis=1).max()
    assert np.ptp(flat, axis=1).max() < 0.1 * spread


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_saliency_ranks_the_informative_feature_first(kind):
    model, X, _ = fitted(kind)
    saliency = np.abs(model.input_grad(X)).mean(axis=(0, 1))
    assert np.argmax(saliency) == 0
    assert saliency[0] > 5 * saliency[1:].max()


def test_inspection_by_feature_name_on_a_dataframe():
    X, y = informative_data("regressor")
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(N_FEATURES)])
    model = MLPRegressor(**SETTINGS)
    with no_warnings():
        model.fit(frame, y)
        result = partial_dependence(model, frame, ["x0"], grid_resolution=20)
        importance = permutation_importance(model, frame, y, n_repeats=3, random_state=0)
        J = model.input_grad(frame)
    assert result["average"].shape == (1, 20)
    assert np.argmax(importance.importances_mean) == 0
    assert J.shape == (len(frame), 1, N_FEATURES)
    np.testing.assert_array_equal(J, model._net.input_grad(X))


# ------------------------------------------------------------------------------------------
# input_grad of the estimators
# ------------------------------------------------------------------------------------------


def fd_jacobian(function, X):
    """(n, n_columns, n_features): central differences of ``function`` (predict or
    predict_proba of one sample per row) in float64."""
    fd = central_differences(lambda Xs: function(Xs).reshape(len(Xs), -1), X, 1e-6)
    rows = np.arange(len(X))
    return fd[rows, :, rows, :]


def small_model(kind, targets, dtype=None):
    """A short fit (ConvergenceWarning silenced: the Jacobian of any weights will do) on 60
    samples of 5 features; returns the model and 9 rows to differentiate at."""
    X, y = informative_data("multiclass", n=60, seed=1)
    rng = np.random.default_rng(1)
    y = {
        "one output": X[:, 0],
        "two outputs": np.column_stack([X[:, 0], X[:, 1] / 10]),
        "binary": y == 2,
        "multiclass": y,
        "multilabel": np.column_stack([y == 2, y == 0, rng.random(60) < 0.5]),
    }[targets]
    Model = MLPRegressor if kind == "regressor" else MLPClassifier
    model = Model(
        hidden_layer_sizes=(7, 4),
        activation="tanh",
        max_iter=30,
        learning_rate_init=0.01,
        random_state=2,
        dtype=dtype,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, X[:9]


CASES = [
    ("regressor", "one output"),
    ("regressor", "two outputs"),
    ("classifier", "binary"),
    ("classifier", "multiclass"),
    ("classifier", "multilabel"),
]


@pytest.mark.parametrize("kind,targets", CASES)
def test_input_grad_is_the_jacobian_of_what_the_estimator_predicts(kind, targets):
    model, X = small_model(kind, targets)
    function = model.predict if kind == "regressor" else model.predict_proba
    with no_warnings():
        J = model.input_grad(X)
    columns = function(X).reshape(len(X), -1).shape[1]
    assert J.shape == (len(X), columns, N_FEATURES) and J.dtype == np.float64
    assert np.abs(J).max() > 1e-3
    fd = fd_jacobian(function, X)
    assert_gradient_matches_fd(J, fd, np.abs(function(X)).max(), np.float64)
    # The network's own Jacobian, mapped as the estimator maps its outputs.
    net_J = model._net.input_grad(X)
    if targets == "binary":
        np.testing.assert_array_equal(J, np.concatenate([-net_J, net_J], axis=1))
    else:
        np.testing.assert_array_equal(J, net_J)


def test_input_grad_in_float32():
    model, X = small_model("classifier", "multiclass", dtype="float32")
    J = model.input_grad(X)
    assert J.dtype == np.float32 and J.shape == (9, 3, N_FEATURES)
    np.testing.assert_array_equal(J, model._net.input_grad(X.astype(np.float32)))
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-6)  # probabilities sum to one


def test_input_grad_follows_replaced_coefs():
    # coefs_ / intercepts_ assigned by the user are what predict uses: input_grad as well.
    model, X = small_model("regressor", "one output")
    model.coefs_ = [np.zeros_like(W) for W in model.coefs_[:-1]] + [model.coefs_[-1]]
    np.testing.assert_array_equal(model.input_grad(X), 0.0)
    assert np.ptp(model.predict(X)) == 0.0


def refusal(call):
    try:
        call()
    except Exception as err:  # noqa: BLE001 - the exact type is compared
        return type(err), str(err)
    return None


@pytest.mark.parametrize("kind,targets", CASES)
def test_input_grad_checks_X_as_predict_does(kind, targets):
    model, X = small_model(kind, targets)
    predict = model.predict if kind == "regressor" else model.predict_proba
    bad_inputs = [
        X[:, :3],
        X[0],
        np.full((2, N_FEATURES), np.nan),
        np.zeros((0, N_FEATURES)),
        np.ones((2, N_FEATURES), dtype=complex),
        [["a"] * N_FEATURES],
        None,
    ]
    for bad in bad_inputs:
        expected = refusal(lambda: predict(bad))
        assert expected is not None and expected[0] in (ValueError, TypeError)
        assert refusal(lambda: model.input_grad(bad)) == expected


def test_input_grad_checks_feature_names_as_predict_does():
    X, y = informative_data("regressor", n=60)
    names = [f"x{i}" for i in range(N_FEATURES)]
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(pd.DataFrame(X, columns=names), y)
    renamed = pd.DataFrame(X, columns=names[::-1])
    expected = refusal(lambda: model.predict(renamed))
    assert expected is not None and "feature names" in expected[1]
    assert refusal(lambda: model.input_grad(renamed)) == expected
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.input_grad(X)


@pytest.mark.parametrize("Model", [MLPRegressor, MLPClassifier])
def test_input_grad_of_an_unfitted_estimator(Model):
    with pytest.raises(NotFittedError):
        Model().input_grad(np.ones((2, 3)))
