"""The global ``--metric-labels-allowlist`` / ``--metric-annotations-allowlist`` flags
(exporter/metriclabels.py): kube-state-metrics' syntax, which configurations a resource names,
and that they feed the per-configuration allow-lists (one rendering, one set of collision
checks, problems naming the flag) in ``render`` and ``serve``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.compiler import CompileError, compile_config
from exporter.metriclabels import MetricLabelsAllowlist, MetricLabelsError, plural_of
from exporter.types import TargetRef
from tests.offline_fixtures import free_port, http_get, serve, wait_ready

ROOT = Path(__file__).resolve().parents[3]


def test_parses_kube_state_metrics_syntax() -> None:
    flags = MetricLabelsAllowlist.parse(
        labels="pods=[k8s-app,app.kubernetes.io/*],deployments=[*], nodes = [ a , b ],jobs=[]",
        annotations="=*=[owner]")
    assert flags == MetricLabelsAllowlist(
        labels=(("pods", ("k8s-app", "app.kubernetes.io/*")), ("deployments", ("*",)), ("nodes", ("a", "b")),
                ("jobs", ())),
        annotations=(("*", ("owner",)),))
    assert MetricLabelsAllowlist.parse() is None


@pytest.mark.parametrize("text", ["pods", "pods=app", "pods=[app", "pods=[a]x", "=[a]",
                                  "pods=[a],,nodes=[b]"])
def test_a_value_that_does_not_parse_says_where_and_shows_the_syntax(text: str) -> None:
    with pytest.raises(MetricLabelsError, match=r"--metric-labels-allowlist: cannot parse .* expected "
                                                r"RESOURCE=\[KEY,\.\.\.\],\.\.\. e\.g\. pods="):
        MetricLabelsAllowlist.parse(labels=text)


@pytest.mark.parametrize(("kind", "plural"), [("Pod", "pods"), ("Ingress", "ingresses"),
                                              ("NetworkPolicy", "networkpolicies"), ("Gateway", "gateways"),
                                              ("Box", "boxes"), ("Mesh", "meshes")])
def test_plural_of_a_kind(kind: str, plural: str) -> None:
    assert plural_of(kind) == plural


def test_a_resource_names_targets_by_plural_kind_group_or_star() -> None:
    flags = MetricLabelsAllowlist.parse(
        labels="pods=[a],deployments.apps=[b],applications.argoproj.io=[c],endpoints=[d],*=[e],pod=[a,f]")
    assert flags is not None
    assert flags.for_target(TargetRef("v1", "Pod")) == (("a", "e", "f"), ())
    assert flags.for_target(TargetRef("apps/v1", "Deployment")) == (("b", "e"), ())
    assert flags.for_target(TargetRef("example.com/v1", "Deployment")) == (("e",), ())
    assert flags.for_target(TargetRef("argoproj.io/v1alpha1", "Application")) == (("c", "e"), ())
    assert flags.for_target(TargetRef("v1", "Endpoints")) == (("d", "e"), ())


def config(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "pods"},
            "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"},
                     "metrics": [{"name": "info", "help": "h", "type": "gauge", "metricValue": {"value": 1}}],
                     **spec}}


POD = {"metadata": {"name": "p", "namespace": "ns", "labels": {"team": "a", "app.kubernetes.io/name": "web",
                                                              "tier": "front"},
                    "annotations": {"owner": "me"}}}


def test_the_flags_add_to_the_configurations_own_lists() -> None:
    flags = MetricLabelsAllowlist.parse(labels="pods=[app.kubernetes.io/*,team]", annotations="pods=[owner]")
    plan = compile_config(config(labelsAllowlist=["team"]), metric_labels=flags)
    assert plan.render(POD) == (b'core_pod_info{namespace="ns",pod="p",label_app_kubernetes_io_name="web",'
                                b'label_team="a",annotation_owner="me"} 1\n',)
    other = MetricLabelsAllowlist.parse(labels="nodes=[*]")
    assert compile_config(config(), metric_labels=other).render(POD) == (
        b'core_pod_info{namespace="ns",pod="p"} 1\n',)


def test_collisions_with_flag_keys_are_compile_errors_naming_the_flag() -> None:
    flags = MetricLabelsAllowlist.parse(labels="pods=[team_x,team.x]")
    with pytest.raises(CompileError) as err:
        compile_config(config(), metric_labels=flags)
    assert [str(p) for p in err.value.problems] == [
        "spec.labelsAllowlist: 'team.x' (--metric-labels-allowlist) and 'team_x' (--metric-labels-allowlist) "
        "both become label 'label_team_x'"]
    cfg = config(commonLabels=[{"key": "label_tier", "value": "x"}], labelsAllowlist=["a.b"])
    with pytest.raises(CompileError) as err:
        compile_config(cfg, metric_labels=MetricLabelsAllowlist.parse(labels="*=[tier,a_b]"))
    assert [str(p) for p in err.value.problems] == [
        "spec.labelsAllowlist: 'a_b' (--metric-labels-allowlist) and 'a.b' (spec.labelsAllowlist[0]) both "
        "become label 'label_a_b'",
        "spec.commonLabels[0].key: label 'label_tier' collides with the labels 'label_tier' of "
        "--metric-labels-allowlist"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiserver.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)


def test_render_takes_the_flags_and_reports_problems_per_configuration(tmp_path: Path) -> None:
    examples = ROOT / "examples" / "extensions"
    ok = run("render", "-c", str(examples / "config.yaml"), "-f", str(examples / "objects.yaml"),
             "--metric-labels-allowlist=pods=[tier]", "--metric-annotations-allowlist=*=[note]")
    assert ok.returncode == 0, ok.stderr
    assert ('core_pod_ready{namespace="shop",pod="web-0",label_app_kubernetes_io_name="web",'
            'label_app_kubernetes_io_part_of="store",label_team="checkout",label_tier="front",'
            'annotation_note="ignored",annotation_owner="alice"} 0\n') in ok.stdout
    clashing = tmp_path / "clash.yaml"
    clashing.write_text(yaml.safe_dump(config(commonLabels=[{"key": "label_tier", "value": "x"}])))
    clash = run("render", "-c", str(clashing), "-c", str(examples / "config.yaml"), "-f",
                str(examples / "objects.yaml"), "--metric-labels-allowlist=*=[tier]")
    assert clash.returncode == 1
    assert (f"error: {clashing}:7: pods: spec.commonLabels[0].key: label 'label_tier' collides with the "
            "labels 'label_tier' of --metric-labels-allowlist") in clash.stderr, clash.stderr
    assert "core_node_capacity" in clash.stdout  # the other configurations are still rendered
    bad = run("render", "-c", str(examples / "config.yaml"), "--metric-labels-allowlist=pods")
    assert bad.returncode == 2 and "error: --metric-labels-allowlist: cannot parse 'pods'" in bad.stderr


def test_help_teaches_the_syntax() -> None:
    for command in ("render", "serve"):
        text = " ".join(run(command, "--help").stdout.split())
        assert "--metric-labels-allowlist RESOURCE=[KEY,...],..." in text
        assert "e.g. 'pods=[app,app.kubernetes.io/*],deployments=[*]'" in text
        assert "label_app_kubernetes_io_name" in text and "--metric-annotations-allowlist" in text


def test_serve_refuses_a_bad_value(tmp_path: Path) -> None:
    result = run("serve", "--source", str(tmp_path), "--metrics-bind-address=127.0.0.1:0",
                 "--metric-annotations-allowlist=pods=[a")
    assert result.returncode == 1, result.stderr
    assert "--metric-annotations-allowlist: cannot parse 'pods=[a'" in result.stderr


def test_serve_source_applies_the_flags(tmp_path: Path) -> None:
    """``serve --source``: the flag's labels on the served series (an aggregate keeps its own)."""
    (tmp_path / "config.yaml").write_text((ROOT / "examples" / "aggregates" / "config.yaml").read_text())
    (tmp_path / "objects.yaml").write_text((ROOT / "examples" / "aggregates" / "objects.yaml").read_text())
    (tmp_path / "extensions.yaml").write_text(
        yaml.safe_dump(config(metrics=[{"name": "info", "help": "h", "type": "gauge",
                                        "metricValue": {"value": 1}}]) | {"metadata": {"name": "info"}}))
    port = free_port()
    proc = serve("--source", str(tmp_path), f"--metrics-bind-address=127.0.0.1:{port}",
                 "--metric-labels-allowlist=pods=[team]")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        body = http_get(base + "/metrics")[2].decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert 'core_pod_info{namespace="shop",pod="web-0",label_team="checkout"} 1\n' in body
    assert 'core_pod_by_phase{namespace="shop",phase="Running"} 2\n' in body
