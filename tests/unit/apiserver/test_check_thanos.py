"""``panopticon check`` accepts Thanos files and prints what the admission webhook answers."""

from __future__ import annotations

import io
from pathlib import Path

from apiserver.commands.check import check
from exporter.compiler import format_problem
from exporter.types import Problem, object_line
from thanos_operator.review import review_thanos

THANOS = """\
apiVersion: monitoring.paodin.io/v1alpha1
kind: Thanos
metadata:
  name: t
  namespace: mon
spec:
  receive:
    router:
      replicationFactor: 3
    ingestors:
      - name: hard
        replicas: 2
        tenants: [a]
---
apiVersion: monitoring.paodin.io/v1alpha1
kind: Thanos
metadata:
  name: fine
  namespace: mon
spec:
  query:
    replicas: 1
"""


def test_check_prints_thanos_problems_with_file_line_and_field_path(tmp_path: Path) -> None:
    path = tmp_path / "thanos.yaml"
    path.write_text(THANOS)
    out = io.StringIO()
    assert check(config_paths=[str(path)], object_paths=[], out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"{path}:12: t: spec.receive.ingestors[0].replicas: 2 is less than "
                        "spec.receive.router.replicationFactor=3: every hashring needs at least "
                        "replicationFactor endpoints")
    assert lines[-1] == "1 problem(s) found"


def test_check_lines_are_the_webhook_lines_after_the_location(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "thanos.yaml"
    path.write_text(THANOS)
    out = io.StringIO()
    check(config_paths=[str(path)], object_paths=[], out=out)
    printed = [line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith(str(path))]
    webhook = [line for doc in yaml.safe_load_all(THANOS) for line in review_thanos(doc).problem_lines]
    assert printed == webhook


def test_only_thanos_objects_is_ok(tmp_path: Path) -> None:
    path = tmp_path / "fine.yaml"
    path.write_text(THANOS.split("---\n")[1])
    out = io.StringIO()
    assert check(config_paths=[str(path)], object_paths=[], out=out) == 0
    assert out.getvalue().strip() == "OK: 0 configuration(s), 0 metric families; 1 Thanos object(s)"


def test_one_line_format() -> None:
    problem = Problem(path="spec.x", message="bad")
    assert object_line("n", problem) == "n: spec.x: bad"
    assert object_line("", problem) == "(unnamed): spec.x: bad"
    assert format_problem(source="f.yaml:3", name="n", problem=problem) == "f.yaml:3: n: spec.x: bad"
