"""Past one machine: ensembles and grid searches over nnfast estimators on a Dask cluster.

A ``distributed.LocalCluster`` with two worker processes stands in for a real cluster;
``joblib.parallel_backend("dask")`` sends the members of an ensemble and the fits of a
``GridSearchCV`` to its workers. The task stream proves the work ran there, and the
results must equal those of the same fits run locally (the members' seeds do not depend
on where they run).
"""

import logging

import joblib
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream
from sklearn.model_selection import GridSearchCV

from nnfast.sklearn import MLPEnsembleRegressor, MLPRegressor

# 50 L-BFGS iterations do not converge: expected, and irrelevant to where the fits run.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

MEMBER = MLPRegressor(
    hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", max_iter=50, random_state=0
)


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def data(n=120):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (n, 3))
    return X, np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=n)


def ran_on_workers(tasks, client, name):
    """The keys of the recorded tasks that ran `name`, all on the cluster's workers."""
    workers = set(client.scheduler_info()["workers"])
    hits = [t for t in tasks if name in str(t["key"])]
    assert hits, f"no task ran {name}: {[t['key'] for t in tasks]}"
    assert {t["worker"] for t in hits} <= workers
    return hits


def test_ensemble_members_train_on_the_workers(client):
    X, y = data()
    local = MLPEnsembleRegressor(MEMBER, n_estimators=4, bootstrap=True, random_state=0)
    local.fit(X, y)
    remote = MLPEnsembleRegressor(MEMBER, n_estimators=4, bootstrap=True, random_state=0, n_jobs=-1)
    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote.fit(X, y)
    ran_on_workers(stream.data, client, "_fit_member")
    for a, b in zip(local.predict(X, return_std=True), remote.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)


def test_grid_search_fits_on_the_workers(client):
    X, y = data()
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}
    local = GridSearchCV(MEMBER, grid, cv=3).fit(X, y)
    remote = GridSearchCV(MEMBER, grid, cv=3, n_jobs=-1)
    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote.fit(X, y)
    ran_on_workers(stream.data, client, "fit_and_score")
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
