"""Run the hypothesis fuzzing of every public entry point in a child process: a crash
inside compiled code (segfault, abort), or any other abnormal end of the child, fails this
test naming the case, the example and the seed it died in, instead of killing the test run.

The cases live beside this file, one module per target (``TARGETS``), drawing their
inputs from ``fuzz_inputs.py``. Budget: about 4,000 examples in CI (about 30 s on a 2-core
machine with the release build); ``NNFAST_FUZZ_LONG=1`` runs 20 times more. The examples
are derandomized and no database is kept, so CI runs the same examples every time.

One target alone, in this process (a crash then ends pytest with faulthandler's traceback):
``python -m pytest tests/fuzz/fuzz_kernels.py``.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest
from fuzz_harness import FINISHED, read_record

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGETS = ("fuzz_network.py", "fuzz_kernels.py", "fuzz_estimators.py", "fuzz_io.py")
LONG = os.environ.get("NNFAST_FUZZ_LONG", "") not in ("", "0")
TIMEOUT = None if LONG else 900  # seconds
OUTPUT_TAIL = 20_000  # characters of the child's output quoted in a failure


def run_in_child(paths, progress, env=None):
    """Run pytest on ``paths`` in a child process; return its output if it ended well,
    else raise AssertionError saying how it ended and, if it died inside an example, which
    one (from the progress record at ``progress``, see fuzz_harness.py)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        *map(str, paths),
    ]
    env = dict(os.environ if env is None else env, NNFAST_FUZZ_PROGRESS=str(progress))
    try:
        child = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as expired:
        output = _text(expired.stdout) + _text(expired.stderr)
        _fail(f"the fuzzing process did not end within {TIMEOUT} s", progress, output)
    output = child.stdout + child.stderr
    if child.returncode < 0:
        _fail(
            f"the fuzzing process was killed by {_signal_name(-child.returncode)} "
            "(a crash in compiled code)",
            progress,
            output,
        )
    if child.returncode != 0:
        _fail(f"fuzzing failed (exit status {child.returncode})", progress, output)
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
    return output


def test_fuzz_every_entry_point_in_a_child_process(tmp_path):
    output = run_in_child([HERE / name for name in TARGETS], tmp_path / "progress.txt")
    # The budget really ran: count the passing examples hypothesis reports.
    # ("- 400 passing examples, ..." or, in newer versions, "- 400 passing, 0 failing, ...")
    examples = sum(int(n) for n in re.findall(r"^\s*- (\d+) passing\b", output, re.MULTILINE))
    assert examples >= (40_000 if LONG else 2_000), f"only {examples} examples ran:\n{output}"


CRASHING_CASE = """
import os
import signal

from hypothesis import given, strategies as st

from fuzz_harness import fuzz

examples = []


@given(n=st.integers(0, 9), data=st.data())
@fuzz(20)
def test_crashes_in_its_third_example(n, data):
    examples.append(n)
    data.draw(st.just("drawn before the crash"))
    if len(examples) == 3:
        {death}
"""


@pytest.mark.parametrize(
    "death, ending",
    [
        ("os.kill(os.getpid(), signal.SIGSEGV)", "killed by SIGSEGV (a crash in compiled code)"),
        ("os._exit(3)", "fuzzing failed (exit status 3)"),
    ],
    ids=["segfault", "exit"],
)
def test_a_child_that_dies_fails_naming_its_case_example_and_seed(tmp_path, death, ending):
    case = tmp_path / "fuzz_crash.py"
    case.write_text(CRASHING_CASE.format(death=death))
    # The crashing case imports fuzz_harness from here.
    path = [str(HERE)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    with pytest.raises(AssertionError) as failure:
        run_in_child([case], tmp_path / "progress.txt", env)
    message = str(failure.value)
    assert f"{ending}, during this example" in message
    # The case is pytest's node id, relative to the child's rootdir: where that is depends on
    # where the checkout and the temporary directory are (/tmp/... beside a clone in /tmp).
    case_line = r"^case: (?:\S*/)?fuzz_crash\.py::test_crashes_in_its_third_example\nexample: 3\n"
    assert re.search(case_line, message, re.MULTILINE), message
    assert re.search(r"^seed: \d+$", message, re.MULTILINE), message
    assert "draw 1 = 'drawn before the crash'" in message


def _fail(how, progress, output):
    # (raised, not asserted: pytest would indent the progress record quoted in the message)
    raise AssertionError(f"{how}{_where(progress)}\n{output[-OUTPUT_TAIL:]}") from None


def _where(progress):
    """Where the child was when it ended, from its progress record."""
    try:
        record = read_record(progress)
    except FileNotFoundError:
        return ", before its first example:"
    if record.rstrip("\n").endswith(FINISHED):
        return f", after this example had ended:\n{record}"
    # A case run alone can draw other examples (see fuzz_harness.py): replay the whole run.
    return (
        f", during this example (derandomized: `python -m pytest {HERE.relative_to(ROOT)}"
        f"/test_fuzz.py` replays it):\n{record}"
    )


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _text(output):
    """TimeoutExpired holds bytes whatever subprocess.run was told."""
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""
