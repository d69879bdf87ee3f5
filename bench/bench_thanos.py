"""Thanos operator benchmark on the real kube-apiserver (tests/e2e/cluster.py starts one).

Measures, for a CR with 3 ingestor groups (+ query with a secured store, store gateway, compact):
1. converge from empty with the running controller (watches + queue): wall time from the CR's
   creation until every child exists and Reconciled=True, and the API requests it took;
2. one direct reconcile pass from empty (requests by verb, time);
3. a no-op reconcile pass on the converged object: time and requests (reads only, zero writes),
   and the CPU the pass costs in this process;
4. optionally (``--steady-seconds 300``) a real 5-minute window of a controller resyncing the
   converged object every ``--steady-resync`` seconds: its writes, counted in the process and
   in the kube-apiserver's audit log by user agent.

With ``--prometheus-operator`` the CR also has a Ruler (selecting one PrometheusRule), and
prometheus-operator's ServiceMonitor and PrometheusRule CRDs are installed (the e2e stand-ins),
so the passes include the ServiceMonitors, the rule-file ConfigMap and their reads.

    ~/.cache/panopticon/venv/bin/python bench/bench_thanos.py [--passes 50] [--steady-seconds 300]
        [--prometheus-operator]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kube.client import KubeClient
from kube.config import load_config
from tests.e2e.cluster import KubeCluster
from tests.e2e.thanos_support import prometheus_operator_crd, wait_established
from thanos_operator.controller import ThanosController
from thanos_operator.reconciler import Reconciler, thanos_path

SPEC: dict[str, Any] = {
    "defaultFields": {"logLevel": "info"},
    "query": {
        "replicas": 2,
        "stores": [
            {"addresses": ["prometheus-operated:10901"]},
            {
                "addresses": ["peer.example.com:443"],
                "caSecret": {"name": "ca", "key": "ca.crt"},
                "bearerTokenSecret": {"name": "tok", "key": "token"},
            },
        ],
    },
    "receive": {
        "router": {"replicas": 2, "replicationFactor": 2},
        "ingestors": [
            {
                "name": "tenant-a",
                "tenants": ["a"],
                "replicas": 2,
                "objectStorageConfig": {"name": "bucket", "key": "o"},
            },
            {
                "name": "tenant-b",
                "tenants": ["b"],
                "replicas": 2,
                "objectStorageConfig": {"name": "bucket", "key": "o"},
            },
            {
                "name": "softs",
                "replicas": 3,
                "objectStorageConfig": {"name": "bucket", "key": "o"},
                "dataVolume": {"pvc": {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}},
            },
        ],
    },
    "storeGateway": {"objectStorageConfig": {"name": "bucket", "key": "o"}},
    "compact": {"objectStorageConfig": {"name": "bucket", "key": "o"}},
}


class Counting:
    """Wraps a KubeClient and counts requests by verb (watch streams counted once)."""

    def __init__(self, inner: KubeClient) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.counts["get"] += 1
        return await self.inner.get(path, params=params)

    async def list(
        self, path: str, *, params: Mapping[str, Any] | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        self.counts["list"] += 1
        return await self.inner.list(path, params=params, limit=limit)

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.counts["create"] += 1
        return await self.inner.create(path, obj)

    async def apply(
        self,
        path: str,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = True,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        self.counts["apply"] += 1
        return await self.inner.apply(path, obj, field_manager=field_manager, force=force, dry_run=dry_run)

    async def patch(self, path: str, patch: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        self.counts["patch"] += 1
        return await self.inner.patch(path, patch, patch_type=patch_type)

    async def delete(
        self,
        path: str,
        *,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        self.counts["delete"] += 1
        return await self.inner.delete(
            path, propagation_policy=propagation_policy, preconditions=preconditions
        )

    def watch(self, path: str, **kwargs: Any) -> Any:
        self.counts["watch"] += 1
        return self.inner.watch(path, **kwargs)

    def total(self, *, writes_only: bool = False) -> int:
        verbs = {"create", "apply", "patch", "delete"} if writes_only else set(self.counts) - {"watch"}
        return sum(n for v, n in self.counts.items() if v in verbs)


RULER: dict[str, Any] = {"ruleSelector": {"bench": "rules"}, "alertmanagers": ["http://alertmanager:9093"]}
WITH_RULER = False  # --prometheus-operator


def cr(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**SPEC, "ruler": RULER} if WITH_RULER else SPEC,
    }


def install_prometheus_operator(cluster: KubeCluster, namespaces: list[str]) -> None:
    """The ServiceMonitor and PrometheusRule CRD stand-ins, and one selected PrometheusRule per namespace."""
    for kind in ("ServiceMonitor", "PrometheusRule"):
        crd = prometheus_operator_crd(kind)
        cluster.apply(crd)
        wait_established(cluster, crd["metadata"]["name"])
    for ns in namespaces:
        cluster.apply(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {"name": "bench", "namespace": ns, "labels": {"bench": "rules"}},
                "spec": {"groups": [{"name": "g", "rules": [{"record": "job:up:sum", "expr": "sum(up)"}]}]},
            }
        )


async def converge_with_controller(cluster: KubeCluster, client: KubeClient, ns: str) -> dict[str, Any]:
    counting = Counting(client)
    controller = ThanosController(counting, namespace=ns)  # type: ignore[arg-type]
    await controller.start()
    try:
        await controller.wait_idle(30)
        counting.counts.clear()
        started = time.perf_counter()
        await client.create(thanos_path(ns), cr(ns, "bench"))
        while True:
            obj = await client.get(thanos_path(ns, "bench"))
            conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
            if conds.get("Reconciled", {}).get("status") == "True":
                break
            await asyncio.sleep(0.01)
        converged = time.perf_counter() - started
        await controller.wait_idle(30)
        settled = time.perf_counter() - started
        return {
            "seconds_to_reconciled": converged,
            "seconds_to_idle": settled,
            "requests": dict(counting.counts),
            "reads": counting.counts["get"] + counting.counts["list"],
            "writes": counting.total(writes_only=True),
            "passes": controller.passes,
        }
    finally:
        await controller.stop()


async def direct_passes(client: KubeClient, ns: str, passes: int) -> dict[str, Any]:
    await client.create(thanos_path(ns), cr(ns, "direct"))
    counting = Counting(client)
    reconciler = Reconciler(counting)  # type: ignore[arg-type]
    started = time.perf_counter()
    await reconciler.reconcile(ns, "direct")
    first = {"seconds": time.perf_counter() - started, "requests": dict(counting.counts)}
    await reconciler.reconcile(ns, "direct")  # picks up anything the first pass's writes changed
    wall: list[float] = []
    cpu: list[float] = []
    counting.counts.clear()
    for _ in range(passes):
        w0, c0 = time.perf_counter(), time.process_time()
        outcome = await reconciler.reconcile(ns, "direct")
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        assert not outcome.applied and not outcome.status_written, outcome
    per_pass = {verb: n / passes for verb, n in counting.counts.items()}
    return {
        "first_pass": first,
        "noop_passes": passes,
        "noop_wall_ms_median": 1000 * statistics.median(wall),
        "noop_wall_ms_p90": 1000 * sorted(wall)[int(0.9 * len(wall)) - 1],
        "noop_cpu_ms_median": 1000 * statistics.median(cpu),
        "noop_requests_per_pass": per_pass,
        "noop_writes": counting.total(writes_only=True),
    }


async def steady_window(
    cluster: KubeCluster, config_path: str, ns: str, *, seconds: float, resync: float
) -> dict[str, Any]:
    """Run a controller with its own user agent over the converged namespace; count its writes."""
    agent = "panopticon-thanos-steady"
    client = KubeClient(load_config(kubeconfig=config_path), user_agent=agent)
    counting = Counting(client)
    controller = ThanosController(counting, namespace=ns, resync_period=resync)  # type: ignore[arg-type]
    await controller.start()
    try:
        await controller.wait_idle(30)
        await asyncio.sleep(2)
        counting.counts.clear()
        passes_before = controller.passes
        await asyncio.sleep(seconds)
        passes = controller.passes - passes_before
    finally:
        await controller.stop()
        await client.close()
    writes = [
        e
        for e in cluster.audit_events(verbs={"create", "update", "patch", "delete"})
        if str(e.get("userAgent", "")).startswith(agent)
    ]
    return {
        "window_seconds": seconds,
        "resync_period": resync,
        "passes": passes,
        "reads": counting.total(),
        "writes_counted_in_process": counting.total(writes_only=True),
        "writes_in_audit_log_by_user_agent": len(writes),
    }


async def main(passes: int, steady_seconds: float, steady_resync: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = KubeCluster.start(Path(tmp))
        try:
            cluster.kubectl(
                "apply", "-f", str(Path(__file__).resolve().parents[1] / "deploy/crds/thanos.yaml")
            )
            cluster.kubectl(
                "wait", "--for=condition=Established", "crd/thanos.monitoring.paodin.io", "--timeout=60s"
            )
            cluster.ensure_namespace("bench")
            cluster.ensure_namespace("bench-direct")
            if WITH_RULER:
                install_prometheus_operator(cluster, ["bench", "bench-direct"])
            client = KubeClient(
                load_config(kubeconfig=str(cluster.kubeconfig)), user_agent="panopticon-thanos-bench"
            )
            try:
                result = {
                    "controller_converge_from_empty": await converge_with_controller(
                        cluster, client, "bench"
                    ),
                    "direct": await direct_passes(client, "bench-direct", passes),
                }
                if steady_seconds > 0:
                    result["steady_state"] = await steady_window(
                        cluster,
                        str(cluster.kubeconfig),
                        "bench",
                        seconds=steady_seconds,
                        resync=steady_resync,
                    )
            finally:
                await client.close()
        finally:
            cluster.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passes", type=int, default=50, help="no-op reconcile passes to time")
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=0.0,
        help="also run a converged controller this long and count its writes (e.g. 300)",
    )
    parser.add_argument("--steady-resync", type=float, default=10.0, help="resync period of that window")
    parser.add_argument(
        "--prometheus-operator",
        action="store_true",
        help="add a Ruler and install the ServiceMonitor and PrometheusRule CRDs",
    )
    options = parser.parse_args()
    WITH_RULER = options.prometheus_operator
    asyncio.run(main(options.passes, options.steady_seconds, options.steady_resync))
