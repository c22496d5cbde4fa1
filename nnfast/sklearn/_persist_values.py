"""JSON values of saved estimators: non-finite numbers, class labels, typed checks.

Shared by :mod:`nnfast.sklearn._persist`'s writer and reader; plain NumPy, no scikit-learn.
The rules are those of ``docs/file_format.md`` (Saved estimators).
"""

from __future__ import annotations

import math
import re

import numpy as np

from nnfast import io

NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# classes_ dtypes, little-endian; "<U<n>" (n code points) and "object" (of str) too.
CLASS_DTYPES = ("|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f4", "<f8")
MAX_STRING = 4096  # characters of one class label: bounds what "<U<n>" allocates
UNICODE_DTYPE = re.compile(r"<U[1-9][0-9]{0,3}")


def number(value):
    """A float for JSON: finite as itself, non-finite as "inf", "-inf" or "nan"."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if value != value else ("inf" if value > 0 else "-inf")


def encode_classes(classes, label_binarizer=None):
    """``{"dtype": ..., "values": [...]}`` of a ``classes_`` array (the fitted
    ``label_binarizer``'s, if given, must be the same); ValueError for labels the format
    cannot hold."""
    classes = np.asarray(classes)
    if label_binarizer is not None and not (
        label_binarizer.classes_.dtype == classes.dtype
        and np.array_equal(label_binarizer.classes_, classes)
    ):
        raise ValueError("net: classes_ differs from the fitted label binarizer's classes_")
    if classes.dtype == object:
        if not all(isinstance(c, str) for c in classes):
            raise ValueError("net: classes_ of dtype object can be saved if they are strings")
        if max(map(len, classes)) > MAX_STRING:
            raise ValueError(f"net: classes_ longer than {MAX_STRING} characters cannot be saved")
        return {"dtype": "object", "values": classes.tolist()}
    dtype = classes.dtype.newbyteorder("<") if classes.dtype.byteorder == ">" else classes.dtype
    if dtype.str not in CLASS_DTYPES and UNICODE_DTYPE.fullmatch(dtype.str) is None:
        raise ValueError(
            f"net: classes_ of dtype {classes.dtype} cannot be saved (booleans, integers, "
            f"floats and strings of at most {MAX_STRING} characters can)"
        )
    values = classes.tolist()
    if dtype.kind == "f":
        values = [number(v) for v in values]
    return {"dtype": dtype.str, "values": values}


class Checker:
    """Type checks of JSON values, failing through the file with where the value was."""

    def __init__(self, file, where):
        self.file, self.where = file, where

    def fail(self, what):
        self.file.fail(f"{self.where}{what}")

    def integer(self, value, name, minimum=0):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(f"{name!r} is {value!r}, expected an integer >= {minimum}")
        return value

    def boolean(self, value, name):
        if not isinstance(value, bool):
            self.fail(f"{name!r} is {value!r}, expected true or false")
        return value

    def number(self, value, name, nullable=False, item=None):
        """A JSON number or "inf", "-inf", "nan" as a float (None if nullable); ``item``: the
        index of the value in the list ``name``."""
        if value is None and nullable:
            return None
        if isinstance(value, str) and value in NON_FINITE:
            return NON_FINITE[value]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            label = repr(name) if item is None else f"item {item} of {name!r}"
            self.fail(
                f"{label} is {value!r}, expected a number "
                f'("inf", "-inf" or "nan" if not finite){" or null" if nullable else ""}'
            )
        return float(value)

    def numbers(self, value, name, nullable=False):
        if value is None and nullable:
            return None
        if not isinstance(value, list):
            self.fail(f"{name!r} is {value!r}, expected a list of numbers")
        return [self.number(v, name, item=i) for i, v in enumerate(value)]

    def mapping(self, value, name):
        if not isinstance(value, dict):
            self.fail(f"{name!r} is {value!r}, expected an object")
        return value


def decode_classes(value, check):
    """The ``classes_`` array of ``{"dtype": ..., "values": [...]}``: a listed dtype, values
    of that dtype, sorted and distinct; ``check`` fails otherwise."""
    check.mapping(value, "classes_")
    io.check_fields(value, ("dtype", "values"), check.file, f"{check.where}classes_")
    dtype, values = value["dtype"], value["values"]
    strings = isinstance(dtype, str) and (
        dtype == "object" or UNICODE_DTYPE.fullmatch(dtype) is not None
    )
    if not (strings or dtype in CLASS_DTYPES):
        check.fail(
            f"classes_ has dtype {dtype!r}, expected one of {list(CLASS_DTYPES)}, "
            "'<U<n>' or 'object'"
        )
    if not isinstance(values, list) or not values:
        check.fail(f"classes_ values are {values!r}, expected a non-empty list")
    if strings:
        width = MAX_STRING if dtype == "object" else int(dtype[2:])
        if width > MAX_STRING:
            check.fail(f"classes_ has dtype {dtype!r}: strings of at most {MAX_STRING} characters")
        for v in values:
            if not isinstance(v, str) or len(v) > width or "\x00" in v:
                check.fail(f"classes_ value {v!r} is not a string of dtype {dtype!r}")
        classes = np.array(values, dtype=object if dtype == "object" else dtype)
        order = np.array(values)
    else:
        kind = np.dtype(dtype).kind
        for v in values:
            if kind == "b":
                fits = isinstance(v, bool)
            elif kind in "iu":
                info = np.iinfo(dtype)
                fits = isinstance(v, int) and not isinstance(v, bool) and info.min <= v <= info.max
            else:
                fits = isinstance(v, (int, float)) and not isinstance(v, bool)
            if not fits:
                check.fail(f"classes_ value {v!r} is not of dtype {dtype!r}")
        classes = order = np.array(values, dtype=dtype)
        if kind == "f" and not np.isfinite(classes).all():
            check.fail("classes_ holds NaN or infinite values")
    if len(order) > 1 and not (order[1:] > order[:-1]).all():
        check.fail(f"classes_ {values!r} are not sorted and distinct")
    return classes
