"""The hand-off of one configuration to its collections: a *binding* (no requests of its own).

A binding ties one compiled plan to the collections it watches (one per namespace with
``--namespaces``, else cluster-wide) and to a namespace filter (``--namespace-selector``). It
joins the shared informers (``kube.informer.InformerRegistry``), which hand it the complete
current set of objects per collection (``replay``), object by object while the LIST decodes;
each is rendered at once into the plan's next store state (``builder``, a
``MetricsStore.build_plan``) and dropped, so the list is never held. Events that arrive
meanwhile are buffered. Once every collection has replayed, it calls
``owner.activate(binding, buffered)`` once; from then on events go straight to
``owner.apply_event``. The owner (the controller) commits the builder (the store switches to
the new plan in one step) and detaches the previous binding, so scrapes never see a
half-rendered configuration. A LIST that fails half-way makes the replay forget that attempt's
objects (``abort``); the informer lists again.

Handlers run synchronously inside the informers' tasks, on the one event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter.store import PlanBuilder
from exporter.types import Plan
from kube.discovery import ResolvedResource
from kube.informer import Handler, Informer, InformerRegistry, WatchTarget

Event = tuple[str, dict[str, Any]]


class BindingOwner(Protocol):
    """What a binding reports to (the controller)."""

    def activate(self, binding: Binding, buffered: list[Event]) -> None: ...

    def apply_event(self, binding: Binding, event_type: str, obj: dict[str, Any]) -> None: ...


def namespace_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("namespace") or "") if type(meta) is dict or isinstance(meta, Mapping) else ""


def uid_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("uid") or "") if isinstance(meta, Mapping) else ""


@dataclass(kw_only=True, eq=False)
class Binding:
    """One plan wired to its collections; buffers until every collection has replayed."""

    owner: BindingOwner
    name: str  # the configuration's
    plan: Plan
    resource: ResolvedResource
    targets: tuple[WatchTarget, ...]
    namespace_ok: Callable[[str], bool] | None  # the --namespace-selector filter, if any
    key: tuple[Any, ...]  # what the binding depends on (the controller's ``binding_key``)
    builder: PlanBuilder  # the plan's next store state, filled by the replays
    registry: InformerRegistry | None = field(default=None, init=False)
    live: bool = field(default=False, init=False)  # activated: events go straight to the owner
    closed: bool = field(default=False, init=False)
    _pending: set[WatchTarget] = field(init=False)  # collections that have not replayed yet
    _buffer: list[Event] = field(default_factory=list, init=False)
    _handlers: dict[WatchTarget, Handler] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._pending = set(self.targets)

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

    def _handler_for(self, target: WatchTarget) -> Handler:
        def handle(event_type: str, obj: dict[str, Any]) -> None:
            if self.closed:
                return
            if self.live:
                self.owner.apply_event(self, event_type, obj)
            else:
                self._buffer.append((event_type, obj))

        return handle

    def _replay_for(self, target: WatchTarget) -> TargetReplay:
        return TargetReplay(self, target)

    def replayed(self, target: WatchTarget) -> None:
        self._pending.discard(target)
        if not self._pending:
            buffered, self._buffer = self._buffer, []
            self.owner.activate(self, buffered)

    def wants(self, target: WatchTarget) -> bool:
        return not self.closed and target in self._pending


class TargetReplay:
    """One collection's replay into its binding's next plan state (``kube.informer.ReplayStream``)."""

    def __init__(self, binding: Binding, target: WatchTarget) -> None:
        self.binding = binding
        self.target = target
        self._uids: list[str] = []  # this attempt's objects, to forget if the LIST fails
        # ``binding.wants(target)`` until ``done``: the target leaves the binding's pending set
        # only there. Checked per object without hashing the target (the initial sync's loop).
        self._replayed = False

    def item(self, obj: dict[str, Any]) -> None:
        binding = self.binding
        if binding.closed or self._replayed:
            return
        ok = binding.namespace_ok
        if ok is None or ok(namespace_of(obj)):
            self._uids.append(binding.builder.add(obj))

    def done(self) -> None:
        self._uids = []
        if self.binding.wants(self.target):
            self._replayed = True
            self.binding.replayed(self.target)

    def abort(self) -> None:
        uids, self._uids = self._uids, []
        for uid in uids:
            self.binding.builder.discard(uid)
