"""Series lookup by target object (``apiserver.metric_lookup``) and quantity strings.

Real ``MetricsStore`` and ``ApiViews`` with the hand-made ``SamplePlan`` (Widgets of
``example.com/v1``), so labels and values, NaN included, are exactly what each test says.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from apiserver.metric_lookup import (
    AmbiguousSeries,
    MetricNotFound,
    ObjectNotFound,
    ScopeMismatch,
    SeriesNotFound,
    StateMetrics,
    guess_namespaced,
    split_group_resource,
)
from apiserver.quantity import NonFiniteValue, format_quantity, milli_units
from apiserver.selectors import parse_label_selector
from apiserver.views import ApiViews, guess_resource
from exporter.exposition import parse_series
from exporter.store import MetricsStore
from exporter.types import TargetRef
from tests.plan_doubles import SamplePlan

EVERYTHING = parse_label_selector("")


def widget(
    name: str,
    namespace: str,
    samples: dict[str, list[tuple[dict[str, str], Any]]],
    *,
    labels: dict[str, str] | None = None,
    rv: str = "1",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "resourceVersion": rv,
    }
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta,
        "samples": {k: [list(s) for s in v] for k, v in samples.items()},
    }


@pytest.fixture
def metrics() -> StateMetrics:
    store = MetricsStore(clock=lambda: 1_700_000_000.0)
    store.set_plan(SamplePlan.of("widgets", ["widget_backlog", "widget_condition"]))
    store.replace(
        "widgets",
        [
            widget(
                "w1",
                "team-a",
                {
                    "widget_backlog": [({}, 30)],
                    "widget_condition": [({"type": "Ready"}, 1), ({"type": "Stalled"}, 0)],
                },
                labels={"app": "queue", "tier": "gold"},
            ),
            widget("w2", "team-a", {"widget_backlog": [({}, 2.5)]}, labels={"app": "queue"}),
            widget("w3", "team-a", {"widget_backlog": [({}, math.nan)]}, labels={"app": "other"}),
            widget("w4", "team-b", {"widget_backlog": [({}, 7)]}, labels={"app": "queue"}),
        ],
    )
    return StateMetrics(store, ApiViews(store), parse_series=parse_series, namer=guess_resource)


def test_quantity_canonical_milli_units() -> None:
    cases = {
        3.0: "3",
        2.5: "2500m",
        0.0: "0",
        2000.0: "2k",
        1_500_000.0: "1500k",
        0.0004: "0",
        0.0005: "1m",
        -2.5: "-2500m",
        0.1 * 3: "300m",
        1e18: "1E",
        123.456789: "123457m",
    }
    assert {v: format_quantity(v) for v in cases} == cases
    assert milli_units(1.0005) == 1001
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(NonFiniteValue):
            format_quantity(bad)


def test_split_group_resource() -> None:
    assert split_group_resource("widgets.example.com") == ("widgets", "example.com")
    assert split_group_resource("pods") == ("pods", "")
    assert split_group_resource("pods.core") == ("pods", "")
    assert guess_namespaced("c", TargetRef("v1", "Node")) is False
    assert guess_namespaced("c", TargetRef("example.com/v1", "Widget")) is True


def test_object_value_and_catalogue(metrics: StateMetrics) -> None:
    info = metrics.metric("widget_backlog", "widgets.example.com")
    assert (info.resource, info.group, info.namespaced, info.group_resource) == (
        "widgets",
        "example.com",
        True,
        "widgets.example.com",
    )
    found = metrics.for_object(info, namespace="team-a", name="w1", metric_selector=EVERYTHING)
    [point] = found.points
    assert point.value == 30.0 and point.target.name == "w1" and point.target.namespace == "team-a"
    assert point.target.kind == "Widget" and point.target.api_version == "example.com/v1"
    assert point.rendered == 1_700_000_000.0
    assert set(metrics.families()) == {"widget_backlog", "widget_condition"}


def test_unknown_family_wrong_resource_unknown_object(metrics: StateMetrics) -> None:
    with pytest.raises(MetricNotFound, match="no metric family"):
        metrics.metric("nope", "widgets.example.com")
    with pytest.raises(MetricNotFound, match=r"describes widgets\.example\.com"):
        metrics.metric("widget_backlog", "deployments.apps")
    info = metrics.metric("widget_backlog", "widgets.example.com")
    with pytest.raises(ObjectNotFound, match="w9"):
        metrics.for_object(info, namespace="team-a", name="w9", metric_selector=EVERYTHING)
    with pytest.raises(ObjectNotFound):  # w4 exists, but in team-b
        metrics.for_object(info, namespace="team-a", name="w4", metric_selector=EVERYTHING)
    with pytest.raises(ScopeMismatch):
        metrics.for_object(info, namespace="", name="w1", metric_selector=EVERYTHING)


def test_metric_selector_must_narrow_to_one_series(metrics: StateMetrics) -> None:
    info = metrics.metric("widget_condition", "widgets.example.com")
    with pytest.raises(AmbiguousSeries, match="2 series") as exc:
        metrics.for_object(info, namespace="team-a", name="w1", metric_selector=EVERYTHING)
    assert exc.value.code == 400
    found = metrics.for_object(
        info, namespace="team-a", name="w1", metric_selector=parse_label_selector("type=Stalled")
    )
    assert [(p.labels["type"], p.value) for p in found.points] == [("Stalled", 0.0)]
    with pytest.raises(SeriesNotFound):
        metrics.for_object(
            info, namespace="team-a", name="w1", metric_selector=parse_label_selector("type=Missing")
        )


def test_nan_is_skipped_and_named(metrics: StateMetrics) -> None:
    info = metrics.metric("widget_backlog", "widgets.example.com")
    with pytest.raises(SeriesNotFound, match=r"no finite value.*w3.*nan"):
        metrics.for_object(info, namespace="team-a", name="w3", metric_selector=EVERYTHING)
    found = metrics.for_objects(
        info, namespace="team-a", object_selector=EVERYTHING, metric_selector=EVERYTHING
    )
    assert [(p.target.name, p.value) for p in found.points] == [("w1", 30.0), ("w2", 2.5)]
    assert [s.target.name for s in found.skipped] == ["w3"]


def test_all_objects_filtered_by_object_labels(metrics: StateMetrics) -> None:
    info = metrics.metric("widget_backlog", "widgets.example.com")
    found = metrics.for_objects(
        info,
        namespace="team-a",
        object_selector=parse_label_selector("app=queue"),
        metric_selector=EVERYTHING,
    )
    assert [p.target.name for p in found.points] == ["w1", "w2"] and not found.skipped
    gold = metrics.for_objects(
        info,
        namespace="team-a",
        object_selector=parse_label_selector("app in (queue),tier=gold"),
        metric_selector=EVERYTHING,
    )
    assert [p.target.name for p in gold.points] == ["w1"]


def test_external_one_item_per_series_of_the_namespace(metrics: StateMetrics) -> None:
    info = metrics.metric("widget_condition")
    found = metrics.external(info, namespace="team-a", selector=EVERYTHING)
    assert [(p.target.name, p.labels["type"]) for p in found.points] == [("w1", "Ready"), ("w1", "Stalled")]
    backlog = metrics.external(
        metrics.metric("widget_backlog"), namespace="team-a", selector=parse_label_selector("widget!=w2")
    )
    assert [p.value for p in backlog.points] == [30.0] and [s.target.name for s in backlog.skipped] == ["w3"]
    team_b = metrics.external(metrics.metric("widget_backlog"), namespace="team-b", selector=EVERYTHING)
    assert [p.value for p in team_b.points] == [7.0]


def test_labels_follow_the_object_without_a_new_render(metrics: StateMetrics) -> None:
    store = metrics._store
    assert isinstance(store, MetricsStore)
    store.upsert(
        "widgets", widget("w2", "team-a", {"widget_backlog": [({}, 2.5)]}, labels={"app": "moved"}, rv="2")
    )
    info = metrics.metric("widget_backlog", "widgets.example.com")
    found = metrics.for_objects(
        info,
        namespace="team-a",
        object_selector=parse_label_selector("app=queue"),
        metric_selector=EVERYTHING,
    )
    assert [p.target.name for p in found.points] == ["w1"]


def test_unchanged_chunks_are_parsed_once() -> None:
    store = MetricsStore()
    store.set_plan(SamplePlan.of("widgets", ["widget_backlog"]))
    store.replace("widgets", [widget("w1", "team-a", {"widget_backlog": [({}, 1)]})])
    calls: list[bytes] = []

    def counting(chunk: bytes) -> list[Any]:
        calls.append(chunk)
        return parse_series(chunk)

    metrics = StateMetrics(store, ApiViews(store), parse_series=counting, namer=guess_resource)
    info = metrics.metric("widget_backlog", "widgets.example.com")
    for _ in range(3):
        metrics.for_object(info, namespace="team-a", name="w1", metric_selector=EVERYTHING)
    store.upsert("widgets", widget("w1", "team-a", {"widget_backlog": [({}, 2)]}, rv="2"))
    [point] = metrics.for_object(info, namespace="team-a", name="w1", metric_selector=EVERYTHING).points
    assert point.value == 2.0 and len(calls) == 2


def test_metrics_api_requests_have_fixed_telemetry_labels(metrics: StateMetrics) -> None:
    from apiserver.metrics_apis import metrics_api_groups
    from apiserver.registry import ApiRegistry

    registry = ApiRegistry(metrics_api_groups(metrics))
    assert (
        registry.telemetry_label("custom.metrics.k8s.io", "v1beta2", "widgets.example.com")
        == "custom.metrics"
    )
    assert registry.telemetry_label("custom.metrics.k8s.io", "v1beta1", "pods") == "custom.metrics"
    assert registry.telemetry_label("external.metrics.k8s.io", "v1beta1", "any_family") == "external.metrics"
    assert registry.telemetry_label("example.com", "v1", "widgets") == "other"
