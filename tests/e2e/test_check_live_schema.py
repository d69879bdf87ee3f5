"""``panopticon check --kubeconfig``: paths checked against the live cluster's schemas (the
kube-apiserver's /openapi/v2 for native kinds, each CRD's own schema for custom kinds)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.e2e.cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "tests" / "unit" / "exporter" / "schemas" / "widgets-crd.yaml"


def config(name: str, api_version: str, kind: str, path: str) -> dict[str, object]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name},
            "spec": {"targetRef": {"apiVersion": api_version, "kind": kind},
                     "metrics": [{"name": "m", "help": "h", "type": "gauge",
                                  "metricValue": {"valueFromPath": path}}]}}


def test_check_against_the_live_cluster(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    kube_cluster.apply(yaml.safe_load(CRD.read_text()))
    deadline = time.monotonic() + 30
    while "Established" not in kube_cluster.kubectl(
            "get", "crd", "widgets.example.com", "-o", "jsonpath={.status.conditions[*].type}").stdout:
        assert time.monotonic() < deadline, "CRD not established"
        time.sleep(0.5)
    path = tmp_path / "configs.yaml"
    path.write_text(yaml.safe_dump_all([
        config("deployments", "apps/v1", "Deployment", ".spec.replica"),
        config("pods", "v1", "Pod", ".spec.nodename"),
        config("widgets", "example.com/v1", "Widget", ".specreplicas"),
        config("good", "apps/v1", "StatefulSet", ".spec.replicas"),
    ]))
    proc = subprocess.run([sys.executable, "-m", "apiserver.cli", "check", "-c", str(path),
                           "--kubeconfig", str(kube_cluster.kubeconfig)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "deployments: spec.metrics[0].metricValue.valueFromPath: '.spec.replica'" in out
    assert "did you mean '.spec.replicas'?" in out
    assert "did you mean '.spec.nodeName'?" in out
    assert "widgets: spec.metrics[0].metricValue.valueFromPath: '.specreplicas'" in out
    assert out.splitlines()[-1] == "3 problem(s) found", out
