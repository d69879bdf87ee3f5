"""kube-state-metrics' value rules, for configurations with ``spec.compatibility: KubeStateMetrics``.

A configuration converted from a KSM ``CustomResourceStateMetrics`` file (``exporter/ksmconvert.py``)
must print what KSM prints for the same object, so three of KSM's rules replace Panopticon's
(docs/ksm.md; upstream kubernetes/kube-state-metrics ``pkg/customresourcestate/registry_factory.go``
``toFloat64`` and ``addPathLabels``, and ``pkg/metric/metric.go`` ``writeFloat``):

- ``to_float``: booleans 1/0; strings ``true``/``yes`` -> 1, ``false``/``no``/``unknown`` -> 0 (any
  case); an RFC3339 timestamp -> its Unix second (the fraction dropped, as Go's ``Time.Unix``); a
  Kubernetes quantity (``250m``, ``1Gi``); an integer percentage (``25%`` -> 0.25); then Go's
  ``strconv.ParseFloat``. ``null`` and missing are errors (reason ``missing``), objects and arrays
  too (reason ``conversion``).
- ``format_sample``: Go's ``strconv.FormatFloat(f, 'g', -1, 64)``: the shortest digits, with an
  exponent when it is below -4 or at least 6 (``104857600`` -> ``1.048576e+08``).
- ``label_text``: Go's ``fmt.Sprintf("%v", v)`` of a JSON value: numbers as ``'g'``, booleans
  ``true``/``false``, objects ``map[k:v ...]`` (keys sorted), arrays ``[a b]``, ``null`` ``<nil>``.

Pure functions.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from exporter.values import ValueConversionError, parse_quantity

__all__ = ["format_sample", "label_text", "to_float"]

_ONE = {"true", "yes"}
_ZERO = {"false", "no", "unknown"}
# Go's time.RFC3339 layout as time.Parse accepts it (a fraction after the seconds is allowed)
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})")
_PERCENT = re.compile(r"[0-9]+%")  # apimachinery validation.IsValidPercent
# strconv.ParseFloat: decimal or hex floats, inf/infinity/nan (any case), optional sign
_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_GO_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")


def to_float(value: Any) -> float:
    """KSM's ``toFloat64`` (without ``nilIsZero``, which the caller applies)."""
    if value is True:
        return 1.0
    if value is False:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _string_to_float(value)
    if value is None:
        raise ValueConversionError("expected number but found nil value", reason="missing")
    raise ValueConversionError(f"expected number but was {label_text(value)}", reason="conversion")


def _string_to_float(text: str) -> float:
    lowered = text.lower()
    if lowered in _ONE:
        return 1.0
    if lowered in _ZERO:
        return 0.0
    stamp = _RFC3339.fullmatch(text)
    if stamp is not None:
        return float(_unix_seconds(stamp))
    if text == text.strip():  # resource.ParseQuantity takes no surrounding spaces
        try:
            return float(parse_quantity(text))
        except ValueConversionError:
            pass
    if _PERCENT.fullmatch(text):
        return float(text[:-1]) / 100
    if _GO_FLOAT.fullmatch(text):
        return float(text.lower().replace("infinity", "inf"))
    if _GO_HEX_FLOAT.fullmatch(text):
        return float.fromhex(text)
    raise ValueConversionError(f"strconv.ParseFloat: parsing {text!r}: invalid syntax", reason="conversion")


def _unix_seconds(match: re.Match[str]) -> int:
    """Go's ``Time.Unix()`` of an RFC3339 match: whole seconds, the zone offset applied."""
    import calendar

    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        raise ValueConversionError(f"not an RFC3339 timestamp: {match.group(0)!r}", reason="datetime")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = match.group(7)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def format_sample(value: float) -> str:
    """KSM's ``writeFloat``: ``1``, ``0``, ``-1``, ``NaN``, ``+Inf``, ``-Inf``, else Go's ``'g'``."""
    if value != value:
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return go_g(value)


def go_g(value: float) -> str:
    """``strconv.FormatFloat(value, 'g', -1, 64)`` (finite values)."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # digits before the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:  # Go's shortest 'g' switches to an exponent at 6
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def label_text(value: Any) -> str:
    """Go's ``fmt.Sprintf("%v", v)`` of a decoded JSON value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return go_g(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{label_text(k)}:{label_text(value[k])}"
                                 for k in sorted(value, key=str)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(label_text(item) for item in value) + "]"
    return str(value)
