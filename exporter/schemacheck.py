"""Typos in paths: check a configuration's paths against the target kind's OpenAPI schema.

Upstream's kmodules/metrics-configuration-checker compares every path of a configuration with
the target CRD; this module does the same offline. A schema source is a CustomResourceDefinition
(``apiextensions.k8s.io/v1``: every served version's ``openAPIV3Schema``) or a Kubernetes
OpenAPI v2 document (``kubectl get --raw /openapi/v2``: the definitions carrying
``x-kubernetes-group-version-kind``, ``$ref``s resolved), which is how native kinds (Deployment,
Pod) are checked. ``SchemaIndex.check(config)`` returns a ``Problem`` for each path that the
schema cannot have, with a did-you-mean (``.spec.replica`` -> ``.spec.replicas``,
``.spec.nodename`` -> ``.spec.nodeName``, ``.specreplicas`` -> ``.spec.replicas``).

Walking rules: a field name must be one of ``properties`` (a schema with no ``properties``, with
``additionalProperties`` or with ``x-kubernetes-preserve-unknown-fields`` accepts any name below
it); an index or ``[*]`` must meet an array (its ``items``) or a map (``additionalProperties``).
Paths jsonpath-ng evaluates itself (filters, slices, ``..``) are not checked.

``fetch_live(api)`` builds the same index from a connected cluster: the kube-apiserver's
``/openapi/v2`` (native kinds and published CRD schemas) plus every CRD's own schema. Everything
else is pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.paths import PathError, Step, compile_path
from exporter.types import Problem
from kube.api import Getter

__all__ = ["SchemaIndex", "config_paths", "fetch_live"]

Schema = Mapping[str, Any]


@dataclass
class SchemaIndex:
    """Schemas by (apiVersion, kind), from CRDs and OpenAPI v2 documents."""

    schemas: dict[tuple[str, str], Schema] = field(default_factory=dict)
    definitions: dict[str, Schema] = field(default_factory=dict)  # OpenAPI v2 "$ref" targets

    def add_document(self, doc: Mapping[str, Any]) -> int:
        """Index a CRD or an OpenAPI v2 document; returns how many kinds it added."""
        if doc.get("kind") == "CustomResourceDefinition":
            return self._add_crd(doc)
        if isinstance(doc.get("definitions"), dict):
            return self._add_openapi(doc["definitions"])
        return 0

    def _add_crd(self, crd: Mapping[str, Any]) -> int:
        spec = crd.get("spec") or {}
        group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
        added = 0
        for version in spec.get("versions") or ():
            schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
            if isinstance(schema, dict) and kind:
                name = str(version.get("name"))
                self.schemas[(f"{group}/{name}" if group else name, kind)] = schema
                added += 1
        return added

    def _add_openapi(self, definitions: Mapping[str, Any]) -> int:
        added = 0
        for name, schema in definitions.items():
            if not isinstance(schema, dict):
                continue
            self.definitions[name] = schema
            for gvk in schema.get("x-kubernetes-group-version-kind") or ():
                group, version, kind = gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")
                self.schemas[(f"{group}/{version}" if group else version, kind)] = schema
                added += 1
        return added

    def schema_for(self, api_version: str, kind: str) -> Schema | None:
        return self.schemas.get((api_version, kind))

    def _resolve(self, schema: Schema) -> Schema:
        seen = 0
        while "$ref" in schema and seen < 32:
            target = self.definitions.get(str(schema["$ref"]).rpartition("/")[2])
            if target is None:
                return {}
            schema, seen = target, seen + 1
        if "allOf" in schema and "properties" not in schema:  # CRDs generated with allOf wrappers
            for part in schema.get("allOf") or ():
                if isinstance(part, dict) and ("properties" in part or "$ref" in part):
                    return self._resolve(part)
        return schema

    def check(self, config: Mapping[str, Any]) -> list[Problem]:
        """Problems for the paths of ``config`` its target's schema cannot have (none when the
        schema of the target is unknown: see ``has_schema``)."""
        spec = config.get("spec") or {}
        target = spec.get("targetRef") or {}
        root = self.schema_for(str(target.get("apiVersion", "")), str(target.get("kind", "")))
        if root is None:
            return []
        problems: list[Problem] = []
        for where, text in config_paths(config):
            message = self._check_path(root, text)
            if message:
                problems.append(Problem(path=where, message=message))
        return problems

    def _check_path(self, root: Schema, text: str) -> str | None:
        try:
            path = compile_path(text)
        except PathError:
            return None  # reported by the compiler
        if path.steps is None:
            return None
        schema = self._resolve(root)
        walked: list[str] = []
        for index, step in enumerate(path.steps):
            if _accepts_anything(schema):
                return None
            if step.kind == "key":
                properties = schema.get("properties")
                if not isinstance(properties, dict):
                    return None  # an object without a declared shape
                key = str(step.key)
                if key not in properties:
                    where = "".join(walked) or "the object"
                    hint = self._suggest(schema, key, path.steps[index + 1:], walked)
                    return (f"{text!r}: the schema of the target has no field {key!r} under {where}"
                            + (f"; did you mean {hint!r}?" if hint else ""))
                walked.append(f".{key}")
                schema = self._resolve(properties[key])
            else:
                if schema.get("type") == "array" or "items" in schema:
                    walked.append("[*]" if step.kind == "all" else f"[{step.key}]")
                    schema = self._resolve(schema.get("items") or {})
                elif isinstance(schema.get("additionalProperties"), dict):
                    walked.append(".*")
                    schema = self._resolve(schema["additionalProperties"])
                elif schema.get("type") in ("string", "integer", "number", "boolean"):
                    return f"{text!r}: {''.join(walked)} is a {schema.get('type')}, it has no elements"
                else:
                    return None
        return None

    def _suggest(self, schema: Schema, key: str, rest: Sequence[Step], walked: Sequence[str]) -> str | None:
        properties = schema.get("properties") or {}
        tail = "".join(f".{s.key}" if s.kind == "key" else ("[*]" if s.kind == "all" else f"[{s.key}]")
                       for s in rest)
        prefix = "".join(walked)
        lowered = {name.lower(): name for name in properties}
        if key.lower() in lowered:
            return f"{prefix}.{lowered[key.lower()]}{tail}"
        for cut in range(1, len(key)):  # ".specreplicas": a missing dot
            head, remainder = key[:cut], key[cut:]
            if head in properties:
                child = self._resolve(properties[head]).get("properties") or {}
                if remainder in child:
                    return f"{prefix}.{head}.{remainder}{tail}"
        close = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
        return f"{prefix}.{close[0]}{tail}" if close else None


def _accepts_anything(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields")) or (
        schema.get("additionalProperties") not in (None, False) and "properties" not in schema
        and schema.get("type") not in ("array",) and not isinstance(schema.get("additionalProperties"), dict))


def config_paths(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, object path) of every path a configuration reads from its objects."""
    spec = config.get("spec") or {}
    for i, label in enumerate(spec.get("commonLabels") or ()):
        if isinstance(label, dict) and label.get("valuePath") and not label.get("value"):
            yield f"spec.commonLabels[{i}].valuePath", str(label["valuePath"])
    for m, metric in enumerate(spec.get("metrics") or ()):
        if not isinstance(metric, dict):
            continue
        where = f"spec.metrics[{m}]"
        if isinstance(metric.get("field"), dict) and metric["field"].get("path"):
            yield f"{where}.field.path", str(metric["field"]["path"])
        for kind in ("labels", "params"):
            for i, item in enumerate(metric.get(kind) or ()):
                if isinstance(item, dict) and item.get("valuePath") and not item.get("value"):
                    yield f"{where}.{kind}[{i}].valuePath", str(item["valuePath"])
        values = [(f"{where}.metricValue", metric.get("metricValue"))]
        states = metric.get("states")
        if isinstance(states, dict):
            values = [(f"{where}.states.values[{i}].metricValue", (v or {}).get("metricValue"))
                      for i, v in enumerate(states.get("values") or ())]
        for value_where, value in values:
            if isinstance(value, dict) and value.get("valueFromPath") and value.get("value") is None:
                yield f"{value_where}.valueFromPath", str(value["valueFromPath"])


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def fetch_live(api: Getter) -> SchemaIndex:
    """The schemas a connected cluster serves: ``/openapi/v2``, then every CRD (which wins)."""
    index = SchemaIndex()
    index.add_document(await api.get("/openapi/v2"))
    crds = await api.get(CRDS)
    for crd in crds.get("items") or ():
        if isinstance(crd, dict):
            index.add_document({**crd, "kind": "CustomResourceDefinition"})
    return index
