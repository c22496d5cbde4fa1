"""The thread tables of ``python -m nnfast bench`` run, and every ratio they print is a
finite positive number. Small networks, one timing each: nothing here asserts on timing."""

import math
import os
import re

import pytest

import nnfast
import nnfast.bench  # noqa: F401 (first: nnfast._bench_threads imports from it)
from nnfast import _bench_threads, bench, cli

SMALL_CASES = (
    _bench_threads.ScalingCase("wide", "fit", (12, 16, 3), 64, 16, "float64"),
    _bench_threads.ScalingCase("wide", "fit", (12, 16, 3), 64, 16, "float32"),
    _bench_threads.ScalingCase("predict", "predict", (1, 20, 20, 1), 500, None, "float64"),
    _bench_threads.ScalingCase("predict", "predict", (3, 8, 2), 300, None, "float32"),
    _bench_threads.ScalingCase("loss_and_grad", "loss_and_grad", (16, 8, 3), 200, None, "float64"),
)
RATIO = re.compile(r"(\S+)x(?=\s|$)")


def printed_ratios(text, marker):
    """The ratios ("1.83x") on the table lines that start with one of the cases' labels,
    after ``marker`` in ``text``."""
    lines = text[text.index(marker) :].splitlines()
    labels = ("wide", "predict", "loss_and_grad", "tabular")
    return [[token for token in RATIO.findall(line)] for line in lines if line.startswith(labels)]


def assert_finite_positive(values):
    for value in values:
        assert math.isfinite(value) and value > 0, value


def test_thread_counts_run_from_one_to_every_allowed_core():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _bench_threads.allowed_cores() == cores
    assert _bench_threads.thread_counts() == list(range(1, cores + 1))
    assert _bench_threads.thread_counts(3) == [1, 2, 3]


def test_the_scaling_cases_are_the_issues():
    described = {
        (c.label, c.kind, c.sizes, c.rows, c.batch, c.dtype) for c in _bench_threads.SCALING_CASES
    }
    assert ("wide", "fit", (784, 512, 512, 10), 2048, 128, "float32") in described
    assert ("tabular", "fit", (16, 64, 64, 3), 10_000, 256, "float64") in described
    assert ("predict", "predict", (1, 20, 20, 1), 1_000_000, None, "float64") in described
    assert ("loss_and_grad", "loss_and_grad", (16, 64, 64, 3), 20_000, None, "float64") in described
    assert ("seed", "fit", (1, 20, 20, 1), 1000, 32, "float64") in described


def test_the_scaling_table_prints_a_finite_positive_ratio_per_thread_count(capsys):
    counts = [1, 2, 3]  # more threads than this machine may have: the table still runs
    rows = bench.print_scaling_table(1, 1e-4, cases=SMALL_CASES, counts=counts)
    assert [case for case, _ in rows] == list(SMALL_CASES)
    for _, best in rows:
        assert set(best) == {1, 2, 3, None}
        assert_finite_positive(best.values())
        assert_finite_positive(_bench_threads.scaling_ratios(best).values())
    printed = printed_ratios(capsys.readouterr().out, "nnfast thread scaling")
    assert len(printed) == len(SMALL_CASES)
    for tokens in printed:
        assert len(tokens) == len(counts)  # 2, 3 and None against 1
        assert_finite_positive(float(token) for token in tokens)


def test_the_all_threads_rows_print_finite_positive_ratios(capsys):
    cases = (("tabular", [4, 6, 2], 40, 8),)
    rows = bench.print_all_threads_rows(1, 1e-4, None, no_jax=True, cases=cases, predict_rows=50)
    assert [label for label, _ in rows] == [
        "tabular b8 float64",
        "tabular b8 float32",
        "predict 50 rows",
    ]
    for _, best in rows:
        assert set(best) == {"nnfast", "numpy"}
        assert_finite_positive(best.values())
    printed = printed_ratios(capsys.readouterr().out, "all threads allowed")
    assert len(printed) == 3
    for tokens in printed:
        assert len(tokens) == 1  # vs numpy
        assert_finite_positive(float(token) for token in tokens)


def test_the_crossover_rows_print_finite_positive_ratios_and_restore_the_threshold(capsys):
    from nnfast import _team

    default, regions = _team.min_thread_work(), _team.regions()
    cases = (((1, 20, 20, 1), 64, 16), ((16, 8, 3), 64, 32))
    rows = bench.print_crossover_rows(1, 1e-4, cases=cases, cores=2)
    assert _team.min_thread_work() == default
    if _team.compiled():  # "split" ran its tiny batches on a team of 2
        assert _team.regions() > regions
    assert [case for case, _ in rows] == list(cases)
    for _, best in rows:
        assert set(best) == {"1", "split", "None"}
        assert_finite_positive(best.values())
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith(("1-20-20-1", "16-8-3"))]
    assert len(lines) == 2
    for line in lines:
        tokens = RATIO.findall(line)
        assert len(tokens) == 2  # split vs 1, None vs 1
        assert_finite_positive(float(token) for token in tokens)


def test_the_all_threads_rows_lift_the_one_thread_pin(monkeypatch):
    """The one-thread tables hold nnfast's ``n_threads=None`` to one thread (through
    threadpoolctl's OpenMP limit) and the all-threads rows give every core back, with the
    environment variables the JAX child inherits as they were."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    every = nnfast.effective_n_threads()
    limits = bench.pin_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert nnfast.effective_n_threads() == 1  # the one-thread tables are one thread
    bench.unpin_threads(limits)
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "7"
    assert nnfast.effective_n_threads() == every


def test_bench_threads_only_runs_only_the_thread_tables(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(
        _bench_threads, "print_scaling_table", lambda *a, **k: calls.append("scaling")
    )
    monkeypatch.setattr(
        _bench_threads, "print_all_threads_rows", lambda *a, **k: calls.append("all threads")
    )
    monkeypatch.setattr(
        _bench_threads, "print_crossover_rows", lambda *a, **k: calls.append("crossover")
    )
    monkeypatch.setattr(bench, "pin_threads", lambda n=1: pytest.fail("pinned to one thread"))
    assert cli.main(["bench", "--threads-only", "--quick", "--no-jax"]) == 0
    assert calls == ["scaling", "crossover", "all threads"]
    assert "per-epoch training time" not in capsys.readouterr().out


def test_epoch_runner_passes_n_threads_to_nnfast_only(monkeypatch):
    from nnfast import MLP, reference

    seen = []
    original = MLP.fit

    def fit(self, X, y, **settings):
        seen.append(settings["n_threads"])
        return original(self, X, y, **settings)

    monkeypatch.setattr(MLP, "fit", fit)
    bench.epoch_runner("nnfast", [3, 4, 2], 16, 8, "float64", None, 2)(1)
    bench.epoch_runner("nnfast", [3, 4, 2], 16, 8, "float64")(1)
    assert seen == [2, 1]  # the one-thread tables' default stays one thread
    monkeypatch.setattr(reference.MLP, "fit", lambda self, X, y, **s: seen.append(s))
    bench.epoch_runner("numpy", [3, 4, 2], 16, 8, "float64", None, 2)(1)
    assert "n_threads" not in seen[-1]


def test_the_full_bench_runs_the_thread_tables_after_lifting_its_one_thread_pin(
    monkeypatch, capsys
):
    every, seen = nnfast.effective_n_threads(), {}

    def record(name, result=None):
        return lambda *a, **k: seen.setdefault(name, nnfast.effective_n_threads()) and result

    monkeypatch.setattr(bench, "gemm_rate", lambda *a, **k: 1.0)
    monkeypatch.setattr(bench, "print_training_table", record("one-thread table", True))
    monkeypatch.setattr(bench, "time_predict", lambda *a, **k: [])
    monkeypatch.setattr(bench, "print_scaling_table", record("scaling"))
    monkeypatch.setattr(bench, "print_crossover_rows", record("crossover"))
    monkeypatch.setattr(bench, "print_all_threads_rows", record("all threads"))
    assert cli.main(["bench", "--training-only", "--no-jax", "--quick"]) == 0
    assert seen == {
        "one-thread table": 1,
        "scaling": every,
        "crossover": every,
        "all threads": every,
    }
    assert nnfast.effective_n_threads() == every


@pytest.mark.parametrize("value, text", [(1.8349, "1.83x"), (0.0042, "4.2e-03x"), (12.0, "12.00x")])
def test_a_ratio_keeps_its_digits_when_small(value, text):
    assert _bench_threads.ratio(value, 10) == text.rjust(10)
    assert float(RATIO.findall(_bench_threads.ratio(value, 10))[0]) > 0
