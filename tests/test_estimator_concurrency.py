"""Estimators used from several threads at once (issue: Reliability II).

A method that reads the fitted model while another thread refits the same estimator must
use one model entirely, the old or the new one, and never crash or leak an internal error;
a second concurrent fit of one estimator (ensembles included) is refused.

The stress runs in a child process: before the fitted state was installed whole, a
predict during a refit on data of another width read past the end of each row
(heap-buffer-overflow), which would take the test runner down with it.
"""

import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from nnfast.sklearn import (  # noqa: E402
    MLPAutoencoder,
    MLPClassifier,
    MLPEnsembleRegressor,
    MLPRegressor,
    _state,
)

# Each child refits one estimator in a thread, alternating two data sets, while the main
# thread calls a read method as fast as it can; every result must be exactly what one of
# the two fitted models gives, and any error must be the clean "wrong number of features".
STRESS = textwrap.dedent("""
    import sys, threading, time, warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    import nnfast.sklearn as nns

    kind, method, same_width = sys.argv[1], sys.argv[2], sys.argv[3] == "same"
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    wide = rng.uniform(-1, 1, size=(64, 16))
    narrow = wide[:, :16] * 0.5 if same_width else wide[:, :1]
    targets = {"MLPRegressor": wide.sum(axis=1), "MLPClassifier": (wide[:, 0] > 0).astype(int),
               "MLPAutoencoder": None}
    y = targets[kind]
    settings = dict(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    if kind == "MLPAutoencoder":
        settings["n_components"] = 1

    def make():
        return getattr(nns, kind)(**settings)

    # The two models the refits alternate between, and what `method` gives on `wide` for each.
    expected = []
    for X in (wide, narrow):
        try:
            expected.append(getattr(make().fit(X, y), method)(wide))
        except ValueError:  # narrow (1 column) cannot take `wide`
            pass
    model = make().fit(wide, y)
    stop = False

    def refit():
        while not stop:
            for X in (narrow, wide):
                model.fit(X, y)

    thread = threading.Thread(target=refit)
    thread.start()
    calls = matches = refused = 0
    deadline = time.perf_counter() + 1.5
    try:
        while time.perf_counter() < deadline:
            calls += 1
            try:
                out = getattr(model, method)(wide)
            except ValueError as err:
                assert "features" in str(err), err
                refused += 1
                continue
            assert any(np.array_equal(out, e) for e in expected), "a mixed model"
            matches += 1
    finally:
        stop = True
        thread.join()
    assert matches > 0, (calls, matches, refused)
    print(calls, matches, refused)
""")


@pytest.mark.parametrize("same_width", ["same", "other"])
@pytest.mark.parametrize(
    "kind,method",
    [
        ("MLPRegressor", "predict"),
        ("MLPRegressor", "input_grad"),
        ("MLPClassifier", "predict_proba"),
        ("MLPAutoencoder", "transform"),
    ],
)
def test_a_read_during_a_refit_uses_one_whole_model(kind, method, same_width):
    result = subprocess.run(
        [sys.executable, "-c", STRESS, kind, method, same_width],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"child exited with {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr[-4000:]}"
    )


def _hold_a_fit(model, X, y):
    """Start model.fit(X, y) in a thread and return it once the fit holds the estimator."""
    errors = []

    def fit():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
        except Exception as err:  # pragma: no cover - reported by the caller
            errors.append(err)

    thread = threading.Thread(target=fit)
    thread.start()
    while not _state.is_being_fitted(model) and thread.is_alive():
        pass
    assert thread.is_alive(), "the first fit ended before a second could be tried"
    return thread, errors


def test_two_concurrent_fits_of_one_ensemble_refuse_the_second():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(3000, 8))
    y = np.tanh(X.sum(axis=1))
    member = MLPRegressor(
        hidden_layer_sizes=(128, 128), max_iter=10, random_state=0, tol=0.0, n_iter_no_change=1000
    )
    ensemble = MLPEnsembleRegressor(member, n_estimators=4, random_state=0)
    thread, errors = _hold_a_fit(ensemble, X, y)
    with pytest.raises(RuntimeError, match="MLPEnsembleRegressor is already being fitted"):
        ensemble.fit(X, y)
    thread.join()
    assert not errors and len(ensemble.estimators_) == 4
    assert not _state.is_being_fitted(ensemble)


def test_reads_during_a_same_width_refit_see_the_old_model_whole():
    """scikit-learn's check_is_fitted iterates vars(estimator): a fit that added and removed
    private attributes made a concurrent predict fail with "dictionary changed size during
    iteration". The refit here gives the same model again (same data and random_state), so
    every read must give exactly the first model's prediction."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(2000, 8))
    y = np.tanh(X.sum(axis=1))
    model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    expected = model.predict(X[:10])
    thread, errors = _hold_a_fit(model, X, y)
    reads = 0
    while thread.is_alive():
        np.testing.assert_array_equal(model.predict(X[:10]), expected)
        reads += 1
    thread.join()
    assert not errors and reads > 0
    np.testing.assert_array_equal(model.predict(X[:10]), expected)


def test_a_refit_installs_its_state_in_one_assignment():
    X = np.linspace(-1, 1, 40)[:, None]
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, (X[:, 0] > 0).astype(int))
        first = model.__dict__
        net = model._net
        model.fit(np.hstack([X, X]), (X[:, 0] > 0).astype(int))
    assert model.__dict__ is not first, "the refit must replace the dict, not edit it"
    assert first["n_features_in_"] == 1 and first["_net"] is net  # the old state is intact
    assert model.n_features_in_ == 2 and model._net.layer_sizes[0] == 2


def test_partial_fit_works_on_a_copy_until_it_is_done():
    X = np.linspace(-1, 1, 40)[:, None]
    y = (X[:, 0] > 0).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(3,), random_state=0)
    model.partial_fit(X, y, classes=[0, 1])
    old_params = model._net.params.copy()
    old_net = model._net
    model.partial_fit(X, y)
    np.testing.assert_array_equal(old_net.params, old_params)  # trained a copy
    assert model._net is not old_net and model.t_ == 2 * len(X)  # as scikit-learn counts
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(X, y)  # the first call needs classes, as in sklearn


def test_autoencoder_warm_start_continues_from_the_fitted_weights():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 4))
    model = MLPAutoencoder(
        n_components=2, hidden_layer_sizes=(5,), max_iter=3, random_state=0, warm_start=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
        first = list(model.loss_curve_)
        model.fit(X)
    assert model.loss_curve_[:3] == first and len(model.loss_curve_) == 6
    assert model.loss_curve_[3] < first[0]
