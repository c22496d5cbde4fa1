"""examples/emulator.py, the gallery's emulator workflow, runs end to end (in its quick
mode, NNFAST_EXAMPLE_QUICK=1: a small grid, short training, 40 fits): it writes its figure,
and its least_squares fits with jac=input_grad land on the labels that jac="2-point" finds.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib", reason="the example draws a figure")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_emulator_example_fits_the_same_labels_with_the_jacobian(tmp_path):
    out = tmp_path / "emulator.png"
    # The script imports the nnfast of this checkout, installed or not.
    path = os.pathsep.join([str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep))
    env = {
        **os.environ,
        "PYTHONPATH": path.rstrip(os.pathsep),
        "NNFAST_EXAMPLE_QUICK": "1",
        "MPLBACKEND": "Agg",
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "emulator.py"), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 10_000
    assert "40 fits with jac=input_grad" in run.stdout, run.stdout
    same = re.search(
        r"the same labels \(within 1e-4 of each half-range\) in ([\d.]+)% of the "
        r"fits",
        run.stdout,
    )
    assert same is not None and float(same.group(1)) >= 90, run.stdout
    for name in ("Teff", "log g", "[Fe/H]", "[α/Fe]", "vbroad"):
        assert re.search(rf"^{re.escape(name)}\s", run.stdout, flags=re.MULTILINE), run.stdout
