"""Aggregates (``metrics[].aggregate``) on the real kube-apiserver: the CRD schema accepts the
documented example (``kubectl apply --dry-run=server``) and refuses an unknown ``op``, and the
live exporter serves the groups and follows creates, updates that move an object to another
group, and deletes (a group whose count drops to zero disappears); ``--metric-labels-allowlist``
feeds the cluster-mode compiler (an aggregate by a label only the flag adds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    ROOT,
    apply_crd,
    family_prefix,
    install_config_crd,
    serve,
    unique_group,
    wait_for,
    widget_crd,
)


def aggregate_config(name: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": f"{group}/v1", "kind": "Widget"},
            "metrics": [
                {"name": "by_phase", "help": "Widgets per namespace and phase.", "type": "gauge",
                 "labels": [{"key": "phase", "valuePath": ".spec.phase"}],
                 "aggregate": {"op": "count", "by": ["namespace", "phase"]}},
                {"name": "replicas", "help": "Replicas per phase, all namespaces.", "type": "gauge",
                 "labels": [{"key": "phase", "valuePath": ".spec.phase"}],
                 "metricValue": {"valueFromPath": ".spec.replicas"},
                 "aggregate": {"op": "sum", "by": ["phase"]}},
                # label_team exists only through serve's --metric-labels-allowlist=widgets=[team]
                {"name": "by_team", "help": "Widgets per team.", "type": "gauge",
                 "aggregate": {"op": "count", "by": ["label_team"]}},
            ],
        },
    }


def widget(group: str, namespace: str, name: str, phase: str, replicas: float) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"team": "t" if replicas >= 1 else "u"}},
            "spec": {"phase": phase, "replicas": replicas}}


def test_crd_accepts_the_aggregate_example(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    install_config_crd(kube_cluster)
    out = kube_cluster.kubectl("apply", "--dry-run=server", "-f",
                               str(ROOT / "examples" / "aggregates" / "config.yaml")).stdout
    assert "core-pod-aggregates" in out and "argoproj-io-application-aggregates" in out
    bad = aggregate_config("aggregate-bad-op", "example.com")
    bad["spec"]["metrics"][0]["aggregate"]["op"] = "avg"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    refused = kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(path), check=False)
    assert refused.returncode != 0 and "aggregate.op" in refused.stderr, refused.stderr


def test_live_exporter_follows_creates_updates_and_deletes(kube_cluster: KubeCluster, kube_namespace: str,
                                                          tmp_path: Path) -> None:
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    other = f"{kube_namespace}-b"
    kube_cluster.ensure_namespace(other)
    kube_cluster.apply(
        widget(group, kube_namespace, "w1", "Running", 2),
        widget(group, kube_namespace, "w2", "Running", 0.5),
        widget(group, kube_namespace, "w3", "Pending", 1),
        widget(group, other, "w4", "Running", 3),
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(aggregate_config(f"agg-{group.split('.')[0]}", group)))
    by_phase, replicas = f"{family_prefix(group)}by_phase", f"{family_prefix(group)}replicas"
    a, b = f'namespace="{kube_namespace}"', f'namespace="{other}"'

    with serve(kube_cluster, tmp_path, f"--config={config_file}",
               "--metric-labels-allowlist=widgets=[team]") as proc:
        def state() -> tuple[set[str], set[str]]:
            return proc.samples(by_phase + "{"), proc.samples(replicas + "{")

        wait_for(lambda: state() == (
            {f'{by_phase}{{{a},phase="Pending"}} 1', f'{by_phase}{{{a},phase="Running"}} 2',
             f'{by_phase}{{{b},phase="Running"}} 1'},
            {f'{replicas}{{phase="Pending"}} 1', f'{replicas}{{phase="Running"}} 5.5'}),
            timeout=30, what=lambda: f"{state()}\n{proc.log_tail()}")
        # An update moves w2 from Running to Failed; a create adds to an existing group.
        kube_cluster.apply(widget(group, kube_namespace, "w2", "Failed", 0.5),
                           widget(group, other, "w5", "Running", 1))
        wait_for(lambda: state() == (
            {f'{by_phase}{{{a},phase="Pending"}} 1', f'{by_phase}{{{a},phase="Running"}} 1',
             f'{by_phase}{{{a},phase="Failed"}} 1', f'{by_phase}{{{b},phase="Running"}} 2'},
            {f'{replicas}{{phase="Pending"}} 1', f'{replicas}{{phase="Running"}} 6',
             f'{replicas}{{phase="Failed"}} 0.5'}),
            timeout=15, what=lambda: f"{state()}\n{proc.log_tail()}")
        # Deleting the only Pending widget removes its groups.
        kube_cluster.kubectl("delete", f"widgets.{group}", "w3", "-n", kube_namespace)
        wait_for(lambda: state() == (
            {f'{by_phase}{{{a},phase="Running"}} 1', f'{by_phase}{{{a},phase="Failed"}} 1',
             f'{by_phase}{{{b},phase="Running"}} 2'},
            {f'{replicas}{{phase="Running"}} 6', f'{replicas}{{phase="Failed"}} 0.5'}),
            timeout=15, what=lambda: f"{state()}\n{proc.log_tail()}")
        by_team = f"{family_prefix(group)}by_team"
        assert proc.samples(by_team + "{") == {f'{by_team}{{label_team="t"}} 3',
                                               f'{by_team}{{label_team="u"}} 1'}
        text = proc.metrics()
        assert text.count(f"# TYPE {by_phase} gauge\n") == 1 and text.count(f"# TYPE {replicas} gauge\n") == 1
