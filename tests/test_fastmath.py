"""The vectorised math functions of nnfast/src/fastmath.h, through nnfast._kernel_entry.

``fastmath_into(name, out, x, alpha)`` runs tanh, sigmoid, exp or elu over a 1-D array with
the code path chosen by ``nnfast.kernels.set_simd_path`` (baseline SSE2, AVX2+FMA, AVX-512).
Every test that calls them runs once per path; a path this CPU cannot run is skipped (with
the reason "CPU lacks ..."), never silently tested on another path.

- Accuracy: at most MAX_ULP ulps from a higher-precision reference (float64 results against
  np.longdouble, float32 results against float64; see `reference`) over a dense sweep of
  [-30, 30], log-uniform magnitudes from the smallest subnormal to the largest finite value
  (both signs), random bit patterns, each function's whole interesting range and the
  neighbourhoods of its clamps and overflow/underflow thresholds; never NaN for a non-NaN
  input.
- Special values: signed zeros, infinities, NaNs (any payload), saturation, denormal inputs,
  exp overflow and gradual underflow, the limits of sigmoid, elu(-0.0) = -0.0.
- Vector tails (odd lengths), unaligned views, in place (out is x), no write outside `out`.
- nnfast.kernels.activation_forward (tanh, sigmoid, elu, softmax) uses these functions.
"""

import math

import numpy as np
import pytest
from conftest import SIMD_PATHS, simd_path

from nnfast import _kernel_entry
from nnfast.kernels import activation_forward

MAX_ULP = 4.0
DTYPES = (np.float64, np.float32)
DTYPE_IDS = ("f64", "f32")
FUNCS = ("tanh", "sigmoid", "exp", "elu")
# ELU's alpha, SELU's alpha and a small one: a kernel that ignores alpha is caught.
ELU_ALPHAS = (1.0, 1.6732632423543772, 0.1)
LENGTHS = (0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000)

assert tuple(_kernel_entry.FASTMATH_FUNCTIONS) == FUNCS

# The float64 references are computed in np.longdouble, which must be wider than float64 for
# that to mean anything: on x86-64 Linux it is the 80-bit x87 format (64-bit mantissa, 11 bits
# more than float64). Where it is just float64 (MSVC, some ARM ABIs), mpmath (113 bits) is used
# instead on a subsample of the inputs (it is ~1000x slower); without either, the float64
# accuracy checks are skipped rather than made against a reference as inexact as the result.
LONGDOUBLE_IS_WIDE = np.finfo(np.longdouble).nmant >= 63
try:
    import mpmath
except ImportError:  # pragma: no cover - optional
    mpmath = None
MPMATH_STRIDE = 25  # subsample for the mpmath fallback
HAVE_F64_REFERENCE = LONGDOUBLE_IS_WIDE or mpmath is not None


@pytest.fixture(params=SIMD_PATHS)
def path(request):
    """Run the test with the fast math on one code path; the previous setting afterwards."""
    with simd_path(request.param, "fast_math"):
        yield request.param


def call(func, x, alpha=1.0, out=None):
    if out is None:
        out = np.empty_like(x)
    _kernel_entry.fastmath_into(func, out, x, alpha)
    return out


def bits(a):
    """The raw bit patterns of a float array (for exact, NaN- and sign-aware comparisons)."""
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


def same(got, want):
    """Equal elementwise including the sign of zero; NaN matches any NaN."""
    got, want = np.asarray(got), np.asarray(want, dtype=got.dtype)
    nan = np.isnan(want)
    return (np.isnan(got) == nan) & (nan | ((got == want) & (np.signbit(got) == np.signbit(want))))


# ---- references and ulp errors ------------------------------------------------------------


def reference(func, x, alpha=1.0):
    """func(x) in more precision: np.longdouble for float64 x, float64 for float32 x.

    alpha is first rounded to x's dtype, as the library does. The reference's own error
    (libm long double / double functions, a few ulps of the wider type) is 2^-11 of a result
    ulp or less, far below MAX_ULP.
    """
    wide = np.longdouble if x.dtype == np.float64 else np.float64
    xw = x.astype(wide)
    a = wide(x.dtype.type(alpha))
    with np.errstate(all="ignore"):  # exp overflow -> inf on purpose
        if func == "tanh":
            return np.tanh(xw)
        if func == "sigmoid":
            return 1 / (1 + np.exp(-xw))
        if func == "exp":
            return np.exp(xw)
        if func == "elu":
            return np.where(xw >= 0, xw, a * np.expm1(xw))
    raise ValueError(func)


def ulp_error(got, ref):
    """|got - ref| in units in the last place of the correctly rounded result.

    The ulp is the spacing below |ref rounded to got's dtype| (the smaller one at a power of
    two), the smallest subnormal near zero, and the ulp of the largest finite value past the
    overflow threshold; infinities count as +-2^emax so that overflowing a little early or late
    is measured rather than infinite. NaNs give NaN (tested separately).
    """
    dt = got.dtype.type
    fi = np.finfo(dt)
    wide = ref.dtype.type
    big = wide(2) ** fi.maxexp
    with np.errstate(all="ignore"):
        rounded = ref.astype(dt)
        r_abs = np.abs(rounded)
        ulp = np.spacing(np.nextafter(r_abs, dt(0)))
        ulp = np.where(r_abs == 0, fi.smallest_subnormal, ulp)
        ulp = np.where(np.isinf(rounded), np.spacing(fi.max), ulp)
        g = np.clip(got.astype(wide), -big, big)
        r = np.clip(ref, -big, big)
        return (np.abs(g - r) / ulp.astype(wide)).astype(np.float64)


# ---- accuracy inputs ------------------------------------------------------------------------

# Points whose neighbourhood (+-64 ulps, both signs) is tested: 0, multiples of ln2/2 (the
# reduction's rounding boundaries), the tanh clamps (20, 10) and where tanh rounds to 1, the elu
# clamp (40), exp's overflow/underflow thresholds and clamps in float64 (709.78, 745.13, 746,
# 710) and float32 (88.72, 103.97, 104, 89, 87.33), and a few ordinary values.
THRESHOLDS = (
    0.0,
    0.3465735902799727,
    0.6931471805599453,
    1.0397207708399179,
    20.0,
    19.06,
    10.0,
    9.01,
    40.0,
    38.0,
    17.3,
    746.0,
    745.13,
    744.44,
    709.78,
    710.0,
    708.39,
    88.72,
    89.0,
    103.97,
    104.0,
    87.33,
    0.6,
    1e-8,
)

_inputs_cache = {}


def accuracy_inputs(dt, func):
    """~330k non-NaN inputs of dtype dt covering everything func does (fixed seed)."""
    key = (dt, func)
    if key in _inputs_cache:
        return _inputs_cache[key]
    fi = np.finfo(dt)
    utype = np.uint64 if dt == np.float64 else np.uint32
    rng = np.random.default_rng(20240611)
    parts = [np.linspace(-30, 30, 150_001)]  # dense sweep
    # log-uniform magnitudes, smallest subnormal to (just below) the largest finite value
    e = rng.uniform(np.log2(float(fi.smallest_subnormal)), fi.maxexp - 1e-6, 100_000)
    parts.append(np.exp2(e) * rng.choice([-1.0, 1.0], e.size))
    # each function's whole interesting range: exp/sigmoid from underflow to overflow
    if func in ("exp", "sigmoid"):
        lo, hi = (-760, 720) if dt == np.float64 else (-110, 95)
        parts.append(np.linspace(lo, hi, 40_001))
    else:
        parts.append(np.linspace(-50, 50, 20_001))
    x = np.concatenate(parts).astype(dt)
    # random bit patterns (uniform over exponents and mantissas; NaNs dropped as integers, so
    # that no signalling NaN is ever touched by a float operation here)
    raw = rng.integers(0, np.iinfo(utype).max, 40_000, dtype=utype, endpoint=True)
    if dt == np.float32:
        # plus a stride through all 2^32 float32 patterns
        raw = np.concatenate([raw, np.arange(7, 2**32, 86_243, dtype=np.uint64).astype(utype)])
    expo, mant = (
        (0x7FF0000000000000, 0x000FFFFFFFFFFFFF) if dt == np.float64 else (0x7F800000, 0x007FFFFF)
    )
    raw = raw[~(((raw & utype(expo)) == expo) & ((raw & utype(mant)) != 0))]
    x = np.concatenate([x, raw.view(dt)])
    # +-64 ulps around each threshold, both signs
    c = np.array(THRESHOLDS, dtype=dt)
    up, down, ladder = c, c, [c]
    for _ in range(64):
        up, down = np.nextafter(up, dt(np.inf)), np.nextafter(down, dt(-np.inf))
        ladder += [up, down]
    near = np.concatenate(ladder)
    specials = np.array(
        [
            np.inf,
            -np.inf,
            fi.max,
            -fi.max,
            fi.smallest_normal,
            -fi.smallest_normal,
            fi.smallest_subnormal,
            -fi.smallest_subnormal,
            0.0,
            -0.0,
        ],
        dtype=dt,
    )
    x = np.concatenate([x, near, -near, specials])
    assert not np.isnan(x).any() and x.dtype == dt
    _inputs_cache[key] = x
    return x


def mp_ulp_error(func, x, got, alpha=1.0):
    """ulp_error of float64 results against mpmath at 113 bits (slow: small samples only)."""
    fi = np.finfo(np.float64)
    big = mpmath.mpf(2) ** fi.maxexp
    err = np.empty(x.size)
    with mpmath.workprec(113):
        a = mpmath.mpf(float(alpha))
        for i, (xi, gi) in enumerate(zip(x.tolist(), got.tolist())):
            # beyond +-800 every result is the same in float64 (and mpmath is slow there)
            c = mpmath.mpf(min(max(xi, -800.0), 800.0))
            if func == "tanh":
                r = mpmath.tanh(c)
            elif func == "sigmoid":
                r = 1 / (1 + mpmath.exp(-c))
            elif func == "exp":
                r = mpmath.exp(c)
            else:
                r = mpmath.mpf(xi) if xi >= 0 else a * mpmath.expm1(c)
            rounded = abs(float(r))  # correctly rounded (to nearest)
            ulp = math.ulp(fi.max if rounded == math.inf else math.nextafter(rounded, 0.0))
            g = min(max(mpmath.mpf(gi), -big), big)
            err[i] = float(abs(g - min(max(r, -big), big)) / ulp)
    return err


def ulp_errors(func, x, got, alpha=1.0):
    """(x, got, ulp errors of got = func(x)) against the best reference available.

    All of x, except with the mpmath fallback (float64 without a wide long double), which
    takes every MPMATH_STRIDE-th input and, for short arrays, all of them.
    """
    if x.dtype == np.float32 or LONGDOUBLE_IS_WIDE:
        return x, got, ulp_error(got, reference(func, x, alpha))
    if mpmath is None:
        pytest.skip("no float64 reference: np.longdouble is float64 and mpmath is missing")
    if x.size > 10 * MPMATH_STRIDE:
        x, got = x[::MPMATH_STRIDE], got[::MPMATH_STRIDE]
    return x, got, mp_ulp_error(func, x, got, alpha)


def assert_accurate(func, x, got, alpha=1.0, what=""):
    x, got, err = ulp_errors(func, x, got, alpha)
    i = int(np.argmax(err))
    assert err[i] <= MAX_ULP, (
        f"{func} {x.dtype} alpha={alpha} {what}: {err[i]:.2f} ulp at x={x[i]!r}: got {got[i]!r}"
    )
    return err[i]


# ---- accuracy -----------------------------------------------------------------------------


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("func", FUNCS)
def test_accuracy(path, func, dt):
    x = accuracy_inputs(dt, func)
    for alpha in ELU_ALPHAS if func == "elu" else (1.0,):
        got = call(func, x, alpha)
        nan = np.isnan(got)
        assert not nan.any(), f"{func}: NaN from non-NaN inputs {x[nan][:10]}"
        assert_accurate(func, x, got, alpha, f"on {path}")
    if func == "tanh":
        # tanh is computed as sign(x) * tanh(|x|): exactly odd
        assert np.array_equal(bits(call("tanh", -x)), bits(-got))


# ---- special values -----------------------------------------------------------------------


def check_cases(func, dt, cases, alpha=1.0):
    """(input, expected) pairs, exactly (signed zeros, NaN); as one array and one by one."""
    x = np.array([v for v, _ in cases], dtype=dt)
    want = np.array([w for _, w in cases], dtype=dt)
    got = call(func, x, alpha)
    ok = same(got, want)
    assert ok.all(), (
        f"{func}({x[~ok].tolist()}, alpha={alpha}) = {got[~ok].tolist()}, want {want[~ok].tolist()}"
    )
    for i in range(x.size):  # n = 1: the short-array path
        one = call(func, x[i : i + 1], alpha)
        assert same(one, want[i : i + 1]).all(), f"{func}({x[i]!r}) = {one[0]!r}, want {want[i]!r}"


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
def test_special_tanh(path, dt):
    fi = np.finfo(dt)
    cases = [
        (0.0, 0.0),
        (-0.0, -0.0),
        (np.inf, 1.0),
        (-np.inf, -1.0),
        (np.nan, np.nan),
        (-np.nan, np.nan),
        (fi.max, 1.0),
        (-fi.max, -1.0),
        (1e30, 1.0),
        (-1e30, -1.0),
        (20.0, 1.0),
        (-25.0, -1.0),
        (9.5 if dt == np.float32 else 19.5, 1.0),
        (-9.5 if dt == np.float32 else -19.5, -1.0),
    ]
    # denormals and tiny normals: tanh(x) == x exactly
    for v in (
        fi.smallest_subnormal,
        -fi.smallest_subnormal,
        fi.smallest_normal / 3,
        -fi.smallest_normal / 7,
        fi.smallest_normal,
        -fi.smallest_normal,
        1e-30,
        -1e-30,
    ):
        cases.append((v, v))
    check_cases("tanh", dt, cases)


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
def test_special_sigmoid(path, dt):
    fi = np.finfo(dt)
    cases = [
        (np.inf, 1.0),
        (-np.inf, 0.0),
        (np.nan, np.nan),
        (-np.nan, np.nan),
        (0.0, 0.5),
        (-0.0, 0.5),
        (-1000.0, 0.0),
        (1000.0, 1.0),
        (fi.max, 1.0),
        (-fi.max, 0.0),
        (40.0, 1.0),
        (fi.smallest_subnormal, 0.5),
        (-fi.smallest_subnormal, 0.5),
    ]
    check_cases("sigmoid", dt, cases)
    # large negative x: the correct tiny (denormal) value, never 0 too early or NaN
    v = np.array([-740.0 if dt == np.float64 else -100.0], dtype=dt)
    got = call("sigmoid", v)
    assert 0 < got[0] < fi.smallest_normal
    assert_accurate("sigmoid", v, got)
    # sigmoid(x) + sigmoid(-x) == 1 to rounding
    x = np.linspace(-20, 20, 4001).astype(dt)
    s = call("sigmoid", x).astype(np.float64) + call("sigmoid", -x).astype(np.float64)
    assert np.abs(s - 1).max() <= 2 * MAX_ULP * fi.eps


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
def test_special_exp(path, dt):
    fi = np.finfo(dt)
    over = 710.0 if dt == np.float64 else 89.0
    under = -746.0 if dt == np.float64 else -104.0
    cases = [
        (np.nan, np.nan),
        (-np.nan, np.nan),
        (np.inf, np.inf),
        (-np.inf, 0.0),
        (0.0, 1.0),
        (-0.0, 1.0),
        (over, np.inf),
        (1000.0, np.inf),
        (fi.max, np.inf),
        (under, 0.0),
        (-1000.0, 0.0),
        (-fi.max, 0.0),
        (fi.smallest_subnormal, 1.0),
        (-fi.smallest_subnormal, 1.0),
    ]
    check_cases("exp", dt, cases)
    # the largest finite result: just below log(max) no early overflow
    top = np.log(np.longdouble(fi.max) if dt == np.float64 else np.float64(fi.max))
    x = np.array([np.nextafter(dt(top), dt(0))], dtype=dt)
    y = call("exp", x)
    assert np.isfinite(y[0])
    assert_accurate("exp", x, y)
    # gradual underflow: over the whole range of denormal results (and a little below, where
    # exp rounds to 0), correctly rounded to a few ulps, not flushed to zero
    lo, hi = (-745.2, -708.5) if dt == np.float64 else (-103.98, -87.4)
    xs = np.linspace(lo, hi, 2001).astype(dt)
    got = call("exp", xs)
    assert (got < fi.smallest_normal).all() and got[0] == 0 and (got[20:] > 0).all()
    assert_accurate("exp", xs, got, what="(underflow)")


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("alpha", ELU_ALPHAS)
def test_special_elu(path, dt, alpha):
    fi = np.finfo(dt)
    a = float(dt(alpha))
    cases = [
        (np.inf, np.inf),
        (-np.inf, -a),
        (np.nan, np.nan),
        (-np.nan, np.nan),
        (0.0, 0.0),
        (-0.0, -0.0),
        (5.0, 5.0),
        (fi.max, fi.max),
        (-fi.max, -a),
        (-1000.0, -a),
        (fi.smallest_subnormal, fi.smallest_subnormal),
    ]
    check_cases("elu", dt, cases, alpha)


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
def test_nan_payloads(path, dt):
    """Quiet and signalling NaNs of either sign, with payloads, give NaN; neighbours intact."""
    raw = (
        [
            0x7FF0000000000001,
            0xFFF0000000000001,
            0x7FF8000000000123,
            0xFFF8000000000000,
            0x7FF7FFFFFFFFFFFF,
        ]
        if dt == np.float64
        else [0x7F800001, 0xFF800001, 0x7FC00123, 0xFFC00000, 0x7FBFFFFF]
    )
    nans = np.array(raw, dtype=np.uint64 if dt == np.float64 else np.uint32).view(dt)
    x = np.zeros(40, dtype=dt)
    x[3::8] = nans
    assert np.array_equal(bits(x[3::8]), bits(nans))  # copied as they are
    for func in FUNCS:
        got = call(func, x, 1.5)
        assert np.isnan(got[3::8]).all(), func
        others = np.ones(40, dtype=bool)
        others[3::8] = False
        want = call(func, np.zeros(1, dtype=dt), 1.5)[0]
        assert np.array_equal(bits(got[others]), np.full(35, bits(np.array([want]))[0])), func


# ---- lengths (vector tails), unaligned views, in place --------------------------------------


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("func", FUNCS)
def test_lengths_alignment_inplace(path, func, dt):
    rng = np.random.default_rng(7)
    pool = rng.standard_normal(max(LENGTHS) + 200) * 8
    pool[::13] = np.nan
    pool[5::17] = -0.0
    pool[7::19] = np.inf
    pool[9::23] = -np.inf
    pool = pool.astype(dt)
    pool.flags.writeable = False  # the input is const: read-only arrays work
    alpha = 1.25
    full = call(func, pool, alpha)  # one long call: the expected values
    # ... which are themselves right
    finite = ~np.isnan(pool)
    assert np.array_equal(np.isnan(full), ~finite)
    if dt == np.float32 or HAVE_F64_REFERENCE:
        assert_accurate(func, pool[finite], full[finite], alpha)
    sentinel = dt(-12345.5)
    for n in LENGTHS:
        for off in (0, 1, 3):  # element offsets: unaligned for every vector width
            start = 11 + off
            src = pool[start : start + n]
            want = bits(full[start : start + n])
            # out of place into an unaligned view, with sentinels on both sides
            buf = np.full(n + 2 + off, sentinel, dtype=dt)
            out = buf[1 + off : 1 + off + n]
            assert out.ndim == 1 and out.flags.c_contiguous and out.base is buf
            call(func, src, alpha, out=out)
            assert np.array_equal(bits(out), want), ("out of place", n, off)
            assert (buf[: 1 + off] == sentinel).all() and buf[-1] == sentinel, (n, off)
            # in place (out is x), unaligned
            buf2 = np.full(n + 2 + off, sentinel, dtype=dt)
            y = buf2[1 + off : 1 + off + n]
            y[:] = src
            _kernel_entry.fastmath_into(func, y, y, alpha)
            assert np.array_equal(bits(y), want), ("in place", n, off)
            assert (buf2[: 1 + off] == sentinel).all() and buf2[-1] == sentinel, (n, off)


# ---- API (the choice of path itself: tests/test_simd_paths.py) ---------------------------


def test_fastmath_into_rejects_bad_arguments():
    x = np.zeros(3)
    with pytest.raises(ValueError, match="name"):
        _kernel_entry.fastmath_into("sin", x, x)
    with pytest.raises(ValueError, match="expected 3 values"):
        _kernel_entry.fastmath_into("tanh", np.zeros(2), x)
    with pytest.raises(ValueError):  # mixed dtypes
        _kernel_entry.fastmath_into("tanh", np.zeros(3, dtype=np.float32), x)
    with pytest.raises(ValueError):  # not contiguous
        _kernel_entry.fastmath_into("tanh", x, np.zeros(6)[::2])


# ---- the activations use these functions ------------------------------------------------


@pytest.mark.parametrize("dt", DTYPES, ids=DTYPE_IDS)
def test_activation_forward_uses_fastmath(path, dt):
    """activation_forward gives exactly the fastmath results on the forced path."""
    rng = np.random.default_rng(11)
    Z = (rng.standard_normal((9, 13)) * 6).astype(dt)
    Z[0, :4] = [0.0, -0.0, 40.0, -40.0]
    flat = Z.ravel()
    for name, alpha in (("tanh", 1.0), ("sigmoid", 1.0), ("elu", 0.7)):
        A = activation_forward(name, Z, elu_alpha=alpha)
        assert A.dtype == dt and A.shape == Z.shape
        assert np.array_equal(bits(A.ravel()), bits(call(name, flat, alpha))), name
    # softmax: exp(Z - rowmax) in one fastmath call, then each row divided by its sum taken
    # left to right in the dtype (np.cumsum sums sequentially)
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = call("exp", shifted.ravel()).reshape(Z.shape)
    total = np.cumsum(e, axis=1, dtype=dt)[:, -1:]
    A = activation_forward("softmax", Z)
    assert np.array_equal(bits(A.ravel()), bits((e / total).ravel()))


def test_unknown_name_is_refused_even_for_empty_arrays():
    empty = np.empty(0)
    with pytest.raises(ValueError, match="name"):
        _kernel_entry.fastmath_into("bogus", empty, empty)
