"""Fuzz cases of ``nnfast.load``: random bytes, truncated and damaged files, and
well-formed archives with one crafted header field or parameter dtype.

Whatever the file holds, ``load`` returns a network with finite parameters that predicts,
or raises ``ValueError`` saying the file is not a valid nnfast network file. Run by
``test_fuzz.py`` in a child process.
"""

import io
import json
import os
import zipfile

import numpy as np
from fuzz_harness import fuzz
from fuzz_inputs import JSON
from hypothesis import given
from hypothesis import strategies as st

import nnfast


def _saved_bytes():
    net = nnfast.MLP([2, 3, 1], seed=0)
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"fuzz-{os.getpid()}.npz")
    nnfast.save(net, path)
    with open(path, "rb") as handle:
        data = handle.read()
    os.remove(path)
    return net, data


SAVED_NET, SAVED = _saved_bytes()


def _load_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("load") / "net.npz"
    path.write_bytes(data)
    return path


def _check_load(path):
    try:
        net = nnfast.load(path)
    except ValueError as err:
        assert "not a valid nnfast network file" in str(err)
        return None
    assert np.isfinite(net.params).all()
    assert net.predict(np.zeros(net.layer_sizes[0])).shape == (net.layer_sizes[-1],)
    return net


@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b),
        st.integers(0, len(SAVED)).map(lambda k: SAVED[:k]),
    )
)
@fuzz(250)
def test_load_random_and_damaged_bytes(tmp_path_factory, data):
    _check_load(_load_bytes(tmp_path_factory, data))


@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(SAVED) - 1), st.integers(0, 255)), min_size=1, max_size=8
    )
)
@fuzz(200)
def test_load_multi_byte_damage(tmp_path_factory, edits):
    raw = bytearray(SAVED)
    for index, value in edits:
        raw[index] = value
    net = _check_load(_load_bytes(tmp_path_factory, bytes(raw)))
    if net is not None:  # damage that zipfile's CRC cannot see must be harmless
        assert net.layer_sizes == SAVED_NET.layer_sizes


@given(
    field=st.sampled_from(
        [
            "format",
            "version",
            "layer_sizes",
            "activations",
            "dtype",
            "leaky_slope",
            "elu_alpha",
            "maxout_pieces",
            "n_params",
            "extra",
        ]
    ),
    value=st.one_of(
        JSON,
        st.sampled_from(
            [[2, 10**12, 1], [2**62, 2**62, 1], ["tanh", "identity"], 1e308, -1, "float16"]
        ),
    ),
    params_dtype=st.sampled_from(["<f8", "<f4", ">f8", "|O", "<c16", "<i8"]),
)
@fuzz(200)
def test_load_crafted_headers(tmp_path_factory, field, value, params_dtype):
    header = {
        "format": "nnfast.MLP",
        "version": 1,
        "layer_sizes": [2, 3, 1],
        "activations": ["tanh", "identity"],
        "dtype": "float64",
        "leaky_slope": 0.1,
        "elu_alpha": 1.0,
        "maxout_pieces": 2,
        "n_params": 13,
    }
    header[field] = value
    text = json.dumps(header).encode()
    params = np.arange(13, dtype=np.float64).astype(params_dtype)
    members = {}
    for name, array in (
        ("header.npy", np.frombuffer(text, dtype=np.uint8)),
        ("params.npy", params),
    ):
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=True)
        members[name] = buffer.getvalue()
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    net = _check_load(_load_bytes(tmp_path_factory, raw.getvalue()))
    if net is not None:
        assert params_dtype == "<f8" and net.params.tolist() == list(range(13))
