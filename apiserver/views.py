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

Single-threaded like the store: the store calls ``_on_store_event`` synchronously on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from exporter.store import EventType, FamilyInfo, MetricsStore, ObjectEntry
from exporter.types import TargetRef

ResourceName = Literal["metricfamilies", "objectmetrics", "clusterobjectmetrics"]
# (configuration name, its target) -> the target's resource plural, e.g. from discovery.
ResourceNamer = Callable[[str, TargetRef], str]
CORE_GROUP_ALIAS = "core"
UNKNOWN_TARGET = TargetRef("v1", "Unknown")


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
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: ResourceName
    payload: Payload


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
        self._entries: dict[str, dict[str, ObjectEntry]] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._snapshots: dict[str, ObjectSnapshot] = {}
        self._families: dict[str, FamilySnapshot] = {}
        self._families_dirty = True
        self._changed = asyncio.Event()
        self._waiters = 0
        # configuration -> (plan, target, resource, "<resource>.<group>." name prefix)
        self._naming: dict[str, tuple[object, TargetRef, str, str]] = {}
        self._live = False
        for entry in store.objects():
            self._index(entry)
        for uid in self._entries:
            snap = self._snapshot(uid)
            if snap is not None:
                self._snapshots[uid] = snap
                self._by_name[(snap.namespace, snap.api_name)] = uid
        self.refresh_families(emit=False)
        self._live = True
        self._unsubscribe = store.add_listener(self._on_store_event)

    def close(self) -> None:
        self._unsubscribe()

    # ------------------------------------------------------------------ reads

    def objects(self, resource: ResourceName, *, namespace: str | None = None) -> list[ObjectSnapshot]:
        namespaced = resource == "objectmetrics"
        out = [
            s
            for s in self._snapshots.values()
            if bool(s.namespace) == namespaced and (namespace is None or s.namespace == namespace)
        ]
        out.sort(key=lambda s: (s.namespace, s.api_name))
        return out

    def object(self, resource: ResourceName, *, namespace: str, name: str) -> ObjectSnapshot | None:
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

    # ------------------------------------------------------------------ store events

    def _on_store_event(self, event: EventType, entry: ObjectEntry) -> None:
        self._families_dirty = True
        uid = entry.uid
        before = self._snapshots.get(uid)
        if event is EventType.DELETED:
            per_config = self._entries.get(uid, {})
            per_config.pop(entry.configuration, None)
            if not per_config:
                self._entries.pop(uid, None)
        else:
            self._index(entry)
        snap = self._snapshot(uid, previous=before)
        if snap is None:
            if before is None:
                return
            self._snapshots.pop(uid, None)
            if self._by_name.get((before.namespace, before.api_name)) == uid:
                del self._by_name[(before.namespace, before.api_name)]
            rv = self._next_rv()
            last = ObjectSnapshot(
                before.api_name,
                before.namespace,
                before.name,
                uid,
                before.target,
                before.resource,
                before.entries,
                rv,
                before.created,
            )
            self._append(Event(rv, "DELETED", last.resource_name, last))
            return
        self._snapshots[uid] = snap
        self._by_name[(snap.namespace, snap.api_name)] = uid
        self._append(Event(snap.rv, "ADDED" if before is None else "MODIFIED", snap.resource_name, snap))

    def _index(self, entry: ObjectEntry) -> None:
        configuration = entry.configuration
        self._entries.setdefault(entry.uid, {})[configuration] = entry
        plan = self._store.plan(configuration)
        known = self._naming.get(configuration)
        if plan is not None and (known is None or known[0] is not plan):
            target = plan.target
            resource = self._namer(configuration, target)
            self._naming[configuration] = (plan, target, resource, object_metrics_name(resource, target, ""))

    def _snapshot(self, uid: str, *, previous: ObjectSnapshot | None = None) -> ObjectSnapshot | None:
        per_config = self._entries.get(uid)
        if not per_config:
            return None
        if len(per_config) == 1:
            entries: tuple[ObjectEntry, ...] = tuple(per_config.values())
        else:
            entries = tuple(per_config[c] for c in sorted(per_config))
        first = entries[0]
        naming = self._naming.get(first.configuration)
        if naming is None:
            target, resource, prefix = UNKNOWN_TARGET, "unknown", "unknown.core."
        else:
            _plan, target, resource, prefix = naming
        return ObjectSnapshot(
            prefix + first.name,
            first.namespace,
            first.name,
            uid,
            target,
            resource,
            entries,
            self._next_rv() if self._live else self.rv,
            previous.created if previous else self._clock(),
        )

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
