"""The Prometheus text endpoints of the aggregated API.

``GET /apis/metrics.panopticon.io/v1alpha1/prometheus`` (every series) and
``.../namespaces/{ns}/prometheus`` (only series of objects in ``{ns}``). The kube-apiserver
classifies both as verb ``list`` on resource ``prometheus`` (namespaced for the second) and
checks RBAC before proxying; the authorization middleware sends a SubjectAccessReview with the
same attributes, so a tenant allowed to ``list prometheus`` in ``team-a`` scrapes ``team-a`` only.

Bodies come from the shared ``Exposition`` cache (rebuilt only when the store changed):
negotiated Prometheus text or OpenMetrics, gzip when accepted, always with an explicit
Content-Type (Prometheus 3 rejects scrapes without one) and ``Vary``. The cached bytes are
written in slices without a per-request copy, and a client that does not take them within
``write_timeout`` seconds is disconnected (``apiserver.streaming``).
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from apiserver.streaming import WriteDeadline, write_body
from exporter.exposition import Format, gzip_accepted, negotiate


class ExpositionSource(Protocol):
    def body(self, *, fmt: Format, namespace: str | None = None, gzip: bool = False) -> bytes: ...


class PrometheusApi:
    def __init__(self, exposition: ExpositionSource, *, write_timeout: float = 60.0) -> None:
        self._exposition = exposition
        self._write_timeout = write_timeout

    async def scrape(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        fmt = negotiate(request.headers.get("Accept"))
        gzipped = gzip_accepted(request.headers.get("Accept-Encoding"))
        body = self._exposition.body(fmt=fmt, namespace=namespace, gzip=gzipped)
        headers = {
            "Content-Type": fmt.content_type,
            "Vary": "Accept, Accept-Encoding",
            "Cache-Control": "no-store",
        }
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(headers=headers)
        response.content_length = len(body)
        return await write_body(
            request, response, body, deadline=WriteDeadline(request, self._write_timeout)
        )
