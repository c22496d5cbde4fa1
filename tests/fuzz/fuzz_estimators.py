"""Fuzz cases of the scikit-learn estimators (``nnfast.sklearn``): ``MLPRegressor``
(squared error and ``loss="gaussian_nll"``), ``MLPClassifier``, the two ensembles and
``MLPAutoencoder``.

scikit-learn's own estimator, given the same arguments, decides what must be refused;
accepted data must give predictions of the right shape (the autoencoder: what
``nnfast.reference`` computes from its coefficients). scikit-learn and ``nnfast.sklearn``
are imported inside the cases, as they were when the cases' seeds were derived. Run by
``test_fuzz.py`` in a child process.
"""

import numpy as np
import pytest
from conftest import assert_net_close, autoencoder_reference
from fuzz_harness import assert_names, fuzz, snapshot
from fuzz_inputs import arrays, as64, corrupted
from hypothesis import assume, given
from hypothesis import strategies as st


def _fit_args_one_maybe_corrupted(data, X, y, w, n):
    """``(arg, args)``: the keyword arguments of an estimator's ``fit`` with at most one of
    them (``arg``: None, "X", "y" or "sample_weight") replaced by a bad value."""
    arg = data.draw(st.sampled_from([None, None, "X", "y", "sample_weight"]))
    args = {"X": X, "y": y, "sample_weight": w}
    if arg == "X":
        args["X"] = data.draw(corrupted(X, np.float64, [(n, 0), (n + 1, np.shape(X)[1])]))
    elif arg == "y":
        args["y"] = data.draw(
            st.sampled_from(
                [None, np.ones(n + 1), np.full(n, np.nan), np.ones((n, 1, 1)), np.ones(n, complex)]
            )
        )
    elif arg == "sample_weight":
        args["sample_weight"] = data.draw(
            st.sampled_from([np.ones(n + 1), np.full(n, -1.0), np.full(n, np.inf), "w"])
        )
    return arg, args


@given(
    kind=st.sampled_from(["regressor", "gaussian_nll", "classifier"]),
    n=st.sampled_from([2, 3, 8]),
    data=st.data(),
)
@fuzz(120)
def test_estimators(kind, n, data):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from nnfast.sklearn import MLPClassifier, MLPRegressor

    X = data.draw(arrays((n, data.draw(st.integers(1, 3)))))
    if kind != "classifier":
        y = data.draw(arrays((n,)))
        model = MLPRegressor(
            hidden_layer_sizes=(3,),
            max_iter=2,
            random_state=0,
            solver=data.draw(st.sampled_from(["adam", "sgd", "lbfgs"])),
            loss="gaussian_nll" if kind == "gaussian_nll" else "squared_error",
        )
    else:
        y = np.array(data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)))
        assume(len(set(y.tolist())) > 1)
        model = MLPClassifier(
            hidden_layer_sizes=(3,),
            max_iter=2,
            random_state=0,
            solver=data.draw(st.sampled_from(["adam", "sgd", "lbfgs"])),
        )
    w = data.draw(st.one_of(st.none(), arrays((n,), 0.5, 2.0, ["float64", "int64"])))
    arg, args = _fit_args_one_maybe_corrupted(data, X, y, w, n)
    # scikit-learn's own estimator on the same arguments decides what is an error.
    from sklearn import neural_network

    params = {k: v for k, v in model.get_params().items() if k not in ("dtype", "n_threads")}
    if kind == "gaussian_nll":  # an nnfast addition: the same data rules as squared_error
        params["loss"] = "squared_error"
    twin = getattr(neural_network, type(model).__name__)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            twin.fit(**args)
            expected = None
        except (ValueError, TypeError) as err:
            expected = type(err)
        # The one documented difference (see nnfast.sklearn): negative weights are refused.
        if arg == "sample_weight" and isinstance(args[arg], np.ndarray) and (args[arg] < 0).any():
            expected = ValueError
        if expected is not None:
            with pytest.raises(expected):
                model.fit(**args)
            return
        model.fit(**args)
    if arg is not None:  # accepted by both (an object array of numbers, say)
        return
    prediction = model.predict(X)
    assert prediction.shape == (n,)
    if kind == "classifier":
        assert set(prediction.tolist()) <= set(y.tolist())
    else:
        assert np.isfinite(prediction).all()
    if kind == "gaussian_nll":
        mean, std = model.predict(X, return_std=True)
        assert mean.shape == std.shape == (n,) and (std > 0).all()
        np.testing.assert_array_equal(mean, prediction)
    with pytest.raises((ValueError, TypeError)):
        model.predict(np.ones((2, np.shape(X)[1] + 1)))


@given(
    kind=st.sampled_from(["regressor", "classifier"]), n=st.sampled_from([2, 3, 8]), data=st.data()
)
@fuzz(40)
def test_ensembles(kind, n, data):
    """An ensemble accepts and refuses exactly what its member estimator does; accepted
    data gives the members' mean (and spread) in the right shapes."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from nnfast import sklearn as nns

    X = data.draw(arrays((n, data.draw(st.integers(1, 3)))))
    if kind == "regressor":
        y = data.draw(arrays((n,)))
        member = nns.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
        ensemble = nns.MLPEnsembleRegressor(
            member, n_estimators=2, random_state=0, bootstrap=data.draw(st.booleans())
        )
    else:
        y = np.array(data.draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n)))
        assume(len(set(y.tolist())) > 1)
        member = nns.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
        ensemble = nns.MLPEnsembleClassifier(member, n_estimators=2, random_state=0)
    arg, args = _fit_args_one_maybe_corrupted(data, X, y, None, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            member.fit(**args)
            expected = None
        except (ValueError, TypeError) as err:
            expected = type(err)
        if expected is not None:
            with pytest.raises(expected):
                ensemble.fit(**args)
            assert not hasattr(ensemble, "estimators_")
            return
        ensemble.fit(**args)
    if arg is not None:
        return
    if kind == "regressor":
        mean, std = ensemble.predict(X, return_std=True)
        members = np.stack(
            [m.predict(np.asarray(X, dtype=np.float64)) for m in ensemble.estimators_]
        )
        assert mean.shape == std.shape == (n,)
        np.testing.assert_allclose(mean, members.mean(axis=0), rtol=1e-12)
    else:
        proba = ensemble.predict_proba(X)
        assert proba.shape == (n, 2)
        assert set(ensemble.predict(X).tolist()) <= set(y.tolist())
    with pytest.raises((ValueError, TypeError)):
        ensemble.predict(np.ones((2, np.shape(X)[1] + 1)))


def rows(array):
    """The number of rows of an array-like (0 for what has no length)."""
    try:
        return len(array)
    except TypeError:
        return 0


def _refuses(array, width, dtype):
    """Whether MLPAutoencoder's transform / inverse_transform must refuse ``array`` given to
    a network of ``dtype``: what scikit-learn's check_array refuses, rows of a width other
    than ``width``, and values too large for ``dtype``."""
    from sklearn.utils import check_array

    try:
        checked = check_array(array, dtype=(np.float64, np.float32))
    except (ValueError, TypeError):
        return True
    return checked.shape[1] != width or np.abs(checked).max() > np.finfo(dtype).max


@given(n=st.sampled_from([2, 3, 8]), data=st.data())
@fuzz(60)
def test_autoencoder(n, data):
    import warnings

    from sklearn import neural_network
    from sklearn.exceptions import ConvergenceWarning

    from nnfast.sklearn import MLPAutoencoder

    n_features = data.draw(st.integers(1, 3))
    X = data.draw(arrays((n, n_features)))
    w = data.draw(st.one_of(st.none(), arrays((n,), 0.5, 2.0, ["float64", "int64"])))
    model = MLPAutoencoder(
        data.draw(st.integers(1, n_features)),
        hidden_layer_sizes=(3,),
        activation=data.draw(st.sampled_from(["relu", "tanh", "maxout"])),
        solver=data.draw(st.sampled_from(["adam", "sgd", "lbfgs"])),
        dtype=data.draw(st.sampled_from([None, "float32", "float64"])),
        max_iter=2,
        random_state=0,
    )
    arg = data.draw(st.sampled_from([None, None, "X", "sample_weight", "n_components"]))
    args = {"X": X, "sample_weight": w}
    if arg == "X":
        args["X"] = data.draw(corrupted(X, np.float64, [(n, 0), (n,)]))
    elif arg == "sample_weight":
        args["sample_weight"] = data.draw(
            st.sampled_from([np.ones(n + 1), np.full(n, -1.0), np.full(n, np.inf), "w"])
        )
    elif arg == "n_components":
        model.set_params(n_components=n_features + data.draw(st.integers(1, 2)))
    # scikit-learn's regressor on the same X and sample_weight (and a valid y) decides what
    # is an error in them; negative weights are refused (the documented difference).
    twin = neural_network.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            twin.fit(args["X"], np.zeros(rows(args["X"])), sample_weight=args["sample_weight"])
            expected = (
                twin.n_features_in_ < model.n_components  # [["1", "2"]] for X, say
                or (arg == "sample_weight" and (args["sample_weight"] < 0).any())
            )
        except (ValueError, TypeError):
            expected = True
        if expected:
            with pytest.raises((ValueError, TypeError)) as err:
                model.fit(**args)
            if twin.__dict__.get("n_features_in_", np.inf) < model.n_components:
                assert_names(err.value, "n_components")
            assert not hasattr(model, "coefs_")
            return
        model.fit(**args)
    if arg is not None:  # accepted by both (an object array of numbers, say)
        return
    dtype = model.coefs_[0].dtype
    X64 = as64(X)
    encoder, decoder, _ = autoencoder_reference(model)
    codes = model.transform(X)
    assert codes.dtype == dtype
    # Each output sums terms of the order of the inputs (|X| <= 3, codes alike) times
    # weights of order 1; for X near 0 they cancel to far less: scale 1 for the tolerance.
    expected = encoder.predict(X64.astype(dtype))
    assert_net_close(codes, expected, dtype, scale=max(np.abs(expected).max(), 1.0))
    expected = decoder.predict(codes)
    assert_net_close(
        model.inverse_transform(codes), expected, dtype, scale=max(np.abs(expected).max(), 1.0)
    )
    # One bad argument to either half: refused (scikit-learn's messages), nothing changes.
    method, good = data.draw(st.sampled_from([("transform", X), ("inverse_transform", codes)]))
    width = np.shape(good)[1]
    bad = data.draw(corrupted(good, dtype, [(n, width + 1), (n,), (n, 0)]))
    before = snapshot(model._net)
    if _refuses(bad, width, dtype):
        with pytest.raises((ValueError, TypeError)):
            getattr(model, method)(bad)
    else:
        getattr(model, method)(bad)
    assert snapshot(model._net) == before
