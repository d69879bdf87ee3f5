"""The metrics store: pre-rendered series per configuration and object, never whole objects.

This is the kube-state-metrics design (kubernetes/kube-state-metrics
``docs/design/metrics-store-performance-optimization.md``). When an object is added or
updated, its configuration's ``Plan`` renders it once into one chunk of sample lines per family;
the store keeps those chunks under the object's UID together with its namespace, name,
resourceVersion, labels (for label selectors on target objects: the custom metrics API) and
render time, and forgets the rest of the object. A scrape (``exporter.exposition``) only concatenates.

Layout, chosen for the scrape path and for memory: per configuration, objects live in blocks of
up to ``BLOCK_SIZE`` entries (in arrival order); a block keeps, per family, its objects' chunks
already joined, and that is the only copy of the sample text (``exporter.blocks``). A full body
is a few hundred block texts per family, written as they are; after a change only the changed
block's changed families are spliced (a few tens of KB), instead of touching every one of the
~10^6 chunks of a large store. Namespace-filtered bodies slice the block texts.

Threading: the store is not locked. It is owned by one asyncio event loop; every mutation and
every read (including the exposition) happens on that loop's thread. Because nothing here awaits,
a caller that does ``set_plan`` and then ``replace`` without awaiting in between is atomic with
respect to scrapes and watchers.

Changes: every mutation that changes what a scrape would return increments ``generation`` (the
exposition cache key) and notifies listeners with ``ADDED``/``MODIFIED``/``DELETED``. An update
whose rendered chunks are identical to the stored ones only refreshes the resourceVersion: no
generation bump, no event, the cached exposition stays valid. An update that carries the same
non-empty resourceVersion as the stored entry is skipped without rendering (a relist of an
unchanged cluster costs a dict lookup per object).

Aggregates (``exporter.aggregates``): a family whose header says ``aggregate`` stores each
object's *contribution* (a line per group) as its chunk, like any family, and its groups in a
``FamilyAggregate`` beside the blocks; ``_add``, ``_replace`` and ``_remove``, which have the old
and the new chunks at hand, subtract and add them (O(1) in the number of objects), and a scrape
yields the groups' text instead of the chunks (per namespace for a filtered one).

Shared families (``exporter.sharing``): configurations whose families agree may use one family
name; ``set_plan`` refuses one that disagrees (``DuplicateFamilyError``). The exposition order
(``_lay_out``) keeps such a family where its first configuration puts it and appends the other
configurations' chunks there, so it has one header; ``families()`` gives one entry per name.

Re-rendering after a configuration change: the store cannot re-render by itself because it keeps
no objects. ``set_plan(plan, objects=...)`` swaps the plan and renders the given objects in one
step (events are a precise diff); ``set_plan(plan)`` without objects drops the entries rendered by
the previous version of that plan, and the caller re-feeds them with ``replace``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from exporter.aggregates import FamilyAggregate
from exporter.blocks import Block, ObjectEntry
from exporter.renderlog import RenderLog, object_name
from exporter.sharing import disagreement
from exporter.telemetry import Telemetry
from exporter.types import FamilyHeader, Plan, RenderErrors

__all__ = ["BLOCK_SIZE", "DuplicateFamilyError", "EventType", "FamilyInfo", "MetricsStore", "ObjectEntry",
           "PlanBuilder", "ReplaceResult", "object_key"]

log = logging.getLogger(__name__)


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class FamilyInfo:
    """Catalogue entry for one family (the API server's ``MetricFamily``)."""

    header: FamilyHeader
    series: int
    objects: int
    updated: float | None  # Unix time of the last change of any of its series
    # A family fed by several configurations (exporter/sharing.py): each one's share, in
    # configuration-name order; ``header`` is the first one's and the counts are the totals.
    parts: tuple[FamilyInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplaceResult:
    added: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0


class DuplicateFamilyError(ValueError):
    """Two configurations would export the same family name and the families disagree
    (``exporter.sharing``): it is never emitted twice nor with two headers."""


Listener = Callable[[EventType, ObjectEntry], None]


BLOCK_SIZE = 512


@dataclass(slots=True, eq=False)
class _PlanState:
    plan: Plan
    entries: dict[str, ObjectEntry] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    family_objects: list[int] = field(default_factory=list)
    family_series: list[int] = field(default_factory=list)
    family_updated: list[float | None] = field(default_factory=list)
    renders: Any = None  # the telemetry counter child for this configuration (looked up once)
    # family index -> its groups, for aggregate families (their chunks are contributions)
    aggregates: dict[int, FamilyAggregate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.plan.families)
        self.family_objects = [0] * n
        self.family_series = [0] * n
        self.family_updated = [None] * n
        self.aggregates = {i: FamilyAggregate() for i, header in enumerate(self.plan.families)
                           if header.aggregate}

    def recount(self, now: float) -> None:
        """Per-family object and series counts from the blocks, in one pass (``PlanBuilder``
        appends without counting: a C-level count per block instead of per object)."""
        n = len(self.plan.families)
        objects, series = [0] * n, [0] * n
        for block in self.blocks:
            for i in range(n):
                with_series, lines = block.counts(i)
                objects[i] += with_series
                series[i] += lines
        self.family_objects = objects
        self.family_series = series
        self.family_updated = [now if count else None for count in objects]

    def detach(self) -> None:
        """This state is dropped: its entries take their chunks along (see ``exporter.blocks``)."""
        for block in self.blocks:
            block.detach_all()
        self.blocks = []


@dataclass(slots=True, eq=False)
class _Slot:
    """One family of the exposition: its header and the (configuration, family index) feeding it."""

    header: FamilyHeader
    members: list[tuple[_PlanState, int]]


_NO_LABELS: Mapping[str, str] = {}


def object_labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.labels`` of a raw object (a shared empty mapping when it has none)."""
    meta = obj.get("metadata")
    # ``type(..) is dict`` first: decoded JSON is plain dicts, and an ABC isinstance check of
    # None or a dict costs more than the rest of this function (the initial sync calls it per object)
    if type(meta) is not dict and not isinstance(meta, Mapping):
        return _NO_LABELS
    labels = meta.get("labels")
    if labels is None:
        return _NO_LABELS
    return labels if (type(labels) is dict or isinstance(labels, Mapping)) and labels else _NO_LABELS


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(uid, namespace, name, resourceVersion) of a raw object.

    Objects read from local files often have no UID; ``namespace/name`` stands in for it then
    (unique per kind, which is all a configuration's entries need).
    """
    meta = obj.get("metadata")
    if type(meta) is not dict and not isinstance(meta, Mapping):  # see object_labels
        meta = {}
    namespace = meta.get("namespace") or ""
    name = meta.get("name") or ""
    uid = meta.get("uid") or f"{namespace}/{name}"
    rv = meta.get("resourceVersion") or ""
    # Namespaces repeat across objects: one shared string each instead of one per entry.
    return str(uid), sys.intern(str(namespace)), str(name), str(rv)


class MetricsStore:
    """Pre-rendered series of every object of every configuration. See the module docstring."""

    def __init__(self, *, telemetry: Telemetry | None = None, clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry if telemetry is not None else Telemetry(process_metrics=False)
        self.render_log = RenderLog()  # what reaches the log of dropped series (exporter.renderlog)
        self.generation = 0
        self._plans: dict[str, _PlanState] = {}
        self._order: list[_PlanState] = []
        self._slots: list[_Slot] = []  # the exposition's families (see ``_lay_out``)
        self._listeners: list[Listener] = []
        self._clock = clock

    # ----------------------------------------------------------------- configurations

    def plans(self) -> list[Plan]:
        """Current plans, in exposition order (by configuration name)."""
        return [state.plan for state in self._order]

    def plan(self, name: str) -> Plan | None:
        state = self._plans.get(name)
        return state.plan if state else None

    def set_plan(self, plan: Plan, *, objects: Iterable[Mapping[str, Any]] | None = None) -> ReplaceResult:
        """Install or replace a configuration's plan.

        With ``objects``: render them with the new plan and swap in one step (events are the
        diff against the previous entries). Without: entries rendered by a previous version of
        this plan are dropped (the caller re-feeds objects with ``replace``); setting the very
        same plan object again changes nothing.
        """
        self._check_family_names(plan)
        old = self._plans.get(plan.name)
        if old is not None and old.plan is plan:
            return self.replace(plan.name, objects) if objects is not None else ReplaceResult()
        new = _PlanState(plan)
        if objects is None:
            if old is not None:
                self._install(new)
                self.generation += 1
                old.detach()
                for entry in old.entries.values():
                    self._notify(EventType.DELETED, entry)
                return ReplaceResult(deleted=len(old.entries))
            self._install(new)
            self.generation += 1
            return ReplaceResult()
        # Render everything into the new state first, then swap, then report the diff.
        builder = self.build_plan(plan)
        for obj in objects:
            builder.add(obj)
        return builder.commit()

    def build_plan(self, plan: Plan) -> PlanBuilder:
        """Render objects for ``plan`` one at a time, then swap them in at once (``commit``).

        What ``set_plan(plan, objects=...)`` does, for objects that arrive one by one (a
        streaming LIST): each is rendered when added and only its chunks are kept; scrapes see
        the previous state until ``commit``.
        """
        return PlanBuilder(self, plan)

    def remove_plan(self, name: str) -> None:
        state = self._plans.pop(name, None)
        if state is None:
            return
        self._order = sorted(self._plans.values(), key=lambda s: s.plan.name)
        self._lay_out()
        self.generation += 1
        state.detach()
        for entry in state.entries.values():
            self._notify(EventType.DELETED, entry)

    # ----------------------------------------------------------------- objects

    def upsert(self, plan_name: str, obj: Mapping[str, Any]) -> None:
        """Render ``obj`` with the plan and store its chunks (add or update)."""
        self._upsert(self._state(plan_name), obj)

    def delete(self, plan_name: str, uid: str) -> None:
        state = self._plans.get(plan_name)
        if state is None:
            return
        entry = state.entries.get(uid)
        if entry is None:
            return
        self.generation += 1
        self._remove(state, entry)
        self._notify(EventType.DELETED, entry)

    def replace(self, plan_name: str, objs: Iterable[Mapping[str, Any]]) -> ReplaceResult:
        """A full relist: upsert every object, delete the entries of objects not listed.

        One path, as kube-state-metrics' ``Replace`` (``Add`` in a loop): every object goes
        through ``_upsert``, whose outcome (including ``DELETED`` when rendering a stored object
        raises) is counted as it is.
        """
        state = self._state(plan_name)
        seen: set[str] = set()
        counts = dict.fromkeys(EventType, 0)
        unchanged = 0
        for obj in objs:
            uid, event = self._upsert(state, obj)
            seen.add(uid)
            if event is None:
                unchanged += 1
            else:
                counts[event] += 1
        gone = [entry for uid, entry in state.entries.items() if uid not in seen]
        if gone:
            self.generation += 1
        for entry in gone:
            self._remove(state, entry)
            self._notify(EventType.DELETED, entry)
        return ReplaceResult(added=counts[EventType.ADDED], modified=counts[EventType.MODIFIED],
                             deleted=counts[EventType.DELETED] + len(gone), unchanged=unchanged)

    # ----------------------------------------------------------------- reads

    def get(self, plan_name: str, uid: str) -> ObjectEntry | None:
        state = self._plans.get(plan_name)
        return state.entries.get(uid) if state else None

    def entries(self, plan_name: str, *, namespace: str | None = None) -> Iterable[ObjectEntry]:
        """One configuration's entries (only those in ``namespace``; ``""`` = cluster-scoped)."""
        state = self._plans.get(plan_name)
        if state is None:
            return ()
        if namespace is None:
            return state.entries.values()
        return [entry for entry in state.entries.values() if entry.namespace == namespace]

    def objects(self, *, namespace: str | None = None) -> Iterator[ObjectEntry]:
        for state in self._order:
            if namespace is None:
                yield from state.entries.values()
            else:
                yield from (entry for entry in state.entries.values() if entry.namespace == namespace)

    def families(self) -> list[FamilyInfo]:
        """One entry per family name, in exposition order (a shared family: totals and ``parts``)."""
        infos: list[FamilyInfo] = []
        for slot in self._slots:
            shares = [self._family_info(state, i) for state, i in slot.members]
            if len(shares) == 1:
                infos.append(shares[0])
                continue
            updated = [share.updated for share in shares if share.updated is not None]
            infos.append(FamilyInfo(header=slot.header, series=sum(share.series for share in shares),
                                    objects=sum(share.objects for share in shares),
                                    updated=max(updated) if updated else None, parts=tuple(shares)))
        return infos

    @staticmethod
    def _family_info(state: _PlanState, i: int) -> FamilyInfo:
        aggregate = state.aggregates.get(i)  # its series are its groups
        series = state.family_series[i] if aggregate is None else len(aggregate)
        return FamilyInfo(header=state.plan.families[i], series=series,
                          objects=state.family_objects[i], updated=state.family_updated[i])

    def family_chunks(
        self, *, namespace: str | None = None
    ) -> Iterator[tuple[FamilyHeader, Iterable[bytes]]]:
        """For the exposition: every family in a stable order with its objects' non-empty chunks.

        Order: configurations by name, then families in configuration order; within a family,
        objects in the order they were first added. A family several configurations feed comes
        once, where its first configuration puts it, with every configuration's series in
        configuration-name order (``_lay_out``).
        """
        if namespace is None:
            for slot in self._slots:
                members = slot.members
                if len(members) == 1:
                    yield slot.header, self._all_chunks(*members[0])
                else:
                    yield slot.header, [chunk for state, i in members for chunk in self._all_chunks(state, i)]
            return
        selections: dict[str, list[tuple[Block, list[int]]]] = {}
        for slot in self._slots:
            chunks: list[bytes] = []
            for state, i in slot.members:
                selected = selections.get(state.plan.name)
                if selected is None:
                    selected = selections[state.plan.name] = [
                        (block, positions) for block in state.blocks
                        if (positions := block.positions(namespace))]
                if not selected:
                    continue
                aggregate = state.aggregates.get(i)
                if aggregate is not None:
                    if text := aggregate.text(namespace):
                        chunks.append(text)
                    continue
                chunks.extend(chunk for block, positions in selected for chunk in block.select(i, positions))
            yield slot.header, chunks

    @staticmethod
    def _all_chunks(state: _PlanState, i: int) -> list[bytes]:
        """Family ``i`` of one configuration, unfiltered: its block texts (or its groups)."""
        if not state.family_objects[i]:
            return []
        aggregate = state.aggregates.get(i)
        if aggregate is not None:  # the groups, not the objects' contributions
            text = aggregate.text()
            return [text] if text else []
        return [text for block in state.blocks if (text := block.family_text(i))]

    def stats(self) -> Iterator[tuple[str, int, int]]:
        for state in self._order:
            yield state.plan.name, len(state.entries), sum(state.family_series)

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event, entry)`` after every change; returns a function that unsubscribes."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    # ----------------------------------------------------------------- internals

    def _state(self, plan_name: str) -> _PlanState:
        try:
            return self._plans[plan_name]
        except KeyError:
            raise KeyError(f"no configuration {plan_name!r} in the store (set_plan first)") from None

    def _check_family_names(self, plan: Plan) -> None:
        mine = {h.name: h for h in plan.families}
        for state in self._order:
            if state.plan.name == plan.name:
                continue
            clash = sorted(f"{h.name} ({why})" for h in state.plan.families
                           if h.name in mine and (why := disagreement(h, mine[h.name])) is not None)
            if clash:
                raise DuplicateFamilyError(
                    f"configurations {state.plan.name!r} and {plan.name!r} both export "
                    + ", ".join(clash))

    def _install(self, state: _PlanState) -> None:
        self._plans[state.plan.name] = state
        self._order = sorted(self._plans.values(), key=lambda s: s.plan.name)
        self._lay_out()

    def _lay_out(self) -> None:
        """The exposition's families: configurations by name, then families in configuration
        order; a family another configuration also feeds (exporter/sharing.py) stays where its
        first configuration puts it and collects the later ones' series there."""
        slots: list[_Slot] = []
        by_name: dict[str, _Slot] = {}
        for state in self._order:
            for i, header in enumerate(state.plan.families):
                slot = by_name.get(header.name)
                if slot is None:
                    slot = by_name[header.name] = _Slot(header, [])
                    slots.append(slot)
                slot.members.append((state, i))
        self._slots = slots

    def _render(self, state: _PlanState, obj: Mapping[str, Any], uid: str) -> tuple[bytes, ...] | None:
        chunks = self._render_with(state.plan, obj, RenderErrors())
        if chunks is not None:
            if state.renders is None:
                state.renders = self.telemetry.object_renders.labels(state.plan.name)
            state.renders.inc()
        return chunks

    def _render_with(self, plan: Plan, obj: Mapping[str, Any],
                     errors: RenderErrors) -> tuple[bytes, ...] | None:
        """``plan.render``; ``None`` when the renderer failed (counted, logged); what it reports in
        ``errors`` goes to the telemetry and the render log."""
        try:
            chunks = plan.render(obj, errors)
        except Exception:  # a renderer bug must not break the store or the scrape
            self.telemetry.render_failures.labels(plan.name).inc()
            log.exception("configuration %s: rendering %s failed; its series are dropped",
                          plan.name, object_name(obj))
            return None
        if errors.items:
            self.telemetry.record_render_errors(plan.name, errors)
            self.render_log.report(plan.name, obj, errors)
        return chunks

    def _append(self, state: _PlanState, entry: ObjectEntry) -> None:
        """``_add`` without the per-family counts (``PlanBuilder``: ``_PlanState.recount``)."""
        chunks = entry.held
        assert chunks is not None
        state.entries[entry.uid] = entry
        blocks = state.blocks
        if blocks and len(blocks[-1]) < BLOCK_SIZE:
            block = blocks[-1]
        else:
            block = Block(len(chunks))
            blocks.append(block)
        block.append(entry)
        if len(block) >= BLOCK_SIZE:
            block.flush()
        for i, aggregate in state.aggregates.items():
            aggregate.change(namespace=entry.namespace, chunk=chunks[i], sign=1)

    def _upsert(self, state: _PlanState, obj: Mapping[str, Any]) -> tuple[str, EventType | None]:
        uid, namespace, name, rv = object_key(obj)
        old = state.entries.get(uid)
        if old is not None and rv and old.resource_version == rv:
            return uid, None
        chunks = self._render(state, obj, uid)
        if chunks is None:
            if old is not None:
                self.generation += 1
                self._remove(state, old)
                self._notify(EventType.DELETED, old)
                return uid, EventType.DELETED
            return uid, None
        if old is not None and old.chunks == chunks and old.namespace == namespace:
            old.resource_version = rv
            old.name = name
            old.labels = object_labels(obj)
            old.rendered = self._clock()
            return uid, None
        self.generation += 1
        entry = ObjectEntry(state.plan.name, namespace, name, uid, rv, chunks, self.generation,
                            object_labels(obj), self._clock())
        if old is not None:
            self._replace(state, old, entry)
        else:
            self._add(state, entry)
        event = EventType.ADDED if old is None else EventType.MODIFIED
        self._notify(event, entry)
        return uid, event

    def _add(self, state: _PlanState, entry: ObjectEntry) -> None:
        chunks = entry.held
        assert chunks is not None
        now = self._clock()
        state.entries[entry.uid] = entry
        blocks = state.blocks
        if blocks and len(blocks[-1]) < BLOCK_SIZE:
            block = blocks[-1]
        else:
            block = Block(len(chunks))
            blocks.append(block)
        block.append(entry)
        if len(block) >= BLOCK_SIZE:
            block.flush()
        for i, chunk in enumerate(chunks):
            if chunk:
                state.family_objects[i] += 1
                state.family_series[i] += chunk.count(b"\n")
                state.family_updated[i] = now
        for i, aggregate in state.aggregates.items():
            aggregate.change(namespace=entry.namespace, chunk=chunks[i], sign=1)

    def _replace(self, state: _PlanState, old: ObjectEntry, new: ObjectEntry) -> None:
        """Swap an object's entry in place (same block, same position)."""
        now = self._clock()
        after = new.held
        assert after is not None and old.block is not None
        state.entries[new.uid] = new
        before = old.block.replace(old, new)
        for i, (was, chunk) in enumerate(zip(before, after, strict=True)):
            if was == chunk:
                continue
            state.family_objects[i] += bool(chunk) - bool(was)
            state.family_series[i] += chunk.count(b"\n") - was.count(b"\n")
            state.family_updated[i] = now
        for i, aggregate in state.aggregates.items():  # O(1): the old share out, the new one in
            if before[i] != after[i] or old.namespace != new.namespace:
                aggregate.change(namespace=old.namespace, chunk=before[i], sign=-1)
                aggregate.change(namespace=new.namespace, chunk=after[i], sign=1)

    def _remove(self, state: _PlanState, entry: ObjectEntry) -> None:
        now = self._clock()
        del state.entries[entry.uid]
        block = entry.block
        assert block is not None
        chunks = block.remove(entry)
        if not len(block):
            state.blocks.remove(block)
        for i, chunk in enumerate(chunks):
            if chunk:
                state.family_objects[i] -= 1
                state.family_series[i] -= chunk.count(b"\n")
                state.family_updated[i] = now
        for i, aggregate in state.aggregates.items():
            aggregate.change(namespace=entry.namespace, chunk=chunks[i], sign=-1)

    def _diff_events(self, old: _PlanState | None, new: _PlanState) -> ReplaceResult:
        added = modified = unchanged = deleted = 0
        generation = self.generation
        if old is None:
            for entry in new.entries.values():
                entry.revision = generation
                self._notify(EventType.ADDED, entry)
            return ReplaceResult(added=len(new.entries))
        old.detach()  # the old entries hold their chunks now
        old_entries = old.entries
        for block in new.blocks:
            for entry, chunks in zip(block.entries, block.all_chunks(), strict=True):
                before = old_entries.get(entry.uid)
                if before is None:
                    added += 1
                    entry.revision = generation
                    self._notify(EventType.ADDED, entry)
                elif before.held != chunks:
                    modified += 1
                    entry.revision = generation
                    self._notify(EventType.MODIFIED, entry)
                else:
                    unchanged += 1
                    entry.revision = before.revision
        for uid, entry in old_entries.items():
            if uid not in new.entries:
                deleted += 1
                self._notify(EventType.DELETED, entry)
        return ReplaceResult(added=added, modified=modified, deleted=deleted, unchanged=unchanged)

    def _notify(self, event: EventType, entry: ObjectEntry) -> None:
        for callback in list(self._listeners):
            try:
                callback(event, entry)
            except Exception:  # one broken watcher must not stop the others or the store
                log.exception("store listener %r failed on %s %s", callback, event.value, entry.uid)


class PlanBuilder:
    """A plan's next state, rendered object by object; ``commit`` swaps it in (see ``build_plan``)."""

    def __init__(self, store: MetricsStore, plan: Plan) -> None:
        self._store = store
        self._state = _PlanState(plan)
        self.committed = False
        self._errors = RenderErrors()  # reused until a render reports something
        self._renders = 0  # renders not yet added to the telemetry counter

    @property
    def plan(self) -> Plan:
        return self._state.plan

    def __len__(self) -> int:
        return len(self._state.entries)

    def add(self, obj: Mapping[str, Any]) -> str:
        """Render ``obj`` (replacing an earlier one with the same UID); returns its UID.

        The initial sync calls this once per listed object, so it is ``MetricsStore._render``
        and ``_add`` with what can wait until ``commit`` taken out: the render counter is
        added to per block, the per-family counts are made from the blocks at ``commit``."""
        store, state = self._store, self._state
        uid, namespace, name, rv = object_key(obj)
        plan = state.plan
        chunks = store._render_with(plan, obj, self._errors)
        if self._errors.items:  # handed to the render log: the next render gets a fresh one
            self._errors = RenderErrors()
        if chunks is None:
            return uid
        entry = ObjectEntry(plan.name, namespace, name, uid, rv, chunks, store.generation,
                            object_labels(obj), store._clock())
        old = state.entries.get(uid)
        if old is not None:
            store._replace(state, old, entry)
        else:
            store._append(state, entry)
        self._renders += 1
        if self._renders >= BLOCK_SIZE:
            self._count_renders()
        return uid

    def _count_renders(self) -> None:
        state = self._state
        if state.renders is None:
            state.renders = self._store.telemetry.object_renders.labels(state.plan.name)
        state.renders.inc(self._renders)
        self._renders = 0

    def discard(self, uid: str) -> None:
        entry = self._state.entries.get(uid)
        if entry is not None:
            self._store._remove(self._state, entry)

    def commit(self) -> ReplaceResult:
        """Install the plan with these objects; events are the diff to the previous entries.

        Raises ``DuplicateFamilyError`` (and changes nothing) when another configuration
        exports one of its families.
        """
        store, state = self._store, self._state
        store._check_family_names(state.plan)
        if self._renders:
            self._count_renders()
        state.recount(store._clock())
        old = store._plans.get(state.plan.name)
        store.generation += 1
        store._install(state)
        self.committed = True
        return store._diff_events(old, state)
