"""Coverage-guided fuzzing of ``nnfast.load`` on saved estimators, with atheris.

The property: whatever the bytes of the file, ``nnfast.load`` returns a network or an
estimator, or raises ``ValueError``; and an estimator it returns predicts (``predict``,
``predict_proba``, ``transform`` on rows of zeros) or raises ``ValueError``, as a faithful
copy of a misconfigured estimator may. Any other exception, and any warning from ``load``
(turned into an error here), is a finding, which libFuzzer reports with its input.

Each fuzz input is read in one of three ways, chosen by its first byte modulo 3, so that
mutations reach past the ZIP layer's CRCs into the ``.npy`` parser and past that into the
JSON header, where the estimators' fields are:

- 0: the rest is the whole file, as written to disk;
- 1: the rest is a list of members, each ``name index`` (1 byte, into :data:`NAMES`),
  ``length`` (4 bytes, little-endian) and that many bytes, which this target stores in a
  well-formed ZIP archive (correct CRCs);
- 2: the rest is ``length`` (2 bytes, little-endian), the JSON header's text (stored as
  ``header.npy``, a well-formed uint8 ``.npy`` member), then members as in 1.

Run by hand (libFuzzer's flags; new inputs go to the first directory)::

    python tests/fuzz/atheris_load_estimators.py -max_total_time=600 /tmp/new \\
        tests/fuzz/corpus/load_estimators

``tests/test_load_fuzz.py`` runs it for about 15 s with a fixed seed. The seed corpus in
``tests/fuzz/corpus/load_estimators/`` is written by this file, byte for byte reproducible
on any machine (fitted values that depend on the machine's arithmetic are replaced by fixed
ones before the files are written)::

    python tests/fuzz/atheris_load_estimators.py --write-corpus tests/fuzz/corpus/load_estimators
"""

import json
import os
import struct
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from atheris_load import fuzz_load, instrument_modules, npy, store  # noqa: E402

RAW, MEMBERS, JSON_HEADER = 0, 1, 2
NAMES = (
    "header.npy",
    "params.npy",
    "estimators_/0/params.npy",
    "estimators_/1/params.npy",
    "estimators_/2/params.npy",
    "extra.npy",
)


def members_of(data: bytes) -> dict:
    """The members a list of (name index, length, bytes) entries stands for."""
    members, position = {}, 0
    while position + 5 <= len(data):
        name = NAMES[data[position] % len(NAMES)]
        (length,) = struct.unpack_from("<I", data, position + 1)
        members[name] = data[position + 5 : position + 5 + length]
        position += 5 + length
    return members


def file_bytes(data: bytes) -> bytes | None:
    """The file a fuzz input stands for (None: too short to say)."""
    if not data:
        return None
    form = data[0] % 3
    if form == RAW:
        return data[1:]
    if form == MEMBERS:
        return store(members_of(data[1:]))
    if len(data) < 3:
        return None
    (length,) = struct.unpack_from("<H", data, 1)
    import numpy as np

    header = npy(np.frombuffer(data[3 : 3 + length], dtype=np.uint8))
    return store({"header.npy": header, **members_of(data[3 + length :])})


def members_input(members: dict) -> bytes:
    """The fuzz input (second form) for these members."""
    out = bytes([MEMBERS])
    for name, data in members.items():
        out += bytes([NAMES.index(name)]) + struct.pack("<I", len(data)) + data
    return out


def json_input(header: dict, arrays: dict) -> bytes:
    """The fuzz input (third form): the JSON header as text, then the arrays."""
    text = json.dumps(header).encode("utf-8")
    rest = members_input({name: npy(array) for name, array in arrays.items()})[1:]
    return bytes([JSON_HEADER]) + struct.pack("<H", len(text)) + text + rest


def _fixed(estimator, seed):
    """``estimator`` with every fitted value that depends on the machine's arithmetic
    replaced by a fixed one (parameters, losses, scores, the stopping rule's count): the
    same files everywhere."""
    import numpy as np

    members = getattr(estimator, "estimators_", [estimator])
    for i, member in enumerate(members):
        rng = np.random.default_rng(seed + i)
        net = member._net
        net.params = np.round(rng.normal(size=net.n_params), 3).astype(net.dtype)
        member._bind_views()
        for name in ("loss_", "best_loss_", "best_validation_score_"):
            if getattr(member, name, None) is not None:
                setattr(member, name, 0.5)
        if hasattr(member, "_no_improvement_count"):  # follows from the scores
            member._no_improvement_count = 0
        for name in ("loss_curve_", "validation_scores_"):
            if getattr(member, name, None) is not None:
                setattr(member, name, [1.0, 0.5][: len(getattr(member, name))])
    return estimator


def estimators() -> dict:
    """Small fitted estimators of every kind the format holds."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from nnfast.sklearn import (
        MLPAutoencoder,
        MLPClassifier,
        MLPEnsembleClassifier,
        MLPEnsembleRegressor,
        MLPRegressor,
    )

    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(24, 2)), 2)
    labels = np.array(["a", "bb", "c"])[np.arange(24) % 3]
    small = dict(hidden_layer_sizes=(2,), max_iter=2, tol=0.0, random_state=0)
    makers = {
        "regressor": lambda: MLPRegressor(**small).fit(X, X[:, 0]),
        "regressor-nll-f32": lambda: MLPRegressor(
            loss="gaussian_nll", dtype="float32", early_stopping=True, **small
        ).fit(X, X[:, 0]),
        "classifier-str": lambda: MLPClassifier(activation="maxout", **small).fit(X, labels),
        "classifier-int-binary": lambda: MLPClassifier(**small).fit(X, np.arange(24) % 2 + 5),
        "classifier-multilabel": lambda: MLPClassifier(**small).fit(X, (X > 0).astype(int)),
        "autoencoder": lambda: MLPAutoencoder(n_components=1, **small).fit(X),
        "ensemble-regressor": lambda: MLPEnsembleRegressor(
            MLPRegressor(**small), n_estimators=2, random_state=0
        ).fit(X, X[:, 1]),
        "ensemble-classifier": lambda: MLPEnsembleClassifier(
            MLPClassifier(**small), n_estimators=2, random_state=0
        ).fit(X, labels),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {name: _fixed(make(), seed) for seed, (name, make) in enumerate(makers.items())}


def seeds() -> dict:
    """name -> fuzz input: each estimator in all three forms, and a few edge cases."""
    import numpy as np

    from nnfast.sklearn import _persist

    corpus = {}
    for name, estimator in estimators().items():
        header, arrays = _persist.file_contents(estimator)
        header_npy = npy(np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8))
        members = {"header.npy": header_npy, **{k: npy(v) for k, v in arrays.items()}}
        corpus[f"file-{name}"] = bytes([RAW]) + store(members)
        corpus[f"members-{name}"] = members_input(members)
        corpus[f"json-{name}"] = json_input(header, arrays)
    corpus["json-empty-object"] = bytes([JSON_HEADER]) + struct.pack("<H", 2) + b"{}"
    corpus["truncated"] = corpus["file-ensemble-classifier"][:200]
    return corpus


def write_corpus(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


def exercise(model) -> None:
    """Run what a loaded estimator offers on two rows of zeros (ValueError allowed)."""
    import numpy as np

    import nnfast

    if isinstance(model, nnfast.MLP):
        return
    X = np.zeros((2, model.n_features_in_))
    for method in ("predict", "predict_proba", "transform"):
        if hasattr(model, method):
            try:
                getattr(model, method)(X)
            except ValueError:
                pass


def main(argv) -> None:
    if len(argv) == 3 and argv[1] == "--write-corpus":
        write_corpus(argv[2])
        return
    import json.decoder

    import atheris

    import nnfast
    import nnfast._spec
    import nnfast.io
    import nnfast.sklearn._persist
    import nnfast.sklearn._persist_values

    modules = [nnfast.io, nnfast._spec, nnfast.sklearn._persist, nnfast.sklearn._persist_values]
    instrument_modules(atheris, modules + [json, json.decoder])

    def after_load(model):
        with warnings.catch_warnings():
            # predict on an array warns when the estimator was fitted on a DataFrame.
            warnings.simplefilter("ignore")
            exercise(model)

    fuzz_load(argv, atheris, file_bytes, after_load)


if __name__ == "__main__":
    main(sys.argv)
