"""The hand-off of one configuration to its collections: a *binding* (no requests of its own).

A binding ties one compiled plan to the collections it watches (one per namespace with
``--namespaces``, else cluster-wide) and to a namespace filter (``--namespace-selector``). It
joins the shared informers (``kube.informer.InformerRegistry``), which hand it the complete
current set of objects per collection (``replay``); events that arrive meanwhile are buffered.
Once every collection has replayed, it calls ``owner.activate(binding, objects, buffered)``
once; from then on events go straight to ``owner.apply_event``. The owner (the controller)
swaps the store to the new plan in one step and detaches the previous binding, so scrapes
never see a half-rendered configuration.

Handlers run synchronously inside the informers' tasks, on the one event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from exporter.types import Plan
from kube.discovery import ResolvedResource
from kube.informer import Informer, InformerRegistry, WatchTarget

Event = tuple[str, dict[str, Any]]


class BindingOwner(Protocol):
    """What a binding reports to (the controller)."""

    def activate(self, binding: Binding, objects: list[dict[str, Any]], buffered: list[Event]) -> None: ...

    def apply_event(self, binding: Binding, event_type: str, obj: dict[str, Any]) -> None: ...


def namespace_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("namespace") or "") if isinstance(meta, Mapping) else ""


def uid_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("uid") or "") if isinstance(meta, Mapping) else ""


class Binding:
    """One plan wired to its collections; buffers until every collection has replayed."""

    def __init__(
        self,
        owner: BindingOwner,
        *,
        name: str,
        plan: Plan,
        resource: ResolvedResource,
        targets: tuple[WatchTarget, ...],
        namespace_ok: Callable[[str], bool] | None,
        key: tuple[Any, ...],
    ) -> None:
        self.owner = owner
        self.name = name
        self.plan = plan
        self.resource = resource
        self.targets = targets
        self.namespace_ok = namespace_ok
        self.key = key  # what the binding depends on (the controller's ``binding_key``)
        self.registry: InformerRegistry | None = None
        self.live = False
        self.closed = False
        self._pending = set(targets)
        self._replayed: list[dict[str, Any]] = []
        self._buffer: list[Event] = []
        self._handlers: dict[WatchTarget, Callable[[str, dict[str, Any]], None]] = {}

    def start(self, registry: InformerRegistry) -> None:
        self.registry = registry
        for target in self.targets:
            handler = self._handler_for(target)
            self._handlers[target] = handler
            registry.acquire(target, handler, replay=self._replay_for(target))

    async def stop(self) -> None:
        self.closed = True
        for target, handler in self._handlers.items():
            if self.registry is not None:
                await self.registry.release(target, handler)
        self._handlers.clear()

    def informers(self) -> list[Informer]:
        if self.registry is None:
            return []
        return [i for t in self.targets if (i := self.registry.get(t)) is not None]

    def list_errors(self) -> list[str]:
        """The last error of every collection that has one (what a syncing binding waits for)."""
        return [f"{i.target}: {i.last_error}" for i in self.informers() if i.last_error]

    def _handler_for(self, target: WatchTarget) -> Callable[[str, dict[str, Any]], None]:
        def handle(event_type: str, obj: dict[str, Any]) -> None:
            if self.closed:
                return
            if self.live:
                self.owner.apply_event(self, event_type, obj)
            else:
                self._buffer.append((event_type, obj))

        return handle

    def _replay_for(self, target: WatchTarget) -> Callable[[list[dict[str, Any]]], None]:
        def replay(items: list[dict[str, Any]]) -> None:
            if self.closed or target not in self._pending:
                return
            ok = self.namespace_ok
            self._replayed.extend(items if ok is None else [o for o in items if ok(namespace_of(o))])
            self._pending.discard(target)
            if not self._pending:
                objects, self._replayed = self._replayed, []
                buffered, self._buffer = self._buffer, []
                self.owner.activate(self, objects, buffered)

        return replay
