"""Fault test (issue 3, criterion 3): the watch dies mid-stream and comes back to 410 Gone.

`panopticon serve` is frozen with SIGSTOP while kube-apiserver restarts (its watch connection
dies), objects are created, changed and deleted, and etcd is compacted; then it is resumed. Its
watch from the old resourceVersion gets 410 Gone, it re-lists and must apply the exact
difference: afterwards its exposition equals a fresh render (``panopticon render``) of a full
LIST: nothing stale, nothing missing.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    apply_crd,
    create_widgets,
    family_prefix,
    fresh_render,
    metrics_config,
    serve,
    unique_group,
    wait_for,
    widget,
    widget_crd,
)


def test_watch_killed_and_410_gone_converges_to_a_fresh_list(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    prefix = family_prefix(group)
    config = metrics_config(f"faults-{group.split('.')[0]}", group)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    create_widgets(kube_cluster, [widget(group, kube_namespace, f"w{i}", replicas=i) for i in range(60)])
    resource = f"widgets.{group}"

    with serve(kube_cluster, tmp_path, f"--config={config_file}") as proc:
        first = fresh_render(kube_cluster, tmp_path, config, resource, prefix)
        assert len(first) == 60 * 5
        wait_for(lambda: proc.samples(prefix) == first, timeout=30, what=proc.log_tail)

        os.kill(proc.process.pid, signal.SIGSTOP)
        try:
            kube_cluster.restart_apiserver()  # kills its watch connection mid-stream
            for i in range(0, 20):  # changed while nobody watches
                kube_cluster.apply(widget(group, kube_namespace, f"w{i}", replicas=1000 + i, phase="Failed"))
            kube_cluster.kubectl(
                "delete", resource, *[f"w{i}" for i in range(20, 35)], "-n", kube_namespace, "--wait=false"
            )
            created = [widget(group, kube_namespace, f"new{i}", replicas=i) for i in range(10)]
            create_widgets(kube_cluster, created)
            kube_cluster.kubectl("delete", resource, "w40", "-n", kube_namespace, "--wait=false")
            kube_cluster.apply(widget(group, kube_namespace, "w40", replicas=4040))  # same name, new uid
            kube_cluster.compact_etcd()
            kube_cluster.restart_apiserver()  # new watch cache: the old resourceVersion is gone
        finally:
            os.kill(proc.process.pid, signal.SIGCONT)

        truth = fresh_render(kube_cluster, tmp_path, config, resource, prefix)
        assert len(truth) == (60 - 15 + 10) * 5
        wait_for(
            lambda: proc.samples(prefix) == truth,
            timeout=30,
            what=lambda: (
                f"stale: {sorted(proc.samples(prefix) - truth)[:10]}\n"
                f"missing: {sorted(truth - proc.samples(prefix))[:10]}\n{proc.log_tail()}"
            ),
        )
        body = proc.metrics()
        gone = [line for line in body.splitlines() if line.startswith("panopticon_relist_gone_total{")]
        assert gone and sum(float(line.rsplit(" ", 1)[1]) for line in gone) >= 1, "no 410 re-list happened"

        # and it keeps following after the re-list
        kube_cluster.apply(widget(group, kube_namespace, "w0", replicas=1))
        truth = fresh_render(kube_cluster, tmp_path, config, resource, prefix)
        wait_for(lambda: proc.samples(prefix) == truth, timeout=5, what=proc.log_tail)
