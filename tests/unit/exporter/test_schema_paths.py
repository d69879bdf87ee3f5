"""Paths a target's schema cannot have: did-you-mean notes, and silence where the schema is open."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.models import parse_config
from exporter.schema_paths import config_paths, path_problems, unknown_step

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "ports": {"type": "array",
                      "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "size": {"x-kubernetes-int-or-string": True},
        }},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


@pytest.mark.parametrize("path", [
    ".spec.replicas", ".metadata.labels.app", ".spec.template.anything[0].below", ".spec.ports[*].port",
    ".spec.ports[0].port", ".spec.labels.team", ".spec.size", ".", ".spec", ".status.phase",
    ".spec.ports[?(@.port > 1)]",  # not a simple chain: not walked
])
def test_paths_the_schema_can_have(path: str) -> None:
    assert unknown_step(SCHEMA, path) is None


@pytest.mark.parametrize(("path", "reason"), [
    (".spec.replica", ".spec has no field 'replica' in the target's schema (did you mean '.spec.replicas'?)"),
    (".spec.ports[*].prot", ".spec.ports[*] has no field 'prot' in the target's schema (did you mean "
                            "'.spec.ports[*].port'?)"),
    (".spec.zzz", ".spec has no field 'zzz' in the target's schema"),
    (".sepc.replicas", "the object has no field 'sepc' in the target's schema (did you mean '.spec'?)"),
    (".status.phase[0]", ".status.phase is a string in the target's schema, not an array"),
])
def test_paths_the_schema_cannot_have(path: str, reason: str) -> None:
    assert unknown_step(SCHEMA, path) == reason


def test_every_path_field_of_a_configuration_is_checked_with_its_field_path() -> None:
    config, problems = parse_config({
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": "c"},
        "spec": {
            "targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
            "commonLabels": [{"key": "p", "valuePath": ".status.phas"}, {"key": "v", "value": "x"}],
            "metrics": [{
                "name": "m", "help": "h", "type": "gauge", "field": {"path": ".spec.prts", "type": "Array"},
                "labels": [{"key": "l", "valuePath": ".spec.lables.a"}],
                "params": [{"key": "k", "valuePath": ".spec.replcas"}],
                "states": {"labelKey": "s", "values": [
                    {"labelValue": "a", "metricValue": {"valueFromPath": ".spec.sise"}}]},
                "metricValue": {"valueFromPath": ".spec.replicas"},
            }],
        },
    })
    assert config is not None and not problems
    assert [where for where, _ in config_paths(config)] == [
        "spec.commonLabels[0].valuePath", "spec.metrics[0].field.path", "spec.metrics[0].labels[0].valuePath",
        "spec.metrics[0].params[0].valuePath", "spec.metrics[0].states.values[0].metricValue.valueFromPath",
        "spec.metrics[0].metricValue.valueFromPath",
    ]
    assert [p.path for p in path_problems(config, SCHEMA)] == [
        "spec.commonLabels[0].valuePath", "spec.metrics[0].field.path", "spec.metrics[0].labels[0].valuePath",
        "spec.metrics[0].params[0].valuePath", "spec.metrics[0].states.values[0].metricValue.valueFromPath",
    ]
