"""Input checks shared by the public API: everything is validated here before a kernel runs.

Each check either returns a C-contiguous, aligned array of the working dtype (converting
once; a view at a byte offset, such as ``np.frombuffer(buf, offset=1)``, is copied: the
kernels load whole elements, and a misaligned load is undefined behaviour in C) or raises ``TypeError`` (wrong kind of object or dtype) / ``ValueError`` (wrong shape or value)
with a message naming the argument, what was expected and what came.
"""

from __future__ import annotations

import numbers

import numpy as np

from nnfast import _kernel_entry, _kernels, _sparse
from nnfast._spec import LOSSES

# The dtypes arrays are computed in (scikit-learn's check_array converts other inputs to the
# first).
FLOATS = (np.float64, np.float32)
# Bytes of a cache line (one AVX-512 vector): where the arrays nnfast keeps for the kernels
# (parameters, optimizer buffers) start, as the compiled workspaces do (_kernels.pxd's
# CACHE_LINE). The kernels take any alignment, but a vector that straddles two lines costs
# two accesses (docs/kernels.md).
CACHE_LINE = _kernels.CACHE_LINE_BYTES


def cache_aligned_zeros(n: int, dtype) -> np.ndarray:
    """A 1-D array of n zeros of `dtype` starting on a cache line."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + CACHE_LINE, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start : start + n * dtype.itemsize].view(dtype)


def cache_aligned(array: np.ndarray) -> np.ndarray:
    """`array` (1-D, contiguous) itself when it starts on a cache line, else such a copy."""
    if array.ctypes.data % CACHE_LINE == 0:
        return array
    out = cache_aligned_zeros(array.shape[0], array.dtype)
    out[...] = array
    return out


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__}"


def as_numeric_array(value, name: str) -> np.ndarray:
    """``np.asarray(value)`` restricted to bool, integer and real floating dtypes."""
    if value is None:
        raise TypeError(f"{name}: expected an array of numbers, got None")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged nested sequences and the like
        raise ValueError(
            f"{name}: expected an array of numbers, could not convert: {err}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: expected real numbers (bool, integer or floating dtype), "
            f"got {_describe(array)}"
        )
    return array


def as_kernel_array(array, dtype) -> np.ndarray:
    """``array`` as a C-contiguous, aligned ndarray of ``dtype``: what a kernel may read
    (no copy when it already is one)."""
    out = np.ascontiguousarray(array, dtype=dtype)
    if not out.flags.aligned:  # ascontiguousarray keeps a contiguous misaligned view
        out = out.copy()
    return out


# The compiled check, specialised per dtype once (a fused function's dispatch by argument
# types costs more than the check itself on small arrays).
_ALL_FINITE = {
    np.dtype(np.float64): _kernel_entry.all_finite["double"],
    np.dtype(np.float32): _kernel_entry.all_finite["float"],
}


def _all_finite(array: np.ndarray) -> bool:
    """True when no entry is NaN or infinite (compiled check for C-contiguous, aligned
    float32/64)."""
    if array.dtype.kind != "f":
        return True
    check = _ALL_FINITE.get(array.dtype)
    if check is not None and array.flags.c_contiguous and array.flags.aligned:
        return check(array.reshape(-1))
    return bool(np.isfinite(array).all())


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ValueError naming the first NaN or infinite entry of ``array``."""
    if not _all_finite(array):
        bad = np.argwhere(~np.isfinite(array))[0]
        where = ", ".join(str(i) for i in bad)
        raise ValueError(
            f"{name}: expected finite values, got {array[tuple(bad)].item()!r} at index ({where}) "
            "(NaN, infinity, or a value too large for the network's dtype)"
        )


def as_finite(array: np.ndarray, name: str, dtype) -> np.ndarray:
    """``array`` as a finite C-contiguous, aligned array of ``dtype`` (no copy when it
    already is).

    A finite value too large for ``dtype`` (1e300 for float32) would become infinity in the
    conversion: it is reported as such, without NumPy's overflow warning.
    """
    dtype = np.dtype(dtype)
    if array.dtype == dtype and array.flags.c_contiguous and array.flags.aligned:
        out = array  # the common case: nothing to convert, no overflow possible
    else:
        with np.errstate(over="ignore"):
            out = as_kernel_array(array, dtype)
    if not _all_finite(out):
        check_finite(array, name)  # NaN or infinity in the input itself
        bad = np.argwhere(~np.isfinite(out))[0]
        where = ", ".join(str(i) for i in bad)
        raise ValueError(
            f"{name}: expected values that fit in {dtype.name} (magnitude at most "
            f"{float(np.finfo(dtype).max):.6g}), got {array[tuple(bad)].item()!r} "
            f"at index ({where})"
        )
    return out


def as_finite_rows(X, name: str, dtype):
    """:func:`as_finite` for a dense X; a SciPy sparse X as a checked, canonical CSR matrix
    of ``dtype`` (see :func:`nnfast._sparse.as_csr`): what training and prediction read."""
    if _sparse.is_sparse(X):
        return _sparse.as_csr(X, name, dtype)
    return as_finite(X, name, dtype)


def as_kernel_rows(X, dtype):
    """:func:`as_kernel_array` for a dense X; a sparse X as a canonical CSR matrix of
    ``dtype`` (no copy when it already is one)."""
    if not _sparse.is_sparse(X):
        return as_kernel_array(X, dtype)
    if X.format == "csr" and X.dtype == dtype and X.indices.dtype == np.intp:
        if X.indptr.dtype == np.intp and X.has_canonical_format:
            return X  # already checked: a split of one as_finite_rows gave
    return _sparse.as_csr(X, "X", dtype, check_finite=False)


def as_matrix(
    value, name: str, dtype, n_cols: int | None = None, allow_1d: bool = False
) -> tuple[np.ndarray, bool]:
    """A finite, non-empty (n, n_cols) C-contiguous, aligned array of ``dtype``.

    With ``allow_1d`` a 1-D input is one sample and comes back as (1, n_cols); the second
    return value says whether that happened.
    """
    # Fast path for an array that is already what the kernels need (predicting one sample
    # costs about a microsecond: checks must not cost more); anything else, and every
    # error message, goes through the general path below.
    if (
        type(value) is np.ndarray
        and value.dtype == dtype
        and n_cols is not None
        and value.flags.c_contiguous
        and value.flags.aligned
    ):
        shape = value.shape
        if len(shape) == 2 and shape[1] == n_cols and shape[0] > 0:
            if _ALL_FINITE[value.dtype](value.reshape(-1)):
                return value, False
        elif allow_1d and len(shape) == 1 and shape[0] == n_cols:
            if _ALL_FINITE[value.dtype](value):
                return value.reshape(1, n_cols), True
    array = as_numeric_array(value, name)
    given_shape = array.shape
    single = False
    if allow_1d and array.ndim == 1:
        array = array[np.newaxis, :]
        single = True
    expected = f"(n_samples, {n_cols})" if n_cols is not None else "(n_samples, n_features)"
    if array.ndim != 2:
        one_d = " or a 1-D array for one sample" if allow_1d else ""
        raise ValueError(
            f"{name}: expected a 2-D array of shape {expected}{one_d}, "
            f"got {array.ndim}-D shape {array.shape}"
        )
    if n_cols is not None and array.shape[1] != n_cols:
        if single:
            raise ValueError(
                f"{name}: expected one sample of shape ({n_cols},) or samples of "
                f"shape {expected}, got shape {given_shape}"
            )
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got shape {array.shape}")
    return as_finite(array, name, dtype), single


def target_width(loss: str, n_out: int) -> int:
    """Columns of the targets for a network with ``n_out`` outputs: ``gaussian_nll`` reads the
    output as ``n_out / 2`` means then ``n_out / 2`` log-variances, one pair per target."""
    return n_out // 2 if loss == "gaussian_nll" else n_out


def check_targets(y, loss: str, n_samples: int, n_out: int, dtype) -> np.ndarray:
    """The targets as an (n_samples, target_width(loss, n_out)) C-contiguous array of ``dtype``.

    mse and gaussian_nll: any finite values (gaussian_nll: n_out / 2 columns);
    binary_cross_entropy: values in [0, 1]; poisson: values >= 0; cross_entropy: integer
    labels (n_samples,) in [0, n_out), turned into one-hot rows, or rows of class
    probabilities (n_samples, n_out).
    """
    array = as_numeric_array(y, "y")
    if array.shape[:1] != (n_samples,):
        raise ValueError(
            f"y: expected {n_samples} rows (one per sample of X), got shape {array.shape}"
        )
    if loss == "cross_entropy" and array.ndim == 1:
        return _one_hot(array, n_out, dtype)
    width = target_width(loss, n_out)
    if array.ndim == 1 and width == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[1] != width:
        labels = " or integer class labels of shape (n_samples,)" if loss == "cross_entropy" else ""
        one_d = " (or (n_samples,) for one output)" if width == 1 else ""
        why = ""
        if loss == "gaussian_nll":
            one_d = one_d.replace("output", "target")
            why = (
                f" (loss='gaussian_nll' reads the {n_out} outputs as {width} means and "
                f"{width} log-variances, one pair per target)"
            )
        raise ValueError(
            f"y: expected shape ({n_samples}, {width}){one_d}{labels}, got {array.shape}{why}"
        )
    out = as_finite(array, "y", dtype)
    if loss in ("cross_entropy", "binary_cross_entropy"):
        if out.min() < 0 or out.max() > 1:
            raise ValueError(
                f"y: loss={loss!r} expects values in [0, 1], got values in "
                f"[{out.min().item()!r}, {out.max().item()!r}]"
            )
    if loss == "poisson" and out.min() < 0:
        raise ValueError(f"y: loss='poisson' expects values >= 0, got {out.min().item()!r}")
    if loss == "cross_entropy":
        sums = out.sum(axis=1, dtype=np.float64)
        worst = int(np.argmax(np.abs(sums - 1)))
        if abs(sums[worst] - 1) > 1e-5:
            raise ValueError(
                "y: loss='cross_entropy' expects rows of class probabilities summing to 1, "
                f"got a row summing to {sums[worst].item()!r} at row {worst}"
            )
    return out


def _one_hot(labels: np.ndarray, n_out: int, dtype) -> np.ndarray:
    if labels.dtype.kind == "f":
        check_finite(labels, "y")
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(
                "y: loss='cross_entropy' expects integer class labels for a 1-D y, "
                f"got non-integer values such as {labels[labels != np.round(labels)][0].item()!r}"
            )
    elif labels.dtype.kind == "b":
        raise TypeError("y: expected integer class labels, got a boolean array")
    if labels.min() < 0 or labels.max() >= n_out:
        bad = labels[(labels < 0) | (labels >= n_out)][0]
        raise ValueError(f"y: expected class labels in [0, {n_out}), got {bad.item()!r}")
    one_hot = np.zeros((labels.shape[0], n_out), dtype=dtype)
    one_hot[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return one_hot


def check_sample_weight(sample_weight, n_samples: int, dtype):
    """None, or a finite (n_samples,) array of dtype with entries >= 0 and a positive sum
    (rescaled by its maximum when the sum is so small that its inverse would overflow)."""
    if sample_weight is None:
        return None
    w = as_numeric_array(sample_weight, "sample_weight")
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight: expected shape ({n_samples},) (one weight per sample), got {w.shape}"
        )
    w = as_finite(w, "sample_weight", dtype)
    if w.min() < 0:
        raise ValueError(f"sample_weight: expected weights >= 0, got {w.min().item()!r}")
    total = w.sum(dtype=np.float64)
    if not total > 0:
        raise ValueError("sample_weight: expected a positive sum of weights, got all zeros")
    if total < 1e6 / float(np.finfo(w.dtype).max):
        # 1 / Σw would overflow (weights such as [0, 5e-324]): the weighted mean does not
        # change when every weight is divided by the largest one.
        w = w / w.max()
    return w


def check_name(value, name: str, allowed) -> str:
    """``value`` must be one of the strings in ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: expected one of {tuple(allowed)}, got {value!r}")
    return value


def check_loss(loss, output_activation: str, n_out: int) -> str:
    """A known loss that fits the network's output activation and width (``n_out``)."""
    check_name(loss, "loss", LOSSES)
    required = {
        "cross_entropy": "softmax",
        "binary_cross_entropy": "sigmoid",
        "poisson": "exp",
        "gaussian_nll": "identity",
    }.get(loss)
    if required is not None and output_activation != required:
        raise ValueError(
            f"loss: {loss!r} needs output_activation={required!r}, "
            f"but this network's output activation is {output_activation!r}"
        )
    if loss == "gaussian_nll" and n_out % 2:
        raise ValueError(
            "loss: 'gaussian_nll' needs an even number of outputs (k means, then k "
            f"log-variances, for k targets), but this network has layer_sizes[-1] = {n_out}"
        )
    return loss


def check_real(value, name: str, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite real number in the interval given by ``low``/``high`` (closed by default)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    try:
        value = float(value)
    except OverflowError:  # an int such as 10**400
        raise ValueError(
            f"{name}: expected a finite number in {interval}, got an integer too large for a float"
        ) from None
    ok = np.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name}: expected a finite number in {interval}, got {value!r}")
    return value


def check_int(value, name: str, low: int, high: int | None = None) -> int:
    """An integer >= ``low`` (and <= ``high`` when given; bool is refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(
            f"{name}: expected an integer >= {low}, got {type(value).__name__} {value!r}"
        )
    if value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    return int(value)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)
