"""A family fed by two configurations, as the API server shows it: one ``MetricFamily`` (totals,
``sources``), custom metrics discovery and lookups per kind, external metrics over both.

Real compiled plans (two kinds, compatibility mode, one ``kube_*`` family), a real store and views.
"""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.metric_lookup import MetricNotFound, StateMetrics
from apiserver.metric_values import custom_discovery
from apiserver.objects import metric_family
from apiserver.selectors import parse_label_selector
from apiserver.views import ApiViews, guess_resource
from exporter.compiler import compile_config
from exporter.exposition import parse_series
from exporter.store import MetricsStore

EVERYTHING = parse_label_selector("")


def config(kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": f"myteam-{kind.lower()}"},
        "spec": {
            "targetRef": {"apiVersion": "myteam.io/v1", "kind": kind},
            "compatibility": "KubeStateMetrics",
            "commonLabels": [{"key": "customresource_kind", "value": kind},
                             {"key": "name", "valuePath": ".metadata.name"}],
            "metrics": [{"name": "uptime", "fullName": "kube_customresource_uptime", "help": "Foo uptime",
                         "type": "gauge", "metricValue": {"valueFromPath": ".status.uptime"}}],
        },
    }


def obj(kind: str, name: str, uptime: float) -> dict[str, Any]:
    return {"apiVersion": "myteam.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "uid": f"{kind}-{name}", "resourceVersion": "1"},
            "status": {"uptime": uptime}}


@pytest.fixture
def served() -> tuple[MetricsStore, ApiViews, StateMetrics]:
    store = MetricsStore(clock=lambda: 1_700_000_000.0)
    views = ApiViews(store, clock=lambda: 1_700_000_000.0)
    for kind, objects in (("Foo", [obj("Foo", "a", 1.5), obj("Foo", "b", 2)]), ("Bar", [obj("Bar", "c", 3)])):
        store.set_plan(compile_config(config(kind)), objects=objects)
    metrics = StateMetrics(store, views, parse_series=parse_series, namer=guess_resource)
    return store, views, metrics


Served = tuple[MetricsStore, ApiViews, StateMetrics]


def test_one_metric_family_with_totals_and_sources(served: Served) -> None:
    _, views, _ = served
    views.refresh_families()
    (snap,) = views.families()
    shape = metric_family(snap)
    assert (shape["metadata"]["name"], shape["configuration"], shape["series"], shape["objects"]) == (
        "kube_customresource_uptime", "myteam-bar", 3, 3)
    assert shape["target"] == {"apiVersion": "myteam.io/v1", "kind": "Bar"}
    assert shape["sources"] == [
        {"configuration": "myteam-bar", "target": {"apiVersion": "myteam.io/v1", "kind": "Bar"},
         "series": 1, "objects": 1},
        {"configuration": "myteam-foo", "target": {"apiVersion": "myteam.io/v1", "kind": "Foo"},
         "series": 2, "objects": 2},
    ]


def test_custom_metrics_per_kind_external_over_both(served: Served) -> None:
    _, _, metrics = served
    assert [r["name"] for r in custom_discovery(metrics.all_shares())] == [
        "bars.myteam.io/kube_customresource_uptime", "foos.myteam.io/kube_customresource_uptime"]
    foo = metrics.metric("kube_customresource_uptime", "foos.myteam.io")
    found = metrics.for_object(foo, namespace="ns", name="b", metric_selector=EVERYTHING)
    assert [(p.target.kind, p.target.name, p.value) for p in found.points] == [("Foo", "b", 2.0)]
    with pytest.raises(MetricNotFound, match=r"describes bars\.myteam\.io, foos\.myteam\.io"):
        metrics.metric("kube_customresource_uptime", "widgets.myteam.io")
    everything = metrics.external(metrics.metric("kube_customresource_uptime"), namespace="ns",
                                  selector=EVERYTHING)
    assert sorted((p.target.kind, p.value) for p in everything.points) == [
        ("Bar", 3.0), ("Foo", 1.5), ("Foo", 2.0)]
