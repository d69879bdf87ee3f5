"""``panopticon check`` / ``render`` on Thanos files: FILE:LINE: NAME: field.path: message, and YAML."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from apiserver.cli import main
from apiserver.commands.check import check

BAD = """\
apiVersion: monitoring.paodin.io/v1alpha1
kind: Thanos
metadata:
  name: bad
spec:
  query:
    stores:
    - addresses:
      - <member-thanos-sidecar-adress>:10901
---
apiVersion: monitoring.paodin.io/v1alpha1
kind: Thanos
metadata:
  name: bad2
spec:
  receive:
    router: {}
"""
GOOD = Path(__file__).resolve().parents[2] / "golden" / "thanos" / "cases" / "sample.input.yaml"


def test_check_prints_each_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    out = io.StringIO()
    assert check(config_paths=[str(path)], object_paths=[], out=out) == 1
    assert out.getvalue().splitlines() == [
        f"{path}:9: bad: spec.query.stores[0].addresses[0]: '<member-thanos-sidecar-adress>:10901': "
        "'<member-thanos-sidecar-adress>' is not a DNS name or IP address (a placeholder left in?)",
        f"{path}:16: bad2: spec.receive.ingestors: required: at least one ingestor with replicas >= 1; the "
        "router cannot start with an empty hashrings file",
        "2 problem(s) found",
    ]


def test_check_accepts_a_valid_thanos_file() -> None:
    out = io.StringIO()
    assert check(config_paths=[str(GOOD)], object_paths=[], out=out) == 0
    assert out.getvalue().strip() == "OK: 0 configuration(s), 0 metric families; 1 Thanos object(s)"


def test_render_prints_the_desired_objects_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-c", str(GOOD)]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "thanos-sample-query") in kinds and (
        "PodDisruptionBudget",
        "thanos-sample-query",
    ) in kinds


def test_render_refuses_an_invalid_thanos_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert main(["render", "-c", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and f"{path}:16: bad2: spec.receive.ingestors: required" in captured.err
