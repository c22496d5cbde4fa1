"""The README's Python blocks run, in order, as one session: the tour stays true."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


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
    namespace = {}
    for i, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            pytest.fail(f"README python block {i + 1} failed: {err!r}\n{block}")
