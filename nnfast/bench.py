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


# The workflow rows live in nnfast/_bench_workflows.py (which uses _fmt and best_alternating
# above, hence the import at the end); their names stay importable from here.
from nnfast._bench_workflows import (  # noqa: E402
    SKLEARN_SOLVERS,
    emulator_runners,
    ensemble_runner,
    print_emulator_rows,
    print_sklearn_rows,
    seed_curve_fit,
    sklearn_runner,
    time_ensemble,
    time_sklearn,
)

__all__ = [
    "SKLEARN_SOLVERS",
    "emulator_runners",
    "ensemble_runner",
    "print_emulator_rows",
    "print_sklearn_rows",
    "seed_curve_fit",
    "sklearn_runner",
    "time_ensemble",
    "time_sklearn",
]
