"""Functions callable from ``valueFromExpression`` (Panopticon's EvalFuncs), as ``FunctionSpec``s.

Scalar helpers: ``int``/``toInt`` (booleans -> 1/0, numbers truncated toward zero),
``percentage(v, total, roundUp=false)``, ``cpu_cores(q)``, ``bytes(q)``, ``unix(t)``/``toUnix``,
``toSecond(duration)``. Object helpers, given the whole object (a ``valuePath: .`` param):
``resource_replicas``, ``total_resource_requests|limits(obj, type)`` and
``app_resource_requests|limits(obj, type)`` with ``type`` in ``cpu`` (cores), ``memory`` and
``storage`` (bytes). Pod templates are found the way docs/metrics-configuration.md describes:
Pod ``spec``, ``spec.template.spec`` (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
ReplicationController), ``spec.jobTemplate.spec.template.spec`` (CronJob),
``spec.podTemplate.spec`` (KubeDB-style custom resources), plus KubeDB MongoDB's
``spec.shardTopology`` components. Every function is pure; failures raise ``EvaluationError``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from exporter.expressions import EvaluationError, FunctionSpec, describe, truth
from exporter.paths import MISSING
from exporter.values import ValueConversionError, parse_duration, parse_quantity, parse_rfc3339, quantity_of

__all__ = ["FUNCTIONS"]

RESOURCE_TYPES = ("cpu", "memory", "storage")


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
    if type(value) is str and type(total) is int and value[:-1].isdigit() and value[-1:] == "%":
        amount = int(value[:-1]) * total  # the common case, in exact integer arithmetic
        if round_up is True or round_up == "true":
            return float(-(-amount // 100))
        if round_up is False or round_up == "false":
            return float(amount // 100)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = Fraction(value.strip()[:-1].strip())
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
    if isinstance(value, bool) or value is MISSING or value is None:
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
    """Bytes, rounded up to an integer as Kubernetes' ``Value()`` does."""
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


# --- object helpers ----------------------------------------------------------------------------

def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _count(value: Any, default: int) -> int:
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, (int, float)):
        return int(value)
    return default


class _Component:
    """One group of identical pods: how many, their pod spec, and per-pod storage."""

    __slots__ = ("pod_spec", "pods", "storage")

    def __init__(self, *, pods: int, pod_spec: Any, storage: Iterable[Any] = ()) -> None:
        self.pods = pods
        self.pod_spec = pod_spec if isinstance(pod_spec, dict) else {}
        self.storage = [s for s in storage if isinstance(s, dict)]


def _workload(obj: Any) -> list[_Component]:
    if not isinstance(obj, dict):
        raise _fail(f"resource functions need the whole object (valuePath: .), got {describe(obj)}", obj)
    kind = obj.get("kind")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    if kind == "Pod":
        return [_Component(pods=1, pod_spec=spec)]
    if kind == "CronJob":
        job = _get(spec, "jobTemplate", "spec") or {}
        return [_Component(pods=_count(_get(job, "parallelism"), 1), pod_spec=_get(job, "template", "spec"))]
    if kind == "Job":
        return [_Component(pods=_count(spec.get("parallelism"), 1), pod_spec=_get(spec, "template", "spec"))]
    if kind == "DaemonSet":
        pods = _count(_get(obj, "status", "desiredNumberScheduled"), 0)
        return [_Component(pods=pods, pod_spec=_get(spec, "template", "spec"))]
    topology = spec.get("shardTopology")
    if kind == "MongoDB" and isinstance(topology, dict):
        return _mongodb_shards(topology)
    storage = _storage_requests(spec)
    if isinstance(spec.get("template"), dict):
        return [_Component(pods=_count(spec.get("replicas"), 1), pod_spec=_get(spec, "template", "spec"),
                           storage=storage)]
    if isinstance(spec.get("podTemplate"), dict):
        return [_Component(pods=_count(spec.get("replicas"), 1), pod_spec=_get(spec, "podTemplate", "spec"),
                           storage=storage)]
    raise _fail(f"resource functions do not know how to find the pods of kind {kind!r} "
                "(no spec.template or spec.podTemplate)")


def _storage_requests(spec: Mapping[str, Any]) -> list[Any]:
    """Per-pod storage claims: StatefulSet volumeClaimTemplates, or a KubeDB-style spec.storage."""
    claims = [_get(t, "spec", "resources") for t in spec.get("volumeClaimTemplates") or ()]
    if isinstance(spec.get("storage"), dict):
        claims.append(_get(spec, "storage", "resources"))
    return [c for c in claims if isinstance(c, dict)]


def _mongodb_shards(topology: Mapping[str, Any]) -> list[_Component]:
    components: list[_Component] = []
    shard = topology.get("shard")
    if isinstance(shard, dict):
        pods = _count(shard.get("shards"), 1) * _count(shard.get("replicas"), 1)
        components.append(_Component(pods=pods, pod_spec=_get(shard, "podTemplate", "spec"),
                                     storage=_storage_requests(shard)))
    for name in ("configServer", "mongos"):
        part = topology.get(name)
        if isinstance(part, dict):
            components.append(_Component(pods=_count(part.get("replicas"), 1),
                                         pod_spec=_get(part, "podTemplate", "spec"),
                                         storage=_storage_requests(part)))
    return components


_NANO = 10**9


@functools.lru_cache(maxsize=4096)
def _nanos_of_text(text: str) -> int:
    return math.ceil(parse_quantity(text) * _NANO)


def _nanos(value: Any) -> int:
    """A quantity in integer nano-units, rounded up (Kubernetes keeps nothing finer)."""
    if type(value) is str:
        return _nanos_of_text(value)
    return math.ceil(quantity_of(value) * _NANO)


def _container_amount(container: Any, field: str, resource: str) -> int:
    resources = _get(container, "resources") or {}
    amounts = _get(resources, field)
    value = amounts.get(resource) if isinstance(amounts, dict) else None
    if value is None and field == "requests":  # Kubernetes defaults requests to limits
        limits = _get(resources, "limits")
        value = limits.get(resource) if isinstance(limits, dict) else None
    if value is None:
        return 0
    try:
        return _nanos(value)
    except ValueConversionError:
        raise _fail(f"container resources.{field}.{resource} is not a quantity: {describe(value)}") from None


def _containers(pod_spec: Mapping[str, Any], key: str) -> list[Any]:
    found = pod_spec.get(key)
    if isinstance(found, list):
        return [c for c in found if isinstance(c, dict)]
    return []


def _pod_amount(pod_spec: Mapping[str, Any], field: str, resource: str, *, app_only: bool,
                annotations: Mapping[str, Any]) -> int:
    containers = _containers(pod_spec, "containers")
    if not containers and isinstance(pod_spec.get("resources"), dict):
        containers = [{"resources": pod_spec["resources"]}]  # KubeDB v1alpha2 podTemplate.spec.resources
    if app_only:
        chosen = annotations.get("kubectl.kubernetes.io/default-container")
        named = [c for c in containers if c.get("name") == chosen]
        return _container_amount((named or containers[:1] or [{}])[0], field, resource)
    inits = _containers(pod_spec, "initContainers")
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    regular_inits = [c for c in inits if c.get("restartPolicy") != "Always"]
    running = sum(_container_amount(c, field, resource) for c in containers + sidecars)
    init_peak = max((_container_amount(c, field, resource) for c in regular_inits), default=0)
    return max(running, init_peak)


def _claim_amount(claim: Mapping[str, Any], field: str) -> int:
    amounts = claim.get(field)
    value = amounts.get("storage") if isinstance(amounts, dict) else None
    if value is None and field == "limits":  # claims rarely set limits: use the request
        requests = claim.get("requests")
        value = requests.get("storage") if isinstance(requests, dict) else None
    if value is None:
        return 0
    try:
        return _nanos(value)
    except ValueConversionError:
        raise _fail(f"storage {field} is not a quantity: {describe(value)}") from None


def _total(obj: Any, resource: Any, *, field: str, app_only: bool, function: str) -> float:
    if resource not in RESOURCE_TYPES:
        raise _fail(f"{function}(): resource type must be one of cpu, memory, storage; "
                    f"got {describe(resource)}", resource)
    total = 0
    for component in _workload(obj):
        if resource == "storage":
            per_pod = sum(_claim_amount(c, field) for c in component.storage)
        else:
            annotations = _get(obj, "spec", "template", "metadata", "annotations") or \
                _get(obj, "spec", "podTemplate", "metadata", "annotations") or {}
            per_pod = _pod_amount(component.pod_spec, field, resource, app_only=app_only,
                                  annotations=annotations if isinstance(annotations, dict) else {})
        total += per_pod * component.pods
    if resource == "cpu":  # cores, rounded up to millicores
        return -(-total // 10**6) / 1000
    return float(-(-total // _NANO))  # bytes, rounded up


def resource_replicas(obj: Any) -> float:
    return float(sum(component.pods for component in _workload(obj)))


def _resource_function(field: str, *, app_only: bool, name: str) -> FunctionSpec:
    def impl(obj: Any, resource: Any) -> float:
        return _total(obj, resource, field=field, app_only=app_only, function=name)

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
        FunctionSpec("resource_replicas", 1, 1, resource_replicas),
        _resource_function("requests", app_only=False, name="total_resource_requests"),
        _resource_function("limits", app_only=False, name="total_resource_limits"),
        _resource_function("requests", app_only=True, name="app_resource_requests"),
        _resource_function("limits", app_only=True, name="app_resource_limits"),
    )
}
