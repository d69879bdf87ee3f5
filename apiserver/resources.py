"""REST handlers for ``metricfamilies``, ``objectmetrics`` and ``clusterobjectmetrics``: get, list, watch.

Routing and query handling live here; shapes come from ``apiserver.objects``, data and
resourceVersions from ``apiserver.views``, the watch stream from ``apiserver.watch``.

- get: ``/.../<resource>/<name>`` (and the namespaced form) -> the object, or 404 Status.
- list: ``labelSelector``, ``fieldSelector`` (metadata.name / metadata.namespace), ``limit`` +
  ``continue``; ``metadata.resourceVersion`` is the API counter at the time of the list.
  Continue tokens name the list RV and the last key; later pages read the *current* data after
  that key (there is no snapshot to page through), and a token older than the event log is 410.
- ``resourceVersionMatch=Exact`` is only satisfiable for the current RV (else 410 Expired);
  every other list is served at the latest RV, which satisfies ``NotOlderThan`` and ``0``.
- representation by Accept (``apiserver.negotiation``): object JSON, Table (``includeObject``
  Metadata/Object/None, anything else 400) or PartialObjectMetadata(List).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from apiserver import objects as shapes
from apiserver.negotiation import Negotiated, NotAcceptable, negotiate
from apiserver.objects import SeriesParser
from apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from apiserver.status import StatusError, bad_request, not_found
from apiserver.views import ApiViews, FamilySnapshot, ObjectSnapshot, ResourceName
from apiserver.watch import WatchOptions, serve_watch

RESOURCES: dict[str, ResourceName] = {
    "metricfamilies": "metricfamilies",
    "objectmetrics": "objectmetrics",
    "clusterobjectmetrics": "clusterobjectmetrics",
}
NAMESPACED = {"objectmetrics"}
INCLUDE_OBJECT = ("Metadata", "Object", "None")

Snapshot = FamilySnapshot | ObjectSnapshot


class Query:
    """Validated list/watch query parameters (400 on anything malformed)."""

    def __init__(self, params: Any) -> None:
        try:
            self.labels: LabelSelector = parse_label_selector(params.get("labelSelector"))
            self.fields: FieldSelector = parse_field_selector(params.get("fieldSelector"))
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        self.include_object = params.get("includeObject") or "Metadata"
        if self.include_object not in INCLUDE_OBJECT:
            raise bad_request(
                f'includeObject: Unsupported value: "{self.include_object}": supported values: '
                '"Metadata", "Object", "None"'
            )
        self.limit = _int(params, "limit", minimum=0)
        self.continue_token = params.get("continue") or ""
        self.resource_version = params.get("resourceVersion") or ""
        self.rv_match = params.get("resourceVersionMatch") or ""
        if self.rv_match not in ("", "NotOlderThan", "Exact"):
            raise bad_request(
                f'resourceVersionMatch: Unsupported value: "{self.rv_match}": supported values: '
                '"Exact", "NotOlderThan"'
            )
        self.watch = (params.get("watch") or "").lower() in ("1", "true")
        self.timeout_seconds = _int(params, "timeoutSeconds", minimum=0)
        self.bookmarks = (params.get("allowWatchBookmarks") or "").lower() in ("1", "true")
        send_initial = params.get("sendInitialEvents")
        self.send_initial_events = None if send_initial is None else send_initial.lower() in ("1", "true")


def _int(params: Any, key: str, *, minimum: int) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{key}: invalid value {raw!r}: must be an integer") from None
    if value < minimum:
        raise bad_request(f"{key}: invalid value {raw!r}: must be >= {minimum}")
    return value


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "after": list(key)})).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["after"][0]), str(data["after"][1]))
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
        raise bad_request("continue key is not valid: the token is malformed") from None


def _key(snap: Snapshot) -> tuple[str, str]:
    if isinstance(snap, FamilySnapshot):
        return "", snap.name
    return snap.namespace, snap.api_name


class ResourceApi:
    def __init__(
        self,
        views: ApiViews,
        *,
        parse_series: SeriesParser,
        bookmark_interval: float = 60.0,
        default_watch_timeout: Callable[[], float] | None = None,
    ) -> None:
        self.views = views
        self.parse_series = parse_series
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout

    # ------------------------------------------------------------------ shapes

    def to_object(self, snap: Snapshot) -> dict[str, Any]:
        if isinstance(snap, FamilySnapshot):
            return shapes.metric_family(snap)
        return shapes.object_metrics(snap, self.parse_series)

    @staticmethod
    def columns(resource: ResourceName) -> list[dict[str, Any]]:
        return shapes.FAMILY_COLUMNS if resource == "metricfamilies" else shapes.OBJECT_COLUMNS

    @staticmethod
    def cells(snap: Snapshot) -> list[Any]:
        return shapes.family_cells(snap) if isinstance(snap, FamilySnapshot) else shapes.object_cells(snap)

    @staticmethod
    def labels(snap: Snapshot) -> dict[str, str]:
        return shapes.family_labels(snap) if isinstance(snap, FamilySnapshot) else shapes.object_labels(snap)

    def matches(self, snap: Snapshot, query: Query, namespace: str | None) -> bool:
        if isinstance(snap, ObjectSnapshot) and namespace is not None and snap.namespace != namespace:
            return False
        ns, name = ("", snap.name) if isinstance(snap, FamilySnapshot) else (snap.namespace, snap.api_name)
        return query.fields.matches(name=name, namespace=ns) and query.labels.matches(self.labels(snap))

    def represent_one(
        self, snap: Snapshot, negotiated: Negotiated, query: Query | None, resource: ResourceName
    ) -> dict[str, Any]:
        obj = self.to_object(snap)
        if negotiated.mode == "partial":
            return shapes.partial_metadata(obj)
        if negotiated.mode == "table":
            include = query.include_object if query else "Metadata"
            return shapes.table(
                self.columns(resource), [(self.cells(snap), obj)], include_object=include, rv=snap.rv
            )
        return obj

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _resource(request: web.Request, *, namespaced_path: bool) -> ResourceName:
        name = request.match_info["resource"]
        resource = RESOURCES.get(name)
        if resource is None:
            raise StatusError(404, "the server could not find the requested resource")
        if namespaced_path and resource not in NAMESPACED:
            raise StatusError(404, "the server could not find the requested resource")
        return resource

    @staticmethod
    def _negotiate(request: web.Request) -> Negotiated:
        try:
            return negotiate(request.headers.get("Accept"))
        except NotAcceptable as exc:
            raise StatusError(406, str(exc)) from exc

    async def get_object(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        resource = self._resource(request, namespaced_path=namespace is not None)
        name = request.match_info["name"]
        if resource == "objectmetrics" and namespace is None:
            raise StatusError(404, "the server could not find the requested resource")
        negotiated = self._negotiate(request)
        if (request.query.get("watch") or "").lower() in ("1", "true"):
            query = Query(request.query)
            return await self._watch(request, resource, namespace, query, negotiated, name=name)
        snap: Snapshot | None
        if resource == "metricfamilies":
            snap = self.views.family(name)
        else:
            snap = self.views.object(resource, namespace=namespace or "", name=name)
        if snap is None:
            raise not_found(resource, shapes.GROUP, name)
        table_query = Query(request.query) if negotiated.mode == "table" else None
        return _json(self.represent_one(snap, negotiated, table_query, resource))

    async def get_collection(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        resource = self._resource(request, namespaced_path=namespace is not None)
        negotiated = self._negotiate(request)
        query = Query(request.query)
        if query.watch:
            return await self._watch(request, resource, namespace, query, negotiated, name=None)
        if query.send_initial_events is not None:
            raise StatusError(422, "sendInitialEvents is forbidden for list", reason="Invalid")
        return _json(self.list_body(resource, namespace, query, negotiated))

    def snapshots(self, resource: ResourceName, namespace: str | None) -> list[Snapshot]:
        if resource == "metricfamilies":
            return list(self.views.families())
        return list(self.views.objects(resource, namespace=namespace))

    def list_body(
        self, resource: ResourceName, namespace: str | None, query: Query, negotiated: Negotiated
    ) -> dict[str, Any]:
        views = self.views
        if resource == "metricfamilies":
            views.refresh_families()
        rv = views.rv
        if query.rv_match == "Exact" and query.resource_version != str(rv):
            raise StatusError(
                410, f"too old resource version: {query.resource_version} ({rv})", reason="Expired"
            )
        after: tuple[str, str] | None = None
        if query.continue_token:
            token_rv, after = _decode_continue(query.continue_token)
            if token_rv < views.floor:
                raise StatusError(
                    410,
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter.",
                    reason="Expired",
                )
            rv = token_rv
        items = [s for s in self.snapshots(resource, namespace) if self.matches(s, query, namespace)]
        if after is not None:
            items = [s for s in items if _key(s) > after]
        continue_token, remaining = "", None
        if query.limit and len(items) > query.limit:
            remaining = len(items) - query.limit
            items = items[: query.limit]
            continue_token = _encode_continue(rv, _key(items[-1]))
        objs = [(s, self.to_object(s)) for s in items]
        if negotiated.mode == "table":
            return shapes.table(
                self.columns(resource),
                [(self.cells(s), o) for s, o in objs],
                include_object=query.include_object,
                rv=rv,
                continue_token=continue_token,
            )
        if negotiated.mode == "partial":
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if continue_token:
                meta["continue"] = continue_token
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [shapes.partial_metadata(o) for _s, o in objs],
            }
        return shapes.list_object(
            resource, [o for _s, o in objs], rv=rv, continue_token=continue_token, remaining=remaining
        )

    async def _watch(
        self,
        request: web.Request,
        resource: ResourceName,
        namespace: str | None,
        query: Query,
        negotiated: Negotiated,
        *,
        name: str | None,
    ) -> web.StreamResponse:
        options = WatchOptions.from_query(query, default_timeout=self.default_watch_timeout)
        return await serve_watch(
            request,
            api=self,
            resource=resource,
            namespace=namespace,
            query=query,
            negotiated=negotiated,
            name=name,
            options=options,
        )


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
