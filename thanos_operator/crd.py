"""The ``thanos.monitoring.paodin.io`` CustomResourceDefinition, generated from the pydantic models.

Pydantic's JSON Schema is turned into a *structural* OpenAPI v3 schema as the kube-apiserver
requires: ``$ref``s inlined, ``anyOf [X, null]`` collapsed to ``X``, no
``title``/``default``/``additionalProperties: false`` (defaults would be written into stored
objects, changing users' CRs), and free-form Kubernetes types (affinity, resources, PVC
templates) kept with ``x-kubernetes-preserve-unknown-fields``. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

from thanos_operator.models import API_GROUP, API_VERSION, KIND, PLURAL, ThanosSpec, ThanosStatus

JsonObject = dict[str, Any]

_DESCRIPTION = (
    "Thanos Query, Receive (router + ingestors), Store Gateway and Compact, "
    "reconciled by panopticon (PaodinMonitoring-compatible)."
)
_DROP = {"title", "default", "examples"}


def _structural(schema: JsonObject, defs: JsonObject) -> JsonObject:
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in schema:
        # Optional fields: no `nullable: true`. The API server prunes nulls of non-nullable fields
        # (so PaodinMonitoring's `stores:` with only comments still applies), and nullable
        # subtrees are dropped from the OpenAPI v2 that `kubectl explain` reads.
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {schema['anyOf']} structurally")
        return _structural({**options[0], **rest}, defs)
    out: JsonObject = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _structural(value, defs)
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = _structural(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusive", "").lower()] = value
            out[key] = True
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def openapi_schema(model: type[ThanosSpec] | type[ThanosStatus]) -> JsonObject:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _condition_column(type_: str) -> JsonObject:
    return {"name": type_, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{type_}")].status'}


def thanos_crd() -> JsonObject:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}", "labels": {"app.kubernetes.io/name": "panopticon"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": PLURAL},
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _condition_column("Ready"),
                        _condition_column("Reconciled"),
                        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": _DESCRIPTION,
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(ThanosSpec),
                                "status": openapi_schema(ThanosStatus),
                            },
                        }
                    },
                }
            ],
        },
    }
