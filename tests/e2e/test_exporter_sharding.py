"""Sharding (issue 3, criterion 4): 3 shards over 1,000 objects equal the unsharded exposition.

Four `panopticon serve` processes watch the same 1,000 custom objects (10 namespaces): one
unsharded, three with `--shard i --total-shards 3`. Every sample line of the unsharded body is
in exactly one shard, and the shards produce nothing else. A fifth process derives its shard
from a StatefulSet pod (`--pod`, `--pod-namespace`) and must equal the explicit shard.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    apply_crd,
    create_widgets,
    family_prefix,
    metrics_config,
    serve,
    unique_group,
    wait_for,
    widget,
    widget_crd,
)


def test_three_shards_equal_the_unsharded_exposition(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    namespaces = [f"{kube_namespace}-{i}" for i in range(10)]
    for ns in namespaces:
        kube_cluster.ensure_namespace(ns)
    phases = ("Pending", "Running", "Failed")
    create_widgets(
        kube_cluster,
        [
            widget(group, namespaces[i % 10], f"w{i}", replicas=i, color=f"c{i % 7}", phase=phases[i % 3])
            for i in range(1000)
        ],
    )
    prefix = family_prefix(group)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(metrics_config(f"shards-{group.split('.')[0]}", group)))

    # a StatefulSet of 3 replicas and its pod #1 (objects only: there is no controller manager)
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "panopticon", "namespace": kube_namespace},
        "spec": {
            "replicas": 3,
            "serviceName": "panopticon",
            "selector": {"matchLabels": {"app": "p"}},
            "template": {
                "metadata": {"labels": {"app": "p"}},
                "spec": {"containers": [{"name": "p", "image": "x"}]},
            },
        },
    }
    # no controller manager: the pod's service account must be created by hand
    kube_cluster.apply(
        sts,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": kube_namespace},
        },
    )
    uid = kube_cluster.get_json("statefulset", "panopticon", "-n", kube_namespace)["metadata"]["uid"]
    kube_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "panopticon-1",
                "namespace": kube_namespace,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "name": "panopticon",
                        "uid": uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {"automountServiceAccountToken": False, "containers": [{"name": "p", "image": "x"}]},
        }
    )

    def bodies(procs: list) -> list[list[str]]:  # type: ignore[type-arg]
        return [[line for line in p.metrics().splitlines() if line.startswith(prefix)] for p in procs]

    args = f"--config={config_file}"
    with (
        serve(kube_cluster, tmp_path, args) as full,
        serve(kube_cluster, tmp_path, args, "--shard=0", "--total-shards=3") as s0,
        serve(kube_cluster, tmp_path, args, "--shard=1", "--total-shards=3") as s1,
        serve(kube_cluster, tmp_path, args, "--shard=2", "--total-shards=3") as s2,
        serve(
            kube_cluster, tmp_path, args, "--pod=panopticon-1", f"--pod-namespace={kube_namespace}"
        ) as auto,
    ):
        procs = [full, s0, s1, s2, auto]
        wait_for(
            lambda: all(p.get("/readyz")[0] == 200 for p in procs),
            timeout=60,
            what=lambda: "\n".join(p.log_tail(10) for p in procs),
        )
        wait_for(lambda: len(bodies([full])[0]) == 5000, timeout=30, what=full.log_tail)
        unsharded, *shards, by_pod = bodies(procs)
        assert len(unsharded) == len(set(unsharded)) == 5000
        counts = collections.Counter(line for shard in shards for line in shard)
        assert set(counts) == set(unsharded), "shards together differ from the unsharded exposition"
        assert max(counts.values()) == 1, "a series is exported by two shards"
        assert all(1200 < len(shard) < 2150 for shard in shards), [len(s) for s in shards]
        assert sorted(by_pod) == sorted(shards[1])
        # each shard's body is itself complete per family: HELP/TYPE once, samples grouped
        for proc in (s0, s1, s2):
            body = proc.metrics()
            for family in ("replicas", "info", "status_phase"):
                assert body.count(f"# TYPE {prefix}{family} gauge\n") == 1

        # scaling the StatefulSet to 2 re-shards the pod's process: it becomes shard 1 of 2
        with serve(kube_cluster, tmp_path, args, "--shard=1", "--total-shards=2") as half:
            wait_for(lambda: half.get("/readyz")[0] == 200, timeout=60, what=half.log_tail)
            expected = bodies([half])[0]
            assert 2000 < len(expected) < 3000
            kube_cluster.kubectl("scale", "statefulset", "panopticon", "-n", kube_namespace, "--replicas=2")
            wait_for(lambda: sorted(bodies([auto])[0]) == sorted(expected), timeout=10, what=auto.log_tail)
            assert "panopticon_total_shards 2.0" in auto.metrics()
