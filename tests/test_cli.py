"""python -m nnfast demo | bench: options, errors, output."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnfast
from nnfast import bench, cli


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "nnfast", *args], capture_output=True, text=True, timeout=300
    )


def test_demo_trains_times_and_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the plot extra)")
    out = tmp_path / "fit.png"
    result = run("demo", "--epochs", "30", "--output", str(out), "--seed", "3")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "481" in text and "epoch 30/30" in text
    assert "final training loss" in text and "reference.py (NumPy)" in text and "faster" in text
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_plot_writes_nothing(tmp_path):
    # Run from an empty directory, with nnfast importable from where this suite found it.
    env = dict(os.environ, PYTHONPATH=str(Path(nnfast.__file__).resolve().parents[1]))
    result = subprocess.run(
        [sys.executable, "-m", "nnfast", "demo", "--epochs", "3", "--no-plot"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.iterdir())


def test_demo_help_lists_its_options():
    result = run("demo", "--help")
    assert result.returncode == 0
    for option in ("--epochs", "--optimizer", "--lr", "--seed", "--output", "--batch-size"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
        (["--epochs", "ten"], "--epochs: expected a positive integer, got 'ten'"),
        (["--lr", "-1"], "--lr: expected a positive number, got '-1'"),
        (["--lr", "nan"], "--lr: expected a positive number, got 'nan'"),
        (["--seed", "-2"], "--seed: expected an integer >= 0, got '-2'"),
        (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    ],
)
def test_bad_values_are_argparse_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("library", ["nnfast", "numpy"])
def test_bench_runners_train_the_same_network(library):
    """The benchmark's runners do the arithmetic they claim: one epoch of plain SGD."""
    from nnfast import reference

    sizes, n = [3, 5, 2], 40
    run_epochs = bench.epoch_runner(library, sizes, n, 8, "float64")
    run_epochs(1)
    X, y = bench._data(sizes, n, "float64")
    ref = reference.MLP(sizes, activation="tanh", seed=0)
    ref.fit(X, y, optimizer="sgd", lr=bench.LR, momentum=0.0, batch_size=8, shuffle=False, epochs=1)
    np.testing.assert_allclose(run_epochs.model.params, ref.params, rtol=1e-12, atol=1e-15)


def test_training_flops_counts_forward_and_both_gradients():
    # 1-20-20-1: 440 multiply-adds forward, the same for dW, and 420 for dA (none into X).
    assert bench.training_flops([1, 20, 20, 1], 1) == 2 * (440 + 440 + 420)


def test_version_from_the_entry_point_and_python_m():
    import subprocess
    import sys

    import nnfast

    out = subprocess.run(
        [sys.executable, "-m", "nnfast", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"nnfast {nnfast.__version__}"
    from importlib.metadata import version

    assert version("nnfast") == nnfast.__version__  # pyproject.toml reads it from nnfast
