"""The extension API server: an aiohttp application behind TLS, with the k8s.io/apiserver filter chain.

Middlewares, outermost first (docs/design.md, "The contract"):

1. ``status`` - every error leaves as a ``metav1.Status`` (router 404/405 included), never a
   redirect (aiohttp's path normalisation is not installed) and never a traceback;
2. ``request info`` - resource vs non-resource, verb (get/list/watch) from path and ``?watch``;
3. ``authentication`` - front proxy, x509, bearer token (``apiserver.authn``): 401 on rejected
   credentials, anonymous when none;
4. ``authorization`` - always-allowed paths, ``system:masters``, else a cached
   SubjectAccessReview (``apiserver.authz``): 403 with the kube-apiserver's wording;
5. the handler: discovery, OpenAPI, resources, Prometheus text, health.

``build_app`` wires pure parts to handlers and is what tests use with fakes; ``HttpsServer``
runs it on a port with the reloading TLS context of ``certs.reload``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson
from aiohttp import web

from apiserver import discovery
from apiserver.authn import AuthenticationFailed, Authenticator, UserInfo
from apiserver.authz import AuthorizationUnavailable, Authorizer, forbidden_message
from apiserver.connections import ApiAppRunner, ConnectionLimiter, OnReject, ServingLimits, listen
from apiserver.metrics_api import metrics_group
from apiserver.objects import VERSION, SeriesParser
from apiserver.openapi import OpenApi
from apiserver.prometheus import ExpositionSource, PrometheusApi
from apiserver.ratelimit import RateLimitedLog
from apiserver.registry import ApiGroupVersion, ApiRegistry
from apiserver.requestinfo import RequestInfo, parse_request_info
from apiserver.resources import ResourceApi
from apiserver.status import StatusError, path_not_found, status_body, status_response
from apiserver.telemetry import ApiTelemetry
from apiserver.views import ApiViews
from certs.reload import ReloadingServerTLS

log = logging.getLogger(__name__)
_errors = RateLimitedLog(log)  # lines clients can cause: rate-limited, never a traceback per request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_INFO = web.RequestKey("request_info", RequestInfo)
REQUEST_USER = web.RequestKey("request_user", UserInfo)
REGISTRY = web.AppKey("registry", ApiRegistry)


@dataclass(frozen=True, slots=True)
class Health:
    """Readiness: false until the authentication settings are known (when they come from the cluster)."""

    ready: Callable[[], bool] = lambda: True


def _json(body: object, *, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type=content_type)


@web.middleware
async def status_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StatusError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if not isinstance(exc, web.HTTPError) or isinstance(exc, web.HTTPNotFound):
            # Redirects are never allowed through the aggregator (it answers 502 for them).
            return path_not_found().response()
        if isinstance(exc, web.HTTPMethodNotAllowed):
            return StatusError(
                405,
                f"the server does not allow this method on the requested resource "
                f"({request.method} {request.path})",
            ).response()
        return status_response(status_body(exc.status, exc.reason or "error"))
    except Exception:
        _errors.log(logging.ERROR, "internal error serving %s %s", request.method, request.path,
                    exc_info=True)
        return StatusError(500, "Internal error occurred: see the server log").response()


def telemetry_middleware(
    telemetry: ApiTelemetry, registry: ApiRegistry
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Outermost: counts every answer with its final code (labels from a fixed set only)."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        finally:
            info = request.get(REQUEST_INFO)
            if info is None or not info.is_resource:
                verb, resource = request.method.lower(), ""
            else:
                verb = info.verb
                resource = registry.telemetry_label(info.api_group, info.api_version, info.resource)
            telemetry.observe(verb=verb, resource=resource, code=code, seconds=time.perf_counter() - started)

    return observe


def _peer_certificate(request: web.Request) -> bytes | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


def auth_middlewares(
    authenticator: Authenticator, authorizer: Authorizer
) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    @web.middleware
    async def request_info(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_INFO] = parse_request_info(request.method, request.path, request.query)
        return await handler(request)

    @web.middleware
    async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            user = await authenticator.authenticate(request.headers, _peer_certificate(request))
        except AuthenticationFailed as exc:
            _errors.log(logging.INFO, "401 %s %s: %s", request.method, request.path, exc)
            raise StatusError(401, "Unauthorized") from exc
        request[REQUEST_USER] = user
        return await handler(request)

    @web.middleware
    async def authorization(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = request[REQUEST_INFO]
        user = request[REQUEST_USER]
        try:
            decision = await authorizer.authorize(user, info)
        except AuthorizationUnavailable as exc:
            _errors.log(logging.WARNING, "%s %s for %s: %s", info.verb, info.path, user.name, exc)
            raise StatusError(500, f"Internal error occurred: {exc}") from exc
        if not decision.allowed:
            details = {"group": info.api_group, "kind": info.resource} if info.is_resource else None
            if details is not None and info.name:
                details["name"] = info.name
            raise StatusError(403, forbidden_message(user, info, decision.reason), details=details)
        return await handler(request)

    return [request_info, authentication, authorization]


def build_app(
    *,
    views: ApiViews,
    exposition: ExpositionSource,
    parse_series: SeriesParser,
    authenticator: Authenticator,
    authorizer: Authorizer,
    health: Health | None = None,
    bookmark_interval: float = 60.0,
    default_watch_timeout: Callable[[], float] | None = None,
    telemetry: ApiTelemetry | None = None,
    limits: ServingLimits | None = None,
    groups: Sequence[ApiGroupVersion] = (),
    extra_routes: Sequence[tuple[str, str, Handler]] = (),
) -> web.Application:
    """The application: the metrics group-version, then ``groups`` (more registry entries).

    ``extra_routes`` (method, path, handler) are mounted as they are, behind the same middlewares
    (the admission webhooks, ``apiserver.admission``).
    """
    health = health or Health()
    limits = limits or ServingLimits()
    prometheus = PrometheusApi(exposition, write_timeout=limits.write_timeout)
    metrics = metrics_group(views, parse_series=parse_series, prometheus=prometheus.scrape)
    registry = ApiRegistry([metrics, *groups])
    outer = [telemetry_middleware(telemetry, registry)] if telemetry is not None else []
    if telemetry is not None:
        telemetry.watch_reviews(authenticator, authorizer)
    app = web.Application(
        middlewares=[*outer, status_middleware, *auth_middlewares(authenticator, authorizer)],
        client_max_size=1024 * 1024,
    )
    app[REGISTRY] = registry
    docs = OpenApi(registry, title="Panopticon metrics API", version=VERSION)

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def ready(_request: web.Request) -> web.Response:
        if not health.ready():
            raise StatusError(503, "not ready: authentication settings not loaded yet")
        return web.Response(text="ok")

    async def apis(_request: web.Request) -> web.Response:
        return _json(discovery.api_group_list(registry))

    async def group(request: web.Request) -> web.Response:
        body = discovery.api_group(registry, request.match_info["group"])
        if body is None:
            raise path_not_found()
        return _json(body)

    async def group_version(request: web.Request) -> web.Response:
        entry = registry.group_version(request.match_info["group"], request.match_info["version"])
        if entry is None:
            raise path_not_found()
        return _json(discovery.api_resource_list(entry))

    async def version(_request: web.Request) -> web.Response:
        return _json(discovery.version_info())

    async def openapi_v2(_request: web.Request) -> web.Response:
        return _json(docs.v2)

    async def openapi_v3(_request: web.Request) -> web.Response:
        return _json(docs.v3_root)

    async def openapi_v3_gv(request: web.Request) -> web.Response:
        body = docs.v3(f"{request.match_info['group']}/{request.match_info['version']}")
        if body is None:
            raise path_not_found()
        return _json(body)

    r = app.router
    for path in ("/healthz", "/livez"):
        r.add_get(path, ok)
    r.add_get("/readyz", ready)
    r.add_get("/version", version)
    r.add_get("/apis", apis)
    r.add_get("/openapi/v2", openapi_v2)
    r.add_get("/openapi/v3", openapi_v3)
    r.add_get("/openapi/v3/apis/{group}/{version}", openapi_v3_gv)
    for method, path, handler in extra_routes:
        r.add_route(method, path, handler)
    for entry in registry.entries:
        _add_routes(r, entry, bookmark_interval, default_watch_timeout, limits.write_timeout)
    r.add_get("/apis/{group}", group)
    r.add_get("/apis/{group}/{version}", group_version)
    return app


def _add_routes(
    router: web.UrlDispatcher,
    entry: ApiGroupVersion,
    bookmark_interval: float,
    default_watch_timeout: Callable[[], float] | None,
    write_timeout: float,
) -> None:
    """Every resource of ``entry`` at its paths (a namespaced resource also lists across namespaces)."""
    base = entry.base
    for suffix, handler in entry.routes:
        router.add_get(f"{base}/{suffix}", handler)
    for resource in entry.resources:
        collections = [f"{base}/namespaces/{{namespace}}/{resource.plural}"] if resource.namespaced else []
        collections.append(f"{base}/{resource.plural}")
        if resource.handler is not None:
            for path in collections:
                router.add_get(path, resource.handler)
            continue
        api = ResourceApi(
            entry,
            resource,
            bookmark_interval=bookmark_interval,
            default_watch_timeout=default_watch_timeout,
            write_timeout=write_timeout,
        )
        for path in collections:
            router.add_get(path, api.get_collection)
        router.add_get(f"{collections[0]}/{{name}}", api.get_object)


class HttpsServer:
    """Runs an application on ``host:port`` with TLS; ``port`` 0 picks a free port (see ``.port``).

    Connections are bounded and timed out as ``limits`` says (``apiserver.connections``);
    ``on_reject`` is told the reason of every connection or request refused before the app saw it.
    """

    def __init__(
        self,
        app: web.Application,
        tls: ReloadingServerTLS,
        *,
        host: str,
        port: int,
        limits: ServingLimits | None = None,
        on_reject: OnReject | None = None,
    ) -> None:
        self._app, self._tls, self._host, self._port = app, tls, host, port
        self.limits = limits or ServingLimits()
        self._on_reject: OnReject = on_reject or (lambda _reason: None)
        self._runner: ApiAppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.limiter = ConnectionLimiter(self.limits, self._on_reject)
        self.port = port

    async def start(self) -> None:
        self._runner = ApiAppRunner(self._app, limits=self.limits, on_reject=self._on_reject)
        await self._runner.setup()
        try:
            self._listener = await listen(
                self._runner, self.limiter, self._tls.front, host=self._host, port=self._port
            )
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        sockets = self._listener.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("extension API server listening on https://%s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
