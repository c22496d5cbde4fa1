"""Run the hypothesis fuzzing of every public entry point (tests/fuzz_cases.py) in a child
process: a crash inside a compiled kernel (segfault, abort) fails this test with the child's
output instead of killing the test run.

Budget: about 4,000 examples in CI (about 30 s on a 2-core machine with the release build);
``NNFAST_FUZZ_LONG=1`` runs 20 times more. The examples are derandomized and no database
is kept, so CI runs the same examples every time.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
LONG = os.environ.get("NNFAST_FUZZ_LONG", "") not in ("", "0")


def test_fuzz_every_entry_point_in_a_child_process():
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics", str(HERE / "fuzz_cases.py")]
    child = subprocess.run(command, cwd=HERE.parent, capture_output=True, text=True,
                           timeout=None if LONG else 900)
    output = child.stdout + child.stderr
    if child.returncode < 0:
        raise AssertionError(
            f"the fuzzing process was killed by {signal.Signals(-child.returncode).name} "
            f"(a crash in compiled code):\n{output[-20000:]}")
    assert child.returncode == 0, f"fuzzing failed:\n{output[-20000:]}"
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
    # The budget really ran: count the passing examples hypothesis reports.
    # ("- 400 passing examples, ..." or, in newer versions, "- 400 passing, 0 failing, ...")
    examples = sum(int(n) for n in re.findall(r"^\s*- (\d+) passing\b", output, re.MULTILINE))
    assert examples >= (40_000 if LONG else 2_000), f"only {examples} examples ran:\n{output}"
