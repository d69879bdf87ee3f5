"""The plain-HTTP endpoints: ``/metrics``, ``/healthz``, ``/livez``, ``/readyz``.

``/metrics`` serves the state metrics (unless disabled with ``--no-state-metrics-on-plain``:
then they are only reachable through the authenticated API) followed by Panopticon's own
telemetry, in the format the ``Accept`` header asks for, gzip-compressed when
``Accept-Encoding`` allows it. The state part comes from the exposition cache; the telemetry
part is small and rendered per request; with gzip only that tail is compressed per request
(``Exposition.gzip_with_tail``).

``/readyz`` answers 503 until the caller's readiness check passes (offline mode: the first load
succeeded). No authentication here: bind it to loopback or a pod-internal port.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from exporter.exposition import OPENMETRICS_EOF, Exposition, gzip_accepted, gzip_member, negotiate
from exporter.telemetry import Telemetry


def make_plain_app(*, exposition: Exposition | None, telemetry: Telemetry,
                   ready: Callable[[], bool] = lambda: True) -> web.Application:
    """``exposition=None`` serves only telemetry on ``/metrics``."""

    async def metrics(request: web.Request) -> web.StreamResponse:
        fmt = negotiate(request.headers.get("Accept"))
        use_gzip = gzip_accepted(request.headers.get("Accept-Encoding"))
        om = fmt.kind == "openmetrics"
        own = telemetry.exposition(openmetrics=om)
        telemetry.scrapes.labels("/metrics", fmt.kind, "gzip" if use_gzip else "identity").inc()
        headers = {"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding"}
        tail = own + OPENMETRICS_EOF if om else own
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
            if exposition is not None:
                return web.Response(body=exposition.gzip_with_tail(fmt=fmt, tail=tail), headers=headers)
            return web.Response(body=gzip_member(tail), headers=headers)
        parts = exposition.parts(fmt=fmt, eof=False) if exposition is not None else []
        # The state part is written piece by piece (headers and the store's block texts): the
        # sample text is never copied into a joined body, in memory or per request.
        response = web.StreamResponse(headers=headers)
        response.content_length = sum(map(len, parts)) + len(tail)
        await response.prepare(request)
        if request.method != "HEAD":
            for part in parts:
                await response.write(part)
            await response.write(tail)
        await response.write_eof()
        return response

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/livez", ok)
    app.router.add_get("/readyz", readyz)
    return app
