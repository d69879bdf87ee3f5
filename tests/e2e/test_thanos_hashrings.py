"""Hashrings follow ingestor readiness, with the real kube-controller-manager and a simulated kubelet.

The kubelet (``tests/e2e/kubelet.py``) makes the ingestor pods Running/Ready and flips their
readiness on request; the real endpoints controller turns that into Endpoints; the operator
must turn those into the router's hashrings ConfigMap within 5 s, never list a NotReady pod
longer than that, never empty a ring while one of its pods is Ready, and never roll the routers.
Deleting the ``Thanos`` object lets the real garbage collector delete every child.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.e2e.cluster import KubeCluster
from tests.e2e.kubelet import SimulatedKubelet
from tests.e2e.thanos_support import (
    apply_obj,
    eventually,
    get_json,
    install_thanos_crd,
    kubectl,
    running_controller,
    thanos_cr,
)

T = "hr"
HARD = f"{T}-receive-ingestor-hard"
SOFT = f"{T}-receive-ingestor-soft"
CONFIGMAP = f"{T}-receive-router-hashrings-config"
SPEC: dict[str, Any] = {
    "receive": {
        "router": {"replicas": 1},
        "ingestors": [
            {"name": "hard", "tenants": ["team-a"], "replicas": 2},
            {"name": "soft", "replicas": 2},
        ],
    }
}
PROPAGATION_LIMIT = 5.0


@pytest.fixture(scope="module")
def crd(kube_cluster: KubeCluster) -> None:
    install_thanos_crd(kube_cluster)


def members(rings: list[dict[str, Any]]) -> dict[str, set[str]]:
    """hashring name -> pod names (endpoint ``pod.service:port`` -> ``pod``)."""
    return {r["hashring"]: {e.split(".", 1)[0] for e in r["endpoints"]} for r in rings}


class RingRecorder:
    """Samples the hashrings ConfigMap every 100 ms: (monotonic time, members)."""

    def __init__(self, cluster: KubeCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.samples: list[tuple[float, dict[str, set[str]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            result = await asyncio.to_thread(
                self.cluster.kubectl,
                "get",
                "configmap",
                CONFIGMAP,
                "-n",
                self.namespace,
                "-o",
                "json",
                check=False,
            )
            if result.returncode == 0:
                data = json.loads(result.stdout)["data"]["hashrings.json"]
                self.samples.append((time.monotonic(), members(json.loads(data))))
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def latest(self) -> dict[str, set[str]]:
        return self.samples[-1][1] if self.samples else {}

    async def wait_for(self, ring: str, pods: set[str], *, since: float, timeout: float = 30.0) -> float:
        """Seconds from ``since`` until ``ring`` lists exactly ``pods``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, sample in self.samples:
                if at >= since and sample.get(ring) == pods:
                    return at - since
            await asyncio.sleep(0.05)
        raise AssertionError(f"{ring} never became {sorted(pods)}; last: {self.latest()}")


async def pods_ready(cluster: KubeCluster, namespace: str, names: set[str]) -> bool:
    pods = (await get_json(cluster, "pods", "-n", namespace))["items"]
    ready = {
        p["metadata"]["name"]
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    }
    return names <= ready


async def test_hashrings_follow_ready_endpoints_and_gc_deletes_every_child(
    kube_controller_manager: KubeCluster, simulated_kubelet: SimulatedKubelet, kube_namespace: str, crd: None
) -> None:
    cluster, ns, kubelet = kube_controller_manager, kube_namespace, simulated_kubelet
    hard = {f"{HARD}-0", f"{HARD}-1"}
    soft = {f"{SOFT}-0", f"{SOFT}-1"}
    recorder = RingRecorder(cluster, ns)
    latencies: dict[str, float] = {}
    async with running_controller(cluster, ns):
        await apply_obj(cluster, thanos_cr(ns, T, SPEC))
        await eventually(lambda: pods_ready(cluster, ns, hard | soft), timeout=90, what="ingestor pods Ready")
        recorder.start()
        started = time.monotonic()
        await recorder.wait_for("hard", hard, since=0)
        await recorder.wait_for("soft", soft, since=0)
        router = await get_json(cluster, "deployment", f"{T}-receive-router", "-n", ns)
        router_generation = router["metadata"]["generation"]

        # (what the kubelet is told, the hard ring it implies, a name for the latency)
        steps: list[tuple[dict[str, bool], set[str], str]] = [
            ({f"{HARD}-1": False}, {f"{HARD}-0"}, "hard-1 NotReady -> out of the ring"),
            ({f"{HARD}-1": True}, hard, "hard-1 Ready -> back in the ring"),
            # Every pod of the ring NotReady: the ring stays, with no endpoints (not rerouted).
            ({f"{HARD}-0": False, f"{HARD}-1": False}, set(), "whole ring NotReady -> empty ring"),
            ({f"{HARD}-0": True, f"{HARD}-1": True}, hard, "whole ring Ready again"),
        ]
        phases: list[tuple[float, float, set[str]]] = []  # (flipped at, converged at, expected)
        for readiness, expected, what in steps:
            flipped = time.monotonic()
            for pod, ready in readiness.items():
                kubelet.set_ready(ns, pod, ready)
            latencies[what] = await recorder.wait_for("hard", expected, since=flipped)
            phases.append((flipped, flipped + latencies[what], expected))
            await asyncio.sleep(1.5)  # let it sit: the ring must stay as it is
        await recorder.stop()
        print(f"\nhashring propagation (s): { {k: round(v, 2) for k, v in latencies.items()} }")
        assert all(v < PROPAGATION_LIMIT for v in latencies.values()), latencies
        # The file always had both rings (never "[]"), and the soft ring was never touched.
        samples = [(at, s) for at, s in recorder.samples if at >= started]
        assert samples and all(set(s) == {"hard", "soft"} and s["soft"] == soft for _, s in samples)
        # Once converged, each phase's ring is exactly its Ready pods until the next flip: never a
        # NotReady pod, never a Ready one missing. Between a flip and convergence the ring holds
        # only pods that were Ready before or after; an empty ring appears only while every pod
        # of the ring is NotReady (or on the way there/back).
        bounds = [p[0] for p in phases[1:]] + [float("inf")]
        for (_flipped, converged, expected), until in zip(phases, bounds, strict=True):
            window = [s["hard"] for at, s in samples if converged <= at < until]
            assert window and all(members == expected for members in window), (expected, window)
        empty_at = [at for at, s in samples if not s["hard"]]
        assert empty_at and all(phases[2][0] <= at < phases[3][1] for at in empty_at)
        # The routers were not rolled by any of this.
        router = await get_json(cluster, "deployment", f"{T}-receive-router", "-n", ns)
        assert router["metadata"]["generation"] == router_generation

    # Delete the Thanos object: the real garbage collector deletes every child (and their pods).
    await kubectl(cluster, "delete", "thanos", T, "-n", ns, "--wait=false")

    async def all_gone() -> bool:
        out = await kubectl(
            cluster,
            "get",
            "deployments,statefulsets,services,configmaps,secrets,replicasets,pods",
            "-n",
            ns,
            "-o",
            "name",
        )
        leftover = [
            n for n in out.splitlines() if n.strip() and "kube-root-ca" not in n and "default-token-" not in n
        ]
        return not leftover

    await eventually(all_gone, timeout=90, what="the garbage collector to delete every child")
