"""``custom.metrics.k8s.io`` (``v1beta2``, ``v1beta1``) and ``external.metrics.k8s.io/v1beta1``.

Registry entries (``apiserver.registry``) with routes, served on the same port as the rest of
the API and behind the same authentication and authorization middlewares. The kube-apiserver
authorizes ``/apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/widgets.example.com/w/backlog``
as verb ``get`` on resource ``widgets.example.com``, name ``w``, subresource ``backlog`` in
``NS``, and ``/apis/external.metrics.k8s.io/v1beta1/namespaces/NS/backlog`` as ``list`` on
resource ``backlog`` in ``NS``; ``apiserver.requestinfo`` derives the same attributes from the
(percent-decoded) path, so our SubjectAccessReview asks exactly what it asked.

Paths (``<gr>`` is ``<resource>.<group>``, or the plural alone for the core group):

| path under ``/apis/custom.metrics.k8s.io/<v>/`` | answer |
|---|---|
| ``namespaces/NS/<gr>/NAME/<family>`` | the object's one series (``metricLabelSelector`` narrows) |
| ``namespaces/NS/<gr>/*/<family>`` | one item per object whose labels match ``labelSelector`` |
| ``<gr>/NAME/<family>``, ``<gr>/*/<family>`` | the same for cluster-scoped kinds |
| ``namespaces/NS/metrics/<family>`` | a series of the Namespace object ``NS`` |

and ``/apis/external.metrics.k8s.io/v1beta1/namespaces/NS/<family>?labelSelector=...``: one item
per series of objects in ``NS`` (the HPA sums them). Series of cluster-scoped objects are not
external metrics: a namespace's reader must not read cluster-wide data through its namespace;
they are served by the root-scoped custom metrics paths, which need cluster-wide rights.

Errors are ``Status`` objects: unknown family/object 404, ambiguous series 400, bad selectors
400. Series whose value is NaN or infinite are left out and named in a ``Warning`` header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from apiserver import metric_values as shapes
from apiserver.metric_lookup import Lookup, MetricLookupError, StateMetrics
from apiserver.metric_values import CUSTOM_GROUP, EXTERNAL_GROUP
from apiserver.registry import ApiGroupVersion
from apiserver.selectors import LabelSelector, SelectorError, parse_label_selector
from apiserver.status import StatusError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CUSTOM_VERSIONS = ("v1beta2", "v1beta1")  # the first is the preferred version
ALL_OBJECTS = "*"
MAX_WARNINGS = 5


def _selector(request: web.Request, parameter: str) -> LabelSelector:
    try:
        return parse_label_selector(request.query.get(parameter))
    except SelectorError as exc:
        raise StatusError(400, f"{parameter}: {exc}") from exc


def _warning_text(text: str) -> str:
    # RFC 7234 warn-text is a quoted string: no double quotes or control characters inside.
    return "".join(c if 32 <= ord(c) < 127 and c != '"' else "'" for c in text)


def _respond(body: dict[str, Any], found: Lookup) -> web.Response:
    response = web.Response(body=orjson.dumps(body), content_type="application/json")
    skipped = found.skipped
    if skipped:
        shown = "; ".join(s.describe() for s in skipped[:MAX_WARNINGS])
        more = f" and {len(skipped) - MAX_WARNINGS} more" if len(skipped) > MAX_WARNINGS else ""
        text = f"skipped {len(skipped)} series with a non-finite value: {shown}{more}"
        response.headers["Warning"] = f'299 - "{_warning_text(text)}"'
    return response


def _status(error: MetricLookupError, *, group: str, kind: str, name: str) -> StatusError:
    details = {"group": group, "kind": kind, "name": name} if error.code == 404 else None
    return StatusError(error.code, str(error), details=details)


class MetricsApis:
    """The handlers of both groups over one ``StateMetrics``."""

    def __init__(self, metrics: StateMetrics) -> None:
        self.metrics = metrics

    # ------------------------------------------------------------------ custom metrics

    def _custom(
        self, request: web.Request, *, version: str, group_resource: str, namespace: str, name: str
    ) -> web.Response:
        family = request.match_info["metric"]
        metric_selector = _selector(request, "metricLabelSelector")
        try:
            info = self.metrics.metric(family, group_resource)
            if name == ALL_OBJECTS:
                found = self.metrics.for_objects(
                    info,
                    namespace=namespace,
                    object_selector=_selector(request, "labelSelector"),
                    metric_selector=metric_selector,
                )
            else:
                found = self.metrics.for_object(
                    info, namespace=namespace, name=name, metric_selector=metric_selector
                )
        except MetricLookupError as exc:
            raise _status(exc, group=CUSTOM_GROUP, kind=group_resource, name=name) from exc
        return _respond(shapes.metric_value_list(found.points, metric_selector, version=version), found)

    def custom_handlers(self, version: str) -> tuple[tuple[str, Handler], ...]:
        async def namespace_metric(request: web.Request) -> web.StreamResponse:
            return self._custom(
                request, version=version, group_resource="namespaces", namespace="",
                name=request.match_info["namespace"],
            )

        async def namespaced_object(request: web.Request) -> web.StreamResponse:
            return self._custom(
                request, version=version, group_resource=request.match_info["resource"],
                namespace=request.match_info["namespace"], name=request.match_info["name"],
            )

        async def cluster_object(request: web.Request) -> web.StreamResponse:
            return self._custom(
                request, version=version, group_resource=request.match_info["resource"],
                namespace="", name=request.match_info["name"],
            )

        return (
            ("namespaces/{namespace}/metrics/{metric}", namespace_metric),
            ("namespaces/{namespace}/{resource}/{name}/{metric}", namespaced_object),
            ("{resource}/{name}/{metric}", cluster_object),
        )

    def custom_discovery(self) -> list[dict[str, Any]]:
        return shapes.custom_discovery(self.metrics.all_shares())

    # ------------------------------------------------------------------ external metrics

    async def external(self, request: web.Request) -> web.StreamResponse:
        family, namespace = request.match_info["metric"], request.match_info["namespace"]
        selector = _selector(request, "labelSelector")
        try:
            info = self.metrics.metric(family)
            if not info.namespaced:
                raise MetricLookupError(
                    f'metric "{family}" not found: it describes cluster-scoped {info.group_resource}, '
                    f"read it from /apis/{CUSTOM_GROUP}/{CUSTOM_VERSIONS[0]}/{info.group_resource}/*/{family}"
                )
            found = self.metrics.external(info, namespace=namespace, selector=selector)
        except MetricLookupError as exc:
            raise _status(exc, group=EXTERNAL_GROUP, kind=family, name=family) from exc
        return _respond(shapes.external_value_list(found.points), found)

    def external_discovery(self) -> list[dict[str, Any]]:
        return shapes.external_discovery(self.metrics.families().values())


def metrics_api_groups(metrics: StateMetrics) -> list[ApiGroupVersion]:
    """The registry entries: custom v1beta2 (preferred), custom v1beta1, external v1beta1."""
    apis = MetricsApis(metrics)
    custom = [
        ApiGroupVersion(
            group=CUSTOM_GROUP,
            version=version,
            resources=(),
            routes=apis.custom_handlers(version),
            discovery=apis.custom_discovery,
            route_label="custom.metrics",
        )
        for version in CUSTOM_VERSIONS
    ]
    external = ApiGroupVersion(
        group=EXTERNAL_GROUP,
        version="v1beta1",
        resources=(),
        routes=(("namespaces/{namespace}/{metric}", apis.external),),
        discovery=apis.external_discovery,
        route_label="external.metrics",
    )
    return [*custom, external]
