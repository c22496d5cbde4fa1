"""Misaligned arrays (C-contiguous views at a byte offset, as ``np.frombuffer(buf,
offset=1)`` gives, or a float64 view at offset 4) are accepted by every public entry point
and give bit for bit the results of the same values in an aligned array.

They are copied by the Python validation layer before any kernel sees them: the kernels
load whole elements, and a misaligned load is undefined behaviour in C (an UBSan build
reported it in finite.h, the products, elementwise.h, mse_delta, maxout_backward and the
batch gather of the training loop). The compiled entry points refuse misaligned pointers
(tests/test_entry_checks.py), so any path that forgot the copy fails here with that error.
A misaligned ``out=`` of nnfast.kernels is written through an aligned temporary.
"""

import numpy as np
import pytest
from conftest import bits
from test_entry_checks import misaligned, offsets

import nnfast
from nnfast import kernels

DTYPES = (np.float64, np.float32)


def data(dtype, n=12, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_in)).astype(dtype)
    y = np.tanh(X @ rng.standard_normal((n_in, n_out))).astype(dtype)
    w = rng.uniform(0.5, 2, n).astype(dtype)
    return X, y, w


@pytest.fixture(
    params=[(d, o) for d in DTYPES for o in offsets(d)],
    ids=lambda p: f"{np.dtype(p[0]).name}-offset{p[1]}",
)
def layout(request):
    return request.param


def test_mlp_predict_input_grad_loss_and_gradient(layout):
    dtype, offset = layout
    X, y, w = data(dtype)
    net = nnfast.MLP([3, 7, 2], activation="maxout", dtype=dtype, seed=1)
    Xu, yu, wu = (misaligned(a, offset) for a in (X, y, w))
    assert bits(net.predict(Xu)) == bits(net.predict(X))
    assert bits(net.predict(Xu[0])) == bits(net.predict(X[0]))
    assert bits(net.input_grad(Xu)) == bits(net.input_grad(X))
    assert net.loss(Xu, yu, sample_weight=wu, l2=0.1) == net.loss(X, y, sample_weight=w, l2=0.1)
    value_u, grad_u = net.loss_and_grad(Xu, yu, sample_weight=wu)
    value, grad = net.loss_and_grad(X, y, sample_weight=w)
    assert value_u == value and bits(grad_u) == bits(grad)


def test_mlp_losses_with_converted_targets(layout):
    dtype, offset = layout
    X, _, _ = data(dtype)
    labels = np.arange(X.shape[0]) % 3
    net = nnfast.MLP([3, 4, 3], output_activation="softmax", dtype=dtype, seed=2)
    expected = net.loss(X, labels, loss="cross_entropy")
    assert net.loss(misaligned(X, offset), misaligned(labels, offset), "cross_entropy") == expected
    gaussian = nnfast.MLP([3, 4, 2], dtype=dtype, seed=3)
    mean, std = gaussian.predict(X, return_std=True)
    mean_u, std_u = gaussian.predict(misaligned(X, offset), return_std=True)
    assert bits(mean_u) == bits(mean) and bits(std_u) == bits(std)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rprop", "lbfgs"])
def test_mlp_fit_with_misaligned_data_weights_and_validation(layout, optimizer):
    dtype, offset = layout
    X, y, w = data(dtype)
    Xv, yv, _ = data(dtype, n=5, seed=9)
    settings = dict(optimizer=optimizer, lr=0.01, batch_size=5, epochs=3, shuffle=True)
    fitted = []
    for arrays in [(X, y, w, Xv, yv), [misaligned(a, offset) for a in (X, y, w, Xv, yv)]]:
        net = nnfast.MLP([3, 6, 2], dtype=dtype, seed=4)
        history = net.fit(
            arrays[0],
            arrays[1],
            sample_weight=arrays[2],
            validation_data=(arrays[3], arrays[4]),
            **settings,
        )
        fitted.append((bits(net.params), history.loss, history.val_loss))
    assert fitted[0] == fitted[1]


def test_mlp_params_and_weights_assigned_from_misaligned_arrays(layout):
    dtype, offset = layout
    net = nnfast.MLP([3, 4, 2], dtype=dtype, seed=5)
    values = np.random.default_rng(0).normal(size=net.n_params).astype(dtype)
    net.params = misaligned(values, offset)
    assert bits(net.params) == bits(values) and net.params.flags.aligned
    W = np.full((3, 4), 0.5, dtype)
    net.weights[0] = misaligned(W, offset)
    assert bits(net.weights[0]) == bits(W)


# ------------------------------------------------------------------------------------------
# nnfast.kernels
# ------------------------------------------------------------------------------------------


def each_misaligned(arrays, offset):
    """Every single argument misaligned in turn, then all of them."""
    for name in arrays:
        yield {**arrays, name: misaligned(arrays[name], offset)}
    yield {name: misaligned(value, offset) for name, value in arrays.items()}


def assert_same_with_misaligned_inputs_and_out(function, arrays, offset, **options):
    expected = function(**arrays, **options)
    for variant in each_misaligned(arrays, offset):
        assert bits(function(**variant, **options)) == bits(expected)
    out = misaligned(np.zeros_like(expected), offset)
    assert function(**arrays, out=out, **options) is out
    assert bits(out) == bits(expected)
    out = misaligned(np.zeros_like(expected), offset)
    function(**{k: misaligned(v, offset) for k, v in arrays.items()}, out=out, **options)
    assert bits(out) == bits(expected)


def test_kernels_products(layout):
    dtype, offset = layout
    rng = np.random.default_rng(0)
    A, B, x = (rng.standard_normal(s).astype(dtype) for s in [(5, 7), (7, 3), (7,)])
    assert_same_with_misaligned_inputs_and_out(kernels.matmul, dict(A=A, B=B), offset)
    assert_same_with_misaligned_inputs_and_out(kernels.matvec, dict(A=A, x=x), offset)


@pytest.mark.parametrize("name", kernels.ACTIVATIONS)
def test_kernels_activations_and_dense_layers(layout, name):
    dtype, offset = layout
    rng = np.random.default_rng(1)
    shape = (4, 3, 2) if name == "maxout" else (4, 3)
    Z = rng.standard_normal(shape).astype(dtype)
    assert_same_with_misaligned_inputs_and_out(
        lambda Z, out=None: kernels.activation_forward(name, Z, out=out), dict(Z=Z), offset
    )
    A = kernels.activation_forward(name, Z)
    dA = rng.standard_normal(A.shape).astype(dtype)
    assert_same_with_misaligned_inputs_and_out(
        lambda Z, A, dA, out=None: kernels.activation_backward(name, Z, A, dA, out=out),
        dict(Z=Z, A=A, dA=dA),
        offset,
    )
    X = rng.standard_normal((5, 4)).astype(dtype)
    W = rng.standard_normal((4,) + shape[1:]).astype(dtype)
    b = rng.standard_normal(shape[1:]).astype(dtype)
    assert_same_with_misaligned_inputs_and_out(
        lambda X, W, b, out=None: kernels.dense_forward(X, W, b, name, out=out),
        dict(X=X, W=W, b=b),
        offset,
    )


def test_kernels_out_overlapping_a_misaligned_input(layout):
    """``out`` may be the very (misaligned) array an elementwise kernel reads."""
    dtype, offset = layout
    Z = np.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
    expected = kernels.activation_forward("tanh", Z)
    Zu = misaligned(Z, offset)
    assert kernels.activation_forward("tanh", Zu, out=Zu) is Zu
    assert bits(Zu) == bits(expected)


# ------------------------------------------------------------------------------------------
# nnfast.sklearn (the estimators convert their input through nnfast._validation too)
# ------------------------------------------------------------------------------------------


def fitted_pair(make, fit_args, offset):
    """The same estimator fitted on aligned and on misaligned copies of ``fit_args``."""
    aligned = make().fit(*fit_args)
    shifted = make().fit(*[misaligned(a, offset) for a in fit_args])
    assert bits(np.concatenate([c.ravel() for c in shifted.coefs_])) == bits(
        np.concatenate([c.ravel() for c in aligned.coefs_])
    )
    return aligned, shifted


# A few iterations only: the estimators warn that they have not converged.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_estimators_with_misaligned_inputs(layout, solver):
    from nnfast.sklearn import MLPAutoencoder, MLPClassifier, MLPRegressor

    dtype, offset = layout
    X, y, _ = data(dtype, n=30)
    Xu = misaligned(X, offset)
    options = dict(
        hidden_layer_sizes=(5,),
        max_iter=4,
        solver=solver,
        random_state=0,
        dtype=np.dtype(dtype).name,
    )
    regressor, shifted = fitted_pair(lambda: MLPRegressor(**options), (X, y[:, 0]), offset)
    assert bits(shifted.predict(Xu)) == bits(regressor.predict(X))
    assert regressor.score(Xu, y[:, 0]) == regressor.score(X, y[:, 0])
    assert bits(regressor.input_grad(Xu)) == bits(regressor.input_grad(X))
    labels = (X[:, 0] > 0).astype(np.int64)
    classifier, _ = fitted_pair(lambda: MLPClassifier(**options), (X, labels), offset)
    assert bits(classifier.predict_proba(Xu)) == bits(classifier.predict_proba(X))
    encoder, _ = fitted_pair(lambda: MLPAutoencoder(**options), (X,), offset)
    codes = encoder.transform(X)
    assert bits(encoder.transform(Xu)) == bits(codes)
    assert bits(encoder.inverse_transform(misaligned(codes, offset))) == bits(
        encoder.inverse_transform(codes)
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimator_sample_weight_misaligned():
    from nnfast.sklearn import MLPRegressor

    X, y, w = data(np.float64, n=30)
    options = dict(hidden_layer_sizes=(5,), max_iter=4, solver="lbfgs", random_state=0)
    aligned = MLPRegressor(**options).fit(X, y, sample_weight=w)
    shifted = MLPRegressor(**options).fit(X, y, sample_weight=misaligned(w, 1))
    assert bits(shifted.coefs_[0]) == bits(aligned.coefs_[0])
