"""AC4: the kustomize base builds and the real kube-apiserver accepts it (server-side dry run)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.e2e.cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[2]


def _kustomize(path: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_kustomize_builds_base_overlay_and_examples() -> None:
    base = _kustomize("deploy")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in base}
    assert ("APIService", "v1alpha1.metrics.panopticon.io") in kinds
    assert ("ClusterRoleBinding", "panopticon:system:auth-delegator") in kinds
    reader = next(
        d for d in base if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "panopticon-auth-reader"
    )
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    deployment = next(d for d in base if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # High availability (issue 15): two replicas, never both down by choice, spread over nodes.
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    pdb = next(d for d in base if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": spec["selector"]["matchLabels"]}}
    service = next(d for d in base if d["kind"] == "Service")
    assert service["spec"]["ports"][0] == {
        "name": "https",
        "port": 443,
        "targetPort": "https",
        "protocol": "TCP",
    }
    aggregated = next(
        d for d in base if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "panopticon-metrics-reader"
    )
    assert aggregated["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    overlay = _kustomize("deploy/overlays/cert-manager")
    apiservice = next(d for d in overlay if d["kind"] == "APIService")
    assert (
        apiservice["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == "panopticon/panopticon-serving-cert"
    )
    assert "caBundle" not in apiservice["spec"]
    assert {d["kind"] for d in _kustomize("deploy/examples")} >= {"MetricsConfiguration", "ClusterRole"}
    # Scale-out: a StatefulSet of shards that find each other through the headless Service.
    sharded = _kustomize("deploy/overlays/sharded")
    assert not [d for d in sharded if d["kind"] == "Deployment"]
    sts = next(d for d in sharded if d["kind"] == "StatefulSet")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--pod=$(POD_NAME)", "--peer-service=panopticon-peers"} <= set(args)
    peers = next(d for d in sharded if d["kind"] == "Service" and d["metadata"]["name"] == "panopticon-peers")
    assert peers["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "panopticon-peers"
    assert peers["spec"]["ports"][0]["name"] == "https"  # apiserver.peers looks the port up by name


def test_ac4_server_side_dry_run_of_the_base(kube_cluster: KubeCluster) -> None:
    # A server-side dry run persists nothing, so objects in the panopticon namespace need it to
    # exist already (a real apply creates the Namespace first).
    kube_cluster.ensure_namespace("panopticon")
    # Through the 1.20 overlay: the test cluster serves PodDisruptionBudget only as policy/v1beta1.
    result = kube_cluster.kubectl(
        "apply", "--dry-run=server", "-k", str(ROOT / "tests" / "e2e" / "overlays" / "kube-1.20")
    )
    # "created", or "configured"/"unchanged" when another test applied deploy/ for real before.
    for name in (
        "apiservice.apiregistration.k8s.io/v1alpha1.metrics.panopticon.io",
        "deployment.apps/panopticon",
        "poddisruptionbudget.policy/panopticon",
    ):
        assert re.search(rf"^{re.escape(name)} (created|configured|unchanged) \(server dry run\)$",
                         result.stdout, re.M), result.stdout


def test_ac4_examples_accepted_once_crds_exist(kube_cluster: KubeCluster) -> None:
    kube_cluster.kubectl("apply", "-k", str(ROOT / "deploy" / "crds"))
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/metricsconfigurations.metrics.appscode.com",
        "--timeout=60s",
    )
    result = kube_cluster.kubectl("apply", "--dry-run=server", "-k", str(ROOT / "deploy" / "examples"))
    assert "created (server dry run)" in result.stdout or "configured (server dry run)" in result.stdout


def test_s01_apiservice_registration_is_valid() -> None:
    base = _kustomize("deploy")
    apiservice = next(d for d in base if d["kind"] == "APIService")
    spec = apiservice["spec"]
    assert apiservice["metadata"]["name"] == f"{spec['version']}.{spec['group']}"
    assert 1 <= spec["groupPriorityMinimum"] <= 20000 and 1 <= spec["versionPriority"] <= 1000
    assert ("caBundle" in spec) != bool(spec.get("insecureSkipTLSVerify"))
    service = next(
        d for d in base if d["kind"] == "Service" and d["metadata"]["name"] == spec["service"]["name"]
    )
    assert service["metadata"]["namespace"] == spec["service"]["namespace"]
    port = next(p for p in service["spec"]["ports"] if p["port"] == spec["service"]["port"])
    # The aggregator needs a ready endpoint port with the Service port's *name*: the targetPort
    # names the container port, so the endpoint port inherits the name.
    container = next(d for d in base if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert "--secure-port=8443" in container["args"]
    assert next(p for p in container["ports"] if p["name"] == port["targetPort"])["containerPort"] == 8443
