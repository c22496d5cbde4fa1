"""The Python blocks of docs/threads.md run, in order, as one session (```py blocks, which
need a cluster, are not run)."""

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "threads.md"


def python_blocks():
    return re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), flags=re.S | re.M)


def test_the_threads_page_shows_n_threads_and_the_invariance():
    blocks = python_blocks()
    assert any("n_threads=1" in block and "effective_n_threads" in block for block in blocks)
    assert any("tobytes()" in block and "n_threads=3" in block for block in blocks)


def test_the_threads_page_python_blocks_run(capsys):
    pytest.importorskip("threadpoolctl", reason="one block limits OpenMP with threadpoolctl")
    namespace = {}
    for i, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"docs/threads.md python block {i + 1}", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            pytest.fail(f"docs/threads.md python block {i + 1} failed: {err!r}\n{block}")
