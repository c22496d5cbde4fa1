"""Check every compiled module of nnfast against its ``.pyi`` stub with mypy's stubtest.

    python tools/stubtest.py

The compiled modules are found from the ``.pyx`` files in ``nnfast/`` (so a new module is
checked without editing this script) and must be built (``pip install -e .`` or
``python setup.py build_ext --inplace``). ``tools/stubtest-allowlist.txt`` lists the names
Cython generates, which no stub declares; nothing else belongs there. The mypy settings
are ``pyproject.toml``'s ``[tool.mypy]``. Exits with stubtest's status.
"""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    modules = sorted(f"nnfast.{path.stem}" for path in (ROOT / "nnfast").glob("*.pyx"))
    command = [
        sys.executable,
        "-m",
        "mypy.stubtest",
        *modules,
        "--allowlist",
        str(ROOT / "tools" / "stubtest-allowlist.txt"),
        "--mypy-config-file",
        str(ROOT / "pyproject.toml"),
    ]
    print("+", " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
