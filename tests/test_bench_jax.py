"""The JAX peer of the bench and the bench's report (no timing is asserted anywhere).

The arithmetic check is the one that matters: JAX's jitted epoch and nnfast's must train
the same weights (float64, 1e-10 after one epoch), or the bench compares different work.
"""

import importlib.util
import os

import numpy as np
import pytest

from nnfast import MLP, _bench_jax, bench

needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason='JAX is an optional benchmark peer (pip install "jax[cpu]")',
)


def nnfast_one_epoch(sizes, n, batch, dtype="float64"):
    X, y = bench._data(sizes, n, dtype)
    net = MLP(sizes, activation="tanh", dtype=dtype, seed=0)
    start = _bench_jax.layer_params(net)
    net.fit(
        X, y, optimizer="sgd", lr=bench.LR, momentum=0.0, batch_size=batch, shuffle=False, epochs=1
    )
    return start, X, y, net.params


@pytest.mark.parametrize("batch, count, rest", [(8, 5, None), (7, 5, 5), (None, 1, None)])
def test_batches_stacks_the_full_ones_and_keeps_the_rest(batch, count, rest):
    X = np.arange(80.0).reshape(40, 2)
    y = np.arange(40.0)[:, None]
    Xb, yb, X_rest, y_rest = _bench_jax.batches(X, y, batch)
    assert Xb.shape[0] == count and yb.shape[:2] == Xb.shape[:2]
    assert (X_rest is None) == (rest is None)
    pieces = list(Xb) + ([] if X_rest is None else [X_rest])
    np.testing.assert_array_equal(np.concatenate(pieces), X)  # in order, nothing lost
    if rest is not None:
        assert X_rest.shape == (rest, 2) and y_rest.shape == (rest, 1)


def test_flatten_is_nnfasts_parameter_layout():
    net = MLP([3, 4, 2], seed=1)
    np.testing.assert_array_equal(_bench_jax.flatten(_bench_jax.layer_params(net)), net.params)


def test_a_missing_jax_is_a_printed_reason(monkeypatch, capsys):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    reason = _bench_jax.jax_missing_reason()
    assert "JAX not installed" in reason and 'pip install "jax[cpu]"' in reason
    assert bench.start_jax() is None
    assert reason in capsys.readouterr().out


def test_the_child_environment_holds_xla_to_one_core_or_frees_it(monkeypatch):
    monkeypatch.setenv("NPROC", "7")
    one = _bench_jax.child_environment(one_core=True)
    assert one["NPROC"] == "1" and one["OMP_NUM_THREADS"] == "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(_bench_jax.__file__)))
    assert one["PYTHONPATH"].split(os.pathsep)[0] == root  # the child imports this nnfast
    assert "NPROC" not in _bench_jax.child_environment(one_core=False)


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant: expected one of"):
        _bench_jax.make_trainer(None, "vmap", False)


@needs_jax
@pytest.mark.parametrize("variant", _bench_jax.VARIANTS)
@pytest.mark.parametrize(
    "sizes, n, batch",
    [([1, 20, 20, 1], 100, 32), ([3, 5, 4, 2], 40, 8), ([3, 5, 2], 30, 1), ([2, 6, 3], 50, None)],
)
def test_one_jax_epoch_trains_nnfasts_weights(sizes, n, batch, variant):
    jax = _bench_jax.import_jax()
    start, X, y, expected = nnfast_one_epoch(sizes, n, batch)
    assert np.abs(expected - _bench_jax.flatten(start)).max() > 1e-8  # the epoch moved them
    trainer = _bench_jax.Trainer(jax, start, X, y, batch)
    np.testing.assert_allclose(trainer.one_epoch(variant), expected, rtol=0, atol=1e-10)


@needs_jax
def test_the_jax_prediction_is_the_forward_pass():
    jax = _bench_jax.import_jax()
    net = MLP([1, 20, 20, 1], activation="tanh", seed=0)
    X = np.linspace(-3, 3, 11)[:, None]
    predict = _bench_jax.make_predictor(jax, _bench_jax.layer_params(net))
    np.testing.assert_allclose(predict(X), net.predict(X), rtol=0, atol=1e-13)


@needs_jax
def test_the_child_is_pinned_to_one_cpu_and_does_the_same_arithmetic():
    peer = _bench_jax.JaxPeer(one_core=True)
    try:
        assert len(peer.cpus) == 1 and peer.cpus[0] in os.sched_getaffinity(0)
        difference = bench.jax_weight_difference(peer, [1, 20, 20, 1], 100, 32, "float64")
        assert difference <= bench.JAX_TOLERANCE
        timed = peer.trainer([1, 20, 20, 1], 100, 32, "float64")
        assert timed(2) > 0 and peer.best_variant(timed.key) in _bench_jax.VARIANTS
        peer.runner([1, 20, 20, 1], 100, 32, "float64", "scan")(1)
        assert peer.predict_seconds(1, 3) > 0
    finally:
        peer.close()
    assert peer.process.returncode == 0


X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
stepping\t: 1
flags\t\t: fpu sse2 avx2

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: another one
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd
CPU implementer\t: 0x41
CPU part\t: 0xd0c

processor\t: 1
"""


def test_parse_cpuinfo_reads_the_first_processor():
    info = bench.parse_cpuinfo(X86_CPUINFO)
    assert info["model name"] == "AMD EPYC 9R14"
    assert info["cpu family"] == "25" and info["model"] == "17" and info["flags"] == "fpu sse2 avx2"
    assert bench.parse_cpuinfo("") == {}
    assert bench.parse_cpuinfo(ARM_CPUINFO)["CPU part"] == "0xd0c"


def test_cpu_description_names_the_cpu_family_and_model():
    x86 = {
        "vendor": "AuthenticAMD",
        "brand": "",
        "family": 25,
        "model": 17,
        "stepping": 1,
        "features": ("avx2", "avx512f"),
    }
    text = bench.cpu_description(x86, bench.parse_cpuinfo(X86_CPUINFO))
    assert text.startswith("AMD EPYC 9R14 (AuthenticAMD, family 25, model 17, stepping 1;")
    assert text.endswith("avx2 avx512f)")
    arm = {"vendor": "", "brand": "", "family": 0, "model": 0, "stepping": 0, "features": ()}
    text = bench.cpu_description(arm, bench.parse_cpuinfo(ARM_CPUINFO))
    assert "implementer 0x41, part 0xd0c" in text and "vendor unknown" in text


def test_the_training_table_has_a_ratio_per_peer_and_gemm_share_for_mini_batches():
    libs = ["nnfast", "numpy", "jax"]
    header = bench.training_header(libs)
    for column in (
        "nnfast",
        "numpy",
        "jax",
        "vs numpy",
        "vs jax",
        "GFLOP/s",
        "% GEMM",
        "jax best",
        "jax Δw",
    ):
        assert column in header
    assert "vs nnfast" not in header and "torch" not in header
    best = {"nnfast": 1e-4, "numpy": 3e-4, "jax": 1.5e-4}
    flops = 2e5  # 2 GFLOP/s at 1e-4 s: 10% of a 20 GFLOP/s GEMM rate
    row = bench.training_row("seed", 32, "float64", best, libs, flops, 20.0, "scan", 3e-17)
    assert "3.00x" in row and "1.50x" in row and "10%" in row and "scan" in row and "3e-17" in row
    for batch in (1, None):
        row = bench.training_row("seed", batch, "float64", best, libs, flops, 20.0, "scan", 0.0)
        assert "%" not in row and "—" in row
    assert len(bench.training_header(["nnfast", "numpy"]).split()) == 10


@pytest.mark.parametrize("with_jax", [False, pytest.param(True, marks=needs_jax)])
def test_the_training_table_runs_every_case(monkeypatch, capsys, with_jax):
    monkeypatch.setattr(bench, "CASES", [("tiny", [2, 3, 1], 48, [8, None])])
    monkeypatch.setattr(bench, "gemm_rate", lambda dtype, repeat=5: 1.0)  # no 1024² product
    jax = _bench_jax.JaxPeer() if with_jax else None
    try:
        assert bench.print_training_table(1, 1e-3, None, jax, {"float64": 1, "float32": 1})
    finally:
        if jax is not None:
            jax.close()
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("tiny")]
    assert len(rows) == 4  # two batch sizes, two dtypes
    assert all(("vs jax" in "\n".join(lines)) == with_jax for _ in rows)


class FakePeer:
    """A stand-in for JaxPeer: the bench's table logic without JAX or a child process."""

    version, cpus = "0.0", [0]

    def __init__(self, weight_difference):
        self.weight_difference = weight_difference

    def trainer(self, sizes, n, batch, dtype):
        def timed(epochs):
            return 2e-4

        timed.key = f"{sizes}-{n}-{batch}-{dtype}"
        return timed

    def one_epoch(self, key):
        return {"scan": None}

    def best_variant(self, key):
        return "scan"

    def predict_seconds(self, rows, calls):
        return 1e-5


@pytest.mark.parametrize("difference, agree", [(1e-16, True), (1e-6, False)])
def test_a_float64_weight_difference_fails_the_bench(monkeypatch, capsys, difference, agree):
    monkeypatch.setattr(bench, "CASES", [("tiny", [2, 3, 1], 48, [8])])
    monkeypatch.setattr(bench, "jax_weight_difference", lambda jax, *case: difference)
    monkeypatch.setattr(bench, "gemm_rate", lambda dtype, repeat=5: 1.0)
    peer = FakePeer(difference)
    assert bench.print_training_table(1, 1e-3, None, peer, {"float64": 1, "float32": 1}) is agree
    out = capsys.readouterr().out
    assert ("JAX CHECK FAILED" in out) is not agree
    assert "vs jax" in out and "scan" in out and f"{difference:>8.0e}" in out


def test_the_predict_rows_take_the_jax_childs_own_timing():
    timings = dict(bench.time_predict(1, FakePeer(0.0)))
    assert set(timings) == {"1 sample", "10^6 rows"}
    assert all(best["jax"] == 1e-5 for best in timings.values())


def test_the_bench_options_parse():
    from nnfast import cli

    args = cli.build_parser().parse_args(["bench", "--training-only", "--no-jax", "--quick"])
    assert args.training_only and args.no_jax and args.quick
    args = cli.build_parser().parse_args(["bench"])
    assert not args.training_only and not args.no_jax
