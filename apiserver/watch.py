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

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from apiserver.query import Query, invalid, parse_resource_version
from apiserver.registry import ResourceBackend
from apiserver.status import status_body
from apiserver.streaming import cut_off

TICK_SECONDS = 1.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
YIELD_EVERY = 64  # initial ADDED events written between two yields to the loop


@dataclass(frozen=True, slots=True)
class WatchOptions:
    timeout: float
    bookmark_interval: float = 60.0
    write_timeout: float = 60.0  # an event the client does not take within this ends the watch

    @classmethod
    def from_query(
        cls,
        query: Query,
        *,
        default_timeout: Callable[[], float] | None,
        bookmark_interval: float = 60.0,
        write_timeout: float = 60.0,
    ) -> WatchOptions:
        if query.timeout_seconds is not None and query.timeout_seconds != 0:
            # Negative: the stream ends at once (the kube-apiserver's timer fires immediately).
            timeout = float(max(query.timeout_seconds, 0))
        else:
            timeout = default_timeout() if default_timeout else random.uniform(1800.0, 3600.0)
        return cls(timeout, bookmark_interval, write_timeout)


def _start_rv(query: Query) -> int | None:
    """The RV to resume after, or ``None`` for "current state first"."""
    if query.send_initial_events:
        if not query.bookmarks:
            raise invalid(
                "sendInitialEvents: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
            )
        if query.rv_match != "NotOlderThan":
            raise invalid(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                "resourceVersionMatch to NotOlderThan"
            )
        return None
    if query.rv_match:
        raise invalid(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
            "sendInitialEvents is provided"
        )
    if query.resource_version in ("", "0"):
        return None
    return parse_resource_version(query.resource_version)


async def serve_watch(
    request: web.Request,
    *,
    backend: ResourceBackend[Any],
    plural: str,
    kind: str,
    group_version: str,
    query: Query,
    visible: Callable[[Any], bool],
    represent: Callable[[Any], dict[str, Any]],
    options: WatchOptions,
) -> web.StreamResponse:
    start = _start_rv(query)  # validation errors are still plain Status responses
    events = backend.events
    backend.sync()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    def bookmark(rv: int, *, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": group_version, "metadata": meta}}

    async def send(event: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(options.write_timeout):
                await response.write(orjson.dumps(event) + b"\n")
        except TimeoutError:
            raise cut_off(request, "watch event not taken within the write timeout") from None

    async def expired(rv: int) -> web.StreamResponse:
        await send(
            {
                "type": "ERROR",
                "object": status_body(410, f"too old resource version: {rv} ({events.rv})", reason="Expired"),
            }
        )
        await response.write_eof()
        return response

    deadline = time.monotonic() + options.timeout
    interval = options.bookmark_interval
    try:
        if start is None:
            cursor = events.rv
            for index, item in enumerate(backend.items(None)):
                if visible(item):
                    await send({"type": "ADDED", "object": represent(item)})
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
            if query.send_initial_events:
                await send(bookmark(cursor, initial_end=True))
        else:
            cursor = start
            if start > events.rv:
                return await expired(start)
        last_bookmark = time.monotonic()
        while True:
            backend.sync()
            changes = events.events_after(cursor)
            if changes is None:
                return await expired(cursor)
            for event in changes:
                cursor = event.rv
                if event.resource == plural and visible(event.payload):
                    await send({"type": event.type, "object": represent(event.payload)})
            now = time.monotonic()
            if now >= deadline:
                break
            if query.bookmarks and now - last_bookmark >= interval:
                await send(bookmark(cursor))
                last_bookmark = now
            if request.transport is None or request.transport.is_closing():
                break
            await events.wait_for_change(
                min(TICK_SECONDS, deadline - now, max(0.05, interval - (now - last_bookmark)))
            )
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away (or was too slow); nothing to tell it
    return response
