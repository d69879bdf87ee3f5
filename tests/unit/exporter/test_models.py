"""MetricsConfiguration models: Panopticon's YAML names, strict validation, field paths in errors."""

from __future__ import annotations

from typing import Any

from exporter.models import MetricsConfiguration, parse_config

VALID: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "apps-deployment", "uid": "u", "resourceVersion": "7", "generation": 2},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment"},
        "commonLabels": [{"key": "team", "value": "a"}],
        "metrics": [{
            "name": "phase", "help": "h", "type": "gauge",
            "field": {"path": ".status.phase", "type": "String"},
            "labels": [{"key": "x", "valuePath": ".a"}],
            "params": [{"key": "p", "valuePath": ".status.phase"}],
            "states": {"labelKey": "phase", "values": [
                {"labelValue": "A", "metricValue": {"valueFromExpression": "int(p == 'A')"}}]},
            "metricValue": {"value": 1, "valueFromPath": ".x", "valueFromExpression": "1"},
        }],
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"}], "observedGeneration": 2},
}


def test_every_panopticon_field_is_accepted() -> None:
    model, problems = parse_config(VALID)
    assert problems == []
    assert isinstance(model, MetricsConfiguration)
    metric = model.spec.metrics[0]
    assert metric.states is not None
    assert metric.states.values[0].metricValue.valueFromExpression == "int(p == 'A')"
    assert metric.metricValue is not None and metric.metricValue.value == 1.0
    assert model.status == VALID["status"]


def test_problems_carry_exact_field_paths() -> None:
    bad = {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1"},
            "commonLabels": [{"key": "a", "value": 3}],
            "metrics": [
                {"name": "ok", "help": "h", "type": "gauge", "metricValue": {"value": True}},
                {"name": "x", "help": "h", "type": "gauge", "states": {"labelKey": "p", "values": []},
                 "labels": [{"key": "k", "valuePaht": ".a"}]},
            ],
        },
    }
    model, problems = parse_config(bad)
    assert model is None
    assert [str(p) for p in problems] == [
        "metadata.name: required field is missing",
        "spec.targetRef.kind: required field is missing",
        "spec.commonLabels[0].value: Input should be a valid string (got 3)",
        "spec.metrics[0].metricValue.value: Input should be a valid number (got True)",
        "spec.metrics[1].labels[0].valuePaht: unknown field",
        "spec.metrics[1].states.values: List should have at least 1 item after validation, not 0 (got list)",
    ]


def test_empty_metrics_and_wrong_kind() -> None:
    _, problems = parse_config({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                                "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}, "metrics": []}})
    assert [p.path for p in problems] == ["apiVersion", "kind", "spec.metrics"]
