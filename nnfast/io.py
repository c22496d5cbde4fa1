"""Saving and loading networks: a versioned ``.npz`` of plain arrays, never pickle.

A saved network is a ZIP archive (uncompressed, NumPy's ``.npz`` layout) of two ``.npy``
members:

- ``header.npy``: uint8, the UTF-8 bytes of a JSON object ``{"format": "nnfast.MLP",
  "version": 1, "layer_sizes": [...], "activations": [...] (one per layer, output last),
  "dtype": "float32" | "float64", "leaky_slope": ..., "elu_alpha": ...,
  "maxout_pieces": ..., "n_params": ...}``;
- ``params.npy``: the flat parameter buffer, 1-D little-endian float32 or float64.

``np.load(path)`` reads it too. :func:`load` does not use ``np.load``: it checks the file
byte by byte before trusting it — the ZIP structure and CRCs, the member names, that every
member is stored uncompressed with a declared size no larger than the file itself (so a
crafted header cannot make it allocate more than the file's size), the ``.npy`` headers
(parsed by nnfast's own strict patterns, never executed nor handed to numpy's parser;
object and non-float dtypes refused), that the data
length matches the declared shape exactly, then every JSON field — and raises
``ValueError`` naming what is wrong. It never unpickles and never runs code from the file.
The round trip is exact to the bit for every activation and dtype.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tempfile
import zipfile

import numpy as np

from nnfast._spec import DTYPES, build_spec
from nnfast.network import MLP

__all__ = ["save", "load", "FORMAT", "VERSION"]

FORMAT = "nnfast.MLP"
VERSION = 1
_MEMBERS = ("header.npy", "params.npy")
# What zipfile raises on damaged archives (besides BadZipFile: short reads, bad fields).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    UnicodeDecodeError,
    OverflowError,
)
_FIELDS = (
    "format",
    "version",
    "layer_sizes",
    "activations",
    "dtype",
    "leaky_slope",
    "elu_alpha",
    "maxout_pieces",
    "n_params",
)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def save(net: MLP, path) -> None:
    """Write ``net`` to ``path`` (a ``.npz`` file; the name is used as given).

    The file is written next to its destination and renamed into place, so an interrupted
    save never leaves a half-written file under ``path``.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net: expected an nnfast.MLP, got {type(net).__name__}")
    if net.target_scaling is not None:  # format version 1 has no field for it
        raise ValueError(
            "save: this network has a target_scaling (fit(..., standardize_targets=True)), "
            "which the file format does not store yet; save its parameters and "
            "net.target_scaling yourself, or set net.target_scaling = None first"
        )
    path = os.fspath(path)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "layer_sizes": list(net.layer_sizes),
        "activations": list(net.activations),
        "dtype": net.dtype.name,
        "leaky_slope": net.leaky_slope,
        "elu_alpha": net.elu_alpha,
        "maxout_pieces": net.maxout_pieces,
        "n_params": net.n_params,
    }
    header_bytes = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    params = net.params.astype(net.dtype.newbyteorder("<"), copy=False)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nnfast-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr("header.npy", _npy_bytes(header_bytes))
                archive.writestr("params.npy", _npy_bytes(params))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _fail(path, what: str):
    raise ValueError(f"{path}: not a valid nnfast network file: {what}")


def _read_member(archive: zipfile.ZipFile, name: str, path, file_size: int) -> bytes:
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        _fail(path, f"member {name!r} is compressed (nnfast writes stored members only)")
    if info.flag_bits & 0x1:  # zipfile would raise RuntimeError("... password required")
        _fail(path, f"member {name!r} is encrypted (nnfast writes plain members only)")
    if info.file_size > file_size or info.compress_size > file_size:
        _fail(
            path,
            f"member {name!r} declares {info.file_size} bytes, more than the whole "
            f"file ({file_size} bytes): truncated or crafted",
        )
    try:
        return archive.read(name)
    except _ZIP_ERRORS as err:
        _fail(path, f"member {name!r} is corrupted or truncated ({type(err).__name__}: {err})")


_NPY_MAGIC = b"\x93NUMPY"
# Per .npy version: the header-length field and the header's encoding.
_NPY_VERSIONS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf-8")}
# numpy's own limit on a header it parses without allow_pickle; nnfast's take 118 bytes.
_NPY_MAX_HEADER = 10_000
_NPY_KEYS = ("descr", "fortran_order", "shape")
# The header is a Python dict literal, parsed here by these patterns rather than by numpy
# (ast.literal_eval, a Python 2 tokenizer fallback, np.dtype): those raise TokenError,
# TypeError, RecursionError or SyntaxError on crafted text, or warn. Only what numpy writes
# for a plain array is accepted: a dtype string, a bool, a tuple of at most 32
# non-negative integers of at most 20 digits.
_NPY_KEY = re.compile(r"""\s*(['"])(\w{1,32})\1\s*:\s*""")
_NPY_VALUES = {
    "descr": (re.compile(r"""(['"])([^'"\\]{1,32})\1"""), "a dtype string"),
    "fortran_order": (re.compile(r"(True|False)\b"), "True or False"),
    "shape": (
        re.compile(r"\(\s*((?:\d{1,20}\s*,\s*){0,32}(?:\d{1,20}\s*)?)\)"),
        "a tuple of non-negative integers",
    ),
}
_NPY_SEPARATOR = re.compile(r"\s*(,)?\s*")


def _npy_header_dict(text: str) -> dict:
    """The ``{'descr': ..., 'fortran_order': ..., 'shape': ...}`` of a .npy header;
    ValueError (with the reason) for anything else."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"expected a dict literal, got {text[:60]!r}")
    body, header = text[1:-1], {}
    position = _NPY_SEPARATOR.match(body).end() if not body.strip() else 0
    while position < len(body):
        key_match = _NPY_KEY.match(body, position)
        if key_match is None:
            raise ValueError(f"expected a quoted key at {body[position : position + 40]!r}")
        key = key_match.group(2)
        if key not in _NPY_KEYS:
            raise ValueError(f"unknown key {key!r} (expected {list(_NPY_KEYS)})")
        if key in header:
            raise ValueError(f"key {key!r} twice")
        pattern, expected = _NPY_VALUES[key]
        value_match = pattern.match(body, key_match.end())
        if value_match is None:
            value_text = body[key_match.end() : key_match.end() + 40]
            raise ValueError(f"{key!r} is not {expected}: {value_text!r}")
        if key == "descr":
            header[key] = value_match.group(2)
        elif key == "fortran_order":
            header[key] = value_match.group(1) == "True"
        else:
            items = value_match.group(1).split(",")
            if len(items) == 1 and items[0].strip():
                raise ValueError(
                    f"'shape' is not a tuple (one item needs a trailing comma): "
                    f"{value_match.group(0)!r}"
                )
            header[key] = tuple(int(item) for item in items if item.strip())
        separator = _NPY_SEPARATOR.match(body, value_match.end())
        position = separator.end()
        if separator.group(1) is None and position != len(body):
            raise ValueError(f"expected ',' or '}}' at {body[position : position + 40]!r}")
    missing = [key for key in _NPY_KEYS if key not in header]
    if missing:
        raise ValueError(f"{missing} missing (expected the keys {list(_NPY_KEYS)})")
    return header


def _npy_header(data: bytes) -> tuple[dict, int]:
    """(header dict, offset of the array data) of a .npy member; ValueError otherwise."""
    if data[:6] != _NPY_MAGIC:
        raise ValueError(f"expected the .npy magic {_NPY_MAGIC!r}, got {data[:6]!r}")
    version = tuple(data[6:8])
    if version not in _NPY_VERSIONS:
        raise ValueError(f"version {version}, expected one of {list(_NPY_VERSIONS)}")
    length_format, encoding = _NPY_VERSIONS[version]
    start = 8 + struct.calcsize(length_format)
    if len(data) < start:
        raise ValueError("the header length is truncated")
    (length,) = struct.unpack_from(length_format, data, 8)
    if length > _NPY_MAX_HEADER:
        raise ValueError(f"the header declares {length} bytes (at most {_NPY_MAX_HEADER})")
    if len(data) < start + length:
        raise ValueError(
            f"the header declares {length} bytes, the member holds {len(data) - start}: truncated"
        )
    try:
        text = data[start : start + length].decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"the header is not valid {encoding} ({err})") from None
    return _npy_header_dict(text), start + length


def _parse_npy(data: bytes, name: str, path, allowed_dtypes) -> np.ndarray:
    """A 1-D array from ``.npy`` bytes; header parsed as a literal, sizes checked first."""
    try:
        header, offset = _npy_header(data)
    except ValueError as err:
        _fail(path, f"member {name!r} has an invalid .npy header ({err})")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if descr not in allowed_dtypes:
        _fail(
            path,
            f"member {name!r} has dtype {descr!r}, expected one of "
            f"{sorted(allowed_dtypes)} (object arrays are never loaded)",
        )
    if fortran or len(shape) != 1:
        _fail(
            path,
            f"member {name!r} has shape {shape} (fortran_order={fortran}), expected a 1-D array",
        )
    dtype = np.dtype(descr)  # one of the few plain dtype strings allowed above
    payload = len(data) - offset
    expected = shape[0] * dtype.itemsize
    if payload != expected:
        _fail(
            path,
            f"member {name!r} declares {shape[0]} values ({expected} bytes) but holds "
            f"{payload} bytes: truncated or crafted",
        )
    return np.frombuffer(data, dtype=dtype, count=shape[0], offset=offset).copy()


def _check_header(header, path):
    if not isinstance(header, dict):
        _fail(path, f"the JSON header is a {type(header).__name__}, expected an object")
    if header.get("format") != FORMAT:
        _fail(path, f"header 'format' is {header.get('format')!r}, expected {FORMAT!r}")
    version = header.get("version")
    if version != VERSION or isinstance(version, bool):
        _fail(
            path,
            f"format version {version!r} is not supported (this nnfast reads version {VERSION})",
        )
    missing = [field for field in _FIELDS if field not in header]
    if missing:
        _fail(path, f"header fields missing: {missing}")
    extra = sorted(set(header) - set(_FIELDS))
    if extra:
        _fail(path, f"unknown header fields: {extra}")
    if not isinstance(header["dtype"], str) or header["dtype"] not in DTYPES:
        _fail(path, f"header 'dtype' is {header['dtype']!r}, expected 'float32' or 'float64'")
    for field in ("layer_sizes", "activations"):
        if not isinstance(header[field], list):
            _fail(path, f"header {field!r} is {header[field]!r}, expected a list")
    activations = header["activations"]
    if len(activations) != len(header["layer_sizes"]) - 1:
        _fail(
            path,
            f"header has {len(activations)} activations for layer sizes "
            f"{header['layer_sizes']!r} (expected one per layer)",
        )
    if not all(isinstance(a, str) for a in activations) or not activations:
        _fail(path, f"header 'activations' is {activations!r}, expected a list of names")
    if not isinstance(header["n_params"], int) or isinstance(header["n_params"], bool):
        _fail(path, f"header 'n_params' is {header['n_params']!r}, expected an integer")


def load(path) -> MLP:
    """Read a network written by :func:`save`; ``ValueError`` says what is wrong otherwise."""
    path = os.fspath(path)
    file_size = os.path.getsize(path)  # FileNotFoundError for a missing file, as open()
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:1] == b"\x80" or magic[:2] in (b"(d", b"(l", b"}q"):
        _fail(path, "it looks like a pickle; nnfast never loads pickles (save with nnfast.save)")
    if magic != b"PK\x03\x04":
        _fail(path, f"expected a ZIP (.npz) archive, the file starts with {magic!r}")
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as err:
        _fail(path, f"the ZIP structure is corrupted or truncated ({type(err).__name__}: {err})")
    with archive:
        names = sorted(archive.namelist())
        if names != sorted(_MEMBERS):
            _fail(path, f"expected the members {list(_MEMBERS)}, got {names}")
        header_data = _read_member(archive, "header.npy", path, file_size)
        params_data = _read_member(archive, "params.npy", path, file_size)
    header_bytes = _parse_npy(header_data, "header.npy", path, {"|u1"})
    try:
        header = json.loads(header_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        _fail(path, f"the header is not valid UTF-8 JSON ({type(err).__name__}: {err})")
    _check_header(header, path)
    dtype = DTYPES[header["dtype"]]
    params = _parse_npy(params_data, "params.npy", path, {dtype.newbyteorder("<").str})
    try:
        spec = build_spec(
            header["layer_sizes"],
            header["activations"][:-1],
            header["activations"][-1],
            header["leaky_slope"],
            header["elu_alpha"],
            header["maxout_pieces"],
        )
    except (TypeError, ValueError) as err:
        _fail(path, f"the header describes no valid network ({err})")
    if header["n_params"] != spec.n_params or params.shape[0] != spec.n_params:
        _fail(
            path,
            f"layer sizes {list(spec.layer_sizes)} need {spec.n_params} parameters; "
            f"the header says {header['n_params']} and params.npy holds "
            f"{params.shape[0]}",
        )
    if not np.isfinite(params).all():
        _fail(path, "params.npy holds NaN or infinite values")
    net = MLP.__new__(MLP)
    net._setup(spec, dtype, np.ascontiguousarray(params, dtype=dtype), np.random.default_rng())
    net._seed = None
    return net
