"""The live exporter's typo check of paths on the real kube-apiserver (issue 10, deliverable 7).

A MetricsConfiguration whose path the target's schema cannot have (``.spec.replica`` on a
Widget CRD whose schema has ``.spec.replicas``; the same on Deployment, from the
kube-apiserver's ``/openapi/v2``) gets ``PathsValid=False`` (``UnknownPath``) with a
did-you-mean and one Warning Event, keeps ``Ready=True`` and keeps serving; fixing it flips the
condition to True.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import (
    apply_crd,
    config_status,
    dump,
    family_prefix,
    install_config_crd,
    metrics_config,
    serve,
    unique_group,
    wait_for,
    widget,
    widget_crd,
)

STATUS_SECONDS = 20.0
CONFIGS = "metricsconfigurations.metrics.appscode.com"


def structured_widget_crd(group: str) -> dict[str, Any]:
    """A Widget CRD with a real schema (``widget_crd``'s default accepts any field)."""
    return widget_crd(
        group,
        spec_properties={"replicas": {"type": "integer"}, "color": {"type": "string"}},
        status_properties={"phase": {"type": "string"}},
    )


def replicas_and_info(replicas_path: str) -> list[dict[str, Any]]:
    return [
        {"name": "replicas", "help": "Desired replicas.", "type": "gauge",
         "metricValue": {"valueFromPath": replicas_path}},
        {"name": "info", "help": "Widget information.", "type": "gauge",
         "labels": [{"key": "color", "valuePath": ".spec.color"}], "metricValue": {"value": 1}},
    ]


def conditions(cluster: KubeCluster, name: str) -> dict[str, dict[str, Any]]:
    return {str(c.get("type")): dict(c) for c in config_status(cluster, name).get("conditions") or ()}


def paths_valid(cluster: KubeCluster, name: str) -> dict[str, Any]:
    return conditions(cluster, name).get("PathsValid", {})


def test_typo_in_a_path_is_a_condition_with_did_you_mean_and_keeps_serving(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    install_config_crd(kube_cluster)
    group = unique_group()
    apply_crd(kube_cluster, structured_widget_crd(group))
    tag = group.split(".")[0]
    name, native = f"typo-{tag}", f"typo-deployments-{tag}"
    prefix = family_prefix(group)
    info = f'{prefix}info{{namespace="{kube_namespace}",widget="w1",color="blue"}} 1'
    replicas = f'{prefix}replicas{{namespace="{kube_namespace}",widget="w1"}} 3'
    deployment_config = {
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": native},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment"}, "metrics": [
            {"name": f"typo_{tag}", "help": "h", "type": "gauge",
             "metricValue": {"valueFromPath": ".spec.replica"}}]}}
    with serve(kube_cluster, tmp_path) as proc:
        kube_cluster.apply(widget(group, kube_namespace, "w1", replicas=3, color="blue"),
                           metrics_config(name, group, metrics=replicas_and_info(".spec.replica")),
                           deployment_config)
        wait_for(lambda: paths_valid(kube_cluster, name).get("status") == "False", timeout=STATUS_SECONDS,
                 what=lambda: dump(config_status(kube_cluster, name)) + proc.log_tail())
        cond = paths_valid(kube_cluster, name)
        assert cond["reason"] == "UnknownPath" and cond["observedGeneration"] == 1
        assert cond["message"] == (
            "spec.metrics[0].metricValue.valueFromPath: '.spec.replica': the schema of the target has no "
            "field 'replica' under .spec; did you mean '.spec.replicas'?"), cond
        ready = conditions(kube_cluster, name)["Ready"]
        assert (ready["status"], ready["reason"]) == ("True", "Compiled"), dump(ready)
        # still serving: the info family; the typo'd path finds nothing on the object
        wait_for(lambda: proc.samples(prefix) == {info}, timeout=STATUS_SECONDS,
                 what=lambda: f"{sorted(proc.samples(prefix))}\n{proc.log_tail()}")
        assert proc.get("/readyz")[0] == 200
        assert f'panopticon_configuration_unknown_paths{{configuration="{name}"}} 1.0' in proc.metrics()

        # a native kind: checked against the kube-apiserver's /openapi/v2
        wait_for(lambda: paths_valid(kube_cluster, native).get("status") == "False", timeout=STATUS_SECONDS,
                 what=lambda: dump(config_status(kube_cluster, native)) + proc.log_tail())
        message = paths_valid(kube_cluster, native)["message"]
        assert "did you mean '.spec.replicas'?" in message, message
        assert conditions(kube_cluster, native)["Ready"]["status"] == "True"

        # more object events do not repeat the warning: one log line per configuration
        kube_cluster.apply(widget(group, kube_namespace, "w1", replicas=3, color="green"))
        wait_for(lambda: any('color="green"' in s for s in proc.samples(prefix)), timeout=STATUS_SECONDS,
                 what=lambda: f"{sorted(proc.samples(prefix))}")
        kube_cluster.apply(widget(group, kube_namespace, "w1", replicas=3, color="blue"))
        wait_for(lambda: proc.samples(prefix) == {info}, timeout=STATUS_SECONDS,
                 what=lambda: f"{sorted(proc.samples(prefix))}")
        warnings = [line for line in proc.log.read_text().splitlines()
                    if f"configuration {name}:" in line and "cannot have" in line]
        assert len(warnings) == 1, warnings
        events = kube_cluster.get_json("events", "-n", "default", "--field-selector",
                                       f"involvedObject.name={name},reason=UnknownPath")["items"]
        assert len(events) == 1, dump(events)
        assert events[0]["type"] == "Warning" and "did you mean '.spec.replicas'?" in events[0]["message"]
        assert events[0]["involvedObject"]["kind"] == "MetricsConfiguration"

        # fixing the path flips the condition to True and the family appears
        kube_cluster.apply(metrics_config(name, group, metrics=replicas_and_info(".spec.replicas")))
        wait_for(lambda: paths_valid(kube_cluster, name).get("status") == "True", timeout=STATUS_SECONDS,
                 what=lambda: dump(config_status(kube_cluster, name)) + proc.log_tail())
        cond = paths_valid(kube_cluster, name)
        assert cond["reason"] == "SchemaMatched" and cond["observedGeneration"] == 2
        assert cond["message"] == f"2 paths match the schema of CustomResourceDefinition widgets.{group}"
        wait_for(lambda: proc.samples(prefix) == {info, replicas}, timeout=STATUS_SECONDS,
                 what=lambda: f"{sorted(proc.samples(prefix))}")
        assert f'panopticon_configuration_unknown_paths{{configuration="{name}"}} 0.0' in proc.metrics()
        assert proc.process.poll() is None
        for config in (name, native):
            kube_cluster.kubectl("delete", CONFIGS, config)
