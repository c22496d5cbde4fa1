"""Validated Python entry points to the compiled kernels.

Each function checks its arguments, converts them once to C-contiguous arrays of one
floating dtype (float32 when every array input is float32, float64 otherwise) and calls
its entry point in ``nnfast._kernel_entry``; a misaligned input (a view at a byte offset,
such as ``np.frombuffer(buf, offset=1)``) is copied first, as the kernels load whole
elements.
``out=`` takes a C-contiguous, writable array of the result's exact shape and dtype; when
it is misaligned (or overlaps an input), the kernel writes an aligned temporary that is
then copied into ``out``. The same kernels are ``cimport``-able from Cython through
``nnfast/_kernels.pxd``.

Every kernel family (products, fast math, elementwise loops) is compiled for several SIMD
code paths and runs the widest this CPU supports; ``set_simd_path`` (or the environment
variable ``NNFAST_SIMD=avx512|avx2|baseline``, read at import) limits them, and
``simd_paths`` reports the path of each family. ``set_avx512_units`` (or
``NNFAST_AVX512_UNITS=256|512``) plans the AVX-512 products for the width of the CPU's units,
and ``avx512_units`` reports the plan.
"""

from __future__ import annotations

import numbers

import numpy as np

from nnfast import _kernel_entry, _kernels
from nnfast._spec import ACTIVATION_CODES, HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from nnfast._validation import (
    as_kernel_array,
    as_numeric_array,
    check_name,
    check_real,
)

__all__ = [
    "matvec",
    "matmul",
    "dense_forward",
    "activation_forward",
    "activation_backward",
    "set_simd_path",
    "simd_paths",
    "set_avx512_units",
    "avx512_units",
    "ACTIVATIONS",
    "SIMD_PATHS",
]

#: Every activation name the kernels take: the hidden activations, then the output-only ones.
ACTIVATIONS = tuple(dict.fromkeys(HIDDEN_ACTIVATIONS + OUTPUT_ACTIVATIONS))
# Code paths set_simd_path accepts, widest first; "best" lifts the limit.
SIMD_PATHS = ("best",) + _kernels.SIMD_PATHS[::-1]


def _common_dtype(arrays) -> np.dtype:
    """float32 if every input is float32, else float64."""
    if all(a.dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _inputs(named: dict, ndims: dict):
    """Check each named input's numeric dtype and ndim; convert all to one dtype."""
    arrays = {}
    for name, value in named.items():
        array = as_numeric_array(value, name)
        if array.ndim not in ndims[name]:
            expected = " or ".join(f"{d}-D" for d in ndims[name])
            raise ValueError(f"{name}: expected a {expected} array, got shape {array.shape}")
        arrays[name] = array
    dtype = _common_dtype(arrays.values())
    return {k: as_kernel_array(v, dtype) for k, v in arrays.items()}, dtype


def _output(out, shape, dtype):
    """A fresh result array, or ``out`` after checking it can hold the result."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy array or None, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out: expected shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"out: expected dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out: expected a C-contiguous, writable array")
    return out


def _compute(result, inputs, kernel, elementwise=False):
    """Run ``kernel(target)``, which writes the result into ``target``, and return ``result``;
    the kernel writes a scratch array instead when ``result`` overlaps an input."""
    work = _scratch(result, inputs, elementwise)
    kernel(work)
    if work is not result:
        result[...] = work
    return result


def _scratch(result, inputs, elementwise=False):
    """``result``, or a fresh array of its shape when writing ``result`` while the kernel still
    reads ``inputs`` could clobber values not read yet (``out=`` overlapping an input), or
    when ``result`` is misaligned (the kernels store whole elements).

    With ``elementwise``, an input that is exactly ``result`` (same memory, same shape) is fine:
    those kernels read each element, or each row, before writing it.
    """
    if not result.flags.aligned:
        return np.empty_like(result)
    for array in inputs:
        if not np.may_share_memory(result, array):
            continue
        same = (
            elementwise
            and array.shape == result.shape
            and array.__array_interface__["data"][0] == result.__array_interface__["data"][0]
        )
        if not same:
            return np.empty_like(result)
    return result


def _act_args(name, leaky_slope, elu_alpha):
    check_name(name, "activation", ACTIVATIONS)
    leaky_slope = check_real(leaky_slope, "leaky_slope", low=0, high=1)
    elu_alpha = check_real(elu_alpha, "elu_alpha", low=0)
    return ACTIVATION_CODES[name], leaky_slope, elu_alpha


def matvec(A, x, out=None) -> np.ndarray:
    """``A @ x`` for ``A`` (m, n) and ``x`` (n,)."""
    arrays, dtype = _inputs({"A": A, "x": x}, {"A": (2,), "x": (1,)})
    A, x = arrays["A"], arrays["x"]
    if x.shape[0] != A.shape[1]:
        raise ValueError(f"x: expected shape ({A.shape[1]},) to match A {A.shape}, got {x.shape}")
    y = _output(out, (A.shape[0],), dtype)
    if A.size == 0:
        y[...] = 0
    else:
        _compute(y, (A, x), lambda work: _kernel_entry.matvec_into(work, A, x))
    return y


def matmul(A, B, out=None) -> np.ndarray:
    """``A @ B`` for ``A`` (m, k) and ``B`` (k, n)."""
    arrays, dtype = _inputs({"A": A, "B": B}, {"A": (2,), "B": (2,)})
    A, B = arrays["A"], arrays["B"]
    if B.shape[0] != A.shape[1]:
        raise ValueError(f"B: expected {A.shape[1]} rows to match A {A.shape}, got shape {B.shape}")
    C = _output(out, (A.shape[0], B.shape[1]), dtype)
    if C.size == 0:
        return C
    if A.shape[1] == 0:
        C[...] = 0
    else:
        _compute(C, (A, B), lambda work: _kernel_entry.matmul_into(work, A, B))
    return C


def _pieces(name, Z, arg="Z"):
    """(rows, m, pieces) of an activation input: maxout reduces the last axis."""
    if name == "maxout":
        if Z.ndim < 2 or Z.shape[-1] < 1:
            raise ValueError(
                f"{arg}: maxout expects shape (..., n_out, pieces) with pieces >= 1, "
                f"got shape {Z.shape}"
            )
        return Z.shape[:-1], Z.shape[-1]
    return Z.shape, 1


def activation_forward(name, Z, out=None, leaky_slope=0.1, elu_alpha=1.0) -> np.ndarray:
    """``f(Z)`` elementwise; softmax over the last axis; maxout takes ``Z`` of shape
    (..., n_out, pieces) and returns the maximum over the pieces, shape (..., n_out)."""
    code, leaky_slope, elu_alpha = _act_args(name, leaky_slope, elu_alpha)
    arrays, dtype = _inputs({"Z": Z}, {"Z": (1, 2, 3, 4)})
    Z = arrays["Z"]
    out_shape, pieces = _pieces(name, Z)
    A = _output(out, out_shape, dtype)
    if A.size == 0:
        return A
    m = out_shape[-1]
    return _compute(
        A,
        (Z,),
        lambda work: _kernel_entry.activation_forward_into(
            code, work.reshape(-1, m), Z.reshape(-1, m * pieces), leaky_slope, elu_alpha, pieces
        ),
        elementwise=True,
    )


def activation_backward(name, Z, A, dA, out=None, leaky_slope=0.1, elu_alpha=1.0) -> np.ndarray:
    """``dZ``, the gradient with respect to ``Z`` given ``A = f(Z)`` and ``dA = dL/dA``."""
    code, leaky_slope, elu_alpha = _act_args(name, leaky_slope, elu_alpha)
    arrays, dtype = _inputs(
        {"Z": Z, "A": A, "dA": dA}, {"Z": (1, 2, 3, 4), "A": (1, 2, 3, 4), "dA": (1, 2, 3, 4)}
    )
    Z, A, dA = arrays["Z"], arrays["A"], arrays["dA"]
    out_shape, pieces = _pieces(name, Z)
    for arg, arr in (("A", A), ("dA", dA)):
        if arr.shape != out_shape:
            raise ValueError(
                f"{arg}: expected shape {out_shape} to match Z {Z.shape}, got {arr.shape}"
            )
    dZ = _output(out, Z.shape, dtype)
    if dZ.size == 0:
        return dZ
    m = out_shape[-1]
    return _compute(
        dZ,
        (Z, A, dA),
        lambda work: _kernel_entry.activation_backward_into(
            code,
            work.reshape(-1, m * pieces),
            Z.reshape(-1, m * pieces),
            A.reshape(-1, m),
            dA.reshape(-1, m),
            leaky_slope,
            elu_alpha,
            pieces,
        ),
        elementwise=True,
    )


def dense_forward(
    X, W, b, activation="identity", out=None, leaky_slope=0.1, elu_alpha=1.0
) -> np.ndarray:
    """``f(X @ W + b)`` for ``X`` (n, n_in), ``W`` (n_in, n_out), ``b`` (n_out,); for maxout
    ``W`` is (n_in, n_out, pieces) and ``b`` (n_out, pieces)."""
    code, leaky_slope, elu_alpha = _act_args(activation, leaky_slope, elu_alpha)
    maxout = activation == "maxout"
    arrays, dtype = _inputs(
        {"X": X, "W": W, "b": b},
        {"X": (2,), "W": (3,) if maxout else (2,), "b": (2,) if maxout else (1,)},
    )
    X, W, b = arrays["X"], arrays["W"], arrays["b"]
    if W.shape[0] != X.shape[1]:
        raise ValueError(f"W: expected {X.shape[1]} rows to match X {X.shape}, got shape {W.shape}")
    if b.shape != W.shape[1:]:
        raise ValueError(f"b: expected shape {W.shape[1:]} to match W {W.shape}, got {b.shape}")
    if maxout and W.shape[2] < 1:
        raise ValueError(
            f"W: maxout expects shape (n_in, n_out, pieces) with pieces >= 1, got shape {W.shape}"
        )
    n_out = W.shape[1]
    pieces = W.shape[2] if maxout else 1
    result = _output(out, (X.shape[0], n_out), dtype)
    if result.size == 0:
        return result
    width = n_out * pieces
    if X.shape[1] == 0:
        Z = np.broadcast_to(b.reshape(width), (X.shape[0], width))
        return activation_forward(
            activation,
            Z.reshape((X.shape[0],) + W.shape[1:]),
            out=result,
            leaky_slope=leaky_slope,
            elu_alpha=elu_alpha,
        )
    Z = np.empty((X.shape[0], width), dtype=dtype)
    # Z is fresh and X is read whole into Z before out is written: only alignment matters.
    return _compute(
        result,
        (),
        lambda work: _kernel_entry.dense_forward_into(
            work,
            Z,
            X,
            W.reshape(X.shape[1], width),
            b.reshape(width),
            code,
            leaky_slope,
            elu_alpha,
            pieces,
        ),
    )


def set_simd_path(name) -> str:
    """Limit every kernel family to SIMD code paths up to ``name``; return the previous limit.

    ``name`` is one of ``SIMD_PATHS``: ``"avx512"``, ``"avx2"``, ``"baseline"`` (the compile
    flags' own instruction set: SSE2 on x86-64; on AArch64 NEON with FMA, its only path, whose
    products equal the AVX paths' bit for bit), or ``"best"`` for no limit (the default, or
    what ``NNFAST_SIMD`` says). Each family (products, fast math, elementwise loops) then runs
    the widest of its paths up to ``name`` that this CPU supports: asking for a path the CPU
    lacks is not an error, and ``simd_paths()`` tells what runs. On a given path results are
    deterministic; the AVX2 and AVX-512 paths give bit-identical results, the x86 baseline
    path (no FMA) differs in the last bits. Not thread-safe: set it before training or predicting
    in threads.
    """
    check_name(name, "name", SIMD_PATHS)
    return _kernels.set_simd_path(name)


def simd_paths() -> dict:
    """``{family: path}``: the code path each kernel family runs now, e.g.
    ``{"products": "avx512", "fast_math": "avx512", "elementwise": "avx512"}``."""
    return _kernels.simd_paths()


def set_avx512_units(bits) -> int | None:
    """Plan the AVX-512 products for execution units ``bits`` wide; return the previous setting.

    ``bits`` is 256, 512 or None: as detected (the default, or what ``NNFAST_AVX512_UNITS``
    says), 256 on AMD family 25 (Zen 4), 512 on other CPUs with AVX-512. A 256-bit unit runs a
    512-bit operation in two passes however many of its lanes are used, so there the AVX-512
    products give the rows that take fewer 256-bit operations in 256-bit vectors (n mod 8 of
    1 to 4 doubles, n mod 16 of 1 to 8 floats, below 128 columns: the seed network's 20) to
    kernels in 256-bit vectors: the AVX2 kernel in float64, an AVX-512VL one in float32
    (docs/kernels.md). All give the same bits, so this changes the speed only. It matters
    only while the products run AVX-512 (``avx512_units()``). Not thread-safe: set it
    before training or predicting in threads.
    """
    if bits is not None and (
        isinstance(bits, bool)
        or not isinstance(bits, numbers.Integral)
        or bits not in _kernels.AVX512_UNIT_WIDTHS
    ):
        raise ValueError(f"bits: expected None, 256 or 512, got {bits!r}")
    return _kernels.set_avx512_units(None if bits is None else int(bits))


def avx512_units() -> int | None:
    """The AVX-512 unit width the products plan for now (256 or 512), or None when they do
    not run AVX-512 (``simd_paths()["products"]`` is not ``"avx512"``)."""
    return _kernels.avx512_units()
