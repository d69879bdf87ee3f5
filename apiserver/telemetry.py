"""Own metrics of the extension API server, in the process's telemetry registry (plain ``/metrics``).

Requests by verb, resource and HTTP code with their latency (watch streams are counted when they
end), and the authentication/authorization work that costs round trips to the kube-apiserver:
TokenReviews and SubjectAccessReviews sent versus answered from the caches, and the
connections and requests refused before the application saw them (``rejected``, by reason).
Review counters are read from the authenticator and authorizer at scrape time, so the request
path only pays for one counter increment and one histogram observation.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.connections import REJECT_REASONS


class _ReviewCollector(Collector):
    def __init__(self, authenticator: Authenticator, authorizer: Authorizer) -> None:
        self._authn, self._authz = authenticator, authorizer

    def collect(self) -> Iterator[CounterMetricFamily]:
        sar = CounterMetricFamily(
            "panopticon_apiserver_subjectaccessreviews", "SubjectAccessReviews sent to the kube-apiserver"
        )
        sar.add_metric([], self._authz.reviews_sent)
        yield sar
        hits = CounterMetricFamily(
            "panopticon_apiserver_authorization_cache_hits",
            "Authorization decisions answered from the 10 s cache",
        )
        hits.add_metric([], self._authz.cache_hits)
        yield hits
        tokens = CounterMetricFamily(
            "panopticon_apiserver_tokenreviews", "TokenReviews sent to the kube-apiserver"
        )
        tokens.add_metric([], self._authn.token_reviews)
        yield tokens


class ApiTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "panopticon_apiserver_requests",
            "Requests to the extension API server",
            ["verb", "resource", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "panopticon_apiserver_request_duration_seconds",
            "Time to answer a request (watches: the whole stream)",
            ["verb", "resource"],
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0),
        )
        self.rejected = Counter(
            "panopticon_apiserver_rejected",
            "Connections and requests refused before the application saw them, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        self._registry = registry

    def reject(self, reason: str) -> None:
        """Count one refused connection or request (``reason`` from ``REJECT_REASONS``)."""
        self.rejected.labels(reason if reason in REJECT_REASONS else "bad_request").inc()

    def watch_reviews(self, authenticator: Authenticator, authorizer: Authorizer) -> None:
        self._registry.register(_ReviewCollector(authenticator, authorizer))

    def observe(self, *, verb: str, resource: str, code: int, seconds: float) -> None:
        self.requests.labels(verb, resource, str(code)).inc()
        self.duration.labels(verb, resource).observe(seconds)
