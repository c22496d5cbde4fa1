"""Build the compiled modules of nnfast.

Every ``nnfast/*.pyx`` is one compiled module. The Cython compiler directives are set once
here, and the C compiler flags are chosen for the compiler setuptools runs (gcc, clang or
MSVC; see ``compiler_flags``). ``NNFAST_DEBUG_CYTHON=1`` in the environment turns bounds,
wrap-around and initialisation checks back on (and keeps assertions), for running the
test suite against a checked build. ``NNFAST_SANITIZE=1`` builds with AddressSanitizer and
UndefinedBehaviorSanitizer (alignment included, halting at the first report) for
.ci/sanitize; the modules then need gcc's libasan preloaded
(``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``), as the Python binary is not built
with it.

A build reuses what an earlier one made with the same settings: each generated C file and
compiled module is recorded in ``build/nnfast-build-settings.json`` with a digest of the
settings it was made with, and is made again only when its sources are newer or the
settings differ (another compiler, other flags, a debug build, another Cython or NumPy).
So the README's second ``pip install -e`` takes the modules the first one compiled.
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import Cython
import numpy
from Cython.Build import cythonize
from Cython.Build.Dependencies import create_dependency_tree
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

HERE = Path(__file__).resolve().parent
SETTINGS_RECORD = HERE / "build" / "nnfast-build-settings.json"

DEBUG = os.environ.get("NNFAST_DEBUG_CYTHON", "") not in ("", "0")
SANITIZE = os.environ.get("NNFAST_SANITIZE", "") not in ("", "0")
# NNFAST_OPENMP=0 builds without OpenMP: every pass then runs on one thread.
OPENMP = os.environ.get("NNFAST_OPENMP", "1") not in ("", "0")
# Every out-of-bounds access, use after free, misaligned load or other undefined behaviour
# stops the process with a report; compile and link flags alike (gcc and clang).
SANITIZERS = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fsanitize=alignment",
    "-fno-omit-frame-pointer",
]

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "cpow": True,
    "embedsignature": True,
}
MACROS = [] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", None)]

# The one list of compiled modules: every .pyx of the package.
MODULES = sorted(path.stem for path in (HERE / "nnfast").glob("*.pyx"))
if not MODULES:
    raise SystemExit(f"no nnfast/*.pyx next to {__file__}: is this a complete source tree?")


# What keeps each compiler from turning short copy and fill loops into memcpy/memset calls
# (see compiler_flags). clang has no spelling of gcc's flag: its loop-idiom pass is switched
# off through an LLVM option.
IDIOM_FLAGS = {
    "gcc": ["-fno-tree-loop-distribute-patterns"],
    "clang": ["-mllvm", "-disable-loop-idiom-all"],
}


def compiler_flags(family, debug=DEBUG, sanitize=SANITIZE):
    """The compile arguments for a compiler family: 'gcc', 'clang', 'msvc' or 'other'.

    Every family keeps IEEE semantics (no fast-math) and never contracts a * b + c into an
    FMA on its own: a vectorised loop and its scalar tail must round alike, so that no
    result depends on an element's position (the SIMD kernels in nnfast/src choose FMA
    explicitly). No -march / /arch flag: the default build runs on any CPU of its
    architecture, and the kernels pick wider instructions at run time.
    """
    if sanitize and family not in ("gcc", "clang"):
        raise SystemExit(
            f"NNFAST_SANITIZE=1 needs gcc or clang, not {family} "
            "(MSVC has no UndefinedBehaviorSanitizer)"
        )
    if family == "msvc":
        # /fp:precise: no reassociation, and since Visual Studio 2022 (17.0) no contraction
        # either (#pragma fp_contract is off by default under /fp:precise; older versions
        # could contract, but only when /arch:AVX2 allows FMA, which is never passed here).
        # /std:c11 (Visual Studio 2019 16.8+): the headers use C99's `restrict` and _Pragma.
        flags = ["/Od", "/Zi"] if debug else ["/O2"]
        return flags + ["/fp:precise", "/std:c11"]
    if family not in ("gcc", "clang"):
        warnings.warn(
            f"unknown C compiler ({family}): building with its default flags, "
            "which may contract floating-point expressions",
            stacklevel=1,
        )
        return []
    # -O3 lets the compiler vectorise the hand-written loops. Sanitized: -O1 -g, readable
    # stacks, a few times faster than -O0.
    if sanitize:
        flags = ["-O1", "-g", *SANITIZERS]
    else:
        flags = ["-O0", "-g"] if debug else ["-O3"]
    # clang contracts within an expression by default (-ffp-contract=on); gcc contracts
    # across expressions in its GNU modes (=fast). Both are switched off.
    flags.append("-ffp-contract=off")
    # sqrt and friends need not set errno (nnfast never reads it): their loops can vectorise.
    flags.append("-fno-math-errno")
    # Short copy loops (a bias row of 20 values, repeated for every sample) stay loops:
    # both compilers would otherwise turn each row into a call to memcpy (gcc's loop
    # distribution, clang's loop-idiom pass: 4% of a seed-network epoch with gcc). Only
    # those loops: -fno-builtin-memcpy would also turn the bit casts of fastmath.h
    # (memcpy of 8 bytes, compiled to a register move) into library calls.
    return flags + IDIOM_FLAGS[family]


def compiler_family(compiler):
    """'msvc', 'clang', 'gcc' or 'other': what the C compiler of a build really is.

    A unix compiler is asked which macros it predefines, as its name can mislead (macOS's
    gcc is clang; CC may be a launcher such as "ccache gcc").
    """
    if compiler.compiler_type == "msvc":
        return "msvc"
    command = compiler_command(compiler)
    try:
        macros = subprocess.run(
            [*command, "-dM", "-E", "-x", "c", os.devnull],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "other"
    if "__clang__" in macros:
        return "clang"
    if "__GNUC__" in macros:
        return "gcc"
    return "other"


def compiler_command(compiler):
    """The words of a unix compiler's command line before its first option."""
    command = []
    for word in getattr(compiler, "compiler_so", None) or []:
        if word.startswith("-"):
            break
        command.append(word)
    return command


def accepts_flags(compiler, flags):
    """Whether the compiler compiles an empty file with these flags."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch, "empty.c")
        source.write_text("int nnfast_empty;\n")
        try:
            compiler.compile([str(source)], output_dir=scratch, extra_postargs=flags)
        except CompileError:
            return False
    return True


# How each compiler family spells OpenMP: (compile flags, link flags).
OPENMP_FLAGS = {
    "gcc": (["-fopenmp"], ["-fopenmp"]),
    "clang": (["-fopenmp"], ["-fopenmp"]),
    "msvc": (["/openmp"], []),
}
OPENMP_PROBE = """#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel
#pragma omp atomic
    n++;
    return n < 1 || omp_get_max_threads() < 1; }
"""


# Apple's clang has no -fopenmp of its own; with Homebrew's libomp installed (brew install
# libomp, its include and lib directories in CFLAGS / LDFLAGS) it builds OpenMP this way.
APPLE_CLANG_OPENMP = (["-Xpreprocessor", "-fopenmp"], ["-lomp"])


def builds_openmp(compiler, compile_flags, link_flags):
    """Whether the compiler builds and links a small OpenMP program with these flags."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch, "probe.c")
        source.write_text(OPENMP_PROBE)
        try:
            objects = compiler.compile(
                [str(source)], output_dir=scratch, extra_postargs=compile_flags
            )
            compiler.link_executable(
                objects, "probe", output_dir=scratch, extra_postargs=link_flags
            )
        except (CompileError, LinkError):
            return False
    return True


def openmp_flags(compiler, family):
    """(compile, link) flags for OpenMP, or ([], []) when the compiler cannot build and
    link a program with it (Apple's clang without libomp, clang without libomp-dev): nnfast
    then builds without threads, and says so."""
    if not OPENMP or family not in OPENMP_FLAGS:
        return [], []
    candidates = [OPENMP_FLAGS[family]]
    if family == "clang" and sys.platform == "darwin":
        candidates.append(APPLE_CLANG_OPENMP)
    for compile_flags, link_flags in candidates:
        if builds_openmp(compiler, compile_flags, link_flags):
            return compile_flags, link_flags
    warnings.warn(
        f"nnfast: this {family} compiler cannot build OpenMP programs with "
        f"{candidates[0][0]}: building without threads (every pass on one thread)",
        stacklevel=1,
    )
    return [], []


def digest(settings):
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def newest_mtime(paths):
    return max((os.path.getmtime(path) for path in paths), default=0.0)


class BuildExt(build_ext):
    """build_ext with per-compiler flags, Cython run here, and reuse of up-to-date outputs."""

    def run(self):
        # setuptools builds into build_lib with inplace switched off, then copies the modules
        # next to their sources when inplace was on (--inplace, or an editable install).
        self.copies_to_source = self.inplace
        super().run()

    def build_extensions(self):
        family = compiler_family(self.compiler)
        flags = compiler_flags(family)
        if family == "clang" and not accepts_flags(self.compiler, flags):
            # -mllvm options belong to LLVM's internals: a future clang may drop this one.
            flags = [flag for flag in flags if flag not in IDIOM_FLAGS["clang"]]
            warnings.warn(
                "this clang does not know -disable-loop-idiom-all: short copy "
                "loops may become memcpy calls",
                stacklevel=1,
            )
        omp_compile, omp_link = openmp_flags(self.compiler, family)
        flags = flags + omp_compile
        link_flags = (SANITIZERS if SANITIZE else []) + omp_link
        for ext in self.extensions:
            ext.extra_compile_args = flags
            ext.extra_link_args = link_flags
            ext.define_macros = list(MACROS)
        self.record = self._read_record()
        cython_settings = {"cython": Cython.__version__, "directives": DIRECTIVES}
        self.compile_digest = digest(
            {
                "cython_settings": cython_settings,
                "compiler": compiler_command(self.compiler) or self.compiler.compiler_type,
                "compiler_so": getattr(self.compiler, "compiler_so", None),
                "linker_so": getattr(self.compiler, "linker_so", None),
                "family": family,
                "flags": flags,
                "link_flags": link_flags,
                "macros": MACROS,
                "numpy": numpy.__version__,
            }
        )
        cython_digest = digest(cython_settings)
        self.extensions = [self._cythonize(ext, cython_digest) for ext in self.extensions]
        print(f"nnfast: {family} compiler {compiler_command(self.compiler)}, flags {flags}")
        try:
            super().build_extensions()
        finally:
            self._write_record()

    def _cythonize(self, ext, cython_digest):
        """Point ext at its C file, generating it again only when it is out of date."""
        pyx = ext.sources[0]
        c_file = str(Path(pyx).with_suffix(".c"))
        made = self.record.get(self._key(c_file), {})
        # The project's files it is generated from (the .pyx and the .pxd it cimports).
        # Cython's own .pxd files are left to the digest (Cython's version): cythonize would
        # compare their times too, and pip installs Cython anew for every isolated build.
        inputs = self._in_project(create_dependency_tree().all_dependencies(pyx))
        if (
            not self.force
            and made.get("settings") == cython_digest
            and os.path.exists(c_file)
            and os.path.getmtime(c_file) >= newest_mtime(inputs)
        ):
            ext.sources, ext.depends = [c_file], made.get("depends", [])
            return ext
        # Generated again when its sources are newer, and also when it was generated with
        # other directives (a debug build) or by another Cython, even if newer than them.
        (generated,) = cythonize([ext], compiler_directives=DIRECTIVES, force=True, quiet=True)
        # The same Extension (setuptools has set its private attributes), now built from C;
        # depends: the C headers it includes, whose changes call for compiling it again.
        ext.sources, ext.depends = generated.sources, self._in_project(generated.depends)
        self.record[self._key(c_file)] = {"settings": cython_digest, "depends": ext.depends}
        return ext

    def build_extension(self, ext):
        target = self.get_ext_fullpath(ext.name)
        inplace_target = self._inplace_target(ext)
        inputs = list(ext.sources) + list(ext.depends)
        made = self.record.get(self._key(inplace_target), {})
        if (
            self.copies_to_source
            and not self.force
            and made.get("settings") == self.compile_digest
            and os.path.exists(inplace_target)
            and os.path.getmtime(inplace_target) >= newest_mtime(inputs)
        ):
            # An editable install builds into a temporary directory and copies the modules
            # next to the sources: when the module there was compiled from these sources with
            # these settings, it is the result, and compiling it again would take a minute.
            print(f"nnfast: {ext.name} is up to date in {os.path.dirname(inplace_target)}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(inplace_target, target)
            return
        # A module compiled with other settings is compiled again, even if newer than its
        # sources: setuptools compares only the times, so it is removed first (not by
        # setting self.force: --parallel builds several extensions at once).
        if self.record.get(self._key(target), {}).get("settings") != self.compile_digest:
            with contextlib.suppress(FileNotFoundError):
                os.remove(target)
        super().build_extension(ext)
        self.record[self._key(target)] = {"settings": self.compile_digest}
        if self.copies_to_source:
            # run() copies every module next to its sources after build_extensions().
            self.record[self._key(inplace_target)] = {"settings": self.compile_digest}

    def _inplace_target(self, ext):
        inplace_file, _ = self._get_inplace_equivalent(self.get_finalized_command("build_py"), ext)
        return inplace_file

    @classmethod
    def _in_project(cls, paths):
        """The paths of files inside the project, sorted."""
        return sorted({path for path in paths if cls._key(path) is not None})

    @staticmethod
    def _key(path):
        """A file's key in the record: its path in the project (None outside it)."""
        try:
            return Path(path).resolve().relative_to(HERE).as_posix()
        except ValueError:
            return None

    def _read_record(self):
        try:
            record = json.loads(SETTINGS_RECORD.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict):
            return {}
        return {key: made for key, made in record.items() if isinstance(made, dict)}

    def _write_record(self):
        self.record.pop(None, None)  # files outside the project (a temporary build dir)
        SETTINGS_RECORD.parent.mkdir(parents=True, exist_ok=True)
        partial = SETTINGS_RECORD.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.record, indent=1, sort_keys=True))
        os.replace(partial, SETTINGS_RECORD)


extensions = [
    Extension(
        f"nnfast.{name}",
        [f"nnfast/{name}.pyx"],
        include_dirs=["nnfast/src", numpy.get_include()],  # numpy: its bitgen.h
    )
    for name in MODULES
]

# An editable install (the README's pip install -e) links the package's files into
# build/__editable__.*, which mypy and other static tools can follow; setuptools' default
# import hook is invisible to them. A module added later needs pip install -e again.
# (pip install -e . --config-settings editable_mode=compat chooses otherwise.)
EDITABLE_MODE = "strict"

if __name__ == "__main__":  # as pip, build and `python setup.py` run it; tests import it
    setup(
        ext_modules=extensions,
        cmdclass={"build_ext": BuildExt},
        options={"editable_wheel": {"mode": EDITABLE_MODE}},
    )
