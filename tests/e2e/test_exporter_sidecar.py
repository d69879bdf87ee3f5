"""Sidecar mode: a namespaced Role is all `panopticon serve` needs (deploy/sidecar).

The Role, RoleBinding and ServiceAccount of deploy/sidecar are applied to the test namespace;
the process runs with that service account's token, configurations from the ConfigMap's files
(`--config`) and `--namespaces=<ns>`. It must export the Deployments of its namespace, see none
of another namespace, and stay up although it may not watch CRDs or MetricsConfigurations.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import ROOT, serve, wait_for
from tests.e2e.manifests import deployment

SIDECAR = ROOT / "deploy" / "sidecar"


def test_sidecar_with_a_namespaced_role_only(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    for manifest in ("serviceaccount.yaml", "role.yaml", "rolebinding.yaml"):
        kube_cluster.kubectl("apply", "-n", kube_namespace, "-f", str(SIDECAR / manifest))
    token = kube_cluster.service_account_token(kube_namespace, "panopticon-sidecar")
    as_sidecar = kube_cluster.make_token_kubeconfig(f"sidecar-{kube_namespace}", token)
    denied = kube_cluster.kubectl(
        "get", "deployments", "--all-namespaces", user_kubeconfig=as_sidecar, check=False
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

    configmap = yaml.safe_load((SIDECAR / "configmap.yaml").read_text())
    configs = tmp_path / "configs"
    configs.mkdir()
    for name, text in configmap["data"].items():
        (configs / name).write_text(text)

    other = f"{kube_namespace}-other"
    kube_cluster.ensure_namespace(other)
    kube_cluster.apply(
        deployment("mine", kube_namespace, 3, image="x"), deployment("theirs", other, 5, image="x")
    )
    prefix = "apps_deployment_spec_replicas{"
    with serve(
        kube_cluster, tmp_path, f"--config={configs}", f"--namespaces={kube_namespace}", kubeconfig=as_sidecar
    ) as proc:
        want = {f'{prefix}namespace="{kube_namespace}",deployment="mine"}} 3'}
        wait_for(
            lambda: proc.samples(prefix) == want,
            timeout=30,
            what=lambda: f"{sorted(proc.samples(prefix))}\n{proc.log_tail()}",
        )
        wait_for(lambda: proc.get("/readyz")[0] == 200, timeout=10, what=proc.log_tail)
        kube_cluster.apply(deployment("mine", kube_namespace, 4, image="x"))
        want = {f'{prefix}namespace="{kube_namespace}",deployment="mine"}} 4'}
        wait_for(lambda: proc.samples(prefix) == want, timeout=2, what=proc.log_tail)
        assert proc.process.poll() is None
