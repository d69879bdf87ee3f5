"""Writing large answers without blocking the event loop or copying them per client.

Two problems this solves (issue 9 items 3 and 7):

- a cached body (the Prometheus text, megabytes) handed to ``web.Response`` in one piece is
  encrypted in one go into the TLS transport's buffer: one full copy per client that does not
  read. ``write_body`` writes ``memoryview`` slices of the cached bytes instead, waiting for the
  transport to drain between slices, so a stalled client pins at most a few slices;
- a list of thousands of objects built and encoded in one call holds the loop for seconds
  (probes time out). ``select`` filters and ``write_json_list`` encodes items in slices and
  yields to the loop between slices. The slice budget is shared: with N lists being written at
  once each gets ``slice_seconds / N``, so one turn of the loop runs about one budget of list
  work, however many clients list at the same time.

Every write has a deadline (``WriteDeadline``): a client that takes no data for the write timeout
gets its connection aborted (the transport's buffers are freed at once, the abort is counted as
``write_timeout``) and ``ClientTooSlow`` is raised for the caller to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from apiserver.connections import ApiRequestHandler

T = TypeVar("T")
SLICE_BYTES = 16 * 1024
SLICE_SECONDS = 0.002
LIST_FLUSH_BYTES = 64 * 1024


class _SliceBudget:
    """How many slicing loops run at once; each one's share of ``SLICE_SECONDS`` per turn."""

    active = 0

    @classmethod
    def share(cls, slice_seconds: float) -> float:
        return slice_seconds / max(1, cls.active)


class ClientTooSlow(ConnectionResetError):
    """The client did not take the answer within the write timeout; its connection was aborted."""


class WriteDeadline:
    """How long one write may wait for the client to take data (a stall, not a total-time limit).

    Slow generation on our side never counts: only a write the transport cannot accept because
    the client does not read. The transport's buffer is kept to about one slice, so a stalled
    client pins ~``SLICE_BYTES`` of TLS output plus the socket buffer, never a copy of the body.
    """

    def __init__(self, request: web.Request, timeout: float) -> None:
        self.request = request
        self.timeout = timeout
        transport = request.transport
        if transport is not None:
            transport.set_write_buffer_limits(high=SLICE_BYTES)

    async def write(self, response: web.StreamResponse, data: bytes | memoryview) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await response.write(data)
                writer = response._payload_writer  # AbstractStreamWriter.drain() is public API
                if writer is not None:
                    await writer.drain()
        except TimeoutError:
            raise cut_off(self.request, f"no data taken for {self.timeout:g}s (write timeout)") from None


def cut_off(request: web.Request, why: str) -> ClientTooSlow:
    """Abort a client's connection (freeing its buffers at once), count it, and say why."""
    protocol = request.protocol
    if isinstance(protocol, ApiRequestHandler):
        protocol.count_reject("write_timeout")
    transport = request.transport
    if transport is not None:
        transport.abort()
    return ClientTooSlow(why)


async def write_body(
    request: web.Request,
    response: web.StreamResponse,
    body: bytes,
    *,
    deadline: WriteDeadline,
) -> web.StreamResponse:
    """Send ``body`` (already set up: headers, length) in slices, never copying it."""
    await response.prepare(request)
    view = memoryview(body)
    try:
        if request.method != "HEAD":
            for start in range(0, len(view), SLICE_BYTES):
                await deadline.write(response, view[start : start + SLICE_BYTES])
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away or was too slow: nothing more to send
    return response


async def select(
    items: Iterable[T], keep: Callable[[T], bool], *, slice_seconds: float = SLICE_SECONDS
) -> list[T]:
    """``[i for i in items if keep(i)]``, yielding to the loop every ``slice_seconds``.

    Selectors are evaluated per item (labels are computed), which for thousands of items is
    itself longer than a probe may wait.
    """
    out: list[T] = []
    _SliceBudget.active += 1
    try:
        started = time.perf_counter()
        for index, item in enumerate(items):
            if keep(item):
                out.append(item)
            if index % 64 == 63 and time.perf_counter() - started >= _SliceBudget.share(slice_seconds):
                await asyncio.sleep(0)
                started = time.perf_counter()
    finally:
        _SliceBudget.active -= 1
    return out


def _head_bytes(head: dict[str, Any], items_key: str) -> bytes:
    encoded = orjson.dumps(head)
    prefix = encoded[:-1] + (b"," if len(encoded) > 2 else b"")
    return prefix + b'"' + items_key.encode() + b'":['


async def write_json_list(
    request: web.Request,
    head: dict[str, Any],
    items_key: str,
    items: Iterable[T],
    encode: Callable[[T], bytes],
    *,
    deadline: WriteDeadline,
    slice_seconds: float = SLICE_SECONDS,
) -> web.StreamResponse:
    """Stream ``{**head, items_key: [encode(i) for i in items]}`` as JSON, yielding between slices.

    ``encode`` returns each item's JSON bytes (``apiserver.encoded.EncodedItems`` reuses them
    across lists). ``items_key`` comes last in the document, as in every Kubernetes list and Table.
    """
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    _SliceBudget.active += 1
    try:
        buffer = bytearray(_head_bytes(head, items_key))
        first = True
        started = time.perf_counter()
        for item in items:
            if not first:
                buffer += b","
            first = False
            buffer += encode(item)
            if len(buffer) >= LIST_FLUSH_BYTES or time.perf_counter() - started >= _SliceBudget.share(
                slice_seconds
            ):
                await deadline.write(response, bytes(buffer))
                buffer.clear()
                await asyncio.sleep(0)  # a fast reader never blocks the write: yield anyway
                started = time.perf_counter()
        buffer += b"]}"
        await deadline.write(response, bytes(buffer))
        await response.write_eof()
    except ConnectionResetError:
        pass
    finally:
        _SliceBudget.active -= 1
    return response
