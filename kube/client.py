"""A small raw-JSON REST client for the kube-apiserver (aiohttp + orjson).

Every call returns decoded JSON (plain dicts and lists, never model objects), raises ``ApiError``
(the server's ``metav1.Status``) on HTTP >= 400 and has a timeout. The codes callers act on
raise typed subclasses (``NotFound``, ``Conflict``, ``Forbidden``, ``Gone``, ``Invalid``,
``TooManyRequests``, ...), so no caller compares status codes or searches messages. ``watch`` streams the raw
events of one watch request, including ``BOOKMARK`` and ``ERROR``; reconnecting, re-listing and
back-off are the informer's job (``kube.informer``), not the client's.

Watch bodies are split into lines by ``LineSplitter`` rather than ``StreamReader.readline``:
aiohttp's readline refuses lines longer than its buffer, and one watch event carries a whole
object, which can be many megabytes (a large ConfigMap or CRD).

``list_stream`` is the LIST an informer makes: items are decoded one by one while the body
arrives (``kube.liststream.ListSplitter``), so the caller can use and drop each object at once
instead of holding the whole list; ``list`` collects the same stream into a list.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self, cast

import aiohttp
import orjson

from kube.config import ClientConfig
from kube.earlylist import EarlyListUnused, take_early_list
from kube.liststream import ListSplitter
from kube.tls import build_ssl_context

TOKEN_REREAD_SECONDS = 60.0  # projected service-account tokens rotate; kubelet refreshes at 80% of TTL

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ApiError(Exception):
    """An error answer of the API server, carrying its ``metav1.Status``.

    The status codes callers act on have their own subclass (``NotFound``, ``Conflict``, ...);
    ``ApiError(status, ...)`` builds the subclass of ``status`` (the base class for any other
    code), so callers and test fakes never compare codes: ``except NotFound``. This is the one
    place that maps codes to types.
    """

    code: ClassVar[int | None] = None

    def __new__(cls, status: int, *args: Any, **kwargs: Any) -> Self:
        klass = _BY_CODE.get(int(status), cls) if cls is ApiError else cls
        return cast(Self, super().__new__(klass))

    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body: dict[str, Any] = body or {}

    @classmethod
    def from_status(cls, status_obj: Mapping[str, Any], *, http_status: int | None = None) -> ApiError:
        """From a ``metav1.Status`` object (an HTTP error body or a watch ``ERROR`` event)."""
        code = status_obj.get("code") or http_status or 500
        return ApiError(
            int(code),
            str(status_obj.get("reason") or ""),
            str(status_obj.get("message") or ""),
            dict(status_obj),
        )

    @classmethod
    def from_body(cls, http_status: int, raw: bytes) -> ApiError:
        try:
            decoded = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            return cls.from_status(decoded, http_status=http_status)
        text = raw[:500].decode("utf-8", "replace")
        return ApiError(http_status, "", text, {"message": text, "code": http_status})


# The codes callers act on. ``code`` is set from ``_BY_CODE`` below.
class Unauthorized(ApiError): ...  # 401: credentials refused (a stale or wrong token, an unknown cert)
class Forbidden(ApiError): ...  # 403: authenticated, but RBAC does not allow the request
class NotFound(ApiError): ...  # 404: no such object, or the group/version/resource is not served
class Conflict(ApiError): ...  # 409: AlreadyExists on create, a stale resourceVersion or precondition
class Gone(ApiError): ...  # 410: resourceVersion (or a list's continue token) older than kept
class Invalid(ApiError):  # 422: the object fails validation (immutable fields included)
    # What kube-apiserver answers (1.20 and later) when an apply changes a StatefulSet field other
    # than replicas, template, updateStrategy (and, later, minReadySeconds, PVC retention policy).
    _STS_IMMUTABLE = "updates to statefulset spec for fields other than"

    @property
    def statefulset_spec_immutable(self) -> bool:
        """True only for the 422 a StatefulSet re-creation fixes (an immutable spec field changed)."""
        causes = (self.body.get("details") or {}).get("causes") or []
        for cause in causes:
            if cause.get("field") == "spec" and self._STS_IMMUTABLE in str(cause.get("message", "")):
                return True
        return not causes and self._STS_IMMUTABLE in self.message


class TooManyRequests(ApiError): ...  # 429: throttled (priority and fairness, eviction budget)
class ServiceUnavailable(ApiError): ...  # 503: e.g. an aggregated API whose backend is down


_BY_CODE: dict[int, type[ApiError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone, 422: Invalid,
    429: TooManyRequests, 503: ServiceUnavailable,
}
for _code, _klass in _BY_CODE.items():
    _klass.code = _code


class LineSplitter:
    """Splits a byte stream into newline-terminated lines of any length."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf
        if not buf and chunk.endswith(b"\n"):
            # Fast path: most chunks hold whole lines; avoid copying them through the buffer.
            return [line for line in chunk.split(b"\n") if line.strip()]
        buf += chunk
        last = buf.rfind(b"\n")
        if last < 0:
            return []
        lines = [line for line in bytes(buf[:last]).split(b"\n") if line.strip()]
        del buf[: last + 1]
        return lines

    def rest(self) -> bytes:
        """Bytes after the last newline (a final event a server sent without a newline)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


class KubeClient:
    """Authenticated raw-JSON access to one API server (one connection pool)."""

    def __init__(
        self, config: ClientConfig, *, user_agent: str = "panopticon", timeout: float = 30.0
    ) -> None:
        self.config = config
        self._server = config.server.rstrip("/")
        self._timeout = timeout
        self._ssl = build_ssl_context(config)
        self._user_agent = user_agent
        self._token = config.token
        self._token_read_at = 0.0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        # Created lazily so the client can be constructed outside a running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=100)
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(), read_bufsize=2**20
            )
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        token = self._current_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _current_token(self) -> str | None:
        path = self.config.token_file
        if path and (self._token is None or time.monotonic() - self._token_read_at > TOKEN_REREAD_SECONDS):
            try:
                with open(path, encoding="utf-8") as fh:
                    self._token = fh.read().strip()
                self._token_read_at = time.monotonic()
            except OSError:
                pass  # keep the previous token; the request will say 401 if it is stale
        return self._token

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (``None`` when empty). ``ApiError`` on >= 400."""
        data = body
        if json is not None:
            data = orjson.dumps(json)
            content_type = content_type or "application/json"
        async with self._client_session().request(
            method,
            self._server + path,
            params=_query(params),
            data=data,
            headers=self._headers(content_type),
            timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise ApiError.from_body(resp.status, raw)
            return orjson.loads(raw) if raw else None

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", path, params=params)
        return result

    async def list(
        self, path: str, *, params: Mapping[str, Any] | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """All items of a collection, fetched ``limit`` at a time; and the list's resourceVersion.

        ``limit=0`` asks for everything in one answer (what the watch cache serves anyway).

        Every page of one paginated list is served from the same snapshot, so the first page's
        resourceVersion is the list's. When a continue token expires (410) the list starts over.
        """
        for _attempt in range(3):
            stream = self.list_stream(path, params=params, limit=limit)
            items: list[dict[str, Any]] = []
            try:
                async for item in stream:
                    items.append(item)
            except Gone:
                if not stream.continued:
                    raise
                continue
            return items, stream.resource_version
        raise Gone(410, "Expired", f"list of {path}: continue token kept expiring")

    def list_stream(
        self, path: str, *, params: Mapping[str, Any] | None = None, limit: int = 500
    ) -> ListStream:
        """The items of a collection (every page), each decoded as soon as its bytes arrived.

        Iterate it once; afterwards ``resource_version`` is the list's. Unlike ``list`` it does
        not start over when a continue token expires (the caller has seen items already): that
        410 is raised, with ``continued`` True.
        """
        return ListStream(self, path, params=params, limit=limit)

    async def _stream_page(
        self, path: str, query: Mapping[str, Any], splitter: ListSplitter
    ) -> AsyncGenerator[Iterator[dict[str, Any]], None]:
        """The items of one LIST request as they decode, one batch (``splitter.feed``, a lazy
        iterator: consume it before the next) per chunk; the splitter keeps the envelope."""
        # No overall deadline (a large list takes as long as it takes to render); a stalled
        # connection is still noticed by the read timeout.
        headers = self._headers()
        early = take_early_list(self._server, path, _query(query), headers)
        if early is not None:  # the same request, sent at start-up (kube.earlylist)
            try:
                async for chunk in early.chunks():
                    yield splitter.feed(chunk)
                return
            except EarlyListUnused:
                pass  # it failed before its first byte: send it again
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        async with self._client_session().get(
            self._server + path, params=_query(query), headers=headers, timeout=timeout
        ) as resp:
            if resp.status >= 400:
                raise ApiError.from_body(resp.status, await resp.read())
            async for chunk in resp.content.iter_any():
                yield splitter.feed(chunk)

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", path, json=obj)
        return result

    async def apply(
        self,
        path: str,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = True,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply (``obj`` as JSON, which is valid YAML) at an object path."""
        params: dict[str, Any] = {"fieldManager": field_manager, "force": force}
        if dry_run:
            params["dryRun"] = "All"
        result: dict[str, Any] = await self.request(
            "PATCH", path, params=params, body=orjson.dumps(obj), content_type=PATCH_CONTENT_TYPES["apply"]
        )
        return result

    async def patch(self, path: str, patch: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        if patch_type not in ("merge", "json", "strategic"):
            raise ValueError(f"patch_type must be merge, json or strategic, not {patch_type!r}")
        result: dict[str, Any] = await self.request(
            "PATCH", path, body=orjson.dumps(patch), content_type=PATCH_CONTENT_TYPES[patch_type]
        )
        return result

    async def delete(
        self,
        path: str,
        *,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Delete an object; ``None`` when it was already gone (404)."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        try:
            result: dict[str, Any] | None = await self.request("DELETE", path, json=options)
        except NotFound:
            return None
        return result

    async def watch(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        resource_version: str,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Raw ``(type, object)`` events of one watch request, until the server ends it.

        ``timeoutSeconds`` asks the server to end the watch; the client's read timeout is a
        margin above it, so a silently dead connection is noticed too. An HTTP error (e.g. 410
        when ``resource_version`` is too old) raises ``ApiError``; ``ERROR`` events are yielded.
        """
        query = _query(params)
        query.update(
            watch="true",
            resourceVersion=resource_version,
            timeoutSeconds=str(timeout_seconds),
            allowWatchBookmarks="true" if allow_bookmarks else "false",
        )
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout, sock_read=timeout_seconds + self._timeout
        )
        async with self._client_session().get(
            self._server + path, params=query, headers=self._headers(), timeout=timeout
        ) as resp:
            if resp.status >= 400:
                raise ApiError.from_body(resp.status, await resp.read())
            splitter = LineSplitter()
            async for chunk in resp.content.iter_any():
                for line in splitter.feed(chunk):
                    event = orjson.loads(line)
                    yield event["type"], event["object"]
            rest = splitter.rest()
            if rest.strip():
                event = orjson.loads(rest)
                yield event["type"], event["object"]


class ListStream:
    """One (possibly paginated) LIST as an async iterator of items; see ``KubeClient.list_stream``."""

    def __init__(
        self, client: KubeClient, path: str, *, params: Mapping[str, Any] | None, limit: int
    ) -> None:
        self._client = client
        self._path = path
        self._params = dict(params or {})
        self._limit = limit
        self.resource_version = ""
        self.continued = False  # a later page was being read (its 410 cannot be retried in place)
        self.items = 0

    def __aiter__(self) -> AsyncGenerator[dict[str, Any], None]:
        return self._items()

    async def _items(self) -> AsyncGenerator[dict[str, Any], None]:
        async for batch in self.batches():
            for item in batch:
                yield item

    async def batches(self) -> AsyncGenerator[Iterable[dict[str, Any]], None]:
        """The items a batch at a time (``ItemStream.batches``); ``items`` counts them per page."""
        query = dict(self._params)
        if self._limit > 0:
            query["limit"] = self._limit
        counted = self.items
        while True:
            splitter = ListSplitter()
            async for batch in self._client._stream_page(self._path, query, splitter):
                yield batch
                self.items = counted + splitter.items
            rest, envelope = splitter.close()
            self.items = counted = counted + splitter.items
            if rest:
                yield rest
            meta = envelope.get("metadata") or {}
            self.resource_version = self.resource_version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return
            query["continue"] = token
            self.continued = True
