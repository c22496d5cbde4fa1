"""The README's Python blocks run, in order, as one session: the tour stays true."""

import re
from pathlib import Path

from conftest import markdown_python_blocks, run_markdown_python_blocks

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return markdown_python_blocks(README)


def test_readme_has_a_tour():
    assert len(python_blocks()) >= 5


def test_readme_first_shell_block_has_two_commands():
    block = re.search(r"^```(?:bash|sh)\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    commands = [
        line
        for line in block.group(1).splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert len(commands) == 2
    assert "python -m nnfast demo" in commands[0]
    assert "pytest" in commands[1]


def test_readme_python_blocks_run(capsys):
    run_markdown_python_blocks(README)
