"""Coverage-guided fuzzing of ``nnfast.load`` with atheris (libFuzzer for Python).

The property: whatever the bytes of the file, ``nnfast.load`` returns a network or raises
``ValueError``; any other exception, and any warning (turned into an error here), is a
finding, which libFuzzer reports with the input that caused it.

Each fuzz input is read in one of two ways, chosen by its first byte, so that mutations
reach past the ZIP layer's CRCs into the ``.npy`` and JSON parsers:

- first byte even: the rest is the whole file, as written to disk;
- first byte odd: the rest is ``len(header.npy)`` (2 bytes, little-endian), ``header.npy``
  then ``params.npy``, which this target stores in a well-formed ZIP archive (correct CRCs)
  before loading it.

Run by hand (libFuzzer's flags; new inputs go to the first directory)::

    python tests/fuzz/atheris_load.py -max_total_time=600 /tmp/new tests/fuzz/corpus/load

``tests/test_load_fuzz.py`` runs it for about 25 s with a fixed seed. The seed corpus in
``tests/fuzz/corpus/load/`` is written by this file (byte for byte reproducible)::

    python tests/fuzz/atheris_load.py --write-corpus tests/fuzz/corpus/load
"""

import io
import json
import os
import struct
import sys
import tempfile
import warnings
import zipfile

RAW, MEMBERS = 0, 1
# A fixed timestamp: the corpus files do not change when they are written again.
_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def store(members: dict) -> bytes:
    """A ZIP archive of the members, stored uncompressed, with a fixed timestamp."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_DATE_TIME), data)
    return buffer.getvalue()


def file_bytes(data: bytes) -> bytes | None:
    """The file a fuzz input stands for (None: too short to say)."""
    if not data:
        return None
    if data[0] % 2 == RAW:
        return data[1:]
    if len(data) < 3:
        return None
    (header_length,) = struct.unpack_from("<H", data, 1)
    header = data[3 : 3 + header_length]
    return store({"header.npy": header, "params.npy": data[3 + header_length :]})


def members_input(header: bytes, params: bytes) -> bytes:
    """The fuzz input (second form) for these two members."""
    return bytes([MEMBERS]) + struct.pack("<H", len(header)) + header + params


def npy(array) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def raw_npy(header_text: str, payload: bytes) -> bytes:
    """A version 1.0 .npy member with ``header_text`` as its header, verbatim."""
    body = header_text.encode("latin1")
    body += b" " * ((-(10 + len(body) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + payload


def seeds() -> dict:
    """name -> fuzz input: small valid files of every kind nnfast writes, and edge cases."""
    import numpy as np

    import nnfast

    corpus, members = {}, {}
    nets = {
        "tanh-f64": nnfast.MLP([1, 2, 1], seed=0),
        "relu-f32": nnfast.MLP([2, 3, 2], activation="relu", dtype="float32", seed=1),
        "maxout-softmax": nnfast.MLP(
            [2, 2, 3], activation="maxout", maxout_pieces=2, output_activation="softmax", seed=2
        ),
    }
    for name, net in nets.items():
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
        header_npy = npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        params_npy = npy(net.params)
        corpus[f"file-{name}"] = bytes([RAW]) + store(
            {"header.npy": header_npy, "params.npy": params_npy}
        )
        corpus[f"members-{name}"] = members_input(header_npy, params_npy)
        members[name] = header_npy
    # The .npy headers numpy's own parser once let escape as other exceptions or warnings.
    net, header_npy = nets["tanh-f64"], members["tanh-f64"]
    n = net.n_params
    crafted = {
        "token-error": "{'descr': '<f8', 'fortran_order': False, 'shape': (",
        "type-error": "{[]: 1}",
        "recursion": "{'descr': '<f8', 'fortran_order': False, 'shape': ("
        + "-" * 3000
        + f"{n},)}}",
        "syntax-error": f"{{'descr': ',f4', 'fortran_order': False, 'shape': ({n},), }}",
        "python2-long": f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}L,), }}",
    }
    for name, text in crafted.items():
        corpus[f"npy-{name}"] = members_input(header_npy, raw_npy(text, net.params.tobytes()))
    corpus["empty"] = bytes([RAW])
    corpus["pickle"] = bytes([RAW]) + b"\x80\x04K\x01."
    corpus["truncated-zip"] = corpus["file-tanh-f64"][:40]
    return corpus


def write_corpus(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


def instrument_modules(atheris, modules) -> None:
    """Coverage for every function and method defined in these (already imported) modules."""
    for module in modules:
        for value in vars(module).values():
            functions = vars(value).values() if isinstance(value, type) else [value]
            for function in functions:
                function = getattr(function, "__func__", function)  # static/class methods
                if getattr(function, "__module__", None) == module.__name__ and hasattr(
                    function, "__code__"
                ):
                    atheris.instrument_func(function)


def fuzz_load(argv, atheris, file_bytes, after_load=None) -> None:
    """Run libFuzzer: each input, turned into a file by ``file_bytes`` (None: skip it), is
    loaded by ``nnfast.load`` with every warning an error; a ValueError is the expected
    refusal, anything else a finding. ``after_load(model)`` exercises what loaded."""
    import nnfast

    # libFuzzer ends the process with exit(), past any Python cleanup: the file every input
    # is written to is unlinked from the start and reached through /proc (Linux).
    handle = tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    path = f"/proc/self/fd/{handle.fileno()}"
    if not os.path.exists(path):
        handle = tempfile.NamedTemporaryFile(prefix="nnfast-fuzz-", suffix=".npz")
        path = handle.name

    def test_one_input(data: bytes) -> None:
        content = file_bytes(data)
        if content is None:
            return
        handle.seek(0)
        handle.truncate()
        handle.write(content)
        handle.flush()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                model = nnfast.load(path)
            except ValueError:
                return
        if after_load is not None:
            after_load(model)

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def main(argv) -> None:
    if len(argv) == 3 and argv[1] == "--write-corpus":
        write_corpus(argv[2])
        return
    import json.decoder

    import atheris

    import nnfast._spec
    import nnfast.io

    instrument_modules(atheris, [nnfast.io, nnfast._spec, zipfile, json, json.decoder])
    fuzz_load(argv, atheris, file_bytes)


if __name__ == "__main__":
    main(sys.argv)
