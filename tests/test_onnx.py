"""nnfast.to_onnx: the exported graph, run by onnxruntime, computes what the model predicts.

Random networks of every hidden and output activation, float32 and float64, batches of 1, 3
and 17 rows. The error of an exported output ``got`` against the model's own ``expected`` is
normwise over the whole array:

    max |got - expected| / max(max |expected|, tiny)

It must stay within 1e-5 in float32 and 1e-12 in float64. (Elementwise relative error is no
measure for outputs that are sums cancelling to near zero: two correct orders of summation
differ there by up to 1e-3 relative in float32 for these networks.) Classifier labels must be
identical. The worst error of each case is printed at the end of the module (``-s``).
"""

import sys

import numpy as np
import pytest

import nnfast

onnx = pytest.importorskip("onnx", reason="exporting needs onnx (pip install 'nnfast[onnx]')")
ort = pytest.importorskip(
    "onnxruntime", reason="the exported graphs are run by onnxruntime (pip install 'nnfast[onnx]')"
)

from onnx_cases import (  # after the skips
    CLASSIFICATIONS,
    DTYPES,
    assert_matches,
    batches,
    estimators,
    fitted,
    report_worst_errors,  # noqa: F401 - the module's fixture
    run,
    targets,
)

HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout")
OUTPUTS = ("identity", "sigmoid", "tanh", "softmax", "exp")
SKLEARN_HIDDEN = ("identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "maxout")


def random_net(sizes, hidden, output, dtype, seed):
    """A network with random weights and biases (not zero, as MLP initialises them)."""
    net = nnfast.MLP(
        sizes,
        activation=hidden,
        output_activation=output,
        dtype=dtype,
        seed=seed,
        leaky_slope=0.3,
        elu_alpha=0.7,
        maxout_pieces=3,
    )
    rng = np.random.default_rng(seed)
    net.params = net.params + rng.normal(scale=0.3, size=net.n_params)
    return net


# ---- nnfast.MLP -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_mlp_every_activation(hidden, output, dtype):
    rng = np.random.default_rng(1)
    for seed in range(3):
        net = random_net([5, 16, 9, 3], hidden, output, dtype, seed)
        model = nnfast.to_onnx(net)
        assert [o.name for o in model.graph.output] == ["Y"]
        for X in batches((2 * rng.normal(size=(17, 5))).astype(dtype)):
            got = run(model, X)["Y"]
            assert got.dtype == net.dtype
            assert_matches(f"MLP {hidden}->{output} {dtype}", got, net.predict(X), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp_one_activation_per_layer_and_wide_inputs(dtype):
    # Every activation in one network, inputs large enough to saturate sigmoid and tanh and
    # to reach elu's exp far below 0; a single hidden layer and none.
    rng = np.random.default_rng(2)
    layers = [6, 7, 5, 8, 6, 4, 5, 4, 3]
    net = random_net(layers, list(HIDDEN), "softmax", dtype, 0)
    for X in batches((20 * rng.normal(size=(17, 6))).astype(dtype)):
        assert_matches(
            f"MLP all activations {dtype}", run(nnfast.to_onnx(net), X)["Y"], net.predict(X), dtype
        )
    for sizes in ([4, 2], [4, 1], [4, 3, 1]):
        net = random_net(sizes, "elu", "identity", dtype, 1)
        X = rng.normal(size=(17, 4)).astype(dtype)
        assert_matches(
            f"MLP {sizes} {dtype}", run(nnfast.to_onnx(net), X)["Y"], net.predict(X), dtype
        )


def test_mlp_maxout_with_one_piece_and_extreme_parameters():
    rng = np.random.default_rng(3)
    for kwargs in (
        {"maxout_pieces": 1},
        {"maxout_pieces": 5},
        {"leaky_slope": 0.0},
        {"leaky_slope": 1.0},
        {"elu_alpha": 0.0},
        {"elu_alpha": 3.0},
    ):
        for activation in ("maxout", "leaky_relu", "elu"):
            net = nnfast.MLP([3, 6, 2], activation=activation, seed=0, **kwargs)
            net.params = net.params + rng.normal(size=net.n_params)
            X = rng.normal(size=(17, 3))
            assert_matches(
                "MLP extreme parameters float64",
                run(nnfast.to_onnx(net), X)["Y"],
                net.predict(X),
                "float64",
            )


@pytest.mark.parametrize(("net_dtype", "dtype"), [("float64", "float32"), ("float32", "float64")])
def test_dtype_overrides_the_networks(net_dtype, dtype):
    net = random_net([4, 8, 2], "tanh", "sigmoid", net_dtype, 0)
    model = nnfast.to_onnx(net, dtype=dtype)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(
        np.dtype(dtype)
    )
    X = np.random.default_rng(0).normal(size=(17, 4))
    got = run(model, X.astype(dtype))["Y"]
    assert got.dtype == np.dtype(dtype)
    # The weights are rounded to float32 on one side: float32's tolerance.
    assert_matches("MLP dtype override", got, net.predict(X), "float32")


def test_model_metadata():
    model = nnfast.to_onnx(nnfast.MLP([2, 3, 1], seed=0))
    assert model.producer_name == "nnfast" and model.producer_version == nnfast.__version__
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert [i.name for i in model.graph.input] == ["X"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value") and dims[1].dim_value == 2
    # Equal constants are stored once.
    names = [t.name for t in model.graph.initializer]
    assert len(names) == len(set(names))


# ---- regressor, autoencoder --------------------------------------------------------------------


REGRESSIONS = [
    ("squared_error", 1),
    ("squared_error", 3),
    ("poisson", 1),
    ("gaussian_nll", 1),
    ("gaussian_nll", 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("loss", "n_targets"), REGRESSIONS)
@pytest.mark.parametrize("activation", SKLEARN_HIDDEN)
def test_regressor(activation, loss, n_targets, dtype):
    sk = estimators()
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 5))
    Y = np.abs(rng.normal(size=(40, n_targets))) + 0.1
    y = Y[:, 0] if n_targets == 1 else Y
    model = fitted(
        sk.MLPRegressor(
            loss=loss,
            hidden_layer_sizes=(12, 7),
            activation=activation,
            max_iter=3,
            random_state=0,
            dtype=dtype,
        ),
        X,
        y,
    )
    exported = nnfast.to_onnx(model)
    gaussian = loss == "gaussian_nll"
    assert [o.name for o in exported.graph.output] == ["variable"] + ["std"] * gaussian
    case = f"MLPRegressor {activation} {loss} {n_targets} {dtype}"
    for Xb in batches(X.astype(dtype)):
        got = run(exported, Xb)
        assert got["variable"].shape == (len(Xb), n_targets)
        if gaussian:
            mean, std = model.predict(Xb, return_std=True)
            assert_matches(case + " mean", got["variable"], mean.reshape(len(Xb), -1), dtype)
            assert_matches(case + " std", got["std"], std.reshape(len(Xb), -1), dtype)
        else:
            assert_matches(case, got["variable"], model.predict(Xb).reshape(len(Xb), -1), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_regressor_std_clips_the_log_variance(dtype):
    # predict's std is target_scale_ · exp(clip(s, -30, 30) / 2): log-variances far outside
    # the clip.
    sk = estimators()
    X = np.random.default_rng(11).normal(size=(17, 3))
    model = fitted(
        sk.MLPRegressor(
            loss="gaussian_nll", hidden_layer_sizes=(5,), max_iter=2, random_state=0, dtype=dtype
        ),
        X,
        X[:, :2],
    )
    model.intercepts_[-1][2:] = [45.0, -45.0]
    mean, std = model.predict(X, return_std=True)
    clipped = model.target_scale_ * [np.exp(15), np.exp(-15)]
    np.testing.assert_allclose(std, np.broadcast_to(clipped, std.shape), rtol=1e-6)  # every row
    got = run(nnfast.to_onnx(model), X.astype(dtype))
    assert_matches(f"MLPRegressor gaussian_nll clipped {dtype} mean", got["variable"], mean, dtype)
    assert_matches(f"MLPRegressor gaussian_nll clipped {dtype} std", got["std"], std, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden_layer_sizes", [(), (9,), (9, 6)])
@pytest.mark.parametrize("activation", SKLEARN_HIDDEN)
def test_autoencoder_transform(activation, hidden_layer_sizes, dtype):
    sk = estimators()
    X = np.random.default_rng(5).normal(size=(40, 5)).astype(dtype)
    model = fitted(
        sk.MLPAutoencoder(
            n_components=3,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            max_iter=3,
            random_state=0,
        ),
        X,
    )
    exported = nnfast.to_onnx(model)
    for Xb in batches(X):
        got = run(exported, Xb)["variable"]
        assert_matches(
            f"MLPAutoencoder {activation} {hidden_layer_sizes} {dtype}",
            got,
            model.transform(Xb),
            dtype,
        )


# ---- classifier ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "labels"), CLASSIFICATIONS)
@pytest.mark.parametrize("activation", SKLEARN_HIDDEN)
def test_classifier(activation, kind, labels, dtype):
    sk = estimators()
    rng = np.random.default_rng(6)
    X = 2 * rng.normal(size=(60, 4))
    y = targets(kind, labels, 60, rng)
    model = fitted(
        sk.MLPClassifier(
            hidden_layer_sizes=(10, 6),
            activation=activation,
            max_iter=3,
            random_state=0,
            dtype=dtype,
        ),
        X,
        y,
    )
    exported = nnfast.to_onnx(model)
    assert [o.name for o in exported.graph.output] == ["label", "probabilities"]
    label_type = exported.graph.output[0].type.tensor_type.elem_type
    assert label_type == (onnx.TensorProto.STRING if labels == "string" else onnx.TensorProto.INT64)
    for Xb in batches(X.astype(dtype)):
        got = run(exported, Xb)
        assert_matches(
            f"MLPClassifier {activation} {kind} {dtype}",
            got["probabilities"],
            model.predict_proba(Xb),
            dtype,
        )
        np.testing.assert_array_equal(got["label"], model.predict(Xb))
        assert got["label"].shape == model.predict(Xb).shape


@pytest.mark.parametrize(
    "classes",
    [np.array([False, True]), np.array([0.0, 1.0, 2.0]), np.array([3, 9], dtype=np.uint8)],
)
def test_classifier_bool_float_and_unsigned_classes_become_int64(classes):
    sk = estimators()
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 3))
    y = classes[np.arange(30) % len(classes)]
    model = fitted(sk.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, y)
    got = run(nnfast.to_onnx(model), X)
    assert got["label"].dtype == np.int64
    np.testing.assert_array_equal(got["label"], model.predict(X).astype(np.int64))


# ---- ensembles --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["squared_error", "gaussian_nll"])
def test_ensemble_regressor_mean_and_std(loss, dtype):
    sk = estimators()
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 4))
    Y = rng.normal(size=(40, 2))
    member = sk.MLPRegressor(
        loss=loss, hidden_layer_sizes=(8,), activation="tanh", max_iter=3, dtype=dtype
    )
    model = fitted(
        sk.MLPEnsembleRegressor(member, n_estimators=4, bootstrap=True, random_state=0), X, Y
    )
    exported = nnfast.to_onnx(model)
    for Xb in batches(X.astype(dtype)):
        got = run(exported, Xb)
        mean, std = model.predict(Xb, return_std=True)
        assert_matches(f"MLPEnsembleRegressor {loss} {dtype} mean", got["variable"], mean, dtype)
        assert_matches(f"MLPEnsembleRegressor {loss} {dtype} std", got["std"], std, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "labels"), CLASSIFICATIONS)
def test_ensemble_classifier(kind, labels, dtype):
    sk = estimators()
    rng = np.random.default_rng(9)
    X = 2 * rng.normal(size=(40, 4))
    y = targets(kind, labels, 40, rng)
    member = sk.MLPClassifier(hidden_layer_sizes=(8,), activation="elu", max_iter=3, dtype=dtype)
    model = fitted(sk.MLPEnsembleClassifier(member, n_estimators=3, random_state=0), X, y)
    exported = nnfast.to_onnx(model)
    for Xb in batches(X.astype(dtype)):
        got = run(exported, Xb)
        assert_matches(
            f"MLPEnsembleClassifier {kind} {dtype}",
            got["probabilities"],
            model.predict_proba(Xb),
            dtype,
        )
        np.testing.assert_array_equal(got["label"], model.predict(Xb))


def test_ensemble_classifier_members_that_missed_a_class():
    sk = estimators()
    rng = np.random.default_rng(10)
    X = rng.normal(size=(30, 3))
    y = np.array(["a", "b", "c"])[np.r_[0, 1, rng.integers(0, 2, 27), 2]]  # "c": one sample
    member = sk.MLPClassifier(hidden_layer_sizes=(6,), max_iter=3)
    model = fitted(
        sk.MLPEnsembleClassifier(member, n_estimators=6, bootstrap=True, random_state=1), X, y
    )
    assert {len(m.classes_) for m in model.estimators_} > {3}, "no member missed a class"
    got = run(nnfast.to_onnx(model), X)
    assert_matches(
        "MLPEnsembleClassifier missing classes float64",
        got["probabilities"],
        model.predict_proba(X),
        "float64",
    )
    np.testing.assert_array_equal(got["label"], model.predict(X))


# ---- errors -------------------------------------------------------------------------------------


def test_refuses_what_it_cannot_export():
    with pytest.raises(TypeError, match="model: expected an nnfast.MLP"):
        nnfast.to_onnx("net")
    with pytest.raises(TypeError, match="model: expected an nnfast.MLP"):
        nnfast.to_onnx(nnfast.MLP)
    net = nnfast.MLP([2, 2], seed=0)
    with pytest.raises(ValueError, match="dtype: expected 'float32' or 'float64'"):
        nnfast.to_onnx(net, dtype="float16")
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64'"):
        nnfast.to_onnx(net, dtype=3.5)


def test_refuses_unfitted_and_inconsistent_estimators():
    sk = estimators()
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LinearRegression

    for unfitted in (
        sk.MLPRegressor(),
        sk.MLPClassifier(),
        sk.MLPAutoencoder(),
        sk.MLPEnsembleRegressor(),
        sk.MLPEnsembleClassifier(),
    ):
        with pytest.raises(NotFittedError, match="model: expected a fitted"):
            nnfast.to_onnx(unfitted)
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(TypeError, match="model: expected an nnfast.MLP"):
        nnfast.to_onnx(LinearRegression().fit(X, X[:, 0]))
    model = fitted(sk.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2), X, X[:, 0])
    model.coefs_[1] = np.zeros((5, 1))
    with pytest.raises(ValueError, match=r"model.coefs_\[1\], model.intercepts_\[1\]"):
        nnfast.to_onnx(model)
    clf = fitted(sk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2), X, np.arange(20) % 2)
    clf.classes_ = np.array([0.5, 1.5])  # scikit-learn refuses to fit such labels
    with pytest.raises(ValueError, match="model.classes_: ONNX class labels are int64 or"):
        nnfast.to_onnx(clf)


def test_without_onnx_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "nnfast\[onnx\]"'):
        nnfast.to_onnx(nnfast.MLP([2, 2], seed=0))
