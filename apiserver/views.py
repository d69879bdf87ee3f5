"""The API's view of the metrics store: named resources, resourceVersions and an event log.

The store keeps rendered chunks per (configuration, object UID). The API serves them as
``ObjectMetrics`` / ``ClusterObjectMetrics`` (one per target object, merging every configuration
that targets it) and ``MetricFamily`` (one per family). This module keeps the small index that
needs (UID -> entries per configuration, API name -> UID, first-seen times), and an ordered,
bounded log of ``Event``s from which list resourceVersions and watches are served.

resourceVersions: one counter for the whole API, advanced by one for every event (so two events
never share an RV, unlike ``store.generation``, which one relist may advance once for many
deletions). It starts at the process start time in microseconds, so an RV a client kept from a
previous process is either below the log's floor (-> 410 Expired, the client re-lists) or, in
practice, never ahead of the new counter's events. A list at RV ``R`` followed by a watch from
``R`` sees exactly the events after ``R``: no replay, no gap.

Families change when any of their series change; rather than diffing on every store event (a
relist is thousands of events), the family catalogue is marked dirty and diffed on the next read
or watch tick (``refresh_families``), which coalesces bursts into one MODIFIED per family.

Cost on the exporter's hot path: the store calls ``_on_store_event`` for every change, so it only
does bookkeeping (entries per UID, the RV, one log record holding the store entry, a dirty mark).
API names, snapshots and the read index are built when somebody reads: ``objects``/``object``
refresh the index for the UIDs changed since the last read, ``events_after`` materialises the
snapshots of the events it returns (overhead measured in bench/README.md).

Single-threaded like the store: the store calls ``_on_store_event`` synchronously on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from exporter.store import EventType, FamilyInfo, MetricsStore, ObjectEntry
from exporter.types import TargetRef

ResourceName = Literal["metricfamilies", "objectmetrics", "clusterobjectmetrics"]
# (configuration name, its target) -> the target's resource plural, e.g. from discovery.
ResourceNamer = Callable[[str, TargetRef], str]
CORE_GROUP_ALIAS = "core"
UNKNOWN_TARGET = TargetRef("v1", "Unknown")
SORTED_VIEWS = 64  # sorted lists kept at once (cluster-wide + one per namespace listed)
DIRTY_LIMIT = 65536  # changed objects kept unindexed before the index is refreshed anyway


def guess_resource(configuration: str, target: TargetRef) -> str:
    """Lower-case plural of a kind, the way most resources are named (``Ingress`` -> ``ingresses``).

    Used when no discovery is available; cluster mode passes a namer backed by discovery.
    """
    kind = target.kind.lower()
    if kind.endswith(("s", "x", "z", "ch", "sh")):
        return kind + "es"
    if kind.endswith("y") and len(kind) > 1 and kind[-2] not in "aeiou":
        return kind[:-1] + "ies"
    return kind + "s"


def object_metrics_name(resource: str, target: TargetRef, name: str) -> str:
    """``<resource>.<group>.<object name>``; the core group is spelled ``core`` (never empty)."""
    return f"{resource}.{target.group or CORE_GROUP_ALIAS}.{name}"


@dataclass(slots=True, eq=False)
class ObjectSnapshot:
    """One target object as the API shows it, at one moment (never mutated once built).

    Not ``frozen``: a frozen dataclass's ``__init__`` costs ~5x more, and one is built per store
    event on the exporter's hot path.
    """

    api_name: str
    namespace: str
    name: str
    uid: str
    target: TargetRef
    resource: str
    entries: tuple[ObjectEntry, ...]  # one per configuration, sorted by configuration name
    rv: int
    created: float

    @property
    def resource_name(self) -> ResourceName:
        return "objectmetrics" if self.namespace else "clusterobjectmetrics"

    @property
    def series(self) -> int:
        return sum(entry.series for entry in self.entries)


@dataclass(frozen=True, slots=True)
class FamilySnapshot:
    info: FamilyInfo
    rv: int
    created: float

    @property
    def name(self) -> str:
        return self.info.header.name


Payload = ObjectSnapshot | FamilySnapshot


@dataclass(slots=True, eq=False)
class Event:
    """One change. Object events keep the store entry and build their snapshot only when read."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: ResourceName
    _payload: Payload | None = None
    entry: ObjectEntry | None = None
    configurations: int = 1  # how many configurations held the object after this change
    created: float = 0.0

    @property
    def payload(self) -> Payload:
        if self._payload is None:
            raise RuntimeError("object event read before ApiViews.events_after materialised it")
        return self._payload


class ApiViews:
    """See the module docstring."""

    def __init__(
        self,
        store: MetricsStore,
        *,
        namer: ResourceNamer = guess_resource,
        history: int = 8192,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._namer = namer
        self._clock = clock
        self.rv = int(clock() * 1_000_000)
        self._log: deque[Event] = deque(maxlen=history)
        self.floor = self.rv  # oldest RV a watch may start from
        # uid -> its entry, or configuration -> entry when several configurations render it (a dict
        # per object would be the largest allocation on the hot path; most objects have one).
        self._entries: dict[str, ObjectEntry | dict[str, ObjectEntry]] = {}
        self._created: dict[str, float] = {}
        self._dirty: dict[str, int] = {}  # uid -> RV of its last change, not yet in the read index
        self._by_name: dict[tuple[str, str], str] = {}
        self._snapshots: dict[str, ObjectSnapshot] = {}
        # (resource, namespace) -> its snapshots sorted, until the index next changes
        self._sorted: dict[tuple[ResourceName, str | None], tuple[ObjectSnapshot, ...]] = {}
        self._families: dict[str, FamilySnapshot] = {}
        self._families_dirty = True
        self._changed = asyncio.Event()
        self._waiters = 0
        # configuration -> (plan, target, resource, "<resource>.<group>." name prefix)
        self._naming: dict[str, tuple[object, TargetRef, str, str]] = {}
        now = clock()
        for entry in store.objects():
            self._put(entry)
            self._learn_naming(entry.configuration)
            self._created.setdefault(entry.uid, now)
            self._dirty[entry.uid] = self.rv
        self.refresh_families(emit=False)
        self._unsubscribe = store.add_listener(self._on_store_event)

    def close(self) -> None:
        self._unsubscribe()

    # ------------------------------------------------------------------ reads

    def objects(self, resource: ResourceName, *, namespace: str | None = None) -> Sequence[ObjectSnapshot]:
        """The resource's snapshots in (namespace, name) order; reused until the index changes.

        Sorting 5,000 snapshots costs tens of milliseconds of loop time; concurrent and repeated
        lists of an unchanged store share one sorted tuple.
        """
        self._refresh_index()
        key = (resource, namespace)
        cached = self._sorted.get(key)
        if cached is not None:
            return cached
        namespaced = resource == "objectmetrics"
        out = [
            s
            for s in self._snapshots.values()
            if bool(s.namespace) == namespaced and (namespace is None or s.namespace == namespace)
        ]
        out.sort(key=lambda s: (s.namespace, s.api_name))
        if len(self._sorted) >= SORTED_VIEWS:
            self._sorted.clear()  # one per namespace listed: bounded, rebuilt on the next list
        self._sorted[key] = result = tuple(out)
        return result

    def object(self, resource: ResourceName, *, namespace: str, name: str) -> ObjectSnapshot | None:
        self._refresh_index()
        uid = self._by_name.get((namespace if resource == "objectmetrics" else "", name))
        snap = self._snapshots.get(uid) if uid is not None else None
        if snap is None or snap.resource_name != resource:
            return None
        return snap

    def families(self) -> list[FamilySnapshot]:
        self.refresh_families()
        return sorted(self._families.values(), key=lambda f: f.name)

    def family(self, name: str) -> FamilySnapshot | None:
        self.refresh_families()
        return self._families.get(name)

    def events_after(self, rv: int) -> Iterator[Event] | None:
        """Events with RV > ``rv`` in order, or ``None`` when the log no longer reaches back to ``rv``."""
        if rv < self.floor:
            return None
        newer: list[Event] = []
        for event in reversed(self._log):  # newest first: O(new events), not O(log)
            if event.rv <= rv:
                break
            if event._payload is None:
                event._payload = self._event_snapshot(event)
            newer.append(event)
        newer.reverse()
        return iter(newer)

    async def wait_for_change(self, timeout: float) -> None:
        """Return after the next event, or after ``timeout`` seconds."""
        changed = self._changed
        self._waiters += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        finally:
            self._waiters -= 1

    # ------------------------------------------------------------------ families

    def refresh_families(self, *, emit: bool = True) -> None:
        if not self._families_dirty:
            return
        self._families_dirty = False
        now = self._clock()
        current = {info.header.name: info for info in self._store.families()}
        for name, info in current.items():
            before = self._families.get(name)
            if before is not None and before.info == info:
                continue
            if not emit:
                self._families[name] = FamilySnapshot(info, self.rv, now)
                continue
            rv = self._next_rv()
            snap = FamilySnapshot(info, rv, before.created if before else now)
            self._families[name] = snap
            self._append(Event(rv, "MODIFIED" if before else "ADDED", "metricfamilies", snap))
        for name in [n for n in self._families if n not in current]:
            gone = self._families.pop(name)
            if emit:
                rv = self._next_rv()
                self._append(
                    Event(rv, "DELETED", "metricfamilies", FamilySnapshot(gone.info, rv, gone.created))
                )

    # ------------------------------------------------------------------ store events (hot path)

    def _on_store_event(self, event: EventType, entry: ObjectEntry) -> None:
        # Runs for every store change, on the exporter's hot path: only bookkeeping here; names,
        # snapshots and the read index are built when someone reads (``_refresh_index``,
        # ``events_after``).
        self._families_dirty = True
        uid = entry.uid
        configuration = entry.configuration
        if event is EventType.DELETED:
            current = self._entries.get(uid)
            if current is None:
                return
            if isinstance(current, dict):
                if current.pop(configuration, None) is None:
                    return
                count = len(current)
                if count == 1:
                    self._entries[uid] = next(iter(current.values()))
            else:
                if current.configuration != configuration:
                    return
                del self._entries[uid]
                count = 0
            kind = "MODIFIED" if count else "DELETED"
        else:
            count, added = self._put(entry)
            kind = "ADDED" if added else "MODIFIED"
            if added or configuration not in self._naming:
                self._learn_naming(configuration)
        created = self._created.get(uid)
        if created is None:
            created = self._created[uid] = self._clock()
        rv = self.rv = self.rv + 1
        dirty = self._dirty
        dirty[uid] = rv
        if len(dirty) > DIRTY_LIMIT:
            # Nobody has read for a long time: fold the changes in now, so deleted objects'
            # bookkeeping does not pile up (amortised O(1) per event).
            self._refresh_index()
        log = self._log
        if len(log) == log.maxlen:
            self.floor = log[0].rv
        log.append(
            Event(
                rv,
                kind,
                "objectmetrics" if entry.namespace else "clusterobjectmetrics",
                None,
                entry,
                count,
                created,
            )
        )
        if self._waiters:  # waking watchers costs ~20 us; skip it when nobody waits
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def _put(self, entry: ObjectEntry) -> tuple[int, bool]:
        """Record ``entry``; (number of configurations holding the object, whether it is new)."""
        uid, configuration = entry.uid, entry.configuration
        current = self._entries.get(uid)
        if current is None:
            self._entries[uid] = entry
            return 1, True
        if isinstance(current, dict):
            current[configuration] = entry
            return len(current), False
        if current.configuration == configuration:
            self._entries[uid] = entry
            return 1, False
        self._entries[uid] = {current.configuration: current, configuration: entry}
        return 2, False

    def _learn_naming(self, configuration: str) -> None:
        plan = self._store.plan(configuration)
        known = self._naming.get(configuration)
        if plan is not None and (known is None or known[0] is not plan):
            target = plan.target
            resource = self._namer(configuration, target)
            self._naming[configuration] = (plan, target, resource, object_metrics_name(resource, target, ""))

    def _naming_of(self, configuration: str) -> tuple[TargetRef, str, str]:
        naming = self._naming.get(configuration)
        if naming is None:
            return UNKNOWN_TARGET, "unknown", "unknown.core."
        return naming[1], naming[2], naming[3]

    def _build(self, uid: str, entries: tuple[ObjectEntry, ...], rv: int, created: float) -> ObjectSnapshot:
        first = entries[0]
        target, resource, prefix = self._naming_of(first.configuration)
        return ObjectSnapshot(
            prefix + first.name, first.namespace, first.name, uid, target, resource, entries, rv, created
        )

    def _current_entries(self, uid: str) -> tuple[ObjectEntry, ...] | None:
        current = self._entries.get(uid)
        if current is None:
            return None
        if isinstance(current, dict):
            return tuple(current[c] for c in sorted(current))
        return (current,)

    def _event_snapshot(self, event: Event) -> ObjectSnapshot:
        entry = event.entry
        assert entry is not None
        entries: tuple[ObjectEntry, ...] = (entry,)  # the exact state of the change
        if event.type != "DELETED":
            current = self._entries.get(entry.uid)
            held = (
                (entry.configuration in current)
                if isinstance(current, dict)
                else (current is not None and current.configuration == entry.configuration)
            )
            if event.configurations > 1 or not held:
                # Several configurations render this object (or one of them just dropped it):
                # show the entries as they are now, at least as new as the event.
                entries = self._current_entries(entry.uid) or entries
        return self._build(entry.uid, entries, event.rv, event.created)

    def _refresh_index(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        self._sorted.clear()
        for uid, rv in dirty.items():
            before = self._snapshots.get(uid)
            entries = self._current_entries(uid)
            if before is not None and self._by_name.get((before.namespace, before.api_name)) == uid:
                del self._by_name[(before.namespace, before.api_name)]
            if entries is None:
                self._snapshots.pop(uid, None)
                self._created.pop(uid, None)
                continue
            snap = self._build(uid, entries, rv, self._created.get(uid) or self._clock())
            self._snapshots[uid] = snap
            self._by_name[(snap.namespace, snap.api_name)] = uid

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _append(self, event: Event) -> None:
        if len(self._log) == self._log.maxlen:
            self.floor = self._log[0].rv
        self._log.append(event)
        if self._waiters:  # waking watchers costs ~20 us; skip it when nobody waits
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
