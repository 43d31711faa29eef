"""Grader side of probes: decode probed values and compare them with the reference's.

The kernel side is :mod:`coursekit.grade._kernel_probe`. Decoding never unpickles (``np.load`` with
``allow_pickle=False``) and bounds sizes, so a hostile payload can only fail its own probe.
Comparison messages describe *what* differs (type, shape, length, keys, size of an error) and
never print the expected value, so feedback cannot leak answers.
"""

from __future__ import annotations

import base64
import binascii
import cmath
import io
import math
from pathlib import Path

import numpy as np

MIME = "application/vnd.cnn-course.probe+json"
MAX_ARRAY_BYTES = 64 << 20
KERNEL_PROBE_CODE = (Path(__file__).with_name("_kernel_probe.py")).read_text(encoding="utf-8")


class ProbeFormatError(ValueError):
    """A probe payload is malformed (never produced by the real ``probe``: a forged message)."""


def decode(obj, depth: int = 0):
    """Decode one encoded probe value (see the kernel side) into Python/NumPy values."""
    if depth > 40:
        raise ProbeFormatError("value is nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(item, depth + 1) for item in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ProbeFormatError("unexpected value encoding")
    (tag, body), = obj.items()
    if tag == "__ndarray__":
        if not isinstance(body, str) or len(body) > MAX_ARRAY_BYTES * 4 // 3 + 8:
            raise ProbeFormatError("array payload too large or malformed")
        try:
            array = np.load(io.BytesIO(base64.b64decode(body, validate=True)), allow_pickle=False)
        except (ValueError, binascii.Error, OSError, EOFError) as exc:
            raise ProbeFormatError(f"array payload cannot be read: {exc}") from None
        if not isinstance(array, np.ndarray):
            raise ProbeFormatError("array payload is not a single array")
        return array
    if tag == "__int__" and isinstance(body, str) and len(body) < 4000:
        try:
            return int(body)
        except ValueError:
            raise ProbeFormatError("bad integer") from None
    if tag == "__float__" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "__complex__" and isinstance(body, list) and len(body) == 2:
        real, imag = (decode(part, depth + 1) for part in body)
        if not all(isinstance(part, (int, float)) for part in (real, imag)):
            raise ProbeFormatError("bad complex number")
        return complex(real, imag)
    if tag == "__dict__" and isinstance(body, list):
        result = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProbeFormatError("bad dict item")
            result[_hashable(decode(pair[0], depth + 1))] = decode(pair[1], depth + 1)
        return result
    if tag == "__set__" and isinstance(body, list):
        return frozenset(_hashable(decode(item, depth + 1)) for item in body)
    raise ProbeFormatError(f"unknown value tag {tag!r}")


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, np.ndarray):
        raise ProbeFormatError("arrays cannot be dict keys or set items")
    return value


def _kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, (int, float, complex)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, list):
        return f"a sequence of length {len(value)}"
    if isinstance(value, dict):
        return "a dict"
    if isinstance(value, frozenset):
        return "a set"
    return type(value).__name__


def _numeric_array(value) -> np.ndarray | None:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        return None
    return array if array.dtype.kind in "biufc" else None


def compare(expected, actual, rtol: float, atol: float, where: str = "") -> str | None:
    """Return ``None`` when ``actual`` matches ``expected`` within the tolerances, else a short
    reason that does not reveal ``expected``'s values.

    Numbers and numeric arrays match with ``|a - e| <= atol + rtol * |e|`` (NaN equals NaN);
    integers, booleans, strings, None and keys match exactly; lists and tuples are the same kind
    of sequence; an array and a nested list of numbers compare as arrays.
    """
    at = f" at {where}" if where else ""
    if isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
        return _compare_arrays(expected, actual, rtol, atol, at)
    if isinstance(expected, (bool, np.bool_)) != isinstance(actual, (bool, np.bool_)):
        return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
    if isinstance(expected, (bool, np.bool_)):
        return None if bool(expected) == bool(actual) else f"wrong value{at}"
    if isinstance(expected, (int, float, complex)):
        return _compare_numbers(expected, actual, rtol, atol, at)
    if isinstance(expected, str) or expected is None:
        if type(actual) is not type(expected):
            return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
        return None if actual == expected else f"wrong value{at}"
    if isinstance(expected, list):
        return _compare_lists(expected, actual, rtol, atol, where, at)
    if isinstance(expected, dict):
        return _compare_dicts(expected, actual, rtol, atol, where, at)
    if isinstance(expected, frozenset):
        if not isinstance(actual, frozenset):
            return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
        if actual == expected:
            return None
        return f"the set{at} differs ({len(actual)} items, expected {len(expected)})"
    return f"cannot compare {_kind(expected)}{at}"


def _compare_arrays(expected, actual, rtol: float, atol: float, at: str) -> str | None:
    """:func:`compare` when either side is an array."""
    e, a = np.asarray(expected), _numeric_array(actual)
    if e.dtype.kind in "US":
        a = np.asarray(actual) if isinstance(actual, (np.ndarray, list)) else None
        if a is None or a.shape != e.shape or a.dtype.kind not in "US":
            return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
        return None if np.array_equal(a, e) else f"wrong text values{at}"
    if a is None or e.dtype.kind not in "biufc":
        return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
    if a.shape != e.shape:
        return f"shape {a.shape}{at}, expected shape {e.shape}"
    if (e.dtype.kind == "b") != (a.dtype.kind == "b"):
        return f"expected {'booleans' if e.dtype.kind == 'b' else 'numbers'}{at}"
    if e.size == 0:
        return None
    if e.dtype.kind in "bui" and a.dtype.kind in "bui":
        wrong = int(np.count_nonzero(a != e))
        return None if not wrong else f"{wrong} of {e.size} values differ{at}"
    with np.errstate(all="ignore"):
        close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
        if close.all():
            return None
        error = np.abs(a.astype(np.complex128) - e.astype(np.complex128))
        worst = float(np.nanmax(np.where(close, 0, np.nan_to_num(error, nan=np.inf))))
    return (f"{int((~close).sum())} of {e.size} values differ{at} (largest difference "
            f"{worst:.3g}; allowed {atol:g} + {rtol:g} x |expected|)")


def _compare_numbers(expected, actual, rtol: float, atol: float, at: str) -> str | None:
    """:func:`compare` for an expected int, float or complex (not a bool)."""
    if not isinstance(actual, (int, float, complex)) or isinstance(actual, bool):
        return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
    if isinstance(expected, int) and isinstance(actual, int):
        return None if expected == actual else f"wrong value{at}"
    if expected == actual or (_isnan(expected) and _isnan(actual)):
        return None
    if not (cmath.isfinite(expected) and cmath.isfinite(actual)):
        return f"wrong value{at}"  # inf - inf is nan and inf <= inf: no tolerance applies
    if abs(actual - expected) <= atol + rtol * abs(expected):
        return None
    return f"wrong value{at} (differs by {abs(actual - expected):.3g})"


def _compare_lists(expected: list, actual, rtol: float, atol: float, where: str,
                   at: str) -> str | None:
    """:func:`compare` for an expected list: same length, then item by item."""
    if not isinstance(actual, list):
        return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
    if len(actual) != len(expected):
        return f"length {len(actual)}{at}, expected length {len(expected)}"
    for i, (e_item, a_item) in enumerate(zip(expected, actual)):
        reason = compare(e_item, a_item, rtol, atol, f"{where}[{i}]")
        if reason:
            return reason
    return None


def _compare_dicts(expected: dict, actual, rtol: float, atol: float, where: str,
                   at: str) -> str | None:
    """:func:`compare` for an expected dict: the same keys, then value by value."""
    if not isinstance(actual, dict):
        return f"expected {_kind(expected)}{at}, got {_kind(actual)}"
    missing = [k for k in expected if k not in actual]
    if missing:
        return f"missing key {missing[0]!r}{at}"
    extra = [k for k in actual if k not in expected]
    if extra:
        return f"unexpected key {extra[0]!r}{at}"
    for key in expected:
        reason = compare(expected[key], actual[key], rtol, atol, f"{where}[{key!r}]")
        if reason:
            return reason
    return None


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
