"""nnfast.save / nnfast.load of fitted nnfast.sklearn estimators (format version 2).

A loaded estimator is of the same type and gives identical outputs, bit for bit: predict,
predict_proba, return_std, transform, inverse_transform, score, input_grad; the same
attributes (n_features_in_, feature_names_in_, classes_ with its dtype, loss_curve_, n_iter_
…) and the same get_params, so that clone works. A warm-started fit of a loaded estimator
continues exactly as the original's would. Tampered files are refused with a ValueError
naming what is wrong (the byte-level damage of archives is tested in test_io.py for every
kind of file: the archive reader is shared).
"""

import copy
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from estimator_cases import (  # noqa: E402
    CASES,
    LABELS,
    Y_REG,
    X,
    assert_identical,
    assert_same_estimator,
    fit,
    header_of,
    make_cases,
    outputs,
)
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import nnfast  # noqa: E402
from nnfast.sklearn import (  # noqa: E402
    MLPClassifier,
    MLPEnsembleClassifier,
    MLPRegressor,
)


@pytest.mark.parametrize("case", CASES)
def test_round_trip_gives_identical_outputs(case, fitted, tmp_path):
    original = fitted[case]
    path = tmp_path / "model.npz"
    nnfast.save(original, path)
    loaded = nnfast.load(path)
    assert_same_estimator(original, loaded)
    X_in = X[:17]
    if hasattr(original, "feature_names_in_"):
        import pandas as pd

        X_in = pd.DataFrame(X_in, columns=original.feature_names_in_)
    expected, got = outputs(original, X_in), outputs(loaded, X_in)
    assert expected.keys() == got.keys()
    for name in expected:
        assert_identical(expected[name], got[name], name)
    # get_params, hence clone.
    assert loaded.get_params(deep=False).keys() == original.get_params(deep=False).keys()
    assert repr(clone(loaded)) == repr(clone(original))
    for key, value in original.get_params(deep=False).items():
        if hasattr(value, "get_params"):
            assert repr(loaded.get_params()[key]) == repr(value)
        elif key == "hidden_layer_sizes":
            assert loaded.get_params()[key] == tuple(value)
        else:
            assert loaded.get_params()[key] == value, key
    # The file is version 2 and names the estimator's class.
    header = header_of(path)
    assert header["version"] == 2
    assert header["format"] == f"nnfast.sklearn.{type(original).__name__}"
    # Saved again, the loaded estimator writes the same header.
    nnfast.save(loaded, tmp_path / "again.npz")
    assert header_of(tmp_path / "again.npz") == header


@pytest.mark.parametrize(
    "case", ["regressor-adam", "classifier-multiclass-str", "autoencoder", "regressor-maxout-sgd"]
)
def test_a_warm_started_fit_continues_as_the_originals_would(case, fitted, tmp_path):
    """fit with warm_start=True builds a new optimizer anyway: from the saved weights and
    stopping-rule state, the loaded estimator's fit is the original's, bit for bit."""
    nnfast.save(fitted[case], tmp_path / "m.npz")
    loaded = nnfast.load(tmp_path / "m.npz")
    y = {"classifier-multiclass-str": LABELS, "autoencoder": None}.get(case, Y_REG)
    first = fit(copy.deepcopy(fitted[case]).set_params(warm_start=True), X, y)
    second = fit(loaded.set_params(warm_start=True), X, y)
    assert_identical(first._net.params, second._net.params)
    assert first.loss_curve_ == second.loss_curve_ and first.n_iter_ == second.n_iter_
    assert first.t_ == second.t_ and first.best_loss_ == second.best_loss_


def test_partial_fit_of_a_loaded_estimator_starts_a_fresh_optimizer(fitted, tmp_path):
    original = fitted["classifier-multiclass-str"]
    nnfast.save(original, tmp_path / "m.npz")
    loaded = nnfast.load(tmp_path / "m.npz")
    assert loaded._optimizer is None
    before = loaded._net.params.copy()
    loaded.partial_fit(X, LABELS)
    assert loaded.n_iter_ == 1 and not np.array_equal(before, loaded._net.params)
    assert original._net.params.tobytes() != loaded._net.params.tobytes()
    assert len(loaded.loss_curve_) == len(original.loss_curve_) + 1


def test_replaced_coefs_are_what_is_saved(tmp_path):
    estimator = make_cases()["regressor-adam"]()
    estimator.coefs_ = [np.ones_like(c) for c in estimator.coefs_]
    expected = estimator.predict(X)
    nnfast.save(estimator, tmp_path / "m.npz")
    assert_identical(nnfast.load(tmp_path / "m.npz").predict(X), expected)


def test_a_random_state_instance_is_saved_as_none(tmp_path):
    estimator = fit(
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=np.random.RandomState(0)),
        X,
        Y_REG,
    )
    nnfast.save(estimator, tmp_path / "m.npz")
    assert nnfast.load(tmp_path / "m.npz").random_state is None
    assert header_of(tmp_path / "m.npz")["params"]["random_state"] is None


def test_what_cannot_be_saved(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(NotFittedError, match="MLPRegressor"):
        nnfast.save(MLPRegressor(), path)
    with pytest.raises(NotFittedError, match="MLPEnsembleClassifier"):
        nnfast.save(MLPEnsembleClassifier(), path)

    class Mine(MLPRegressor):
        pass

    with pytest.raises(TypeError, match="net: expected an nnfast.MLP or a fitted nnfast.sklearn"):
        nnfast.save(fit(Mine(hidden_layer_sizes=(3,), max_iter=2), X, Y_REG), path)
    with pytest.raises(TypeError, match="got dict"):
        nnfast.save({}, path)
    estimator = fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=2), X, Y_REG)
    estimator.set_params(alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        nnfast.save(estimator, path)
    estimator = fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=2), X, Y_REG)
    estimator.set_params(activation=print)
    with pytest.raises(ValueError, match="activation"):
        nnfast.save(estimator, path)
    estimator = fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=2), X, Y_REG)
    estimator._y_scale = 2.0  # a fitted attribute the format does not know: not dropped
    with pytest.raises(TypeError, match="_y_scale"):
        nnfast.save(estimator, path)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_save_leaves_the_existing_file(fitted, tmp_path):
    path = tmp_path / "m.npz"
    nnfast.save(fitted["regressor-adam"], path)
    before = path.read_bytes()
    with pytest.raises(NotFittedError):
        nnfast.save(MLPClassifier(), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_nnfast_io_works_without_scikit_learn(fitted, tmp_path):
    nnfast.save(fitted["regressor-adam"], tmp_path / "estimator.npz")
    code = f"""
import sys
sys.modules["sklearn"] = None  # import sklearn now raises ImportError
import nnfast
net = nnfast.MLP([2, 3, 1], seed=0)
nnfast.save(net, {str(tmp_path / "net.npz")!r})
assert nnfast.load({str(tmp_path / "net.npz")!r}).params.tobytes() == net.params.tobytes()
try:
    nnfast.load({str(tmp_path / "estimator.npz")!r})
except ImportError as err:
    assert "scikit-learn" in str(err), err
else:
    raise AssertionError("loaded an estimator without scikit-learn")
assert "nnfast.sklearn" not in sys.modules
"""
    root = str(pathlib.Path(nnfast.__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
