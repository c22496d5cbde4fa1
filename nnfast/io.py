"""Saving and loading networks and fitted estimators: a versioned ``.npz`` of plain arrays,
never pickle.

A saved file is a ZIP archive (uncompressed, NumPy's ``.npz`` layout) of ``.npy`` members:

- ``header.npy``: uint8, the UTF-8 bytes of a JSON object with ``"format"`` and
  ``"version"``. For a network (``"format": "nnfast.MLP"``) the other fields are
  ``layer_sizes``, ``activations`` (one per layer, output last), ``dtype``,
  ``leaky_slope``, ``elu_alpha``, ``maxout_pieces`` and ``n_params``; for a fitted
  estimator (``"format": "nnfast.sklearn.MLPRegressor"`` …, format version 2) its
  ``params``, fitted ``attributes`` and ``network`` (see :mod:`nnfast.sklearn._persist`);
- one flat parameter buffer per network, 1-D little-endian float32 or float64:
  ``params.npy`` (an ensemble: ``estimators_/<i>/params.npy``).

This nnfast writes format version 2 and reads versions 1 (networks, nnfast 0.1.0) and 2.
``np.load(path)`` reads the files too. :func:`load` does not use ``np.load``: it checks the
file byte by byte before trusting it — the ZIP structure and CRCs, the member names, that
every member is stored uncompressed with a declared size no larger than the file itself
and all of them together no larger than the file (so a crafted header cannot make it
allocate more than the file's size), the ``.npy`` headers (parsed by nnfast's own strict
patterns, never executed nor handed to numpy's parser; object and non-float dtypes
refused), that the data length matches the declared shape exactly, then every JSON field
— and raises ``ValueError`` naming what is wrong. It never unpickles and never runs code
from the file. The round trip is exact to the bit for every activation and dtype. The
format is specified in ``docs/file_format.md``.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnfast._spec import DTYPES, build_spec
from nnfast.network import MLP

__all__ = ["save", "load", "FORMAT", "VERSION", "READ_VERSIONS"]

FORMAT = "nnfast.MLP"
VERSION = 2  # the version this nnfast writes
READ_VERSIONS = (1, 2)
# Estimator files: "nnfast.sklearn." + the class name (version 2 on).
ESTIMATOR_FORMAT_PREFIX = "nnfast.sklearn."
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
# The fields describing one network: a network file's header, an estimator's "network".
NETWORK_FIELDS = (
    "layer_sizes",
    "activations",
    "dtype",
    "leaky_slope",
    "elu_alpha",
    "maxout_pieces",
    "n_params",
)
_FIELDS = ("format", "version") + NETWORK_FIELDS


# The nnfast.sklearn classes a file can hold (their module is imported only to save or
# load one of them: nnfast.io itself needs no scikit-learn).
ESTIMATOR_CLASSES = (
    "MLPRegressor",
    "MLPClassifier",
    "MLPAutoencoder",
    "MLPEnsembleRegressor",
    "MLPEnsembleClassifier",
)


class Plan(NamedTuple):
    """What a checked header asks the loader to do: read one network per member
    (``networks``: member name -> that network's fields), then ``build(networks)`` with the
    member names mapped to the loaded networks."""

    networks: dict
    build: Callable


class LoadingFile:
    """The file being loaded: its path and size, what it claims to hold (for the messages)
    and how many member bytes were read so far."""

    def __init__(self, path, size: int):
        self.path, self.size = path, size
        self.kind = "network"
        self.bytes_read = 0

    def fail(self, what: str):
        raise ValueError(f"{self.path}: not a valid nnfast {self.kind} file: {what}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def network_fields(net: MLP) -> dict:
    """The header fields describing ``net`` (NETWORK_FIELDS, in that order)."""
    return {
        "layer_sizes": list(net.layer_sizes),
        "activations": list(net.activations),
        "dtype": net.dtype.name,
        "leaky_slope": net.leaky_slope,
        "elu_alpha": net.elu_alpha,
        "maxout_pieces": net.maxout_pieces,
        "n_params": net.n_params,
    }


def _estimator_persistence(obj):
    """nnfast.sklearn's (de)serialisation module if ``obj`` is one of its estimators."""
    cls = type(obj)
    if cls.__module__.startswith("nnfast.sklearn.") and cls.__name__ in ESTIMATOR_CLASSES:
        from nnfast.sklearn import _persist

        return _persist
    return None


def save(net, path) -> None:
    """Write a network or a fitted estimator to ``path`` (a ``.npz`` file; the name is used
    as given).

    ``net`` is an :class:`nnfast.MLP` or a fitted ``MLPRegressor``, ``MLPClassifier``,
    ``MLPAutoencoder``, ``MLPEnsembleRegressor`` or ``MLPEnsembleClassifier`` of
    :mod:`nnfast.sklearn`; :func:`load` returns an object of the same type with identical
    outputs. The file is written next to its destination and renamed into place, so an
    interrupted or refused save never leaves a half-written file under ``path``.
    """
    if isinstance(net, MLP):
        if net.target_scaling is not None:  # the file format has no field for it
            raise ValueError(
                "save: this network has a target_scaling (fit(..., standardize_targets=True)), "
                "which the file format does not store yet; save its parameters and "
                "net.target_scaling yourself, or set net.target_scaling = None first"
            )
        header = {"format": FORMAT, "version": VERSION, **network_fields(net)}
        arrays = {"params.npy": net.params}
    else:
        persistence = _estimator_persistence(net)
        if persistence is None:
            raise TypeError(
                "net: expected an nnfast.MLP or a fitted nnfast.sklearn estimator "
                f"({', '.join(ESTIMATOR_CLASSES)}), got {type(net).__name__}"
            )
        header, arrays = persistence.file_contents(net)
    path = os.fspath(path)
    # Strict JSON (RFC 8259): the estimators' non-finite numbers are written as strings.
    text = json.dumps(header, allow_nan=False).encode("utf-8")
    header_bytes = np.frombuffer(text, dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nnfast-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr("header.npy", _npy_bytes(header_bytes))
                for name, array in arrays.items():
                    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
                    archive.writestr(name, _npy_bytes(little))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_member(archive: zipfile.ZipFile, name: str, file: LoadingFile) -> bytes:
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        file.fail(f"member {name!r} is compressed (nnfast writes stored members only)")
    if info.flag_bits & 0x1:  # zipfile would raise RuntimeError("... password required")
        file.fail(f"member {name!r} is encrypted (nnfast writes plain members only)")
    if info.file_size > file.size or info.compress_size > file.size:
        file.fail(
            f"member {name!r} declares {info.file_size} bytes, more than the whole "
            f"file ({file.size} bytes): truncated or crafted",
        )
    # Members that overlap in a crafted archive could each be as large as the file: all of
    # them together may not be larger than the file either.
    file.bytes_read += info.file_size
    if file.bytes_read > file.size:
        file.fail(
            f"the members declare {file.bytes_read} bytes or more, more than the whole file "
            f"({file.size} bytes): overlapping or crafted"
        )
    try:
        return archive.read(name)
    except _ZIP_ERRORS as err:
        file.fail(f"member {name!r} is corrupted or truncated ({type(err).__name__}: {err})")


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


def _parse_npy(data: bytes, name: str, file: LoadingFile, allowed_dtypes) -> np.ndarray:
    """A 1-D array from ``.npy`` bytes; header parsed as a literal, sizes checked first."""
    try:
        header, offset = _npy_header(data)
    except ValueError as err:
        file.fail(f"member {name!r} has an invalid .npy header ({err})")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if descr not in allowed_dtypes:
        file.fail(
            f"member {name!r} has dtype {descr!r}, expected one of "
            f"{sorted(allowed_dtypes)} (object arrays are never loaded)",
        )
    if fortran or len(shape) != 1:
        file.fail(
            f"member {name!r} has shape {shape} (fortran_order={fortran}), expected a 1-D array",
        )
    dtype = np.dtype(descr)  # one of the few plain dtype strings allowed above
    payload = len(data) - offset
    expected = shape[0] * dtype.itemsize
    if payload != expected:
        file.fail(
            f"member {name!r} declares {shape[0]} values ({expected} bytes) but holds "
            f"{payload} bytes: truncated or crafted",
        )
    return np.frombuffer(data, dtype=dtype, count=shape[0], offset=offset).copy()


def _refuse_constant(name):
    raise ValueError(
        f"{name} is not a JSON value (nnfast writes non-finite numbers as the strings "
        '"inf", "-inf" and "nan")'
    )


def _object_without_duplicates(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"keys {twice} appear more than once in one object")
    return dict(pairs)


def _read_header(data: bytes, file: LoadingFile) -> dict:
    header_bytes = _parse_npy(data, "header.npy", file, {"|u1"})
    try:
        header = json.loads(
            header_bytes.tobytes().decode("utf-8"),
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        file.fail(f"the header is not valid UTF-8 JSON ({type(err).__name__}: {err})")
    if not isinstance(header, dict):
        file.fail(f"the JSON header is a {type(header).__name__}, expected an object")
    return header


def check_fields(mapping: dict, expected, file: LoadingFile, where: str, optional=()) -> None:
    """``mapping`` has every field of ``expected``, and no other than those and ``optional``."""
    missing = [field for field in expected if field not in mapping]
    if missing:
        file.fail(f"{where} fields missing: {missing}")
    extra = sorted(set(mapping) - set(expected) - set(optional))
    if extra:
        file.fail(f"unknown {where} fields: {extra}")


def check_version(header: dict, file: LoadingFile, versions) -> None:
    version = header.get("version")
    if version not in versions or isinstance(version, bool):
        file.fail(
            f"format version {version!r} is not supported (this nnfast reads versions "
            f"{', '.join(map(str, versions))} of {header.get('format')!r} files)",
        )


def check_network_fields(fields, file: LoadingFile, where: str) -> None:
    """The JSON types of a network's fields (their values are checked by build_spec)."""
    if not isinstance(fields, dict):
        file.fail(f"{where} is {fields!r}, expected an object")
    check_fields(fields, NETWORK_FIELDS, file, where, optional=("format", "version"))
    if not isinstance(fields["dtype"], str) or fields["dtype"] not in DTYPES:
        file.fail(f"{where} 'dtype' is {fields['dtype']!r}, expected 'float32' or 'float64'")
    for field in ("layer_sizes", "activations"):
        if not isinstance(fields[field], list):
            file.fail(f"{where} {field!r} is {fields[field]!r}, expected a list")
    activations = fields["activations"]
    if len(activations) != len(fields["layer_sizes"]) - 1:
        file.fail(
            f"{where} has {len(activations)} activations for layer sizes "
            f"{fields['layer_sizes']!r} (expected one per layer)",
        )
    if not all(isinstance(a, str) for a in activations) or not activations:
        file.fail(f"{where} 'activations' is {activations!r}, expected a list of names")
    if not isinstance(fields["n_params"], int) or isinstance(fields["n_params"], bool):
        file.fail(f"{where} 'n_params' is {fields['n_params']!r}, expected an integer")


def _network(fields: dict, data: bytes, name: str, file: LoadingFile) -> MLP:
    """The network that checked ``fields`` describe, its parameters read from ``data``."""
    dtype = DTYPES[fields["dtype"]]
    params = _parse_npy(data, name, file, {dtype.newbyteorder("<").str})
    try:
        spec = build_spec(
            fields["layer_sizes"],
            fields["activations"][:-1],
            fields["activations"][-1],
            fields["leaky_slope"],
            fields["elu_alpha"],
            fields["maxout_pieces"],
        )
    except (TypeError, ValueError) as err:
        file.fail(f"the header describes no valid network ({err})")
    if fields["n_params"] != spec.n_params or params.shape[0] != spec.n_params:
        file.fail(
            f"layer sizes {list(spec.layer_sizes)} need {spec.n_params} parameters; "
            f"the header says {fields['n_params']} and {name} holds "
            f"{params.shape[0]}",
        )
    if not np.isfinite(params).all():
        file.fail(f"{name} holds NaN or infinite values")
    net = MLP.__new__(MLP)
    net._setup(spec, dtype, np.ascontiguousarray(params, dtype=dtype), np.random.default_rng())
    net._seed = None
    return net


def _plan(header: dict, file: LoadingFile) -> Plan:
    """What to read, from the header's format: a network, or an estimator."""
    fmt = header.get("format")
    if fmt == FORMAT:
        check_version(header, file, READ_VERSIONS)
        check_fields(header, _FIELDS, file, "header")
        check_network_fields(header, file, "header")
        return Plan({"params.npy": header}, lambda networks: networks["params.npy"])
    if isinstance(fmt, str) and fmt.startswith(ESTIMATOR_FORMAT_PREFIX):
        file.kind = "estimator"
        if header.get("version") == 1:
            file.fail("format version 1 holds networks only (estimators are version 2 on)")
        check_version(header, file, (2,))
        try:
            from nnfast.sklearn import _persist
        except ImportError as err:
            raise ImportError(
                f"{file.path}: loading a saved {fmt[len(ESTIMATOR_FORMAT_PREFIX) :]} needs "
                f"scikit-learn ({err})"
            ) from err
        return _persist.plan(header, file)
    file.fail(
        f"header 'format' is {fmt!r}, expected {FORMAT!r} or {ESTIMATOR_FORMAT_PREFIX!r} "
        f"followed by one of {list(ESTIMATOR_CLASSES)}"
    )


def load(path):
    """Read a network or an estimator written by :func:`save`; ``ValueError`` says what is
    wrong otherwise (an estimator file needs scikit-learn: ``ImportError`` without it)."""
    path = os.fspath(path)
    file = LoadingFile(path, os.path.getsize(path))  # FileNotFoundError, as open() raises
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:1] == b"\x80" or magic[:2] in (b"(d", b"(l", b"}q"):
        file.fail("it looks like a pickle; nnfast never loads pickles (save with nnfast.save)")
    if magic != b"PK\x03\x04":
        file.fail(f"expected a ZIP (.npz) archive, the file starts with {magic!r}")
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as err:
        file.fail(f"the ZIP structure is corrupted or truncated ({type(err).__name__}: {err})")
    with archive:
        names = sorted(archive.namelist())
        if "header.npy" not in names or len(names) > 1 + file.size // 46:
            file.fail(f"expected the members {list(_MEMBERS)}, got {names[:10]}")
        header = _read_header(_read_member(archive, "header.npy", file), file)
        plan = _plan(header, file)
        expected = sorted(["header.npy", *plan.networks])
        if names != expected:
            file.fail(f"expected the members {expected}, got {names}")
        data = {name: _read_member(archive, name, file) for name in plan.networks}
    networks = {
        name: _network(fields, data[name], name, file) for name, fields in plan.networks.items()
    }
    return plan.build(networks)
