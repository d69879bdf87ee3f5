"""OpenAPI documents (``/openapi/v2``, ``/openapi/v3``, ``/openapi/v3/apis/<group>/<version>``). Pure.

Built from the registry (``apiserver.registry``): every ``ServedResource`` with a ``schema``
gets its kind and ``<Kind>List`` definitions and its list/get paths; the group-version's shared
``definitions`` are added under the same prefix. The kube-apiserver's aggregator downloads the
documents and merges them into the cluster's own; ``kubectl explain metricfamilies`` then finds
our schemas through ``x-kubernetes-group-version-kind``, on every schema of a served kind and on
every path operation. Schema names live in the group's own namespace (``definition_prefix``, e.g.
``io.panopticon.metrics.v1alpha1.``) so merging never collides with (or gets renamed against)
the cluster's ``io.k8s.*`` definitions. The v3 root points at each group-version document with a
content hash, as the aggregator expects.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import orjson

from apiserver.registry import ApiGroupVersion, ApiRegistry, ServedResource

_QUERY = [
    {"name": n, "in": "query", "type": t, "uniqueItems": True, "description": d}
    for n, t, d in [
        ("labelSelector", "string", "Label selector on the objects' labels."),
        ("fieldSelector", "string", "metadata.name and metadata.namespace only."),
        ("limit", "integer", "Maximum number of items per page."),
        ("continue", "string", "Continue token of the previous page."),
        ("resourceVersion", "string", "Resource version to list or watch from."),
        ("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
        ("watch", "boolean", "Stream changes."),
        ("timeoutSeconds", "integer", "End a watch after this many seconds."),
        ("allowWatchBookmarks", "boolean", "Send BOOKMARK events."),
    ]
]


def _camel_group(group: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in group.replace("-", ".").split("."))


def _gvk(entry: ApiGroupVersion, kind: str) -> dict[str, str]:
    return {"group": entry.group, "version": entry.version, "kind": kind}


def _ref(entry: ApiGroupVersion, name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{entry.definition_prefix}{name}"}


def _list_schema(entry: ApiGroupVersion, resource: ServedResource) -> dict[str, Any]:
    kind = resource.kind
    return {
        "type": "object",
        "description": f"A list of {kind}.",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"APIVersion of this object: {entry.group_version}.",
            },
            "kind": {"type": "string", "description": f"Kind of this object: {kind}List."},
            "metadata": _ref(entry, "ListMeta"),
            "items": {"type": "array", "items": _ref(entry, kind)},
        },
        "x-kubernetes-group-version-kind": [_gvk(entry, resource.list_kind)],
    }


def _described(entry: ApiGroupVersion) -> list[ServedResource]:
    return [r for r in entry.resources if r.schema is not None]


def definitions(entry: ApiGroupVersion) -> dict[str, Any]:
    defs: dict[str, Any] = {name: copy.deepcopy(schema) for name, schema in entry.definitions.items()}
    for resource in _described(entry):
        assert resource.schema is not None
        defs[resource.kind] = {
            **copy.deepcopy(dict(resource.schema)),
            "x-kubernetes-group-version-kind": [_gvk(entry, resource.kind)],
        }
        defs[resource.list_kind] = _list_schema(entry, resource)
    return {entry.definition_prefix + name: schema for name, schema in defs.items()}


def _operation(
    entry: ApiGroupVersion, kind: str, action: str, op_id: str, schema_kind: str, params: list[dict[str, Any]]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "description": f"{action} {kind}",
        "consumes": ["*/*"],
        "produces": ["application/json", "application/json;stream=watch"],
        "schemes": ["https"],
        "tags": [f"{_camel_group(entry.group)[:1].lower()}{_camel_group(entry.group)[1:]}_{entry.version}"],
        "responses": {
            "200": {"description": "OK", "schema": _ref(entry, schema_kind)},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(entry, kind),
    }
    if params:
        op["parameters"] = params
    return op


def paths(entry: ApiGroupVersion) -> dict[str, Any]:
    name_param = {"name": "name", "in": "path", "required": True, "type": "string", "uniqueItems": True}
    ns_param = {"name": "namespace", "in": "path", "required": True, "type": "string", "uniqueItems": True}
    gv_word = _camel_group(entry.group) + entry.version[:1].upper() + entry.version[1:]
    out: dict[str, Any] = {}
    for resource in _described(entry):
        kind, namespaced = resource.kind, resource.namespaced
        namespaced_collection = f"{entry.base}/namespaces/{{namespace}}/{resource.plural}"
        prefixes = [(namespaced_collection, [ns_param])] if namespaced else []
        prefixes.append((f"{entry.base}/{resource.plural}", []))
        for i, (collection, extra) in enumerate(prefixes):
            suffix = "ForAllNamespaces" if namespaced and i == 1 else ""
            ns_word = "Namespaced" if namespaced and i == 0 else ""
            out[collection] = {
                "get": _operation(
                    entry, kind, "list", f"list{gv_word}{ns_word}{kind}{suffix}", resource.list_kind, _QUERY
                ),
                "parameters": extra,
            }
            if namespaced and i == 1:
                continue
            out[f"{collection}/{{name}}"] = {
                "get": _operation(entry, kind, "get", f"read{gv_word}{ns_word}{kind}", kind, []),
                "parameters": [name_param, *extra],
            }
    return out


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


def _v3_param(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k not in ("type", "uniqueItems")}
    out["schema"] = {"type": param.get("type", "string"), "uniqueItems": True}
    return out


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


class OpenApi:
    """The documents of one registry, built once (the registry is fixed for a process)."""

    def __init__(self, registry: ApiRegistry, *, title: str = "Panopticon API", version: str = "v1") -> None:
        self._registry = registry
        all_paths: dict[str, Any] = {}
        all_defs: dict[str, Any] = {}
        for entry in registry.entries:
            all_paths.update(paths(entry))
            all_defs.update(definitions(entry))
        self.v2: dict[str, Any] = {
            "swagger": "2.0",
            "info": {"title": title, "version": version},
            "paths": all_paths,
            "definitions": all_defs,
        }
        self._v3: dict[str, dict[str, Any]] = {}
        self._hashes: dict[str, str] = {}
        for entry in registry.entries:
            doc = self._group_version(entry)
            self._v3[entry.group_version] = doc
            digest = hashlib.sha512(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
            self._hashes[entry.group_version] = digest[:64].upper()
        self.v3_root: dict[str, Any] = {
            "paths": {
                f"apis/{gv}": {"serverRelativeURL": f"/openapi/v3/apis/{gv}?hash={digest}"}
                for gv, digest in self._hashes.items()
            }
        }

    @staticmethod
    def _group_version(entry: ApiGroupVersion) -> dict[str, Any]:
        out_paths: dict[str, Any] = {}
        for path, item in paths(entry).items():
            out_paths[path] = {
                "get": _v3_operation(item["get"]),
                "parameters": [_v3_param(p) for p in item.get("parameters", [])],
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": f"{entry.group_version} API", "version": entry.version},
            "paths": out_paths,
            "components": {"schemas": _v3_refs(definitions(entry))},
        }

    def v3(self, group_version: str) -> dict[str, Any] | None:
        return self._v3.get(group_version)
