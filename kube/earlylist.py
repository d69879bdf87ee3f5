"""A LIST sent before the process can consume it: the informer's first LIST, started at start-up.

A large LIST from the watch cache is mostly waiting: kube-apiserver 1.20 encodes the whole
answer before the first byte (about 90% of the request's time, bench/README.md, initial sync).
Meanwhile a freshly started process imports its modules, parses its configuration and
resolves its kinds, one after the other, and only then sends the LIST. ``start_early_list``
sends it first, on a thread of its own with the standard library's HTTP client (nothing here
imports aiohttp), so the server's encoding overlaps the process's start-up; the body is received
and gunzipped on that thread (``zlib`` releases the GIL) and handed on as decoded chunks, at
most ``MAX_PENDING`` (1 MiB) ahead of the consumer: beyond that the thread stops reading and
the rest waits in the socket, compressed. Holding a whole decoded 50,000-object list would add
~27 MB to the peak RSS, and what the thread's allocator arena once held stays resident (4 MiB
ahead cost ~6 MiB of steady RSS at 50,000 Widgets).

The informer's client picks it up instead of sending the same request again
(``KubeClient.list_stream`` -> ``take_early_list``): only for exactly the same request (server,
path, query, user agent, credentials), and only once. That is as correct as sending it then: a
``resourceVersion=0`` LIST promises any state the cache has, and the watch continues from the
list's own resourceVersion. A request that failed before its first byte (connection, non-200
answer) is not used (the client sends its own, which then fails or not on its own terms); one
that breaks off while being consumed raises ``EarlyListBroken`` (an ``OSError``), which the
informer retries like any broken connection. Unclaimed lists are dropped after
``UNCLAIMED_SECONDS``.

``sent`` is set once the request is written: ``panopticon serve`` waits for it before its
imports (``apiserver.early``), and the request may go out on a connection that ``get_json``
kept open (``connection=``), so resolving the kind and listing cost one TLS handshake.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import threading
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from kube.config import ClientConfig
from kube.tls import build_ssl_context

if TYPE_CHECKING:  # asyncio only for the consumer: the thread sends its LIST before it is imported
    import asyncio

log = logging.getLogger(__name__)

UNCLAIMED_SECONDS = 60.0
READ_SIZE = 1 << 16  # wire bytes per read
CHUNK_SIZE = 1 << 17  # decoded bytes per chunk handed on
MAX_PENDING = 1 << 20  # decoded bytes kept for the consumer before the thread stops reading
# What aiohttp sends (``KubeClient``); kube-apiserver gzips large answers for it.
ACCEPT_ENCODING = "gzip, deflate"

Key = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


class EarlyListBroken(OSError):
    """The early LIST's connection broke off after part of the body was consumed."""


class EarlyListUnused(Exception):
    """The early LIST failed before its first byte: nothing was consumed, send the request again."""


def request_key(server: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Key:
    return (server.rstrip("/"), path, tuple(sorted(query.items())), tuple(sorted(headers.items())))


class EarlyList:
    """One GET on a thread; its body as gunzipped chunks for one consumer (``chunks``)."""

    def __init__(self, config: ClientConfig, *, path: str, query: Mapping[str, str],
                 headers: Mapping[str, str], timeout: float = 120.0,
                 connection: http.client.HTTPConnection | None = None) -> None:
        self.key = request_key(config.server, path, query, headers)
        self._config = config
        self._url = config.server.rstrip("/") + path + ("?" + urlencode(dict(query)) if query else "")
        self._headers = {**headers, "Accept-Encoding": ACCEPT_ENCODING}
        self._timeout = timeout
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._status = 0  # HTTP status once the answer's head arrived
        self._done = False  # the body is complete, or the request failed
        self._error: BaseException | None = None
        self._pending = 0  # bytes in _chunks
        self._room = threading.Condition(self._lock)
        self._wakeup: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._reuse = connection  # an open keep-alive connection to the same server (get_json's)
        self._closed = False
        self.sent = threading.Event()  # the request is on the wire (or failed before that)
        self.started = time.monotonic()
        self.claimed = False  # taken by a consumer (take_early_list)
        self.first_byte: float | None = None
        self.finished: float | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="early-list", daemon=True).start()

    # ---- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._fetch()
        except BaseException as err:  # reported to the consumer, never raised on the thread
            with self._lock:
                self._error = err
        finally:
            self.sent.set()
            with self._lock:
                self._done = True
                self.finished = time.monotonic()
            self._notify()
            self._close_connection()
            first = "-" if self.first_byte is None else f"{self.first_byte - self.started:.3f}s"
            log.debug("early LIST %s: status %s, first byte after %s, done after %.3fs (%s)", self._url,
                      self._status, first, self.finished - self.started,
                      "taken" if self.claimed else "not taken yet")
        # Nobody took it yet: free the body once nobody will (the informer asked something else).
        while not self.claimed and time.monotonic() < self.started + UNCLAIMED_SECONDS:
            time.sleep(0.5)
        if not self.claimed:
            _forget(self)

    def _fetch(self) -> None:
        conn, self._reuse = self._reuse, None
        if conn is not None:  # no second TLS handshake: the discovery GET's connection
            target = _target(self._url)
            conn.timeout = self._timeout
            if conn.sock is not None:
                conn.sock.settimeout(self._timeout)
        else:
            conn, target = _connection(self._config, self._url, timeout=self._timeout)
        self._conn = conn
        conn.request("GET", target, headers=self._headers)
        self.sent.set()
        resp = conn.getresponse()
        with self._lock:
            self._status = resp.status
        if resp.status != 200:
            return  # the consumer sends its own request (and gets its own error)
        encoding = (resp.getheader("Content-Encoding") or "").lower()
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "deflate") else None
        while not self._closed:
            raw = resp.read1(READ_SIZE)
            if not raw:
                break
            if inflate is None:
                self._push(raw)
                continue
            data = inflate.decompress(raw, CHUNK_SIZE)
            while data:  # ~12x larger than the wire bytes: handed on in pieces of CHUNK_SIZE
                self._push(data)
                tail = inflate.unconsumed_tail
                data = inflate.decompress(tail, CHUNK_SIZE) if tail else b""
        if inflate is not None and not self._closed:
            self._push(inflate.flush())
        if not self._closed and resp.length:  # bytes of a Content-Length body still missing
            raise http.client.IncompleteRead(b"", resp.length)

    def _push(self, data: bytes) -> None:
        if not data:
            return
        if not self.claimed and time.monotonic() - self.started > UNCLAIMED_SECONDS:
            self.close()
            return
        with self._room:
            # Flow control: at most MAX_PENDING decoded bytes wait for the consumer; the rest
            # waits in the socket (compressed), as with any client that reads as it consumes.
            while self._pending >= MAX_PENDING and not self._closed:
                self._room.wait(0.5)
            if self.first_byte is None:
                self.first_byte = time.monotonic()
            self._chunks.append(data)
            self._pending += len(data)
        self._notify()

    def _notify(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            loop, event = wakeup
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(event.set)

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    # ---- the consumer --------------------------------------------------------------------------
    def usable(self) -> bool:
        """False once it is known that this request cannot serve the consumer (failed, not 200)."""
        with self._lock:
            if self._status:
                return self._status == 200
            return not self._done

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (decompressed). Raises ``EarlyListBroken`` when the
        request failed; ``EarlyListUnused`` when it failed before any byte (nothing was consumed:
        the caller sends its own request)."""
        import asyncio  # imported by now (the consumer runs on the event loop); see the top

        event = asyncio.Event()
        self._wakeup = (asyncio.get_running_loop(), event)
        consumed = False
        try:
            while True:
                event.clear()
                with self._room:
                    chunks, self._chunks = self._chunks, []
                    done, error, status = self._done, self._error, self._status
                    self._pending = 0
                    self._room.notify()
                for chunk in chunks:
                    consumed = True
                    yield chunk
                if chunks:
                    continue
                if done:
                    if status != 200 or (error is not None and not consumed):
                        raise EarlyListUnused(f"early LIST not usable: status {status}, {error!r}")
                    if error is not None:
                        raise EarlyListBroken(f"early LIST broke off: {type(error).__name__}: {error}")
                    return
                await event.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading (the thread ends at its next read) and forget buffered chunks."""
        self._closed = True
        self._wakeup = None
        with self._room:
            self._chunks = []
            self._pending = 0
            self._room.notify()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(2)  # wakes the thread's blocking read


def _connection(config: ClientConfig, url: str, *, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """An unconnected HTTP(S) connection to ``url``'s server, and the request target."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, context=build_ssl_context(config), timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    return conn, _target(url)


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def get_json(config: ClientConfig, path: str, *, headers: Mapping[str, str], timeout: float = 10.0,
             keep: list[http.client.HTTPConnection] | None = None) -> Any:
    """One blocking GET (a discovery document); the decoded JSON, ``None`` unless 200.

    ``keep``: a list that receives the still open connection when the server keeps it alive
    (for the next request to the same server, ``start_early_list(connection=...)``)."""
    conn, target = _connection(config, config.server.rstrip("/") + path, timeout=timeout)
    kept = False
    try:
        conn.request("GET", target, headers=dict(headers))
        resp = conn.getresponse()
        body = resp.read()
        if keep is not None and not resp.will_close:
            keep.append(conn)
            kept = True
    finally:
        if not kept:
            conn.close()
    return json.loads(body) if resp.status == 200 else None


_pending: dict[Key, EarlyList] = {}
_pending_lock = threading.Lock()


def start_early_list(config: ClientConfig, *, path: str, query: Mapping[str, str],
                     headers: Mapping[str, str],
                     connection: http.client.HTTPConnection | None = None) -> EarlyList:
    """Send ``GET path?query`` now, for the first ``take_early_list`` with the same request
    (on ``connection`` when given: an open connection to the same server, then owned here)."""
    early = EarlyList(config, path=path, query=query, headers=headers, connection=connection)
    with _pending_lock:
        _pending[early.key] = early
    early.start()
    return early


def _ago(now: float, then: float | None) -> str:
    return "not yet" if then is None else f"{now - then:.3f}s ago"


def _forget(early: EarlyList) -> None:
    with _pending_lock:
        if _pending.get(early.key) is early:
            del _pending[early.key]
    early.close()


def take_early_list(server: str, path: str, query: Mapping[str, str],
                    headers: Mapping[str, str]) -> EarlyList | None:
    """The early LIST for exactly this request, once; ``None`` when there is none (or it failed)."""
    if not _pending:
        return None
    key = request_key(server, path, query, {k: v for k, v in headers.items() if k != "Accept-Encoding"})
    with _pending_lock:
        early = _pending.pop(key, None)
        if early is None:
            return None
        early.claimed = True
    if not early.usable():
        early.close()
        return None
    now = time.monotonic()
    log.debug("using the early LIST of %s: sent %.3fs ago, first byte %s, complete %s", path,
              now - early.started, _ago(now, early.first_byte), _ago(now, early.finished))
    return early
