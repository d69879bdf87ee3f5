"""The ``metrics.panopticon.io/v1alpha1`` entries of the registry, and their projections.

Three object resources over ``apiserver.views.ApiViews`` (which all share its one
resourceVersion counter and event log), plus ``prometheus``: authorized as verb ``list`` on
resource ``prometheus`` (cluster-wide or in a namespace) and counted in telemetry, served as
Prometheus text by ``apiserver.prometheus``, and deliberately not discoverable (it answers text,
not objects, so listing it would break ``kubectl get prometheus`` and "get all" tools).

Each projection (``FamilyBackend``, ``ObjectBackend``) is a ``registry.ResourceBackend``:
items in name order, key, labels, RV, the object shape and Table cells from ``apiserver.objects``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apiserver import metrics_schemas
from apiserver import objects as shapes
from apiserver.objects import GROUP, VERSION, SeriesParser
from apiserver.registry import ApiGroupVersion, EventSource, RawHandler, ServedResource
from apiserver.views import ApiViews, FamilySnapshot, ObjectSnapshot, ResourceName

CATEGORIES = ("panopticon",)


class FamilyBackend:
    """``metricfamilies``: one item per exported family (cluster-scoped)."""

    def __init__(self, views: ApiViews) -> None:
        self._views = views

    @property
    def events(self) -> EventSource:
        return self._views

    def sync(self) -> None:
        self._views.refresh_families()

    def items(self, namespace: str | None) -> Sequence[FamilySnapshot]:
        return self._views.families()

    def item(self, namespace: str, name: str) -> FamilySnapshot | None:
        return self._views.family(name)

    def key(self, item: FamilySnapshot) -> tuple[str, str]:
        return "", item.name

    def labels(self, item: FamilySnapshot) -> Mapping[str, str]:
        return shapes.family_labels(item)

    def rv(self, item: FamilySnapshot) -> int:
        return item.rv

    def to_object(self, item: FamilySnapshot) -> dict[str, Any]:
        return shapes.metric_family(item)

    def cells(self, item: FamilySnapshot, *, now: float) -> list[Any]:
        return shapes.family_cells(item, now=now)


class ObjectBackend:
    """``objectmetrics`` / ``clusterobjectmetrics``: one item per target object."""

    def __init__(self, views: ApiViews, resource: ResourceName, *, parse_series: SeriesParser) -> None:
        self._views, self._resource, self._parse = views, resource, parse_series

    @property
    def events(self) -> EventSource:
        return self._views

    def sync(self) -> None:
        pass

    def items(self, namespace: str | None) -> Sequence[ObjectSnapshot]:
        return self._views.objects(self._resource, namespace=namespace)

    def item(self, namespace: str, name: str) -> ObjectSnapshot | None:
        return self._views.object(self._resource, namespace=namespace, name=name)

    def key(self, item: ObjectSnapshot) -> tuple[str, str]:
        return item.namespace, item.api_name

    def labels(self, item: ObjectSnapshot) -> Mapping[str, str]:
        return shapes.object_labels(item)

    def rv(self, item: ObjectSnapshot) -> int:
        return item.rv

    def to_object(self, item: ObjectSnapshot) -> dict[str, Any]:
        return shapes.object_metrics(item, self._parse)

    def cells(self, item: ObjectSnapshot, *, now: float) -> list[Any]:
        return shapes.object_cells(item, now=now)


def _object_resource(
    views: ApiViews,
    plural: ResourceName,
    *,
    kind: str,
    namespaced: bool,
    short_name: str,
    parse_series: SeriesParser,
) -> ServedResource:
    """One of the two object-metrics resources (namespaced or cluster-scoped): same backend and columns."""
    return ServedResource(
        plural=plural,
        singular=plural,
        kind=kind,
        namespaced=namespaced,
        backend=ObjectBackend(views, plural, parse_series=parse_series),
        columns=shapes.OBJECT_COLUMNS,
        schema=metrics_schemas.SCHEMAS[kind],
        short_names=(short_name,),
        categories=CATEGORIES,
    )


def metrics_group(views: ApiViews, *, parse_series: SeriesParser, prometheus: RawHandler) -> ApiGroupVersion:
    """The group-version entry: what discovery, OpenAPI, routing, watch and telemetry read."""
    schemas = metrics_schemas.SCHEMAS
    return ApiGroupVersion(
        group=GROUP,
        version=VERSION,
        definitions=metrics_schemas.SHARED,
        definition_prefix=metrics_schemas.PREFIX,
        resources=(
            ServedResource(
                plural="metricfamilies",
                singular="metricfamily",
                kind=shapes.FAMILY_KIND,
                namespaced=False,
                backend=FamilyBackend(views),
                columns=shapes.FAMILY_COLUMNS,
                schema=schemas[shapes.FAMILY_KIND],
                short_names=("mf",),
                categories=CATEGORIES,
            ),
            _object_resource(
                views,
                "objectmetrics",
                kind=shapes.OBJECT_KIND,
                namespaced=True,
                short_name="om",
                parse_series=parse_series,
            ),
            _object_resource(
                views,
                "clusterobjectmetrics",
                kind=shapes.CLUSTER_OBJECT_KIND,
                namespaced=False,
                short_name="com",
                parse_series=parse_series,
            ),
            ServedResource(
                plural="prometheus",
                singular="prometheus",
                kind="",
                namespaced=True,
                handler=prometheus,
                verbs=("list",),
                discoverable=False,
            ),
        ),
    )
