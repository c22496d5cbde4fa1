"""Scan the accuracy of nnfast's fast math (nnfast/src/fastmath.h), per function and path.

For tanh, sigmoid, exp and elu (alpha = 1), float32 and float64, on every SIMD code path
this CPU runs (chosen with nnfast.kernels.set_simd_path), prints the largest error in ulps
of the correctly rounded result and where it occurs, and the mean error:

  - float32 results against float64 NumPy (2^29 times finer than a float32 ulp), over all
    inputs below;
  - float64 results against mpmath at 113 bits on a sample of the finite ones (--samples,
    default 20000), and, where np.longdouble is the 80-bit x87 format, against long double on all.

Inputs: a dense sweep of [-30, 30], log-uniform magnitudes from the smallest subnormal to
the largest finite value (both signs), and each function's whole range (exp and sigmoid from
underflow to overflow). tests/test_fastmath.py asserts the bound (4 ulp) on a larger set;
this tool is for reading the numbers, e.g. after changing a polynomial
(tools/gen_fastmath_coeffs.py).

Usage: python tools/fastmath_accuracy.py [--samples N] [--paths avx512,avx2,baseline]
Run from a checkout with the compiled modules built in place (python setup.py build_ext
--inplace); needs mpmath for the float64 columns.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's nnfast

from nnfast import _kernel_entry, _kernels, kernels  # noqa: E402

FUNCTIONS = ("tanh", "sigmoid", "exp", "elu")


def inputs(dtype, function, seed=0):
    """The scanned inputs of `dtype` for `function` (finite, plus +-inf)."""
    fi = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    parts = [np.linspace(-30, 30, 120_001)]
    e = rng.uniform(np.log2(float(fi.smallest_subnormal)), fi.maxexp - 1e-6, 80_000)
    parts.append(np.exp2(e) * rng.choice([-1.0, 1.0], e.size))
    if function in ("exp", "sigmoid"):
        low, high = (-760, 720) if dtype == np.float64 else (-110, 95)
        parts.append(np.linspace(low, high, 40_001))
    else:
        parts.append(np.linspace(-50, 50, 20_001))
    parts.append(np.array([np.inf, -np.inf, 0.0, -0.0]))
    with np.errstate(over="ignore"):
        return np.concatenate(parts).astype(dtype)


def numpy_reference(function, x, wide):
    """function(x) in the wider type `wide` (float64 or np.longdouble)."""
    xw = x.astype(wide)
    with np.errstate(all="ignore"):
        if function == "tanh":
            return np.tanh(xw)
        if function == "sigmoid":
            return 1 / (1 + np.exp(-xw))
        if function == "exp":
            return np.exp(xw)
        return np.where(xw >= 0, xw, np.expm1(xw))


def mpmath_reference(function, x):
    """function(x) at 113 bits (mpmath numbers), for finite x."""
    import mpmath

    exact = []
    with mpmath.workprec(113):
        for value in x.tolist():
            c = mpmath.mpf(min(max(value, -800.0), 800.0))  # same result in float64
            if function == "tanh":
                r = mpmath.tanh(c)
            elif function == "sigmoid":
                r = 1 / (1 + mpmath.exp(-c))
            elif function == "exp":
                r = mpmath.exp(c)
            else:
                r = mpmath.mpf(value) if value >= 0 else mpmath.expm1(c)
            exact.append(r)
    return exact


def ulp_errors_numpy(got, ref):
    """|got - ref| in ulps of ref rounded to got's dtype (as tests/test_fastmath.py)."""
    dt = got.dtype.type
    fi = np.finfo(dt)
    big = ref.dtype.type(2) ** fi.maxexp
    with np.errstate(all="ignore"):
        rounded = ref.astype(dt)
        r_abs = np.abs(rounded)
        ulp = np.spacing(np.nextafter(r_abs, dt(0)))
        ulp = np.where(r_abs == 0, fi.smallest_subnormal, ulp)
        ulp = np.where(np.isinf(rounded), np.spacing(fi.max), ulp)
        g = np.clip(got.astype(ref.dtype), -big, big)
        r = np.clip(ref, -big, big)
        return (np.abs(g - r) / ulp.astype(ref.dtype)).astype(np.float64)


def ulp_errors_mpmath(got, exact):
    import mpmath

    fi = np.finfo(np.float64)
    big = mpmath.mpf(2) ** fi.maxexp
    errors = np.empty(got.size)
    with mpmath.workprec(113):
        for i, (g, r) in enumerate(zip(got.tolist(), exact)):
            rounded = abs(float(r))
            ulp = math.ulp(fi.max if math.isinf(rounded) else math.nextafter(rounded, 0.0))
            if rounded == 0:
                ulp = float(fi.smallest_subnormal)
            gc = min(max(mpmath.mpf(g), -big), big)
            errors[i] = float(abs(gc - min(max(r, -big), big)) / ulp)
    return errors


def run(function, x, path):
    kernels.set_simd_path(path)
    out = np.empty_like(x)
    _kernel_entry.fastmath_into(function, out, x, 1.0)
    return out


def describe(errors, x):
    i = int(np.argmax(errors))
    return f"{errors[i]:6.2f} ulp at x = {float(x[i]):<+24.17g} mean {errors.mean():.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples",
        type=int,
        default=20_000,
        help="float64 inputs checked against mpmath (default 20000)",
    )
    parser.add_argument(
        "--paths",
        default="avx512,avx2,baseline",
        help="code paths to scan, widest first (default all)",
    )
    args = parser.parse_args(argv)
    previous = kernels.set_simd_path("best")
    paths = []
    for name in args.paths.split(","):
        kernels.set_simd_path(name)
        if kernels.simd_paths()["fast_math"] == name:
            paths.append(name)
        else:
            print(f"(this CPU lacks the {name} path: skipped)")
    try:
        import mpmath  # noqa: F401
    except ImportError:
        mpmath = None
        print("(mpmath is not installed: no float64 reference at 113 bits; pip install mpmath)")
    wide_long_double = np.finfo(np.longdouble).nmant >= 63
    cpu = _kernels.cpu_info()
    print(
        f"CPU: {cpu['brand']} (family {cpu['family']}, model {cpu['model']}); "
        f"paths: {', '.join(paths)}"
    )
    try:
        for function in FUNCTIONS:
            x32 = inputs(np.float32, function)
            ref32 = numpy_reference(function, x32, np.float64)
            x64 = inputs(np.float64, function)
            finite = x64[np.isfinite(x64)]
            sample = finite[
                np.random.default_rng(1).choice(
                    finite.size, min(args.samples, finite.size), replace=False
                )
            ]
            exact = mpmath_reference(function, sample) if mpmath is not None else None
            ref64 = numpy_reference(function, x64, np.longdouble) if wide_long_double else None
            for path in paths:
                print(
                    f"{function:<8}{path:<9}float32 vs float64     "
                    + describe(ulp_errors_numpy(run(function, x32, path), ref32), x32)
                )
                if exact is not None:
                    got = run(function, sample, path)
                    print(
                        f"{'':17}float64 vs mpmath      "
                        + describe(ulp_errors_mpmath(got, exact), sample)
                    )
                if ref64 is not None:
                    print(
                        f"{'':17}float64 vs long double "
                        + describe(ulp_errors_numpy(run(function, x64, path), ref64), x64)
                    )
    finally:
        kernels.set_simd_path(previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
