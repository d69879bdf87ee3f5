"""Scale-out: every shard's replica answers with the union of all shards.

With ``--total-shards N`` each replica's store holds only its shard of the objects (disjoint
by UID). Behind one APIService the kube-aggregator picks any replica, so a replica that answered
from its own store alone would give tenants a third of the data at random. ``ShardUnion``
(an aiohttp middleware after authentication and authorization) makes each answer complete:

1. the request is authorized as usual (the caller's own RBAC, for exactly this path);
2. the peers are the ready endpoints of the headless Service ``--peer-service`` (its
   EndpointSlices in the own namespace, cached ``--peer-cache-seconds``), minus this pod;
3. the same path and query (without ``limit``/``continue``) goes to each peer with this pod's
   ServiceAccount token and ``X-Panopticon-Shard-Local: 1``: the peer authorizes *us* (the
   shipped ClusterRoleBinding lets the ServiceAccount read the API) and answers from its own
   store only, naming its shard in ``X-Panopticon-Shard: k/N``. Peers present the same serving
   certificate (one Secret), so the connection is pinned to it;
4. the answers are merged (pure functions below): Prometheus text by family name with one
   HELP/TYPE (shards are disjoint, so series never collide), lists and Tables by object key
   (sorted as one replica sorts them; ``limit``/``continue`` applied to the union), metric
   families by name with their counts summed, a single object from whichever shard has it;
5. unless every shard 0..N-1 answered within ``--peer-timeout`` seconds, the response is a 503
   ``Status`` naming the missing shards: never a silently partial answer.

Watches stay local (a watch of the union would need a merged resourceVersion); the docs say so.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
from aiohttp import web

from apiserver.requestinfo import RequestInfo
from apiserver.status import StatusError
from exporter.values import format_value

log = logging.getLogger("panopticon.peers")

LOCAL_HEADER = "X-Panopticon-Shard-Local"
SHARD_HEADER = "X-Panopticon-Shard"
_SHARD_KEY = web.RequestKey("panopticon_shard", str)
UNION_RESOURCES = frozenset({"metricfamilies", "objectmetrics", "clusterobjectmetrics", "prometheus"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- pure merging ----------------------------------------------------------------------------------


def merge_exposition(bodies: Sequence[bytes]) -> bytes:
    """Concatenate Prometheus text / OpenMetrics bodies family by family.

    A family is the ``# HELP``/``# TYPE``/``# UNIT`` lines naming it and the samples after them;
    the header comes from the first body that has the family, later bodies add their samples.
    Families keep the order of first appearance; OpenMetrics' ``# EOF`` is written once, last.
    A series that several bodies have (only an aggregate's group can be: every object lives in one
    shard, exporter/aggregates.py) is written once with the sum of their values, which is the
    aggregate over all shards (a count or a sum).
    """
    order: list[str] = []
    headers: dict[str, list[bytes]] = {}
    header_from: dict[str, int] = {}
    samples: dict[str, list[bytes]] = {}
    positions: dict[bytes, tuple[str, int]] = {}  # series (line without value) -> (family, index)
    eof = False
    for index, body in enumerate(bodies):
        current = ""
        for line in body.splitlines():
            if not line:
                continue
            if line == b"# EOF":
                eof = True
                continue
            if line.startswith((b"# HELP ", b"# TYPE ", b"# UNIT ")):
                parts = line.split(b" ", 3)
                current = parts[2].decode() if len(parts) > 2 else ""
                if current not in header_from:
                    header_from[current] = index
                    order.append(current)
                    headers[current], samples[current] = [], []
                if header_from[current] == index:
                    headers[current].append(line)
                continue
            if line.startswith(b"#"):
                continue
            if not current:  # samples before any header: a family of their own
                current = line.split(b"{", 1)[0].split(b" ", 1)[0].decode()
                if current not in header_from:
                    header_from[current] = index
                    order.append(current)
                    headers[current], samples[current] = [], []
            series, _, value = line.rpartition(b" ")
            seen = positions.get(series)
            if seen is not None and seen[0] == current:
                family, at = seen
                total = float(samples[family][at].rpartition(b" ")[2]) + float(value)
                samples[family][at] = series + b" " + format_value(total).encode()
                continue
            positions[series] = (current, len(samples[current]))
            samples[current].append(line)
    out = bytearray()
    for name in order:
        for line in headers[name]:
            out += line + b"\n"
        for line in samples[name]:
            out += line + b"\n"
    if eof:
        out += b"# EOF\n"
    return bytes(out)


def _key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _row_key(row: Mapping[str, Any]) -> tuple[str, str]:
    obj = row.get("object")
    if isinstance(obj, Mapping):
        return _key_of(obj)
    cells = row.get("cells") or [""]
    return ("", str(cells[0]))


def _sum_family(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for field in ("series", "objects"):
        merged[field] = int(a.get(field) or 0) + int(b.get(field) or 0)
    merged["lastUpdateTime"] = max(str(a.get("lastUpdateTime") or ""), str(b.get("lastUpdateTime") or ""))
    return merged


def _sum_family_row(a: dict[str, Any], b: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    cells = list(a.get("cells") or [])
    other = list(b.get("cells") or [])
    for index, column in enumerate(columns):
        if index >= len(cells) or index >= len(other):
            break
        if column in ("Series", "Objects"):
            cells[index] = int(cells[index] or 0) + int(other[index] or 0)
        elif column == "Updated":
            cells[index] = max(str(cells[index] or ""), str(other[index] or ""))
    merged = dict(a)
    merged["cells"] = cells
    if isinstance(a.get("object"), dict) and isinstance(b.get("object"), Mapping) and "series" in a["object"]:
        merged["object"] = _sum_family(a["object"], b["object"])
    return merged


def merge_lists(bodies: Sequence[Mapping[str, Any]], *, families: bool) -> dict[str, Any]:
    """One List / Table / PartialObjectMetadataList from one per shard (the first is ours).

    Items (rows) are keyed by (namespace, name) and sorted by it, as one replica lists them;
    metric families, present in every shard, are merged by name with their counts summed.
    """
    first = dict(bodies[0])
    is_table = first.get("kind") == "Table"
    field = "rows" if is_table else "items"
    columns = [str(c.get("name")) for c in first.get("columnDefinitions") or []]
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for body in bodies:
        for entry in body.get(field) or []:
            key = _row_key(entry) if is_table else _key_of(entry)
            if key in merged and families:
                merged[key] = (_sum_family_row(merged[key], entry, columns) if is_table
                               else _sum_family(merged[key], entry))
            else:
                merged.setdefault(key, dict(entry))
    first[field] = [merged[k] for k in sorted(merged)]
    meta = dict(first.get("metadata") or {})
    meta.pop("continue", None)
    meta.pop("remainingItemCount", None)
    first["metadata"] = meta
    return first


def page(body: dict[str, Any], *, limit: int | None, after: tuple[str, str] | None) -> dict[str, Any]:
    """Apply ``limit``/``continue`` to a merged (sorted) list; the token is the last key."""
    field = "rows" if body.get("kind") == "Table" else "items"
    entries = body.get(field) or []
    key = _row_key if field == "rows" else _key_of
    if after is not None:
        entries = [e for e in entries if key(e) > after]
    meta = dict(body.get("metadata") or {})
    if limit and len(entries) > limit:
        remaining = len(entries) - limit
        entries = entries[:limit]
        meta["continue"] = encode_continue(key(entries[-1]))
        if field == "items":
            meta["remainingItemCount"] = remaining
    return {**body, field: entries, "metadata": meta}


def encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"union": list(key)})).decode()


def decode_continue(token: str) -> tuple[str, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, name = data["union"]
        return (str(namespace), str(name))
    except (ValueError, KeyError, TypeError) as exc:
        raise StatusError(400, f"invalid continue token: {exc}", reason="BadRequest") from exc


# --- peers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    name: str  # the pod (EndpointSlice targetRef / hostname)
    host: str
    port: int


class PeerDirectory(Protocol):
    async def peers(self) -> list[Peer]: ...


class Lister(Protocol):
    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]: ...


def peers_of_slices(slices: Iterable[Mapping[str, Any]], *, port_name: str, own: str) -> list[Peer]:
    """Ready endpoints of EndpointSlices (discovery.k8s.io v1 or v1beta1) except the pod ``own``."""
    found: dict[tuple[str, int], Peer] = {}
    for item in slices:
        port = next((p.get("port") for p in item.get("ports") or [] if p.get("name") == port_name), None)
        if port is None:
            continue
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            name = str((endpoint.get("targetRef") or {}).get("name") or endpoint.get("hostname") or "")
            if own and name == own:
                continue
            for address in endpoint.get("addresses") or []:
                found.setdefault((str(address), int(port)), Peer(name, str(address), int(port)))
    return sorted(found.values(), key=lambda p: (p.name, p.host, p.port))


class EndpointSliceDirectory:
    """The peers behind the headless Service ``service`` in ``namespace``, cached ``ttl`` seconds."""

    def __init__(self, client: Lister, *, namespace: str, service: str, own: str,
                 port_name: str = "https", ttl: float = 2.0) -> None:
        self.client, self.namespace, self.service, self.own = client, namespace, service, own
        self.port_name, self.ttl = port_name, ttl
        self._cached: tuple[float, list[Peer]] | None = None
        self._version = "v1"

    async def peers(self) -> list[Peer]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.ttl:
            return self._cached[1]
        params = {"labelSelector": f"kubernetes.io/service-name={self.service}"}
        from kube.client import NotFound

        try:
            body = await self.client.get(self._path(), params=params)
        except NotFound:
            if self._version != "v1":
                raise
            self._version = "v1beta1"  # Kubernetes before 1.21
            body = await self.client.get(self._path(), params=params)
        peers = peers_of_slices(body.get("items") or [], port_name=self.port_name, own=self.own)
        self._cached = (now, peers)
        return peers

    def _path(self) -> str:
        return f"/apis/discovery.k8s.io/{self._version}/namespaces/{self.namespace}/endpointslices"


# --- the middleware --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnionOptions:
    self_host: str  # where this replica's own HTTPS server answers (loopback)
    self_port: int
    timeout: float = 5.0


class ShardUnion:
    """The middleware (see the module docstring).

    ``shards()`` is this replica's current (shard, total) (``--pod`` re-shards on scaling),
    ``token()`` the current ServiceAccount token, ``certificate_der()`` the serving certificate
    peers must present. This replica's own part is fetched like a peer's (over loopback, as
    ``X-Panopticon-Shard-Local``), so the handlers stay unaware of the union.
    """

    def __init__(self, options: UnionOptions, directory: PeerDirectory, *,
                 shards: Callable[[], tuple[int, int]], token: Callable[[], str],
                 certificate_der: Callable[[], bytes | None], request_info_key: Any) -> None:
        self.options, self.directory, self.shards, self.token = options, directory, shards, token
        self.certificate_der = certificate_der
        self.info_key = request_info_key
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def applies(self, request: web.Request) -> bool:
        info: RequestInfo | None = request.get(self.info_key)
        return (info is not None and info.is_resource and info.verb in ("get", "list")
                and info.resource in UNION_RESOURCES and not info.subresource)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        shard, total = self.shards()
        if total <= 1 or not self.applies(request):
            return await handler(request)
        if request.headers.get(LOCAL_HEADER):
            request[_SHARD_KEY] = f"{shard}/{total}"  # set on the response by ``on_prepare``
            return await handler(request)
        return await self._union(request, shard, total)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """``app.on_response_prepare``: name our shard before the headers go out (streamed
        responses send them inside the handler, so the middleware cannot add them afterwards)."""
        label = request.get(_SHARD_KEY)
        if label:
            response.headers[SHARD_HEADER] = label

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(self.on_prepare)

    async def _union(self, request: web.Request, shard: int, total: int) -> web.StreamResponse:
        info: RequestInfo = request[self.info_key]
        query = {k: v for k, v in request.query.items() if k not in ("limit", "continue")}
        own = Peer("", self.options.self_host, self.options.self_port)
        answers = await self._ask_all(own, request.path, query, request.headers.get("Accept"),
                                      shard=shard, total=total)
        statuses = [status for status, _h, _b in answers]
        if info.name and info.resource != "prometheus":
            found = [body for status, _h, body in answers if status == 200]
            if not found:
                status, _headers, body = answers[0]
                return web.Response(status=status, body=body, content_type="application/json")
            if info.resource != "metricfamilies":
                return web.Response(body=found[0], content_type="application/json")
            merged = orjson.loads(found[0])
            for other in found[1:]:
                doc = orjson.loads(other)
                merged = (_sum_family_row(merged, doc, []) if merged.get("kind") == "Table"
                          else _sum_family(merged, doc))
            return web.Response(body=orjson.dumps(merged), content_type="application/json")
        if any(status != 200 for status in statuses):  # e.g. 400 for a bad selector: same everywhere
            status, _headers, body = next(a for a in answers if a[0] != 200)
            return web.Response(status=status, body=body, content_type="application/json")
        bodies = [body for _s, _h, body in answers]
        if info.resource == "prometheus":
            return self._exposition(request, merge_exposition(bodies), answers[0][1])
        union = merge_lists([orjson.loads(b) for b in bodies], families=info.resource == "metricfamilies")
        token = request.query.get("continue")
        limit = request.query.get("limit")
        union = page(union, limit=int(limit) if limit and limit.isdigit() else None,
                     after=decode_continue(token) if token else None)
        return web.Response(body=orjson.dumps(union), content_type="application/json")

    def _exposition(self, request: web.Request, body: bytes, headers: Mapping[str, str]) -> web.Response:
        from exporter.exposition import gzip_accepted

        out = {"Vary": "Accept, Accept-Encoding", "Cache-Control": "no-store",
               "Content-Type": headers.get("Content-Type", "text/plain; version=0.0.4; charset=utf-8")}
        if gzip_accepted(request.headers.get("Accept-Encoding")):
            out["Content-Encoding"] = "gzip"
            body = gzip.compress(body, compresslevel=1)
        return web.Response(body=body, headers=out)

    async def _ask_all(self, own: Peer, path: str, query: Mapping[str, str], accept: str | None, *,
                       shard: int, total: int) -> list[tuple[int, Mapping[str, str], bytes]]:
        """Every shard's local answer (ours first), or a 503 naming the shards that did not answer."""
        wanted = set(range(total))
        timeout = self.options.timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            peers = [own, *await asyncio.wait_for(self.directory.peers(), timeout)]
        except TimeoutError:
            raise self._unavailable(wanted, total, [f"peer discovery took over {timeout:g}s"]) from None
        except Exception as exc:  # peer discovery itself failed (an API error)
            raise self._unavailable(wanted, total, [f"peer discovery failed: {exc}"]) from None
        tasks = {asyncio.ensure_future(self._ask(p, path, query, accept)): p for p in peers}
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
        problems: list[str] = []
        for task in pending:
            task.cancel()
            peer = tasks[task]
            problems.append(f"{peer.name or f'{peer.host}:{peer.port}'}: no answer within {timeout:g}s")
        by_shard: dict[int, tuple[int, Mapping[str, str], bytes]] = {}
        for task in done:
            peer = tasks[task]
            label = peer.name or f"{peer.host}:{peer.port}"
            error = task.exception()
            if error is not None:
                problems.append(f"{label}: {error or type(error).__name__}")
                continue
            status, headers, _body = task.result()
            got = _shard_of(headers.get(SHARD_HEADER, ""), total)
            if got is None:
                problems.append(f"{label}: status {status}, not shard k/{total}")
                continue
            by_shard.setdefault(got, task.result())
        missing = wanted - set(by_shard)
        if missing:
            raise self._unavailable(missing, total, problems)
        ours = by_shard.pop(shard, None)
        rest = [by_shard[s] for s in sorted(by_shard)]
        return [ours, *rest] if ours is not None else rest

    def _unavailable(self, missing: Iterable[int], total: int, problems: Sequence[str]) -> StatusError:
        shards = ", ".join(str(s) for s in sorted(missing))
        detail = f" ({'; '.join(problems)})" if problems else ""
        log.warning("union incomplete: shard(s) %s of %d did not answer%s", shards, total, detail)
        message = (f"incomplete answer: shard(s) {shards} of {total} did not answer "
                   f"within {self.options.timeout:g}s{detail}")
        return StatusError(503, message, reason="ServiceUnavailable")

    async def _ask(self, peer: Peer, path: str, query: Mapping[str, str],
                   accept: str | None) -> tuple[int, Mapping[str, str], bytes]:
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        expected = self.certificate_der()
        # Pinned: peers present the one serving certificate every replica mounts (its CA is not in
        # the pod); without a certificate file (development), the peer is not verified.
        tls: aiohttp.Fingerprint | ssl.SSLContext = (
            aiohttp.Fingerprint(hashlib.sha256(expected).digest()) if expected else _unverified_context()
        )
        headers = {"Authorization": f"Bearer {self.token()}", LOCAL_HEADER: "1",
                   "Accept-Encoding": "identity"}
        if accept:
            headers["Accept"] = accept
        host = f"[{peer.host}]" if ":" in peer.host else peer.host
        url = f"https://{host}:{peer.port}{path}"
        try:
            async with session.get(url, params=dict(query), headers=headers, ssl=tls) as resp:
                body = await resp.read()
                return resp.status, {k: v for k, v in resp.headers.items()}, body
        except aiohttp.ServerFingerprintMismatch:
            raise ConnectionError("the peer does not present our serving certificate") from None


def _shard_of(value: str, total: int) -> int | None:
    shard, _, of = value.partition("/")
    if not shard.isdigit() or of != str(total) or int(shard) >= total:
        return None
    return int(shard)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# --- wiring ----------------------------------------------------------------------------------------


def _file_token(config: Any) -> Callable[[], str]:
    def token() -> str:
        if getattr(config, "token_file", None):
            with open(config.token_file) as handle:
                return handle.read().strip()
        return str(getattr(config, "token", "") or "")

    return token


def _certificate(path: str | None) -> Callable[[], bytes | None]:
    def der() -> bytes | None:
        if not path:
            return None
        with open(path) as handle:
            pem = handle.read()
        end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
        return ssl.PEM_cert_to_DER_cert(pem[:end])

    return der


def union_from_args(args: Any, *, client: Any, shards: Callable[[], tuple[int, int]],
                    request_info_key: Any) -> ShardUnion | None:
    """The ``ShardUnion`` for ``serve`` flags, or None without ``--peer-service``."""
    service = getattr(args, "peer_service", "")
    if not service or client is None:
        return None
    config = client.config
    own = getattr(args, "pod", "") or os.environ.get("HOSTNAME", "")  # the pod's name
    namespace = getattr(args, "pod_namespace", "") or config.namespace
    directory = EndpointSliceDirectory(client, namespace=namespace, service=service, own=own,
                                       ttl=args.peer_cache_seconds)
    host = args.bind_address if args.bind_address not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return ShardUnion(UnionOptions(self_host=host, self_port=args.secure_port, timeout=args.peer_timeout),
                      directory, shards=shards, token=_file_token(config),
                      certificate_der=_certificate(args.tls_cert_file), request_info_key=request_info_key)
