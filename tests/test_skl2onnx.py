"""skl2onnx converts Pipelines holding nnfast's estimators once nnfast.sklearn is imported.

The converted Pipelines, run by onnxruntime, compute what the Pipelines predict: the
normwise relative error of test_onnx.py within 1e-5 (float32) and 1e-12 (float64), labels
identical. Then skl2onnx's options, the input types it may give, and the registration
itself: in either import order, without importing skl2onnx eagerly, without skl2onnx at all.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnfast

pytest.importorskip("onnx", reason="exporting needs onnx (pip install 'nnfast[onnx]')")
pytest.importorskip(
    "onnxruntime", reason="the exported graphs are run by onnxruntime (pip install 'nnfast[onnx]')"
)
skl2onnx = pytest.importorskip("skl2onnx", reason="these tests are of skl2onnx's converters")
sk = pytest.importorskip("nnfast.sklearn", reason="scikit-learn is not installed")

from onnx_cases import (  # after the skips
    CLASSIFICATIONS,
    DTYPES,
    assert_matches,
    batches,
    fitted,
    report_worst_errors,  # noqa: F401 - the module's fixture
    run,
    targets,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def data(n=40, n_features=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, n_features)) * 3 + 1


def convert(pipeline, X, **kwargs):
    return skl2onnx.to_onnx(pipeline, X[:1], **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("loss", "n_targets"), [("squared_error", 1), ("squared_error", 2), ("gaussian_nll", 2)]
)
def test_pipeline_with_a_regressor(loss, n_targets, dtype):
    X = data().astype(dtype)
    Y = X[:, :n_targets] ** 2
    regressor = sk.MLPRegressor(
        loss=loss, hidden_layer_sizes=(7,), activation="elu", max_iter=3, random_state=0
    )
    pipeline = fitted(
        make_pipeline(StandardScaler(), regressor), X, Y[:, 0] if n_targets == 1 else Y
    )
    model = convert(pipeline, X)
    gaussian = loss == "gaussian_nll"
    assert [o.name for o in model.graph.output] == ["variable"] + ["std"] * gaussian
    case = f"Pipeline MLPRegressor {loss} {n_targets} {dtype}"
    for Xb in batches(X):
        got = run(model, Xb)
        if gaussian:
            mean, std = pipeline.predict(Xb, return_std=True)
            assert_matches(case + " mean", got["variable"], mean, dtype)
            assert_matches(case + " std", got["std"], std, dtype)
        else:
            assert_matches(case, got["variable"], pipeline.predict(Xb).reshape(len(Xb), -1), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "labels"), CLASSIFICATIONS)
def test_pipeline_with_a_classifier(kind, labels, dtype):
    rng = np.random.default_rng(1)
    X = data(60).astype(dtype)
    y = targets(kind, labels, 60, rng)
    classifier = sk.MLPClassifier(
        hidden_layer_sizes=(8,), activation="maxout", max_iter=3, random_state=0
    )
    pipeline = fitted(make_pipeline(StandardScaler(), classifier), X, y)
    model = convert(pipeline, X, options={sk.MLPClassifier: {"zipmap": False}})
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    for Xb in batches(X):
        got = run(model, Xb)
        np.testing.assert_array_equal(got["label"], pipeline.predict(Xb))
        assert_matches(
            f"Pipeline MLPClassifier {kind} {labels} {dtype}",
            got["probabilities"],
            pipeline.predict_proba(Xb),
            dtype,
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("labels", ["int", "string"])
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_classifier_zipmap_by_default(kind, labels, dtype):
    # skl2onnx's default for classifiers: probabilities as one {class: probability} per
    # row, by ONNX's ZipMap, which takes float32 only (a float64 graph casts them).
    X = data(60).astype(dtype)
    y = targets(kind, labels, 60, np.random.default_rng(2))
    pipeline = fitted(
        make_pipeline(
            StandardScaler(), sk.MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
        ),
        X,
        y,
    )
    got = run(convert(pipeline, X), X)
    np.testing.assert_array_equal(got["output_label"], pipeline.predict(X))
    classes = pipeline.classes_
    proba = np.array([[row[c] for c in classes] for row in got["output_probability"]])
    assert_matches(
        f"Pipeline MLPClassifier zipmap {kind} {labels} {dtype}",
        proba,
        pipeline.predict_proba(X).astype(np.float32),
        "float32",
    )


def test_classifier_options_nocl_and_output_class_labels():
    X = data(60)
    y = targets("multiclass", "string", 60, np.random.default_rng(3))
    model = fitted(sk.MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0), X, y)
    got = run(convert(model, X, options={"zipmap": False, "nocl": True}), X)
    np.testing.assert_array_equal(got["label"], np.searchsorted(model.classes_, model.predict(X)))
    got = run(convert(model, X, options={"zipmap": False, "output_class_labels": True}), X)
    np.testing.assert_array_equal(got["class_labels"], model.classes_)
    np.testing.assert_array_equal(got["label"], model.predict(X))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pipeline_with_the_ensembles(dtype):
    X = data().astype(dtype)
    member = sk.MLPRegressor(loss="gaussian_nll", hidden_layer_sizes=(6,), max_iter=3)
    pipeline = fitted(
        make_pipeline(
            StandardScaler(), sk.MLPEnsembleRegressor(member, n_estimators=3, random_state=0)
        ),
        X,
        X[:, 0] * X[:, 1],
    )
    got = run(convert(pipeline, X), X)
    mean, std = pipeline.predict(X, return_std=True)
    assert_matches(
        f"Pipeline MLPEnsembleRegressor {dtype} mean", got["variable"][:, 0], mean, dtype
    )
    assert_matches(f"Pipeline MLPEnsembleRegressor {dtype} std", got["std"][:, 0], std, dtype)

    y = targets("multiclass", "string", len(X), np.random.default_rng(4))
    member = sk.MLPClassifier(hidden_layer_sizes=(6,), max_iter=3)
    pipeline = fitted(
        make_pipeline(
            StandardScaler(),
            sk.MLPEnsembleClassifier(member, n_estimators=3, bootstrap=True, random_state=0),
        ),
        X,
        y,
    )
    got = run(convert(pipeline, X, options={sk.MLPEnsembleClassifier: {"zipmap": False}}), X)
    np.testing.assert_array_equal(got["label"], pipeline.predict(X))
    assert_matches(
        f"Pipeline MLPEnsembleClassifier {dtype}",
        got["probabilities"],
        pipeline.predict_proba(X),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_autoencoder_inside_a_pipeline(dtype):
    # The autoencoder's code feeds the next step's converter.
    X = data(50, 5).astype(dtype)
    encoder = sk.MLPAutoencoder(
        n_components=2, hidden_layer_sizes=(6,), activation="tanh", max_iter=3, random_state=0
    )
    head = sk.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    pipeline = fitted(make_pipeline(StandardScaler(), encoder, head), X, X[:, 0])
    got = run(convert(pipeline, X), X)["variable"]
    assert_matches(
        f"Pipeline MLPAutoencoder MLPRegressor {dtype}", got[:, 0], pipeline.predict(X), dtype
    )
    transformer = fitted(make_pipeline(StandardScaler(), encoder), X)
    got = run(convert(transformer, X), X)["variable"]
    assert_matches(f"Pipeline MLPAutoencoder {dtype}", got, transformer.transform(X), dtype)


def test_integer_input_is_cast_to_float32():
    X = np.random.default_rng(5).integers(-5, 5, size=(30, 3))
    model = fitted(
        sk.MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, X[:, 0] * 1.5
    )
    got = run(convert(model, X), X)["variable"]
    assert got.dtype == np.float32
    assert_matches("MLPRegressor int64 input", got[:, 0], model.predict(X), "float32")


def test_refuses_a_wrong_width_and_an_old_opset():
    from skl2onnx.common.data_types import FloatTensorType

    X = data()
    model = fitted(sk.MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, X[:, 0])
    with pytest.raises(ValueError, match="X: expected 4 features for MLPRegressor, got 7"):
        skl2onnx.to_onnx(model, initial_types=[("X", FloatTensorType([None, 7]))])
    with pytest.raises(ValueError, match="target_opset: nnfast's converters need opset 13"):
        skl2onnx.to_onnx(model, X[:1], target_opset=12)


# ---- registration ------------------------------------------------------------------------------


def python(code):
    """Run ``code`` in a fresh interpreter that imports this suite's nnfast."""
    env = dict(os.environ, PYTHONPATH=str(Path(nnfast.__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


CONVERT = """
    import warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.array(["a", "b"])[np.arange(20) % 2]
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipeline = make_pipeline(StandardScaler(), nnfast.sklearn.MLPClassifier(
        hidden_layer_sizes=(4,), max_iter=3, random_state=0)).fit(X, y)
    model = skl2onnx.to_onnx(pipeline, X[:1], options={"zipmap": False})
    print([o.name for o in model.graph.output])
    print(any(type(f).__name__ == "_RegisterAfterImport" for f in sys.meta_path))
"""


@pytest.mark.parametrize(
    "imports",
    [
        "import nnfast.sklearn\nimport skl2onnx",
        "import skl2onnx\nimport nnfast.sklearn",
        # Asking whether skl2onnx is installed finds it without importing it.
        "import nnfast.sklearn, importlib.util\nassert importlib.util.find_spec('skl2onnx')\n"
        + "import skl2onnx",
    ],
)
def test_registered_in_either_import_order(imports):
    out = python(f"import sys\n{imports}\n" + textwrap.dedent(CONVERT))
    # Converted, and the finder waiting for skl2onnx's import is gone.
    assert out.split("\n")[:2] == ["['label', 'probabilities']", "False"]


def test_importing_nnfast_sklearn_imports_neither_skl2onnx_nor_onnx():
    out = python("""
        import sys
        import nnfast, nnfast.sklearn
        print(sorted({"skl2onnx", "onnx", "onnxruntime"} & set(sys.modules)))
    """)
    assert out.strip() == "[]"


def test_nnfast_sklearn_without_skl2onnx():
    out = python("""
        import sys
        sys.modules["skl2onnx"] = None  # as if not installed: `import skl2onnx` fails
        import nnfast.sklearn
        print(any(type(f).__name__ == "_RegisterAfterImport" for f in sys.meta_path))
    """)
    assert out.strip() == "False"
