"""Drift detection: a rendered object matches itself; edits by others to fields we own are seen."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings

from tests.unit.thanos.strategies import thanos_objects
from thanos_operator.drift import drift
from thanos_operator.models import parse_thanos
from thanos_operator.render import render


def with_server_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server adds on its own: none of it may count as drift."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="x", resourceVersion="7", managedFields=[{"manager": "panopticon-thanos"}])
    if obj["kind"] in ("Deployment", "StatefulSet"):
        live["spec"]["revisionHistoryLimit"] = 10
        live["spec"]["template"]["spec"]["restartPolicy"] = "Always"
        for container in live["spec"]["template"]["spec"]["containers"]:
            container["imagePullPolicy"] = "IfNotPresent"
            container["terminationMessagePath"] = "/dev/termination-log"
        live["status"] = {"replicas": 0}
    if obj["kind"] == "Service":
        live["spec"]["type"] = "ClusterIP"
        live["spec"]["sessionAffinity"] = "None"
    return live


@settings(max_examples=60, deadline=None)
@given(thanos_objects())
def test_fresh_objects_never_look_drifted(raw: dict[str, Any]) -> None:
    for obj in render(parse_thanos(raw)):
        assert drift(obj, with_server_defaults(obj)) == [], obj["metadata"]["name"]


def test_edits_by_others_are_detected() -> None:
    objects = render(
        parse_thanos(
            {
                "metadata": {"name": "t", "namespace": "ns", "uid": "u"},
                "spec": {"query": {"replicas": 2}, "receive": {"ingestors": [{"name": "a"}]}},
            }
        )
    )
    by_name = {o["metadata"]["name"]: o for o in objects}
    dep = with_server_defaults(by_name["t-query"])
    dep["spec"]["replicas"] = 5
    dep["spec"]["template"]["spec"]["containers"][0]["args"].append("--extra")
    assert drift(by_name["t-query"], dep) == ["spec.replicas", "spec.template.spec.containers[query].args"]
    cm = with_server_defaults(by_name["t-receive-router-hashrings-config"])
    cm["data"]["hashrings.json"] = "[]"
    assert drift(by_name["t-receive-router-hashrings-config"], cm) == ["data"]
    svc = with_server_defaults(by_name["t-query-operated"])
    svc["metadata"]["labels"].pop("app.kubernetes.io/part-of")
    svc["metadata"]["ownerReferences"] = []
    assert drift(by_name["t-query-operated"], svc) == [
        "metadata.labels[app.kubernetes.io/part-of]",
        "metadata.ownerReferences",
    ]
    ingestor = with_server_defaults(by_name["t-receive-ingestor-a"])
    ingestor["spec"]["template"]["metadata"]["annotations"] = {"monitoring.paodin.io/secrets-hash": "x"}
    assert drift(by_name["t-receive-ingestor-a"], ingestor) == [
        "spec.template.metadata.annotations[monitoring.paodin.io/secrets-hash]"
    ]
