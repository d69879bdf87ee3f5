"""`--namespace-selector` on the real kube-apiserver: the exported namespaces follow their labels.

Namespaces are watched with the label selector; a namespace that starts matching brings its
objects' series in, one that stops matching takes them out, without restarting the process.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    apply_crd,
    family_prefix,
    metrics_config,
    serve,
    unique_group,
    wait_for,
    widget,
    widget_crd,
)


def namespace(name: str, team: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": team}}}


def test_namespace_selector_follows_namespace_labels(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    team = f"t{group[1:9]}"
    ns_a, ns_b = f"{kube_namespace}-a", f"{kube_namespace}-b"
    kube_cluster.apply(namespace(ns_a, team), namespace(ns_b, "other"))
    kube_cluster.apply(widget(group, ns_a, "wa", replicas=1), widget(group, ns_b, "wb", replicas=2))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(metrics_config(f"nssel-{group.split('.')[0]}", group)))
    prefix = f"{family_prefix(group)}replicas{{"

    def namespaces_seen() -> set[str]:
        return {line.split('namespace="')[1].split('"')[0] for line in proc.samples(prefix)}

    selector = f"--namespace-selector=team={team}"
    with serve(kube_cluster, tmp_path, f"--config={config_file}", selector) as proc:
        wait_for(lambda: namespaces_seen() == {ns_a}, timeout=30, what=proc.log_tail)
        kube_cluster.apply(namespace(ns_b, team))
        wait_for(lambda: namespaces_seen() == {ns_a, ns_b}, timeout=5, what=proc.log_tail)
        kube_cluster.apply(namespace(ns_a, "other"))
        wait_for(lambda: namespaces_seen() == {ns_b}, timeout=5, what=proc.log_tail)
        kube_cluster.apply(widget(group, ns_a, "wa", replicas=9))  # not exported: namespace deselected
        kube_cluster.apply(widget(group, ns_b, "wb", replicas=3))
        wait_for(
            lambda: proc.samples(prefix) == {f'{prefix}namespace="{ns_b}",widget="wb"}} 3'},
            timeout=2,
            what=proc.log_tail,
        )
