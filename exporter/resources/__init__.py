"""Resource functions of kmodules/resource-metrics, as expression functions.

``resource_replicas(obj)``, ``resource_mode(obj)``, ``resource_uses_tls(obj)``,
``total_resource_limits|requests(obj, type)`` and ``app_resource_limits|requests(obj, type)``
with ``type`` one of ``cpu`` (cores, upstream's ``MilliValue()/1000``) and ``memory`` /
``storage`` (bytes, ``Value()``: rounded up). The per-kind layouts are one table,
``exporter.resources.calculators.CALCULATORS``; the aggregation rules are in
``exporter.resources.model``. Failures raise ``EvaluationError`` (reason ``missing`` when the
object itself is missing).

A configuration usually asks for several totals of one object (kubedb's MongoDB one: requests
and limits of cpu, memory and storage, six metrics), and every total walks all of the object's
roles. ``CompiledPlan.render`` of a plan that calls these functions therefore brackets each
object with ``begin_object`` / ``end_object``: in between, the totals of that object (per
function and limits/requests) are computed once and reused; outside, nothing is kept. Only the
object being rendered is memoized, by identity, for the duration of its render, so a caller that
changes an object between two renders always gets fresh totals. One memo per process: renders
run one at a time on the event loop (nothing renders on another thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from exporter.expressions import EvaluationError, describe
from exporter.paths import MISSING
from exporter.resources.calculators import CALCULATORS, Calculator, lookup
from exporter.resources.model import (
    RESOURCES,
    Amounts,
    PodInfo,
    Reader,
    app_total,
    limits,
    requests,
    runtime_total,
)
from exporter.values import ValueConversionError

__all__ = [
    "CALCULATORS",
    "OBJECT_TOTAL_FUNCTIONS",
    "app_resources",
    "begin_object",
    "end_object",
    "resource_mode",
    "resource_replicas",
    "resource_uses_tls",
    "total_resources",
]


def _calculator(obj: Any, function: str) -> Calculator:
    if not isinstance(obj, dict):
        raise EvaluationError(f"{function}() needs the whole object (a param with valuePath: .), "
                              f"got {describe(obj)}",
                              reason="missing" if obj is MISSING else "expression")
    calculator = lookup(obj)
    if calculator is None:
        raise EvaluationError(f"{function}(): no resource calculator for {obj.get('apiVersion')!r} "
                              f"kind {obj.get('kind')!r}")
    return calculator


def _roles(obj: Any, read: Reader, function: str) -> list[PodInfo]:
    calculator = _calculator(obj, function)
    try:
        return calculator.pods(obj, read)
    except ValueConversionError as exc:
        raise EvaluationError(f"{function}(): {exc}") from None


def _no_amounts(requirements: Any) -> dict[str, Any]:
    return {}


def resource_replicas(obj: Any) -> float:
    calculator = _calculator(obj, "resource_replicas")
    if calculator.replicas is not None:
        return float(calculator.replicas(obj))
    pods = calculator.pods(obj, _no_amounts)
    return float(sum(info.replicas for info in pods if info.app and not info.init))


def resource_mode(obj: Any) -> str:
    return _calculator(obj, "resource_mode").mode(obj)


def resource_uses_tls(obj: Any) -> bool:
    return _calculator(obj, "resource_uses_tls").uses_tls(obj)


def _value(amounts: dict[str, Any], resource: Any, function: str) -> float:
    if resource not in RESOURCES:
        raise EvaluationError(f"{function}(): resource type must be one of cpu, memory, storage; "
                              f"got {describe(resource)}",
                              reason="missing" if resource is MISSING else "expression")
    value: Any = amounts.get(resource, 0)
    if resource == "cpu":  # MilliValue() / 1000
        return float(math.ceil(value * 1000) / 1000)
    return float(math.ceil(value))  # Value()


# The expression functions whose totals are memoized per rendered object (see the docstring).
OBJECT_TOTAL_FUNCTIONS = ("total_resource_requests", "total_resource_limits",
                          "app_resource_requests", "app_resource_limits")


class _ObjectMemo:
    __slots__ = ("obj", "totals")

    def __init__(self) -> None:
        self.obj: Any = None  # the object being rendered (begin_object .. end_object), else None
        self.totals: dict[str, Amounts] = {}  # function name -> amounts


_MEMO = _ObjectMemo()


def begin_object(obj: Any) -> None:
    """Totals of ``obj`` are computed once until ``end_object`` (``CompiledPlan.render``)."""
    _MEMO.obj = obj
    _MEMO.totals.clear()


def end_object() -> None:
    _MEMO.obj = None
    _MEMO.totals.clear()


def _totals(obj: Any, function: str, field: str, total: Callable[[list[PodInfo]], Amounts]) -> Amounts:
    memo = _MEMO
    remember = obj is memo.obj and obj is not None
    if remember:
        amounts = memo.totals.get(function)
        if amounts is not None:
            return amounts
    # a failure raises here, every time, as without the memo
    amounts = total(_roles(obj, limits if field == "limits" else requests, function))
    if remember:
        memo.totals[function] = amounts
    return amounts


def total_resources(obj: Any, resource: Any, *, field: str) -> float:
    function = f"total_resource_{field}"
    return _value(_totals(obj, function, field, runtime_total), resource, function)


def app_resources(obj: Any, resource: Any, *, field: str) -> float:
    function = f"app_resource_{field}"
    return _value(_totals(obj, function, field, app_total), resource, function)
