"""Issue 14: the admission webhooks against the real kube-apiserver v1.20 and real kubectl.

A real ``panopticon serve`` (cluster mode, exporter) serves the webhooks on its HTTPS port; the
ValidatingWebhookConfiguration is deploy/base's own, pointed at that server (an ExternalName
Service to localhost, ``caBundle`` from ``panopticon certs``). Denial messages are compared with
what ``panopticon check`` prints for the same file. The configuration is removed at the end, so
the rest of the session's cluster is unaffected.
"""

from __future__ import annotations

import base64
import copy
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import KubeCluster
from tests.e2e.panopticon_server import PanopticonServer, running_server

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_NAME = "panopticon-e2e"
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.e2e.example.com"},
    "spec": {
        "group": "e2e.example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"},
                                                          "size": {"type": "string"}}},
            }}},
        }],
    },
}


def metric(name: str, **value: str) -> dict[str, Any]:
    return {"name": name, "help": name, "type": "gauge", "metricValue": value}


def configuration(name: str, *metrics: dict[str, Any], api_version: str = "apps/v1",
                  kind: str = "Deployment") -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name},
            "spec": {"targetRef": {"apiVersion": api_version, "kind": kind}, "metrics": list(metrics)}}


GOOD = configuration("e2e-admission", metric("admission_replicas", valueFromPath=".spec.replicas"))
BROKEN = configuration(
    "e2e-admission",
    metric("admission_one", valueFromExpression="no_such_function(obj)"),
    metric("admission_fine", valueFromPath=".spec.replicas"),
    metric("admission_two", valueFromExpression="1 + * 2"),
)


def write(path: Path, *objects: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(list(objects), sort_keys=False))
    return path


def check_lines(path: Path, *extra: str) -> list[str]:
    """``panopticon check``'s problem lines for ``path``, without their ``FILE:LINE: `` prefix."""
    command = [sys.executable, "-m", "apiserver.cli", "check", "-c", str(path), *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"{path}:")]
    assert result.returncode == 1 and lines, result.stdout + result.stderr
    return [line.split(": ", 1)[1] for line in lines]


def denial(stderr: str, webhook: str) -> str:
    marker = f'admission webhook "{webhook}" denied the request: '
    assert marker in stderr, stderr
    return stderr.split(marker, 1)[1].rstrip("\n")


def webhook_configuration(server: PanopticonServer) -> dict[str, Any]:
    """deploy/base's ValidatingWebhookConfiguration, pointed at ``server``."""
    manifest = yaml.safe_load((ROOT / "deploy" / "base" / "validatingwebhook.yaml").read_text())
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["name"] = WEBHOOK_NAME
    registration = server.registration
    for webhook in manifest["webhooks"]:
        webhook["clientConfig"]["caBundle"] = base64.b64encode(server.ca_pem).decode()
        webhook["clientConfig"]["service"].update(
            namespace=registration.namespace, name=registration.service, port=registration.port)
    return manifest


@pytest.fixture(scope="module")
def admission(kube_cluster: KubeCluster,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanopticonServer]:
    kube_cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "crds" / "thanos.yaml"))
    kube_cluster.apply(WIDGET_CRD)
    for crd in ("thanos.monitoring.paodin.io", "widgets.e2e.example.com"):
        kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    with running_server(kube_cluster, tmp_path_factory.mktemp("admission")) as server:
        kube_cluster.apply(webhook_configuration(server))
        try:
            # The kube-apiserver picks up a new webhook configuration within a second or so.
            probe = write(tmp_path_factory.mktemp("probe") / "probe.yaml", BROKEN)
            server.wait_for(
                lambda: "denied the request" in kube_cluster.kubectl(
                    "apply", "--dry-run=server", "-f", str(probe), check=False).stderr,
                timeout=30, what="the webhook configuration taking effect")
            yield server
        finally:
            kube_cluster.kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_NAME,
                                 "--ignore-not-found")
            kube_cluster.kubectl("delete", "metricsconfiguration", "e2e-admission", "e2e-widgets",
                                 "e2e-admission-down", "--ignore-not-found")


def test_ac1_two_problems_refused_with_checks_lines_good_accepted_update_refused(
    admission: PanopticonServer, kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    broken = write(tmp_path / "broken.yaml", BROKEN)
    expected = check_lines(broken)
    assert len(expected) == 2
    assert expected[0].startswith("e2e-admission: spec.metrics[0].metricValue.valueFromExpression: ")
    assert expected[1].startswith("e2e-admission: spec.metrics[2].metricValue.valueFromExpression: ")
    webhook = "metricsconfigurations.metrics.appscode.com"
    for dry_run in ((), ("--dry-run=server",)):
        result = kube_cluster.kubectl("apply", *dry_run, "-f", str(broken), check=False)
        assert result.returncode != 0
        assert denial(result.stderr, webhook).split("\n") == expected
    assert kube_cluster.kubectl("get", "metricsconfiguration", "e2e-admission", check=False).returncode != 0
    good = write(tmp_path / "good.yaml", GOOD)
    dry = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(good))
    assert "created (server dry run)" in dry.stdout
    created = kube_cluster.kubectl("apply", "-f", str(good))
    assert "metricsconfiguration.metrics.appscode.com/e2e-admission created" in created.stdout
    update = kube_cluster.kubectl("apply", "-f", str(broken), check=False)
    assert update.returncode != 0
    assert denial(update.stderr, webhook).split("\n") == expected
    stored = kube_cluster.get_json("metricsconfiguration", "e2e-admission")
    assert [m["name"] for m in stored["spec"]["metrics"]] == ["admission_replicas"]


def test_ac1_structural_schema_still_runs_first(admission: PanopticonServer, kube_cluster: KubeCluster,
                                                tmp_path: Path) -> None:
    wrong_type = configuration("e2e-admission-schema", {**metric("x", valueFromPath=".a"), "type": "counter"})
    result = kube_cluster.kubectl("apply", "--dry-run=server", "-f",
                                  str(write(tmp_path / "schema.yaml", wrong_type)), check=False)
    assert result.returncode != 0
    assert "admission webhook" not in result.stderr  # refused by the CRD's schema, before any webhook
    assert 'spec.metrics.type: Unsupported value: "counter"' in result.stderr  # 1.20 drops the index


def thanos(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "monitoring.paodin.io/v1alpha1", "kind": "Thanos",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_ac2_thanos_replication_factor_and_object_storage_refused_with_field_path(
    admission: PanopticonServer, kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    webhook = "thanos.monitoring.paodin.io"
    factor = write(tmp_path / "factor.yaml", thanos("e2e-factor", receive={
        "router": {"replicationFactor": 3},
        "ingestors": [{"name": "hard", "replicas": 2, "tenants": ["team-a"]}]}))
    result = kube_cluster.kubectl("apply", "-f", str(factor), check=False)
    assert result.returncode != 0
    message = denial(result.stderr, webhook)
    assert message.startswith("e2e-factor: spec.receive.ingestors[0].replicas: 2 is less than "
                              "spec.receive.router.replicationFactor=3")
    assert message.split("\n") == check_lines(factor)
    bucketless = write(tmp_path / "bucketless.yaml", thanos("e2e-bucketless", storeGateway={}))
    result = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(bucketless), check=False)
    assert result.returncode != 0
    assert denial(result.stderr, webhook) == (
        "e2e-bucketless: spec.storeGateway.objectStorageConfig: required: Thanos store cannot start "
        "without an object storage configuration")
    fine = write(tmp_path / "fine.yaml", thanos("e2e-fine", query={"replicas": 1}))
    accepted = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(fine))
    assert "created (server dry run)" in accepted.stdout


def test_ac3_schema_typo_prints_a_warning_and_succeeds(admission: PanopticonServer, kube_cluster: KubeCluster,
                                                       tmp_path: Path) -> None:
    typo = write(tmp_path / "typo.yaml", configuration(
        "e2e-widgets", metric("widget_replicas", valueFromPath=".spec.replica"),
        api_version="e2e.example.com/v1", kind="Widget"))
    crd = write(tmp_path / "crd.yaml", WIDGET_CRD)
    [expected] = check_lines(typo, "--schema", str(crd))  # check: a problem; the webhook: a warning
    assert expected == ("e2e-widgets: spec.metrics[0].metricValue.valueFromPath: '.spec.replica': the schema "
                        "of the target has no field 'replica' under .spec; did you mean '.spec.replicas'?")
    result = kube_cluster.kubectl("apply", "-f", str(typo))
    assert "metricsconfiguration.metrics.appscode.com/e2e-widgets created" in result.stdout
    assert f"Warning: {expected}" in result.stderr.splitlines()


def test_ac3_native_kind_typo_warns_from_the_kube_apiservers_openapi(
    admission: PanopticonServer, kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    typo = write(tmp_path / "native.yaml", configuration(
        "e2e-native", metric("deployment_ready", valueFromPath=".status.readyReplica")))
    result = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(typo))
    assert "created (server dry run)" in result.stdout
    assert ("Warning: e2e-native: spec.metrics[0].metricValue.valueFromPath: '.status.readyReplica': the "
            "schema of the target has no field 'readyReplica' under .status; did you mean "
            "'.status.readyReplicas'?") in result.stderr.splitlines(), result.stderr


def test_ac4_server_stopped_failure_policies(admission: PanopticonServer, kube_cluster: KubeCluster,
                                             tmp_path: Path) -> None:
    """Last in the module: kills the server. MetricsConfigurations: Ignore; Thanos: Fail."""
    os.killpg(admission.process.pid, signal.SIGKILL)
    admission.process.wait(10)
    down = dict(BROKEN, metadata={"name": "e2e-admission-down"})
    result = kube_cluster.kubectl("apply", "-f", str(write(tmp_path / "down.yaml", down)))
    assert "metricsconfiguration.metrics.appscode.com/e2e-admission-down created" in result.stdout
    thanos_file = write(tmp_path / "thanos-down.yaml", thanos("e2e-down", query={"replicas": 1}))
    result = kube_cluster.kubectl("apply", "-f", str(thanos_file), check=False)
    assert result.returncode != 0
    assert 'failed calling webhook "thanos.monitoring.paodin.io"' in result.stderr, result.stderr


def _kustomize(path: str) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True,
                         check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_deploy_webhook_configuration_base_and_cert_manager_overlay(kube_cluster: KubeCluster) -> None:
    [base] = [d for d in _kustomize("deploy") if d["kind"] == "ValidatingWebhookConfiguration"]
    hooks = {w["name"]: w for w in base["webhooks"]}
    assert set(hooks) == {"metricsconfigurations.metrics.appscode.com", "thanos.monitoring.paodin.io"}
    assert hooks["metricsconfigurations.metrics.appscode.com"]["failurePolicy"] == "Ignore"
    assert hooks["thanos.monitoring.paodin.io"]["failurePolicy"] == "Fail"
    for hook in hooks.values():
        assert hook["sideEffects"] == "None" and hook["matchPolicy"] == "Equivalent"
        assert hook["timeoutSeconds"] <= 5 and hook["admissionReviewVersions"] == ["v1"]
        assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
        assert hook["clientConfig"]["service"] == {
            "namespace": "panopticon", "name": "panopticon", "port": 443,
            "path": hook["clientConfig"]["service"]["path"]}
        assert hook["clientConfig"]["caBundle"]
    [overlay] = [d for d in _kustomize("deploy/overlays/cert-manager")
                 if d["kind"] == "ValidatingWebhookConfiguration"]
    assert overlay["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        "panopticon/panopticon-serving-cert")
    assert all("caBundle" not in w["clientConfig"] for w in overlay["webhooks"])
    # The real kube-apiserver accepts it (admissionregistration.k8s.io/v1 in 1.20).
    kube_cluster.ensure_namespace("panopticon")
    result = kube_cluster.kubectl("apply", "--dry-run=server", "-k", str(ROOT / "deploy"))
    assert ("validatingwebhookconfiguration.admissionregistration.k8s.io/panopticon created (server dry run)"
            in result.stdout)
