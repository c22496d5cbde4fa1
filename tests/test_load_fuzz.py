"""Run the atheris fuzz target of ``nnfast.load`` (tests/fuzz/atheris_load.py) for a bounded
time in a child process: any exception other than ValueError, any warning, or a crash of
compiled code fails this test with the fuzzer's report.

Budget: 25 s with libFuzzer's seed fixed (``NNFAST_FUZZ_LONG=1``: 10 minutes), starting
from the committed seed corpus tests/fuzz/corpus/load/. The child's stderr is passed
through to this process's stderr as well as checked, so a sanitizer build's report (see
.ci/sanitize) shows in the log.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

import nnfast

HERE = pathlib.Path(__file__).resolve().parent
TARGET = HERE / "fuzz" / "atheris_load.py"
CORPUS = HERE / "fuzz" / "corpus" / "load"
LONG = os.environ.get("NNFAST_FUZZ_LONG", "") not in ("", "0")
SECONDS = 600 if LONG else 25


def child_environment():
    """The child imports the nnfast this process tests (the checkout, not an installed copy)."""
    root = str(pathlib.Path(nnfast.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root if not path else root + os.pathsep + path)


def test_the_committed_seed_corpus_is_what_the_target_writes(tmp_path):
    done = subprocess.run(
        [sys.executable, str(TARGET), "--write-corpus", str(tmp_path)],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in CORPUS.iterdir()}
    assert written.keys() == committed.keys()
    changed = [name for name in written if written[name] != committed[name]]
    assert not changed, f"regenerate the corpus (see {TARGET.name}): {changed} differ"


def test_fuzzing_load_raises_nothing_but_value_error(tmp_path):
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    new_inputs = tmp_path / "new"
    new_inputs.mkdir()
    command = [
        sys.executable,
        str(TARGET),
        "-seed=1",
        f"-max_total_time={SECONDS}",
        "-timeout=20",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/",
        str(new_inputs),
        str(CORPUS),
    ]
    child = subprocess.run(
        command, env=child_environment(), capture_output=True, text=True, timeout=SECONDS + 300
    )
    sys.stderr.write(child.stderr[-20000:])
    report = child.stdout[-5000:] + child.stderr[-20000:]
    if child.returncode < 0:
        raise AssertionError(
            f"the fuzzer was killed by {signal.Signals(-child.returncode).name}:\n{report}"
        )
    findings = sorted(p.name for p in tmp_path.iterdir() if p.name != "new")
    assert child.returncode == 0 and not findings, (
        f"fuzzing nnfast.load found an input that raises something else than ValueError "
        f"(saved as {findings}):\n{report}"
    )
    runs = re.search(r"Done (\d+) runs", child.stderr)
    assert runs is not None, report
    # Far fewer than the ~5,000 per second seen here would mean the inputs never ran.
    assert int(runs.group(1)) >= 20 * SECONDS, report
