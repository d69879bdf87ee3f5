"""Panopticon's own metrics (telemetry), kept apart from the state metrics it exports.

The state metrics are pre-rendered bytes in the ``MetricsStore``; the process's own health is
ordinary prometheus_client instrumentation in a private ``CollectorRegistry`` (never the global
one, so tests and several stores in one process do not collide). The plain ``/metrics`` endpoint
appends this registry's exposition to the state metrics.

Counters are declared with the name they are exposed under (``..._total``), as in
``kube.telemetry`` and ``exporter.cluster.telemetry``, so a name found in a scrape is found by
grep in the code.

Figures that already live in the store (objects, series per configuration) are not mirrored
into gauges on every change: a collector reads them from the store at scrape time, which costs
nothing on the render path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_text
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.openmetrics.exposition import generate_latest as _generate_openmetrics
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from exporter.types import RenderErrors

log = logging.getLogger(__name__)

_OM_EOF = b"# EOF\n"


class StoreStats(Protocol):
    """What the telemetry collector needs from a store: counts per configuration."""

    @property
    def generation(self) -> int: ...

    def stats(self) -> Iterable[tuple[str, int, int]]:
        """(configuration, objects, series) for every configuration."""
        ...


class Telemetry:
    """The exporter's own metrics; one instance per process (or per test)."""

    def __init__(self, *, registry: CollectorRegistry | None = None, process_metrics: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process_metrics and registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.series_errors = Counter(
            "panopticon_series_errors_total", "Series dropped because a value or label could not be rendered",
            ["configuration", "metric", "reason"], registry=self.registry)
        self.object_renders = Counter(
            "panopticon_object_renders_total", "Objects rendered into the store (add/update events)",
            ["configuration"], registry=self.registry)
        self.render_failures = Counter(
            "panopticon_object_render_failures_total",
            "Objects whose rendering raised; their series are removed until the next update",
            ["configuration"], registry=self.registry)
        self.exposition_builds = Counter(
            "panopticon_exposition_builds_total", "Exposition bodies assembled because the store changed",
            ["format"], registry=self.registry)
        self.exposition_build_seconds = Histogram(
            "panopticon_exposition_build_seconds", "Time to assemble one exposition body (cache miss)",
            ["format"], registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.scrapes = Counter(
            "panopticon_scrapes_total", "Exposition requests served",
            ["endpoint", "format", "encoding"], registry=self.registry)
        self.source_reloads = Counter(
            "panopticon_source_reloads_total", "Reloads of the offline --source directory",
            ["result"], registry=self.registry)
        self.source_problems = Gauge(
            "panopticon_source_problems",
            "Problems (unreadable files, configurations that do not compile) at the last load of --source",
            registry=self.registry)
        self.source_last_success = Gauge(
            "panopticon_source_last_success_timestamp_seconds",
            "Unix time of the last successful load of the offline --source directory",
            registry=self.registry)

    def record_render_errors(self, configuration: str, errors: RenderErrors) -> None:
        for metric, reason, _detail in errors.items:
            self.series_errors.labels(configuration, metric, reason).inc()

    def watch_store(self, store: StoreStats) -> None:
        """Expose the store's per-configuration object and series counts (read at scrape time)."""
        self.registry.register(_StoreCollector(store))

    def exposition(self, *, openmetrics: bool) -> bytes:
        """This registry in text 0.0.4, or in OpenMetrics *without* the final ``# EOF``."""
        if not openmetrics:
            return bytes(_generate_text(self.registry))
        body = bytes(_generate_openmetrics(self.registry))  # type: ignore[no-untyped-call]
        return body[: -len(_OM_EOF)] if body.endswith(_OM_EOF) else body


class _StoreCollector:
    def __init__(self, store: StoreStats) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        objects = GaugeMetricFamily("panopticon_store_objects", "Objects with an entry in the store",
                                    labels=["configuration"])
        series = GaugeMetricFamily("panopticon_store_series", "Pre-rendered series held in the store",
                                   labels=["configuration"])
        for name, n_objects, n_series in self._store.stats():
            objects.add_metric([name], n_objects)
            series.add_metric([name], n_series)
        yield objects
        yield series
        yield GaugeMetricFamily("panopticon_store_generation",
                                "Store change counter (bumped on every change)", value=self._store.generation)
