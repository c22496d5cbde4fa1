"""Build the compiled modules of nnfast.

The Cython compiler directives are set once here. ``NNFAST_DEBUG_CYTHON=1`` in the
environment turns bounds, wrap-around and initialisation checks back on (and keeps
assertions), for running the test suite against a checked build. ``NNFAST_SANITIZE=1``
builds with AddressSanitizer and UndefinedBehaviorSanitizer (alignment included, halting
at the first report) for .ci/sanitize; the modules then need gcc's libasan preloaded
(``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``), as the Python binary is not built
with it.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("NNFAST_DEBUG_CYTHON", "") not in ("", "0")
SANITIZE = os.environ.get("NNFAST_SANITIZE", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "cpow": True,
    "embedsignature": True,
}

# -O3 lets gcc vectorise the hand-written loops; no -march flag, so the default build runs
# on any x86-64. NaN and infinity semantics are kept (no -ffast-math).
# -ffp-contract=off: a vectorised loop and its scalar tail must round alike, so no result
# depends on an element's position (the SIMD kernels in nnfast/src choose FMA explicitly).
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
link_args = []
if SANITIZE:
    # Every out-of-bounds access, use after free, misaligned load or other undefined
    # behaviour stops the process with a report (-O1 -g: readable stacks, a few times
    # faster than -O0).
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                  "-fsanitize=alignment", "-fno-omit-frame-pointer"]
    compile_args = ["-O1", "-g"] + sanitizers
    link_args = sanitizers
compile_args.append("-ffp-contract=off")
# sqrt and friends need not set errno (nnfast never reads it): their loops can vectorise.
compile_args.append("-fno-math-errno")
# Short copy loops (a bias row of 20 values, repeated for every sample) stay loops: gcc
# would otherwise turn each row into a call to memcpy.
compile_args.append("-fno-tree-loop-distribute-patterns")
macros = [] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", None)]

MODULES = ["_blas", "_kernels", "_losses", "_kernel_entry", "_network", "_train",
           "_linesearch", "_lbfgs"]

extensions = [
    Extension(
        f"nnfast.{name}",
        [f"nnfast/{name}.pyx"],
        include_dirs=["nnfast/src", numpy.get_include()],  # numpy: its bitgen.h
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=macros,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        # A debug build must not reuse C files generated without checks, and vice versa.
        force=True,
    ),
)
