"""Functions callable from ``valueFromExpression`` (Panopticon's EvalFuncs), as ``FunctionSpec``s.

Scalar helpers: ``int``/``toInt`` (booleans -> 1/0, numbers truncated toward zero),
``percentage(v, total, roundUp=false)``, ``cpu_cores(q)``, ``bytes(q)`` (Kubernetes quantities
and human sizes such as ``12.222 MiB``), ``unix(t)``/``toUnix``, ``toSecond(duration)``. Object
helpers, given the whole object (a ``valuePath: .`` param), are kmodules/resource-metrics'
(``exporter.resources``): ``resource_replicas``, ``resource_mode``, ``resource_uses_tls``,
``total_resource_requests|limits(obj, type)`` and ``app_resource_requests|limits(obj, type)``.
String and collection helpers (an extension, docs/metrics-configuration.md "Extensions"):
``len(x)`` (array elements, map entries, string characters), ``lower(s)``, ``upper(s)``,
``contains(s, part)`` (also: an array holding an element equal to ``part``),
``startsWith(s, prefix)``, ``endsWith(s, suffix)``, ``matches(s, regex)`` (searched anywhere, as
``=~``) and ``default(x, fallback)`` (``fallback`` when ``x`` is missing or null).
Every function is pure; failures raise ``EvaluationError``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache, partial
from typing import Any

from exporter import resources
from exporter.expressions import EvaluationError, FunctionSpec, describe, equals, truth
from exporter.paths import MISSING
from exporter.values import (
    ValueConversionError,
    exact_decimal,
    parse_duration,
    parse_rfc3339,
    parse_size,
    quantity_of,
)

__all__ = ["FUNCTIONS"]



def _fail(message: str, value: Any = None) -> EvaluationError:
    return EvaluationError(message, reason="missing" if value is MISSING else "expression")


# --- scalar helpers ----------------------------------------------------------------------------

def to_int(value: Any) -> int:
    if value is True:
        return 1
    if value is False:
        return 0
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise _fail(f"int() of {describe(value)}")
        return int(value)
    if isinstance(value, str):
        if value in ("true", "false"):
            return 1 if value == "true" else 0
        try:
            return int(float(value))
        except (ValueError, OverflowError):
            pass
    raise _fail(f"int() needs a boolean or a number, got {describe(value)}", value)


def percentage(value: Any, total: Any = MISSING, round_up: Any = False) -> float:
    """``"25%"`` of ``total`` (rounded down, or up when ``round_up``); a plain integer as is."""
    if (type(value) is str and type(total) is int and len(value) <= 20 and value[:-1].isdigit()
            and value[-1:] == "%"):
        amount = int(value[:-1]) * total  # the common case, in exact integer arithmetic
        if round_up is True or round_up == "true":
            return float(-(-amount // 100))
        if round_up is False or round_up == "false":
            return float(amount // 100)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = exact_decimal(value.strip()[:-1].strip())
        except (ValueError, ZeroDivisionError):
            raise _fail(f"percentage(): malformed percentage {value!r}") from None
        if total is MISSING or total is None:
            raise _fail("percentage(): total is missing", MISSING)
        try:
            whole = quantity_of(total)
        except ValueConversionError:
            raise _fail(f"percentage(): total is not a number: {describe(total)}") from None
        share = percent * whole / 100
        rounder = math.ceil if truth(round_up, "percentage() roundUp") else math.floor
        return float(rounder(share))
    if isinstance(value, bool) or value is MISSING or value is None or isinstance(value, str):
        # intstr: a string must be a percentage ("25%"); "90" is an error, as upstream
        raise _fail(f"percentage() needs an integer or a percentage, got {describe(value)}", value)
    try:
        return float(quantity_of(value))
    except ValueConversionError:
        raise _fail(f"percentage() needs an integer or a percentage, got {describe(value)}") from None


def _quantity(value: Any, function: str) -> Fraction:
    try:
        return quantity_of(value)
    except ValueConversionError:
        raise _fail(f"{function}() needs a quantity, got {describe(value)}", value) from None


def cpu_cores(value: Any) -> float:
    """Cores, rounded up to whole millicores as Kubernetes' ``MilliValue()`` does."""
    return math.ceil(_quantity(value, "cpu_cores") * 1000) / 1000


def to_bytes(value: Any) -> float:
    """Bytes, rounded up to an integer as Kubernetes' ``Value()`` does; accepts Kubernetes
    quantities and the human sizes KubeStash writes (``"12.222 MiB"``, ``"1.5 GB"``, ``"512 B"``)."""
    if isinstance(value, str):
        try:
            return float(math.ceil(parse_size(value)))
        except ValueConversionError:
            raise _fail(f"bytes() needs a quantity or a size, got {describe(value)}") from None
    return float(math.ceil(_quantity(value, "bytes")))


def unix(value: Any) -> float:
    if value is MISSING or value is None:
        raise _fail("unix() of a missing value ('nil')", MISSING)
    try:
        return parse_rfc3339(value)
    except ValueConversionError as exc:
        raise _fail(f"unix(): {exc}", value) from None


def to_second(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value is MISSING or value is None:
        raise _fail("toSecond() of a missing value ('nil')", MISSING)
    try:
        return parse_duration(value)
    except ValueConversionError as exc:
        raise _fail(f"toSecond(): {exc}", value) from None


# --- string and collection helpers (extension) ------------------------------------------------

def length(value: Any) -> float:
    if isinstance(value, (list, dict, str)):
        return float(len(value))
    raise _fail(f"len() needs an array, a map or a string, got {describe(value)}", value)


def _text(value: Any, function: str) -> str:
    if isinstance(value, str):
        return value
    raise _fail(f"{function}() needs a string, got {describe(value)}", value)


def lower(value: Any) -> str:
    return _text(value, "lower").lower()


def upper(value: Any) -> str:
    return _text(value, "upper").upper()


def contains(value: Any, part: Any) -> bool:
    if isinstance(value, list):
        return any(equals(element, part) for element in value)
    return _text(part, "contains") in _text(value, "contains")


def starts_with(value: Any, prefix: Any) -> bool:
    return _text(value, "startsWith").startswith(_text(prefix, "startsWith"))


def ends_with(value: Any, suffix: Any) -> bool:
    return _text(value, "endsWith").endswith(_text(suffix, "endsWith"))


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def matches(value: Any, pattern: Any) -> bool:
    try:
        compiled = _pattern(_text(pattern, "matches"))
    except re.error as exc:
        raise _fail(f"matches(): cannot compile regexp {pattern!r}: {exc}") from None
    return compiled.search(_text(value, "matches")) is not None


def default(value: Any, fallback: Any) -> Any:
    return fallback if value is MISSING or value is None else value


# --- object helpers (exporter.resources) ------------------------------------------------------

def _resource_function(name: str, impl: Any) -> FunctionSpec:
    return FunctionSpec(name, 2, 2, impl)


FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        FunctionSpec("int", 1, 1, to_int),
        FunctionSpec("toInt", 1, 1, to_int),
        FunctionSpec("percentage", 1, 3, percentage),
        FunctionSpec("cpu_cores", 1, 1, cpu_cores),
        FunctionSpec("bytes", 1, 1, to_bytes),
        FunctionSpec("unix", 1, 1, unix),
        FunctionSpec("toUnix", 1, 1, unix),
        FunctionSpec("toSecond", 1, 1, to_second),
        FunctionSpec("len", 1, 1, length),
        FunctionSpec("lower", 1, 1, lower),
        FunctionSpec("upper", 1, 1, upper),
        FunctionSpec("contains", 2, 2, contains),
        FunctionSpec("startsWith", 2, 2, starts_with),
        FunctionSpec("endsWith", 2, 2, ends_with),
        FunctionSpec("matches", 2, 2, matches),
        FunctionSpec("default", 2, 2, default),
        FunctionSpec("resource_replicas", 1, 1, resources.resource_replicas),
        FunctionSpec("resource_mode", 1, 1, resources.resource_mode),
        FunctionSpec("resource_uses_tls", 1, 1, resources.resource_uses_tls),
        _resource_function("total_resource_requests", partial(resources.total_resources, field="requests")),
        _resource_function("total_resource_limits", partial(resources.total_resources, field="limits")),
        _resource_function("app_resource_requests", partial(resources.app_resources, field="requests")),
        _resource_function("app_resource_limits", partial(resources.app_resources, field="limits")),
    )
}
