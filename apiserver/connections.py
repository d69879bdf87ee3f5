"""The HTTPS listener: bounded connections, timeouts, header limits, and Status for every rejection.

aiohttp's defaults do not fit an aggregated API server (issue 9 items 2, 4, 8, 9):

- **Per-connection memory.** asyncio's ``SSLProtocol`` allocates a 256 KiB receive buffer per
  connection, so idle TLS connections cost ~276 KiB each. ``SharedBufferSSLProtocol`` gives all
  connections of the loop one receive buffer: the transport reads into it and the protocol
  copies the bytes into the connection's TLS input BIO at once, synchronously, so it is never
  shared by two reads. Per-connection cost is measured in bench/README.md.
- **Handshake bursts**: TLS handshakes run on the event loop; ``HandshakeBudget`` gives them at
  most 30% of it while a burst lasts, so probes and requests on open connections still answer.
- **Timeouts** (``ServingLimits``): the TLS handshake must finish within ``handshake_timeout``;
  a connection with no request in flight is closed ``idle_timeout`` after it connected or its
  last response (aiohttp's keep-alive timer); the headers of a request must arrive within
  ``header_timeout`` of its first byte (slowloris); a response the client does not read within
  ``write_timeout`` ends the connection (``apiserver.streaming``). The values follow the
  kube-apiserver's (``IdleTimeout`` 90 s, ``ReadHeaderTimeout`` 32 s, request timeout 60 s).
- **Limits**: the kernel send buffer of a connection is ``send_buffer`` (256 KiB, instead of
  up to 4 MiB autotuned), at most ``max_connections`` connections (more are closed before the handshake, and
  counted); request line plus headers up to ``max_header_bytes`` (1 MiB, Go's
  ``DefaultMaxHeaderBytes`` that the kube-apiserver uses), so what the kube-apiserver forwards
  (2,000 ``X-Remote-Group`` lines, 9 KB extra values, an 11 KB ``labelSelector``) is accepted;
  beyond that a 431 Status.
- **Status everywhere**: aiohttp answers parse errors with ``text/plain``; ``ApiRequestHandler``
  answers with a ``metav1.Status`` (unknown or lower-case methods: 405, like the
  kube-apiserver's router), logs one rate-limited line instead of a traceback and counts it.

aiohttp has no hooks for these, so ``ApiRequestHandler``/``ApiAppRunner`` lean on a few of its
internals (``RequestHandler._messages``/``_request_in_progress``, ``AppRunner._make_server``)
and ``SharedBufferSSLProtocol`` on CPython's ``asyncio.sslproto`` (3.11+); written against
aiohttp 3.14 and Python 3.11. ``tests/unit/apiserver/test_hardening.py`` exercises every one
of them, so an upgrade that changes them fails there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from apiserver import memory
from apiserver.memory import TRIM_MIN_PEAK
from apiserver.ratelimit import RateLimitedLog
from apiserver.status import status_body

log = logging.getLogger(__name__)
_client_log = RateLimitedLog(log)

# Fixed reasons for the rejected-connections/requests counter (no client can create series).
REJECT_REASONS = (
    "bad_request",
    "method_not_allowed",
    "headers_too_large",
    "header_timeout",
    "too_many_connections",
    "write_timeout",
)
OnReject = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ServingLimits:
    """Connection and response limits of the HTTPS server (see the module docstring)."""

    idle_timeout: float = 90.0
    header_timeout: float = 32.0
    handshake_timeout: float = 10.0
    write_timeout: float = 60.0
    max_connections: int = 4096
    max_header_bytes: int = 1 << 20
    send_buffer: int = 256 * 1024  # kernel send buffer per connection (SO_SNDBUF), 0: the kernel's


def _raw_status(code: int, reason: str, message: str) -> bytes:
    body = orjson.dumps(status_body(code, message))
    head = (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ApiRequestHandler(RequestHandler):
    """aiohttp's connection handler with a header deadline, a header byte budget and Status errors."""

    def __init__(self, manager: web.Server, *, limits: ServingLimits, on_reject: OnReject, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._on_reject = on_reject
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    def count_reject(self, reason: str) -> None:
        """Count a refusal decided by the application (e.g. a write timeout)."""
        self._on_reject(reason)
        _client_log.log(logging.INFO, "disconnected %s: %s", self._peer(), reason)

    # -------------------------------------------------------------- header deadline and budget

    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close:
            return
        reading_headers = not self._request_in_progress and not self._messages
        if reading_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self._limits.max_header_bytes:
                self._reject(431, "Request Header Fields Too Large", "headers_too_large")
                return
            if self._header_timer is None:
                self._header_timer = self._loop.call_later(self._limits.header_timeout, self._header_expired)
        super().data_received(data)
        if self._messages:  # a complete request (or a parse error) is queued
            self._headers_done()

    def _headers_done(self) -> None:
        self._header_bytes = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self._request_in_progress or self._messages or self.transport is None:
            return
        self._on_reject("header_timeout")
        _client_log.log(logging.INFO, "closed %s: request headers not complete within %gs",
                        self._peer(), self._limits.header_timeout)
        self.force_close()

    def _reject(self, code: int, reason: str, counted: str) -> None:
        self._on_reject(counted)
        _client_log.log(logging.INFO, "rejected a request from %s: %d %s", self._peer(), code, reason)
        transport = self.transport
        if transport is not None:
            transport.write(_raw_status(code, reason, reason))
        self._headers_done()
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "a client"

    # -------------------------------------------------------------- errors aiohttp answers itself

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        if isinstance(exc, BadHttpMethod):
            code, counted = 405, "method_not_allowed"
            text = "the server does not allow this method on the requested resource"
        elif isinstance(exc, LineTooLong) or (
            isinstance(exc, HttpProcessingError) and "too many headers" in (exc.message or "").lower()
        ):
            code, counted, text = 431, "headers_too_large", "Request Header Fields Too Large"
        elif status < 500:
            code, counted = status, "bad_request"
            text = f"the request could not be parsed: {(message or str(exc or ''))[:200]}"
        else:
            code, counted, text = status, "", "Internal error occurred: see the server log"
        if counted:
            self._on_reject(counted)
            _client_log.log(logging.INFO, "client error %d from %s: %s", code, self._peer(), text)
        else:
            _client_log.log(logging.ERROR, "internal error on a connection from %s", self._peer(),
                            exc_info=exc is not None)
        response = web.Response(
            status=code, body=orjson.dumps(status_body(code, text)), content_type="application/json"
        )
        response.force_close()
        return response


class ApiServer(web.Server):
    """``web.Server`` that makes ``ApiRequestHandler`` connections."""

    def __init__(self, *args: Any, limits: ServingLimits, on_reject: OnReject, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits, self.on_reject = limits, on_reject

    def __call__(self) -> RequestHandler:
        return ApiRequestHandler(
            self, limits=self.limits, on_reject=self.on_reject, loop=self._loop, **self._kwargs
        )


class ApiAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server is an ``ApiServer`` with the parser limits set."""

    def __init__(self, app: web.Application, *, limits: ServingLimits, on_reject: OnReject) -> None:
        super().__init__(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            keepalive_timeout=limits.idle_timeout,
            # One budget for line + headers is enforced by ApiRequestHandler; aiohttp's own
            # per-line and count limits are set so they never bind first.
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_header_bytes // 4,
        )
        self._limits, self._on_reject = limits, on_reject

    async def _make_server(self) -> web.Server:
        loop = asyncio.get_running_loop()
        app = self._app
        app._set_loop(loop)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        return ApiServer(
            app._handle,
            request_factory=app._make_request,
            loop=loop,
            limits=self._limits,
            on_reject=self._on_reject,
            **self._kwargs,
        )


class HandshakeBudget:
    """Caps the loop time TLS handshakes take during a burst (``spend`` seconds per ``window``).

    A server-side handshake with client-certificate verification costs 3-10 ms of CPU on the
    event loop (OpenSSL 3.0); a burst of hundreds would hold requests already connected (the
    kubelet's probes) for seconds. Handshake steps beyond the budget wait for the next window,
    so established connections keep being served in between.
    """

    def __init__(self, *, window: float = 0.05, spend: float = 0.015) -> None:
        self.window, self.spend = window, spend
        self._start, self._spent = 0.0, 0.0
        self.deferred = 0

    def wait(self) -> float:
        """0 when a handshake step may run now, else the seconds until the next window."""
        now = time.perf_counter()
        if now - self._start >= self.window:
            self._start, self._spent = now, 0.0
        if self._spent < self.spend:
            return 0.0
        return self._start + self.window - now

    def charge(self, seconds: float) -> None:
        self._spent += seconds


HANDSHAKES = HandshakeBudget()
_SHARED_BUFFER = bytearray(256 * 1024)
_SHARED_VIEW = memoryview(_SHARED_BUFFER)


class SharedBufferSSLProtocol(sslproto.SSLProtocol):
    """``SSLProtocol`` reading into one loop-wide buffer instead of 256 KiB per connection."""

    max_size = 64 * 1024  # decrypted bytes per read (allocated per read, released at once)

    def __init__(self, *args: Any, on_lost: Callable[[], None], send_buffer: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ssl_buffer = _SHARED_BUFFER
        self._ssl_buffer_view = _SHARED_VIEW
        self._on_lost = on_lost
        self._send_buffer = send_buffer
        self._handshake_waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._send_buffer:
            # Bounded kernel memory per client (charged to the pod's cgroup): a client that does
            # not read stalls our writes after this much instead of after the autotuned 4 MiB.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_buffer)
        super().connection_made(transport)

    def _do_handshake(self) -> None:
        # _state and _do_handshake are CPython's (3.11+) SSLProtocol internals, not in typeshed.
        if self._state is not sslproto.SSLProtocolState.DO_HANDSHAKE:  # type: ignore[attr-defined]
            return  # closed while the step was waiting for the budget
        wait = HANDSHAKES.wait()
        if wait > 0:
            if not self._handshake_waiting:
                self._handshake_waiting = True
                HANDSHAKES.deferred += 1
                self._loop.call_later(wait, self._resume_handshake)
            return
        started = time.perf_counter()
        try:
            super()._do_handshake()  # type: ignore[misc]
        finally:
            HANDSHAKES.charge(time.perf_counter() - started)

    def _resume_handshake(self) -> None:
        self._handshake_waiting = False
        self._do_handshake()

    def get_buffer(self, n: int) -> memoryview:
        # The transport fills this, then calls buffer_updated(), which copies it into the
        # incoming BIO before returning: no other connection can read in between.
        return _SHARED_VIEW

    def connection_lost(self, exc: BaseException | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            on_lost, self._on_lost = self._on_lost, _nothing
            on_lost()


def _nothing() -> None:
    pass


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).abort()


class ConnectionLimiter:
    """Counts open connections, refuses new ones above ``limits.max_connections``, and trims the
    heap once a burst of connections is gone (``apiserver.memory``)."""

    def __init__(self, limits: ServingLimits, on_reject: OnReject) -> None:
        self.limits, self.on_reject = limits, on_reject
        self.open = 0
        self.peak = 0
        self.trims = 0
        self._trim_pending: asyncio.TimerHandle | None = None

    def _trim(self) -> None:
        self._trim_pending = None
        self.peak = self.open
        self.trims += 1
        memory.trim()

    def factory(self, server: web.Server, ssl_context: Any) -> Callable[[], asyncio.BaseProtocol]:
        loop = asyncio.get_running_loop()

        def lost() -> None:
            self.open -= 1
            if self.peak >= TRIM_MIN_PEAK and self.open <= self.peak // 2 and self._trim_pending is None:
                self._trim_pending = loop.call_later(1.0, self._trim)

        def make() -> asyncio.BaseProtocol:
            if self.open >= self.limits.max_connections:
                self.on_reject("too_many_connections")
                _client_log.log(logging.WARNING, "refused a connection: %d open", self.open)
                return _Refuse()
            self.open += 1
            self.peak = max(self.peak, self.open)
            return SharedBufferSSLProtocol(
                loop,
                server(),
                ssl_context,
                None,
                server_side=True,
                ssl_handshake_timeout=self.limits.handshake_timeout,
                on_lost=lost,
                send_buffer=self.limits.send_buffer,
            )

        return make


async def listen(
    runner: ApiAppRunner, limiter: ConnectionLimiter, ssl_context: Any, *, host: str, port: int
) -> asyncio.Server:
    """Listen on ``host:port``: TLS is done by ``SharedBufferSSLProtocol`` over plain sockets."""
    server = runner.server
    assert server is not None
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        limiter.factory(server, ssl_context),
        host,
        port,
        backlog=1024,
        reuse_address=True,
        family=socket.AF_UNSPEC,
    )
