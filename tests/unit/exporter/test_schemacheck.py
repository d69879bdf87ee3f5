"""``check --schema``: paths the target's schema cannot have, with a did-you-mean (CRDs and
OpenAPI v2 documents), against a small hand-written CRD."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from apiserver.commands.check import check
from exporter.schemacheck import SchemaIndex

CRD = Path(__file__).parent / "schemas" / "widgets-crd.yaml"


def config(*paths: str, api_version: str = "example.com/v1", kind: str = "Widget") -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "widgets"},
            "spec": {"targetRef": {"apiVersion": api_version, "kind": kind},
                     "metrics": [{"name": f"m{i}", "help": "h", "type": "gauge",
                                  "metricValue": {"valueFromPath": p}} for i, p in enumerate(paths)]}}


@pytest.fixture
def index() -> SchemaIndex:
    found = SchemaIndex()
    assert found.add_document(yaml.safe_load(CRD.read_text())) == 1
    return found


@pytest.mark.parametrize(("path", "hint"), [
    (".spec.replica", ".spec.replicas"),  # close match
    (".spec.nodename", ".spec.nodeName"),  # wrong case
    (".specreplicas", ".spec.replicas"),  # a missing dot
    (".status.conditions[*].stat", ".status.conditions[*].status"),  # inside array items
    (".spec.shards[0].nam", ".spec.shards[0].name"),
])
def test_typos_are_reported_with_a_did_you_mean(index: SchemaIndex, path: str, hint: str) -> None:
    (problem,) = index.check(config(path))
    assert problem.path == "spec.metrics[0].metricValue.valueFromPath"
    assert f"did you mean {hint!r}?" in problem.message


@pytest.mark.parametrize("path", [
    ".spec.replicas", ".status.conditions[*].type", ".metadata.labels.app",  # metadata: free-form
    ".spec.podTemplate.spec.containers[0].name",  # preserve-unknown-fields
    ".spec.labels.anything", ".", ".status.conditions[?(@.type=='Ready')].status",  # filters: not checked
])
def test_valid_paths_pass(index: SchemaIndex, path: str) -> None:
    assert index.check(config(path)) == []


def test_no_field_under_a_scalar_and_unknown_kinds_are_not_checked(index: SchemaIndex) -> None:
    (problem,) = index.check(config(".spec.replicas[0]"))
    assert "is a integer, it has no elements" in problem.message
    assert index.check(config(".spec.nope", kind="Gadget")) == []


def test_openapi_v2_definitions_with_refs() -> None:
    openapi = {"definitions": {
        "io.k8s.api.apps.v1.Deployment": {
            "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
            "properties": {"spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}}},
        "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {"replicas": {"type": "integer"}}},
    }}
    index = SchemaIndex()
    assert index.add_document(openapi) == 1
    (problem,) = index.check(config(".spec.replica", api_version="apps/v1", kind="Deployment"))
    assert "did you mean '.spec.replicas'?" in problem.message


def test_check_command_with_schema_names_the_field_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(".spec.replicas", ".spec.replica"), sort_keys=False))
    out = io.StringIO()
    assert check(config_paths=[str(path)], object_paths=[], schema_paths=[str(CRD)], out=out) == 1
    lines = out.getvalue().splitlines()
    text = path.read_text().splitlines()
    line = next(i for i, row in enumerate(text, 1) if row.endswith(".spec.replica"))
    assert lines[0].startswith(f"{path}:{line}: widgets: spec.metrics[1].metricValue.valueFromPath: ")
    assert lines[-1] == "1 problem(s) found"
    out = io.StringIO()
    (tmp_path / "openapi.json").write_text(json.dumps({"definitions": {}}))
    assert check(config_paths=[str(path)], object_paths=[], schema_paths=[str(tmp_path / "openapi.json")],
                 out=out) == 0
    assert "no --schema for example.com/v1 Widget" in out.getvalue()
