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
(parsed as literals, never executed; object and non-float dtypes refused), that the data
length matches the declared shape exactly, then every JSON field — and raises
``ValueError`` naming what is wrong. It never unpickles and never runs code from the file.
The round trip is exact to the bit for every activation and dtype.
"""

from __future__ import annotations

import io
import json
import os
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
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
               struct.error, NotImplementedError, UnicodeDecodeError, OverflowError)
_FIELDS = ("format", "version", "layer_sizes", "activations", "dtype", "leaky_slope",
           "elu_alpha", "maxout_pieces", "n_params")


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
        _fail(path, f"member {name!r} declares {info.file_size} bytes, more than the whole "
                    f"file ({file_size} bytes): truncated or crafted")
    try:
        return archive.read(name)
    except _ZIP_ERRORS as err:
        _fail(path, f"member {name!r} is corrupted or truncated ({type(err).__name__}: {err})")


def _parse_npy(data: bytes, name: str, path, allowed_dtypes) -> np.ndarray:
    """A 1-D array from ``.npy`` bytes; header parsed as a literal, sizes checked first."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            _fail(path, f"member {name!r} has .npy version {version}, expected (1, 0) or (2, 0)")
    except ValueError as err:
        if str(err).startswith(f"{path}:"):
            raise
        _fail(path, f"member {name!r} has an invalid .npy header ({err})")
    if dtype.hasobject or dtype.str not in allowed_dtypes:
        _fail(path, f"member {name!r} has dtype {dtype.str!r}, expected one of "
                    f"{sorted(allowed_dtypes)} (object arrays are never loaded)")
    if fortran or len(shape) != 1:
        _fail(path, f"member {name!r} has shape {shape} (fortran_order={fortran}), "
                    "expected a 1-D array")
    payload = len(data) - stream.tell()
    expected = shape[0] * dtype.itemsize
    if payload != expected:
        _fail(path, f"member {name!r} declares {shape[0]} values ({expected} bytes) but holds "
                    f"{payload} bytes: truncated or crafted")
    return np.frombuffer(data, dtype=dtype, count=shape[0], offset=stream.tell()).copy()


def _check_header(header, path):
    if not isinstance(header, dict):
        _fail(path, f"the JSON header is a {type(header).__name__}, expected an object")
    if header.get("format") != FORMAT:
        _fail(path, f"header 'format' is {header.get('format')!r}, expected {FORMAT!r}")
    version = header.get("version")
    if version != VERSION or isinstance(version, bool):
        _fail(path, f"format version {version!r} is not supported (this nnfast reads version "
                    f"{VERSION})")
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
        _fail(path, f"header has {len(activations)} activations for layer sizes "
                    f"{header['layer_sizes']!r} (expected one per layer)")
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
        _fail(path, "it looks like a pickle; nnfast never loads pickles (save with "
                    "nnfast.save)")
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
        spec = build_spec(header["layer_sizes"], header["activations"][:-1],
                          header["activations"][-1], header["leaky_slope"],
                          header["elu_alpha"], header["maxout_pieces"])
    except (TypeError, ValueError) as err:
        _fail(path, f"the header describes no valid network ({err})")
    if header["n_params"] != spec.n_params or params.shape[0] != spec.n_params:
        _fail(path, f"layer sizes {list(spec.layer_sizes)} need {spec.n_params} parameters; "
                    f"the header says {header['n_params']} and params.npy holds "
                    f"{params.shape[0]}")
    if not np.isfinite(params).all():
        _fail(path, "params.npy holds NaN or infinite values")
    net = MLP.__new__(MLP)
    net._setup(spec, dtype, np.ascontiguousarray(params, dtype=dtype), np.random.default_rng())
    net._seed = None
    return net
