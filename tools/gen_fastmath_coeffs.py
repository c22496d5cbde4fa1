"""Regenerate the expm1 polynomials of nnfast/src/fastmath.h and compare them with the header.

fastmath.h computes exp, expm1, tanh, sigmoid and elu from one core: x = k ln2 + r with
|r| <= ln2/2 (0.3466), and expm1(r) ~= P(r) = r + r^2 Q(r), where Q approximates
(expm1(r) - r) / r^2 -- degree 10 in float64 (c0 .. c10), degree 5 in float32 (c0 .. c5).
This script computes Q as the minimax polynomial of the relative error of P on
|r| <= 0.347 (Remez exchange in mpmath at 50 digits), rounds the coefficients to the
dtype, and prints:

  - the generated and the committed coefficients, their distance in ulps of the dtype;
  - the largest relative error of P on the interval for both sets (exact arithmetic on the
    rounded coefficients: the polynomial's own error, not the rounding of its evaluation);
  - the generated set as C, ready to paste into nnf__expm1_poly_d / nnf__expm1_poly_f.

How the committed constants were made: they predate this script (fastmath.h cited a
"gen_coeffs.py" that was never committed). They have the same form, degree and interval,
but are not bit for bit this script's output: their error after rounding is slightly
smaller than that of the rounded minimax (float64 9.8e-19 against 1.0e-18, float32 2.0e-9
against 2.3e-9), as a search over the rounded coefficients (in the manner of Sollya's
fpminimax) would give; how they were rounded is not recorded. This script reproduces c0
exactly and c1, c2 to a few ulps; the high-order coefficients, which move P by less than
its rounding, differ more (the printed diff). Both sets are far below the dtype's rounding
(float64 0.004 ulp, float32 0.02 ulp), so the header keeps its tested constants. Run
`python tools/fastmath_accuracy.py` after changing any.

Usage: python tools/gen_fastmath_coeffs.py   (needs mpmath; takes about a minute)
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

try:
    import mpmath as mp
except ImportError:  # pragma: no cover - a tool, run by hand
    sys.exit("gen_fastmath_coeffs.py needs mpmath: pip install mpmath")

HEADER = Path(__file__).resolve().parents[1] / "nnfast" / "src" / "fastmath.h"
HALF_WIDTH = mp.mpf("0.347")  # |r| <= ln2/2 = 0.34657..., with a margin for the reduction
CASES = (("float64", "nnf__expm1_poly_d", 10, 53), ("float32", "nnf__expm1_poly_f", 5, 24))
mp.mp.dps = 50


def target(r):
    """(expm1(r) - r) / r^2, with its Taylor series where the division would cancel."""
    if abs(r) < mp.mpf("1e-15"):
        return mp.mpf(1) / 2 + r / 6 + r * r / 24
    return (mp.expm1(r) - r) / (r * r)


def relative_error(c, r):
    """(P(r) - expm1(r)) / expm1(r) for P = r + r^2 Q, Q with coefficients c (c0 first)."""
    if r == 0:
        return mp.mpf(0)
    e = mp.expm1(r)
    return (r + r * r * mp.polyval(c[::-1], r) - e) / e


def remez(degree, a, iterations=40):
    """Coefficients (c0 first) of the Q of `degree` minimising max |relative_error| on
    [-a, a], and that error."""
    n = degree + 2  # coefficients and the levelled error E
    # Start from Chebyshev points, none at 0, where the weight vanishes.
    points = [
        a * mp.cos(mp.pi * (n - 1 - j + mp.mpf("0.25")) / (n - mp.mpf("0.5"))) for j in range(n)
    ]
    # |relative error of P| = |r^2 / expm1(r)| |Q - target|: a weight >= 0 (written with
    # the sign r^2 / expm1(r) has, the error would change sign at 0 without an extremum
    # there, and the alternation would be counted wrong).
    weight = lambda r: abs(r * r / mp.expm1(r)) if r != 0 else mp.mpf(0)  # noqa: E731
    coefficients = None
    for _ in range(iterations):
        # w(x_j) (Q(x_j) - target(x_j)) = (-1)^j E at the reference points
        A, b = mp.matrix(n, n), mp.matrix(n, 1)
        for j, x in enumerate(points):
            w = weight(x)
            for i in range(degree + 1):
                A[j, i] = w * x**i
            A[j, n - 1] = (-1) ** j
            b[j] = w * target(x)
        solution = mp.lu_solve(A, b)
        coefficients = [solution[i] for i in range(degree + 1)]
        error = lambda r: weight(r) * (mp.polyval(coefficients[::-1], r) - target(r))  # noqa: E731
        # New reference: the alternating extrema of the error (grid, then refined).
        grid_size = 2000
        grid = [a * mp.cos(mp.pi * (grid_size - k) / grid_size) for k in range(grid_size + 1)]
        values = [error(x) for x in grid]
        extrema = []
        for k, (x, v) in enumerate(zip(grid, values)):
            inner = 0 < k < grid_size
            if inner and not (abs(v) >= abs(values[k - 1]) and abs(v) >= abs(values[k + 1])):
                continue
            if inner:
                try:
                    y = mp.findroot(lambda t: mp.diff(error, t), x, tol=mp.mpf(10) ** -40)
                    if grid[k - 1] <= y <= grid[k + 1]:
                        x, v = y, error(y)
                except (ValueError, ZeroDivisionError):
                    pass
            if extrema and mp.sign(extrema[-1][1]) == mp.sign(v):
                if abs(v) > abs(extrema[-1][1]):
                    extrema[-1] = (x, v)
            else:
                extrema.append((x, v))
        while len(extrema) > n:  # drop the smaller end
            extrema.pop(0 if abs(extrema[0][1]) < abs(extrema[-1][1]) else -1)
        if len(extrema) < n:
            raise RuntimeError(f"Remez: {len(extrema)} alternations, need {n}")
        moved = max(abs(x - p) for (x, _), p in zip(extrema, points))
        points = [x for x, _ in extrema]
        if moved < mp.mpf(10) ** -30:
            break
    return coefficients


def round_to(x, bits):
    """x rounded to nearest with a `bits`-bit significand, as a Python float."""
    with mp.workprec(bits):
        return float(+x)


def max_relative_error(c, a, samples=4001):
    return max(
        abs(relative_error(c, a * (2 * mp.mpf(k) / (samples - 1) - 1))) for k in range(samples)
    )


def committed_coefficients(function):
    """The coefficients in `function`'s body of fastmath.h, in order c0, c1, ... The body
    lists them as its even and odd Horner chains need them; c_i ~ 1/(i+2)! falls by more
    than 10x per degree, so sorting them by decreasing magnitude gives c0, c1, ..."""
    text = HEADER.read_text()
    body = re.search(rf"{function}\(.*?\n\}}", text, flags=re.S).group(0)
    found = [float.fromhex(h) for h in re.findall(r"(0x1\.[0-9a-f]+p[-+]\d+)f?", body)]
    return sorted(found, key=abs, reverse=True)


def ulps(x, y, bits):
    """(x - y) in units of the last place of y in a `bits`-bit significand."""
    return (x - y) / (math.ulp(y) * 2.0 ** (53 - bits))


def hex_literal(x, bits):
    text = x.hex()
    if bits == 24:  # float: 6 hex digits and an f suffix
        mantissa, exponent = text.split("p")
        return f"{mantissa[:10].ljust(10, '0')}p{exponent}f"
    return text


def main() -> int:
    for dtype, function, degree, bits in CASES:
        exact = remez(degree, HALF_WIDTH)
        generated = [round_to(c, bits) for c in exact]
        committed = committed_coefficients(function)
        if len(committed) != degree + 1:
            raise SystemExit(
                f"{function}: expected {degree + 1} coefficients in {HEADER}, "
                f"found {len(committed)}"
            )
        print(
            f"{dtype}: Q of degree {degree} for (expm1(r) - r)/r^2 on "
            f"|r| <= {mp.nstr(HALF_WIDTH, 3)}"
        )
        print(f"  {'':4}{'generated':>26}{'committed':>26}{'ulps apart':>18}")
        for i, (g, c) in enumerate(zip(generated, committed)):
            print(
                f"  c{i:<3}{hex_literal(g, bits):>26}{hex_literal(c, bits):>26}"
                f"{ulps(g, c, bits):>18.0f}"
            )
        same = sum(g == c for g, c in zip(generated, committed))
        print(f"  {same} of {degree + 1} coefficients identical")
        for label, c in (
            ("minimax, unrounded", exact),
            ("generated", generated),
            ("committed", committed),
        ):
            err = max_relative_error([mp.mpf(x) for x in c], HALF_WIDTH)
            print(
                f"  max relative error of P, {label:<18}: {mp.nstr(err, 3):>9} "
                f"= {float(err) / 2.0 ** (1 - bits):.4f} ulp"
            )
        print("  as C (Horner chains in s = r^2, highest degree first):")
        for parity in ("even", "odd"):
            chain = generated[parity == "odd" :: 2][::-1]
            print(f"    {parity}: " + ", ".join(hex_literal(x, bits) for x in chain))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
