"""Watch semantics (resourceVersions, 410, bookmarks, timeouts, sendInitialEvents) and /prometheus text."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.apiserver.conftest import MASTERS_HEADERS, Pki, Served, deployment, populated_store, serve

GV = "/apis/metrics.panopticon.io/v1alpha1"


async def _list(served: Served, path: str) -> dict[str, Any]:
    async with served.proxy_session() as s, s.get(served.url + path, headers=MASTERS_HEADERS) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def _watch(
    served: Served,
    path: str,
    *,
    until: int | None = None,
    during: Any = None,
    accept: str = "application/json",
) -> tuple[list[dict[str, Any]], aiohttp.ClientResponse]:
    """Collect events until the server ends the stream (or ``until`` events arrived)."""
    events: list[dict[str, Any]] = []
    async with (
        served.proxy_session() as s,
        s.get(served.url + path, headers={**MASTERS_HEADERS, "Accept": accept}) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        if during is not None:
            asyncio.get_running_loop().call_later(0.2, during)
        async for line in resp.content:
            if line.strip():
                events.append(orjson.loads(line))
            if until is not None and len(events) >= until:
                break
        return events, resp


async def test_s19_watch_from_list_rv_has_no_replay_and_streams_changes(served: Served) -> None:
    listed = await _list(served, f"{GV}/objectmetrics")
    rv = listed["metadata"]["resourceVersion"]

    def change() -> None:
        served.store.upsert("deployments", deployment("web", "team-a", 5, rv="9"))
        served.store.upsert("deployments", deployment("new", "team-a", 1, rv="1"))
        served.store.delete("deployments", "uid-team-b-api")

    events, _ = await _watch(
        served, f"{GV}/objectmetrics?watch=1&resourceVersion={rv}&timeoutSeconds=3", until=3, during=change
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "deployments.apps.web"),
        ("ADDED", "deployments.apps.new"),
        ("DELETED", "deployments.apps.api"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    modified = events[0]["object"]
    assert {s["name"]: s["value"] for s in modified["series"]}["kube_deployment_replicas"] == "5"
    # Resuming from the first event's RV yields exactly the later ones.
    again, _ = await _watch(served, f"{GV}/objectmetrics?watch=1&resourceVersion={rvs[0]}&timeoutSeconds=1")
    assert [e["type"] for e in again] == ["ADDED", "DELETED"]


async def test_s19_watch_rv_zero_starts_with_synthetic_added(served: Served) -> None:
    events, _ = await _watch(served, f"{GV}/objectmetrics?watch=1&resourceVersion=0&timeoutSeconds=1")
    assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
        ("ADDED", "deployments.apps.api"),
        ("ADDED", "deployments.apps.web"),
    ]


async def test_s19_too_old_rv_is_410_error_event(served: Served) -> None:
    events, _ = await _watch(served, f"{GV}/objectmetrics?watch=1&resourceVersion=5&timeoutSeconds=2")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"


async def test_s19_log_overflow_expires_old_rvs(pki: Pki) -> None:
    result, server = await serve(pki)
    try:
        rv = (await _list(result, f"{GV}/objectmetrics"))["metadata"]["resourceVersion"]
        result.views._log = type(result.views._log)(result.views._log, maxlen=3)  # a tiny history
        for i in range(5):
            result.store.upsert("deployments", deployment("web", "team-a", 10 + i, rv=str(10 + i)))
        events, _ = await _watch(result, f"{GV}/objectmetrics?watch=1&resourceVersion={rv}&timeoutSeconds=2")
        assert [e["type"] for e in events] == ["ERROR"] and events[0]["object"]["code"] == 410
    finally:
        await server.stop()
        result.views.close()


async def test_s19_timeout_seconds_ends_stream(served: Served) -> None:
    started = time.monotonic()
    events, _ = await _watch(
        served,
        f"{GV}/metricfamilies?watch=1&timeoutSeconds=1&resourceVersion="
        f"{(await _list(served, f'{GV}/metricfamilies'))['metadata']['resourceVersion']}",
    )
    elapsed = time.monotonic() - started
    assert events == [] and 0.9 <= elapsed < 3.0


async def test_s19_bookmarks(pki: Pki) -> None:
    result, server = await serve(pki, bookmark_interval=0.3)
    try:
        rv = (await _list(result, f"{GV}/objectmetrics"))["metadata"]["resourceVersion"]
        events, _ = await _watch(
            result,
            f"{GV}/objectmetrics?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv}"
            "&fieldSelector=metadata.name%3Dnothing",
            during=lambda: result.store.upsert("deployments", deployment("web", "team-a", 9, rv="20")),
        )
        bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
        assert bookmarks and all(e["type"] == "BOOKMARK" for e in events)  # the change is filtered out
        assert bookmarks[0]["object"]["kind"] == "ObjectMetrics"
        # The last bookmark moved past the filtered-out change.
        assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) > int(rv)
    finally:
        await server.stop()
        result.views.close()


async def test_s19_send_initial_events(served: Served) -> None:
    events, _ = await _watch(
        served,
        f"{GV}/metricfamilies?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    )
    assert [e["type"] for e in events] == ["ADDED"] * 4 + ["BOOKMARK"]
    assert events[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    async with (
        served.proxy_session() as s,
        s.get(
            served.url + f"{GV}/metricfamilies?watch=1&sendInitialEvents=true", headers=MASTERS_HEADERS
        ) as resp,
    ):
        body = await resp.json()
        assert resp.status == 422 and body["reason"] == "Invalid"


async def test_s17_watch_honours_field_selector_and_family_changes(served: Served) -> None:
    rv = (await _list(served, f"{GV}/metricfamilies"))["metadata"]["resourceVersion"]
    events, _ = await _watch(
        served,
        f"{GV}/metricfamilies?watch=1&timeoutSeconds=3&resourceVersion={rv}"
        "&fieldSelector=metadata.name%3Dkube_deployment_replicas",
        until=1,
        during=lambda: served.store.upsert("deployments", deployment("extra", "team-c", 4)),
    )
    assert events[0]["type"] == "MODIFIED"
    assert events[0]["object"]["metadata"]["name"] == "kube_deployment_replicas"
    assert events[0]["object"]["series"] == 3


async def test_watch_table_events(served: Served) -> None:
    events, _ = await _watch(
        served,
        f"{GV}/objectmetrics?watch=1&resourceVersion=0&timeoutSeconds=1",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    assert events and all(e["object"]["kind"] == "Table" and len(e["object"]["rows"]) == 1 for e in events)


async def test_s23_prometheus_text_content_type_gzip_and_namespace(served: Served) -> None:
    async with served.proxy_session() as s:
        async with s.get(served.url + f"{GV}/prometheus", headers=MASTERS_HEADERS) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await resp.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert {"kube_deployment_replicas", "kube_node_info"} <= families.keys()
        async with s.get(
            served.url + f"{GV}/namespaces/team-a/prometheus",
            headers={
                **MASTERS_HEADERS,
                "Accept-Encoding": "gzip",
                "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            },
            auto_decompress=False,
        ) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
            body = gzip.decompress(await resp.read()).decode()
    assert body.endswith("# EOF\n")
    assert 'namespace="team-a"' in body and "team-b" not in body and "kube_node" not in body


async def test_prometheus_sar_is_list_on_prometheus_per_namespace(served: Served) -> None:
    served.reviewer.allow = lambda spec: (
        spec["resourceAttributes"]["resource"] == "prometheus"
        and spec["resourceAttributes"]["namespace"] == "team-a"
    )
    headers = {"X-Remote-User": "tenant"}
    async with served.proxy_session() as s:
        async with s.get(served.url + f"{GV}/namespaces/team-a/prometheus", headers=headers) as resp:
            assert resp.status == 200
            assert "team-b" not in await resp.text()
        async with s.get(served.url + f"{GV}/namespaces/team-b/prometheus", headers=headers) as resp:
            assert resp.status == 403
        async with s.get(served.url + f"{GV}/prometheus", headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 403
            assert body["message"].startswith(
                'prometheus.metrics.panopticon.io is forbidden: User "tenant" '
                'cannot list resource "prometheus"'
            )


async def test_s24_discovery_never_touches_data(pki: Pki) -> None:
    """Discovery, /version and OpenAPI are constants: with every data read broken they answer at once."""
    store = populated_store()
    for i in range(3000):
        store.upsert("deployments", deployment(f"d{i}", f"ns{i % 50}", i))
    result, server = await serve(pki, store=store)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("discovery must not read data")

    views = result.views
    views.objects = views.object = views.families = views.family = broken  # type: ignore[method-assign]
    try:
        async with result.proxy_session() as s:
            started = time.monotonic()
            for path in [GV, "/apis", "/apis/metrics.panopticon.io", "/version", "/openapi/v2"] * 4:
                async with s.get(result.url + path, headers=MASTERS_HEADERS) as resp:
                    assert resp.status == 200, path
            assert (time.monotonic() - started) / 20 < 0.1
            # The data endpoints do depend on the (broken) data: proof the patch was in effect.
            async with s.get(result.url + f"{GV}/metricfamilies", headers=MASTERS_HEADERS) as resp:
                assert resp.status == 500 and (await resp.json())["reason"] == "InternalError"
    finally:
        await server.stop()
