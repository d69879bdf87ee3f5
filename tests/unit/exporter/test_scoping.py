"""Target scoping (``spec.targetRef.selector`` / ``namespaces`` / ``excludeNamespaces``): the
selector string sent to the kube-apiserver, the same rule in Python, problems with field paths."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.compiler import CompileError, compile_config
from exporter.offline import match_objects
from exporter.sources import Document


def config(**target: Any) -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "cfg"},
            "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod", **target},
                     "metrics": [{"name": "up", "help": "h", "type": "gauge", "metricValue": {"value": 1}}]}}


def pod(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}


SELECTOR = {"matchLabels": {"tier": "gold", "app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                 {"key": "track", "operator": "NotIn", "values": ["canary"]},
                                 {"key": "team", "operator": "Exists"},
                                 {"key": "legacy", "operator": "DoesNotExist"}]}


def test_selector_string_is_the_apis() -> None:
    plan = compile_config(config(selector=SELECTOR))
    assert plan.scope is not None
    assert plan.scope.selector == "app=web,tier=gold,env in (dev,prod),track notin (canary),team,!legacy"


@pytest.mark.parametrize(("labels", "accepted"), [
    ({"tier": "gold", "app": "web", "env": "prod", "team": "a"}, True),
    ({"tier": "gold", "app": "web", "env": "prod", "team": "a", "track": "stable"}, True),
    ({"tier": "gold", "app": "web", "env": "prod", "team": "a", "track": "canary"}, False),
    ({"tier": "gold", "app": "web", "env": "qa", "team": "a"}, False),
    ({"tier": "gold", "app": "web", "env": "prod"}, False),
    ({"tier": "gold", "app": "web", "env": "prod", "team": "a", "legacy": ""}, False),
    ({"app": "web", "env": "prod", "team": "a"}, False),
])
def test_selector_matches_as_kubernetes(labels: dict[str, str], accepted: bool) -> None:
    plan = compile_config(config(selector=SELECTOR))
    assert plan.accepts(pod("p", "ns", **labels)) is accepted


def test_namespaces_include_and_exclude() -> None:
    plan = compile_config(config(namespaces=["a", "b"], excludeNamespaces=["c"]))
    assert [plan.accepts(pod("p", ns)) for ns in ("a", "b", "c", "d")] == [True, True, False, False]
    excluded = compile_config(config(excludeNamespaces=["kube-system"]))
    assert [excluded.accepts(pod("p", ns)) for ns in ("kube-system", "x")] == [False, True]


def test_unscoped_plans_accept_everything() -> None:
    plan = compile_config(config())
    assert plan.scope is None and plan.accepts(pod("p", "any"))


def test_offline_matching_applies_the_scope() -> None:
    plan = compile_config(config(selector={"matchLabels": {"app": "web"}}))
    docs = [Document(source="f", index=0, line=1, data=pod("a", "ns", app="web")),
            Document(source="f", index=1, line=5, data=pod("b", "ns", app="db"))]
    snapshot = match_objects([plan], docs)
    assert [o["metadata"]["name"] for o in snapshot.objects["cfg"]] == ["a"]


def test_problems_have_field_paths() -> None:
    with pytest.raises(CompileError) as info:
        compile_config(config(
            selector={"matchLabels": {"bad key!": "v", "ok": "bad value!"},
                      "matchExpressions": [{"key": "k", "operator": "Has"},
                                           {"key": "k", "operator": "In"},
                                           {"key": "k", "operator": "Exists", "values": ["x"]}]},
            namespaces=["Bad_NS", "a"], excludeNamespaces=["a"]))
    assert [p.path for p in info.value.problems] == [
        "spec.targetRef.namespaces[0]", "spec.targetRef.excludeNamespaces",
        "spec.targetRef.selector.matchLabels.bad key!", "spec.targetRef.selector.matchLabels.ok",
        "spec.targetRef.selector.matchExpressions[0].operator",
        "spec.targetRef.selector.matchExpressions[1].values",
        "spec.targetRef.selector.matchExpressions[2].values"]
