"""The custom and external metrics APIs through the real application over TLS (fake reviews).

Checks the wire: discovery lists like prometheus-adapter's, v1beta2/v1beta1/external shapes,
percent-encoded ``*``, the SubjectAccessReview attributes the kube-apiserver itself used,
Status errors, and the ``Warning`` header for skipped NaN series.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.metric_lookup import StateMetrics
from apiserver.metrics_apis import metrics_api_groups
from apiserver.server import HttpsServer, build_app
from apiserver.views import ApiViews, guess_resource
from certs.reload import ReloadingServerTLS
from exporter.exposition import Exposition, parse_series
from exporter.store import MetricsStore
from tests.plan_doubles import SamplePlan
from tests.unit.apiserver.conftest import MASTERS_HEADERS, FakeReviewer, Pki, Served
from tests.unit.apiserver.test_metric_lookup import widget

CM = "/apis/custom.metrics.k8s.io/v1beta2"
CM1 = "/apis/custom.metrics.k8s.io/v1beta1"
EM = "/apis/external.metrics.k8s.io/v1beta1"


@asynccontextmanager
async def serve_metrics(pki: Pki, store: MetricsStore) -> AsyncIterator[Served]:
    """The real application serving ``store``'s metrics APIs over TLS, with fake reviews."""
    views = ApiViews(store)
    reviewer = FakeReviewer()
    settings = pki.settings()
    groups = metrics_api_groups(StateMetrics(store, views, parse_series=parse_series, namer=guess_resource))
    app = build_app(
        views=views,
        exposition=Exposition(store),
        parse_series=parse_series,
        authenticator=Authenticator(settings, token_reviewer=reviewer),
        authorizer=Authorizer(reviewer, always_allow_paths=["/healthz"]),
        groups=groups,
    )
    tls = ReloadingServerTLS(pair=pki.serving, client_ca_pem=settings.tls_client_ca_pem)
    server = HttpsServer(app, tls, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield Served(
            f"https://127.0.0.1:{server.port}",
            store,
            views,
            reviewer,
            Authenticator(settings),
            Authorizer(None),
            tls,
            pki,
        )
    finally:
        await server.stop()
        views.close()


@pytest.fixture
async def metrics_served(pki: Pki) -> AsyncIterator[Served]:
    store = MetricsStore(clock=lambda: 1_700_000_000.0)
    store.set_plan(SamplePlan.of("widgets", ["widget_backlog", "widget_condition"]))
    store.replace(
        "widgets",
        [
            widget(
                "w1",
                "team-a",
                {
                    "widget_backlog": [({}, 30)],
                    "widget_condition": [({"type": "Ready"}, 1), ({"type": "Stalled"}, 0)],
                },
                labels={"app": "queue"},
            ),
            widget("w2", "team-a", {"widget_backlog": [({}, 2.5)]}, labels={"app": "queue"}),
            widget("w3", "team-a", {"widget_backlog": [({}, math.nan)]}, labels={"app": "queue"}),
        ],
    )
    async with serve_metrics(pki, store) as served:
        yield served


async def get(served: Served, path: str, headers: Any = MASTERS_HEADERS) -> tuple[int, Any, Any]:
    async with served.proxy_session() as s, s.get(served.url + path, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def test_discovery_lists_metrics_like_prometheus_adapter(metrics_served: Served) -> None:
    _, groups, _ = await get(metrics_served, "/apis")
    by_name = {g["name"]: g for g in groups["groups"]}
    assert [v["version"] for v in by_name["custom.metrics.k8s.io"]["versions"]] == ["v1beta2", "v1beta1"]
    assert by_name["custom.metrics.k8s.io"]["preferredVersion"]["version"] == "v1beta2"
    assert [v["version"] for v in by_name["external.metrics.k8s.io"]["versions"]] == ["v1beta1"]
    for base in (CM, CM1):
        status, body, _ = await get(metrics_served, base)
        assert status == 200 and body["kind"] == "APIResourceList"
        assert body["resources"] == [
            {
                "name": f"widgets.example.com/{m}",
                "singularName": "",
                "namespaced": True,
                "kind": "MetricValueList",
                "verbs": ["get"],
            }
            for m in ("widget_backlog", "widget_condition")
        ]
    _, external, _ = await get(metrics_served, EM)
    assert [r["name"] for r in external["resources"]] == ["widget_backlog", "widget_condition"]
    assert {r["kind"] for r in external["resources"]} == {"ExternalMetricValueList"}


async def test_object_metric_v1beta2_and_v1beta1(metrics_served: Served) -> None:
    status, body, _ = await get(
        metrics_served, f"{CM}/namespaces/team-a/widgets.example.com/w2/widget_backlog"
    )
    assert status == 200, body
    assert body["kind"] == "MetricValueList" and body["apiVersion"] == "custom.metrics.k8s.io/v1beta2"
    assert body["items"] == [
        {
            "describedObject": {
                "kind": "Widget",
                "namespace": "team-a",
                "name": "w2",
                "apiVersion": "example.com/v1",
            },
            "metric": {"name": "widget_backlog"},
            "timestamp": "2023-11-14T22:13:20Z",
            "windowSeconds": 0,
            "value": "2500m",
        }
    ]
    status, old, _ = await get(
        metrics_served,
        f"{CM1}/namespaces/team-a/widgets.example.com/w1/widget_condition?metricLabelSelector=type%3DReady",
    )
    assert status == 200, old
    [item] = old["items"]
    assert old["apiVersion"] == "custom.metrics.k8s.io/v1beta1"
    assert item["metricName"] == "widget_condition" and item["value"] == "1" and item["window"] == 0
    assert item["selector"] == {"matchLabels": {"type": "Ready"}}


async def test_star_percent_encoded_with_label_selector_and_nan_warning(metrics_served: Served) -> None:
    status, body, headers = await get(
        metrics_served,
        f"{CM}/namespaces/team-a/widgets.example.com/%2A/widget_backlog?labelSelector=app%3Dqueue",
    )
    assert status == 200, body
    assert [(i["describedObject"]["name"], i["value"]) for i in body["items"]] == [
        ("w1", "30"),
        ("w2", "2500m"),
    ]
    assert headers["Warning"].startswith('299 - "skipped 1 series with a non-finite value: ')
    assert "w3" in headers["Warning"]


async def test_external_metric_with_selector(metrics_served: Served) -> None:
    status, body, _ = await get(
        metrics_served, f"{EM}/namespaces/team-a/widget_condition?labelSelector=type%3DReady"
    )
    assert status == 200, body
    assert body["kind"] == "ExternalMetricValueList"
    assert body["items"] == [
        {
            "metricName": "widget_condition",
            "metricLabels": {"namespace": "team-a", "widget": "w1", "type": "Ready"},
            "timestamp": "2023-11-14T22:13:20Z",
            "window": 0,
            "value": "1",
        }
    ]
    _, empty, _ = await get(metrics_served, f"{EM}/namespaces/team-z/widget_condition")
    assert empty["items"] == []


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        (f"{CM}/namespaces/team-a/widgets.example.com/w9/widget_backlog", 404, "w9 not found"),
        (f"{CM}/namespaces/team-a/widgets.example.com/w1/nope", 404, "nope"),
        (f"{CM}/namespaces/team-a/deployments.apps/w1/widget_backlog", 404, "describes widgets.example.com"),
        (f"{CM}/namespaces/team-a/widgets.example.com/w1/widget_condition", 400, "narrow it to one"),
        (f"{CM}/namespaces/team-a/widgets.example.com/w3/widget_backlog", 404, "no finite value"),
        (
            f"{CM}/namespaces/team-a/widgets.example.com/w1/widget_backlog?metricLabelSelector=a%3D%3D%3D",
            400,
            "metricLabelSelector",
        ),
        (f"{EM}/namespaces/team-a/nope", 404, "nope"),
    ],
)
async def test_errors_are_status(metrics_served: Served, path: str, code: int, words: str) -> None:
    status, body, _ = await get(metrics_served, path)
    assert status == code and body["kind"] == "Status" and body["code"] == code, body
    assert words in body["message"]


async def test_sar_attributes_are_the_kube_apiservers(metrics_served: Served) -> None:
    reviewer = metrics_served.reviewer
    reviewer.allow = lambda spec: spec["resourceAttributes"]["resource"] != "widget_condition"
    user = [
        ("X-Remote-User", "system:serviceaccount:kube-system:horizontal-pod-autoscaler"),
        ("X-Remote-Group", "system:serviceaccounts"),
    ]
    ok, _, _ = await get(
        metrics_served, f"{CM}/namespaces/team-a/widgets.example.com/%2A/widget_backlog", user
    )
    ext, _, _ = await get(metrics_served, f"{EM}/namespaces/team-a/widget_backlog", user)
    denied, body, _ = await get(metrics_served, f"{EM}/namespaces/team-a/widget_condition", user)
    assert (ok, ext, denied) == (200, 200, 403)
    assert 'cannot list resource "widget_condition" in API group "external.metrics.k8s.io"' in body["message"]
    attrs = [r["resourceAttributes"] for r in reviewer.access_reviews]
    assert attrs[0] == {
        "namespace": "team-a",
        "verb": "get",
        "group": "custom.metrics.k8s.io",
        "version": "v1beta2",
        "resource": "widgets.example.com",
        "subresource": "widget_backlog",
        "name": "*",
    }
    assert attrs[1] == {
        "namespace": "team-a",
        "verb": "list",
        "group": "external.metrics.k8s.io",
        "version": "v1beta1",
        "resource": "widget_backlog",
        "subresource": "",
        "name": "",
    }
    assert reviewer.access_reviews[0]["user"] == "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


@pytest.fixture
async def cluster_scoped_served(pki: Pki) -> AsyncIterator[Served]:
    from exporter.types import FamilyHeader, TargetRef

    nodes, namespaces, pods = TargetRef("v1", "Node"), TargetRef("v1", "Namespace"), TargetRef("v1", "Pod")
    store = MetricsStore(clock=lambda: 1_700_000_000.0)
    store.set_plan(
        SamplePlan("nodes", (FamilyHeader("core_node_pods", "h", "gauge", "nodes", nodes),), nodes)
    )
    store.set_plan(
        SamplePlan(
            "namespaces",
            (FamilyHeader("core_namespace_quota", "h", "gauge", "namespaces", namespaces),),
            namespaces,
        )
    )

    store.set_plan(SamplePlan("pods", (FamilyHeader("core_pod_restarts", "h", "gauge", "pods", pods),), pods))

    def obj(kind: str, name: str, value: float, labels: dict[str, str]) -> dict[str, Any]:
        family = {"Node": "core_node_pods", "Namespace": "core_namespace_quota"}.get(
            kind, "core_pod_restarts"
        )
        meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", "labels": labels}
        if kind == "Pod":
            meta["namespace"] = "team-a"
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "samples": {family: [[{}, value]]}}

    store.replace("nodes", [obj("Node", "n1", 12, {"zone": "a"}), obj("Node", "n2", 3, {"zone": "b"})])
    store.replace("namespaces", [obj("Namespace", "team-a", 0.25, {})])
    store.replace("pods", [obj("Pod", "web-0", 2, {"app": "web"}), obj("Pod", "db-0", 5, {"app": "db"})])
    async with serve_metrics(pki, store) as served:
        yield served


async def test_cluster_scoped_and_namespace_metrics(cluster_scoped_served: Served) -> None:
    served = cluster_scoped_served
    _, discovery, _ = await get(served, CM)
    assert {(r["name"], r["namespaced"]) for r in discovery["resources"]} == {
        ("nodes/core_node_pods", False),
        ("namespaces/core_namespace_quota", False),
        ("pods/core_pod_restarts", True),
    }
    _, external, _ = await get(served, EM)
    # cluster-scoped series are not any namespace's external metric
    assert [r["name"] for r in external["resources"]] == ["core_pod_restarts"]
    _, web, _ = await get(
        served, f"{CM}/namespaces/team-a/pods/%2A/core_pod_restarts?labelSelector=app%3Dweb"
    )
    assert [(i["describedObject"], i["value"]) for i in web["items"]] == [
        ({"kind": "Pod", "namespace": "team-a", "name": "web-0", "apiVersion": "v1"}, "2")
    ]
    status, one, _ = await get(served, f"{CM}/nodes/n1/core_node_pods")
    assert status == 200 and one["items"][0]["describedObject"] == {
        "kind": "Node",
        "name": "n1",
        "apiVersion": "v1",
    }
    assert one["items"][0]["value"] == "12"
    _, zone, _ = await get(served, f"{CM}/nodes/%2A/core_node_pods?labelSelector=zone%3Db")
    assert [(i["describedObject"]["name"], i["value"]) for i in zone["items"]] == [("n2", "3")]
    status, quota, _ = await get(served, f"{CM}/namespaces/team-a/metrics/core_namespace_quota")
    assert status == 200 and quota["items"][0]["value"] == "250m"
    assert quota["items"][0]["describedObject"] == {"kind": "Namespace", "name": "team-a", "apiVersion": "v1"}
    status, scoped, _ = await get(served, f"{CM}/namespaces/team-a/nodes/n1/core_node_pods")
    assert status == 404 and "cluster-scoped" in scoped["message"]
    status, ext, _ = await get(served, f"{EM}/namespaces/team-a/core_node_pods")
    assert status == 404 and "/apis/custom.metrics.k8s.io/v1beta2/nodes/*/core_node_pods" in ext["message"]
