"""Fitted estimators of every kind for the save/load tests (test_estimator_io,
test_estimator_io_tampered), their outputs and attributes, and comparisons."""

import json
import warnings
import zipfile

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from nnfast.sklearn import (
    MLPAutoencoder,
    MLPClassifier,
    MLPEnsembleClassifier,
    MLPEnsembleRegressor,
    MLPRegressor,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 4))
Y_REG = X @ [1.0, -2.0, 0.5, 0.0] + 0.1 * RNG.normal(size=80)
LABELS = np.array(["cat", "dog", "eel"])[RNG.integers(0, 3, 80)]
SMALL = dict(hidden_layer_sizes=(5,), max_iter=8, random_state=0)


def fit(estimator, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y) if y is not None else estimator.fit(X)


def make_cases():
    import pandas as pd

    frame = pd.DataFrame(X, columns=["u", "g", "r", "i"])
    return {
        "regressor-adam": lambda: fit(MLPRegressor(**SMALL), X, Y_REG),
        "regressor-lbfgs-f32-2d": lambda: fit(
            MLPRegressor(solver="lbfgs", dtype="float32", **SMALL), X, np.c_[Y_REG, -Y_REG]
        ),
        "regressor-poisson": lambda: fit(
            MLPRegressor(loss="poisson", activation="tanh", **SMALL), X, np.exp(Y_REG / 4)
        ),
        "regressor-gaussian-nll": lambda: fit(MLPRegressor(loss="gaussian_nll", **SMALL), X, Y_REG),
        "regressor-early-stopping-frame": lambda: fit(
            MLPRegressor(early_stopping=True, n_iter_no_change=np.inf, **SMALL), frame, Y_REG
        ),
        "regressor-maxout-sgd": lambda: fit(
            MLPRegressor(activation="maxout", solver="sgd", learning_rate="invscaling", **SMALL),
            X,
            Y_REG,
        ),
        "classifier-binary-int": lambda: fit(MLPClassifier(**SMALL), X, np.where(Y_REG > 0, 7, 3)),
        "classifier-multiclass-str": lambda: fit(
            MLPClassifier(activation="elu", **SMALL), X, LABELS
        ),
        "classifier-object-str-frame": lambda: fit(
            MLPClassifier(solver="rprop", **SMALL), frame, LABELS.astype(object)
        ),
        "classifier-bool": lambda: fit(MLPClassifier(**SMALL), X, Y_REG > 0),
        "classifier-multilabel": lambda: fit(
            MLPClassifier(solver="lbfgs", **SMALL), X, (X[:, :3] > 0).astype(int)
        ),
        "autoencoder": lambda: fit(MLPAutoencoder(n_components=2, activation="tanh", **SMALL), X),
        "autoencoder-linear-f32": lambda: fit(
            MLPAutoencoder(n_components=1, hidden_layer_sizes=(), dtype="float32", max_iter=5), X
        ),
        "ensemble-regressor-nll": lambda: fit(
            MLPEnsembleRegressor(MLPRegressor(loss="gaussian_nll", **SMALL), 3, random_state=1),
            X,
            Y_REG,
        ),
        "ensemble-classifier-bootstrap": lambda: fit(
            MLPEnsembleClassifier(None, 2, bootstrap=True, random_state=2), frame, LABELS
        ),
        "ensemble-classifier-multilabel": lambda: fit(
            MLPEnsembleClassifier(MLPClassifier(**SMALL), 2, random_state=3),
            X,
            (X[:, :2] > 0).astype(int),
        ),
    }


CASES = make_cases()


def outputs(estimator, X):
    """Every output of the estimator on X, by name."""
    out = {}
    if hasattr(estimator, "transform"):
        out["transform"] = estimator.transform(X)
        out["inverse_transform"] = estimator.inverse_transform(out["transform"])
        out["score"] = estimator.score(X)
    else:
        out["predict"] = estimator.predict(X)
    if hasattr(estimator, "predict_proba"):
        out["predict_proba"] = estimator.predict_proba(X)
    if getattr(estimator, "_predicts_std", False) or (isinstance(estimator, MLPEnsembleRegressor)):
        out["return_std"] = estimator.predict(X, return_std=True)
    if hasattr(estimator, "input_grad"):
        out["input_grad"] = estimator.input_grad(X)
    return out


def assert_identical(a, b, where=""):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype.kind in "OU":
        assert a.tolist() == b.tolist(), where
    else:
        assert a.tobytes() == b.tobytes(), where


FITTED_ATTRIBUTES = (
    "n_features_in_",
    "n_iter_",
    "t_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "_predicts_std",
    "_no_improvement_count",
    "_multilabel",
)


def assert_same_estimator(original, loaded):
    assert type(loaded) is type(original)
    assert repr(loaded) == repr(original)
    for name in FITTED_ATTRIBUTES:
        assert hasattr(loaded, name) == hasattr(original, name), name
        if hasattr(original, name):
            value, again = getattr(original, name), getattr(loaded, name)
            assert type(again) is type(value), (name, type(value), type(again))
            assert again == value or (value != value and again != again), name
    for name in ("classes_", "feature_names_in_"):
        assert hasattr(loaded, name) == hasattr(original, name), name
        if hasattr(original, name):
            assert_identical(getattr(original, name), getattr(loaded, name), name)
    if hasattr(original, "coefs_"):
        for name in ("coefs_", "intercepts_"):
            for i, (x, y) in enumerate(zip(getattr(original, name), getattr(loaded, name))):
                assert_identical(x, y, f"{name}[{i}]")
    if hasattr(original, "_label_binarizer"):
        for name in ("y_type_", "sparse_input_", "neg_label", "pos_label", "sparse_output"):
            assert getattr(loaded._label_binarizer, name) == getattr(
                original._label_binarizer, name
            )
        assert_identical(original._label_binarizer.classes_, loaded._label_binarizer.classes_)
    if hasattr(original, "estimators_"):
        assert len(loaded.estimators_) == len(original.estimators_)
        for member, again in zip(original.estimators_, loaded.estimators_):
            assert_same_estimator(member, again)


def header_of(path):
    with zipfile.ZipFile(path) as archive:
        data = archive.read("header.npy")
    return json.loads(data[data.index(b"\n") + 1 :].decode("utf-8"))
