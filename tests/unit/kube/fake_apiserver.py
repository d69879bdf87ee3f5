"""A small in-process fake of the kube-apiserver's list/watch protocol, for unit tests.

It keeps objects per resource collection with a global resourceVersion counter and an event
log, serves paginated LISTs (``limit``/``continue``), WATCH streams (NDJSON, bookmarks,
``timeoutSeconds``), answers 410 Gone for resourceVersions older than the last ``compact()``
(as an HTTP status or as an ERROR event, like the real server's two paths), and can cut all
open watch connections (``kill_watches``). Also create/patch/delete/get for the client tests.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import orjson
from aiohttp import web

PATH = re.compile(
    r"^(?P<gv>/api/v1|/apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?"
    r"(?:/(?P<sub>status))?$"
)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}


class FakeApiServer:
    def __init__(self) -> None:
        self.rv = 100
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self.log: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        self.compacted = 0
        self.gone_as_event = True
        self.changed = asyncio.Condition()
        self.watch_responses: set[web.StreamResponse] = set()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.peers: list[Any] = []  # the client's address of each request (connection reuse)
        self.list_count = 0
        self.watch_count = 0
        self.fail_next: list[int] = []  # HTTP statuses to answer the next requests with
        self.discovery: dict[str, dict[str, Any]] = {}  # path -> APIResourceList / APIGroup
        self.forbidden: set[str] = set()  # collection paths answered with 403
        self.site: web.TCPSite | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    # ---- state changes -------------------------------------------------------------------------
    def _key(self, gv: str, res: str) -> str:
        return f"{gv}/{res}"

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    async def _record(self, key: str, typ: str, obj: dict[str, Any]) -> None:
        self.log.setdefault(key, []).append((int(obj["metadata"]["resourceVersion"]), typ, obj))
        async with self.changed:
            self.changed.notify_all()

    async def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace ``obj`` in ``collection`` (e.g. "/api/v1/configmaps")."""
        meta = obj.setdefault("metadata", {})
        ns, name = meta.get("namespace", ""), meta["name"]
        store = self.objects.setdefault(collection, {})
        old = store.get((ns, name))
        meta["uid"] = old["metadata"]["uid"] if old else meta.get("uid") or str(uuid.uuid4())
        meta["resourceVersion"] = str(self._next_rv())
        meta.setdefault("generation", 1)
        if old and old.get("spec") != obj.get("spec"):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        store[(ns, name)] = obj
        await self._record(collection, "MODIFIED" if old else "ADDED", obj)
        return obj

    async def remove(self, collection: str, ns: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(collection, {}).pop((ns, name), None)
        if obj is None:
            return None
        obj = orjson.loads(orjson.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        await self._record(collection, "DELETED", obj)
        return obj

    def compact(self) -> None:
        """Forget history: watches from any older resourceVersion now get 410 Gone."""
        self.compacted = self.rv
        for key in self.log:
            self.log[key] = []

    async def kill_watches(self) -> None:
        for resp in list(self.watch_responses):
            transport = resp._req.transport if resp._req is not None else None
            if transport is not None:
                transport.abort()
        self.watch_responses.clear()

    # ---- HTTP ----------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await self.site.start()
        port = self.site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        await self.kill_watches()
        if self.runner is not None:
            await self.runner.cleanup()

    def _json(self, code: int, body: Any) -> web.Response:
        return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if self.fail_next:
            code = self.fail_next.pop(0)
            return self._json(code, status(code, "InternalError", "injected failure"))
        if request.path in self.forbidden:
            return self._json(403, status(403, "Forbidden", f"cannot list {request.path}"))
        if request.method == "GET" and request.path in self.discovery:
            return self._json(200, self.discovery[request.path])
        m = PATH.match(request.path)
        if not m:
            return self._json(404, status(404, "NotFound", f"no route {request.path}"))
        collection = self._key(m["gv"], m["res"])
        ns, name = m["ns"] or "", m["name"]
        store = self.objects.setdefault(collection, {})
        if request.method == "GET" and name is None:
            if request.query.get("watch") == "true":
                return await self._watch(request, collection, ns)
            return self._list(request, collection, ns)
        if request.method == "GET":
            obj = store.get((ns, name))
            if obj is None:
                return self._json(404, status(404, "NotFound", f'"{name}" not found'))
            return self._json(200, obj)
        if request.method == "POST":
            obj = orjson.loads(await request.read())
            obj.setdefault("metadata", {})["namespace"] = ns or obj["metadata"].get("namespace", "")
            if (ns, obj["metadata"]["name"]) in store:
                return self._json(409, status(409, "AlreadyExists", "already exists"))
            return self._json(201, await self.put(collection, obj))
        if request.method == "PATCH":
            obj = store.get((ns, name or ""))
            patch = orjson.loads(await request.read())
            ct = request.content_type
            if ct == "application/apply-patch+yaml":
                merged = patch if obj is None else {**obj, **patch, "metadata": {**obj["metadata"],
                                                                                 **patch.get("metadata", {})}}
                merged["metadata"]["namespace"] = ns
                if request.query.get("dryRun") == "All":
                    return self._json(200, merged)
                return self._json(200, await self.put(collection, merged))
            if obj is None:
                return self._json(404, status(404, "NotFound", f'"{name}" not found'))
            if ct != "application/merge-patch+json":
                return self._json(415, status(415, "UnsupportedMediaType", ct))
            merged = orjson.loads(orjson.dumps(obj))
            for k, v in patch.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k].update(v)
                else:
                    merged[k] = v
            return self._json(200, await self.put(collection, merged))
        if request.method == "DELETE":
            removed = await self.remove(collection, ns, name or "")
            if removed is None:
                return self._json(404, status(404, "NotFound", f'"{name}" not found'))
            return self._json(200, removed)
        return self._json(405, status(405, "MethodNotAllowed", request.method))

    def _selected(self, collection: str, ns: str, request: web.Request) -> list[dict[str, Any]]:
        items = [o for (ons, _), o in sorted(self.objects.get(collection, {}).items()) if not ns or ons == ns]
        selector = request.query.get("labelSelector")
        if selector:
            wanted = dict(part.split("=", 1) for part in selector.split(","))
            items = [o for o in items if all((o["metadata"].get("labels") or {}).get(k) == v
                                              for k, v in wanted.items())]
        return items

    def _list(self, request: web.Request, collection: str, ns: str) -> web.Response:
        self.list_count += 1
        items = self._selected(collection, ns, request)
        limit = int(request.query.get("limit", "0") or 0)
        start = int(request.query.get("continue", "0") or 0)
        page = items[start : start + limit] if limit else items[start:]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
        return self._json(200, {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": page})

    async def _watch(self, request: web.Request, collection: str, ns: str) -> web.StreamResponse:
        self.watch_count += 1
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds", "300"))
        if since < self.compacted and not self.gone_as_event:
            return self._json(410, status(410, "Expired", f"too old resource version: {since}"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        self.watch_responses.add(resp)
        try:
            if since < self.compacted:
                await resp.write(orjson.dumps({"type": "ERROR", "object": status(
                    410, "Expired", f"too old resource version: {since}")}) + b"\n")
                return resp
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            sent = since
            while loop.time() < deadline:
                current = self.rv
                for rv, typ, obj in list(self.log.get(collection, [])):
                    if sent < rv <= current and (not ns or obj["metadata"].get("namespace") == ns):
                        await resp.write(orjson.dumps({"type": typ, "object": obj}) + b"\n")
                sent = max(sent, current)
                if self.rv > sent:
                    continue
                async with self.changed:
                    try:
                        await asyncio.wait_for(self.changed.wait(), timeout=min(0.5, deadline - loop.time()))
                    except (TimeoutError, ValueError):
                        if request.query.get("allowWatchBookmarks") == "true" and self.rv == sent:
                            await resp.write(orjson.dumps({"type": "BOOKMARK", "object": {
                                "kind": "ConfigMap", "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(sent)}}}) + b"\n")
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self.watch_responses.discard(resp)
        return resp
