"""The Jacobian of a fitted model in the units of its original features and targets.

``input_grad(model, X)`` differentiates an nnfast estimator together with the linear
scalers around it — the steps of a :class:`~sklearn.pipeline.Pipeline` before it and the
target transformer of a :class:`~sklearn.compose.TransformedTargetRegressor` — by the chain
rule: each scaler is an element-wise affine map ``x -> a * x + c`` whose derivative is the
diagonal ``a``.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted

_LINEAR_SCALERS = "StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler"


def input_grad(model, X):
    """Jacobian of a fitted model's prediction with respect to its original features.

    ``J[i, j, k] = ∂ prediction(X)[i, j] / ∂ X[i, k]``, where the prediction is
    ``model.predict`` for a regressor and ``model.predict_proba`` for a classifier (as
    :meth:`MLPRegressor.input_grad` and :meth:`MLPClassifier.input_grad`), in the units of
    ``X`` and of the targets as the user gave them.

    Parameters
    ----------
    model : fitted estimator
        An nnfast estimator with ``input_grad`` (or an :class:`nnfast.MLP`); a
        :class:`~sklearn.pipeline.Pipeline` of linear scalers (``StandardScaler``,
        ``MinMaxScaler``, ``MaxAbsScaler``, ``RobustScaler``, ``"passthrough"``, or nested
        Pipelines of them) ending in such a model; or a
        :class:`~sklearn.compose.TransformedTargetRegressor` whose ``transformer`` is a
        linear scaler (or the identity) around such a model or Pipeline. Any other step
        raises ``TypeError`` naming it.
    X : array-like of shape (n_samples, n_features)
        Checked by each step as its ``transform`` or ``predict`` checks it.

    Returns
    -------
    J : ndarray of shape (n_samples, n_outputs, n_features)
        In the network's dtype. For a scaler that clips (``clip=True``) the derivative is
        zero where it clipped.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from nnfast.sklearn import MLPRegressor, input_grad
    >>> X = np.random.default_rng(0).normal(size=(100, 3)) * [1, 10, 100]
    >>> model = make_pipeline(StandardScaler(), MLPRegressor(max_iter=20)).fit(X, X[:, 0])
    >>> input_grad(model, X).shape
    (100, 1, 3)
    """
    return _jacobian(model, X, "model")


def _jacobian(model, X, where):
    if isinstance(model, Pipeline):
        return _pipeline_jacobian(model, X, where)
    if isinstance(model, TransformedTargetRegressor):
        check_is_fitted(model)
        J = _jacobian(model.regressor_, X, f"{where}.regressor_")
        factor = _inverse_derivative(model.transformer_, f"{where}.transformer_", J.shape[1])
        return J * factor.astype(J.dtype)[None, :, None]
    if callable(getattr(model, "input_grad", None)):
        return model.input_grad(X)
    raise TypeError(
        f"{where}: expected an nnfast estimator with input_grad, a Pipeline of linear scalers "
        f"({_LINEAR_SCALERS}) ending in one, or a TransformedTargetRegressor around one; "
        f"got {type(model).__name__}"
    )


def _pipeline_jacobian(pipeline, X, where):
    """Chain rule through the pipeline's steps: J_final(T(X)) · diag(∏ a_step)."""
    *steps, (last_name, last) = pipeline.steps
    factor = None
    for name, step in _scaler_steps(steps, where):
        derivative = _scaler_derivative(step, X, name)
        X = step.transform(X)
        factor = derivative if factor is None else factor * derivative
    J = _jacobian(last, X, f"{where}[{last_name!r}]")
    return J if factor is None else J * factor.astype(J.dtype)[:, None, :]


def _scaler_steps(steps, where):
    """The (name, step) pairs that transform, nested Pipelines flattened in order."""
    for name, step in steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, Pipeline):
            yield from _scaler_steps(step.steps, f"{where}[{name!r}]")
        else:
            yield f"{where}[{name!r}]", step


def _scaler_derivative(scaler, X, where):
    """(n_samples, n_features): ∂ scaler.transform(X) / ∂ X, element by element."""
    if type(scaler) not in (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler):
        raise TypeError(
            f"{where}: cannot differentiate a {type(scaler).__name__} step; input_grad goes "
            f"through the linear scalers ({_LINEAR_SCALERS}) and 'passthrough' only"
        )
    check_is_fitted(scaler)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array (n_samples, n_features), got {X.ndim}-D")
    n_features = getattr(scaler, "n_features_in_", X.shape[1])
    if X.shape[1] != n_features:
        raise ValueError(
            f"X: expected {n_features} features (as {where} was fitted), got {X.shape[1]}"
        )
    ones = np.ones(X.shape, dtype=np.float64)
    if isinstance(scaler, StandardScaler):
        return ones if scaler.scale_ is None else ones / scaler.scale_
    if isinstance(scaler, RobustScaler):
        return ones / scaler.scale_ if scaler.with_scaling else ones
    if isinstance(scaler, MinMaxScaler):
        derivative = ones * scaler.scale_
        if scaler.clip:
            low, high = scaler.feature_range
            unclipped = X * scaler.scale_ + scaler.min_
            derivative[(unclipped < low) | (unclipped > high)] = 0.0
        return derivative
    derivative = ones / scaler.scale_  # MaxAbsScaler
    if getattr(scaler, "clip", False):
        derivative[np.abs(X / scaler.scale_) > 1.0] = 0.0
    return derivative


def _inverse_derivative(transformer, where, n_outputs):
    """(n_outputs,): ∂ transformer.inverse_transform(t) / ∂ t of a linear target scaler."""
    if (
        isinstance(transformer, FunctionTransformer)
        and transformer.func is None
        and transformer.inverse_func is None
    ):
        return np.ones(n_outputs)
    if type(transformer) not in (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler):
        raise TypeError(
            f"{where}: cannot differentiate the inverse of a {type(transformer).__name__}; "
            f"input_grad goes through the linear scalers ({_LINEAR_SCALERS}) and the identity "
            "(no transformer, func and inverse_func)"
        )
    if isinstance(transformer, StandardScaler):
        scale = transformer.scale_
        return np.ones(n_outputs) if scale is None else np.asarray(scale, dtype=np.float64)
    if isinstance(transformer, RobustScaler):
        return (
            np.asarray(transformer.scale_, dtype=np.float64)
            if transformer.with_scaling
            else np.ones(n_outputs)
        )
    if isinstance(transformer, MinMaxScaler):
        return 1.0 / np.asarray(transformer.scale_, dtype=np.float64)
    return np.asarray(transformer.scale_, dtype=np.float64)  # MaxAbsScaler
