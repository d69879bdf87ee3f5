"""The Ruler's PrometheusRule sources on the real kube-apiserver: nothing is read while the CRD is
absent; once it is installed, a selected PrometheusRule becomes a rule file in the Ruler's
``<t>-ruler-rulefiles-0`` ConfigMap (mounted by the Ruler), follows every change of the object,
and goes when the object does. Unselected objects never appear.

The CRD is ``thanos_support.prometheus_operator_crd``'s stand-in for prometheus-operator's.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from tests.e2e.cluster import KubeCluster
from tests.e2e.thanos_support import (
    apply_obj,
    condition,
    eventually,
    get_json,
    install_crd,
    install_thanos_crd,
    kubectl,
    prometheus_operator_crd,
    remove_crd,
    running_controller,
    thanos_cr,
)

CRD = prometheus_operator_crd("PrometheusRule")


def prometheus_rule(ns: str, name: str, labels: dict[str, str], expr: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": expr, "for": "5m"}]}]},
    }


async def rule_files(cluster: KubeCluster, ns: str, t: str) -> dict[str, Any] | None:
    out = await kubectl(
        cluster, "get", "configmap", f"{t}-ruler-rulefiles-0", "-n", ns, "-o", "json", check=False
    )
    if not out.strip():
        return None
    return {k: yaml.safe_load(v) for k, v in (yaml.safe_load(out).get("data") or {}).items()}


async def test_prometheus_rules_feed_the_ruler(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    install_thanos_crd(kube_cluster)
    ns, t = kube_namespace, "pr"
    spec = {"query": {}, "ruler": {"ruleSelector": {"role": "thanos-rules"}}}
    async with running_controller(kube_cluster, ns):
        await apply_obj(kube_cluster, thanos_cr(ns, t, spec))

        async def converged() -> bool:
            cr = await get_json(kube_cluster, "thanos", t, "-n", ns)
            return condition(cr, "Reconciled").get("status") == "True"

        await eventually(converged, what="convergence without the PrometheusRule CRD")
        assert await rule_files(kube_cluster, ns, t) is None
        await install_crd(kube_cluster, CRD)
        try:
            await apply_obj(kube_cluster, prometheus_rule(ns, "node", {"role": "thanos-rules"}, "up == 0"))
            await apply_obj(kube_cluster, prometheus_rule(ns, "other", {"role": "else"}, "up == 1"))
            key = f"{ns}.node.yaml"

            async def has(expr: str) -> bool:
                files = await rule_files(kube_cluster, ns, t)
                return files is not None and files.get(key, {}).get("groups", [{}])[0].get("rules") == [
                    {"alert": "A", "expr": expr, "for": "5m"}
                ]

            await eventually(lambda: has("up == 0"), timeout=60, what="the rule file after the CRD appeared")
            files = await rule_files(kube_cluster, ns, t)
            assert files is not None and sorted(files) == [key]  # the unselected object is not there
            sts = await get_json(kube_cluster, "statefulset", f"{t}-ruler", "-n", ns)
            pod = sts["spec"]["template"]["spec"]
            volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}
            assert volumes["prometheus-rules-0"] == f"{t}-ruler-rulefiles-0"
            mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
            assert mounts["prometheus-rules-0"] == f"/etc/thanos/rules/{t}-ruler-rulefiles-0"
            before = sts["spec"]["template"]["metadata"]["annotations"]["monitoring.paodin.io/config-hash"]

            changed_at = time.monotonic()
            await apply_obj(kube_cluster, prometheus_rule(ns, "node", {"role": "thanos-rules"}, "up < 1"))
            await eventually(lambda: has("up < 1"), timeout=30, what="the changed rule")
            print(f"PrometheusRule change reached the rule ConfigMap in {time.monotonic() - changed_at:.2f}s")
            sts = await get_json(kube_cluster, "statefulset", f"{t}-ruler", "-n", ns)
            assert (
                sts["spec"]["template"]["metadata"]["annotations"]["monitoring.paodin.io/config-hash"]
                != before
            )

            await kubectl(kube_cluster, "delete", "prometheusrule.monitoring.coreos.com", "node", "-n", ns)

            async def gone() -> bool:
                return await rule_files(kube_cluster, ns, t) is None

            await eventually(gone, timeout=30, what="the rule ConfigMap pruned with the last PrometheusRule")
        finally:
            await remove_crd(kube_cluster, CRD)
