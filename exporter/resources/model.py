"""How kmodules/resource-metrics counts the resources of an object: roles, pods, quantities.

An object runs pods in *roles* (the database containers, a shard, a router, the exporter
sidecar, init containers). Each role is a ``PodInfo``: the resources of one pod of that role
and how many such pods run. A calculator (``exporter.resources.calculators``) turns an object
into ``{role: PodInfo}`` for limits or for requests; this module aggregates them as upstream's
``ResourceCalculatorFuncs`` does:

- per role, the per-pod quantity is rounded up to millis and multiplied by the replicas
  (upstream ``MulResourceList``);
- ``app_*`` sums the roles that run the application (``app=True``);
- ``total_*`` is, per resource, the larger of the sum over all runtime roles (application,
  sidecars, exporter) and the sum over init roles;
- a container's limit for a resource falls back to its request (upstream ``ResourceLimits``);
  requests never fall back to limits; storage comes from the PVC spec the same way.

Quantities are exact ``Fraction``s (Kubernetes quantities parsed by ``exporter.values``).
Pure functions only; a malformed quantity raises ``ValueConversionError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from exporter.values import quantity_of

__all__ = [
    "RESOURCES",
    "Amounts",
    "PodInfo",
    "Reader",
    "app_total",
    "container_amounts",
    "get",
    "limits",
    "replicas_of",
    "requests",
    "runtime_total",
]

RESOURCES = ("cpu", "memory", "storage")
Amounts = dict[str, Fraction]
# Reads one ResourceRequirements-like mapping ({limits, requests}) into amounts.
Reader = Callable[[Any], Amounts]


@dataclass(frozen=True, slots=True)
class PodInfo:
    """One role: the resources of one of its pods, how many pods, and what the role is."""

    amounts: Amounts
    replicas: int
    app: bool = True  # counted by app_* (the application), else runtime-only (exporter, sidecar)
    init: bool = False  # init containers: compared with the runtime sum, never added to it
    extra: Mapping[str, Any] = field(default_factory=dict)


def get(obj: Any, *keys: str | int) -> Any:
    """``obj[k1][k2]...`` or ``None`` when a step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(obj, list) or not -len(obj) <= key < len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[key] if isinstance(key, int) else obj.get(key)
    return obj


def replicas_of(node: Any, key: str = "replicas", *, default: int = 1) -> int:
    value = get(node, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def _amount(mapping: Any, resource: str) -> Fraction | None:
    value = get(mapping, resource)
    if value is None:
        return None
    return quantity_of(value)


def _first_amounts(requirements: Any, *sections: str) -> Amounts:
    """Per resource, the amount of the first of ``sections`` (``limits``, ``requests``) that sets it."""
    result: Amounts = {}
    for resource in RESOURCES:
        for section in sections:
            value = _amount(get(requirements, section), resource)
            if value is not None:
                result[resource] = value
                break
    return result


def limits(requirements: Any) -> Amounts:
    """Limits, each falling back to the request when the limit is not set (upstream's rule)."""
    return _first_amounts(requirements, "limits", "requests")


def requests(requirements: Any) -> Amounts:
    """Requests, each falling back to the limit when the request is not set: the API server
    defaults an omitted request to its limit (core/v1 ResourceRequirements), so an object read
    before defaulting (a template, a file) means the same as the admitted one."""
    return _first_amounts(requirements, "requests", "limits")


def add(*lists: Amounts) -> Amounts:
    result: Amounts = {}
    for amounts in lists:
        for resource, value in amounts.items():
            result[resource] = result.get(resource, Fraction(0)) + value
    return result


def maximum(*lists: Amounts) -> Amounts:
    result: Amounts = {}
    for amounts in lists:
        for resource, value in amounts.items():
            result[resource] = max(result.get(resource, value), value)
    return result


def container_amounts(containers: Any, read: Reader, *, combine: Callable[..., Amounts] = add) -> Amounts:
    """Sum (or ``maximum``) of the resources of a list of containers."""
    if not isinstance(containers, list):
        return {}
    return combine(*[read(get(c, "resources")) for c in containers if isinstance(c, dict)])


def _scaled(info: PodInfo) -> Amounts:
    """Upstream ``MulResourceList``: per-pod quantity rounded up to millis, times the replicas."""
    return {resource: Fraction(math.ceil(value * 1000), 1000) * info.replicas
            for resource, value in info.amounts.items()}


def app_total(roles: Iterable[PodInfo]) -> Amounts:
    return add(*[_scaled(info) for info in roles if info.app and not info.init])


def runtime_total(roles: Iterable[PodInfo]) -> Amounts:
    infos = list(roles)
    running = add(*[_scaled(info) for info in infos if not info.init])
    init = add(*[_scaled(info) for info in infos if info.init])
    return maximum(running, init)
