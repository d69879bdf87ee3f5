"""OpenAPI v2 schemas of the ``metrics.panopticon.io/v1alpha1`` kinds (``kubectl explain``). Pure data.

``SCHEMAS`` holds one schema per kind (the registry entries carry them), ``SHARED`` the
definitions they reference (``ObjectMeta``, ``Series`` ...). ``apiserver.openapi`` puts them in
the group's own ``io.panopticon.metrics.v1alpha1.`` namespace, adds the ``<Kind>List`` schemas
and stamps ``x-kubernetes-group-version-kind`` on every kind.
"""

from __future__ import annotations

from typing import Any

from apiserver.objects import CLUSTER_OBJECT_KIND, FAMILY_KIND, GROUP_VERSION, OBJECT_KIND

PREFIX = "io.panopticon.metrics.v1alpha1."
_STR = {"type": "string"}
_INT = {"type": "integer", "format": "int64"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{PREFIX}{name}"}


def _kind_fields(description_kind: str) -> dict[str, Any]:
    return {
        "apiVersion": {**_STR, "description": f"APIVersion of this object: {GROUP_VERSION}."},
        "kind": {**_STR, "description": f"Kind of this object: {description_kind}."},
    }


def _schemas() -> dict[str, Any]:
    object_meta = {
        "type": "object",
        "description": "Standard object metadata (a read-only subset: the objects are computed).",
        "properties": {
            "name": {**_STR, "description": "Name of the object."},
            "namespace": {**_STR, "description": "Namespace of the object (namespaced kinds only)."},
            "uid": {**_STR, "description": "Stable identifier derived from the source object's UID."},
            "resourceVersion": {**_STR, "description": "Opaque version of the object, usable for watches."},
            "creationTimestamp": {
                **_STR,
                "format": "date-time",
                "description": "When this API server first saw the object.",
            },
            "labels": {
                "type": "object",
                "additionalProperties": _STR,
                "description": "metrics.panopticon.io/* labels for label selectors.",
            },
        },
    }
    list_meta = {
        "type": "object",
        "description": "Standard list metadata.",
        "properties": {"resourceVersion": _STR, "continue": _STR, "remainingItemCount": _INT},
    }
    target_kind = {
        "type": "object",
        "description": "The kind a configuration targets.",
        "properties": {
            "apiVersion": {**_STR, "description": "API version of the target kind, e.g. apps/v1."},
            "kind": {**_STR, "description": "Kind of the target, e.g. Deployment."},
        },
    }
    family = {
        "type": "object",
        "description": "MetricFamily is one Prometheus metric family exported by Panopticon: its type, HELP "
        "text, the MetricsConfiguration defining it, and how many series it has now.",
        "properties": {
            **_kind_fields("MetricFamily"),
            "metadata": _ref("ObjectMeta"),
            "type": {**_STR, "description": "Prometheus metric type (gauge for MetricsConfigurations)."},
            "help": {**_STR, "description": "The HELP text of the family."},
            "configuration": {**_STR, "description": "Name of the MetricsConfiguration defining the family."},
            "target": {**_ref("TargetKind"), "description": "The kind of objects the family describes."},
            "series": {**_INT, "description": "Number of series currently exported."},
            "objects": {**_INT, "description": "Number of objects with at least one series."},
            "lastUpdateTime": {
                **_STR,
                "format": "date-time",
                "description": "When a series of the family last changed.",
            },
            "sources": {
                "type": "array",
                "description": "Only for a family fed by several MetricsConfigurations: each one's share, "
                "in configuration-name order (configuration and target above are the first one's, series "
                "and objects the totals).",
                "items": {
                    "type": "object",
                    "properties": {
                        "configuration": _STR,
                        "target": _ref("TargetKind"),
                        "series": _INT,
                        "objects": _INT,
                    },
                },
            },
        },
    }
    series = {
        "type": "object",
        "description": "One Prometheus sample.",
        "properties": {
            "name": {**_STR, "description": "Metric name."},
            "labels": {
                "type": "object",
                "additionalProperties": _STR,
                "description": "Label names and values.",
            },
            "value": {**_STR, "description": "Sample value as in the exposition (NaN, +Inf, -Inf possible)."},
        },
    }
    target_object = {
        "type": "object",
        "description": "Reference to the object the series describe.",
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "resource": _STR,
            "name": _STR,
            "namespace": _STR,
            "uid": _STR,
            "resourceVersion": _STR,
        },
    }

    def object_metrics(kind: str, scope: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": f"{kind} holds the series one {scope} target object produces, from every "
            "MetricsConfiguration that targets it. Name: <resource>.<group>.<object name> "
            "(group 'core' for the core API group).",
            "properties": {
                **_kind_fields(kind),
                "metadata": _ref("ObjectMeta"),
                "target": {**_ref("TargetObject"), "description": "The object the series describe."},
                "configurations": {
                    "type": "array",
                    "items": _STR,
                    "description": "MetricsConfigurations that rendered the series.",
                },
                "series": {"type": "array", "items": _ref("Series"), "description": "The object's series."},
            },
        }

    return {
        "ObjectMeta": object_meta,
        "ListMeta": list_meta,
        "TargetKind": target_kind,
        "Series": series,
        "TargetObject": target_object,
        FAMILY_KIND: family,
        OBJECT_KIND: object_metrics(OBJECT_KIND, "namespaced"),
        CLUSTER_OBJECT_KIND: object_metrics(CLUSTER_OBJECT_KIND, "cluster-scoped"),
    }


_ALL = _schemas()
KINDS = (FAMILY_KIND, OBJECT_KIND, CLUSTER_OBJECT_KIND)
SCHEMAS: dict[str, dict[str, Any]] = {kind: _ALL[kind] for kind in KINDS}
SHARED: dict[str, dict[str, Any]] = {name: s for name, s in _ALL.items() if name not in KINDS}
