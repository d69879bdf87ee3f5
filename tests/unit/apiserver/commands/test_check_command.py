"""``panopticon check``: every kind of bad input gives a clear line with its field path, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from apiserver.commands.check import check

ROOT = Path(__file__).resolve().parents[4]
HEADER = """\
apiVersion: metrics.appscode.com/v1alpha1
kind: MetricsConfiguration
metadata:
  name: broken
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment}
  metrics:
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiserver.cli", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_examples_check_clean_with_samples() -> None:
    result = run_cli("-c", "examples/configs", "-f", "examples/objects")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "OK: 3 configuration(s), 19 metric families; 10 sample object(s) rendered into 83 series")
    # absent optional values in the samples are notes, not failures
    assert "Deployment monitoring/grafana: apps-deployment: metric 'kube_deployment_status_replicas': " \
           "note (missing)" in result.stdout


M0 = ":8: broken: spec.metrics[0]."  # the line of the field (flow style: the metric's line)
M1 = ":9: broken: spec.metrics[0]."
BAD_CASES = {
    "malformed YAML": ("metrics: [\n  - a: b\n", ":2: malformed YAML"),
    "unknown field": (HEADER + "  - {name: a, help: h, type: gauge, metricValue: {value: 1}, colour: red}\n",
                      M0 + "colour: unknown field"),
    "wrong type": (HEADER + "  - {name: a, help: h, type: gauge, metricValue: {value: [1]}}\n",
                   M0 + "metricValue.value: Input should be a valid number"),
    "wrong enum": (HEADER + "  - {name: a, help: h, type: counter, metricValue: {value: 1}}\n",
                   M0 + "type: must be one of 'gauge' (got 'counter')"),
    "bad expression": (HEADER + "  - {name: a, help: h, type: gauge, params: [{key: p, value: x}],\n"
                       "     metricValue: {valueFromExpression: \"int(p == 'x'\"}}\n",
                       M1 + "metricValue.valueFromExpression: column 13: expected ',' or ')' in call of int"),
    "unknown function": (HEADER + "  - {name: a, help: h, type: gauge,\n"
                         "     metricValue: {valueFromExpression: 'f(1)'}}\n",
                         M1 + "metricValue.valueFromExpression: column 1: unknown function 'f'"),
    "invalid metric name": (HEADER + "  - {name: 'a-b', help: h, type: gauge, metricValue: {value: 1}}\n",
                            M0 + "name: family name 'apps_deployment_a-b' is not a valid"),
    "invalid label name": (HEADER + "  - {name: a, help: h, type: gauge, labels: [{key: 'x.y', value: v}],\n"
                           "     metricValue: {value: 1}}\n",
                           M0 + "labels[0].key: 'x.y' is not a valid Prometheus label name"),
    "bad path": (HEADER + "  - {name: a, help: h, type: gauge, metricValue: {valueFromPath: '.spec[('}}\n",
                 M0 + "metricValue.valueFromPath: cannot parse path"),
    "wrong apiVersion": (HEADER.replace("v1alpha1", "v1beta1") + "  - {name: a}\n",
                         ":1: broken: apiVersion: must be metrics.appscode.com/v1alpha1"),
    "not a mapping": ("- just\n- a list\n", ":1: document 0 is a list"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gives_one_clear_line(case: str, tmp_path: Path) -> None:
    text, expected = BAD_CASES[case]
    file = tmp_path / "config.yaml"
    file.write_text(text)
    result = run_cli("-c", str(file))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert f"{file}{expected}" in output, output


def test_all_problems_of_all_files_are_listed(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEADER + "  - {name: a, help: h, type: gauge, metricValue: {}}\n"
                                     "  - {name: b, help: h, type: gauge}\n")
    (tmp_path / "b.yaml").write_text(HEADER.replace("broken", "other")
                                     + "  - {name: a, help: h, type: gauge, metricValue: {value: 1}}\n")
    out = io.StringIO()
    assert check(config_paths=[str(tmp_path)], object_paths=[], out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines == [
        f"{tmp_path / 'a.yaml'}:8: broken: spec.metrics[0].metricValue: "
        "metricValue needs one of value, valueFromPath, valueFromExpression",
        f"{tmp_path / 'a.yaml'}:9: broken: spec.metrics[1]: a metric needs states or metricValue",
        "2 problem(s) found",
    ]


def test_conflicting_configurations_are_reported(tmp_path: Path) -> None:
    body = "  - {name: a, help: h, type: gauge, metricValue: {value: 1}}\n"
    (tmp_path / "one.yaml").write_text(HEADER.replace("broken", "one") + body)
    other_help = body.replace("help: h", "help: other")
    (tmp_path / "two.yaml").write_text(HEADER.replace("broken", "two") + other_help)
    out = io.StringIO()
    assert check(config_paths=[str(tmp_path)], object_paths=[], out=out) == 1
    assert out.getvalue().splitlines()[0] == (
        f"{tmp_path / 'two.yaml'}:8: two: spec.metrics[0].name: family 'apps_deployment_a' is also produced "
        "by configuration 'one' (spec.metrics[0]) and cannot be shared: HELP differs: 'h' in 'one', "
        "'other' in 'two'")


def test_sample_conversion_errors_fail_the_check(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        HEADER + "  - {name: r, help: h, type: gauge, metricValue: {valueFromPath: .spec.replicas}}\n")
    (tmp_path / "o.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\nspec: {replicas: many}\n")
    out = io.StringIO()
    code = check(config_paths=[str(tmp_path / "c.yaml")], object_paths=[str(tmp_path / "o.yaml")], out=out)
    assert code == 1
    assert f"{tmp_path / 'o.yaml'}:1: Deployment n/d: broken: metric 'r': error (conversion): " \
           "not a number: 'many'" in out.getvalue()


def test_missing_files_are_a_clean_error(tmp_path: Path) -> None:
    result = run_cli("-c", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "no such file or directory" in result.stdout


def test_problems_point_at_the_line_of_the_field(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(HEADER + """\
  - name: ok
    help: h
    type: gauge
    field:
      path: .spec.replicas
      type: Float
    metricValue:
      valueFromPath: .spec.replicas
""")
    out = io.StringIO()
    assert check(config_paths=[str(file)], object_paths=[], out=out) == 1
    assert out.getvalue().splitlines()[0] == (
        f"{file}:13: broken: spec.metrics[0].field.type: must be one of 'Integer', 'DateTime', 'Array', "
        "'String', 'Entries' or 'Elements' (got 'Float')")


def test_a_configuration_defined_twice_is_reported(tmp_path: Path) -> None:
    body = HEADER + "  - {name: a, help: h, type: gauge, metricValue: {value: 1}}\n"
    (tmp_path / "1.yaml").write_text(body)
    (tmp_path / "2.yaml").write_text(body)
    out = io.StringIO()
    assert check(config_paths=[str(tmp_path)], object_paths=[], out=out) == 1
    assert out.getvalue().splitlines()[0] == (
        f"{tmp_path / '2.yaml'}:4: broken: metadata.name: configuration 'broken' is also defined at "
        f"{tmp_path / '1.yaml'}:1")


def test_schema_and_compile_problems_of_one_file_and_of_other_files_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEADER + """\
  - name: phase
    help: p
    type: gauge
    states:
      values: [{labelValue: A, metricValue: {value: 1}}]
  - name: broken
    help: b
    type: gauge
    params: [{key: a, valuePath: .spec.replicas}]
    metricValue: {valueFromExpression: "a +"}
""")
    (tmp_path / "b.yaml").write_text("metadata: [unclosed\n")
    (tmp_path / "c.yaml").write_text(HEADER.replace("name: broken", "name: other") + """\
  - {name: x, help: x, type: gauge, metricValue: {valueFromExpression: "nope(1)"}}
""")
    out = io.StringIO()
    assert check(config_paths=[str(tmp_path)], object_paths=[], out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[-1] == "4 problem(s) found", lines
    text = "\n".join(lines)
    a = tmp_path / "a.yaml"
    assert f"{a}:11: broken: spec.metrics[0].states.labelKey: required field is missing" in text
    assert f"{a}:17: broken: spec.metrics[1].metricValue.valueFromExpression: column 4:" in text
    assert "b.yaml:2: malformed YAML" in text
    assert "other: spec.metrics[0].metricValue.valueFromExpression: column 1: unknown function 'nope'" in text
