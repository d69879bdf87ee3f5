"""Two ``panopticon serve --controllers thanos`` processes against one cluster: one Lease, one reconciler.

Only the Lease holder acts (every Event the operator records names its reporting instance);
SIGKILL on the holder (no release) hands the Lease to the other process within the lease
duration (plus one retry period, client-go's bound), and the new holder reconciles.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.cluster import KubeCluster
from tests.e2e.thanos_support import (
    REPO,
    apply_obj,
    eventually,
    get_json,
    install_thanos_crd,
    kubectl,
    thanos_cr,
    writes_by,
)

LEASE_DURATION = 4.0
RETRY_PERIOD = max(0.5, LEASE_DURATION / 7.5)  # what thanos_operator.service derives


def parse_micro_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def start_operator(cluster: KubeCluster, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apiserver.cli",
            "serve",
            "--controllers",
            "thanos",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--metrics-address",
            "",
            "--leader-elect-namespace",
            namespace,
            "--leader-elect-lease-duration",
            str(LEASE_DURATION),
            "--watch-namespace",
            namespace,
            "--log-level",
            "debug",
        ],
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def holder(cluster: KubeCluster, namespace: str) -> str:
    out = await kubectl(
        cluster,
        "get",
        "lease",
        "panopticon-thanos-operator",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.holderIdentity}",
        check=False,
    )
    return out.strip()


async def event_instances(cluster: KubeCluster, namespace: str) -> list[str]:
    items: list[dict[str, Any]] = (await get_json(cluster, "events", "-n", namespace))["items"]
    return [
        str(e.get("reportingInstance") or "")
        for e in items
        if e.get("reportingComponent") == "panopticon-thanos"
    ]


async def test_one_leader_reconciles_and_hands_over_on_kill(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    install_thanos_crd(kube_cluster)
    ns = kube_namespace
    procs = {name: start_operator(kube_cluster, ns, tmp_path / f"{name}.log") for name in ("a", "b")}
    try:

        async def has_holder() -> bool:
            return bool(await holder(kube_cluster, ns))

        await eventually(has_holder, timeout=30, what="a Lease holder")
        first = await holder(kube_cluster, ns)
        by_pid = {p.pid: name for name, p in procs.items()}
        leader_name = next(name for pid, name in by_pid.items() if f"_{pid}_" in first)
        follower_name = "b" if leader_name == "a" else "a"

        await apply_obj(kube_cluster, thanos_cr(ns, "le", {"query": {"replicas": 1}}))

        async def query_replicas(n: int) -> bool:
            out = await kubectl(
                kube_cluster,
                "get",
                "deployment",
                "le-query",
                "-n",
                ns,
                "-o",
                "jsonpath={.spec.replicas}",
                check=False,
            )
            return out.strip() == str(n)

        await eventually(lambda: query_replicas(1), what="the leader's Deployment")
        await asyncio.sleep(2 * RETRY_PERIOD)
        instances = await event_instances(kube_cluster, ns)
        assert instances and set(instances) == {first}, instances  # only the leader acted
        writers = {w["userAgent"] for w in writes_by(kube_cluster, "panopticon-thanos/", namespace=ns)}
        assert writers == {f"panopticon-thanos/{first}"}, writers  # ... and only the leader wrote

        procs[leader_name].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        procs[leader_name].wait(10)
        last_renew = (await get_json(kube_cluster, "lease", "panopticon-thanos-operator", "-n", ns))["spec"][
            "renewTime"
        ]

        async def handed_over() -> bool:
            current = await holder(kube_cluster, ns)
            return bool(current) and current != first

        await eventually(handed_over, timeout=LEASE_DURATION * 4, what="a new Lease holder")
        handover = time.monotonic() - killed_at
        second = await holder(kube_cluster, ns)
        assert f"_{procs[follower_name].pid}_" in second
        acquired = (await get_json(kube_cluster, "lease", "panopticon-thanos-operator", "-n", ns))["spec"][
            "acquireTime"
        ]
        gap = (parse_micro_time(acquired) - parse_micro_time(last_renew)).total_seconds()
        # client-go's bound, without comparing clocks: the follower sees a renewal at most one retry
        # period late, waits the lease duration from then, and retries at most one period later.
        assert LEASE_DURATION - RETRY_PERIOD <= gap <= LEASE_DURATION + 2 * RETRY_PERIOD, f"gap {gap:.2f}s"
        assert handover <= LEASE_DURATION + 2 * RETRY_PERIOD + 1.0, f"handover took {handover:.2f}s"
        print(
            f"handover: {gap:.2f}s after the last renewal, {handover:.2f}s after SIGKILL as polled "
            f"(lease duration {LEASE_DURATION}s, retry period {RETRY_PERIOD:.2f}s)"
        )

        await kubectl(
            kube_cluster,
            "patch",
            "thanos",
            "le",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"query":{"replicas":2}}}',
        )
        await eventually(lambda: query_replicas(2), what="the new leader's reconcile")
        assert second in await event_instances(kube_cluster, ns)
        writers = {w["userAgent"] for w in writes_by(kube_cluster, "panopticon-thanos/", namespace=ns)}
        assert writers == {f"panopticon-thanos/{first}", f"panopticon-thanos/{second}"}, writers
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
