"""OpenAPI documents (``/openapi/v2``, ``/openapi/v3``, ``/openapi/v3/apis/<group>/<version>``). Pure.

The kube-apiserver's aggregator downloads them and merges them into the cluster's own
(docs/design.md, "Sources, by topic": OpenAPI); ``kubectl explain metricfamilies`` then
finds our schemas through ``x-kubernetes-group-version-kind``: on every schema of a served
kind and on every path operation. Schema names live in our own
``io.panopticon.metrics.v1alpha1`` namespace so merging never collides with (or gets
renamed against) the cluster's ``io.k8s.*`` definitions. The v3 root points at the
group-version document with a content hash, as the aggregator expects.
"""

from __future__ import annotations

import copy
import hashlib
from functools import lru_cache
from typing import Any

import orjson

from apiserver.objects import GROUP, GROUP_VERSION, VERSION

PREFIX = "io.panopticon.metrics.v1alpha1."
_STR = {"type": "string"}
_INT = {"type": "integer", "format": "int64"}


def _gvk(kind: str) -> dict[str, str]:
    return {"group": GROUP, "version": VERSION, "kind": kind}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{PREFIX}{name}"}


def _kind_fields(description_kind: str) -> dict[str, Any]:
    return {
        "apiVersion": {**_STR, "description": f"APIVersion of this object: {GROUP_VERSION}."},
        "kind": {**_STR, "description": f"Kind of this object: {description_kind}."},
    }


def _definitions() -> dict[str, Any]:
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
        },
        "x-kubernetes-group-version-kind": [_gvk("MetricFamily")],
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
            "x-kubernetes-group-version-kind": [_gvk(kind)],
        }

    def list_of(kind: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": f"A list of {kind}.",
            "required": ["items"],
            "properties": {
                **_kind_fields(f"{kind}List"),
                "metadata": _ref("ListMeta"),
                "items": {"type": "array", "items": _ref(kind)},
            },
            "x-kubernetes-group-version-kind": [_gvk(f"{kind}List")],
        }

    defs = {
        "ObjectMeta": object_meta,
        "ListMeta": list_meta,
        "TargetKind": target_kind,
        "Series": series,
        "TargetObject": target_object,
        "MetricFamily": family,
        "ObjectMetrics": object_metrics("ObjectMetrics", "namespaced"),
        "ClusterObjectMetrics": object_metrics("ClusterObjectMetrics", "cluster-scoped"),
    }
    for kind in ("MetricFamily", "ObjectMetrics", "ClusterObjectMetrics"):
        defs[f"{kind}List"] = list_of(kind)
    return {PREFIX + name: schema for name, schema in defs.items()}


_QUERY = [
    {"name": n, "in": "query", "type": t, "uniqueItems": True, "description": d}
    for n, t, d in [
        ("labelSelector", "string", "Label selector on metrics.panopticon.io/* labels."),
        ("fieldSelector", "string", "metadata.name and metadata.namespace only."),
        ("limit", "integer", "Maximum number of items per page."),
        ("continue", "string", "Continue token of the previous page."),
        ("resourceVersion", "string", "Resource version to list or watch from."),
        ("watch", "boolean", "Stream changes."),
        ("timeoutSeconds", "integer", "End a watch after this many seconds."),
        ("allowWatchBookmarks", "boolean", "Send BOOKMARK events."),
    ]
]


def _operation(
    kind: str, action: str, op_id: str, schema_kind: str, params: list[dict[str, Any]]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "description": f"{action} {kind}",
        "consumes": ["*/*"],
        "produces": ["application/json", "application/json;stream=watch"],
        "schemes": ["https"],
        "tags": ["metricsPanopticonIo_v1alpha1"],
        "responses": {
            "200": {"description": "OK", "schema": _ref(schema_kind)},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(kind),
    }
    if params:
        op["parameters"] = params
    return op


def _paths() -> dict[str, Any]:
    base = f"/apis/{GROUP_VERSION}"
    name_param = {"name": "name", "in": "path", "required": True, "type": "string", "uniqueItems": True}
    ns_param = {"name": "namespace", "in": "path", "required": True, "type": "string", "uniqueItems": True}
    paths: dict[str, Any] = {}
    for resource, kind, namespaced in (
        ("metricfamilies", "MetricFamily", False),
        ("objectmetrics", "ObjectMetrics", True),
        ("clusterobjectmetrics", "ClusterObjectMetrics", False),
    ):
        prefixes = [(f"{base}/namespaces/{{namespace}}/{resource}", [ns_param])] if namespaced else []
        prefixes.append((f"{base}/{resource}", []))
        for i, (collection, extra) in enumerate(prefixes):
            suffix = "ForAllNamespaces" if namespaced and i == 1 else ""
            ns_word = "Namespaced" if namespaced and i == 0 else ""
            paths[collection] = {
                "get": _operation(
                    kind,
                    "list",
                    f"listMetricsPanopticonIoV1alpha1{ns_word}{kind}{suffix}",
                    f"{kind}List",
                    _QUERY,
                ),
                "parameters": extra,
            }
            if namespaced and i == 1:
                continue
            paths[f"{collection}/{{name}}"] = {
                "get": _operation(kind, "get", f"readMetricsPanopticonIoV1alpha1{ns_word}{kind}", kind, []),
                "parameters": [name_param, *extra],
            }
    return paths


@lru_cache(maxsize=1)
def openapi_v2() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Panopticon metrics API", "version": VERSION},
        "paths": _paths(),
        "definitions": _definitions(),
    }


def _v3_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = value.replace("#/definitions/", "#/components/schemas/")
            else:
                out[key] = _v3_refs(value)
        return out
    if isinstance(node, list):
        return [_v3_refs(v) for v in node]
    return node


def _v3_operation(op: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: v for k, v in op.items() if k not in ("consumes", "produces", "schemes", "responses", "parameters")
    }
    out["responses"] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": _v3_refs(op["responses"]["200"]["schema"])}},
        },
        "401": {"description": "Unauthorized"},
    }
    out["parameters"] = [_v3_param(p) for p in op.get("parameters", [])]
    return out


def _v3_param(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k not in ("type", "uniqueItems")}
    out["schema"] = {"type": param.get("type", "string"), "uniqueItems": True}
    return out


@lru_cache(maxsize=1)
def openapi_v3_group_version() -> dict[str, Any]:
    v2 = openapi_v2()
    paths: dict[str, Any] = {}
    for path, item in v2["paths"].items():
        paths[path] = {
            "get": _v3_operation(item["get"]),
            "parameters": [_v3_param(p) for p in item.get("parameters", [])],
        }
    return {
        "openapi": "3.0.0",
        "info": v2["info"],
        "paths": paths,
        "components": {"schemas": _v3_refs(copy.deepcopy(v2["definitions"]))},
    }


@lru_cache(maxsize=1)
def openapi_v3_hash() -> str:
    return (
        hashlib.sha512(orjson.dumps(openapi_v3_group_version(), option=orjson.OPT_SORT_KEYS))
        .hexdigest()[:64]
        .upper()
    )


def openapi_v3_root() -> dict[str, Any]:
    return {
        "paths": {
            f"apis/{GROUP_VERSION}": {
                "serverRelativeURL": f"/openapi/v3/apis/{GROUP_VERSION}?hash={openapi_v3_hash()}"
            }
        }
    }
