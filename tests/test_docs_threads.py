"""The Python blocks of docs/threads.md run, in order, as one session (```py blocks, which
need a cluster, are not run)."""

from pathlib import Path

import pytest
from conftest import markdown_python_blocks, run_markdown_python_blocks

PAGE = Path(__file__).resolve().parent.parent / "docs" / "threads.md"


def python_blocks():
    return markdown_python_blocks(PAGE)


def test_the_threads_page_shows_n_threads_and_the_invariance():
    blocks = python_blocks()
    assert any("n_threads=1" in block and "effective_n_threads" in block for block in blocks)
    assert any("tobytes()" in block and "n_threads=3" in block for block in blocks)


def test_the_threads_page_python_blocks_run(capsys):
    pytest.importorskip("threadpoolctl", reason="one block limits OpenMP with threadpoolctl")
    run_markdown_python_blocks(PAGE)
