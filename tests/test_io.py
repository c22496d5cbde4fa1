"""nnfast.save / nnfast.load: exact round trips, and every malformed file refused safely.

Malformed files are crafted byte by byte: truncated, bit-flipped, wrong version, object
arrays carrying a pickle that would create a marker file if it ever ran, a pickle named
.npz, headers and ZIP entries claiming huge sizes, wrong dtypes, wrong lengths. Each must
raise ValueError saying what is wrong, run no code and allocate nothing large.
"""

import io
import json
import pathlib
import pickle
import re
import struct
import warnings
import zipfile

import numpy as np
import pytest
from conftest import bits

import nnfast
from nnfast._spec import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS


def random_net(hidden, output, dtype, seed=0):
    net = nnfast.MLP(
        [3, 5, 4, 2],
        activation=hidden,
        output_activation=output,
        dtype=dtype,
        seed=seed,
        leaky_slope=0.05,
        elu_alpha=0.7,
        maxout_pieces=3,
    )
    # Random finite values of every magnitude, including subnormals and -0.0.
    rng = np.random.default_rng(seed)
    values = rng.normal(size=net.n_params) * 10.0 ** rng.integers(-30, 30, net.n_params)
    values = values.astype(dtype)
    values[0] = np.finfo(dtype).smallest_subnormal
    values[1] = -0.0
    net.params = values
    return net


def npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def header_of(net, **changes):
    header = {
        "format": "nnfast.MLP",
        "version": 1,
        "layer_sizes": list(net.layer_sizes),
        "activations": list(net.activations),
        "dtype": net.dtype.name,
        "leaky_slope": net.leaky_slope,
        "elu_alpha": net.elu_alpha,
        "maxout_pieces": net.maxout_pieces,
        "n_params": net.n_params,
    }
    header.update(changes)
    return header


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def crafted(path, net, header=None, params=None, **changes):
    """An archive like save's, with the header fields or the params array replaced."""
    header = header_of(net, **changes) if header is None else header
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    params = net.params if params is None else params
    return write_zip(
        path,
        {
            "header.npy": npy(np.frombuffer(text, dtype=np.uint8)),
            "params.npy": params if isinstance(params, bytes) else npy(params),
        },
    )


def refused(path, *fragments):
    with pytest.raises(ValueError) as info:
        nnfast.load(path)
    message = str(info.value)
    assert str(path) in message and "not a valid nnfast network file" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


class Marker:
    """Unpickling this creates the marker file: proof that code from a file ran."""

    path = None

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


@pytest.fixture
def marker(tmp_path):
    Marker.path = str(tmp_path / "code-ran")
    yield tmp_path / "code-ran"
    assert not (tmp_path / "code-ran").exists(), "loading ran code from the file"


# ------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
def test_round_trip_is_bit_exact(hidden, output, dtype, tmp_path):
    net = random_net([hidden, "tanh"], output, dtype)
    path = tmp_path / "net.npz"
    nnfast.save(net, path)
    loaded = nnfast.load(path)
    assert loaded.layer_sizes == net.layer_sizes and loaded.activations == net.activations
    assert loaded.dtype == net.dtype
    assert (loaded.leaky_slope, loaded.elu_alpha, loaded.maxout_pieces) == (0.05, 0.7, 3)
    assert bits(loaded.params) == bits(net.params)
    X = np.random.default_rng(1).normal(size=(4, 3)).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights: inf outputs are fine
        assert bits(loaded.predict(X)) == bits(net.predict(X))
    assert np.shares_memory(loaded.weights[0], loaded.params)


def test_file_is_plain_npz_with_a_json_header(tmp_path):
    net = nnfast.MLP([1, 20, 20, 1], seed=0)
    nnfast.save(net, str(tmp_path / "seed.npz"))
    with np.load(tmp_path / "seed.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["header", "params"]
        header = json.loads(bytes(data["header"]))
        assert header["format"] == "nnfast.MLP" and header["version"] == 2
        assert header["layer_sizes"] == [1, 20, 20, 1] and header["n_params"] == 481
        assert bits(data["params"]) == bits(net.params)
    with zipfile.ZipFile(tmp_path / "seed.npz") as archive:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "net.npz"
    nnfast.save(nnfast.MLP([2, 3, 1], seed=0), path)
    second = nnfast.MLP([2, 4, 1], seed=1)
    nnfast.save(second, path)
    assert nnfast.load(path).layer_sizes == (2, 4, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


def test_save_and_load_bad_arguments(tmp_path):
    with pytest.raises(
        TypeError,
        match="net: expected an nnfast.MLP or a fitted nnfast.sklearn estimator .*got dict",
    ):
        nnfast.save({}, tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError):
        nnfast.load(tmp_path / "missing.npz")


# ------------------------------------------------------------------------------------------
# Damaged files
# ------------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    net = random_net(["maxout", "elu"], "softmax", "float64", seed=3)
    path = tmp_path / "net.npz"
    nnfast.save(net, path)
    return net, path, path.read_bytes()


def test_truncated_files(saved, tmp_path):
    net, _, data = saved
    for length in [0, 3, 4, 30, len(data) // 2, len(data) - 22, len(data) - 1]:
        path = tmp_path / f"cut{length}.npz"
        path.write_bytes(data[:length])
        refused(path)


def test_every_single_bit_flip_is_refused_or_harmless(saved, tmp_path):
    """Flip one bit in every byte: either ValueError, or (a flip in ZIP metadata nobody
    reads, such as a timestamp) the very same network."""
    net, _, data = saved
    path = tmp_path / "flipped.npz"
    refusals = 0
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        path.write_bytes(bytes(damaged))
        try:
            loaded = nnfast.load(path)
        except ValueError:
            refusals += 1
            continue
        assert bits(loaded.params) == bits(net.params), position
        assert loaded.activations == net.activations and loaded.layer_sizes == net.layer_sizes
    assert refusals > 0.9 * len(data)


@pytest.mark.parametrize("bit", range(16))
def test_every_general_purpose_flag_bit_is_refused_or_harmless(saved, tmp_path, bit):
    """Each of the 16 flag bits of every local and central ZIP header (encryption, data
    descriptors, patches...): ValueError or the very same network, never another error.
    (Found by the long fuzz run: an encrypted member made zipfile raise RuntimeError.)"""
    net, _, data = saved
    path = tmp_path / "flagged.npz"
    headers = [(m.start() + 6, "local") for m in re.finditer(b"PK\x03\x04", data)]
    headers += [(m.start() + 8, "central") for m in re.finditer(b"PK\x01\x02", data)]
    assert len(headers) == 4
    for offset, kind in headers:
        damaged = bytearray(data)
        flags = struct.unpack_from("<H", damaged, offset)[0] ^ (1 << bit)
        struct.pack_into("<H", damaged, offset, flags)
        path.write_bytes(bytes(damaged))
        try:
            loaded = nnfast.load(path)
        except ValueError as err:
            if bit == 0 and kind == "central":
                assert "encrypted" in str(err)
            continue
        assert bits(loaded.params) == bits(net.params), (offset, kind)


def test_flips_in_the_data_are_caught_by_the_crc(saved, tmp_path):
    net, _, data = saved
    start = data.index(bits(net.params[:4]))
    damaged = bytearray(data)
    damaged[start + 17] ^= 0x01
    path = tmp_path / "crc.npz"
    path.write_bytes(bytes(damaged))
    refused(path, "params.npy", "corrupted")


# ------------------------------------------------------------------------------------------
# Crafted files
# ------------------------------------------------------------------------------------------


def test_wrong_format_or_version(saved, tmp_path):
    net = saved[0]
    refused(crafted(tmp_path / "v3.npz", net, version=3), "format version 3 is not supported")
    # Network files of versions 1 (nnfast 0.1.0, as crafted here) and 2 (written now) load.
    assert bits(nnfast.load(crafted(tmp_path / "v2.npz", net, version=2)).params) == bits(
        net.params
    )
    refused(crafted(tmp_path / "v0.npz", net, version=True), "format version True")
    refused(crafted(tmp_path / "fmt.npz", net, format="keras"), "'format' is 'keras'")


def test_object_arrays_never_unpickled(saved, tmp_path, marker):
    net = saved[0]
    payload = np.array([Marker(), 1.0], dtype=object)
    refused(
        crafted(tmp_path / "obj.npz", net, params=npy(payload, allow_pickle=True)),
        "dtype '|O'",
        "object arrays are never loaded",
    )
    header = np.array([Marker()], dtype=object)
    path = write_zip(
        tmp_path / "objhdr.npz",
        {"header.npy": npy(header, allow_pickle=True), "params.npy": npy(net.params)},
    )
    refused(path, "header.npy", "dtype '|O'")


def test_a_pickle_named_npz(saved, tmp_path, marker):
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps({"net": saved[0], "payload": Marker()}))
    refused(path, "looks like a pickle", "never loads pickles")
    path.write_bytes(pickle.dumps(Marker(), protocol=0))  # text protocol: starts with "c"
    refused(path, "expected a ZIP (.npz) archive")


def test_huge_declared_shapes_are_refused_before_allocating(saved, tmp_path):
    net = saved[0]
    # A .npy header claiming 10^15 float64 values (8 PB) followed by a few bytes.
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**15,)}
    )
    fake = buffer.getvalue() + bytes(32)
    refused(
        crafted(tmp_path / "huge.npz", net, params=fake),
        "declares 1000000000000000 values",
        "holds 32 bytes",
    )
    # A ZIP entry whose central directory claims ~4 GB uncompressed.
    good = tmp_path / "good.npz"
    nnfast.save(net, good)
    data = bytearray(good.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", 0xFFFFFFF0)
    path = tmp_path / "zipsize.npz"
    path.write_bytes(bytes(data))
    refused(path, "declares 4294967280 bytes, more than the whole file")
    # A network so large that its parameters could not be in the file.
    refused(
        crafted(
            tmp_path / "layers.npz",
            net,
            layer_sizes=[10**6, 10**6, 10**6, 10**6],
            n_params=3 * 10**12,
        ),
        "parameters; the header says 3000000000000",
        "params.npy holds 94",
    )


def test_wrong_dtypes(saved, tmp_path):
    net = saved[0]
    refused(
        crafted(tmp_path / "int.npz", net, params=np.zeros(net.n_params, np.int64)), "dtype '<i8'"
    )
    refused(
        crafted(tmp_path / "f32.npz", net, params=np.zeros(net.n_params, np.float32)),
        "dtype '<f4'",
        "'<f8'",
    )
    refused(crafted(tmp_path / "f16.npz", net, dtype="float16"), "'dtype' is 'float16'")
    refused(crafted(tmp_path / "big.npz", net, params=np.zeros(net.n_params, ">f8")), "'>f8'")
    fortran = npy(np.asfortranarray(np.zeros((2, 3))))
    refused(crafted(tmp_path / "2d.npz", net, params=fortran), "expected a 1-D array")


def test_params_length_mismatch(saved, tmp_path):
    net = saved[0]
    refused(
        crafted(tmp_path / "short.npz", net, params=net.params[:-1]),
        f"need {net.n_params} parameters",
        f"holds {net.n_params - 1}",
    )
    refused(
        crafted(tmp_path / "count.npz", net, n_params=net.n_params + 1),
        f"the header says {net.n_params + 1}",
    )
    nan = net.params.copy()
    nan[5] = np.nan
    refused(crafted(tmp_path / "nan.npz", net, params=nan), "NaN or infinite")


def test_bad_headers(saved, tmp_path):
    net = saved[0]
    refused(crafted(tmp_path / "json.npz", net, header=b"{not json"), "not valid UTF-8 JSON")
    refused(crafted(tmp_path / "utf.npz", net, header=b"\xff\xfe"), "not valid UTF-8 JSON")
    refused(
        crafted(tmp_path / "deep.npz", net, header=b"[" * 100000 + b"]" * 100000),
        "not valid UTF-8 JSON",
    )
    refused(crafted(tmp_path / "list.npz", net, header=b"[1, 2]"), "header is a list")
    header = header_of(net)
    del header["elu_alpha"]
    refused(crafted(tmp_path / "missing.npz", net, header=header), "missing: ['elu_alpha']")
    refused(
        crafted(tmp_path / "extra.npz", net, header={**header_of(net), "code": "rm"}),
        "unknown header fields: ['code']",
    )
    refused(
        crafted(tmp_path / "act.npz", net, activations=["maxout", "gelu", "softmax"]),
        "describes no valid network",
        "gelu",
    )
    refused(crafted(tmp_path / "nacts.npz", net, activations=["tanh"]), "1 activations")
    refused(crafted(tmp_path / "sizes.npz", net, layer_sizes="3,5,4,2"), "expected a list")
    refused(
        crafted(tmp_path / "neg.npz", net, layer_sizes=[3, -5, 4, 2]), "describes no valid network"
    )


def test_wrong_members(saved, tmp_path):
    net = saved[0]
    header = npy(np.frombuffer(json.dumps(header_of(net)).encode(), dtype=np.uint8))
    refused(write_zip(tmp_path / "one.npz", {"header.npy": header}), "expected the members")
    refused(
        write_zip(
            tmp_path / "three.npz",
            {"header.npy": header, "params.npy": npy(net.params), "evil.py": b"print(1)"},
        ),
        "'evil.py'",
    )
    refused(
        write_zip(
            tmp_path / "deflate.npz",
            {"header.npy": header, "params.npy": npy(net.params)},
            compression=zipfile.ZIP_DEFLATED,
        ),
        "is compressed",
    )
    refused(
        crafted(tmp_path / "npyv9.npz", net, params=b"\x93NUMPY\x09\x00" + b"\x00" * 40),
        "params.npy",
    )
    (tmp_path / "text.npz").write_text("hello")
    refused(tmp_path / "text.npz", "expected a ZIP (.npz) archive")


def raw_npy(header_text, payload=b"", version=(1, 0)):
    """A .npy member with ``header_text`` as its header, verbatim (padded as numpy pads)."""
    body = header_text.encode("utf-8" if version == (3, 0) else "latin1")
    length_format = "<H" if version == (1, 0) else "<I"
    before = 8 + struct.calcsize(length_format)
    body += b" " * ((-(before + len(body) + 1)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(body)) + body + payload


def params_header(shape="(94,)", descr="'<f8'", fortran="False"):
    return f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"


# Headers numpy's own parser (ast.literal_eval, then a Python-2 tokenizer fallback, then
# np.dtype) answers with exceptions other than ValueError, or with a warning.
NUMPY_PARSER_ESCAPES = {
    "tokenize.TokenError": "{'descr': '<f8', 'fortran_order': False, 'shape': (",
    "TypeError": "{[]: 1}",
    "RecursionError": params_header(shape="(" + "-" * 3000 + "94,)"),
    "SyntaxError": params_header(descr="',f4'"),
    "UserWarning (Python 2 long)": params_header(shape="(94L,)"),
}


@pytest.mark.parametrize("warning_filter", ["error", "always"])
@pytest.mark.parametrize("escape", NUMPY_PARSER_ESCAPES)
def test_npy_headers_that_numpys_parser_mishandles_are_a_value_error(
    saved, tmp_path, escape, warning_filter
):
    """Each header once escaped as its own exception (or loaded with a UserWarning, which
    warnings-as-errors turns into an exception): now a ValueError, and no warning."""
    net, _, _ = saved
    assert net.n_params == 94
    member = raw_npy(NUMPY_PARSER_ESCAPES[escape], bits(net.params))
    for name in ("params", "header"):
        path = tmp_path / f"{name}.npz"
        if name == "params":
            crafted(path, net, params=member)
        else:
            write_zip(path, {"header.npy": member, "params.npy": npy(net.params)})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter(warning_filter)
            refused(path, f"{name}.npy")
        assert caught == []


def test_npy_header_refusals_name_the_problem(saved, tmp_path):
    net, _, _ = saved
    payload = bits(net.params)
    cases = [
        (params_header(descr="[('a', '<f8')]"), "descr"),
        (params_header(descr="'<f8' 'x'"), "header"),
        (params_header(fortran="1"), "fortran_order"),
        (params_header(shape="(94, 'a')"), "shape"),
        (params_header(shape="(-94,)"), "shape"),
        (params_header(shape="(7" + "1" * 40 + ",)"), "shape"),
        (params_header() + "{}", "header"),
        ("{'descr': '<f8', 'fortran_order': False}", "['shape'] missing"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (94,), 'x': 1}", "unknown key 'x'"),
        (
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (94,)}",
            "key 'descr' twice",
        ),
        ("[1, 2]", "header"),
        ("", "header"),
    ]
    for i, (text, fragment) in enumerate(cases):
        path = crafted(tmp_path / f"h{i}.npz", net, params=raw_npy(text, payload))
        refused(path, "params.npy", fragment)
    # The header length field pointing past the member, and a header that is not latin-1.
    short = b"\x93NUMPY\x01\x00" + struct.pack("<H", 60000) + b"{}"
    refused(crafted(tmp_path / "len.npz", net, params=short), "params.npy", "header")
    utf = raw_npy(params_header(), payload, version=(3, 0)).replace(b"'<f8'", b"'\xff\xfe8'")
    refused(crafted(tmp_path / "utf.npz", net, params=utf), "params.npy", "not valid utf-8")
    huge = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{"
    refused(crafted(tmp_path / "hlen.npz", net, params=huge), "params.npy", "header")


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_versions_1_2_and_3_load(saved, tmp_path, version):
    net, _, _ = saved
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, net.params, version=version)
    loaded = nnfast.load(crafted(tmp_path / "v.npz", net, params=buffer.getvalue()))
    assert bits(loaded.params) == bits(net.params)
    # Hand-written headers: keys in any order, double quotes, no trailing comma.
    text = '{"shape": (94,), "fortran_order": False, "descr": "<f8"}'
    loaded = nnfast.load(
        crafted(tmp_path / "h.npz", net, params=raw_npy(text, bits(net.params), version))
    )
    assert bits(loaded.params) == bits(net.params)


def test_saved_network_keeps_training(saved, tmp_path):
    net = nnfast.MLP([1, 8, 1], seed=0)
    x = np.linspace(-1, 1, 20)[:, None]
    net.fit(x, x**2, epochs=5)
    nnfast.save(net, tmp_path / "a.npz")
    loaded = nnfast.load(tmp_path / "a.npz")
    loaded.fit(x, x**2, epochs=5, shuffle=False)
    assert loaded.loss(x, x**2) < net.loss(x, x**2)
