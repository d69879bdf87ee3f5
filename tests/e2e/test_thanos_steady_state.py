"""A converged Thanos object costs no writes: resync passes only read (counted in the audit log).

The issue asks for "5 minutes of resyncs"; the default resync period is 300 s, so that is one
pass per object. Here the resync period is shortened to 0.25 s and the window to 15 s, which
gives about 60 full passes over the object: sixty times the passes of the 5-minute window at
the default period, each one reading the CR, its Secrets and every child list.
"""

from __future__ import annotations

import asyncio

from tests.e2e.cluster import KubeCluster
from tests.e2e.test_thanos_lifecycle import SPEC
from tests.e2e.thanos_support import (
    OPERATOR_AGENT,
    apply_obj,
    condition,
    eventually,
    get_json,
    install_thanos_crd,
    running_controller,
    thanos_cr,
    writes_by,
)


async def test_steady_state_makes_zero_writes(kube_cluster: KubeCluster, kube_namespace: str) -> None:
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
    async with running_controller(kube_cluster, ns, resync_period=0.25, user_agent=agent) as controller:
        await apply_obj(kube_cluster, thanos_cr(ns, "steady", SPEC))

        async def converged() -> bool:
            cr = await get_json(kube_cluster, "thanos", "steady", "-n", ns)
            return condition(cr, "Reconciled").get("status") == "True"

        await eventually(converged, what="convergence")
        assert await controller.wait_idle(30)
        await asyncio.sleep(2)  # let the watch events of our own last writes come back and settle
        writes_during_convergence = writes_by(kube_cluster, agent, namespace=ns)
        assert writes_during_convergence, "the audit log must show the convergence writes (sanity check)"
        passes_before = controller.passes

        await asyncio.sleep(15)

        passes = controller.passes - passes_before
        assert passes >= 40, f"only {passes} resync passes ran"
        new_writes = writes_by(kube_cluster, agent, namespace=ns)[len(writes_during_convergence) :]
        assert new_writes == [], [
            (w["verb"], w["objectRef"].get("resource"), w["objectRef"].get("name")) for w in new_writes
        ]
        print(
            f"steady state: {passes} passes in 15s, 0 writes "
            f"(convergence took {len(writes_during_convergence)} writes)"
        )
