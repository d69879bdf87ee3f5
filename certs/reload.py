"""A server TLS context whose serving pair and client CAs can change without a restart.

``ssl.SSLContext`` cannot swap its certificate in place for *new* connections safely while
handshakes are running, so the server listens with one fixed "front" context whose SNI callback
(OpenSSL calls it for every ClientHello, with or without SNI) points the connection at the
current inner context: ``ssl_object.context = current``. The inner context carries the serving
pair and the verify store; both are taken from the swapped context, so new handshakes use the
new pair and the new client CAs while established connections keep theirs.

The serving pair comes from files (re-read when their mtime/size changes; polled at most once
per ``poll_interval`` on handshake) or from memory (self-signed development pair). The client CA
bundle (union of client-ca and requestheader CA) is pushed in by the auth configuration watcher.
The client certificate is *requested, not required* (``CERT_OPTIONAL``): authentication decides
later, per request, what a certificate proves.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from certs.generate import KeyPair

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[int, int], tuple[int, int]]


def _stamp(cert: Path, key: Path) -> _Stamp:
    a, b = cert.stat(), key.stat()
    return (a.st_mtime_ns, a.st_size), (b.st_mtime_ns, b.st_size)


def _load_pair_into(ctx: ssl.SSLContext, pair: KeyPair) -> None:
    # load_cert_chain only reads files; a private temp dir keeps the key off shared paths.
    with tempfile.TemporaryDirectory(prefix="panopticon-tls-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(pair.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pair.key_pem)
        ctx.load_cert_chain(cert, key)


class ReloadingServerTLS:
    """Owns the front SSLContext a server listens with; see the module docstring."""

    def __init__(
        self,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        pair: KeyPair | None = None,
        client_ca_pem: bytes = b"",
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (cert_file is None) != (key_file is None):
            raise ValueError("--tls-cert-file and --tls-private-key-file go together")
        if cert_file is None and pair is None:
            raise ValueError("either certificate files or an in-memory pair is required")
        self._cert_file, self._key_file, self._pair = cert_file, key_file, pair
        self._client_ca_pem = client_ca_pem
        self._poll_interval, self._clock = poll_interval, clock
        self._lock = threading.Lock()
        self._stamp: _Stamp | None = None
        self._checked_at = clock()
        self._current = self._build()
        self.reloads = 0
        self.front = self._build()
        self.front.sni_callback = self._select

    @property
    def current(self) -> ssl.SSLContext:
        """The inner context new handshakes get (after a reload check)."""
        self._maybe_reload()
        return self._current

    def set_client_ca(self, pem: bytes) -> None:
        """Replace the CA bundle client certificates are checked against (new handshakes)."""
        with self._lock:
            if pem == self._client_ca_pem:
                return
            self._client_ca_pem = pem
            self._current = self._build()

    def _build(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        if self._cert_file is not None and self._key_file is not None:
            stamp = _stamp(self._cert_file, self._key_file)
            ctx.load_cert_chain(self._cert_file, self._key_file)
            self._stamp = stamp
        else:
            assert self._pair is not None
            _load_pair_into(ctx, self._pair)
        # Always request a certificate, even before any CA is known: the front context's verify
        # mode is what the connection keeps when the SNI callback swaps contexts.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if self._client_ca_pem.strip():
            ctx.load_verify_locations(cadata=self._client_ca_pem.decode())
        return ctx

    def _maybe_reload(self) -> None:
        if self._cert_file is None or self._key_file is None:
            return
        now = self._clock()
        if now - self._checked_at < self._poll_interval:
            return
        self._checked_at = now
        try:
            stamp = _stamp(self._cert_file, self._key_file)
        except OSError as exc:
            log.warning("serving certificate not readable, keeping the current one: %s", exc)
            return
        if stamp == self._stamp:
            return
        with self._lock:
            try:
                self._current = self._build()
            except (OSError, ssl.SSLError) as exc:
                # A writer replacing cert and key one after the other leaves a mismatched pair for
                # a moment; keep serving the old pair and retry at the next poll.
                log.warning("serving certificate reload failed, keeping the current one: %s", exc)
                return
            self.reloads += 1
            log.info("serving certificate reloaded from %s", self._cert_file)

    def _select(self, ssl_object: ssl.SSLObject, server_name: str | None, front: ssl.SSLContext) -> None:
        ssl_object.context = self.current
