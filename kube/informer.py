"""A raw list/watch informer for one resource collection, and a registry that shares them.

Flow: LIST (the first from the API server's watch cache, see ``_list_batches``) -> WATCH from
the list's resourceVersion (bookmarks on) -> on the server's timeout WATCH again from the last
seen resourceVersion -> on a broken connection back off and WATCH again -> on 410 Gone (HTTP
status or ERROR event) a consistent paginated LIST and hand the handlers the exact difference
to what they were told before: ``ADDED`` for new objects, ``MODIFIED`` for a changed
resourceVersion, ``DELETED`` for objects that vanished while we were not watching.

The informer never keeps objects: per UID it remembers namespace, name and resourceVersion,
which is all the difference needs. Nor does it hold a LIST: the answer is decoded item by item
as it arrives (``KubeClient.list_stream``) and each object is handed on at once, so receiving,
decoding and the consumers' work overlap and only one object is alive at a time.
``DELETED`` events from a re-list carry a stub object with just that metadata. Handlers are
synchronous callables ``(event_type, raw_object)``; an exception in one handler is logged and
never stops the informer. A handler may come with a ``replay``: it then receives its first view
of the collection through it (the complete current set, so a consumer can swap its state
atomically) instead of one ``ADDED`` event per object; a ``ReplayStream`` gets it object by
object while the LIST decodes, a plain callable as one list.

Sharing (``InformerRegistry``): consumers of the same ``WatchTarget`` share one informer,
reference counted. A consumer that joins a running informer needs the current objects, which
the informer does not keep; it therefore asks the informer to LIST again. That LIST is applied
inside the informer's own task, serialized with the watch, and gives the new handler every
object as ``ADDED`` while the existing handlers only get the (usually empty) difference. This
costs one LIST per joining consumer, which is rare (a new configuration for an already watched
kind) and avoids both a per-consumer object cache and the race of a side LIST racing the watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from kube.api import ItemStream, Lister, ListStreamer, ListWatcher
from kube.backoff import Backoff
from kube.client import ApiError, Forbidden, Gone, NotFound, Unauthorized
from kube.paths import resource_path
from kube.telemetry import InformerTelemetry, NullTelemetry

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]
Replay = Callable[[list[dict[str, Any]]], None]


@runtime_checkable
class ReplayStream(Protocol):
    """A consumer's first view of the collection, one object at a time (see ``add_handler``).

    ``item`` for every current object while the LIST streams in, then ``done``; ``abort``
    when that LIST failed part-way (forget this attempt's items: the informer lists again and
    replays from the start).
    """

    def item(self, obj: dict[str, Any]) -> None: ...

    def done(self) -> None: ...

    def abort(self) -> None: ...


class _CollectedReplay:
    """A ``Replay`` callable behind the streaming interface: the complete list, once."""

    def __init__(self, replay: Replay) -> None:
        self._replay = replay
        self._items: list[dict[str, Any]] = []

    def item(self, obj: dict[str, Any]) -> None:
        self._items.append(obj)

    def done(self) -> None:
        items, self._items = self._items, []
        self._replay(items)

    def abort(self) -> None:
        self._items = []


def _added_events(handler: Handler) -> _CollectedReplay:
    """No replay: the joining handler gets an ``ADDED`` event per object once the LIST is complete."""

    def replay(items: list[dict[str, Any]]) -> None:
        for obj in items:
            handler("ADDED", obj)

    return _CollectedReplay(replay)


class _ListedItems:
    """A client with only ``list`` (test fakes) behind the streaming interface."""

    def __init__(self, client: Lister, path: str, *, params: dict[str, str], limit: int) -> None:
        self._client, self._path, self._params, self._limit = client, path, params, limit
        self.resource_version = ""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._items()

    async def _items(self) -> AsyncGenerator[dict[str, Any], None]:
        async for batch in self.batches():
            for obj in batch:
                yield obj

    async def batches(self) -> AsyncGenerator[Iterable[dict[str, Any]], None]:
        items, self.resource_version = await self._client.list(self._path, params=self._params,
                                                               limit=self._limit)
        yield items


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """One collection to list/watch: a group/version/resource, optionally one namespace."""

    group: str
    version: str
    resource: str
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""

    @property
    def path(self) -> str:
        return resource_path(
            group=self.group, version=self.version, resource=self.resource, namespace=self.namespace
        )

    @property
    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        return params

    def __str__(self) -> str:
        gr = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{gr}/{self.version}{where}"


class Known(NamedTuple):
    namespace: str
    name: str
    resource_version: str


class _Gone(Exception):
    """The watch's resourceVersion is too old: re-list."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def list_difference(
    known: Mapping[str, Known], items: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(added, modified, deleted stubs) that turn ``known`` into the listed ``items``."""
    added: list[dict[str, Any]] = []
    modified: list[dict[str, Any]] = []
    seen: set[str] = set()
    for obj in items:
        meta = _meta(obj)
        uid = str(meta.get("uid", ""))
        seen.add(uid)
        before = known.get(uid)
        if before is None:
            added.append(obj)
        elif before.resource_version != str(meta.get("resourceVersion", "")):
            modified.append(obj)
    deleted = [deleted_stub(uid, k) for uid, k in known.items() if uid not in seen]
    return added, modified, deleted


def deleted_stub(uid: str, known: Known) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": uid,
            "namespace": known.namespace,
            "name": known.name,
            "resourceVersion": known.resource_version,
        }
    }


class Informer:
    """List/watch one ``WatchTarget`` and tell handlers about every change."""

    def __init__(
        self,
        client: ListWatcher,
        target: WatchTarget,
        *,
        page_size: int = 500,
        watch_timeout: int = 300,
        backoff: Backoff | None = None,
        telemetry: InformerTelemetry | None = None,
        keep: Callable[[str], bool] | None = None,
        use_watch_cache: bool = True,
    ) -> None:
        """``keep(uid)`` drops objects this process does not own (sharding) before any handler."""
        self.target = target
        self._client = client
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._backoff = backoff or Backoff()
        self._telemetry: InformerTelemetry = telemetry or NullTelemetry()
        self._keep = keep
        self._handlers: list[Handler] = []
        self._joining: list[Handler] = []
        self._replays: dict[Handler, Replay | ReplayStream] = {}
        self._listed_rv = ""
        self._known: dict[str, Known] = {}
        self._synced = asyncio.Event()
        self._relist = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._label = str(target)
        self.last_error: str = ""
        self.last_exception: Exception | None = None  # what ``last_error`` describes
        self.resource_version = ""
        self._use_watch_cache = use_watch_cache
        self._gone = False

    # ---- consumers -----------------------------------------------------------------------------
    def add_handler(self, handler: Handler, *, replay: Replay | ReplayStream | None = None) -> None:
        """Register a handler: it first gets every current object, then every change.

        The first view comes through ``replay``: a ``ReplayStream`` gets each object as the
        LIST decodes it; a plain callable the complete list at once; without one, the handler
        gets an ``ADDED`` event per object.
        """
        if replay is not None:
            self._replays[handler] = replay
        self._joining.append(handler)
        if self._task is not None:
            self._relist.set()

    def remove_handler(self, handler: Handler) -> None:
        self._replays.pop(handler, None)
        for group in (self._handlers, self._joining):
            if handler in group:
                group.remove(handler)

    @property
    def has_synced(self) -> bool:
        """True once the first LIST was delivered (and no consumer is waiting for its replay)."""
        return self._synced.is_set() and not self._joining

    async def wait_synced(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def keys(self) -> dict[str, Known]:
        """UID -> (namespace, name, resourceVersion) of every object handlers were told about."""
        return dict(self._known)

    def __len__(self) -> int:
        return len(self._known)

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self._label}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch_until_relist()
                need_list = True  # a consumer joined, or the watch said 410
                continue
            except asyncio.CancelledError:
                raise
            except _Gone:
                self._gone = True
                self._telemetry.relist_gone(self._label)
                log.info("%s: resourceVersion %s expired, re-listing", self._label, self.resource_version)
                need_list = True
                # no delay: 410 is an answer, not a failure; the LIST itself backs off on errors
                continue
            except Exception as err:  # network errors, timeouts, 5xx, a broken stream
                self.last_error = f"{type(err).__name__}: {err}"
                self.last_exception = err
                delay = self._backoff.next_delay()
                log.warning("%s: %s; retrying in %.1fs", self._label, self.last_error, delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        """LIST and tell everybody: each object is handed on as soon as it is decoded.

        Existing handlers get ``ADDED``/``MODIFIED`` for what differs from what they were told
        (as the items stream in) and ``DELETED`` stubs for what is gone (at the end); joining
        consumers get every object through their replay and are then added to the handlers.
        Nothing of the list is kept here but the (namespace, name, resourceVersion) per UID.
        """
        joining, self._joining = self._joining, []
        self._relist.clear()
        started = time.perf_counter()
        replays = [self._replay_stream(handler) for handler in joining]
        seen: set[str] = set()
        changed = 0
        known, keep, handlers = self._known, self._keep, self._handlers
        try:
            async for batch in self._list_batches():
                for obj in batch:
                    meta = obj.get("metadata")
                    if not isinstance(meta, dict):
                        meta = {}
                    uid = str(meta.get("uid") or "")
                    if keep is not None and not keep(uid):
                        continue
                    seen.add(uid)
                    rv = str(meta.get("resourceVersion") or "")
                    before = known.get(uid)
                    if before is None or before[2] != rv:
                        namespace = sys.intern(str(meta.get("namespace") or ""))  # shared, not one per object
                        known[uid] = Known(namespace, str(meta.get("name") or ""), rv)
                        changed += 1
                        if handlers:
                            self._dispatch(handlers, "ADDED" if before is None else "MODIFIED", obj)
                    for replay in replays:
                        try:  # _replay_call, inlined: once per object and consumer
                            replay.item(obj)
                        except Exception:
                            log.exception("%s: replay %r failed", self._label, replay.item)
        except BaseException:
            for replay in replays:
                self._replay_call(replay.abort)
            self._joining = joining + self._joining  # they still wait for their replay
            self._telemetry.list_done(self._label, ok=False)
            raise
        self._telemetry.list_done(self._label, ok=True)
        rv = self._listed_rv
        log.debug("%s: listed %d objects at resourceVersion %s in %.2fs", self._label, len(seen), rv,
                  time.perf_counter() - started)
        gone = [uid for uid in known if uid not in seen]
        del seen
        for uid in gone:
            stub = deleted_stub(uid, known.pop(uid))
            self._dispatch(handlers, "DELETED", stub)
        for handler, replay in zip(joining, replays, strict=True):
            self._replay_call(replay.done)
            handlers.append(handler)
        self._telemetry.events(self._label, "relist", changed + len(gone))
        self._telemetry.objects(self._label, len(known))
        self.resource_version = rv
        self.last_error = ""
        self.last_exception = None
        self._backoff.reset()
        self._synced.set()

    def _replay_stream(self, handler: Handler) -> ReplayStream:
        replay = self._replays.get(handler)
        if replay is None:
            return _added_events(handler)
        if isinstance(replay, ReplayStream):
            return replay
        return _CollectedReplay(replay)

    def _replay_call(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("%s: replay %r failed", self._label, method)

    async def _list_batches(self) -> AsyncGenerator[Iterable[dict[str, Any]], None]:
        """The objects of one LIST, a batch at a time (``ItemStream.batches``), from the API
        server's watch cache when that cannot go back in time.

        As client-go's reflector: the first LIST asks for ``resourceVersion=0`` (any cached
        state, one unpaginated answer from memory instead of paginated etcd reads: about 3x
        faster for 10,000 objects); a LIST for a joining consumer asks for at least the
        version already delivered (also from the cache); after 410 Gone, and when the cache
        refuses, a consistent paginated LIST from etcd. Sets ``_listed_rv`` when done.
        """
        self._listed_rv = ""
        if self._use_watch_cache and not self._gone:
            params = dict(self.target.params)
            params["resourceVersion"] = self.resource_version or "0"
            yielded = False
            try:
                stream = self._stream(params, limit=0)
                async for batch in stream.batches():
                    yielded = True
                    yield batch
                self._listed_rv = stream.resource_version
                return
            except (Unauthorized, Forbidden, NotFound):
                raise  # a consistent LIST would fail the same way
            except ApiError:
                # 410: older than the cache holds; 504: "too large resource version" (a cache
                # behind what we saw, e.g. another API server instance). A consistent LIST
                # answers both. An error after objects were handed on is the informer's to retry
                # (an answer's status comes before its first batch).
                if yielded:
                    raise
        self._gone = False
        stream = self._stream(dict(self.target.params), limit=self._page_size)
        async for batch in stream.batches():
            yield batch
        self._listed_rv = stream.resource_version

    def _stream(self, params: dict[str, str], *, limit: int) -> ItemStream:
        client = self._client
        if isinstance(client, ListStreamer):
            return client.list_stream(self.target.path, params=params, limit=limit)
        return _ListedItems(client, self.target.path, params=params, limit=limit)

    async def _watch_until_relist(self) -> None:
        """Watch (re-watching after server timeouts) until a consumer joins; raise on 410/errors."""
        while not self._relist.is_set():
            watch = asyncio.create_task(self._watch_once())
            relist = asyncio.create_task(self._relist.wait())
            try:
                await asyncio.wait({watch, relist}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (watch, relist):
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            if watch.done() and not watch.cancelled():
                watch.result()  # re-raises _Gone and connection errors

    async def _watch_once(self) -> None:
        ok = False
        try:
            stream = self._client.watch(
                self.target.path,
                params=self.target.params,
                resource_version=self.resource_version,
                timeout_seconds=self._watch_timeout,
            )
            async with contextlib.aclosing(stream) as events:
                async for event_type, obj in events:
                    self._handle_event(event_type, obj)
            ok = True
            self._backoff.reset()
        except Gone as err:
            ok = True
            raise _Gone from err
        finally:
            self._telemetry.watch_done(self._label, ok=ok)

    def _handle_event(self, event_type: str, obj: dict[str, Any]) -> None:
        # The hot path of a busy watch: one metadata lookup, plain dict gets, no copies.
        if event_type == "ERROR":
            raise ApiError.from_status(obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        rv = meta.get("resourceVersion") or ""
        if rv:
            self.resource_version = rv
        if event_type == "BOOKMARK":
            return
        uid = meta.get("uid") or ""
        if self._keep is not None and not self._keep(uid):
            return
        known = self._known
        if event_type == "DELETED":
            if known.pop(uid, None) is None:
                return
            delivered = "DELETED"
        elif event_type == "ADDED" or event_type == "MODIFIED":
            before = known.get(uid)
            if before is not None and before[2] == rv:
                return  # already delivered (e.g. by the LIST this watch started from)
            known[uid] = Known(sys.intern(meta.get("namespace") or ""), meta.get("name") or "", rv)
            delivered = "ADDED" if before is None else "MODIFIED"
        else:
            log.warning("%s: ignoring unknown watch event type %r", self._label, event_type)
            return
        self._telemetry.events(self._label, delivered)
        self._dispatch(self._handlers, delivered, obj)

    def _dispatch(self, handlers: list[Handler], event_type: str, obj: dict[str, Any]) -> None:
        for handler in handlers:
            try:
                handler(event_type, obj)
            except Exception:
                log.exception("%s: handler %r failed on %s", self._label, handler, event_type)


class InformerRegistry:
    """One shared, reference-counted informer per ``WatchTarget``."""

    def __init__(
        self,
        client: ListWatcher,
        *,
        telemetry: InformerTelemetry | None = None,
        keep: Callable[[str], bool] | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        use_watch_cache: bool = True,
    ) -> None:
        self._client = client
        self._use_watch_cache = use_watch_cache
        self._telemetry = telemetry
        self._keep = keep
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._informers: dict[WatchTarget, Informer] = {}
        self._refs: dict[WatchTarget, list[Handler]] = {}

    def acquire(
        self, target: WatchTarget, handler: Handler, *, replay: Replay | ReplayStream | None = None
    ) -> Informer:
        """Start (or join) the informer for ``target``; ``handler`` gets all current objects."""
        informer = self._informers.get(target)
        if informer is None:
            informer = Informer(
                self._client,
                target,
                page_size=self._page_size,
                watch_timeout=self._watch_timeout,
                telemetry=self._telemetry,
                keep=self._keep,
                use_watch_cache=self._use_watch_cache,
            )
            self._informers[target] = informer
            self._refs[target] = []
            informer.add_handler(handler, replay=replay)
            informer.start()
        else:
            informer.add_handler(handler, replay=replay)
        self._refs[target].append(handler)
        return informer

    async def release(self, target: WatchTarget, handler: Handler) -> None:
        """Detach ``handler``; the last one out stops the informer."""
        handlers = self._refs.get(target)
        informer = self._informers.get(target)
        if handlers is None or informer is None or handler not in handlers:
            return
        handlers.remove(handler)
        informer.remove_handler(handler)
        if not handlers:
            del self._refs[target]
            del self._informers[target]
            await informer.stop()

    def get(self, target: WatchTarget) -> Informer | None:
        return self._informers.get(target)

    def targets(self) -> list[WatchTarget]:
        return list(self._informers)

    async def stop(self) -> None:
        informers = list(self._informers.values())
        self._informers.clear()
        self._refs.clear()
        await asyncio.gather(*(i.stop() for i in informers))
