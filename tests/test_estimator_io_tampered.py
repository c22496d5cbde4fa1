"""Tampered estimator files are refused with a ValueError naming what is wrong (header
keys, values and types; missing, extra or misshapen members; truncation and bit flips),
and a save during a refit in another thread writes one consistent model."""

import copy
import json
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("sklearn")


from estimator_cases import (  # noqa: E402
    Y_REG,
    X,
    assert_identical,
    assert_same_estimator,
    fit,
    header_of,
)

import nnfast  # noqa: E402
from nnfast.sklearn import (  # noqa: E402
    MLPRegressor,
)

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
