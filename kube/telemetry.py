"""Own telemetry of the Kubernetes plumbing: list/watch requests and events, per resource.

Names follow kube-state-metrics' ``kube_state_metrics_list_total`` / ``watch_total`` so the
same dashboards and alerts apply. ``InformerTelemetry`` is the narrow interface an informer
reports through; ``PrometheusInformerTelemetry`` records into a prometheus_client registry and
``NullTelemetry`` is for tests and tools.
"""

from __future__ import annotations

from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class InformerTelemetry(Protocol):
    def list_done(self, resource: str, *, ok: bool) -> None: ...
    def watch_done(self, resource: str, *, ok: bool) -> None: ...
    def events(self, resource: str, event_type: str, count: int = 1) -> None: ...
    def relist_gone(self, resource: str) -> None: ...
    def objects(self, resource: str, count: int) -> None: ...


class NullTelemetry:
    def list_done(self, resource: str, *, ok: bool) -> None:
        pass

    def watch_done(self, resource: str, *, ok: bool) -> None:
        pass

    def events(self, resource: str, event_type: str, count: int = 1) -> None:
        pass

    def relist_gone(self, resource: str) -> None:
        pass

    def objects(self, resource: str, count: int) -> None:
        pass


class PrometheusInformerTelemetry:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._list = Counter(
            "panopticon_list_total", "LIST requests (all pages of one list count once) by result.",
            ["resource", "result"], registry=registry,
        )
        self._watch = Counter(
            "panopticon_watch_total", "WATCH requests by result (success = ended by the server's timeout).",
            ["resource", "result"], registry=registry,
        )
        self._events = Counter(
            "panopticon_watch_events_total", "Object events handled (watch events and re-list differences).",
            ["resource", "type"], registry=registry,
        )
        self._gone = Counter(
            "panopticon_relist_gone_total", "Re-lists forced by 410 Gone (resourceVersion too old).",
            ["resource"], registry=registry,
        )
        self._event_children: dict[tuple[str, str], Any] = {}
        self._objects = Gauge(
            "panopticon_informer_objects", "Objects an informer currently tracks.", ["resource"],
            registry=registry,
        )

    def list_done(self, resource: str, *, ok: bool) -> None:
        self._list.labels(resource, "success" if ok else "error").inc()

    def watch_done(self, resource: str, *, ok: bool) -> None:
        self._watch.labels(resource, "success" if ok else "error").inc()

    def events(self, resource: str, event_type: str, count: int = 1) -> None:
        # Called per watch event: cache the labelled child (labels() costs a lock and a lookup).
        child = self._event_children.get((resource, event_type))
        if child is None:
            child = self._event_children[(resource, event_type)] = self._events.labels(resource, event_type)
        child.inc(count)

    def relist_gone(self, resource: str) -> None:
        self._gone.labels(resource).inc()

    def objects(self, resource: str, count: int) -> None:
        self._objects.labels(resource).set(count)
