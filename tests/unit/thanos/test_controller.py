"""Controller wiring without a cluster: which events enqueue which Thanos, de-duplication, retries."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.unit.thanos.fake_api import FakeApi
from thanos_operator.controller import ThanosController
from thanos_operator.reconciler import thanos_path


def thanos(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def queued(controller: ThanosController) -> list[tuple[str, str]]:
    return controller.queue.take_queued()


async def test_secret_changes_enqueue_only_the_crs_referencing_them() -> None:
    controller = ThanosController(FakeApi())  # type: ignore[arg-type]
    controller._on_thanos(
        "ADDED", thanos("ns", "a", {"compact": {"objectStorageConfig": {"name": "bucket", "key": "k"}}})
    )
    controller._on_thanos("ADDED", thanos("ns", "b", {"query": {}}))
    controller._on_thanos(
        "ADDED", thanos("other", "c", {"compact": {"objectStorageConfig": {"name": "bucket", "key": "k"}}})
    )
    queued(controller)
    controller._on_secret("MODIFIED", {"metadata": {"name": "bucket", "namespace": "ns"}})
    controller._on_secret("MODIFIED", {"metadata": {"name": "unrelated", "namespace": "ns"}})
    assert queued(controller) == [("ns", "a")]
    controller._on_thanos("DELETED", thanos("ns", "a", {}))
    queued(controller)
    controller._on_secret("MODIFIED", {"metadata": {"name": "bucket", "namespace": "ns"}})
    assert queued(controller) == []


async def test_child_events_enqueue_their_controller_owner_once() -> None:
    controller = ThanosController(FakeApi())  # type: ignore[arg-type]
    child = {
        "metadata": {
            "name": "t-query",
            "namespace": "ns",
            "ownerReferences": [
                {
                    "apiVersion": "monitoring.paodin.io/v1alpha1",
                    "kind": "Thanos",
                    "name": "t",
                    "uid": "u",
                    "controller": True,
                }
            ],
        }
    }
    for _ in range(3):
        controller._on_child("MODIFIED", child)
    stub = {
        "metadata": {
            "name": "t-x",
            "namespace": "ns",  # a re-list DELETED stub: labels only
            "labels": {"app.kubernetes.io/managed-by": "u2", "app.kubernetes.io/part-of": "thanos"},
        }
    }
    controller._on_child("DELETED", stub)
    assert queued(controller) == [("ns", "t"), ("ns", "u2")]


@pytest.mark.virtual_time
async def test_failures_back_off_and_a_key_is_retried() -> None:
    api = FakeApi()
    calls: list[float] = []

    async def failing_get(path: str, *, params: Any = None) -> dict[str, Any]:
        calls.append(asyncio.get_running_loop().time())
        raise OSError("connection refused")

    api.get = failing_get  # type: ignore[method-assign]
    controller = ThanosController(api, workers=1)  # type: ignore[arg-type]
    controller.queue.start()
    controller.enqueue(("ns", "t"))
    await asyncio.sleep(2.5)  # virtual seconds
    await controller.stop()
    assert 2 <= len(calls) <= 3  # first try, then back-off from 1 s (jittered) doubling
    assert controller.failures == len(calls)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(g >= 0.45 for g in gaps)


async def test_a_successful_pass_converges_through_the_worker() -> None:
    api = FakeApi()
    api.put(
        thanos_path("ns", "t"),
        thanos("ns", "t", {"query": {}}) | {"metadata": {"name": "t", "namespace": "ns", "generation": 1}},
    )
    controller = ThanosController(api, workers=1)  # type: ignore[arg-type]
    controller.queue.start()
    controller.enqueue(("ns", "t"))
    assert await controller.wait_idle(5)
    await controller.stop()
    assert controller.passes == 1 and controller.failures == 0
    assert len(api.writes_of("apply")) == 3  # Deployment + Service + PodDisruptionBudget (v1beta1 here)


def test_namespaces_scope_every_watch() -> None:
    controller = ThanosController(FakeApi(), namespaces=("b", "a", "b"))  # type: ignore[arg-type]
    every = [target for target, _ in controller._targets()]
    # cluster-wide only: prometheus-operator's ServiceMonitor and PrometheusRule CRDs coming and going
    assert [(t.resource, t.field_selector) for t in every if t.namespace is None] == [
        ("customresourcedefinitions", "metadata.name=servicemonitors.monitoring.coreos.com"),
        ("customresourcedefinitions", "metadata.name=prometheusrules.monitoring.coreos.com"),
    ]
    # PrometheusRules are watched (once their CRD exists) in the watched namespaces only
    assert [(t.resource, t.namespace) for t in controller._rule_targets()] == [
        ("prometheusrules", "a"),
        ("prometheusrules", "b"),
    ]
    targets = [t for t in every if t.namespace is not None]
    assert controller.namespaces == ("a", "b")
    assert {t.namespace for t in targets} == {"a", "b"}
    assert [t.resource for t in targets[:2]] == ["thanos", "thanos"]  # the Thanos informers first
    assert len(targets) == 2 * len([t for t in targets if t.namespace == "a"])
    everywhere = ThanosController(FakeApi())  # type: ignore[arg-type]
    assert {t.namespace for t, _ in everywhere._targets()} == {None}
    one = ThanosController(FakeApi(), namespace="x")  # type: ignore[arg-type]
    assert {t.namespace for t, _ in one._targets() if t.resource != "customresourcedefinitions"} == {"x"}
