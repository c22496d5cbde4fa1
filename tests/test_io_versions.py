"""Files of every earlier format version still load, with identical outputs.

``tests/data/v1/`` holds format-version-1 files written by nnfast 0.1.0 before version 2
existed (by ``tests/data/make_v1_files.py``, committed with them): each must load to the
bit, predict what it predicted then and save again as the current version.
"""

import json
import pathlib
import zipfile

import numpy as np
import pytest

import nnfast
import nnfast.io

V1 = pathlib.Path(__file__).resolve().parent / "data" / "v1"
V1_FILES = sorted(p.stem for p in V1.glob("*.npz") if p.name != "expected.npz")


def header_of(path):
    with zipfile.ZipFile(path) as archive:
        data = archive.read("header.npy")
    return json.loads(data[data.index(b"\n") + 1 :].decode("utf-8"))


def test_there_are_version_1_files_of_every_dtype():
    assert len(V1_FILES) == 6
    assert {header_of(V1 / f"{name}.npz")["version"] for name in V1_FILES} == {1}
    assert {header_of(V1 / f"{name}.npz")["dtype"] for name in V1_FILES} == {"float32", "float64"}


@pytest.mark.parametrize("name", V1_FILES)
def test_version_1_files_load_with_identical_outputs(name, tmp_path):
    with np.load(V1 / "expected.npz", allow_pickle=False) as expected:
        X, params, predicted = (expected[f"{name}.{key}"] for key in ("X", "params", "predict"))
    net = nnfast.load(V1 / f"{name}.npz")
    assert isinstance(net, nnfast.MLP)
    assert net.dtype == params.dtype
    assert net.params.tobytes() == params.tobytes()
    # The same parameters through the same kernels; a tolerance of a few ulps only for a
    # machine whose SIMD path rounds differently from the one that wrote the file.
    rtol = 1e-5 if net.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(net.predict(X), predicted, rtol=rtol, atol=0)
    # Saved again, it is a file of the current version that loads to the same network.
    nnfast.save(net, tmp_path / "again.npz")
    assert header_of(tmp_path / "again.npz")["version"] == nnfast.io.VERSION
    again = nnfast.load(tmp_path / "again.npz")
    assert again.params.tobytes() == params.tobytes()
    assert (again.layer_sizes, again.activations) == (net.layer_sizes, net.activations)
    assert (again.leaky_slope, again.elu_alpha, again.maxout_pieces) == (
        net.leaky_slope,
        net.elu_alpha,
        net.maxout_pieces,
    )


def test_the_current_version_is_2():
    assert nnfast.io.VERSION == 2
