"""Helpers of the ONNX tests (test_onnx.py, test_skl2onnx.py), imported by them after they
have skipped themselves without onnx and onnxruntime.

The error of an exported output ``got`` against the model's own ``expected`` is normwise
over the whole array, ``max |got - expected| / max(max |expected|, tiny)``; it must stay
within 1e-5 in float32 and 1e-12 in float64 (see test_onnx.py).
"""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
DTYPES = ("float32", "float64")
BATCHES = (1, 3, 17)

WORST = {}  # case -> worst error seen in the running test module


@pytest.fixture(scope="module", autouse=True)
def report_worst_errors():
    """Prints the worst error of each case at the end of the module (``pytest -s``)."""
    WORST.clear()
    yield
    if WORST:
        print("\nworst normwise relative errors, onnxruntime vs nnfast:")
        for case, err in sorted(WORST.items()):
            print(f"  {case}: {err:.3g}")


def relative_error(got, expected):
    """Normwise: the largest difference relative to the largest |expected|."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    tiny = np.finfo(expected.dtype).tiny
    scale = max(float(np.abs(expected).max()), tiny)
    return float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max()) / scale


def assert_matches(case, got, expected, dtype):
    err = relative_error(got, expected)
    WORST[case] = max(WORST.get(case, 0.0), err)
    assert err <= TOL[np.dtype(dtype)], f"{case}: relative error {err:.3g}"


def session(model):
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run(model, X):
    """{output name: array} of the exported ``model`` on ``X``."""
    sess = session(model)
    return dict(zip([out.name for out in sess.get_outputs()], sess.run(None, {"X": X})))


def batches(X):
    for n in BATCHES:
        yield X[:n]


def estimators():
    return pytest.importorskip("nnfast.sklearn", reason="scikit-learn is not installed")


def fitted(estimator, X, y=None):
    """``estimator`` after a few iterations: random weights and biases (scikit-learn's
    initialisation), slightly trained; its ConvergenceWarning is expected."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def targets(kind, labels, n, rng):
    if kind == "multilabel":
        Y = rng.integers(0, 2, size=(n, 3))
        Y[0] = Y[1] = 1 - Y[2]  # every label both present and absent
        return Y
    names = {"int": np.array([-3, 2, 7]), "string": np.array(["ant", "bee", "émeu"])}[labels]
    k = 2 if kind == "binary" else 3
    return names[np.arange(n) % k][rng.permutation(n)]


CLASSIFICATIONS = [
    ("binary", "int"),
    ("binary", "string"),
    ("multiclass", "int"),
    ("multiclass", "string"),
    ("multilabel", "int"),
]
