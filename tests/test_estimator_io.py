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
import json
import pathlib
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402

import nnfast  # noqa: E402
from nnfast.sklearn import (  # noqa: E402
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


@pytest.fixture(scope="module")
def fitted():
    return {name: make() for name, make in CASES.items()}


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


def test_the_target_standardisation_of_a_gaussian_nll_regressor_is_saved(fitted, tmp_path):
    """target_mean_ / target_scale_ (set by fits that standardise gaussian_nll targets) are
    saved when the regressor has them, as (n_outputs,) float64 arrays or None."""
    estimator = copy.deepcopy(fitted["regressor-gaussian-nll"])
    for mean, scale in [(np.array([0.25]), np.array([3.0])), (None, None)]:
        estimator.target_mean_, estimator.target_scale_ = mean, scale
        nnfast.save(estimator, tmp_path / "m.npz")
        loaded = nnfast.load(tmp_path / "m.npz")
        for name, value in (("target_mean_", mean), ("target_scale_", scale)):
            if value is None:
                assert getattr(loaded, name) is None
            else:
                assert_identical(getattr(loaded, name), value, name)
    estimator.target_mean_, estimator.target_scale_ = np.array([0.25]), np.array([3.0])
    nnfast.save(estimator, tmp_path / "m.npz")
    for key, values, fragment in [
        ("target_scale_", [0.0], "positive"),
        ("target_scale_", [1.0, 2.0], "1 finite numbers"),
        ("target_mean_", ["nan"], "1 finite numbers"),
    ]:
        path = rewrite(tmp_path / "m.npz", tmp_path / "t.npz", set_key("attributes", key, values))
        refused(path, key, fragment)
    classifier = tmp_path / "c.npz"
    nnfast.save(fitted["classifier-binary-int"], classifier)
    path = rewrite(classifier, tmp_path / "t.npz", set_key("attributes", "target_mean_", [0.0]))
    refused(path, "unknown", "target_mean_")


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


# ------------------------------------------------------------------------------------------
# Tampered files: each a ValueError naming what is wrong
# ------------------------------------------------------------------------------------------


def read_members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def npy_bytes(array):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def rewrite(source, target, edit=None, members=None):
    """``source`` with its JSON header passed through ``edit`` (in place) and members
    replaced, added (bytes) or removed (None)."""
    contents = read_members(source)
    header = header_of(source)
    if edit is not None:
        edit(header)
    contents["header.npy"] = npy_bytes(
        np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    )
    for name, data in (members or {}).items():
        if data is None:
            contents.pop(name)
        else:
            contents[name] = data
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return target


def refused(path, *fragments):
    before = path.read_bytes()
    listing = sorted(p.name for p in path.parent.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as info:
            nnfast.load(path)
    message = str(info.value)
    assert str(path) in message and "not a valid nnfast" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    # A failed load changes nothing: the file and its directory are as they were.
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == listing
    return message


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    directory = tmp_path_factory.mktemp("saved")
    paths = {}
    for name in (
        "classifier-multiclass-str",
        "classifier-binary-int",
        "classifier-multilabel",
        "regressor-gaussian-nll",
        "autoencoder",
        "ensemble-classifier-bootstrap",
        "regressor-early-stopping-frame",
    ):
        paths[name] = directory / f"{name}.npz"
        nnfast.save(fitted[name], paths[name])
    return paths


def edited(saved, case, tmp_path, edit=None, members=None):
    return rewrite(saved[case], tmp_path / "tampered.npz", edit, members)


def set_key(*keys_and_value):
    *keys, value = keys_and_value

    def edit(header):
        node = header
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def delete_key(*keys):
    def edit(header):
        node = header
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


TAMPERINGS = {
    # case, edit, fragments of the message
    "unknown estimator type": (
        "classifier-binary-int",
        set_key("format", "nnfast.sklearn.MLPPerceptron"),
        ["'format'", "MLPPerceptron"],
    ),
    "unsupported version": ("autoencoder", set_key("version", 3), ["version 3"]),
    "version 1 estimator": ("autoencoder", set_key("version", 1), ["version 1"]),
    "missing params": ("classifier-binary-int", delete_key("params"), ["missing", "'params'"]),
    "missing parameter": (
        "classifier-binary-int",
        delete_key("params", "alpha"),
        ["params", "missing", "'alpha'"],
    ),
    "unknown parameter": (
        "classifier-binary-int",
        set_key("params", "loss", "squared_error"),
        ["params", "unknown", "'loss'"],
    ),
    "invalid parameter": (
        "regressor-gaussian-nll",
        set_key("params", "solver", "newton"),
        ["solver", "newton"],
    ),
    "hidden sizes not integers": (
        "autoencoder",
        set_key("params", "hidden_layer_sizes", [5, "6"]),
        ["hidden_layer_sizes"],
    ),
    "missing attribute": (
        "autoencoder",
        delete_key("attributes", "n_iter_"),
        ["attributes", "missing", "'n_iter_'"],
    ),
    "unknown attribute": (
        "autoencoder",
        set_key("attributes", "coefs_", [1]),
        ["attributes", "unknown", "'coefs_'"],
    ),
    "missing network": ("autoencoder", delete_key("network"), ["missing", "'network'"]),
    "attribute of the wrong type": (
        "autoencoder",
        set_key("attributes", "n_iter_", "5"),
        ["'n_iter_'", "integer"],
    ),
    "boolean as integer": (
        "autoencoder",
        set_key("attributes", "t_", True),
        ["'t_'", "integer"],
    ),
    "loss curve of strings": (
        "autoencoder",
        set_key("attributes", "loss_curve_", ["0.1"]),
        ["'loss_curve_'"],
    ),
    "classes_ of an unknown dtype": (
        "classifier-multiclass-str",
        set_key("attributes", "classes_", "dtype", "|O"),
        ["classes_", "'|O'"],
    ),
    "classes_ complex": (
        "classifier-binary-int",
        set_key("attributes", "classes_", "dtype", "<c16"),
        ["classes_", "'<c16'"],
    ),
    "classes_ strings too wide to allocate": (
        "classifier-multiclass-str",
        set_key("attributes", "classes_", "dtype", "<U99999"),
        ["classes_", "'<U99999'"],
    ),
    "classes_ values not of their dtype": (
        "classifier-binary-int",
        set_key("attributes", "classes_", "values", ["3", "7"]),
        ["classes_", "'<i8'"],
    ),
    "classes_ string wider than its dtype": (
        "classifier-multiclass-str",
        set_key("attributes", "classes_", "values", ["cat", "dog", "eelpout"]),
        ["classes_", "'<U3'", "eelpout"],
    ),
    "classes_ not sorted": (
        "classifier-multiclass-str",
        set_key("attributes", "classes_", "values", ["dog", "cat", "eel"]),
        ["classes_", "sorted"],
    ),
    "classes_ count against the outputs": (
        "classifier-multiclass-str",
        set_key("attributes", "classes_", "values", ["cat", "dog", "eel", "fox"]),
        ["classes_", "4", "3 outputs"],
    ),
    "integer out of range for classes_ dtype": (
        "classifier-binary-int",
        set_key("attributes", "classes_", "values", [3, 2**70]),
        ["classes_"],
    ),
    "unknown y_type": (
        "classifier-binary-int",
        set_key("attributes", "label_binarizer", "y_type", "continuous"),
        ["y_type", "continuous"],
    ),
    "multilabel classes not 0..n-1": (
        "classifier-multilabel",
        set_key("attributes", "classes_", "values", [0, 1, 5]),
        ["classes_", "multilabel"],
    ),
    "n_features_in_ against the network": (
        "classifier-multiclass-str",
        set_key("attributes", "n_features_in_", 5),
        ["n_features_in_", "5", "4 inputs"],
    ),
    "feature names count": (
        "regressor-early-stopping-frame",
        set_key("attributes", "feature_names_in_", ["u", "g"]),
        ["feature_names_in_", "2"],
    ),
    "n_layers_ against the network": (
        "autoencoder",
        set_key("attributes", "n_layers_", 4),
        ["n_layers_"],
    ),
    "output activation against the network": (
        "classifier-multiclass-str",
        set_key("attributes", "out_activation_", "logistic"),
        ["out_activation_", "logistic"],
    ),
    "gaussian_nll output width": (
        "regressor-gaussian-nll",
        set_key("attributes", "n_outputs_", 2),
        ["n_outputs_", "2"],
    ),
    "autoencoder bottleneck": (
        "autoencoder",
        set_key("network", "activations", ["tanh", "tanh", "tanh", "identity"]),
        ["bottleneck"],
    ),
    "network shapes against params.npy": (
        "autoencoder",
        set_key("network", "n_params", 10),
        ["parameters", "10"],
    ),
    "network layer sizes": (
        "classifier-binary-int",
        set_key("network", "layer_sizes", [4, 6, 1]),
        ["need", "parameters"],
    ),
    "ensemble without members": (
        "ensemble-classifier-bootstrap",
        set_key("attributes", "estimators_", []),
        ["estimators_"],
    ),
    "ensemble member of another class": (
        "ensemble-classifier-bootstrap",
        set_key("attributes", "estimators_", 0, "class", "MLPRegressor"),
        ["estimators_[0]", "MLPRegressor"],
    ),
    "ensemble member with foreign classes": (
        "ensemble-classifier-bootstrap",
        set_key("attributes", "classes_", "values", ["cat", "dog"]),
        ["estimators_", "classes_"],
    ),
    "ensemble template of another class": (
        "ensemble-classifier-bootstrap",
        set_key("params", "estimator", {"class": "MLPAutoencoder", "params": {}}),
        ["estimator", "MLPAutoencoder"],
    ),
    "a NaN constant": (
        "autoencoder",
        set_key("attributes", "loss_", float("nan")),
        ["NaN"],
    ),
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_tampered_headers_are_refused_naming_the_problem(saved, tmp_path, tampering):
    case, edit, fragments = TAMPERINGS[tampering]
    refused(edited(saved, case, tmp_path, edit), *fragments)


def test_members_missing_extra_or_of_the_wrong_shape(saved, tmp_path):
    refused(
        edited(saved, "autoencoder", tmp_path, members={"params.npy": None}),
        "expected the members",
    )
    refused(
        edited(saved, "autoencoder", tmp_path, members={"extra.npy": npy_bytes([1.0])}),
        "'extra.npy'",
    )
    refused(
        edited(
            saved,
            "ensemble-classifier-bootstrap",
            tmp_path,
            members={"estimators_/1/params.npy": None},
        ),
        "expected the members",
        "estimators_/1/params.npy",
    )
    params = read_members(saved["autoencoder"])["params.npy"]
    short = npy_bytes(np.load(saved["autoencoder"])["params"][:-1])
    assert short != params
    refused(edited(saved, "autoencoder", tmp_path, members={"params.npy": short}), "params.npy")
    refused(
        edited(
            saved,
            "autoencoder",
            tmp_path,
            members={
                "params.npy": npy_bytes(np.load(saved["autoencoder"])["params"].astype("<f4"))
            },
        ),
        "'<f4'",
    )


def test_truncated_and_bit_flipped_estimator_files(saved, tmp_path):
    data = saved["ensemble-classifier-bootstrap"].read_bytes()
    path = tmp_path / "damaged.npz"
    for length in (0, 10, len(data) // 3, len(data) - 1):
        path.write_bytes(data[:length])
        refused(path)
    rng = np.random.default_rng(5)
    reference = nnfast.load(saved["ensemble-classifier-bootstrap"])
    for position in rng.choice(len(data), 300, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 0x04
        path.write_bytes(bytes(damaged))
        try:
            loaded = nnfast.load(path)
        except ValueError:
            continue
        # Only ZIP metadata nobody reads can change without a refusal.
        assert_same_estimator(reference, loaded)


def test_saving_while_another_thread_refits_writes_one_consistent_model(tmp_path):
    """A fit installs its state whole (nnfast/sklearn/_state.py) and save reads the state
    once: a file written during refits of another input width holds the old model or the
    new one, never the width of one with the network of the other (load would refuse it)."""
    import threading

    estimator = fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0), X, Y_REG)
    done = threading.Event()

    def refit():
        try:
            for i in range(30):
                fit(estimator, X[:, : 2 + 2 * (i % 2)], Y_REG)
        finally:
            done.set()

    thread = threading.Thread(target=refit)
    thread.start()
    widths = set()
    try:
        while not done.is_set():
            nnfast.save(estimator, tmp_path / "m.npz")
            loaded = nnfast.load(tmp_path / "m.npz")
            widths.add(loaded.n_features_in_)
            assert loaded.predict(np.zeros((1, loaded.n_features_in_))).shape == (1,)
    finally:
        thread.join()
    assert widths <= {2, 4}
