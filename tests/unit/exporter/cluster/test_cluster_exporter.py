"""ClusterExporter against the fake API server: configs, targets, status, CRDs appearing late,
namespaces, selectors and shards. (The same behaviour on a real kube-apiserver is in
tests/e2e/test_exporter_*.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from exporter.cluster import ClusterExporter, ExporterOptions
from exporter.exposition import Exposition
from exporter.store import MetricsStore
from kube.client import KubeClient
from tests.unit.kube.fake_apiserver import FakeApiServer

CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/widgets"
NAMESPACES = "/api/v1/namespaces"


def widget_discovery(fake: FakeApiServer) -> None:
    fake.discovery["/apis/example.com/v1"] = {
        "kind": "APIResourceList", "groupVersion": "example.com/v1",
        "resources": [{"name": "widgets", "kind": "Widget", "namespaced": True},
                      {"name": "widgets/status", "kind": "Widget", "namespaced": True}]}
    fake.discovery["/apis/example.com"] = {
        "kind": "APIGroup", "name": "example.com", "preferredVersion": {"version": "v1"},
        "versions": [{"groupVersion": "example.com/v1", "version": "v1"}]}


def config(name: str = "widgets", *, version: str = "v1", metrics: list[dict[str, Any]] | None = None,
           kind: str = "Widget") -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": f"example.com/{version}", "kind": kind}, "metrics": metrics or [
            {"name": "replicas", "help": "Desired replicas.", "type": "gauge",
             "field": {"path": ".spec.replicas", "type": "Integer"},
             "metricValue": {"valueFromPath": ".spec.replicas"}},
        ]},
    }


def widget(ns: str, name: str, replicas: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"namespace": ns, "name": name},
            "spec": {"replicas": replicas}}


class Running:
    def __init__(self, exporter: ClusterExporter) -> None:
        self.exporter = exporter
        self.exposition = Exposition(exporter.store)

    def text(self) -> str:
        return self.exposition.body(fmt="text").decode()

    def samples(self) -> set[str]:
        return {line for line in self.text().splitlines() if line and not line.startswith("#")}


@pytest.fixture
async def start(client: KubeClient) -> AsyncIterator[Callable[..., Any]]:
    started: list[ClusterExporter] = []

    async def run(**options: Any) -> Running:
        exporter = ClusterExporter(client, MetricsStore(), options=ExporterOptions(
            status_interval=0.1, **options))
        await exporter.start()
        started.append(exporter)
        return Running(exporter)

    yield run
    for exporter in started:
        await exporter.stop()


async def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not met in time: {what}")
        await asyncio.sleep(0.02)


def ready_condition(fake: FakeApiServer, name: str) -> dict[str, Any]:
    obj = fake.objects[CONFIGS][("", name)]
    conds = (obj.get("status") or {}).get("conditions") or [{}]
    return dict(conds[0])


async def test_objects_updates_deletes_and_status(fake: FakeApiServer, start: Callable[..., Any]) -> None:
    widget_discovery(fake)
    await fake.put(WIDGETS, widget("a", "w1", 1))
    await fake.put(WIDGETS, widget("b", "w2", 2))
    await fake.put(CONFIGS, config())
    run = await start()
    await eventually(run.exporter.ready, what="ready")
    assert run.samples() == {'example_com_widget_replicas{namespace="a",widget="w1"} 1',
                             'example_com_widget_replicas{namespace="b",widget="w2"} 2'}
    await fake.put(WIDGETS, widget("a", "w1", 5))
    await fake.remove(WIDGETS, "b", "w2")
    await eventually(lambda: run.samples() == {'example_com_widget_replicas{namespace="a",widget="w1"} 5'})
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "Compiled")
    status = fake.objects[CONFIGS][("", "widgets")]["status"]
    assert status["observedGeneration"] == 1 and status["objects"] == 1 and status["series"] == 1
    assert status["resolvedResource"] == {"group": "example.com", "version": "v1", "resource": "widgets",
                                          "kind": "Widget", "namespaced": True}
    assert ready_condition(fake, "widgets")["status"] == "True"


async def test_config_update_swaps_atomically_and_delete_removes(
    fake: FakeApiServer, start: Callable[..., Any]
) -> None:
    widget_discovery(fake)
    for i in range(20):
        await fake.put(WIDGETS, widget("a", f"w{i}", i))
    await fake.put(CONFIGS, config())
    run = await start()
    await eventually(run.exporter.ready)
    assert len(run.samples()) == 20
    seen_sizes: set[int] = set()
    stop = asyncio.Event()

    async def scrape() -> None:
        while not stop.is_set():
            seen_sizes.add(len(run.samples()))
            await asyncio.sleep(0)

    scraper = asyncio.create_task(scrape())
    updated = config(metrics=[{"name": "replicas_doubled", "help": "2x", "type": "gauge",
                               "params": [{"key": "r", "valuePath": ".spec.replicas"}],
                               "metricValue": {"valueFromExpression": "r * 2"}}])
    await fake.put(CONFIGS, updated)
    doubled = 'example_com_widget_replicas_doubled{namespace="a",widget="w3"} 6'
    await eventually(lambda: doubled in run.samples())
    stop.set()
    await scraper
    assert seen_sizes == {20}, "a scrape saw a half-swapped configuration"
    assert not any("widget_replicas{" in s for s in run.samples())
    await eventually(lambda: ready_condition(fake, "widgets").get("observedGeneration") == 2)
    await fake.remove(CONFIGS, "", "widgets")
    await eventually(lambda: run.samples() == set())
    assert run.exporter.registry.targets() == []


async def test_bad_config_and_unknown_kind_leave_others_serving(
    fake: FakeApiServer, start: Callable[..., Any]
) -> None:
    widget_discovery(fake)
    await fake.put(WIDGETS, widget("a", "w1", 1))
    await fake.put(CONFIGS, config())
    bad = config("broken", metrics=[{"name": "Bad-Name", "help": "x", "type": "gauge",
                                     "metricValue": {"valueFromExpression": "int(("}}])
    await fake.put(CONFIGS, bad)
    await fake.put(CONFIGS, config("gadgets", kind="Gadget", version="v1"))
    run = await start()
    await eventually(lambda: ready_condition(fake, "broken").get("reason") == "CompileError")
    await eventually(lambda: ready_condition(fake, "gadgets").get("reason") == "TargetNotFound")
    await eventually(run.exporter.ready)
    # readiness comes before the status pass that records the good configuration's reason
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "Compiled")
    assert run.samples() == {'example_com_widget_replicas{namespace="a",widget="w1"} 1'}
    assert "spec.metrics[0]" in ready_condition(fake, "broken")["message"]
    assert ready_condition(fake, "broken")["status"] == "False"
    registry = run.exporter.store.telemetry.registry
    assert registry.get_sample_value("panopticon_configuration_ready",
                                     {"configuration": "broken", "reason": "CompileError"}) == 0
    assert registry.get_sample_value("panopticon_configuration_ready",
                                     {"configuration": "widgets", "reason": "Compiled"}) == 1
    # a wrong-typed value drops one series, counted, the rest stays
    await fake.put(WIDGETS, widget("a", "w2", "not-a-number"))
    objects = lambda: {c: n for c, n, _ in run.exporter.store.stats()}.get("widgets")  # noqa: E731
    await eventually(lambda: objects() == 2, what="w2 rendered")  # the event has arrived
    assert run.samples() == {'example_com_widget_replicas{namespace="a",widget="w1"} 1'}
    errors = sum(s.value for m in registry.collect() if m.name == "panopticon_series_errors"
                 for s in m.samples if s.name.endswith("_total"))
    assert errors >= 1


async def test_kind_appearing_later_without_restart(fake: FakeApiServer, start: Callable[..., Any]) -> None:
    await fake.put(CONFIGS, config())
    run = await start()
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "TargetNotFound")
    assert run.exporter.ready()  # a pending config does not block readiness
    widget_discovery(fake)
    await fake.put(WIDGETS, widget("a", "w1", 7))
    await fake.put(CRDS, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                          "metadata": {"name": "widgets.example.com"}})
    await eventually(lambda: run.samples() == {'example_com_widget_replicas{namespace="a",widget="w1"} 7'})
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "Compiled")


async def test_version_fallback(fake: FakeApiServer, start: Callable[..., Any]) -> None:
    widget_discovery(fake)
    await fake.put(WIDGETS, widget("a", "w1", 1))
    await fake.put(CONFIGS, config(version="v1beta1"))
    run = await start()
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "VersionFallback")
    cond = ready_condition(fake, "widgets")
    assert cond["status"] == "True" and "using example.com/v1" in cond["message"]
    assert len(run.samples()) == 1


async def test_namespaces_option_watches_per_namespace(
    fake: FakeApiServer, start: Callable[..., Any]
) -> None:
    widget_discovery(fake)
    for ns in ("a", "b", "c"):
        await fake.put(WIDGETS, widget(ns, "w", 1))
    await fake.put(CONFIGS, config())
    run = await start(namespaces=("a", "c"))
    await eventually(run.exporter.ready)
    assert {s.split("namespace=")[1][1] for s in run.samples()} == {"a", "c"}
    # Only the target resource's requests: the config is also named "widgets" and its status
    # write (timing-dependent) must not count.
    paths = {
        p for (_, p, q) in fake.requests if p.startswith("/apis/example.com/") and p.endswith("/widgets")
    }
    assert paths == {"/apis/example.com/v1/namespaces/a/widgets", "/apis/example.com/v1/namespaces/c/widgets"}


async def test_namespace_selector_follows_labels(fake: FakeApiServer, start: Callable[..., Any]) -> None:
    widget_discovery(fake)
    for ns, team in (("a", "x"), ("b", "y")):
        await fake.put(NAMESPACES, {"metadata": {"name": ns, "labels": {"team": team}}})
        await fake.put(WIDGETS, widget(ns, "w", 1))
    await fake.put(CONFIGS, config())
    run = await start(namespace_selector="team=x")
    await eventually(run.exporter.ready)
    assert run.samples() == {'example_com_widget_replicas{namespace="a",widget="w"} 1'}
    await fake.put(NAMESPACES, {"metadata": {"name": "b", "labels": {"team": "x"}}})
    await eventually(lambda: len(run.samples()) == 2)
    await fake.put(NAMESPACES, {"metadata": {"name": "a", "labels": {"team": "z"}}})
    # a namespace that stops matching: the fake sends MODIFIED (the real server sends DELETED
    # for a selector-filtered watch); either way its series go when the set is re-listed
    await fake.remove(NAMESPACES, "", "a")
    await eventually(lambda: run.samples() == {'example_com_widget_replicas{namespace="b",widget="w"} 1'})


async def test_shards_partition_the_unsharded_exposition(
    fake: FakeApiServer, start: Callable[..., Any]
) -> None:
    widget_discovery(fake)
    for i in range(60):
        await fake.put(WIDGETS, widget(f"n{i % 3}", f"w{i}", i))
    await fake.put(CONFIGS, config())
    full = await start(write_status=False)
    shards = [await start(shard=s, total_shards=3, write_status=False) for s in range(3)]
    for run in (full, *shards):
        await eventually(run.exporter.ready)
    parts = [run.samples() for run in shards]
    assert all(parts) and sum(len(p) for p in parts) == len(full.samples()) == 60
    assert set().union(*parts) == full.samples()


async def test_forbidden_target_is_list_error_and_recovers(
    fake: FakeApiServer, start: Callable[..., Any]
) -> None:
    widget_discovery(fake)
    fake.forbidden.add(WIDGETS)
    await fake.put(WIDGETS, widget("a", "w1", 1))
    await fake.put(CONFIGS, config())
    run = await start()
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "ListError")
    cond = ready_condition(fake, "widgets")
    assert cond["status"] == "False" and "403" in cond["message"]
    assert not run.exporter.ready()
    fake.forbidden.clear()  # RBAC fixed: the informer's back-off retries and succeeds
    await eventually(lambda: len(run.samples()) == 1, timeout=40)
    await eventually(lambda: ready_condition(fake, "widgets").get("reason") == "Compiled")
    # ready once the work queue that wrote that condition is idle (ClusterExporter.ready)
    await eventually(run.exporter.ready, timeout=10)


@pytest.mark.virtual_time  # three seconds of a busy collection, without waiting them
async def test_status_writes_are_rate_limited_per_config(
    fake: FakeApiServer, client: KubeClient
) -> None:
    widget_discovery(fake)
    await fake.put(CONFIGS, config())
    exporter = ClusterExporter(client, MetricsStore(), options=ExporterOptions(status_interval=1.0))
    await exporter.start()
    try:
        await eventually(exporter.ready)
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while loop.time() - start < 3.0:  # a busy collection: the counts change all the time
            await fake.put(WIDGETS, widget("a", f"w{i}", i))
            i += 1
            await asyncio.sleep(0.02)
        writes = [p for (m, p, _) in fake.requests if m == "PATCH" and p.endswith("/widgets/status")]
        assert 2 <= len(writes) <= 5, len(writes)  # ~1 per second, never one per event
        status = lambda: fake.objects[CONFIGS][("", "widgets")]["status"]  # noqa: E731
        await eventually(lambda: status()["objects"] == i, timeout=3)
    finally:
        await exporter.stop()


def test_config_status_is_pure_and_keeps_transition_time() -> None:
    from exporter.cluster import compile_message, config_status
    from exporter.types import Problem
    from kube.discovery import ResolvedResource

    res = ResolvedResource("example.com", "v1", "widgets", "Widget", True)
    first = config_status(previous=None, generation=3, ready="True", reason="Compiled", message="1 family",
                          resource=res, objects=2, series=5, now="T1")
    assert first == {
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Compiled", "message": "1 family",
                        "observedGeneration": 3, "lastTransitionTime": "T1"}],
        "resolvedResource": {"group": "example.com", "version": "v1", "resource": "widgets", "kind": "Widget",
                             "namespaced": True},
        "objects": 2, "series": 5,
    }
    again = config_status(previous=first["conditions"], generation=4, ready="True", reason="VersionFallback",
                          message="m", resource=res, objects=2, series=5, now="T2")
    assert again["conditions"][0]["lastTransitionTime"] == "T1"
    down = config_status(previous=again["conditions"], generation=4, ready="False", reason="TargetNotFound",
                         message="m", resource=None, objects=0, series=0, now="T3")
    assert down["conditions"][0]["lastTransitionTime"] == "T3" and down["resolvedResource"] is None

    class WithProblems(Exception):
        problems = [Problem("spec.metrics[0].name", "bad"), Problem("spec.targetRef.kind", "missing")]

    assert compile_message(WithProblems()) == "spec.metrics[0].name: bad; spec.targetRef.kind: missing"
    assert compile_message(ValueError("x")) == "ValueError: x"


async def test_reshard_swaps_the_object_set(fake: FakeApiServer, start: Callable[..., Any]) -> None:
    widget_discovery(fake)
    for i in range(40):
        await fake.put(WIDGETS, widget("a", f"w{i}", i))
    await fake.put(CONFIGS, config())
    full = await start(write_status=False)
    await eventually(full.exporter.ready)
    everything = full.samples()
    shard1 = await start(write_status=False, shard=1, total_shards=3)
    await eventually(shard1.exporter.ready)
    expected = shard1.samples()
    assert 0 < len(expected) < len(everything)

    full.exporter.reshard(1, 3)
    await eventually(lambda: full.samples() == expected, what="re-shard to 1 of 3")
    registry = full.exporter.store.telemetry.registry
    assert registry.get_sample_value("panopticon_total_shards") == 3
    full.exporter.reshard(0, 1)
    await eventually(lambda: full.samples() == everything, what="back to one shard")
    await eventually(lambda: len(full.exporter.registry.targets()) == 1)
