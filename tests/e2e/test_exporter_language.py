"""Configuration-language extensions on the real kube-apiserver: the CRD schema accepts them
(``kubectl apply --dry-run=server``) and the live exporter serves them: ``spec.targetRef.selector``
(sent as the list/watch labelSelector), ``excludeNamespaces``, ``labelsAllowlist``, a filter path,
map keys as labels."""

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


def scoped_config(name: str, group: str, *, exclude: str) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": f"{group}/v1", "kind": "Widget",
                          "selector": {"matchLabels": {"tier": "gold"},
                                       "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
                          "excludeNamespaces": [exclude]},
            "labelsAllowlist": ["team"],
            "metrics": [
                {"name": "ready", "help": "Ready condition.", "type": "gauge",
                 "params": [{"key": "s", "valuePath": ".status.conditions[?(@.type=='Ready')].status"}],
                 "metricValue": {"valueFromExpression": "int(s == 'True')"}},
                {"name": "capacity", "help": "Capacity by resource.", "type": "gauge",
                 "labels": [{"key": "resource", "keyFromPath": ".spec.capacity[*]"}],
                 "metricValue": {"valueFromPath": ".spec.capacity[*]"}},
            ],
        },
    }


def widget(group: str, namespace: str, name: str, labels: dict[str, str], ready: str) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"capacity": {"cpu": "2", "memory": "1Ki"}},
            "status": {"conditions": [{"type": "Synced", "status": "True"},
                                      {"type": "Ready", "status": ready}]}}


def test_crd_accepts_the_extension_examples(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    install_config_crd(kube_cluster)
    out = kube_cluster.kubectl("apply", "--dry-run=server", "-f",
                               str(ROOT / "examples" / "extensions" / "config.yaml")).stdout
    assert "core-pod-extensions" in out and "core-node-capacity" in out
    scoped = tmp_path / "scoped.json"
    scoped.write_text(json.dumps(scoped_config("scoped-dry-run", "example.com", exclude="kube-system")))
    assert "scoped-dry-run" in kube_cluster.kubectl("apply", "--dry-run=server", "-f", str(scoped)).stdout


def test_live_exporter_serves_scoped_configuration(kube_cluster: KubeCluster, kube_namespace: str,
                                                   tmp_path: Path) -> None:
    group = unique_group()
    apply_crd(kube_cluster, widget_crd(group))
    other = f"{kube_namespace}-x"
    kube_cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    kube_cluster.apply(
        widget(group, kube_namespace, "gold-1", {"tier": "gold", "team": "a"}, "True"),
        widget(group, kube_namespace, "gold-canary", {"tier": "gold", "canary": "yes"}, "True"),
        widget(group, kube_namespace, "silver", {"tier": "silver"}, "True"),
        widget(group, other, "gold-excluded", {"tier": "gold"}, "True"),
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(scoped_config(f"lang-{group.split('.')[0]}", group, exclude=other)))
    ready, capacity = f"{family_prefix(group)}ready{{", f"{family_prefix(group)}capacity{{"
    with serve(kube_cluster, tmp_path, f"--config={config_file}") as proc:
        head = f'namespace="{kube_namespace}",widget="gold-1",label_team="a"'
        wait_for(lambda: proc.samples(ready) == {f"{ready}{head}}} 1"}, timeout=30, what=proc.log_tail)
        assert proc.samples(capacity) == {f'{capacity}{head},resource="cpu"}} 2',
                                          f'{capacity}{head},resource="memory"}} 1024'}
        kube_cluster.apply(widget(group, kube_namespace, "gold-1", {"tier": "gold", "team": "a"}, "False"),
                           widget(group, kube_namespace, "silver", {"tier": "gold"}, "False"))
        silver = f'namespace="{kube_namespace}",widget="silver"'
        wait_for(lambda: proc.samples(ready) == {f"{ready}{head}}} 0", f"{ready}{silver}}} 0"},
                 timeout=10, what=proc.log_tail)
