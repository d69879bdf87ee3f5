"""Exposition: the store's pre-rendered chunks assembled into Prometheus text or OpenMetrics.

One code path serves the plain ``/metrics``, the API server's ``/prometheus`` endpoints and
``panopticon render``. A body is, for every family (configurations by name, then families in
configuration order): ``# HELP``/``# TYPE`` once, then that family's chunk of every object,
so all lines of a family form one group. Families without series get no header (as
kube-state-metrics does): an empty HELP/TYPE block carries no information and, for a namespace
filter, would leak the names of families that only exist elsewhere. OpenMetrics ends with
``# EOF``.

The sample lines are identical in both formats (Panopticon families are gauges: the sample name
is the family name, values are plain floats); only the header escaping differs: text 0.0.4
escapes ``\\`` and newline in HELP, OpenMetrics also ``"``. ``info``/``stateset`` TYPEs, should a
plan ever announce them, become ``gauge`` in text (kube-state-metrics #2248).

Negotiation follows prometheus_client's ``choose_encoder`` exactly (including its Content-Type
strings); since every name we emit is a legal legacy name, the ``escaping`` parameter never
changes the bytes, only the Content-Type echoed back.

Caching: bodies (and their gzip) are cached per (format, namespace, with/without ``# EOF``)
until ``store.generation`` changes; an unchanged store is answered with the cached bytes.
``parts`` is the same body as the list of its pieces (headers and the store's block texts,
``exporter.blocks``) without joining them: the plain ``/metrics`` writes those, so the sample
text exists once in memory (in the store), not a second time as a cached body.
Callers that append per-request bytes to a cached body (the plain endpoint adds telemetry) use
``gzip_with_tail``: the cached part is kept as a sync-flushed deflate prefix plus a copy of the
compressor, so only the tail is compressed per request and the result is still one ordinary
gzip member (several concatenated members would be valid RFC 1952, but curl decodes only the
first).
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from exporter.store import MetricsStore
from exporter.types import FamilyHeader, Series

FormatKind = Literal["text", "openmetrics"]

CONTENT_TYPE_TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
CONTENT_TYPE_OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OPENMETRICS_EOF = b"# EOF\n"
# Level 1: on exposition text it compresses ~15x (level 6: ~18x) at a third of level 6's CPU; the
# gzip of a large body is recomputed after every store change, so CPU wins (bench/README.md).
GZIP_LEVEL = 1

_ESCAPINGS = ("allow-utf-8", "underscores", "dots", "values")


@dataclass(frozen=True, slots=True)
class Format:
    """A negotiated exposition format: which bytes to produce and the Content-Type to send."""

    kind: FormatKind
    content_type: str


TEXT = Format("text", CONTENT_TYPE_TEXT_0_0_4)
OPENMETRICS = Format("openmetrics", CONTENT_TYPE_OPENMETRICS_1_0_0)


def negotiate(accept_header: str | None) -> Format:
    """Pick the format for an ``Accept`` header, exactly as prometheus_client's ``choose_encoder``.

    Media ranges are taken in header order (q-values are not compared): the first
    ``application/openmetrics-text`` without a version, or with a version >= 1.0.0, selects
    OpenMetrics; the first ``text/plain`` with version >= 1.0.0 selects text 1.0.0 (same bytes as
    0.0.4 for legacy names); anything else falls back to text 0.0.4.
    """
    for accepted in (accept_header or "").split(","):
        toks = accepted.split(";")
        media = toks[0].strip()
        if media == "application/openmetrics-text":
            version = _param(toks, "version")
            escaping = _escaping(toks)
            if not version:
                return OPENMETRICS
            if _version_tuple(version) >= (1, 0, 0):
                return Format("openmetrics",
                              f"application/openmetrics-text; version={version}; charset=utf-8; "
                              f"escaping={escaping}")
        elif media == "text/plain":
            version = _param(toks, "version")
            escaping = _escaping(toks)
            if version and _version_tuple(version) >= (1, 0, 0):
                return Format("text", f"{CONTENT_TYPE_TEXT_1_0_0}; escaping={escaping}")
    return TEXT


def gzip_accepted(accept_encoding_header: str | None) -> bool:
    """True when ``Accept-Encoding`` lists gzip (any q), as prometheus_client decides."""
    return any(part.split(";")[0].strip().lower() == "gzip"
               for part in (accept_encoding_header or "").split(","))


def _param(toks: list[str], key: str) -> str:
    for tok in toks:
        if "=" not in tok:
            continue
        k, value = tok.strip().split("=", 1)
        if k == key:
            return value
    return ""


def _escaping(toks: list[str]) -> str:
    for tok in toks:
        if "=" not in tok:
            continue
        k, value = tok.strip().split("=", 1)
        if k == "escaping":
            return value if value in _ESCAPINGS else "underscores"
    return "underscores"


def _version_tuple(version: str) -> tuple[int, ...]:
    # prometheus_client.utils.parse_version keeps non-numeric parts as strings, and comparing them
    # with ints then raises TypeError (a 500); here non-digits are ignored instead.
    parts: list[int] = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# --------------------------------------------------------------------------- escaping


def escape_help(text: str, kind: FormatKind) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if kind == "openmetrics" else text


def render_header(header: FamilyHeader, kind: FormatKind) -> bytes:
    typ = header.type
    if kind == "text":
        typ = {"info": "gauge", "stateset": "gauge", "unknown": "untyped"}.get(typ, typ)
    elif typ == "untyped":
        typ = "unknown"
    return (f"# HELP {header.name} {escape_help(header.help, kind)}\n"
            f"# TYPE {header.name} {typ}\n").encode()


# --------------------------------------------------------------------------- assembly


def assemble(families: Iterable[tuple[FamilyHeader, Iterable[bytes]]], *, kind: FormatKind,
             headers: dict[tuple[FamilyHeader, FormatKind], bytes] | None = None,
             trailer: bytes = b"") -> bytes:
    """Join headers, chunks and ``trailer`` (``# EOF``) into one body. Pure: no store, no cache.

    ``families`` yields each family's non-empty chunks; a family without any gets no header.
    """
    # One flat list and a single join: every sample byte is copied exactly once.
    return b"".join(assemble_parts(families, kind=kind, headers=headers, trailer=trailer))


def assemble_parts(families: Iterable[tuple[FamilyHeader, Iterable[bytes]]], *, kind: FormatKind,
                   headers: dict[tuple[FamilyHeader, FormatKind], bytes] | None = None,
                   trailer: bytes = b"") -> list[bytes]:
    """``assemble`` without the final join: the body's pieces in order (each non-empty)."""
    parts: list[bytes] = []
    cache = headers if headers is not None else {}
    for header, chunks in families:
        start = len(parts)
        parts.append(b"")  # placeholder for the header, dropped again if the family is empty
        parts.extend(chunks)  # non-empty chunks only (the store's contract)
        if len(parts) == start + 1:
            del parts[start]
            continue
        key = (header, kind)
        head = cache.get(key)
        if head is None:
            head = cache[key] = render_header(header, kind)
        parts[start] = head
    if trailer:
        parts.append(trailer)
    return parts


class Exposition:
    """Cached bodies over a ``MetricsStore``. Same threading rule as the store (one event loop)."""

    def __init__(self, store: MetricsStore) -> None:
        self._store = store
        self._generation = -1
        self._bodies: dict[tuple[FormatKind, str | None, bool], bytes] = {}
        self._parts: dict[tuple[FormatKind, str | None, bool], list[bytes]] = {}
        self._gzipped: dict[tuple[FormatKind, str | None, bool], bytes] = {}
        self._prefixes: dict[tuple[FormatKind, str | None], GzipPrefix] = {}
        self._headers: dict[tuple[FamilyHeader, FormatKind], bytes] = {}

    def body(self, *, fmt: Format | FormatKind, namespace: str | None = None, gzip: bool = False,
             eof: bool = True) -> bytes:
        """The exposition of every object (or of one namespace's objects).

        ``eof=False`` leaves out OpenMetrics' final ``# EOF`` for callers that append more
        families (and the EOF) themselves.
        """
        kind: FormatKind = fmt.kind if isinstance(fmt, Format) else fmt
        self._validate()
        key = (kind, namespace, eof and kind == "openmetrics")
        if gzip:
            cached = self._gzipped.get(key)
            if cached is None:
                # Not through a GzipPrefix: that keeps a compressor (~300 KB) alive per key, which
                # only the per-request tail of the plain endpoint needs.
                cached = self._gzipped[key] = gzip_member(self._plain(key))
            return cached
        return self._plain(key)

    def parts(
        self, *, fmt: Format | FormatKind, namespace: str | None = None, eof: bool = True
    ) -> list[bytes]:
        """``body()`` as its pieces, not joined (write them in order; never modify the list)."""
        kind: FormatKind = fmt.kind if isinstance(fmt, Format) else fmt
        self._validate()
        return self._parts_of((kind, namespace, eof and kind == "openmetrics"))

    def gzip_with_tail(self, *, fmt: Format | FormatKind, namespace: str | None = None, tail: bytes) -> bytes:
        """gzip of ``body(eof=False) + tail``, compressing only ``tail`` on a cache hit."""
        kind: FormatKind = fmt.kind if isinstance(fmt, Format) else fmt
        self._validate()
        return self._gzip_prefix(kind, namespace).finish(tail)

    def _validate(self) -> None:
        if self._generation != self._store.generation:
            self._bodies.clear()
            self._parts.clear()
            self._gzipped.clear()
            self._prefixes.clear()
            self._generation = self._store.generation

    def _gzip_prefix(self, kind: FormatKind, namespace: str | None) -> GzipPrefix:
        prefix = self._prefixes.get((kind, namespace))
        if prefix is None:
            prefix = self._prefixes[(kind, namespace)] = GzipPrefix.of_parts(
                self._parts_of((kind, namespace, False)))
        return prefix

    def _parts_of(self, key: tuple[FormatKind, str | None, bool]) -> list[bytes]:
        cached = self._parts.get(key)
        if cached is not None:
            return cached
        kind, namespace, eof = key
        started = time.perf_counter()
        parts = self._parts[key] = assemble_parts(
            self._store.family_chunks(namespace=namespace), kind=kind, headers=self._headers,
            trailer=OPENMETRICS_EOF if eof else b"")
        telemetry = self._store.telemetry
        telemetry.exposition_builds.labels(kind).inc()
        telemetry.exposition_build_seconds.labels(kind).observe(time.perf_counter() - started)
        return parts

    def _plain(self, key: tuple[FormatKind, str | None, bool]) -> bytes:
        cached = self._bodies.get(key)
        if cached is None:
            # The pieces are the store's block texts: the join is the only copy made.
            cached = self._bodies[key] = b"".join(self._parts_of(key))
        return cached


# RFC 1952 member header: magic, CM=deflate, no flags, MTIME=0 (reproducible), XFL=0, OS=unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@dataclass(frozen=True, slots=True)
class GzipPrefix:
    """A gzip member's start for ``data``: everything but the final deflate block and trailer."""

    head: bytes
    compressor: zlib._Compress
    crc: int
    size: int

    @classmethod
    def of(cls, data: bytes) -> GzipPrefix:
        return cls.of_parts([data])

    @classmethod
    def of_parts(cls, parts: Iterable[bytes]) -> GzipPrefix:
        """The prefix for the concatenation of ``parts`` (compressed piece by piece, never joined)."""
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        out = [_GZIP_HEADER]
        crc = size = 0
        for part in parts:
            out.append(compressor.compress(part))
            crc = zlib.crc32(part, crc)
            size += len(part)
        out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
        return cls(b"".join(out), compressor, crc, size)

    def finish(self, tail: bytes) -> bytes:
        """The complete member for ``data + tail`` (the prefix stays reusable)."""
        compressor = self.compressor.copy()
        rest = compressor.compress(tail) + compressor.flush()
        trailer = struct.pack("<II", zlib.crc32(tail, self.crc), (self.size + len(tail)) & 0xFFFFFFFF)
        return b"".join((self.head, rest, trailer))


def gzip_member(data: bytes) -> bytes:
    """``data`` as one gzip member (MTIME 0, so equal input gives equal bytes)."""
    return GzipPrefix.of(b"").finish(data)


# --------------------------------------------------------------------------- parsing


class SeriesParseError(ValueError):
    pass


def parse_series(chunk: bytes) -> list[Series]:
    """Parse sample lines (``name{k="v",...} value``) back into ``Series``.

    For the API server's per-object view; never used on the scrape path. Comment lines are
    skipped; escapes in label values (``\\\\``, ``\\"``, ``\\n``) are undone.
    """
    out: list[Series] = []
    for raw in chunk.decode("utf-8").split("\n"):
        if not raw or raw.startswith("#"):
            continue
        out.append(_parse_line(raw))
    return out


def _parse_line(line: str) -> Series:
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space) and "\\" not in line:
        fast = _parse_unescaped(line, brace)
        if fast is not None:
            return fast
    labels: dict[str, str] = {}
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        i = brace + 1
        n = len(line)
        while i < n and line[i] != "}":
            eq = line.find("=", i)
            if eq == -1 or eq + 1 >= n or line[eq + 1] != '"':
                raise SeriesParseError(f"malformed labels in {line!r}")
            key = line[i:eq].strip()
            i = eq + 2
            value: list[str] = []
            while True:
                if i >= n:
                    raise SeriesParseError(f"unterminated label value in {line!r}")
                ch = line[i]
                if ch == "\\" and i + 1 < n:
                    nxt = line[i + 1]
                    value.append("\n" if nxt == "n" else nxt)
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                value.append(ch)
                i += 1
            labels[key] = "".join(value)
            if i < n and line[i] == ",":
                i += 1
        if i >= n:
            raise SeriesParseError(f"missing '}}' in {line!r}")
        rest = line[i + 1:]
    else:
        if space == -1:
            raise SeriesParseError(f"no value in {line!r}")
        name, rest = line[:space], line[space:]
    fields = rest.split()
    if not fields:
        raise SeriesParseError(f"no value in {line!r}")
    try:
        value_f = float(fields[0])
    except ValueError:
        raise SeriesParseError(f"bad value {fields[0]!r} in {line!r}") from None
    return Series(name=name, labels=labels, value=value_f)


def _parse_unescaped(line: str, brace: int) -> Series | None:
    """The common line (no backslash, so no ``"`` inside a value): split instead of scanning.

    ``None`` when the line is not plainly ``name{k="v",...} value``: the scanner decides then.
    """
    close = line.rfind("}")
    if close < brace or (not line.endswith('"', brace, close) and close != brace + 1):
        return None
    labels: dict[str, str] = {}
    if close > brace + 1:
        for part in line[brace + 1 : close - 1].split('",'):
            key, eq, value = part.partition('="')
            if not eq or '"' in value:
                return None
            labels[key.strip()] = value
    fields = line[close + 1 :].split()
    if not fields:
        return None
    try:
        value_f = float(fields[0])
    except ValueError:
        return None
    return Series(name=line[:brace], labels=labels, value=value_f)
