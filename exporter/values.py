"""Value conversions: what a path or an expression produced, turned into a sample value.

Everything a MetricsConfiguration can point at is JSON: numbers, strings, booleans, null,
objects, arrays. A sample value is a float, so this module converts numbers, booleans (1/0),
RFC3339 timestamps (Unix seconds), Kubernetes quantities (``250m``, ``1Gi``, ``1e3``, exactly,
via ``Fraction``), percentages (``"25%"`` -> 0.25) and Go durations (``1h2m3.5s`` -> seconds).
It also formats a float for the exposition. A value that cannot be converted raises
``ValueConversionError`` (a ``ValueError``); the renderer catches it, drops that one series and
records why. Pure functions only.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from fractions import Fraction
from typing import Any

__all__ = [
    "ValueConversionError",
    "exact_decimal",
    "format_value",
    "parse_duration",
    "parse_duration_nanos",
    "parse_quantity",
    "parse_rfc3339",
    "parse_size",
    "to_float",
]


class ValueConversionError(ValueError):
    """A value that cannot become a sample value; ``reason`` is a short machine-friendly tag."""

    def __init__(self, message: str, *, reason: str = "conversion") -> None:
        super().__init__(message)
        self.reason = reason


# --- Kubernetes quantities -------------------------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Kubernetes' grammar: <signedNumber><suffix>, suffix = binarySI | decimalSI | decimalExponent.
_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)"
)


# Bounds on the decimals this module turns into exact Fractions. An object's text is not
# trusted: Fraction("1e10000000") builds 10**10000000 (12 s of CPU, a render that stalls the
# exporter), and int() refuses more than 4,300 digits with a ValueError nobody expects. Past
# these bounds every conversion here would be +-inf or 0 anyway.
MAX_EXPONENT = 1000
MAX_DECIMAL_LENGTH = 1000
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")


def exact_decimal(text: str) -> Fraction:
    """``Fraction(text)`` for text from an object: ``ValueError`` (as Fraction raises for bad
    syntax) when it is longer than MAX_DECIMAL_LENGTH or its exponent exceeds MAX_EXPONENT."""
    if len(text) > MAX_DECIMAL_LENGTH:
        raise ValueError(f"decimal of {len(text)} characters")
    exponent = _EXPONENT.search(text)
    if exponent is not None and (len(exponent.group(1)) > 8 or abs(int(exponent.group(1))) > MAX_EXPONENT):
        raise ValueError(f"exponent beyond {MAX_EXPONENT}")
    return Fraction(text)


# Quantities repeat across objects ("500m", "1Gi") and a Fraction is immutable: the parse is
# cached by its text (failures are not: lru_cache re-raises them each time).
@functools.lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Fraction:
    """Parse a Kubernetes resource quantity exactly (``"250m"`` -> 1/4, ``"1Gi"`` -> 2**30)."""
    match = _QUANTITY.fullmatch(text.strip()) if len(text) <= MAX_DECIMAL_LENGTH else None
    if match is None:
        raise ValueConversionError(f"not a quantity: {_short(text)}", reason="quantity")
    number = Fraction(match["num"])
    if match["exp"]:
        digits = match["exp"][1:]
        exponent = int(digits) if len(digits) <= 8 else MAX_EXPONENT + 1
        if abs(exponent) > MAX_EXPONENT:
            raise ValueConversionError(f"quantity out of range: {_short(text)}", reason="quantity")
        return number * (Fraction(10) ** exponent)
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix]


def quantity_of(value: Any) -> Fraction:
    """A quantity from a JSON value: numbers are taken as they are, strings are parsed."""
    if isinstance(value, bool):
        raise ValueConversionError(f"not a quantity: {value!r}", reason="quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueConversionError(f"not a quantity: {value!r}", reason="quantity")
        return Fraction(repr(value))  # the decimal the user wrote (0.1 -> 1/10), not its binary float
    if isinstance(value, str):
        return parse_quantity(value)
    raise ValueConversionError(f"not a quantity: {_short(value)}", reason="quantity")


# --- time ------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(text: str) -> float:
    """RFC3339 timestamp -> Unix seconds (float; fractional seconds kept)."""
    if not isinstance(text, str):
        raise ValueConversionError(f"not an RFC3339 timestamp: {_short(text)}", reason="datetime")
    return _parse_rfc3339_text(text)


# Timestamps repeat across objects (everything created or updated in the same second: a LIST
# of 50,000 objects has a few thousand distinct creationTimestamps), and the parse is a pure
# function of the text, so its results are cached. Failures are not (lru_cache re-raises).
@functools.lru_cache(maxsize=8192)
def _parse_rfc3339_text(text: str) -> float:
    if _RFC3339.fullmatch(text) is None:
        raise ValueConversionError(f"not an RFC3339 timestamp: {_short(text)}", reason="datetime")
    normalized = text.replace("z", "Z").replace("t", "T")
    head, dot, rest = normalized.partition(".")
    if dot:  # fromisoformat accepts at most 6 fractional digits: truncate nanoseconds
        digits = re.match(r"\d+", rest)
        assert digits is not None
        normalized = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end():]}"
    try:
        return datetime.fromisoformat(normalized).timestamp()
    except ValueError as exc:
        raise ValueConversionError(f"not an RFC3339 timestamp: {text!r} ({exc})", reason="datetime") from None


_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5
    "μs": 10**3,  # U+03BC
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_MAX_NANOS = (1 << 63) - 1


def parse_duration_nanos(text: str) -> int:
    """Go ``time.ParseDuration`` -> int64 nanoseconds, with Go's overflow errors and rounding.

    Like Go: the integer part of each component is exact, its fraction is converted with a
    float64 (``v += uint64(float64(f) * (float64(unit) / scale))``), and a total beyond the int64
    range (except exactly -2**63) is an error (``"9223372036854775808ns"``, ``"3000000h"``).
    """
    if not isinstance(text, str):
        raise ValueConversionError(f"not a duration: {_short(text)}", reason="duration")
    body = text
    negative = body[:1] == "-"
    if body[:1] in "+-":
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueConversionError(f"not a duration: {text!r}", reason="duration")
    total = 0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None or (not match.group(1) and not match.group(2)) or match.end() == pos:
            raise ValueConversionError(f"not a duration: {text!r}", reason="duration")
        whole, fraction, unit = match.group(1) or "0", match.group(2) or "", _DURATION_UNITS[match.group(3)]
        value = int(whole) * unit
        if int(whole) > _MAX_NANOS + 1 or value > _MAX_NANOS + 1:
            raise ValueConversionError(f"duration out of range: {text!r}", reason="duration")
        if fraction:
            digits = fraction[:19]  # Go stops accumulating once the fraction would overflow
            value += int(float(int(digits)) * (float(unit) / float(10 ** len(digits))))
        total += value
        if total > _MAX_NANOS + 1:
            raise ValueConversionError(f"duration out of range: {text!r}", reason="duration")
        pos = match.end()
    if total > _MAX_NANOS + (1 if negative else 0):
        raise ValueConversionError(f"duration out of range: {text!r}", reason="duration")
    return -total if negative else total


def parse_duration(text: str) -> float:
    """Go duration (``"1h2m3.5s"``, ``"150ms"``, ``"-1m"``, ``"0"``) -> seconds, as Go's
    ``Duration.Seconds()``: whole seconds plus the remaining nanoseconds / 1e9."""
    nanos = parse_duration_nanos(text)
    seconds, rest = abs(nanos) // 10**9, abs(nanos) % 10**9
    value = float(seconds) + float(rest) / 1e9
    return -value if nanos < 0 else value


# Human-readable sizes (KubeStash writes "12.222 MiB"): decimal (kB, MB, ...) and binary (KiB, ...).
_SIZE = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([kKMGTPE]i?B|B|bytes?)\s*")
_SIZE_UNITS = {"B": 1, "byte": 1, "bytes": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9,
               "TB": 10**12, "PB": 10**15, "EB": 10**18, "KiB": 2**10, "kiB": 2**10, "MiB": 2**20,
               "GiB": 2**30, "TiB": 2**40, "PiB": 2**50, "EiB": 2**60}


def parse_size(text: str) -> Fraction:
    """A Kubernetes quantity (``"1Gi"``, ``"250M"``) or a human size (``"12.222 MiB"``,
    ``"1.5 GB"``, ``"512 B"``), exactly."""
    try:
        return parse_quantity(text)
    except ValueConversionError:
        pass
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise ValueConversionError(f"not a size: {_short(text)}", reason="quantity")
    try:
        number = exact_decimal(match.group(1))
    except ValueError:
        raise ValueConversionError(f"not a size: {_short(text)}", reason="quantity") from None
    return number * _SIZE_UNITS[match.group(2)]


# --- generic conversion ------------------------------------------------------------------------

_BOOL_STRINGS = {"true": 1.0, "false": 0.0}


def to_float(value: Any) -> float:
    """Convert a JSON value (or an expression result) to a sample value.

    Order for strings: plain number, boolean (``true``/``false``, any case), Kubernetes
    quantity, percentage (``"25%"`` -> 0.25), RFC3339 timestamp. Objects, arrays and null fail.
    """
    if value is True:
        return 1.0
    if value is False:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _string_to_float(value)
    if value is None:
        raise ValueConversionError("value is null", reason="missing")
    raise ValueConversionError(f"not a number: {_short(value)}", reason="conversion")


def _string_to_float(text: str) -> float:
    if "_" not in text:  # Python's float() accepts "1_000"; JSON and Go do not
        try:
            return float(text)
        except ValueError:
            pass
    lowered = text.strip().lower()
    if lowered in _BOOL_STRINGS:
        return _BOOL_STRINGS[lowered]
    if lowered in ("nan", "+inf", "-inf", "inf"):
        return float(lowered)
    try:
        return float(parse_quantity(text))
    except ValueConversionError:
        pass
    if text.endswith("%"):
        try:
            return float(exact_decimal(text[:-1].strip()) / 100)
        except (ValueError, ZeroDivisionError):
            pass
    if _RFC3339.fullmatch(text):
        return parse_rfc3339(text)
    raise ValueConversionError(f"not a number: {text!r}", reason="conversion")


def datetime_to_float(value: Any) -> float:
    """A ``field.type: DateTime`` value: RFC3339 string -> Unix seconds (numbers pass through)."""
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueConversionError(f"not an RFC3339 timestamp: {_short(value)}", reason="datetime")


# --- formatting ----------------------------------------------------------------------------------

_EXACT_INT_LIMIT = 2.0**53


# The text of the values most series have (0/1 states, small counts, replicas): a dict lookup
# instead of is_integer + int + str, once per series of every render.
_SMALL_INTEGERS = {float(i): str(i) for i in range(-16, 1025)}


def format_value(value: float) -> str:
    """Compact exposition form: integral values without ``.0``, ``NaN``, ``+Inf``, ``-Inf``."""
    text = _SMALL_INTEGERS.get(value)
    if text is not None:
        return text
    if value.is_integer():  # the common case first (False for NaN and the infinities)
        return str(int(value)) if -_EXACT_INT_LIMIT <= value <= _EXACT_INT_LIMIT else repr(value)
    if value != value:
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return repr(value)


def label_value_of(value: Any) -> str | None:
    """The label text of a JSON value; ``None`` when the value is null (the label is omitted)."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_value(value)
    import orjson  # objects and arrays as compact JSON; rare, so imported lazily

    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. YAML keys of mixed types: still a label
        return repr(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
