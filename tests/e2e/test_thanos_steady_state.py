"""A converged Thanos object costs no writes: resync passes only read (counted in the audit log).

With the real kube-controller-manager and the simulated kubelet, every workload's pods run and
are Ready, the ingestor Endpoints are filled (so the hashrings come from them), the
PodDisruptionBudgets exist, and the extensions run too (Query Frontend, Ruler with a selected
rule ConfigMap and a selected PrometheusRule, 2 time partitions x 2 shards of Store Gateway), with
prometheus-operator's ServiceMonitor and PrometheusRule CRDs installed (so a ServiceMonitor per
Service and the Ruler's rendered rule-file ConfigMap are part of the steady state).
The resync period is shortened to 1 s and the window is 60 s:
about 60 full passes over the object (the default period is 300 s), each one reading the CR,
its Secrets, the ingestor Endpoints, the selected rule ConfigMaps and PrometheusRules, discovery
and every child list.
"""

from __future__ import annotations

import asyncio

from tests.e2e.cluster import KubeCluster
from tests.e2e.kubelet import SimulatedKubelet
from tests.e2e.test_thanos_lifecycle import SPEC
from tests.e2e.thanos_support import (
    OPERATOR_AGENT,
    apply_obj,
    condition,
    eventually,
    get_json,
    install_crd,
    install_thanos_crd,
    prometheus_operator_crd,
    remove_crd,
    running_controller,
    thanos_cr,
    writes_by,
)

WINDOW_SECONDS = 60
MONITORING_CRDS = [prometheus_operator_crd("ServiceMonitor"), prometheus_operator_crd("PrometheusRule")]
# Every kind of child: the lifecycle test's stack plus our extensions (Query Frontend, Ruler with
# a selected rule ConfigMap, Store Gateway time partitions x hash shards with an index cache).
STEADY_SPEC = {
    **SPEC,
    "queryFrontend": {"replicas": 1},
    "ruler": {"ruleSelector": {"steady-rules": "yes"}, "alertmanagers": ["http://alertmanager:9093"]},
    "storeGateway": {
        "objectStorageConfig": {"name": "bucket", "key": "objstore.yaml"},
        "timeRanges": [{"maxTime": "-2w"}, {"minTime": "-2w"}],
        "shards": 2,
        "indexCache": {"maxSize": "128MB"},
    },
}


async def test_steady_state_makes_zero_writes(
    kube_controller_manager: KubeCluster, simulated_kubelet: SimulatedKubelet, kube_namespace: str
) -> None:
    kube_cluster = kube_controller_manager
    install_thanos_crd(kube_cluster)
    ns = kube_namespace
    agent = f"{OPERATOR_AGENT}-steady"
    await apply_obj(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "bucket", "namespace": ns},
            "stringData": {"objstore.yaml": "type: FILESYSTEM\n"},
        },
    )
    for crd in MONITORING_CRDS:
        await install_crd(kube_cluster, crd)
    try:
        await _steady_state(kube_cluster, ns, agent)
    finally:
        for crd in MONITORING_CRDS:
            await remove_crd(kube_cluster, crd)


async def _steady_state(kube_cluster: KubeCluster, ns: str, agent: str) -> None:
    async with running_controller(kube_cluster, ns, resync_period=1.0, user_agent=agent) as controller:
        await apply_obj(
            kube_cluster,
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {"name": "team", "namespace": ns, "labels": {"steady-rules": "yes"}},
                "spec": {"groups": [{"name": "g", "rules": [{"record": "job:up:sum", "expr": "sum(up)"}]}]},
            },
        )
        await apply_obj(
            kube_cluster,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "team-rules", "namespace": ns, "labels": {"steady-rules": "yes"}},
                "data": {"alerts.yaml": "groups: []\n"},
            },
        )
        await apply_obj(kube_cluster, thanos_cr(ns, "steady", STEADY_SPEC))

        async def converged() -> bool:
            cr = await get_json(kube_cluster, "thanos", "steady", "-n", ns)
            return (
                condition(cr, "Reconciled").get("status") == "True"
                and condition(cr, "Ready").get("status") == "True"
            )

        await eventually(converged, timeout=120, what="convergence with every component Ready")
        hashrings = await get_json(
            kube_cluster, "configmap", "steady-receive-router-hashrings-config", "-n", ns
        )
        assert "steady-receive-ingestor-softs-1." in hashrings["data"]["hashrings.json"]
        rule_files = await get_json(kube_cluster, "configmap", "steady-ruler-rulefiles-0", "-n", ns)
        assert list(rule_files["data"]) == [f"{ns}.team.yaml"]
        monitors = await get_json(kube_cluster, "servicemonitors.monitoring.coreos.com", "-n", ns)
        assert len(monitors["items"]) >= 10, [m["metadata"]["name"] for m in monitors["items"]]
        assert await controller.wait_idle(30)
        await asyncio.sleep(2)  # let the watch events of our own last writes come back and settle
        writes_during_convergence = writes_by(kube_cluster, agent, namespace=ns)
        assert writes_during_convergence, "the audit log must show the convergence writes (sanity check)"
        passes_before = controller.passes

        await asyncio.sleep(WINDOW_SECONDS)

        passes = controller.passes - passes_before
        assert passes >= 40, f"only {passes} resync passes ran"
        new_writes = writes_by(kube_cluster, agent, namespace=ns)[len(writes_during_convergence) :]
        assert new_writes == [], [
            (w["verb"], w["objectRef"].get("resource"), w["objectRef"].get("name")) for w in new_writes
        ]
        print(
            f"steady state: {passes} passes in {WINDOW_SECONDS}s, 0 writes "
            f"(convergence took {len(writes_during_convergence)} writes)"
        )
