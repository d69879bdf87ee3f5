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

from apiserver.registry import Column
from apiserver.views import FamilySnapshot, ObjectSnapshot
from exporter.types import Series

GROUP = "metrics.panopticon.io"
VERSION = "v1alpha1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
LABEL_PREFIX = "metrics.panopticon.io/"
_UID_NAMESPACE = uuid.UUID("6b1c3f2e-4d8a-4e2b-9a3f-0c5d7e9f1a2b")

FAMILY_KIND = "MetricFamily"
OBJECT_KIND = "ObjectMetrics"
CLUSTER_OBJECT_KIND = "ClusterObjectMetrics"

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
    shape: dict[str, Any] = {
        "apiVersion": GROUP_VERSION,
        "kind": FAMILY_KIND,
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
    if info.parts:  # fed by several configurations: the fields above are the first one's, and totals
        shape["sources"] = [
            {"configuration": part.header.configuration,
             "target": {"apiVersion": part.header.target.api_version, "kind": part.header.target.kind},
             "series": part.series, "objects": part.objects}
            for part in info.parts
        ]
    return shape


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
        "kind": OBJECT_KIND if snap.namespace else CLUSTER_OBJECT_KIND,
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


# ---------------------------------------------------------------------- Table


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    """``3m20s``; just ``3m`` when the smaller unit is zero."""
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def human_duration(seconds: float) -> str:
    """An age as kubectl prints it (k8s.io/apimachinery ``duration.HumanDuration``): 5s, 3m20s, 4h, 12d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _two_units(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _two_units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def age(since: float | None, *, now: float) -> str:
    """The ``date`` cell the kube-apiserver's table convertors print: the age, ``<unknown>`` if unset."""
    if since is None:
        return "<unknown>"
    return human_duration(now - int(since))


FAMILY_COLUMNS = (
    Column("Name", "string", "Name of the metric family", format="name"),
    Column("Type", "string", "Prometheus metric type"),
    Column("Series", "integer", "Number of series currently exported"),
    Column("Objects", "integer", "Number of objects with at least one series"),
    Column("Target", "string", "Kind (and group) of the objects the family describes"),
    Column("Configuration", "string", "MetricsConfiguration that defines the family"),
    Column("Updated", "date", "How long ago a series of the family last changed"),
    Column("Help", "string", "HELP text", priority=1),
    Column("Age", "date", "How long ago the API server first saw the family"),
)

OBJECT_COLUMNS = (
    Column("Name", "string", "<resource>.<group>.<object name>", format="name"),
    Column("Kind", "string", "Kind of the target object"),
    Column("Object", "string", "Name of the target object"),
    Column("Series", "integer", "Number of series of this object"),
    Column("Configurations", "string", "MetricsConfigurations that render this object", priority=1),
    Column("Age", "date", "How long ago the API server first saw the object"),
)


def _kind_group(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def family_cells(snap: FamilySnapshot, *, now: float) -> list[Any]:
    header = snap.info.header
    return [
        header.name,
        header.type,
        snap.info.series,
        snap.info.objects,
        _kind_group(header.target.kind, header.target.group),
        header.configuration,
        "<none>" if snap.info.updated is None else age(snap.info.updated, now=now),
        header.help,
        age(snap.created, now=now),
    ]


def object_cells(snap: ObjectSnapshot, *, now: float) -> list[Any]:
    return [
        snap.api_name,
        _kind_group(snap.target.kind, snap.target.group),
        snap.name,
        snap.series,
        ",".join(e.configuration for e in snap.entries),
        age(snap.created, now=now),
    ]


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(
    columns: Sequence[Column],
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
    result["columnDefinitions"] = [c.definition() for c in columns] if with_columns else []
    result["rows"] = out_rows
    return result
