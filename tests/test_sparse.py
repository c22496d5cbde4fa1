"""Sparse X (CSR, CSC) in nnfast.sklearn, as scikit-learn 1.9's MLPs accept it.

Training gathers each batch's rows of a CSR matrix into the dense batch buffer inside the
compiled loop (nnfast/_csr.pyx): the batch holds exactly the values of ``X.toarray()``, so a
fit on sparse X equals the fit on its dense copy bit for bit (same seed). Prediction,
validation scores and L-BFGS's full-batch evaluations densify bounded row chunks; those
give the dense results bit for bit too. Malformed matrices are refused with a ValueError
naming X, by the Python checks and, behind them, by the compiled entry points.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import OneHotEncoder

from nnfast import MLP, _solvers, _sparse
from nnfast._spec import LOSS_CODES
from nnfast.sklearn import MLPAutoencoder, MLPClassifier, MLPRegressor

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
DTYPES = ("float64", "float32")


def one_hot_data(n=240, seed=0):
    """OneHotEncoder's CSR output of 3 categorical columns plus a regression and a
    3-class target that depend on them."""
    rng = np.random.default_rng(seed)
    cats = np.column_stack([rng.integers(0, k, n) for k in (4, 5, 3)])
    X = OneHotEncoder().fit_transform(cats)  # CSR, float64, 12 columns
    assert sp.issparse(X) and X.format == "csr"
    y = cats[:, 0] * 0.5 - cats[:, 1] * 0.3 + cats[:, 2] + 0.1 * rng.standard_normal(n)
    labels = (cats[:, 0] + cats[:, 2]) % 3
    return X, y, labels


def fitted_state(model):
    state = [model.n_iter_, list(model.loss_curve_ if hasattr(model, "loss_curve_") else [])]
    state.append(getattr(model, "validation_scores_", None))
    return state, [a.copy() for a in model.coefs_ + model.intercepts_]


def assert_identical(a, b):
    (state_a, arrays_a), (state_b, arrays_b) = fitted_state(a), fitted_state(b)
    assert state_a == state_b
    for x, y in zip(arrays_a, arrays_b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def fit(model, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kw)


# ------------------------------------------------------------------------------------------
# fit on sparse X == fit on X.toarray(), bit for bit
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
@pytest.mark.parametrize("variant", ["plain", "early_stopping", "sample_weight", "no_shuffle"])
def test_fit_sparse_equals_dense(fmt, dtype, solver, kind, variant):
    X, y, labels = one_hot_data()
    X = X.asformat(fmt)
    Estimator, target = (MLPRegressor, y) if kind == "regressor" else (MLPClassifier, labels)
    params = dict(
        hidden_layer_sizes=(7, 5),
        solver=solver,
        batch_size=32,
        max_iter=15,
        random_state=3,
        dtype=dtype,
        early_stopping=variant == "early_stopping",
        shuffle=variant != "no_shuffle",
        learning_rate_init=0.01,
    )
    kw = {}
    if variant == "sample_weight":
        kw["sample_weight"] = np.random.default_rng(1).uniform(0, 2, X.shape[0])
    sparse_model = fit(Estimator(**params), X, target, **kw)
    dense_model = fit(Estimator(**params), X.toarray(), target, **kw)
    assert_identical(sparse_model, dense_model)
    assert sparse_model.n_iter_ > 1
    X_test = X[:50]
    np.testing.assert_array_equal(
        sparse_model.predict(X_test), dense_model.predict(X_test.toarray())
    )
    np.testing.assert_array_equal(
        sparse_model.predict(X_test), sparse_model.predict(X_test.toarray())
    )
    assert sparse_model.score(X_test, target[:50]) == dense_model.score(
        X_test.toarray(), target[:50]
    )
    if kind == "classifier":
        np.testing.assert_array_equal(
            sparse_model.predict_proba(X_test), dense_model.predict_proba(X_test.toarray())
        )


@quiet
@pytest.mark.parametrize("dtype", DTYPES)
def test_lbfgs_sparse_equals_dense(dtype):
    # 1100 rows: the full-batch loss runs over more than one chunk of rows.
    X, y, _ = one_hot_data(n=1100)
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=25, random_state=0, dtype=dtype)
    sparse_model = MLPRegressor(**params).fit(X.tocsc(), y)
    dense_model = MLPRegressor(**params).fit(X.toarray(), y)
    assert sparse_model.n_iter_ == dense_model.n_iter_ > 1
    assert sparse_model.loss_ == dense_model.loss_
    for a, b in zip(sparse_model.coefs_, dense_model.coefs_):
        np.testing.assert_array_equal(a, b)


@quiet
def test_partial_fit_and_warm_start_on_sparse():
    X, y, labels = one_hot_data()
    a = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    b = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    for _ in range(3):
        a.partial_fit(X, labels, classes=[0, 1, 2])
        b.partial_fit(X.toarray(), labels, classes=[0, 1, 2])
    assert_identical(a, b)
    a = MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, warm_start=True, random_state=0)
    b = MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, warm_start=True, random_state=0)
    for _ in range(2):
        fit(a, X, y)
        fit(b, X.toarray(), y)
    assert_identical(a, b)


@quiet
@pytest.mark.parametrize("container", [sp.csr_array, sp.csc_array, sp.coo_matrix, sp.lil_matrix])
def test_other_containers_and_index_dtypes(container):
    X, y, _ = one_hot_data()
    dense = fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0), X.toarray(), y)
    model = fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0), container(X), y)
    assert_identical(model, dense)
    wide = X.copy()
    wide.indices, wide.indptr = wide.indices.astype(np.int64), wide.indptr.astype(np.int64)
    np.testing.assert_array_equal(model.predict(wide), dense.predict(X.toarray()))


@quiet
def test_unsorted_indices_and_duplicates_are_what_toarray_says():
    X, y, _ = one_hot_data()
    X = X.tolil().tocsr()
    # Reverse each row's entries (unsorted indices) and split every first entry into two
    # halves (duplicates, which toarray() adds up).
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    data = np.concatenate([X.data * 0.5, X.data * 0.5])
    cols = np.concatenate([X.indices, X.indices])
    order = np.lexsort((-cols, np.concatenate([rows, rows])))
    messy = sp.csr_matrix(
        (data[order], cols[order], np.concatenate([[0], np.cumsum(2 * np.diff(X.indptr))])),
        shape=X.shape,
    )
    assert not messy.has_canonical_format
    np.testing.assert_array_equal(messy.toarray(), X.toarray())
    before = (messy.data.copy(), messy.indices.copy(), messy.indptr.copy())
    a = fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0), messy, y)
    b = fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0), X.toarray(), y)
    assert_identical(a, b)
    np.testing.assert_array_equal(a.predict(messy), b.predict(X.toarray()))
    for old, new in zip(before, (messy.data, messy.indices, messy.indptr)):
        np.testing.assert_array_equal(old, new)  # the user's matrix is left as it was


# ------------------------------------------------------------------------------------------
# bounded memory: chunks, not X.toarray()
# ------------------------------------------------------------------------------------------


@quiet
def test_predictions_in_row_chunks(monkeypatch):
    X, y, labels = one_hot_data(n=500)
    model = fit(MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0), X, labels)
    expected = model.predict_proba(X.toarray())
    monkeypatch.setattr(_sparse, "DENSE_CHUNK_BYTES", 7 * 12 * 8)  # 7 rows of 12 float64
    assert _sparse.chunk_rows(X.shape[1], np.float64) == 7
    np.testing.assert_array_equal(model.predict_proba(X), expected)
    np.testing.assert_array_equal(model.predict(X.tocsc()), model.predict(X.toarray()))


@quiet
def test_input_grad_on_sparse(monkeypatch):
    X, y, labels = one_hot_data(n=60)
    reg = fit(MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, y)
    clf = fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, labels)
    monkeypatch.setattr(_sparse, "DENSE_CHUNK_BYTES", 1)  # one row per chunk
    for model in (reg, clf):
        np.testing.assert_array_equal(model.input_grad(X.tocsc()), model.input_grad(X.toarray()))


@quiet
def test_fit_and_predict_never_densify_the_whole_matrix():
    # 6000 x 3000 float64 is 144 MB dense; the sparse matrix is 0.3 MB.
    rng = np.random.default_rng(0)
    n, d = 6000, 3000
    X = sp.random(n, d, density=0.002, format="csr", random_state=1, dtype=np.float64)
    y = np.asarray(X.sum(axis=1)).ravel() + 0.01 * rng.standard_normal(n)
    model = MLPRegressor(hidden_layer_sizes=(2,), max_iter=2, random_state=0, early_stopping=True)
    tracemalloc.start()
    try:
        fit(model, X, y)
        model.predict(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30e6, f"{peak / 1e6:.1f} MB traced"


# ------------------------------------------------------------------------------------------
# malformed matrices: ValueError naming X, never a crash
# ------------------------------------------------------------------------------------------


def malformed(kind, fmt):
    X, _, _ = one_hot_data(n=20)
    X = X.asformat(fmt)
    X.sort_indices()
    data, indices, indptr = X.data.copy(), X.indices.copy(), X.indptr.copy()
    bound = X.shape[1] if fmt == "csr" else X.shape[0]
    if kind == "index_too_large":
        indices[5] = bound
    elif kind == "index_negative":
        indices[3] = -1
    elif kind == "indptr_decreasing":
        indptr[4], indptr[5] = indptr[5], indptr[4]
    elif kind == "indptr_short":
        indptr = indptr[:-1]
    elif kind == "nnz_too_large":
        indptr[-1] += 3
    elif kind == "indptr_not_from_zero":
        indptr[0] = 1
    container = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    Y = container(X.shape)  # filled in by hand: scipy's constructor would check some of it
    Y.data, Y.indices, Y.indptr = data, indices, indptr
    return Y


KINDS = [
    ("index_too_large", r"indices in \[0, \d+\)"),
    ("index_negative", r"indices in \[0, \d+\)"),
    ("indptr_decreasing", "non-decreasing"),
    ("indptr_short", r"\d+ entries in indptr"),
    ("nnz_too_large", "indptr"),
    ("indptr_not_from_zero", "indptr"),
]


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("kind, message", KINDS)
def test_malformed_sparse_refused(fmt, kind, message):
    X = malformed(kind, fmt)
    y = np.arange(X.shape[0], dtype=float)
    with pytest.raises(ValueError, match=f"^X: .*{message}"):
        MLPRegressor(max_iter=2).fit(X, y)
    model = fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=2), malformed("none", fmt), y)
    with pytest.raises(ValueError, match=f"^X: .*{message}"):
        model.predict(X)


def test_non_finite_and_too_large_values_refused():
    X, y, _ = one_hot_data(n=20)
    bad = X.copy()
    bad.data[4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPRegressor(max_iter=2).fit(bad, y)
    big = X.copy()
    big.data[4] = 1e300
    row, col = np.repeat(np.arange(20), np.diff(X.indptr))[4], X.indices[4]
    with pytest.raises(
        ValueError, match=rf"X: expected values that fit in float32 .* \({row}, {col}\)"
    ):
        MLPRegressor(max_iter=2, dtype="float32").fit(big, y)


def test_autoencoder_still_refuses_sparse():
    X, _, _ = one_hot_data(n=20)
    with pytest.raises(TypeError, match="dense data is required|Sparse data was passed"):
        MLPAutoencoder().fit(X)


# ------------------------------------------------------------------------------------------
# the compiled entry points re-check what they rely on
# ------------------------------------------------------------------------------------------


@pytest.fixture(params=DTYPES)
def driver_case(request):
    dtype = np.dtype(request.param)
    X, y, _ = one_hot_data(n=40)
    X = X.astype(dtype)
    mlp = MLP([X.shape[1], 4, 1], dtype=dtype.name, seed=0)
    rows = _sparse.compiled_rows(X)
    Y = y.astype(dtype)[:, None]
    return mlp, rows, Y


def train_once(mlp, rows, Y):
    net = _solvers.compiled(mlp)
    opt = _solvers.make_optimizer("adam", net.params, 1e-3)
    data = _solvers.TrainingData(rows, Y, None, np.arange(rows.shape[0], dtype=np.intp))
    return net.train(
        data,
        _solvers.make_objective("mse"),
        opt,
        batch_size=8,
        epochs=1,
        backup=np.empty_like(net.params),
        losses=np.empty(1),
    )


def replaced(rows, **fields):
    return rows._replace(**fields)


BAD_FIELDS = [
    (lambda r: {"indptr": r.indptr[:-1]}, r"data\.X\.indptr: expected \d+ "),
    (lambda r: {"indptr": np.concatenate([[1], r.indptr[1:]])}, r"data\.X\.indptr: expected 0"),
    (lambda r: {"indptr": r.indptr[::-1].copy()}, r"data\.X\.indptr"),
    (lambda r: {"indices": r.indices[:-1].copy()}, r"data\.X\.indices: expected \d+"),
    (lambda r: {"data": r.data[:-1].copy()}, r"data\.X\.data: expected \d+"),
    (
        lambda r: {"indices": np.where(np.arange(r.indices.size) == 7, r.shape[1], r.indices)},
        r"data\.X\.indices: expected column indices in \[0, \d+\), got \d+ at position 7",
    ),
    (
        lambda r: {"indices": np.where(np.arange(r.indices.size) == 2, -5, r.indices)},
        r"data\.X\.indices: expected column indices in \[0, \d+\), got -5 at position 2",
    ),
    (lambda r: {"shape": (r.shape[0], r.shape[1] + 1)}, r"data\.X: expected \d+ columns"),
    (lambda r: {"shape": (r.shape[0] + 1, r.shape[1])}, r"data\.X\.indptr: expected \d+"),
]


@pytest.mark.parametrize("bad, message", BAD_FIELDS)
def test_train_rechecks_sparse_rows(driver_case, bad, message):
    mlp, rows, Y = driver_case
    assert train_once(mlp, rows, Y) == 1  # the valid case runs
    with pytest.raises(ValueError, match=message):
        train_once(mlp, replaced(rows, **bad(rows)), Y)
    net = _solvers.compiled(mlp)
    grad = np.empty_like(net.params)
    with pytest.raises(ValueError, match=message.replace(r"data\.X", "X")):
        net.loss_and_grad(replaced(rows, **bad(rows)), Y, None, LOSS_CODES["mse"], 1.0, grad)


def test_train_rechecks_sparse_dtypes(driver_case):
    mlp, rows, Y = driver_case
    with pytest.raises((ValueError, TypeError), match=r"data\.X\.indices"):
        train_once(mlp, replaced(rows, indices=rows.indices.astype(np.int32)), Y)
    with pytest.raises((ValueError, TypeError), match=r"data\.X\.indptr"):
        train_once(mlp, replaced(rows, indptr=rows.indptr.astype(np.int32)), Y)
    other = np.float32 if rows.data.dtype == np.float64 else np.float64
    with pytest.raises((ValueError, TypeError), match=r"data\.X\.data"):
        train_once(mlp, replaced(rows, data=rows.data.astype(other)), Y)


def test_sparse_loss_and_grad_equals_dense(driver_case):
    mlp, rows, Y = driver_case
    net = _solvers.compiled(mlp)
    dense = np.zeros(rows.shape, dtype=net.dtype)
    for r in range(rows.shape[0]):
        k = slice(rows.indptr[r], rows.indptr[r + 1])
        dense[r, rows.indices[k]] = rows.data[k]
    g_sparse, g_dense = np.empty_like(net.params), np.empty_like(net.params)
    w = np.linspace(0.5, 1.5, rows.shape[0]).astype(net.dtype)
    mse = LOSS_CODES["mse"]
    a = net.loss_and_grad(rows, Y, w, mse, 0.1, g_sparse, 0.01)
    b = net.loss_and_grad(dense, Y, w, mse, 0.1, g_dense, 0.01)
    assert a == b
    np.testing.assert_array_equal(g_sparse, g_dense)
    assert net.loss(rows, Y, None, mse, 0.1) == net.loss(dense, Y, None, mse, 0.1)
