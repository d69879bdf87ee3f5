"""The live exporter's own metrics: per-configuration readiness, status writes, the shard.

Recorded into the store's telemetry registry (``exporter.telemetry.Telemetry.registry``), so
the plain ``/metrics`` shows them beside the informers' (``kube.telemetry``) and the store's.
Counters are declared with their exposed ``_total`` name, as in ``kube.telemetry``.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge


class ConfigTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ready = Gauge(
            "panopticon_configuration_ready",
            "1 when a MetricsConfiguration is exporting, 0 otherwise; reason as in its Ready condition.",
            ["configuration", "reason"], registry=registry,
        )
        self.status_writes = Counter(
            "panopticon_configuration_status_writes_total",
            "Status writes per configuration by result.", ["configuration", "result"], registry=registry,
        )
        self._reasons: dict[str, str] = {}

    def set(self, name: str, *, ready: bool, reason: str) -> None:
        old = self._reasons.get(name)
        if old is not None and old != reason:
            with contextlib.suppress(KeyError):
                self.ready.remove(name, old)
        self._reasons[name] = reason
        self.ready.labels(name, reason).set(1 if ready else 0)

    def forget(self, name: str) -> None:
        old = self._reasons.pop(name, None)
        if old is not None:
            with contextlib.suppress(KeyError):
                self.ready.remove(name, old)

    def wrote(self, name: str, *, ok: bool) -> None:
        self.status_writes.labels(name, "success" if ok else "error").inc()


class ShardTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._ordinal = Gauge("panopticon_shard_ordinal", "This instance's shard (0-based).",
                              registry=registry)
        self._total = Gauge("panopticon_total_shards", "Number of shards objects are spread over.",
                            registry=registry)

    def set(self, shard: int, total: int) -> None:
        self._ordinal.set(shard)
        self._total.set(total)
