"""The L-BFGS rows of ``python -m nnfast bench`` (issue 13), one comparison per row, each
timed in one process, alternately, best of ``repeat``:

- ``MLPRegressor((20, 20), tanh, solver="lbfgs", max_iter=200)`` on the seed curve, nnfast
  against scikit-learn (target: >= 6x, final ``loss_`` <= 1.25x scikit-learn's);
- ``MLPClassifier((64,), relu, solver="lbfgs", max_iter=300)`` on digits, against
  scikit-learn (target: >= 3x, test accuracy within 0.02);
- ``MLP.fit(optimizer="lbfgs")`` beside a busy Python thread against alone (target:
  <= 1.3x);
- ``MLPEnsembleRegressor`` of 8 lbfgs members, ``n_jobs=2`` against ``n_jobs=1`` (target:
  <= 0.62x).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings

import numpy as np


def _quiet_fit(model, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def _seed_curve(n=200):
    x = np.linspace(-3, 3, n)[:, None]
    return x, np.sin(2 * x).ravel()


def _estimators(library):
    if library == "nnfast":
        import nnfast.sklearn as module
    else:
        import sklearn.neural_network as module
    return module


def seed_curve_runners():
    """{library: fit} for ``MLPRegressor((20, 20), tanh, lbfgs, max_iter=200,
    random_state=0)`` on the seed curve; each fit returns the fitted model."""
    x, y = _seed_curve()

    def runner(library):
        module = _estimators(library)
        return lambda: _quiet_fit(
            module.MLPRegressor(
                hidden_layer_sizes=(20, 20),
                activation="tanh",
                solver="lbfgs",
                max_iter=200,
                random_state=0,
            ),
            x,
            y,
        )

    return {library: runner(library) for library in ("nnfast", "sklearn")}


def digits_data():
    """load_digits scaled to [0, 1], split by ``train_test_split(random_state=0)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0)


def digits_runners(data):
    """{library: fit} for ``MLPClassifier((64,), relu, lbfgs, max_iter=300,
    random_state=0)`` on the training part of ``data`` (from :func:`digits_data`)."""
    X_train, _, y_train, _ = data

    def runner(library):
        module = _estimators(library)
        return lambda: _quiet_fit(
            module.MLPClassifier(
                hidden_layer_sizes=(64,),
                activation="relu",
                solver="lbfgs",
                max_iter=300,
                random_state=0,
            ),
            X_train,
            y_train,
        )

    return {library: runner(library) for library in ("nnfast", "sklearn")}


def mlp_fit_runner():
    """A fit of ``MLP([1, 20, 20, 1], tanh)`` on 1000 points of the seed curve by
    ``optimizer="lbfgs"``, 300 iterations (tol=0)."""
    from nnfast import MLP

    x, y = _seed_curve(1000)
    start = MLP([1, 20, 20, 1], activation="tanh", seed=0)
    return lambda: start.copy().fit(x, y, optimizer="lbfgs", epochs=300, tol=0.0)


class BusyThread:
    """A Python thread that counts as long as it runs (it holds the GIL but for the
    interpreter's switch interval)."""

    def __enter__(self):
        self._stop = threading.Event()
        self.count = 0

        def spin():
            while not self._stop.is_set():
                self.count += 1

        self._thread = threading.Thread(target=spin, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class BusyProcess:
    """A Python process that spins: the same competition for the CPU as a BusyThread,
    without the GIL (the control of the busy-thread row)."""

    def __enter__(self):
        import subprocess
        import sys
        import time

        self._process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.05)  # started before the fit is timed
        return self

    def __exit__(self, *exc):
        self._process.kill()
        self._process.wait()


def time_busy_thread(repeat) -> dict:
    """Best seconds of :func:`mlp_fit_runner` alone, beside a BusyThread and beside a
    BusyProcess, {"alone" | "thread" | "process": (wall seconds, CPU seconds of the fitting
    thread)}, timed in turns."""
    import time

    fit = mlp_fit_runner()
    fit()
    best = {key: (float("inf"), float("inf")) for key in ("alone", "thread", "process")}
    for _ in range(repeat):
        for key, context in (("alone", None), ("thread", BusyThread), ("process", BusyProcess)):
            with context() if context is not None else contextlib.nullcontext():
                cpu, wall = time.thread_time(), time.perf_counter()
                fit()
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            best[key] = min(best[key], (wall, cpu))
    return best


def ensemble_runners():
    """{n_jobs: fit} of ``MLPEnsembleRegressor`` of 8 members ``MLPRegressor((20, 20),
    tanh, lbfgs, max_iter=200)`` on the seed curve, n_jobs 1 and 2."""
    from nnfast.sklearn import MLPEnsembleRegressor, MLPRegressor

    x, y = _seed_curve()
    member = MLPRegressor(
        hidden_layer_sizes=(20, 20), activation="tanh", solver="lbfgs", max_iter=200
    )

    def runner(n_jobs):
        return lambda: _quiet_fit(
            MLPEnsembleRegressor(member, n_estimators=8, n_jobs=n_jobs, random_state=0), x, y
        )

    return {n_jobs: runner(n_jobs) for n_jobs in (1, 2)}


def print_lbfgs_rows(repeat, best_alternating, fmt, threads="one thread"):
    """Print the four rows (``best_alternating`` and ``fmt`` are nnfast.bench's);
    ``threads`` says what the caller allowed nnfast and BLAS (its pin, or every core)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("\nscikit-learn not installed: no L-BFGS rows (pip install scikit-learn)")
        return
    print(
        "\nL-BFGS: nnfast's compiled solver='lbfgs' against scikit-learn's (SciPy L-BFGS-B), "
        f"{threads}"
    )
    runners = seed_curve_runners()
    best = best_alternating(runners, repeat)
    losses = {library: fit().loss_ for library, fit in runners.items()}
    print(
        f"seed curve MLPRegressor((20, 20), tanh, max_iter=200): nnfast "
        f"{fmt(best['nnfast']).strip()}, sklearn {fmt(best['sklearn']).strip()}: "
        f"{best['sklearn'] / best['nnfast']:.1f}x (target >= 6x); loss_ "
        f"{losses['nnfast']:.3g} vs {losses['sklearn']:.3g} = "
        f"{losses['nnfast'] / losses['sklearn']:.2f}x (target <= 1.25x)",
        flush=True,
    )
    data = digits_data()
    runners = digits_runners(data)
    best = best_alternating(runners, repeat)
    _, X_test, _, y_test = data
    scores = {library: fit().score(X_test, y_test) for library, fit in runners.items()}
    print(
        f"digits MLPClassifier((64,), relu, max_iter=300): nnfast "
        f"{fmt(best['nnfast']).strip()}, sklearn {fmt(best['sklearn']).strip()}: "
        f"{best['sklearn'] / best['nnfast']:.1f}x (target >= 3x); test accuracy "
        f"{scores['nnfast']:.4f} vs {scores['sklearn']:.4f} (target: within 0.02)",
        flush=True,
    )
    best = time_busy_thread(repeat)
    (alone, alone_cpu), (beside, beside_cpu), (control, _) = (
        best[key] for key in ("alone", "thread", "process")
    )
    print(
        f"MLP.fit(optimizer='lbfgs'), [1, 20, 20, 1] on 1000 points, 300 iterations: alone "
        f"{fmt(alone).strip()}, beside a busy Python thread {fmt(beside).strip()}: "
        f"{beside / alone:.2f}x (target <= 1.3x); beside a busy process (no GIL shared) "
        f"{fmt(control).strip()} = {control / alone:.2f}x; CPU time of the fit "
        f"{fmt(alone_cpu).strip()} alone, {fmt(beside_cpu).strip()} beside the thread; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    best = best_alternating(ensemble_runners(), repeat)
    print(
        f"MLPEnsembleRegressor of 8 lbfgs members: n_jobs=1 {fmt(best[1]).strip()}, "
        f"n_jobs=2 {fmt(best[2]).strip()}: {best[2] / best[1]:.2f}x the serial time "
        f"(target <= 0.62x; {os.cpu_count()} cores)",
        flush=True,
    )
