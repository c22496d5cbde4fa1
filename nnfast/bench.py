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


PINNED_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_UNPINNED_ENVIRONMENT: dict = {}  # what pin_threads replaced, for unpin_threads


def pin_threads(n: int = 1):
    """Limit BLAS/OpenMP pools to ``n`` threads (threadpoolctl when available)."""
    for var in PINNED_VARIABLES:
        _UNPINNED_ENVIRONMENT.setdefault(var, os.environ.get(var))
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n)


def unpin_threads(limits=None) -> None:
    """Undo :func:`pin_threads`: the pools' limits restored (nnfast's ``n_threads=None``
    reads OpenMP's, which threadpoolctl set) and its environment variables as they were
    (child processes, such as JAX's, inherit them)."""
    for var, value in _UNPINNED_ENVIRONMENT.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    _UNPINNED_ENVIRONMENT.clear()
    if limits is not None:
        limits.restore_original_limits()


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


def epoch_runner(library, sizes, n, batch_size, dtype, torch=None, n_threads=1):
    """A function ``run(epochs)`` training ``library``'s copy of the case network;
    ``n_threads`` is nnfast's (1: the one-thread tables; None: every allowed core)."""
    from nnfast import MLP, reference

    X, y = _data(sizes, n, dtype)
    batch = n if batch_size is None else batch_size
    settings = dict(optimizer="sgd", lr=LR, momentum=0.0, batch_size=batch, shuffle=False)
    if library == "nnfast":
        settings["n_threads"] = n_threads
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


def _timer(run):
    """``timed(epochs) -> seconds per epoch`` of a runner timed in this process."""
    return lambda epochs: _time(lambda: run(epochs)) / epochs


def time_case(
    sizes, n, batch_size, dtype, repeat, budget, torch=None, jax=None, n_threads=1
) -> dict:
    """Best seconds per epoch of each library for one case, timed alternately; ``jax`` a
    :class:`nnfast._bench_jax.JaxPeer` (its child process times its own calls);
    ``n_threads`` nnfast's."""
    libraries = ["nnfast", "numpy"] + (["torch"] if torch is not None else [])
    timers = {
        lib: _timer(epoch_runner(lib, sizes, n, batch_size, dtype, torch, n_threads))
        for lib in libraries
    }
    if jax is not None:
        timers["jax"] = jax.trainer(sizes, n, batch_size, dtype)
    epochs = {}
    for name, timed in timers.items():  # warm up and size each timing to about `budget` s
        epochs[name] = max(1, int(budget / max(timed(1), 1e-7)))
    best = {name: float("inf") for name in timers}
    for _ in range(repeat):
        for name, timed in timers.items():
            best[name] = min(best[name], timed(epochs[name]))
    return best


JAX_TOLERANCE = 1e-10  # float64 weights after one epoch, nnfast against each JAX variant


def jax_weight_difference(jax, sizes, n, batch_size, dtype) -> float:
    """Largest absolute difference between nnfast's weights after one epoch from the case's
    initial weights and those of each JAX variant (the check that both do the same
    arithmetic)."""
    run = epoch_runner("nnfast", sizes, n, batch_size, dtype)
    run(1)
    key = jax.trainer(sizes, n, batch_size, dtype).key
    return max(float(np.abs(p - run.model.params).max()) for p in jax.one_epoch(key).values())


def shows_gemm_share(batch) -> bool:
    """The "% GEMM" column is given for mini-batches (batch 1 and the full batch are not
    product-bound: the issue sets no GEMM target for them)."""
    return batch is not None and batch > 1


def training_header(libs) -> str:
    """The header of the training table: times, "vs <peer>" (peer time / nnfast time, so
    above 1 means nnfast is faster), GFLOP/s, % of the GEMM rate, and JAX's best variant
    and weight check when JAX runs."""
    peers = [lib for lib in libs if lib != "nnfast"]
    header = f"{'case':<9}{'batch':>6} {'dtype':<8}" + "".join(f"{lib:>12}" for lib in libs)
    header += "".join(f"{'vs ' + lib:>10}" for lib in peers) + f"{'GFLOP/s':>9}{'% GEMM':>8}"
    if "jax" in libs:
        header += f"  {'jax best':<14}{'jax Δw':>8}"
    return header


def training_row(case, batch, dtype, best, libs, flops, rate, jax_variant="", jax_dw=None):
    """One row of :func:`training_header`'s table; ``best`` seconds per epoch by library."""
    line = f"{case:<9}{'full' if batch is None else batch:>6} {dtype:<8}"
    line += "".join(_fmt(best[lib]).rjust(12) for lib in libs)
    line += "".join(f"{best[lib] / best['nnfast']:>9.2f}x" for lib in libs if lib != "nnfast")
    gflops = flops / best["nnfast"] / 1e9
    share = f"{100 * gflops / rate:>7.0f}%" if shows_gemm_share(batch) else f"{'—':>8}"
    line += f"{gflops:>9.1f}{share}"
    if "jax" in libs:
        line += f"  {jax_variant:<14}" + ("" if jax_dw is None else f"{jax_dw:>8.0e}")
    return line


PREDICT_CASES = (("1 sample", 1, 2000), ("10^6 rows", 1_000_000, 1))


def predict_runner(library, rows, n_threads=1):
    """A function predicting ``rows`` rows (one 1-D sample when rows == 1) with the seed
    network of ``library`` ("nnfast" or "numpy"), float64; ``n_threads`` nnfast's."""
    from nnfast import MLP, reference

    X = np.array([0.5]) if rows == 1 else np.random.default_rng(0).uniform(-3, 3, size=(rows, 1))
    if library == "nnfast":
        net = MLP([1, 20, 20, 1], activation="tanh", seed=0)
        return lambda: net.predict(X, n_threads=n_threads)
    model = reference.MLP([1, 20, 20, 1], activation="tanh", seed=0)
    return lambda: model.predict(X)


def best_alternating(runners, repeat, calls=1, remote=None) -> dict:
    """Best seconds per call of each function in ``runners`` ({key: function}): each is
    called once to warm up (imports, first-touch page faults), then ``repeat`` rounds time
    ``calls`` calls of each in turn, so that every function sees the same machine state.
    ``remote`` ({key: timed(calls) -> seconds per call}) joins the rounds with functions
    that time themselves (the JAX child process)."""
    for run in runners.values():
        run()
    timers = {}
    for key, run in runners.items():

        def timed(calls, run=run):
            def many():
                for _ in range(calls):
                    run()

            return _time(many) / calls

        timers[key] = timed
    timers.update(remote or {})
    best = {key: float("inf") for key in timers}
    for _ in range(repeat):
        for key, timed in timers.items():
            best[key] = min(best[key], timed(calls))
    return best


def time_predict(repeat, jax=None) -> list:
    """Latency of one sample and throughput on 10⁶ rows of the seed network (float64)."""
    return [
        (
            label,
            best_alternating(
                {lib: predict_runner(lib, rows) for lib in ("nnfast", "numpy")},
                repeat,
                loops,
                remote=None
                if jax is None
                else {"jax": lambda calls, rows=rows: jax.predict_seconds(rows, calls)},
            ),
        )
        for label, rows, loops in PREDICT_CASES
    ]


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"


def parse_cpuinfo(text: str) -> dict:
    """The fields of the first processor block of ``/proc/cpuinfo`` text ({name: value})."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def read_cpuinfo() -> dict:
    """:func:`parse_cpuinfo` of this machine's ``/proc/cpuinfo`` ({} where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            return parse_cpuinfo(file.read())
    except OSError:
        return {}


def cpu_description(cpu: dict, cpuinfo: dict) -> str:
    """``name (vendor, family F, model M, stepping S; features)`` from the kernels'
    ``cpu_info()``, with the OS's name for the CPU when CPUID gives none (ARM: the
    implementer and part numbers)."""
    name = (
        cpu.get("brand")
        or cpuinfo.get("model name")
        or cpuinfo.get("Processor")
        or platform.processor()
        or platform.machine()
    )
    if cpu.get("family") or "CPU implementer" not in cpuinfo:
        ids = (
            f"family {cpu.get('family')}, model {cpu.get('model')}, stepping {cpu.get('stepping')}"
        )
    else:
        ids = f"implementer {cpuinfo['CPU implementer']}, part {cpuinfo.get('CPU part')}"
    features = " ".join(cpu.get("features") or ()) or "no SIMD features used by nnfast"
    return f"{name} ({cpu.get('vendor') or 'vendor unknown'}, {ids}; {features})"


def print_code_paths() -> None:
    """The CPU as the kernels see it, and the SIMD code path each kernel family runs."""
    from nnfast import _kernels

    print(f"CPU: {cpu_description(_kernels.cpu_info(), read_cpuinfo())}")
    paths = ", ".join(f"{family} {path}" for family, path in _kernels.simd_paths().items())
    print(f"nnfast code paths: {paths} (--path or NNFAST_SIMD=avx2|baseline lowers them)")
    units = _kernels.avx512_units()
    if units is not None:
        how = (
            "rows narrower in 256-bit vectors run kernels in 256-bit vectors"
            if units == 256
            else "every row in 512-bit vectors"
        )
        print(f"AVX-512 products planned for {units}-bit units: {how} (--avx512-units 256|512)")


def start_jax(one_core=True):
    """A :class:`nnfast._bench_jax.JaxPeer`, or None after printing why JAX is skipped."""
    from nnfast import _bench_jax

    reason = _bench_jax.jax_missing_reason()
    if reason is None:
        try:
            return _bench_jax.JaxPeer(one_core=one_core)
        except (OSError, RuntimeError, ValueError) as error:
            reason = f"JAX could not start: {error}"
    print(reason)
    return None


def print_training_table(repeat, budget, torch, jax, rates) -> bool:
    """The per-epoch table; returns False when a JAX float64 weight check failed."""
    libs = ["nnfast", "numpy"] + (["torch"] if torch else []) + (["jax"] if jax else [])
    print("\nper-epoch training time (vs X = X's time / nnfast's: above 1, nnfast is faster)")
    if jax is not None:
        print(
            f"jax {jax.version}: jit of E epochs (fori_loop) of lax.scan (unroll 1, 4) or "
            f"fori_loop over the batches, best variant; pinned to CPU {jax.cpus}, NPROC=1; "
            f"Δw = largest weight difference to nnfast after one epoch"
        )
    print(training_header(libs))
    agree = True
    for case, sizes, n, batches in CASES:
        for batch in batches:
            for dtype in ("float64", "float32"):
                best = time_case(sizes, n, batch, dtype, repeat, budget, torch, jax)
                # The GEMM rate is the best seen in the run: one measurement taken while
                # the machine was busy would flatter every "% GEMM" after it.
                rates[dtype] = max(rates[dtype], gemm_rate(dtype, repeat=2))
                variant = dw = None
                if jax is not None:
                    dw = jax_weight_difference(jax, sizes, n, batch, dtype)
                    agree &= dtype != "float64" or dw <= JAX_TOLERANCE
                    variant = jax.best_variant(jax.trainer(sizes, n, batch, dtype).key)
                flops = training_flops(sizes, n)
                row = training_row(case, batch, dtype, best, libs, flops, rates[dtype], variant, dw)
                print(row, flush=True)
    print(
        f"% GEMM against the best single-thread GEMM rate of the run: float64 "
        f"{rates['float64']:.1f} GFLOP/s, float32 {rates['float32']:.1f} GFLOP/s"
    )
    if not agree:
        print(
            f"JAX CHECK FAILED: float64 weights differ from nnfast's by more than {JAX_TOLERANCE}"
        )
    return agree


def run(args) -> int:
    if getattr(args, "threads_only", False):
        return run_threads(args)
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
        f"single-thread GEMM (NumPy 1024x1024, BLAS limited to 1 thread): float64 "
        f"{rates['float64']:.1f} GFLOP/s, float32 {rates['float32']:.1f} GFLOP/s"
    )
    print_code_paths()
    if torch is None:
        print("PyTorch not installed (pip install torch==2.13.0 for its column)")
    jax = None if getattr(args, "no_jax", False) else start_jax(one_core=True)
    try:
        agree = print_training_table(repeat, budget, torch, jax, rates)
        print("\npredict, seed network, float64")
        peers = ["numpy"] + (["jax"] if jax else [])
        print(
            f"{'':<12}{'nnfast':>12}"
            + "".join(f"{p:>12}" for p in peers)
            + "".join(f"{'vs ' + p:>10}" for p in peers)
        )
        for label, best in time_predict(repeat, jax):
            print(
                f"{label:<12}{_fmt(best['nnfast']):>12}"
                + "".join(f"{_fmt(best[p]):>12}" for p in peers)
                + "".join(f"{best[p] / best['nnfast']:>9.2f}x" for p in peers)
            )
    finally:
        if jax is not None:
            jax.close()
    if not getattr(args, "training_only", False):
        print_thread_rows(repeat, budget)
        print_memory_row()
        print_emulator_rows(repeat)
        print_sklearn_rows(repeat)
        from nnfast._bench_lbfgs import print_lbfgs_rows

        print_lbfgs_rows(repeat, best_alternating, _fmt, "nnfast and BLAS on one thread")
    unpin_threads(limits)
    print_scaling_table(repeat, budget)
    print_crossover_rows(repeat, budget)
    print_all_threads_rows(repeat, budget, torch, getattr(args, "no_jax", False))
    if not getattr(args, "training_only", False):
        print_lbfgs_rows(repeat, best_alternating, _fmt, f"every core ({os.cpu_count()}) for both")
    return 0 if agree else 1


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


# The workflow rows live in nnfast/_bench_workflows.py and the thread tables in
# nnfast/_bench_threads.py (both use the helpers above, hence the imports at the end); their
# names stay importable from here.
from nnfast._bench_threads import (  # noqa: E402
    print_all_threads_rows,
    print_crossover_rows,
    print_scaling_table,
    run_threads,
)
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
    "print_all_threads_rows",
    "print_crossover_rows",
    "print_scaling_table",
    "run_threads",
    "emulator_runners",
    "ensemble_runner",
    "print_emulator_rows",
    "print_sklearn_rows",
    "seed_curve_fit",
    "sklearn_runner",
    "time_ensemble",
    "time_sklearn",
]
