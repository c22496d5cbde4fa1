"""Benchmarks: nnfast against plain NumPy (nnfast.reference) and PyTorch, one thread.

Every library trains the same network from the same weights on the same data, in the same
batches (no shuffling) with the same arithmetic: plain SGD (lr 1e-4, no momentum), MSE,
tanh hidden layers. Timings alternate between libraries inside one process and the best of
``repeat`` runs is kept, so ratios compare like with like on a noisy machine.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import numpy as np

# (name, layer sizes, samples, batch sizes); None means the full set as one batch.
CASES = [
    ("seed", [1, 20, 20, 1], 1000, [1, 32, None]),
    ("tabular", [16, 64, 64, 3], 10_000, [32, 256]),
    ("wide", [784, 512, 512, 10], 2048, [128]),
]
LR = 1e-4


def pin_threads(n: int = 1):
    """Limit BLAS/OpenMP pools to ``n`` threads (threadpoolctl when available)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def training_flops(sizes, n) -> float:
    """Multiply-adds ×2 of one epoch: forward, dW and dA (no dA for the first layer)."""
    products = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    first = sizes[0] * sizes[1]
    return 2.0 * n * (3 * products - first)


def gemm_rate(dtype, size=1024, repeat=5) -> float:
    """Single-thread NumPy matmul rate in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeat))
    return 2.0 * size**3 / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Row:
    case: str
    batch: str
    dtype: str
    times: dict  # library -> seconds per epoch
    gflops: float


def _data(sizes, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, sizes[0])).astype(dtype)
    y = np.tanh(X @ rng.standard_normal((sizes[0], sizes[-1])) / np.sqrt(sizes[0])).astype(dtype)
    return X, y


def _torch_trainer(torch, net, X, y, batch):
    """A closure running epochs of the same SGD in PyTorch, from net's weights."""
    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    layers = []
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        if i < len(net.weights) - 1:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    n = X.shape[0]

    def run(epochs):
        for _ in range(epochs):
            for start in range(0, n, batch):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(tX[start : start + batch]), ty[start : start + batch])
                loss.backward()
                opt.step()

    return run


def epoch_runner(library, sizes, n, batch_size, dtype, torch=None):
    """A function ``run(epochs)`` training ``library``'s copy of the case network."""
    from nnfast import MLP, reference

    X, y = _data(sizes, n, dtype)
    batch = n if batch_size is None else batch_size
    settings = dict(optimizer="sgd", lr=LR, momentum=0.0, batch_size=batch, shuffle=False)
    if library in ("nnfast", "numpy"):
        model = (MLP if library == "nnfast" else reference.MLP)(
            sizes, activation="tanh", dtype=dtype, seed=0
        )

        def run(epochs):
            model.fit(X, y, epochs=epochs, **settings)

        run.model = model  # for tests of what the runner computes
        return run
    if library == "torch":
        return _torch_trainer(
            torch, MLP(sizes, activation="tanh", dtype=dtype, seed=0), X, y, batch
        )
    raise ValueError(f"library: expected 'nnfast', 'numpy' or 'torch', got {library!r}")


def time_case(sizes, n, batch_size, dtype, repeat, budget, torch=None) -> dict:
    """Best seconds per epoch of each library for one case, timed alternately."""
    libraries = ["nnfast", "numpy"] + (["torch"] if torch is not None else [])
    runners = {lib: epoch_runner(lib, sizes, n, batch_size, dtype, torch) for lib in libraries}
    epochs = {}
    for name, run in runners.items():  # warm up and size each timing to about `budget` s
        once = _time(lambda: run(1))
        epochs[name] = max(1, int(budget / max(once, 1e-7)))
    best = {name: float("inf") for name in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            best[name] = min(best[name], _time(lambda: run(epochs[name])) / epochs[name])
    return best


PREDICT_CASES = (("1 sample", 1, 2000), ("10^6 rows", 1_000_000, 1))


def predict_runner(library, rows):
    """A function predicting ``rows`` rows (one 1-D sample when rows == 1) with the seed
    network of ``library`` ("nnfast" or "numpy"), float64."""
    from nnfast import MLP, reference

    model = (MLP if library == "nnfast" else reference.MLP)(
        [1, 20, 20, 1], activation="tanh", seed=0
    )
    X = np.array([0.5]) if rows == 1 else np.random.default_rng(0).uniform(-3, 3, size=(rows, 1))
    return lambda: model.predict(X)


def best_alternating(runners, repeat, calls=1) -> dict:
    """Best seconds per call of each function in ``runners`` ({key: function}): each is
    called once to warm up (imports, first-touch page faults), then ``repeat`` rounds time
    ``calls`` calls of each in turn, so that every function sees the same machine state."""
    for run in runners.values():
        run()
    best = {key: float("inf") for key in runners}
    for _ in range(repeat):
        for key, run in runners.items():

            def many(run=run):
                for _ in range(calls):
                    run()

            best[key] = min(best[key], _time(many) / calls)
    return best


def time_predict(repeat) -> list:
    """Latency of one sample and throughput on 10⁶ rows of the seed network (float64)."""
    return [
        (
            label,
            best_alternating(
                {lib: predict_runner(lib, rows) for lib in ("nnfast", "numpy")}, repeat, loops
            ),
        )
        for label, rows, loops in PREDICT_CASES
    ]


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"


def print_code_paths() -> None:
    """The CPU as the kernels see it, and the SIMD code path each kernel family runs."""
    from nnfast import _kernels

    cpu = _kernels.cpu_info()
    name = cpu["brand"] or platform.processor() or platform.machine()
    print(
        f"CPU: {name} ({cpu['vendor'] or 'vendor unknown'}, family {cpu['family']}, "
        f"model {cpu['model']}, stepping {cpu['stepping']}; "
        f"{' '.join(cpu['features']) or 'no SIMD features used by nnfast'})"
    )
    paths = ", ".join(f"{family} {path}" for family, path in _kernels.simd_paths().items())
    print(f"nnfast code paths: {paths} (--path or NNFAST_SIMD=avx2|baseline lowers them)")


def run(args) -> int:
    limits = pin_threads(1)
    torch = _torch()
    repeat = args.repeat
    budget = 0.05 if args.quick else 0.2
    print(
        f"nnfast bench — {platform.processor() or platform.machine()}, one thread, "
        f"SGD lr {LR}, MSE, tanh, no shuffling; best of {repeat}"
    )
    rates = {dt: gemm_rate(dt) for dt in ("float64", "float32")}
    print(
        f"single-thread GEMM (NumPy 1024x1024): float64 {rates['float64']:.1f} GFLOP/s, "
        f"float32 {rates['float32']:.1f} GFLOP/s"
    )
    print_code_paths()
    if torch is None:
        print("PyTorch not installed (pip install torch==2.13.0 for its column)")
    libs = ["nnfast", "numpy"] + (["torch"] if torch is not None else [])
    header = (
        f"{'case':<9}{'batch':>6} {'dtype':<8}"
        + "".join(f"{lib:>12}" for lib in libs)
        + f"{'vs numpy':>10}"
        + (f"{'vs torch':>10}" if torch else "")
        + f"{'GFLOP/s':>9}{'% GEMM':>8}"
    )
    print("\nper-epoch training time")
    print(header)
    for case, sizes, n, batches in CASES:
        for batch in batches:
            for dtype in ("float64", "float32"):
                best = time_case(sizes, n, batch, dtype, repeat, budget, torch)
                gflops = training_flops(sizes, n) / best["nnfast"] / 1e9
                line = f"{case:<9}{'full' if batch is None else batch:>6} {dtype:<8}"
                line += "".join(_fmt(best[lib]).rjust(12) for lib in libs)
                line += f"{best['numpy'] / best['nnfast']:>9.1f}x"
                if torch is not None:
                    line += f"{best['torch'] / best['nnfast']:>9.1f}x"
                line += f"{gflops:>9.1f}{100 * gflops / rates[dtype]:>7.0f}%"
                print(line, flush=True)
    print("\npredict, seed network, float64")
    for label, best in time_predict(repeat):
        print(
            f"{label:<12}{_fmt(best['nnfast']):>12}{_fmt(best['numpy']):>12}"
            f"{best['numpy'] / best['nnfast']:>9.1f}x"
        )
    print_thread_rows(repeat, budget)
    print_memory_row()
    print_emulator_rows(repeat)
    print_sklearn_rows(repeat)
    from nnfast._bench_lbfgs import print_lbfgs_rows

    print_lbfgs_rows(repeat, best_alternating, _fmt)
    if limits is not None:
        limits.unregister() if hasattr(limits, "unregister") else None
    print_all_threads_rows(repeat, budget, torch)
    return 0


def time_parallel(repeat, budget) -> tuple:
    """Seconds for two tabular networks (batch 32, float64) trained one after the other, and
    in two threads at once (each fit releases the GIL for whole epochs)."""
    import threading

    runners = [epoch_runner("nnfast", [16, 64, 64, 3], 10_000, 32, "float64") for _ in range(2)]
    once = _time(lambda: runners[0](1))
    epochs = max(1, int(budget / once))
    best_serial = best_parallel = float("inf")
    for _ in range(repeat):
        best_serial = min(best_serial, _time(lambda: [run(epochs) for run in runners]))
        threads = [threading.Thread(target=run, args=(epochs,)) for run in runners]

        def parallel():
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        best_parallel = min(best_parallel, _time(parallel))
    return best_serial, best_parallel


def print_thread_rows(repeat, budget):
    serial, parallel = time_parallel(repeat, budget)
    print(
        f"\ntwo tabular networks (batch 32, float64), serial vs two threads: "
        f"{_fmt(serial).strip()} vs {_fmt(parallel).strip()} = {parallel / serial:.2f}x "
        f"the serial time ({os.cpu_count()} cores)"
    )


MEMORY_CHILD = """
import resource, sys
import numpy as np
from nnfast import MLP, _solvers, bench
sizes, n, batch = [16, 64, 64, 3], 10_000, 32
X, y = bench._data(sizes, n, "float64")
net = MLP(sizes, activation="tanh", seed=0)
net.fit(X[:64], y[:64], epochs=1, batch_size=batch)  # load everything once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
net.fit(X, y, optimizer="adam", epochs=2, batch_size=batch, shuffle=True)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workspace = _solvers.compiled(net).workspace_size(batch) * 8
print(X.nbytes, y.nbytes, net.params.nbytes, workspace, before * 1024, after * 1024)
"""


def measure_fit_memory():
    """Peak memory a tabular fit adds (child process: ru_maxrss before and after the fit),
    and the bytes of X, y, parameters and workspace."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD], capture_output=True, text=True, check=True
    ).stdout.split()
    x_bytes, y_bytes, p_bytes, ws_bytes, before, after = (int(v) for v in out)
    return x_bytes + y_bytes + p_bytes + ws_bytes, x_bytes + y_bytes + max(0, after - before)


def print_memory_row():
    essential, peak = measure_fit_memory()
    print(
        f"tabular fit (adam, batch 32, float64): X + y + parameters + workspace "
        f"{essential / 1e6:.2f} MB; X + y + the fit's peak extra memory {peak / 1e6:.2f} MB "
        f"({peak / essential:.2f}x)"
    )


def print_all_threads_rows(repeat, budget, torch):
    """The larger cases again with NumPy's BLAS and PyTorch allowed every core (nnfast's
    kernels use one thread, as in the table above)."""
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
    print(f"\nall threads allowed for NumPy/BLAS and PyTorch ({os.cpu_count()} cores)")
    libs = ["nnfast", "numpy"] + (["torch"] if torch is not None else [])
    print(
        f"{'case':<9}{'batch':>6} {'dtype':<8}"
        + "".join(f"{lib:>12}" for lib in libs)
        + f"{'vs numpy':>10}"
        + (f"{'vs torch':>10}" if torch else "")
    )
    for case, sizes, n, batches in CASES[1:]:
        for dtype in ("float64", "float32"):
            batch = batches[-1]
            best = time_case(sizes, n, batch, dtype, repeat, budget, torch)
            line = f"{case:<9}{batch:>6} {dtype:<8}"
            line += "".join(_fmt(best[lib]).rjust(12) for lib in libs)
            line += f"{best['numpy'] / best['nnfast']:>9.1f}x"
            if torch is not None:
                line += f"{best['torch'] / best['nnfast']:>9.1f}x"
            print(line, flush=True)


SKLEARN_SOLVERS = ("adam", "lbfgs")


def seed_curve_fit(make_model):
    """A function fitting a fresh ``make_model()`` on the seed curve (200 points of
    y = sin(2x) on [-3, 3]); 200 iterations do not converge, so ConvergenceWarning is
    silenced."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    x = np.linspace(-3, 3, 200)[:, None]
    y = np.sin(2 * x).ravel()

    def fit():
        model = make_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(x, y)

    return fit


def sklearn_runner(library, solver):
    """A function fitting ``MLPRegressor(hidden_layer_sizes=(20, 20), activation="tanh",
    solver=solver, max_iter=200, random_state=0)`` on the seed curve with ``library``:
    "nnfast" (nnfast.sklearn) or "sklearn"."""
    if library == "nnfast":
        from nnfast.sklearn import MLPRegressor
    else:
        from sklearn.neural_network import MLPRegressor
    return seed_curve_fit(
        lambda: MLPRegressor(
            hidden_layer_sizes=(20, 20),
            activation="tanh",
            solver=solver,
            max_iter=200,
            random_state=0,
        )
    )


def time_sklearn(repeat) -> dict:
    """Best seconds per whole fit, {solver: {"nnfast": s, "sklearn": s}}, timed alternately."""
    return {
        solver: best_alternating(
            {lib: sklearn_runner(lib, solver) for lib in ("nnfast", "sklearn")}, repeat
        )
        for solver in SKLEARN_SOLVERS
    }


def ensemble_runner(n_jobs):
    """A function fitting ``MLPEnsembleRegressor`` of eight seed-sized members (the
    MLPRegressor of the sklearn row, solver adam) on the seed curve in ``n_jobs`` threads."""
    from nnfast.sklearn import MLPEnsembleRegressor, MLPRegressor

    member = MLPRegressor(hidden_layer_sizes=(20, 20), activation="tanh", max_iter=200)
    return seed_curve_fit(
        lambda: MLPEnsembleRegressor(member, n_estimators=8, n_jobs=n_jobs, random_state=0)
    )


def time_ensemble(repeat) -> dict:
    """Best seconds per ensemble fit, {n_jobs: s} for 1 and 2 threads, timed alternately."""
    return best_alternating({n_jobs: ensemble_runner(n_jobs) for n_jobs in (1, 2)}, repeat)


def print_sklearn_rows(repeat):
    """The drop-in row: nnfast.sklearn vs scikit-learn's MLPRegressor, same settings."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("\nscikit-learn not installed: no nnfast.sklearn row (pip install scikit-learn)")
        return
    print("\nMLPRegressor((20, 20), tanh, max_iter=200) on the seed curve (200 points), whole fit")
    print(f"{'solver':<8}{'nnfast':>12}{'sklearn':>12}{'speed-up':>10}")
    for solver, best in time_sklearn(repeat).items():
        print(
            f"{solver:<8}{_fmt(best['nnfast']):>12}{_fmt(best['sklearn']):>12}"
            f"{best['sklearn'] / best['nnfast']:>9.1f}x",
            flush=True,
        )
    best = time_ensemble(repeat)
    print(
        f"MLPEnsembleRegressor, 8 such members (adam), n_jobs=1 vs n_jobs=2: "
        f"{_fmt(best[1]).strip()} vs {_fmt(best[2]).strip()} = {best[2] / best[1]:.2f}x "
        f"the serial time ({os.cpu_count()} cores)",
        flush=True,
    )


def emulator_runners():
    """The emulator workflow (issue 14): ``MLP([5, 128, 128, 500], activation="tanh")``,
    float64, from 5 labels to a 500-pixel spectrum. Zero-argument callables keyed by case:
    predict and input_grad of 1 spectrum (a 1-D label vector) and of 64, and
    ``scipy.optimize.least_squares`` recovering the labels of one noisy spectrum from a
    start off by 0.3 in each label, with ``jac`` the network's Jacobian and with
    ``jac="2-point"`` (these two return their ``OptimizeResult``)."""
    from scipy.optimize import least_squares

    from nnfast import MLP

    net = MLP([5, 128, 128, 500], activation="tanh", seed=0)
    rng = np.random.default_rng(0)
    labels = rng.uniform(-0.5, 0.5, size=(64, 5))
    truth = labels[0]
    spectrum = net.predict(truth) + rng.normal(0.0, 0.01, size=500)
    start = truth + 0.3

    def residuals(theta):
        return net.predict(theta) - spectrum

    return {
        "predict, 1 spectrum": lambda: net.predict(truth),
        "input_grad, 1 spectrum": lambda: net.input_grad(truth),
        "predict, 64 spectra": lambda: net.predict(labels),
        "input_grad, 64 spectra": lambda: net.input_grad(labels),
        "least_squares, jac=input_grad": lambda: least_squares(
            residuals, start, jac=net.input_grad
        ),
        "least_squares, jac=2-point": lambda: least_squares(residuals, start, jac="2-point"),
    }


def print_emulator_rows(repeat):
    """input_grad against predict on the emulator (targets: at most 3x for one spectrum and
    4x for 64), and least_squares with the Jacobian against "2-point" (target: faster, to
    the same solution)."""
    runners = emulator_runners()
    jacobians = ("input_grad", "2-point")
    best = best_alternating(runners, repeat, calls=20)
    print(
        "\nemulator MLP([5, 128, 128, 500], tanh), float64: the Jacobian (forward mode) "
        "against predict"
    )
    for count, target in (("1 spectrum", 3), ("64 spectra", 4)):
        predict, jacobian = best[f"predict, {count}"], best[f"input_grad, {count}"]
        print(
            f"{count:<12}predict {_fmt(predict)}  input_grad {_fmt(jacobian)}  "
            f"{jacobian / predict:5.2f}x (target <= {target}x)"
        )
    exact, finite = (runners[f"least_squares, jac={jac}"]() for jac in jacobians)
    with_jac, two_point = (best[f"least_squares, jac={jac}"] for jac in jacobians)
    print(
        f"least_squares, 5 labels of one noisy spectrum: jac=input_grad "
        f"{_fmt(with_jac).strip()} ({exact.nfev} evaluations, {exact.njev} Jacobians) vs "
        f"jac='2-point' {_fmt(two_point).strip()} ({finite.nfev} evaluations): "
        f"{two_point / with_jac:.2f}x faster; the labels found differ by "
        f"{np.abs(exact.x - finite.x).max():.1e} at most",
        flush=True,
    )
