"""One registry of everything the extension API server serves: API groups, versions, resources.

Discovery (``apiserver.discovery``), OpenAPI (``apiserver.openapi``), routing and the REST
handlers (``apiserver.server``, ``apiserver.resources``), the watch stream (``apiserver.watch``)
and request telemetry all read this table; none of them names a resource. An API group-version
is one ``ApiGroupVersion`` entry holding its ``ServedResource`` entries, so a new resource is one
more entry with its projection (a ``ResourceBackend``), and a new API group is one more
``ApiGroupVersion`` (docs/architecture.md, "Adding a served resource").

A ``ServedResource`` carries:

- what discovery lists: plural, singular, kind, scope, verbs, short names, categories (or
  ``discoverable=False``: authorized and counted, but not listed, like ``prometheus``);
- what kubectl prints: the Table ``columns`` (the backend computes the cells);
- what ``kubectl explain`` reads: the OpenAPI ``schema`` of the kind (the group entry holds
  shared definitions such as ``ObjectMeta``);
- how it is served: a ``backend`` (the generic get/list/watch handlers over a projection of
  some data) or ``handler`` (a raw aiohttp handler for collection GETs, e.g. Prometheus text);
- its ``telemetry`` label (the plural unless given), a fixed set so no request creates series.

Group-versions may add ``routes``: extra ``(path suffix, handler)`` pairs under
``/apis/<group>/<version>/`` for APIs whose paths are not ``<resource>[/<name>]`` (the
custom/external metrics APIs' ``<resource>/<name>/<metric>`` shapes).

This module only defines the table and lookups; it imports nothing from the rest of the
package, so no import cycle can run through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aiohttp import web

Item = TypeVar("Item")
RawHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OTHER = "other"  # telemetry label of anything not in the registry


@dataclass(frozen=True, slots=True)
class Column:
    """One ``meta.k8s.io/v1`` TableColumnDefinition."""

    name: str
    type: str
    description: str
    format: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


class WatchEvent(Protocol):
    """One change in an ``EventSource``'s log."""

    @property
    def rv(self) -> int: ...

    @property
    def type(self) -> str: ...  # ADDED | MODIFIED | DELETED

    @property
    def resource(self) -> str: ...  # the plural of the resource that changed

    @property
    def payload(self) -> Any: ...  # an item of that resource's backend


class EventSource(Protocol):
    """A resourceVersion counter with a bounded, ordered log of changes (what a watch reads)."""

    @property
    def rv(self) -> int: ...

    @property
    def floor(self) -> int: ...  # the oldest RV a watch may resume from

    def events_after(self, rv: int) -> Iterator[WatchEvent] | None:
        """Events with RV > ``rv`` in order, or ``None`` when the log no longer reaches ``rv``."""
        ...

    async def wait_for_change(self, timeout: float) -> None: ...


class ResourceBackend(Protocol[Item]):
    """The projection of some data as one resource's items (what the generic handlers serve).

    Items are immutable snapshots; ``items`` returns them in (namespace, name) order.
    """

    @property
    def events(self) -> EventSource: ...

    def sync(self) -> None:
        """Bring derived state up to date before a read (may append events)."""
        ...

    def items(self, namespace: str | None) -> Sequence[Item]: ...

    def item(self, namespace: str, name: str) -> Item | None: ...

    def key(self, item: Item) -> tuple[str, str]:
        """(namespace, name) as the API shows it; namespace ``""`` for cluster-scoped items."""
        ...

    def labels(self, item: Item) -> Mapping[str, str]: ...

    def rv(self, item: Item) -> int: ...

    def to_object(self, item: Item) -> dict[str, Any]: ...

    def cells(self, item: Item, *, now: float) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class ServedResource:
    """One resource of one group-version (see the module docstring)."""

    plural: str
    singular: str
    kind: str
    namespaced: bool
    backend: ResourceBackend[Any] | None = None
    handler: RawHandler | None = None
    columns: tuple[Column, ...] = ()
    schema: Mapping[str, Any] | None = None  # OpenAPI v2 schema of the kind (None: not described)
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("get", "list", "watch")
    discoverable: bool = True
    telemetry: str = ""

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def label(self) -> str:
        return self.telemetry or self.plural


@dataclass(frozen=True, slots=True)
class ApiGroupVersion:
    """One served group-version: its resources, shared OpenAPI definitions and extra routes."""

    group: str
    version: str
    resources: tuple[ServedResource, ...]
    definitions: Mapping[str, Any] = field(default_factory=dict)  # shared OpenAPI v2 definitions
    definition_prefix: str = ""  # e.g. io.panopticon.metrics.v1alpha1. (schemas' own namespace)
    routes: tuple[tuple[str, RawHandler], ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def base(self) -> str:
        return f"/apis/{self.group_version}"

    def resource(self, plural: str) -> ServedResource | None:
        for resource in self.resources:
            if resource.plural == plural:
                return resource
        return None


class ApiRegistry:
    """The ordered table of served group-versions (first version of a group is preferred)."""

    def __init__(self, entries: Sequence[ApiGroupVersion]) -> None:
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            key = (entry.group, entry.version)
            if key in seen:
                raise ValueError(f"group-version {entry.group_version} registered twice")
            seen.add(key)
        self.entries: tuple[ApiGroupVersion, ...] = tuple(entries)
        self._index = {(e.group, e.version, r.plural): r for e in self.entries for r in e.resources}
        self._labels = frozenset(r.label for e in self.entries for r in e.resources)

    def groups(self) -> list[tuple[str, list[ApiGroupVersion]]]:
        """Group name -> its versions, in registration order."""
        out: dict[str, list[ApiGroupVersion]] = {}
        for entry in self.entries:
            out.setdefault(entry.group, []).append(entry)
        return list(out.items())

    def group_version(self, group: str, version: str) -> ApiGroupVersion | None:
        for entry in self.entries:
            if entry.group == group and entry.version == version:
                return entry
        return None

    def lookup(self, group: str, version: str, plural: str) -> ServedResource | None:
        return self._index.get((group, version, plural))

    def telemetry_label(self, group: str, version: str, plural: str) -> str:
        """The resource's label for request metrics; ``other`` for anything unknown."""
        resource = self._index.get((group, version, plural))
        return resource.label if resource is not None and resource.label in self._labels else OTHER
