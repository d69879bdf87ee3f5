"""Paths a target's OpenAPI schema cannot have (``.spec.replica`` where it has ``.spec.replicas``).

A MetricsConfiguration names fields of its target by path; a typo is not an error Panopticon can
see (an absent field is normal), so the series silently never appear. Given the target's
structural schema (a CRD's ``openAPIV3Schema``), ``path_problems`` walks every simple path of a
configuration through ``properties`` / ``items`` / ``additionalProperties`` and reports the first
step the schema cannot have, with a did-you-mean from the sibling names. A schema that does not
describe a level (no ``properties``, ``x-kubernetes-preserve-unknown-fields``, ``metadata``
left as ``type: object``) accepts everything below it. These are notes (warnings), never
problems: the schema may be older or newer than the objects. Pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from exporter.models import Label, Metric, MetricsConfiguration, MetricValue
from exporter.paths import PathError, compile_path
from exporter.types import Problem

__all__ = ["config_paths", "path_problems", "unknown_step"]


def _value_paths(value: MetricValue | None, where: str) -> Iterator[tuple[str, str]]:
    if value is not None and value.valueFromPath:
        yield f"{where}.valueFromPath", value.valueFromPath


def _label_paths(labels: list[Label], where: str) -> Iterator[tuple[str, str]]:
    for i, label in enumerate(labels):
        if label.valuePath and label.value is None:
            yield f"{where}[{i}].valuePath", label.valuePath


def _metric_paths(metric: Metric, where: str) -> Iterator[tuple[str, str]]:
    if metric.field is not None:
        yield f"{where}.field.path", metric.field.path
    yield from _label_paths(metric.labels, f"{where}.labels")
    for i, param in enumerate(metric.params):
        if param.valuePath and param.value is None:
            yield f"{where}.params[{i}].valuePath", param.valuePath
    if metric.states is not None:
        for i, state in enumerate(metric.states.values):
            yield from _value_paths(state.metricValue, f"{where}.states.values[{i}].metricValue")
    yield from _value_paths(metric.metricValue, f"{where}.metricValue")


def config_paths(config: MetricsConfiguration) -> Iterator[tuple[str, str]]:
    """(field path in the configuration, object path) of every path the configuration reads."""
    yield from _label_paths(config.spec.commonLabels, "spec.commonLabels")
    for i, metric in enumerate(config.spec.metrics):
        yield from _metric_paths(metric, f"spec.metrics[{i}]")


def _open(schema: Mapping[str, Any]) -> bool:
    """True when the schema does not constrain what is below it."""
    return bool(schema.get("x-kubernetes-preserve-unknown-fields")) or bool(
        schema.get("x-kubernetes-int-or-string")
    )


def unknown_step(schema: Mapping[str, Any], path: str) -> str | None:
    """Why ``path`` cannot exist in objects of ``schema`` (``None``: it can, or we cannot tell)."""
    try:
        steps = compile_path(path).steps
    except PathError:
        return None  # a compile problem, reported by the compiler
    if steps is None:
        return None  # filters, unions, ..: not walked
    node: Mapping[str, Any] = schema
    walked = ""
    for step in steps:
        if _open(node):
            return None
        if step.kind == "key":
            key = str(step.key)
            properties = node.get("properties")
            additional = node.get("additionalProperties")
            if isinstance(properties, Mapping) and key in properties:
                node = properties[key] if isinstance(properties[key], Mapping) else {}
            elif isinstance(additional, Mapping):
                node = additional
            elif isinstance(properties, Mapping) and properties and additional is not True:
                close = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
                hint = f" (did you mean '{walked}.{close[0]}'?)" if close else ""
                where = walked or "the object"
                return f"{where} has no field {key!r} in the target's schema{hint}"
            else:
                return None
            walked += f".{key}"
        else:  # index or [*]
            items, kind = node.get("items"), node.get("type")
            if isinstance(items, Mapping):
                node = items
            elif step.kind == "all" and isinstance(node.get("additionalProperties"), Mapping):
                node = node["additionalProperties"]
            elif kind in ("string", "integer", "number", "boolean"):
                return f"{walked or 'the object'} is a {kind} in the target's schema, not an array"
            else:
                return None
            walked += "[*]" if step.kind == "all" else f"[{step.key}]"
    return None


def path_problems(config: MetricsConfiguration, schema: Mapping[str, Any]) -> list[Problem]:
    """One note per path of ``config`` that objects of ``schema`` cannot have."""
    found = []
    for where, path in config_paths(config):
        reason = unknown_step(schema, path)
        if reason is not None:
            found.append(Problem(path=where, message=f"{path!r}: {reason}"))
    return found
