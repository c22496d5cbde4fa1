"""nnfast.sklearn.input_grad: the Jacobian in original units through linear scalers."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)

from nnfast.sklearn import MLPClassifier, MLPRegressor, input_grad  # noqa: E402

RNG = np.random.default_rng(0)
# Features of very different scales and offsets, as catalogue columns are.
X = RNG.normal(size=(120, 3)) * [1.0, 30.0, 0.01] + [0.0, 5000.0, -2.0]
Y = np.c_[np.sin(X[:, 0]) + X[:, 1] / 3000, X[:, 2] * 100 + X[:, 0]] * [800.0, 1.0] + [5000, 0]


def central_differences(predict, X, h=1e-4):
    """(n, n_out, n_features) by central differences, step h times each feature's scale."""
    scale = X.std(axis=0)
    columns = []
    for k in range(X.shape[1]):
        step = np.zeros(X.shape[1])
        step[k] = h * scale[k]
        up, down = predict(X + step), predict(X - step)
        columns.append((up - down) / (2 * step[k]))
    J = np.stack(columns, axis=-1)
    return J[:, None, :] if J.ndim == 2 else J


def fit(model, X, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def regressor():
    return MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", max_iter=30, random_state=0)


@pytest.mark.parametrize(
    "scalers",
    [
        [StandardScaler()],
        [MinMaxScaler()],
        [MaxAbsScaler()],
        [RobustScaler()],
        [StandardScaler(with_mean=False), "passthrough", MaxAbsScaler()],
        [
            make_pipeline(RobustScaler(with_centering=False), MinMaxScaler((-1, 1))),
            StandardScaler(),
        ],
        [StandardScaler(with_std=False), RobustScaler(with_scaling=False)],
    ],
)
@pytest.mark.parametrize(
    "target", [None, StandardScaler(), MinMaxScaler(), MaxAbsScaler(), RobustScaler()]
)
def test_pipeline_and_target_transformer_match_central_differences(scalers, target):
    steps = [(f"s{i}", s) for i, s in enumerate(scalers)] + [("mlp", regressor())]
    model = Pipeline(steps)
    if target is not None:
        model = TransformedTargetRegressor(regressor=model, transformer=target)
    fit(model, X, Y)
    J = input_grad(model, X[:7])
    assert J.shape == (7, 2, 3)
    expected = central_differences(model.predict, X[:7])
    # Per output: the targets differ in scale by 10^3, and so do their derivatives.
    atol = 1e-7 * np.abs(expected).max(axis=(0, 2))[None, :, None]
    np.testing.assert_array_less(np.abs(J - expected), atol + 1e-6 * np.abs(expected))


def test_single_target_gives_one_output_row():
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), regressor()), transformer=StandardScaler()
    )
    fit(model, X, Y[:, 0])
    J = input_grad(model, X[:5])
    assert J.shape == (5, 1, 3)
    np.testing.assert_allclose(J, central_differences(model.predict, X[:5]), rtol=1e-6)


def test_classifier_probabilities_through_a_scaler():
    y = np.where(X[:, 0] > 0, "star", np.where(X[:, 1] > 5000, "galaxy", "quasar"))
    model = fit(
        make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=30, random_state=0)), X, y
    )
    J = input_grad(model, X[:6])
    assert J.shape == (6, 3, 3)
    np.testing.assert_allclose(
        J, central_differences(model.predict_proba, X[:6]), rtol=1e-5, atol=1e-12
    )
    np.testing.assert_allclose(J.sum(axis=1), 0, atol=1e-12)  # probabilities sum to one


def test_a_bare_estimator_is_its_own_input_grad():
    model = fit(regressor(), X, Y)
    np.testing.assert_array_equal(input_grad(model, X[:4]), model.input_grad(X[:4]))


def test_a_clipping_min_max_scaler_has_zero_derivative_where_it_clips():
    model = fit(make_pipeline(MinMaxScaler(clip=True), regressor()), X, Y)
    outside = X[:3] + [0.0, 1e6, 0.0]  # the second feature far beyond the fitted range
    J = input_grad(model, outside)
    assert np.all(J[:, :, 1] == 0) and np.all(J[:, :, 0] != 0)


def test_identity_target_transformer():
    model = fit(TransformedTargetRegressor(regressor()), X, Y)
    np.testing.assert_array_equal(input_grad(model, X[:3]), model.regressor_.input_grad(X[:3]))


@pytest.mark.parametrize(
    "model,name",
    [
        (make_pipeline(PCA(2), regressor()), "PCA"),
        (make_pipeline(FunctionTransformer(np.log1p), regressor()), "FunctionTransformer"),
        (
            TransformedTargetRegressor(regressor(), func=np.log1p, inverse_func=np.expm1),
            "FunctionTransformer",
        ),
    ],
)
def test_steps_that_cannot_be_differentiated_are_named(model, name):
    fit(model, np.abs(X), np.abs(Y))
    with pytest.raises(TypeError, match=name):
        input_grad(model, np.abs(X[:2]))


def test_a_model_without_input_grad_is_refused():
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="model: expected an nnfast estimator.*got Ridge"):
        input_grad(Ridge().fit(X, Y), X)


def test_float32_networks_keep_their_dtype():
    model = fit(
        make_pipeline(
            StandardScaler(),
            MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dtype="float32"),
        ),
        X,
        Y,
    )
    assert input_grad(model, X[:2]).dtype == np.float32
