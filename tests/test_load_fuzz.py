"""Run the atheris fuzz targets of ``nnfast.load`` for a bounded time in a child process:
any exception other than ValueError, any warning, or a crash of compiled code fails this
test with the fuzzer's report.

Targets: tests/fuzz/atheris_load.py (network files; 25 s) and
tests/fuzz/atheris_load_estimators.py (estimator files, whose loaded estimators are also
run; 15 s), each with libFuzzer's seed fixed (``NNFAST_FUZZ_LONG=1``: 10 minutes each),
starting from its committed seed corpus in tests/fuzz/corpus/. The child's stderr is
passed through to this process's stderr as well as checked, so a sanitizer build's report
(see .ci/sanitize) shows in the log.
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
LONG = os.environ.get("NNFAST_FUZZ_LONG", "") not in ("", "0")
# name -> (target, seed corpus, seconds, the fewest runs per second that show it ran: far
# fewer than the ~5,000 (networks) and ~650 (estimators) per second seen here).
TARGETS = {
    "load": (HERE / "fuzz" / "atheris_load.py", HERE / "fuzz" / "corpus" / "load", 25, 20),
    "load_estimators": (
        HERE / "fuzz" / "atheris_load_estimators.py",
        HERE / "fuzz" / "corpus" / "load_estimators",
        15,
        10,
    ),
}


def child_environment():
    """The child imports the nnfast this process tests (the checkout, not an installed copy)."""
    root = str(pathlib.Path(nnfast.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root if not path else root + os.pathsep + path)


@pytest.mark.parametrize("name", TARGETS)
def test_the_committed_seed_corpus_is_what_the_target_writes(tmp_path, name):
    if name == "load_estimators":
        pytest.importorskip("sklearn", reason="estimator files need scikit-learn")
    target, corpus, _, _ = TARGETS[name]
    done = subprocess.run(
        [sys.executable, str(target), "--write-corpus", str(tmp_path)],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in corpus.iterdir()}
    assert written.keys() == committed.keys()
    changed = [name for name in written if written[name] != committed[name]]
    assert not changed, f"regenerate the corpus (see {target.name}): {changed} differ"


@pytest.mark.parametrize("name", TARGETS)
def test_fuzzing_load_raises_nothing_but_value_error(tmp_path, name):
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    if name == "load_estimators":
        pytest.importorskip("sklearn", reason="estimator files need scikit-learn")
    target, corpus, seconds, min_rate = TARGETS[name]
    seconds = 600 if LONG else seconds
    new_inputs = tmp_path / "new"
    new_inputs.mkdir()
    command = [
        sys.executable,
        str(target),
        "-seed=1",
        f"-max_total_time={seconds}",
        "-timeout=20",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/",
        str(new_inputs),
        str(corpus),
    ]
    child = subprocess.run(
        command, env=child_environment(), capture_output=True, text=True, timeout=seconds + 300
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
    assert int(runs.group(1)) >= min_rate * seconds, report
