"""ServiceMonitors follow prometheus-operator's CRD: created when it appears, again after it was
removed and re-installed (the operator watches the CRD), never while it is absent.

The CRD is ``thanos_support.prometheus_operator_crd``'s stand-in for prometheus-operator's.
"""

from __future__ import annotations

from tests.e2e.cluster import KubeCluster
from tests.e2e.thanos_support import (
    apply_obj,
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

CRD = prometheus_operator_crd("ServiceMonitor")


async def monitors(cluster: KubeCluster, ns: str) -> set[str]:
    out = await kubectl(
        cluster, "get", "servicemonitors.monitoring.coreos.com", "-n", ns, "-o", "name", check=False
    )
    return {line.rsplit("/", 1)[1] for line in out.splitlines() if line.strip()}


async def install(cluster: KubeCluster) -> None:
    await install_crd(cluster, CRD)


async def test_service_monitors_come_and_go_with_the_crd(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    install_thanos_crd(kube_cluster)
    ns, t = kube_namespace, "sm"
    expected = {"sm-query-operated", "sm-receive-router-operated", "sm-receive-ingestor-a-operated"}
    async with running_controller(kube_cluster, ns):
        await apply_obj(
            kube_cluster, thanos_cr(ns, t, {"query": {}, "receive": {"ingestors": [{"name": "a"}]}})
        )

        async def converged() -> bool:
            cr = await get_json(kube_cluster, "thanos", t, "-n", ns)
            return any(
                c["type"] == "Reconciled" and c["status"] == "True"
                for c in cr.get("status", {}).get("conditions", [])
            )

        await eventually(converged, what="convergence without the ServiceMonitor CRD")
        await install(kube_cluster)
        try:

            async def created() -> bool:
                return await monitors(kube_cluster, ns) == expected

            await eventually(created, timeout=60, what="ServiceMonitors after the CRD appeared")
            monitor = await get_json(
                kube_cluster, "servicemonitor.monitoring.coreos.com", "sm-query-operated", "-n", ns
            )
            assert monitor["spec"]["endpoints"] == [{"interval": "30s", "path": "/metrics", "port": "http"}]
            assert monitor["metadata"]["ownerReferences"][0]["name"] == t
            # Removed and re-installed: the objects went with the CRD and come back.
            await remove_crd(kube_cluster, CRD)  # up to 180 s: the cleanup finalizer can be slow under load
            await install(kube_cluster)
            await eventually(created, timeout=60, what="ServiceMonitors after the CRD came back")
        finally:
            await remove_crd(kube_cluster, CRD)
