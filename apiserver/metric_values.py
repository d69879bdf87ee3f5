"""JSON shapes of the custom and external metrics APIs (k8s.io/metrics types). Pure.

- ``custom.metrics.k8s.io/v1beta2`` ``MetricValueList``: items with ``describedObject`` (an
  ``ObjectReference``), ``metric: {name, selector}``, ``timestamp``, ``windowSeconds``, ``value``;
- ``custom.metrics.k8s.io/v1beta1`` (older clients): the same with ``metricName``, ``selector``
  and ``window`` at the top of each item;
- ``external.metrics.k8s.io/v1beta1`` ``ExternalMetricValueList``: items with ``metricName``,
  ``metricLabels`` (the series' labels), ``timestamp``, ``window``, ``value``.

``value`` is a ``resource.Quantity`` string (``apiserver.quantity``). ``timestamp`` is when the
object was last rendered (the value cannot be newer). The window is ``0``: a state metric is the
object's value at that moment, not an aggregate over an interval.

Discovery lists one ``APIResource`` per metric as prometheus-adapter does: name
``<resource>.<group>/<family>`` (``pods/<family>``, ``namespaces/<family>`` for the core group),
``namespaced`` as the target kind, kind ``MetricValueList``, verb ``get``; external metrics are
``<family>``, namespaced, kind ``ExternalMetricValueList``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from apiserver.metric_lookup import MetricInfo, Point
from apiserver.quantity import format_quantity
from apiserver.selectors import LabelSelector

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_GROUP = "external.metrics.k8s.io"
WINDOW_SECONDS = 0
_OPERATORS = {"in": "In", "=": "In", "notin": "NotIn", "!=": "NotIn", "exists": "Exists", "!": "DoesNotExist"}


def rfc3339(unix: float) -> str:
    return _rfc3339_second(int(unix))


@functools.lru_cache(maxsize=1024)
def _rfc3339_second(second: int) -> str:  # most values of one answer share a handful of seconds
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def label_selector_object(selector: LabelSelector) -> dict[str, Any] | None:
    """A ``metav1.LabelSelector`` for a parsed selector (``None`` when it selects everything)."""
    if not selector.requirements:
        return None
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for req in selector.requirements:
        if req.op == "=" and len(req.values) == 1 and req.key not in match_labels:
            match_labels[req.key] = next(iter(req.values))
            continue
        expression: dict[str, Any] = {"key": req.key, "operator": _OPERATORS[req.op]}
        if req.op not in ("exists", "!"):
            expression["values"] = sorted(req.values)
        expressions.append(expression)
    out: dict[str, Any] = {}
    if match_labels:
        out["matchLabels"] = match_labels
    if expressions:
        out["matchExpressions"] = expressions
    return out


def described_object(point: Point) -> dict[str, Any]:
    target = point.target
    ref: dict[str, Any] = {"kind": target.kind}
    if target.namespace:
        ref["namespace"] = target.namespace
    ref["name"] = target.name
    ref["apiVersion"] = target.api_version
    return ref


def custom_value(point: Point, selector: LabelSelector, *, version: str) -> dict[str, Any]:
    """One ``MetricValue`` of ``custom.metrics.k8s.io/<version>`` (``v1beta2`` or ``v1beta1``)."""
    selector_object = label_selector_object(selector)
    if version == "v1beta1":
        return {
            "describedObject": described_object(point),
            "metricName": point.family,
            "timestamp": rfc3339(point.rendered),
            "window": WINDOW_SECONDS,
            "value": format_quantity(point.value),
            "selector": selector_object,
        }
    metric: dict[str, Any] = {"name": point.family}
    if selector_object is not None:
        metric["selector"] = selector_object
    return {
        "describedObject": described_object(point),
        "metric": metric,
        "timestamp": rfc3339(point.rendered),
        "windowSeconds": WINDOW_SECONDS,
        "value": format_quantity(point.value),
    }


def metric_value_list(
    points: Iterable[Point], selector: LabelSelector, *, version: str
) -> dict[str, Any]:
    return {
        "kind": "MetricValueList",
        "apiVersion": f"{CUSTOM_GROUP}/{version}",
        "metadata": {},
        "items": [custom_value(p, selector, version=version) for p in points],
    }


def external_value(point: Point) -> dict[str, Any]:
    return {
        "metricName": point.family,
        "metricLabels": dict(point.labels),
        "timestamp": rfc3339(point.rendered),
        "window": WINDOW_SECONDS,
        "value": format_quantity(point.value),
    }


def external_value_list(points: Iterable[Point]) -> dict[str, Any]:
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": f"{EXTERNAL_GROUP}/v1beta1",
        "metadata": {},
        "items": [external_value(p) for p in points],
    }


def custom_discovery(infos: Iterable[MetricInfo]) -> list[dict[str, Any]]:
    out = [
        {
            "name": f"{info.group_resource}/{info.name}",
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": "MetricValueList",
            "verbs": ["get"],
        }
        for info in infos
    ]
    out.sort(key=lambda r: str(r["name"]))
    return out


def external_discovery(infos: Iterable[MetricInfo]) -> list[dict[str, Any]]:
    """Families of namespaced kinds only: external metrics are always asked for in a namespace."""
    names: Sequence[str] = sorted(info.name for info in infos if info.namespaced)
    return [
        {
            "name": name,
            "singularName": "",
            "namespaced": True,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }
        for name in names
    ]
