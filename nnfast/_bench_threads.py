"""The thread tables of ``python -m nnfast bench``: nnfast's scaling from one thread to every
allowed core, and the "all threads" rows against NumPy/BLAS, PyTorch and JAX each allowed
every core.

Scaling: every case is timed with ``n_threads = 1, 2, … len(os.sched_getaffinity(0))`` and
with ``n_threads=None``, in turns within one run (:func:`nnfast.bench.best_alternating`), so
each thread count sees the same machine; the ratios are the 1-thread time over the n-thread
time (above 1, n threads are faster). Moved out of nnfast/bench.py to keep both files short;
nnfast.bench re-exports the public names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nnfast.bench import (
    CASES,
    _data,
    _fmt,
    _time,
    _torch,
    best_alternating,
    epoch_runner,
    predict_runner,
    print_code_paths,
    start_jax,
    time_case,
    unpin_threads,
)


@dataclass(frozen=True)
class ScalingCase:
    """One row of the scaling table: ``kind`` "fit" (one epoch of the bench's SGD over
    ``rows`` rows in batches of ``batch``), "predict" or "loss_and_grad" (one call on
    ``rows`` rows)."""

    label: str
    kind: str
    sizes: tuple
    rows: int
    batch: int | None
    dtype: str


def _case_rows(name) -> int:
    return next(n for case, _, n, _ in CASES if case == name)


WIDE, TABULAR, SEED = (784, 512, 512, 10), (16, 64, 64, 3), (1, 20, 20, 1)
SCALING_CASES = (
    ScalingCase("wide", "fit", WIDE, _case_rows("wide"), 128, "float64"),
    ScalingCase("wide", "fit", WIDE, _case_rows("wide"), 128, "float32"),
    ScalingCase("tabular", "fit", TABULAR, _case_rows("tabular"), 256, "float64"),
    ScalingCase("tabular", "fit", TABULAR, _case_rows("tabular"), 256, "float32"),
    ScalingCase("predict", "predict", SEED, 1_000_000, None, "float64"),
    ScalingCase("loss_and_grad", "loss_and_grad", TABULAR, 20_000, None, "float64"),
    ScalingCase("seed", "fit", SEED, _case_rows("seed"), 32, "float64"),
)


def allowed_cores() -> int:
    """The CPUs this process may run on (its affinity mask; the CPU count where the OS has
    no affinity call)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_counts(cores=None) -> list:
    """``[1, 2, …, cores]``, by default up to :func:`allowed_cores`."""
    return list(range(1, (allowed_cores() if cores is None else cores) + 1))


def call_runner(case: ScalingCase, n_threads):
    """A function making one ``predict`` or ``loss_and_grad`` call of ``case``."""
    from nnfast import MLP

    if case.kind == "predict" and case.sizes == SEED and case.dtype == "float64":
        return predict_runner("nnfast", case.rows, n_threads)  # the bench's predict case
    net = MLP(list(case.sizes), activation="tanh", dtype=case.dtype, seed=0)
    X, y = _data(list(case.sizes), case.rows, case.dtype)
    if case.kind == "predict":
        return lambda: net.predict(X, n_threads=n_threads)
    if case.kind == "loss_and_grad":
        return lambda: net.loss_and_grad(X, y, n_threads=n_threads)
    raise ValueError(f"kind: expected 'fit', 'predict' or 'loss_and_grad', got {case.kind!r}")


def time_scaling_case(case: ScalingCase, counts, repeat, budget) -> dict:
    """Best seconds per epoch (fit) or per call of ``case`` for each thread count in
    ``counts`` and for None ({n_threads: seconds}), timed in turns; each timing runs about
    ``budget`` seconds of the 1-thread work."""
    keys = [*counts, None]
    if case.kind == "fit":
        runs = {
            key: epoch_runner(
                "nnfast", list(case.sizes), case.rows, case.batch, case.dtype, None, key
            )
            for key in keys
        }
        # Whole fits of several epochs: fit's own per-call checks stay out of the epoch time.
        epochs = max(1, int(budget / max(_time(lambda: runs[counts[0]](1)), 1e-7)))
        runners = {key: (lambda run=run: run(epochs)) for key, run in runs.items()}
        calls, per_call = 1, epochs
    else:
        runners = {key: call_runner(case, key) for key in keys}
        runners[counts[0]]()  # warm up before sizing the timing
        calls = max(1, int(budget / max(_time(runners[counts[0]]), 1e-7)))
        per_call = 1
    best = best_alternating(runners, repeat, calls)
    return {key: seconds / per_call for key, seconds in best.items()}


def ratio(value: float, width: int) -> str:
    """``value`` as "1.83x" right-aligned in ``width`` characters; a ratio under 0.01 (a team
    waiting on a busy core) keeps its digits ("4.2e-03x") instead of printing as 0.00."""
    text = f"{value:.2f}x" if value >= 0.01 else f"{value:.1e}x"
    return text.rjust(width)


def scaling_ratios(best: dict) -> dict:
    """``{n_threads: 1-thread time / n-thread time}`` for every key of ``best`` but 1."""
    return {key: best[1] / seconds for key, seconds in best.items() if key != 1}


def _case_name(case: ScalingCase) -> str:
    return f"{case.label} {'-'.join(map(str, case.sizes))}"


def _case_size(case: ScalingCase) -> str:
    return f"b{case.batch}" if case.kind == "fit" else f"{case.rows:,} rows"


def print_scaling_table(repeat, budget, cases=SCALING_CASES, counts=None) -> list:
    """Print the scaling table and return its rows ``[(case, {n_threads: seconds})]``."""
    from nnfast._threads import effective_n_threads

    counts = thread_counts() if counts is None else list(counts)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"\nnnfast thread scaling: n_threads = 1 … {counts[-1]} and None (= "
        f"{effective_n_threads()} here; {allowed_cores()} allowed cores, load average {load})"
    )
    print(
        f"seconds per epoch (fit: the bench's SGD) or per call, best of {repeat} in turns; "
        f"'k vs 1' = the 1-thread time / the k-thread time (above 1, k threads are faster)"
    )
    keys = [*counts, None]
    names = [str(key) for key in keys]
    header = f"{'case':<26}{'size':>16} {'dtype':<8}" + "".join(f"{name:>11}" for name in names)
    print(header + "".join(f"{name + ' vs 1':>11}" for name in names[1:]))
    rows = []
    for case in cases:
        best = time_scaling_case(case, counts, repeat, budget)
        ratios = scaling_ratios(best)
        line = f"{_case_name(case):<26}{_case_size(case):>16} {case.dtype:<8}"
        line += "".join(_fmt(best[key]).rjust(11) for key in keys)
        print(line + "".join(ratio(ratios[key], 11) for key in keys[1:]), flush=True)
        rows.append((case, best))
    return rows


# The crossover: small batches, where a team may cost more than it saves. (sizes, rows, batch)
CROSSOVER_CASES = (
    (SEED, 2048, 32),
    (SEED, 2048, 256),
    (TABULAR, 2048, 16),
    (TABULAR, 2048, 32),
    (TABULAR, 2048, 64),
    (TABULAR, 2048, 256),
)


def time_crossover_case(sizes, n, batch, cores, repeat, budget) -> dict:
    """Best seconds per epoch on 1 thread, on ``cores`` threads with the crossover lifted
    (every batch split, 8 rows per thread at least) and with ``n_threads=None`` at the
    default crossover: {"1": s, "split": s, "None": s}. The threshold is restored after."""
    from nnfast import _team

    default = _team.min_thread_work()
    runs = {
        key: epoch_runner("nnfast", list(sizes), n, batch, "float64", None, threads)
        for key, threads in (("1", 1), ("split", cores), ("None", None))
    }

    def runner(key, epochs):
        def run():
            _team.set_min_thread_work(0 if key == "split" else default)
            try:
                runs[key](epochs)
            finally:
                _team.set_min_thread_work(default)

        return run

    epochs = max(1, int(budget / max(_time(runner("1", 1)), 1e-7)))
    best = best_alternating({key: runner(key, epochs) for key in runs}, repeat)
    return {key: seconds / epochs for key, seconds in best.items()}


def print_crossover_rows(repeat, budget, cases=CROSSOVER_CASES, cores=None) -> list:
    """The crossover table: per batch, the multiply-adds each of ``cores`` threads would do,
    the epoch on 1 thread, split over ``cores`` threads regardless, and with None."""
    from nnfast import MLP, _team

    cores = allowed_cores() if cores is None else cores
    print(
        f"\ncrossover: one epoch (float64) on 1 thread, split over {cores} threads at every "
        f"batch, and n_threads=None (a batch is split when each thread gets "
        f"{_team.min_thread_work():,} multiply-adds and 8 rows)"
    )
    print(
        f"{'network':<16}{'batch':>6}{'MACs/thread':>13}{'1 thread':>12}{'split':>12}"
        f"{'None':>12}{'split vs 1':>12}{'None vs 1':>11}"
    )
    rows = []
    for sizes, n, batch in cases:
        best = time_crossover_case(sizes, n, batch, cores, repeat, budget)
        per_thread = batch * MLP(list(sizes)).n_params * 3 // cores
        line = f"{'-'.join(map(str, sizes)):<16}{batch:>6}{per_thread:>13,}"
        line += "".join(_fmt(best[key]).rjust(12) for key in ("1", "split", "None"))
        line += ratio(best["1"] / best["split"], 12) + ratio(best["1"] / best["None"], 11)
        print(line, flush=True)
        rows.append(((sizes, n, batch), best))
    return rows


# The "all threads" cases: the larger networks of the one-thread table at their largest
# batch, and predict on 10⁶ rows.
ALL_THREADS_CASES = tuple((case, sizes, n, batches[-1]) for case, sizes, n, batches in CASES[1:])
ALL_THREADS_PREDICT_ROWS = 1_000_000


def print_all_threads_rows(
    repeat,
    budget,
    torch,
    no_jax=False,
    cases=ALL_THREADS_CASES,
    predict_rows=ALL_THREADS_PREDICT_ROWS,
) -> list:
    """The larger cases again with every library allowed every allowed core: nnfast with
    ``n_threads=None``, NumPy's BLAS, PyTorch, and JAX (a child process not pinned, NPROC
    unset); then predict on ``predict_rows`` rows of the seed network (no PyTorch column).
    Returns the rows ``[(label, {library: seconds})]``."""
    unpin_threads()  # a no-op unless the one-thread tables pinned the pools
    cores = allowed_cores()
    if torch is not None:
        torch.set_num_threads(cores)
    print(
        f"\nall threads allowed ({cores} cores): nnfast n_threads=None, NumPy/BLAS, PyTorch "
        f"and JAX (vs X = X's time / nnfast's: above 1, nnfast is faster)"
    )
    jax = None if no_jax else start_jax(one_core=False)
    libs = ["nnfast", "numpy"] + (["torch"] if torch else []) + (["jax"] if jax else [])
    peers = libs[1:]
    print(
        f"{'case':<9}{'batch':>10} {'dtype':<8}"
        + "".join(f"{lib:>12}" for lib in libs)
        + "".join(f"{'vs ' + lib:>10}" for lib in peers)
    )

    def row(label, batch, dtype, best):
        line = f"{label:<9}{batch:>10} {dtype:<8}"
        line += "".join((_fmt(best[lib]) if lib in best else "—").rjust(12) for lib in libs)
        line += "".join(
            (ratio(best[lib] / best["nnfast"], 10) if lib in best else f"{'—':>10}")
            for lib in peers
        )
        print(line, flush=True)

    rows = []
    try:
        for case, sizes, n, batch in cases:
            for dtype in ("float64", "float32"):
                best = time_case(sizes, n, batch, dtype, repeat, budget, torch, jax, None)
                row(case, batch, dtype, best)
                rows.append((f"{case} b{batch} {dtype}", best))
        remote = (
            None if jax is None else {"jax": lambda calls: jax.predict_seconds(predict_rows, calls)}
        )
        runners = {lib: predict_runner(lib, predict_rows, None) for lib in ("nnfast", "numpy")}
        best = best_alternating(runners, repeat, 1, remote=remote)
        row("predict", f"{predict_rows:,} rows", "float64", best)
        rows.append((f"predict {predict_rows} rows", best))
    finally:
        if jax is not None:
            jax.close()
    return rows


def run_threads(args) -> int:
    """``python -m nnfast bench --threads-only``: the CPU, the scaling table and the all
    threads rows."""
    repeat = args.repeat
    budget = 0.05 if args.quick else 0.2
    print(f"nnfast bench --threads-only — best of {repeat}")
    print_code_paths()
    print_scaling_table(repeat, budget)
    print_crossover_rows(repeat, budget)
    print_all_threads_rows(repeat, budget, _torch(), getattr(args, "no_jax", False))
    return 0
