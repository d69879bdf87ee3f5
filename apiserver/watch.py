"""The watch stream: newline-delimited ``{"type","object"}`` events with resourceVersion semantics.

Where a watch starts (Kubernetes API concepts, "Efficient detection of changes"; docs/design.md):
- ``resourceVersion`` ``""``/``"0"``: synthetic ``ADDED`` for every current matching object,
  then changes (what kubectl does for a single object).
- ``resourceVersion=R`` (e.g. a list's RV): only events after ``R`` (no replay); ``R`` older than
  the event log, or newer than anything this process issued (a previous process's RV), gets an
  ``ERROR`` event with a 410 ``Expired`` Status, and the client re-lists.
- ``sendInitialEvents=true`` (streaming list): requires ``allowWatchBookmarks=true`` and
  ``resourceVersionMatch=NotOlderThan`` (else 422 Invalid, as the kube-apiserver validates);
  sends the current objects as ``ADDED``, then a ``BOOKMARK`` annotated
  ``k8s.io/initial-events-end: "true"``, then changes. client-go informers wait for that bookmark.

The stream ends after ``timeoutSeconds`` (default: a random 30-60 min, like the kube-apiserver)
or when the client goes away. With ``allowWatchBookmarks`` a ``BOOKMARK`` carrying the current RV
is sent every ``bookmark_interval`` seconds, so a client whose selector filters everything out
can still resume from a recent RV.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from apiserver import objects as shapes
from apiserver.negotiation import Negotiated
from apiserver.status import StatusError, status_body
from apiserver.views import FamilySnapshot, ObjectSnapshot, ResourceName

if TYPE_CHECKING:
    from apiserver.resources import Query, ResourceApi

TICK_SECONDS = 1.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True, slots=True)
class WatchOptions:
    timeout: float

    @classmethod
    def from_query(cls, query: Query, *, default_timeout: Callable[[], float] | None) -> WatchOptions:
        if query.timeout_seconds:
            return cls(float(query.timeout_seconds))
        return cls(default_timeout() if default_timeout else random.uniform(1800.0, 3600.0))


def _start_rv(query: Query) -> int | None:
    """The RV to resume after, or ``None`` for "current state first"."""
    if query.send_initial_events:
        if not query.bookmarks:
            raise StatusError(
                422,
                "sendInitialEvents: Forbidden: sendInitialEvents requires "
                "setting allowWatchBookmarks to true",
                reason="Invalid",
            )
        if query.rv_match != "NotOlderThan":
            raise StatusError(
                422,
                "resourceVersionMatch: Forbidden: sendInitialEvents requires "
                "setting resourceVersionMatch to NotOlderThan",
                reason="Invalid",
            )
        return None
    if query.rv_match:
        raise StatusError(
            422,
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for "
            "watch unless sendInitialEvents is provided",
            reason="Invalid",
        )
    if query.resource_version in ("", "0"):
        return None
    try:
        return int(query.resource_version)
    except ValueError:
        raise StatusError(400, f"resourceVersion: invalid value {query.resource_version!r}") from None


async def serve_watch(
    request: web.Request,
    *,
    api: ResourceApi,
    resource: ResourceName,
    namespace: str | None,
    query: Query,
    negotiated: Negotiated,
    name: str | None,
    options: WatchOptions,
) -> web.StreamResponse:
    start = _start_rv(query)  # validation errors are still plain Status responses
    views = api.views
    if resource == "metricfamilies":
        views.refresh_families()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    kind = shapes.KINDS[resource]

    def visible(snap: FamilySnapshot | ObjectSnapshot) -> bool:
        if isinstance(snap, ObjectSnapshot) and snap.resource_name != resource:
            return False
        if name is not None and (snap.name if isinstance(snap, FamilySnapshot) else snap.api_name) != name:
            return False
        return api.matches(snap, query, namespace)

    def represent(snap: FamilySnapshot | ObjectSnapshot) -> dict[str, Any]:
        return api.represent_one(snap, negotiated, query, resource)

    def bookmark(rv: int, *, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return {
            "type": "BOOKMARK",
            "object": {"kind": kind, "apiVersion": shapes.GROUP_VERSION, "metadata": meta},
        }

    async def send(event: dict[str, Any]) -> None:
        await response.write(orjson.dumps(event) + b"\n")

    async def expired(rv: int) -> web.StreamResponse:
        await send(
            {
                "type": "ERROR",
                "object": status_body(410, f"too old resource version: {rv} ({views.rv})", reason="Expired"),
            }
        )
        await response.write_eof()
        return response

    deadline = time.monotonic() + options.timeout
    try:
        if start is None:
            cursor = views.rv
            for snap in api.snapshots(resource, namespace):
                if visible(snap):
                    await send({"type": "ADDED", "object": represent(snap)})
            if query.send_initial_events:
                await send(bookmark(cursor, initial_end=True))
        else:
            cursor = start
            if start > views.rv:
                return await expired(start)
        last_bookmark = time.monotonic()
        while True:
            if resource == "metricfamilies":
                views.refresh_families()
            events = views.events_after(cursor)
            if events is None:
                return await expired(cursor)
            for event in events:
                cursor = event.rv
                if event.resource == resource and visible(event.payload):
                    await send({"type": event.type, "object": represent(event.payload)})
            now = time.monotonic()
            if now >= deadline:
                break
            if query.bookmarks and now - last_bookmark >= api.bookmark_interval:
                await send(bookmark(cursor))
                last_bookmark = now
            if request.transport is None or request.transport.is_closing():
                break
            await views.wait_for_change(
                min(TICK_SECONDS, deadline - now, max(0.05, api.bookmark_interval - (now - last_bookmark)))
            )
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; nothing to tell it
    return response
