"""The build and the install: compiler flags per compiler, and what tools see after an install.

setup.py is imported as a module (its setup() call runs only as __main__), so its choices are
tested directly; the checks that need a whole build (an sdist and a wheel installed into a
fresh environment, a clang build passing the suite) are .ci/build and .ci/clang.
"""

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "nnfast" / "src"


@pytest.fixture(scope="module")
def setup_py():
    spec = importlib.util.spec_from_file_location("nnfast_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_pyx_is_a_compiled_module(setup_py):
    pyx = sorted(path.stem for path in (ROOT / "nnfast").glob("*.pyx"))
    assert pyx == setup_py.MODULES
    assert [ext.name for ext in setup_py.extensions] == [f"nnfast.{name}" for name in pyx]


def test_no_compiler_may_contract_or_assume_fast_math(setup_py):
    gcc, clang, msvc = (
        setup_py.compiler_flags(family, debug=False, sanitize=False)
        for family in ("gcc", "clang", "msvc")
    )
    assert gcc == [
        "-O3",
        "-ffp-contract=off",
        "-fno-math-errno",
        "-fno-tree-loop-distribute-patterns",
    ]
    assert clang == [
        "-O3",
        "-ffp-contract=off",
        "-fno-math-errno",
        "-mllvm",
        "-disable-loop-idiom-all",
    ]
    assert msvc == ["/O2", "/fp:precise", "/std:c11"]
    for flags in (gcc, clang, msvc):
        assert not any("fast" in flag or "march" in flag or "arch:" in flag for flag in flags)


def test_debug_and_sanitized_builds_keep_the_arithmetic_flags(setup_py):
    for family in ("gcc", "clang"):
        release = setup_py.compiler_flags(family, debug=False, sanitize=False)
        debug = setup_py.compiler_flags(family, debug=True, sanitize=False)
        sanitized = setup_py.compiler_flags(family, debug=False, sanitize=True)
        assert debug == ["-O0", "-g", *release[1:]]
        assert sanitized == ["-O1", "-g", *setup_py.SANITIZERS, *release[1:]]
    assert setup_py.compiler_flags("msvc", debug=True, sanitize=False) == [
        "/Od",
        "/Zi",
        "/fp:precise",
        "/std:c11",
    ]
    with pytest.raises(SystemExit, match="NNFAST_SANITIZE=1 needs gcc or clang"):
        setup_py.compiler_flags("msvc", debug=False, sanitize=True)


def test_the_compiler_family_is_what_the_compiler_says_it_is(setup_py):
    assert setup_py.compiler_family(SimpleNamespace(compiler_type="msvc")) == "msvc"
    missing = SimpleNamespace(compiler_type="unix", compiler_so=["no-such-cc-nnfast", "-O2"])
    assert setup_py.compiler_family(missing) == "other"
    found = 0
    for command, family in (("gcc", "gcc"), ("clang-14", "clang"), ("clang", "clang")):
        if shutil.which(command):
            compiler = SimpleNamespace(compiler_type="unix", compiler_so=[command, "-fPIC"])
            assert setup_py.compiler_family(compiler) == family, command
            found += 1
    if not found:
        pytest.skip("neither gcc nor clang is installed")


FILL_ROWS = textwrap.dedent("""
    #include "elementwise.h"
    void fill_d(double *Z, const double *b, ptrdiff_t rows, ptrdiff_t cols)
    { nnf_fill_rows_d(Z, b, rows, cols); }
    void fill_f(float *Z, const float *b, ptrdiff_t rows, ptrdiff_t cols)
    { nnf_fill_rows_f(Z, b, rows, cols); }
""")


def _fill_library_calls(command, flags, tmp_path):
    """The memcpy/memset/memmove calls made by the row fills (each code path's fill_rows, or
    the wrappers above if the compiler inlined them), found in the object's relocations."""
    source, obj = tmp_path / "fill.c", tmp_path / "fill.o"
    source.write_text(FILL_ROWS)
    subprocess.run(
        [command, "-fPIC", "-c", f"-I{SRC}", *flags, str(source), "-o", str(obj)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    listing = subprocess.run(
        ["objdump", "-dr", "--no-show-raw-insn", str(obj)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    calls, function = set(), ""
    for line in listing.splitlines():
        label = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if label:
            function = label.group(1)
        elif "fill_rows" in function or function in ("fill_d", "fill_f"):
            calls.update(re.findall(r"R_\w+\s+(memcpy|memset|memmove)\b", line))
    return calls


@pytest.mark.parametrize("command, family", [("gcc", "gcc"), ("clang-14", "clang")])
def test_bias_rows_are_filled_by_loops_not_library_calls(setup_py, command, family, tmp_path):
    """dense_forward fills every row of its output with the bias: n calls to memcpy for
    rows of ~20 values cost more than the loop (4% of a seed-network epoch with gcc)."""
    if shutil.which(command) is None or shutil.which("objdump") is None:
        pytest.skip(f"{command} or objdump is not installed")
    flags = setup_py.compiler_flags(family, debug=False, sanitize=False)
    plain = [flag for flag in flags if flag not in setup_py.IDIOM_FLAGS[family]]
    # The check can fail: without the flag, both compilers call memcpy for each row.
    if not _fill_library_calls(command, plain, tmp_path):
        pytest.skip(f"{command} keeps the loop even without {setup_py.IDIOM_FLAGS[family]}")
    assert _fill_library_calls(command, flags, tmp_path) == set()


def test_mypy_finds_the_installed_package(tmp_path):
    """After the README's `pip install -e .` (or any install), mypy run from another
    directory sees nnfast's types: setuptools' default editable import hook is invisible to
    it, so setup.py makes editable installs strict (links mypy follows)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy, or the lint extra)")
    try:
        importlib.metadata.distribution("nnfast")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            "nnfast is not installed in this environment: the test checks what an "
            "install gives mypy"
        )
    # An empty configuration of its own: mypy would otherwise take the first mypy.ini or
    # pyproject.toml it finds in the parent directories.
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    program = "import nnfast\nreveal_type(nnfast.MLP)\n"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MYPYPATH")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-c",
            program,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Cannot find implementation or library stub" not in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Revealed type is "def' in result.stdout and "nnfast.network.MLP" in result.stdout, (
        result.stdout
    )
