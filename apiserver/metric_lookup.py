"""Series of one metric family by target object: what the custom and external metrics APIs serve.

A family's series describe the objects of its configuration's target kind. So a custom metric
``<resource>.<group>/<family>`` is the family itself, looked up by the object it describes, and
an external metric ``<family>`` is every series of the family whose object is in a namespace:

- ``for_object``: the one object's series (the object by ``<resource>.<group>`` and name, through
  the API views' name index), narrowed by the metric selector (on series labels) to exactly one;
  several left is ``AmbiguousSeries`` (400), none ``SeriesNotFound`` (404);
- ``for_objects``: the same for every object of the kind in a namespace (or cluster-scoped ones)
  whose *object* labels match the label selector (``*`` in the API, the HPA's ``Pods`` form);
- ``external``: every series of the family of objects in one namespace matching the selector.

Values that are NaN or infinite have no ``resource.Quantity``: they are never returned, but
listed in ``Lookup.skipped`` so the API can say so (a ``Warning`` header, or the 404 message
when nothing finite is left). Unknown families, families of another kind and unknown objects are
``MetricNotFound`` / ``ObjectNotFound`` (404).

Reads only: the store (``entries`` of one configuration, per namespace), the views' name index
and the series parser. Parsed chunks are memoised by their bytes (a chunk is immutable and its
hash is cached by CPython), at most ``PARSE_CACHE_SIZE`` of them, so the HPA's repeated lookups
of unchanged objects do not re-parse. One event loop, like the store; nothing here awaits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from apiserver.selectors import LabelSelector
from apiserver.views import CORE_GROUP_ALIAS, ObjectSnapshot, ResourceName, ResourceNamer, object_metrics_name
from exporter.store import ObjectEntry
from exporter.types import FamilyHeader, Plan, Series, TargetRef

SeriesParser = Callable[[bytes], list[Series]]
PARSE_CACHE_SIZE = 16384
# (configuration, target) -> whether the target kind is namespaced
ScopeOf = Callable[[str, TargetRef], bool]

CLUSTER_SCOPED_KINDS = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("metrics.appscode.com", "MetricsConfiguration"),
    }
)


def guess_namespaced(_configuration: str, target: TargetRef) -> bool:
    """Scope without discovery: the well-known cluster-scoped kinds, everything else namespaced."""
    return (target.group, target.kind) not in CLUSTER_SCOPED_KINDS


class MetricLookupError(Exception):
    """A lookup that cannot be answered; ``code`` is the HTTP status of the Status to send."""

    code = 404


class MetricNotFound(MetricLookupError):
    """No family of that name describes that resource."""


class ObjectNotFound(MetricLookupError):
    """The target object has no series (unknown object, or none of this family)."""


class SeriesNotFound(MetricLookupError):
    """The object exists but no finite series of the family matches the metric selector."""


class AmbiguousSeries(MetricLookupError):
    """More than one series matches for one object: the metric selector must narrow it."""

    code = 400


class ScopeMismatch(MetricLookupError):
    """A namespaced kind asked for without a namespace, or a cluster-scoped one with one."""


@dataclass(frozen=True, slots=True)
class Target:
    """The object a value describes (a ``core/v1`` ``ObjectReference``)."""

    api_version: str
    kind: str
    resource: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Point:
    """One finite value of one series of one object."""

    target: Target
    family: str
    labels: Mapping[str, str]
    value: float
    rendered: float  # Unix time the object was last rendered


@dataclass(frozen=True, slots=True)
class Skipped:
    """A series left out because its value is NaN or infinite."""

    target: Target
    labels: Mapping[str, str]
    value: float

    def describe(self) -> str:
        where = f"{self.target.namespace}/{self.target.name}" if self.target.namespace else self.target.name
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.target.resource} {where} {{{labels}}} = {self.value}"


@dataclass(slots=True)
class Lookup:
    points: list[Point] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One family as the metrics APIs show it: which resource it describes, and its scope."""

    header: FamilyHeader
    index: int  # position of the family in its plan (the chunk index in store entries)
    resource: str  # plural, e.g. "widgets"
    namespaced: bool

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def group(self) -> str:
        return self.header.target.group

    @property
    def group_resource(self) -> str:
        """``<resource>.<group>``, or the plural alone for the core group (``pods``)."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


class MetricsStoreReader(Protocol):
    """What the lookups read from ``exporter.store.MetricsStore``."""

    def plans(self) -> list[Plan]: ...

    def entries(self, plan_name: str, *, namespace: str | None = None) -> Iterable[ObjectEntry]: ...


class ObjectIndex(Protocol):
    """What the lookups read from ``apiserver.views.ApiViews`` (its name -> object index)."""

    def object(self, resource: ResourceName, *, namespace: str, name: str) -> ObjectSnapshot | None: ...


def split_group_resource(text: str) -> tuple[str, str]:
    """``widgets.example.com`` -> (``widgets``, ``example.com``); ``pods`` -> (``pods``, ``""``)."""
    resource, _, group = text.partition(".")
    return resource, "" if group == CORE_GROUP_ALIAS else group


class StateMetrics:
    """See the module docstring."""

    def __init__(
        self,
        store: MetricsStoreReader,
        views: ObjectIndex,
        *,
        parse_series: SeriesParser,
        namer: ResourceNamer,
        namespaced: ScopeOf = guess_namespaced,
    ) -> None:
        self._store, self._views, self._parse = store, views, parse_series
        self._namer, self._namespaced = namer, namespaced
        self._plans_key: tuple[int, ...] = ()
        self._families: dict[str, MetricInfo] = {}
        # a family several configurations feed (exporter/sharing.py): one MetricInfo each
        self._shares: dict[str, list[MetricInfo]] = {}
        self._parsed: dict[bytes, list[Series]] = {}

    # ------------------------------------------------------------------ catalogue

    def families(self) -> dict[str, MetricInfo]:
        """Every family by name, as its first configuration (by name) feeds it (rebuilt only
        when the set of plans changes); ``shares`` has every configuration's."""
        plans = self._store.plans()
        key = tuple(id(plan) for plan in plans)
        if key != self._plans_key:
            shares: dict[str, list[MetricInfo]] = {}
            for plan in plans:
                resource = self._namer(plan.name, plan.target)
                namespaced = self._namespaced(plan.name, plan.target)
                for index, header in enumerate(plan.families):
                    shares.setdefault(header.name, []).append(MetricInfo(header, index, resource, namespaced))
            self._shares, self._plans_key = shares, key
            self._families = {name: infos[0] for name, infos in shares.items()}
        return self._families

    def shares(self, family: str) -> list[MetricInfo]:
        """Every configuration's share of ``family`` in configuration-name order (one, unless
        several configurations feed it); empty for an unknown family."""
        self.families()
        return self._shares.get(family, [])

    def all_shares(self) -> list[MetricInfo]:
        """Every (family, configuration) pair: what custom metrics discovery lists."""
        self.families()
        return [info for infos in self._shares.values() for info in infos]

    def metric(self, family: str, group_resource: str | None = None) -> MetricInfo:
        """The family (for ``group_resource`` when given: the share describing that resource;
        else ``MetricNotFound``)."""
        shares = self.shares(family)
        if not shares:
            raise MetricNotFound(f'metric "{family}" not found: no metric family of that name')
        if group_resource is None:
            return shares[0]
        resource, group = split_group_resource(group_resource)
        for info in shares:
            if (resource, group) == (info.resource, info.group):
                return info
        raise MetricNotFound(
            f'metric "{family}" not found for {group_resource}: the family describes '
            + ", ".join(info.group_resource for info in shares)
        )

    # ------------------------------------------------------------------ lookups

    def for_object(
        self, info: MetricInfo, *, namespace: str, name: str, metric_selector: LabelSelector
    ) -> Lookup:
        """The one series of ``info`` for one object (``namespace`` ``""``: cluster-scoped)."""
        self._check_scope(info, namespace)
        target_ref = info.header.target
        snap = self._views.object(
            "objectmetrics" if namespace else "clusterobjectmetrics",
            namespace=namespace,
            name=object_metrics_name(info.resource, target_ref, name),
        )
        entry = None
        if snap is not None:
            entry = next((e for e in snap.entries if e.configuration == info.header.configuration), None)
        where = f"{info.group_resource} {namespace + '/' if namespace else ''}{name}"
        if entry is None:
            raise ObjectNotFound(f'{where} not found: the object has no series of metric "{info.name}"')
        found = Lookup()
        self._collect(info, entry, metric_selector, found, single=True)
        if not found.points:
            skipped = "; skipped (no finite value): " + "; ".join(s.describe() for s in found.skipped)
            raise SeriesNotFound(
                f'metric "{info.name}" of {where}: no series matches the metric selector'
                + (skipped if found.skipped else "")
            )
        return found

    def for_objects(
        self,
        info: MetricInfo,
        *,
        namespace: str,
        object_selector: LabelSelector,
        metric_selector: LabelSelector,
    ) -> Lookup:
        """One series per object of the kind whose object labels match ``object_selector``."""
        self._check_scope(info, namespace)
        found = Lookup()
        for entry in self._store.entries(info.header.configuration, namespace=namespace):
            if object_selector.matches(entry.labels):
                self._collect(info, entry, metric_selector, found, single=True)
        found.points.sort(key=lambda p: p.target.name)
        return found

    def external(self, info: MetricInfo, *, namespace: str, selector: LabelSelector) -> Lookup:
        """Every finite series of the family, of objects in ``namespace``, matching ``selector``."""
        found = Lookup()
        for share in self.shares(info.name) or [info]:  # every configuration feeding the family
            for entry in self._store.entries(share.header.configuration, namespace=namespace):
                self._collect(share, entry, selector, found, single=False)
        found.points.sort(key=lambda p: (p.target.name, sorted(p.labels.items())))
        return found

    # ------------------------------------------------------------------ internals

    def _series(self, chunk: bytes) -> list[Series]:
        parsed = self._parsed.get(chunk)
        if parsed is None:
            if len(self._parsed) >= PARSE_CACHE_SIZE:
                self._parsed.clear()  # changed objects leave stale chunks behind: start afresh
            parsed = self._parsed[chunk] = self._parse(chunk)
        return parsed

    @staticmethod
    def _check_scope(info: MetricInfo, namespace: str) -> None:
        if info.namespaced and not namespace:
            raise ScopeMismatch(
                f"{info.group_resource} is namespaced: ask under "
                f"/namespaces/<namespace>/{info.group_resource}"
            )
        if not info.namespaced and namespace:
            raise ScopeMismatch(
                f"{info.group_resource} is cluster-scoped: ask without /namespaces/{namespace}"
            )

    def _collect(
        self,
        info: MetricInfo,
        entry: ObjectEntry,
        selector: LabelSelector,
        found: Lookup,
        *,
        single: bool,
    ) -> None:
        chunk = entry.chunks[info.index] if info.index < len(entry.chunks) else b""
        if not chunk:
            return
        target_ref = info.header.target
        target = Target(target_ref.api_version, target_ref.kind, info.resource, entry.namespace, entry.name)
        matched = [s for s in self._series(chunk) if s.name == info.name and selector.matches(s.labels)]
        finite = []
        for series in matched:
            if math.isfinite(series.value):
                finite.append(series)
            else:
                found.skipped.append(Skipped(target, series.labels, series.value))
        if single and len(finite) > 1:
            labels = "; ".join(",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) for s in finite)
            raise AmbiguousSeries(
                f'metric "{info.name}" has {len(finite)} series for {info.group_resource} '
                f"{entry.namespace + '/' if entry.namespace else ''}{entry.name} ({labels}): "
                "narrow it to one with a metric label selector"
            )
        # Series (and their label mappings) come from the parse memo: shared, never mutated.
        found.points.extend(Point(target, info.name, s.labels, s.value, entry.rendered) for s in finite)
