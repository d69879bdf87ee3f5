"""Generic REST handlers (get, list, watch) for one registry resource with a ``ResourceBackend``.

Nothing here names a resource: ``ResourceApi`` serves whatever ``ServedResource`` it is given
(``apiserver.registry``), with shapes from its backend, query validation from
``apiserver.query`` and the watch stream from ``apiserver.watch``.

- get: ``/.../<resource>/<name>`` (and the namespaced form) -> the object, or a 404 Status.
- list: ``labelSelector``, ``fieldSelector`` (metadata.name / metadata.namespace), ``limit`` +
  ``continue``; ``metadata.resourceVersion`` is the API counter at the time of the list.
  Continue tokens name the list RV and the last key; later pages read the *current* data after
  that key (there is no snapshot to page through), and a token older than the event log is 410.
- ``resourceVersionMatch=Exact`` is only satisfiable for the current RV (else 410 Expired);
  every other list is served at the latest RV, which satisfies ``NotOlderThan`` and ``0``.
- representation by Accept (``apiserver.negotiation``): object JSON, Table (``includeObject``
  Metadata/Object/None, anything else 400) or PartialObjectMetadata(List).
- lists are streamed (``apiserver.streaming.write_json_list``): items are converted and encoded
  in short slices between which the loop serves other requests (probes included), and a client
  that does not read them within ``write_timeout`` is disconnected. Plain lists reuse each
  item's encoded JSON until it changes (``apiserver.encoded``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from apiserver import objects as shapes
from apiserver.encoded import DEFAULT_BUDGET as ENCODED_BUDGET
from apiserver.encoded import EncodedItems
from apiserver.negotiation import Negotiated, NotAcceptable, negotiate
from apiserver.query import Query, decode_continue, encode_continue
from apiserver.registry import ApiGroupVersion, ResourceBackend, ServedResource
from apiserver.status import StatusError, not_found
from apiserver.streaming import WriteDeadline, select, write_json_list
from apiserver.watch import WatchOptions, serve_watch


def matches(backend: ResourceBackend[Any], item: Any, query: Query, namespace: str | None) -> bool:
    ns, name = backend.key(item)
    if namespace is not None and ns != namespace:
        return False
    if query.fields.requirements and not query.fields.matches(name=name, namespace=ns):
        return False
    # An item's labels are computed on demand (~80 us): only when a selector reads them.
    return not query.labels.requirements or query.labels.matches(backend.labels(item))


class ResourceApi:
    """The handlers of one resource (see the module docstring)."""

    def __init__(
        self,
        entry: ApiGroupVersion,
        resource: ServedResource,
        *,
        bookmark_interval: float = 60.0,
        default_watch_timeout: Callable[[], float] | None = None,
        write_timeout: float = 60.0,
        encoded_budget: int = ENCODED_BUDGET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if resource.backend is None:
            raise ValueError(f"{resource.plural} has no backend to serve")
        self.entry, self.resource, self.backend = entry, resource, resource.backend
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.write_timeout = write_timeout
        self.clock = clock
        backend = self.backend
        self.encoded = EncodedItems(
            key=backend.key, version=backend.rv, to_object=backend.to_object, budget=encoded_budget
        )

    # ------------------------------------------------------------------ shapes

    def represent(self, item: Any, negotiated: Negotiated, include_object: str) -> dict[str, Any]:
        obj = self.backend.to_object(item)
        if negotiated.mode == "partial":
            return shapes.partial_metadata(obj)
        if negotiated.mode == "table":
            cells = self.backend.cells(item, now=self.clock())
            return shapes.table(
                self.resource.columns, [(cells, obj)], include_object=include_object, rv=self.backend.rv(item)
            )
        return obj

    @staticmethod
    def _negotiate(request: web.Request) -> Negotiated:
        try:
            return negotiate(request.headers.get("Accept"))
        except NotAcceptable as exc:
            raise StatusError(406, str(exc)) from exc

    # ------------------------------------------------------------------ handlers

    async def get_object(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        name = request.match_info["name"]
        negotiated = self._negotiate(request)
        query = Query.parse(request.query, single=True)
        if query.watch:
            return await self._watch(request, namespace, query, negotiated, name=name)
        self.backend.sync()
        item = self.backend.item(namespace or "", name)
        if item is None:
            raise not_found(self.resource.plural, self.entry.group, name)
        return _json(self.represent(item, negotiated, query.include_object))

    async def get_collection(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        negotiated = self._negotiate(request)
        query = Query.parse(request.query)
        if query.watch:
            return await self._watch(request, namespace, query, negotiated, name=None)
        return await self._list(request, namespace, query, negotiated)

    async def _list(
        self, request: web.Request, namespace: str | None, query: Query, negotiated: Negotiated
    ) -> web.StreamResponse:
        backend = self.backend
        backend.sync()
        events = backend.events
        rv = events.rv
        if query.rv_match == "Exact" and query.resource_version != str(rv):
            raise StatusError(
                410, f"too old resource version: {query.resource_version} ({rv})", reason="Expired"
            )
        after: tuple[str, str] | None = None
        if query.continue_token:
            token_rv, after = decode_continue(query.continue_token)
            if token_rv > rv:
                raise StatusError(400, "continue key is not valid: its resource version is in the future")
            if token_rv < events.floor:
                raise StatusError(
                    410,
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter.",
                    reason="Expired",
                )
            rv = token_rv
        def keep(item: Any) -> bool:
            return (after is None or backend.key(item) > after) and matches(backend, item, query, namespace)

        items = await select(backend.items(namespace), keep)
        continue_token, remaining = "", None
        if query.limit and len(items) > query.limit:
            remaining = len(items) - query.limit
            items = items[: query.limit]
            continue_token = encode_continue(rv, backend.key(items[-1]))
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if continue_token:
            meta["continue"] = continue_token
        deadline = WriteDeadline(request, self.write_timeout)
        if negotiated.mode == "table":
            now = self.clock()
            head = {
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "columnDefinitions": [c.definition() for c in self.resource.columns],
            }
            include = query.include_object

            def row(item: Any) -> bytes:
                out: dict[str, Any] = {"cells": backend.cells(item, now=now)}
                if include != "None":
                    obj = backend.to_object(item)
                    out["object"] = obj if include == "Object" else shapes.partial_metadata(obj)
                return orjson.dumps(out)

            return await write_json_list(request, head, "rows", items, row, deadline=deadline)
        if negotiated.mode == "partial":
            head = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
            return await write_json_list(
                request,
                head,
                "items",
                items,
                lambda item: orjson.dumps(shapes.partial_metadata(backend.to_object(item))),
                deadline=deadline,
            )
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        head = {"apiVersion": self.entry.group_version, "kind": self.resource.list_kind, "metadata": meta}
        return await write_json_list(request, head, "items", items, self.encoded, deadline=deadline)

    async def _watch(
        self,
        request: web.Request,
        namespace: str | None,
        query: Query,
        negotiated: Negotiated,
        *,
        name: str | None,
    ) -> web.StreamResponse:
        backend = self.backend

        def visible(item: Any) -> bool:
            return (name is None or backend.key(item)[1] == name) and matches(backend, item, query, namespace)

        return await serve_watch(
            request,
            backend=backend,
            plural=self.resource.plural,
            kind=self.resource.kind,
            group_version=self.entry.group_version,
            query=query,
            visible=visible,
            represent=lambda item: self.represent(item, negotiated, query.include_object),
            options=WatchOptions.from_query(
                query,
                default_timeout=self.default_watch_timeout,
                bookmark_interval=self.bookmark_interval,
                write_timeout=self.write_timeout,
            ),
        )


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
