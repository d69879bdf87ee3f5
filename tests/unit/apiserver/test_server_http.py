"""The HTTPS application end to end (real TLS, fake reviews): discovery, resources, Status errors."""

from __future__ import annotations

from typing import Any

import aiohttp
from multidict import CIMultiDict

from tests.unit.apiserver.conftest import MASTERS_HEADERS, Served, deployment

GV = "/apis/metrics.panopticon.io/v1alpha1"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


async def get(
    served: Served,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    own = session is None
    session = session or served.proxy_session()
    try:
        async with session.get(
            served.url + path, headers=headers or MASTERS_HEADERS, allow_redirects=False
        ) as resp:
            raw = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            body: Any = raw
            if ctype.startswith("application/json"):
                import orjson

                body = orjson.loads(raw)
            return resp.status, body, resp
    finally:
        if own:
            await session.close()


async def test_s05_api_resource_list(served: Served) -> None:
    status, body, _ = await get(served, GV)
    assert status == 200
    assert body["kind"] == "APIResourceList" and body["apiVersion"] == "v1"
    assert body["groupVersion"] == "metrics.panopticon.io/v1alpha1"
    names = {r["name"] for r in body["resources"]}
    assert names == {"metricfamilies", "objectmetrics", "clusterobjectmetrics"}
    for resource in body["resources"]:
        assert {"name", "singularName", "namespaced", "kind", "verbs"} <= resource.keys()
        assert resource["verbs"] == ["get", "list", "watch"]


async def test_s06_apis_with_v2_accept_is_not_503(served: Served) -> None:
    headers = {
        **MASTERS_HEADERS,
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    }
    status, body, resp = await get(served, "/apis", headers=headers)
    assert status == 200 and status != 503
    # Not the v2 media type: the aggregator must fall back to /apis/<g>/<v>.
    assert "apidiscovery" not in resp.headers["Content-Type"]
    assert body["kind"] == "APIGroupList"
    assert body["groups"][0]["preferredVersion"]["groupVersion"] == "metrics.panopticon.io/v1alpha1"


async def test_group_and_version_documents(served: Served) -> None:
    status, body, _ = await get(served, "/apis/metrics.panopticon.io")
    assert status == 200 and body["kind"] == "APIGroup"
    status, body, _ = await get(served, "/version")
    assert status == 200 and body["gitVersion"].startswith("v")


async def test_s13_errors_are_status_with_matching_code(served: Served) -> None:
    status, body, _ = await get(served, f"{GV}/metricfamilies/nope")
    assert status == 404 and body["kind"] == "Status" and body["code"] == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'metricfamilies.metrics.panopticon.io "nope" not found'
    status, body, _ = await get(served, "/no/such/path")
    assert status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    status, body, _ = await get(served, f"{GV}/widgets")
    assert status == 404 and body["kind"] == "Status"
    async with (
        served.proxy_session() as session,
        session.post(served.url + f"{GV}/metricfamilies", headers=MASTERS_HEADERS, json={}) as resp,
    ):
        body = await resp.json()
        assert resp.status == 405 and body["reason"] == "MethodNotAllowed" and body["code"] == 405


async def test_s20_no_redirects(served: Served) -> None:
    for path in (f"{GV}/", "/apis/", f"{GV}/metricfamilies/", "//apis", f"{GV}//metricfamilies"):
        status, body, _ = await get(served, path)
        assert not 300 <= status < 400, path
        assert isinstance(body, dict) and body.get("kind") in (
            "Status",
            "APIResourceList",
            "APIGroupList",
            "MetricFamilyList",
        )


async def test_s22_health_endpoints_anonymous(served: Served) -> None:
    async with served.session() as session:
        for path in ("/healthz", "/livez", "/readyz"):
            async with session.get(served.url + path) as resp:
                assert resp.status == 200, path
                assert await resp.text() == "ok"
    assert served.reviewer.access_reviews == []


async def test_s14_lists_carry_kind_and_resource_version(served: Served) -> None:
    for resource, kind in (
        ("metricfamilies", "MetricFamilyList"),
        ("objectmetrics", "ObjectMetricsList"),
        ("clusterobjectmetrics", "ClusterObjectMetricsList"),
    ):
        status, body, _ = await get(served, f"{GV}/{resource}")
        assert status == 200
        assert body["kind"] == kind and body["apiVersion"] == "metrics.panopticon.io/v1alpha1"
        assert body["metadata"]["resourceVersion"] and int(body["metadata"]["resourceVersion"]) > 0
        assert body["items"], resource


async def test_objects_have_expected_content(served: Served) -> None:
    status, body, _ = await get(served, f"{GV}/namespaces/team-a/objectmetrics/deployments.apps.web")
    assert status == 200, body
    assert body["kind"] == "ObjectMetrics"
    assert body["metadata"]["namespace"] == "team-a"
    assert body["target"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "resource": "deployments",
        "name": "web",
        "namespace": "team-a",
        "uid": "uid-team-a-web",
        "resourceVersion": "1",
    }
    values = {s["name"]: s["value"] for s in body["series"]}
    assert values == {"kube_deployment_replicas": "3", "kube_deployment_info": "1"}
    status, body, _ = await get(served, f"{GV}/clusterobjectmetrics/nodes.core.n1")
    assert status == 200 and body["kind"] == "ClusterObjectMetrics"
    status, body, _ = await get(served, f"{GV}/metricfamilies/kube_deployment_replicas")
    assert status == 200
    assert body["type"] == "gauge" and body["series"] == 2 and body["configuration"] == "deployments"
    assert body["target"] == {"apiVersion": "apps/v1", "kind": "Deployment"}
    # A namespaced object is not visible in another namespace, nor through the cluster resource.
    status, _, _ = await get(served, f"{GV}/namespaces/team-b/objectmetrics/deployments.apps.web")
    assert status == 404
    status, _, _ = await get(served, f"{GV}/clusterobjectmetrics/deployments.apps.web")
    assert status == 404


async def test_s15_accept_negotiation(served: Served) -> None:
    for accept in ("application/json", "*/*", "application/vnd.kubernetes.protobuf, */*", ""):
        status, body, _ = await get(
            served, f"{GV}/metricfamilies", headers={**MASTERS_HEADERS, "Accept": accept}
        )
        assert status == 200, accept
        assert body["kind"] == "MetricFamilyList", accept
    status, body, _ = await get(served, f"{GV}/metricfamilies", headers={**MASTERS_HEADERS, "Accept": TABLE})
    assert status == 200 and body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    status, body, _ = await get(
        served,
        f"{GV}/metricfamilies",
        headers={**MASTERS_HEADERS, "Accept": "application/vnd.kubernetes.protobuf"},
    )
    assert status == 406 and body["kind"] == "Status" and body["reason"] == "NotAcceptable"


async def test_s16_table_rows_and_include_object(served: Served) -> None:
    headers = {**MASTERS_HEADERS, "Accept": TABLE}
    status, body, _ = await get(served, f"{GV}/objectmetrics", headers=headers)
    assert status == 200
    names = [c["name"] for c in body["columnDefinitions"]]
    assert names[0] == "Name" and "Series" in names and "Age" in names
    assert len(body["rows"]) == 2
    row = body["rows"][0]
    assert len(row["cells"]) == len(names)
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] in ("team-a", "team-b")
    status, body, _ = await get(served, f"{GV}/objectmetrics?includeObject=Object", headers=headers)
    assert body["rows"][0]["object"]["kind"] == "ObjectMetrics"
    status, body, _ = await get(served, f"{GV}/objectmetrics?includeObject=None", headers=headers)
    assert "object" not in body["rows"][0]
    status, body, _ = await get(served, f"{GV}/objectmetrics?includeObject=Bogus", headers=headers)
    assert status == 400 and body["reason"] == "BadRequest"


async def test_s17_label_and_field_selectors(served: Served) -> None:
    status, body, _ = await get(served, f"{GV}/objectmetrics?fieldSelector=metadata.namespace%3Dteam-b")
    assert [i["metadata"]["name"] for i in body["items"]] == ["deployments.apps.api"]
    status, body, _ = await get(served, f"{GV}/metricfamilies?fieldSelector=metadata.name%3Dkube_node_info")
    assert [i["metadata"]["name"] for i in body["items"]] == ["kube_node_info"]
    status, body, _ = await get(served, f"{GV}/metricfamilies?fieldSelector=metadata.name!%3Dkube_node_info")
    assert "kube_node_info" not in [i["metadata"]["name"] for i in body["items"]] and len(body["items"]) == 3
    status, body, _ = await get(
        served, f"{GV}/metricfamilies?labelSelector=metrics.panopticon.io/configuration%3Dnodes"
    )
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["kube_node_info", "kube_node_replicas"]
    status, body, _ = await get(
        served, f"{GV}/metricfamilies?labelSelector=metrics.panopticon.io/target-kind+in+(Deployment)"
    )
    assert sorted(i["metadata"]["name"] for i in body["items"]) == [
        "kube_deployment_info",
        "kube_deployment_replicas",
    ]
    status, body, _ = await get(served, f"{GV}/metricfamilies?fieldSelector=spec.type%3Dgauge")
    assert status == 400 and body["reason"] == "BadRequest"
    status, body, _ = await get(served, f"{GV}/metricfamilies?labelSelector=a+in+(b")
    assert status == 400


async def test_s18_limit_and_continue(served: Served) -> None:
    status, first, _ = await get(served, f"{GV}/metricfamilies?limit=3")
    assert len(first["items"]) == 3 and first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 1
    token = first["metadata"]["continue"]
    status, second, _ = await get(served, f"{GV}/metricfamilies?limit=3&continue={token}")
    assert len(second["items"]) == 1 and not second["metadata"].get("continue")
    names = [i["metadata"]["name"] for i in first["items"] + second["items"]]
    assert names == sorted(set(names)) and len(names) == 4
    status, _body, _ = await get(served, f"{GV}/metricfamilies?continue=garbage")
    assert status == 400


async def test_data_changes_are_visible_and_bump_resource_version(served: Served) -> None:
    _, before, _ = await get(served, f"{GV}/objectmetrics")
    served.store.upsert("deployments", deployment("web", "team-a", 7, rv="2"))
    _, after, _ = await get(served, f"{GV}/namespaces/team-a/objectmetrics/deployments.apps.web")
    assert {s["name"]: s["value"] for s in after["series"]}["kube_deployment_replicas"] == "7"
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


async def test_partial_object_metadata_list(served: Served) -> None:
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    status, body, _ = await get(served, f"{GV}/objectmetrics", headers={**MASTERS_HEADERS, "Accept": accept})
    assert status == 200 and body["kind"] == "PartialObjectMetadataList"
    assert all(i["kind"] == "PartialObjectMetadata" for i in body["items"])


def _multi(pairs: list[tuple[str, str]]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


async def test_s21_openapi_v2_and_v3_carry_gvk(served: Served) -> None:
    status, v2, _ = await get(served, "/openapi/v2")
    assert status == 200 and v2["swagger"] == "2.0"
    family = v2["definitions"]["io.panopticon.metrics.v1alpha1.MetricFamily"]
    assert family["x-kubernetes-group-version-kind"] == [
        {"group": "metrics.panopticon.io", "version": "v1alpha1", "kind": "MetricFamily"}
    ]
    op = v2["paths"][f"{GV}/metricfamilies"]["get"]
    assert (
        op["x-kubernetes-group-version-kind"]["kind"] == "MetricFamily"
        and op["x-kubernetes-action"] == "list"
    )
    assert (
        v2["paths"][f"{GV}/namespaces/{{namespace}}/objectmetrics/{{name}}"]["get"]["x-kubernetes-action"]
        == "get"
    )
    status, root, _ = await get(served, "/openapi/v3")
    url = root["paths"]["apis/metrics.panopticon.io/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/metrics.panopticon.io/v1alpha1?hash=")
    status, v3, _ = await get(served, url)
    assert status == 200 and v3["openapi"].startswith("3.")
    schema = v3["components"]["schemas"]["io.panopticon.metrics.v1alpha1.ObjectMetrics"]
    assert schema["x-kubernetes-group-version-kind"][0]["kind"] == "ObjectMetrics"
    assert schema["properties"]["series"]["items"]["$ref"].startswith("#/components/schemas/")
    get_op = v3["paths"][f"{GV}/metricfamilies/{{name}}"]["get"]
    assert get_op["x-kubernetes-group-version-kind"]["kind"] == "MetricFamily"
    status, _, _ = await get(served, "/openapi/v3/apis/other.group/v1")
    assert status == 404


def test_object_names_use_the_resolved_plural_and_core_alias() -> None:
    from apiserver.https import resolved_namer
    from apiserver.views import ApiViews, guess_resource
    from exporter.types import TargetRef
    from tests.unit.apiserver.conftest import FakePlan, populated_store

    assert guess_resource("c", TargetRef("networking.k8s.io/v1", "Ingress")) == "ingresses"
    assert guess_resource("c", TargetRef("policy/v1", "NetworkPolicy")) == "networkpolicies"
    assert guess_resource("c", TargetRef("v1", "Node")) == "nodes"
    store = populated_store()
    thanos = TargetRef("monitoring.paodin.io/v1alpha1", "Thanos")
    store.set_plan(FakePlan("thanos", thanos, "thanos"))
    store.replace("thanos", [{"metadata": {"name": "t1", "namespace": "mon", "uid": "t1"}}])
    views = ApiViews(store, namer=resolved_namer(lambda cfg: "thanos" if cfg == "thanos" else None))
    names = {s.api_name for s in views.objects("objectmetrics")} | {
        s.api_name for s in views.objects("clusterobjectmetrics")
    }
    # Resolved by discovery ("thanos", not the guessed "thanoses"); guessed otherwise; core is "core".
    assert names == {
        "thanos.monitoring.paodin.io.t1",
        "deployments.apps.web",
        "deployments.apps.api",
        "nodes.core.n1",
    }
    views.close()
