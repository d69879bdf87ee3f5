"""JSON shapes of the served resources: objects, lists, Tables, watch events. Pure.

``MetricFamily`` (cluster-scoped, one per family) and ``ObjectMetrics`` /
``ClusterObjectMetrics`` (one per target object) as Kubernetes objects with ``metadata``
(name, namespace, uid, resourceVersion, creationTimestamp, labels), their ``<Kind>List``, and
the ``meta.k8s.io/v1`` ``Table`` kubectl prints (apimachinery ``pkg/apis/meta/v1/types.go``;
docs/design.md). Series values are strings because Prometheus values include ``NaN`` and
``±Inf``, which JSON numbers cannot carry.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from apiserver.views import FamilySnapshot, ObjectSnapshot
from exporter.types import Series

GROUP = "metrics.panopticon.io"
VERSION = "v1alpha1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
LABEL_PREFIX = "metrics.panopticon.io/"
_UID_NAMESPACE = uuid.UUID("6b1c3f2e-4d8a-4e2b-9a3f-0c5d7e9f1a2b")

KINDS = {
    "metricfamilies": "MetricFamily",
    "objectmetrics": "ObjectMetrics",
    "clusterobjectmetrics": "ClusterObjectMetrics",
}

SeriesParser = Callable[[bytes], list[Series]]


def timestamp(unix: float | None) -> str | None:
    if unix is None:
        return None
    return dt.datetime.fromtimestamp(int(unix), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label_value(value: str) -> str | None:
    ok = len(value) <= 63 and all(c.isalnum() or c in "-_." for c in value)
    ok = ok and (not value or (value[0].isalnum() and value[-1].isalnum()))
    return value if ok else None


def _labels(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for key, value in pairs:
        valid = _label_value(value)
        if valid is not None:
            out[LABEL_PREFIX + key] = valid
    return out


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def family_labels(snap: FamilySnapshot) -> dict[str, str]:
    header = snap.info.header
    return _labels(
        [
            ("configuration", header.configuration),
            ("target-group", header.target.group),
            ("target-kind", header.target.kind),
            ("type", header.type),
        ]
    )


def object_labels(snap: ObjectSnapshot) -> dict[str, str]:
    return _labels(
        [
            ("target-group", snap.target.group),
            ("target-kind", snap.target.kind),
            ("target-resource", snap.resource),
        ]
    )


def _metadata(
    *, name: str, namespace: str, uid_seed: str, rv: int, created: float, labels: dict[str, str]
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["uid"] = str(uuid.uuid5(_UID_NAMESPACE, uid_seed))
    meta["resourceVersion"] = str(rv)
    meta["creationTimestamp"] = timestamp(created)
    meta["labels"] = labels
    return meta


def metric_family(snap: FamilySnapshot) -> dict[str, Any]:
    info = snap.info
    header = info.header
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "MetricFamily",
        "metadata": _metadata(
            name=header.name,
            namespace="",
            uid_seed="family/" + header.name,
            rv=snap.rv,
            created=snap.created,
            labels=family_labels(snap),
        ),
        "type": header.type,
        "help": header.help,
        "configuration": header.configuration,
        "target": {"apiVersion": header.target.api_version, "kind": header.target.kind},
        "series": info.series,
        "objects": info.objects,
        "lastUpdateTime": timestamp(info.updated),
    }


def object_metrics(snap: ObjectSnapshot, parse: SeriesParser) -> dict[str, Any]:
    series: list[dict[str, Any]] = []
    for entry in snap.entries:
        for chunk in entry.chunks:
            if chunk:
                series.extend(
                    {"name": s.name, "labels": dict(s.labels), "value": format_value(s.value)}
                    for s in parse(chunk)
                )
    first = snap.entries[0] if snap.entries else None
    target: dict[str, Any] = {
        "apiVersion": snap.target.api_version,
        "kind": snap.target.kind,
        "resource": snap.resource,
        "name": snap.name,
    }
    if snap.namespace:
        target["namespace"] = snap.namespace
    if first is not None and first.uid != f"{snap.namespace}/{snap.name}":
        target["uid"] = first.uid
    if first is not None and first.resource_version:
        target["resourceVersion"] = first.resource_version
    return {
        "apiVersion": GROUP_VERSION,
        "kind": KINDS[snap.resource_name],
        "metadata": _metadata(
            name=snap.api_name,
            namespace=snap.namespace,
            uid_seed="object/" + snap.uid,
            rv=snap.rv,
            created=snap.created,
            labels=object_labels(snap),
        ),
        "target": target,
        "configurations": [entry.configuration for entry in snap.entries],
        "series": series,
    }


def list_object(
    resource: str,
    items: list[dict[str, Any]],
    *,
    rv: int,
    continue_token: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"apiVersion": GROUP_VERSION, "kind": KINDS[resource] + "List", "metadata": meta, "items": items}


# ---------------------------------------------------------------------- Table


def _column(name: str, type_: str, description: str, *, fmt: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


FAMILY_COLUMNS = [
    _column("Name", "string", "Name of the metric family", fmt="name"),
    _column("Type", "string", "Prometheus metric type"),
    _column("Series", "integer", "Number of series currently exported"),
    _column("Objects", "integer", "Number of objects with at least one series"),
    _column("Target", "string", "Kind (and group) of the objects the family describes"),
    _column("Configuration", "string", "MetricsConfiguration that defines the family"),
    _column("Updated", "date", "When a series of the family last changed"),
    _column("Help", "string", "HELP text", priority=1),
    _column("Age", "date", "When the API server first saw the family"),
]

OBJECT_COLUMNS = [
    _column("Name", "string", "<resource>.<group>.<object name>", fmt="name"),
    _column("Kind", "string", "Kind of the target object"),
    _column("Object", "string", "Name of the target object"),
    _column("Series", "integer", "Number of series of this object"),
    _column("Configurations", "string", "MetricsConfigurations that render this object", priority=1),
    _column("Age", "date", "When the API server first saw the object"),
]


def _kind_group(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def family_cells(snap: FamilySnapshot) -> list[Any]:
    header = snap.info.header
    return [
        header.name,
        header.type,
        snap.info.series,
        snap.info.objects,
        _kind_group(header.target.kind, header.target.group),
        header.configuration,
        timestamp(snap.info.updated) or "<none>",
        header.help,
        timestamp(snap.created),
    ]


def object_cells(snap: ObjectSnapshot) -> list[Any]:
    return [
        snap.api_name,
        _kind_group(snap.target.kind, snap.target.group),
        snap.name,
        snap.series,
        ",".join(e.configuration for e in snap.entries),
        timestamp(snap.created),
    ]


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(
    columns: Sequence[dict[str, Any]],
    rows: Iterable[tuple[list[Any], dict[str, Any]]],
    *,
    include_object: str,
    rv: int,
    continue_token: str = "",
    with_columns: bool = True,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table; ``include_object`` is ``Metadata`` (default), ``Object`` or ``None``."""
    out_rows = []
    for cells, obj in rows:
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = partial_metadata(obj)
        out_rows.append(row)
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        meta["continue"] = continue_token
    result: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    result["columnDefinitions"] = list(columns) if with_columns else []
    result["rows"] = out_rows
    return result
