"""kube.earlylist: a LIST sent at start-up is consumed by the client that would send the same request."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from fake_apiserver import FakeApiServer

import kube.earlylist
from apiserver.early import early_targets
from kube.client import KubeClient
from kube.config import ClientConfig
from kube.earlylist import EarlyList, EarlyListBroken, start_early_list, take_early_list

CM = "/api/v1/configmaps"
HEADERS = {"User-Agent": "panopticon", "Accept": "application/json", "Authorization": "Bearer t0k3n"}
RV0 = {"resourceVersion": "0"}


def cm(ns: str, name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns, "name": name}}


async def finished(early: EarlyList) -> None:
    for _ in range(500):
        if early.finished is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the early LIST did not finish")


def collection_requests(fake: FakeApiServer) -> int:
    return sum(1 for (m, p, _q) in fake.requests if m == "GET" and p == CM)


async def test_the_informers_request_consumes_the_early_list(fake: FakeApiServer) -> None:
    for i in range(5):
        await fake.put(CM, cm("ns", f"c{i}"))
    config = ClientConfig(server=fake.url, token="t0k3n")
    early = start_early_list(config, path=CM, query=RV0, headers=HEADERS)
    await finished(early)
    await fake.put(CM, cm("ns", "later"))  # the early answer is the state it was sent for
    async with KubeClient(config, timeout=5) as client:
        stream = client.list_stream(CM, params=RV0, limit=0)
        names = [o["metadata"]["name"] async for o in stream]
        assert names == [f"c{i}" for i in range(5)]
        assert stream.resource_version == str(fake.rv - 1)
        assert collection_requests(fake) == 1  # only the early one
        # taken once: the next LIST is the client's own
        again = [o["metadata"]["name"] async for o in client.list_stream(CM, params=RV0, limit=0)]
        assert "later" in again and collection_requests(fake) == 2


async def test_a_different_request_is_not_answered_by_it(fake: FakeApiServer) -> None:
    await fake.put(CM, cm("ns", "a"))
    config = ClientConfig(server=fake.url, token="t0k3n")
    early = start_early_list(config, path=CM, query={"resourceVersion": "0", "labelSelector": "x=y"},
                             headers=HEADERS)
    await finished(early)
    other_agent = dict(HEADERS, **{"User-Agent": "someone-else"})
    assert take_early_list(fake.url, CM, RV0, HEADERS) is None
    selected = {"resourceVersion": "0", "labelSelector": "x=y"}
    assert take_early_list(fake.url, CM, selected, other_agent) is None
    async with KubeClient(config, timeout=5) as client:
        items = [o async for o in client.list_stream(CM, params=RV0, limit=0)]
    assert len(items) == 1 and collection_requests(fake) == 2
    assert take_early_list(fake.url, CM, selected, HEADERS) is early


async def test_an_early_list_that_failed_is_sent_again(fake: FakeApiServer) -> None:
    await fake.put(CM, cm("ns", "a"))
    config = ClientConfig(server=fake.url, token="t0k3n")
    fake.fail_next = [500]
    early = start_early_list(config, path=CM, query=RV0, headers=HEADERS)
    await finished(early)
    async with KubeClient(config, timeout=5) as client:
        items = [o async for o in client.list_stream(CM, params=RV0, limit=0)]
    assert [o["metadata"]["name"] for o in items] == ["a"]
    assert collection_requests(fake) == 2


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_gzip_answers_are_decoded_on_the_thread_and_a_cut_body_raises() -> None:
    items = [cm("ns", f"c{i}") for i in range(2000)]
    body = orjson.dumps({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                         "items": items})
    seen: list[str] = []

    async def whole(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Accept-Encoding", ""))
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        await resp.prepare(request)
        packed = gzip.compress(body)
        for i in range(0, len(packed), 4096):
            await resp.write(packed[i:i + 4096])
        await resp.write_eof()
        return resp

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        request.transport.close()  # type: ignore[union-attr]
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/whole", whole)
    app.router.add_get("/api/v1/cut", cut)
    runner, url = await serve(app)
    try:
        config = ClientConfig(server=url)
        headers = {"User-Agent": "panopticon", "Accept": "application/json"}
        early = start_early_list(config, path="/api/v1/whole", query=RV0, headers=headers)
        async with KubeClient(config, timeout=5) as client:
            got = [o async for o in client.list_stream("/api/v1/whole", params=RV0, limit=0)]
            assert got == items and seen == ["gzip, deflate"]
            assert early.finished is not None
            start_early_list(config, path="/api/v1/cut", query=RV0, headers=headers)
            with pytest.raises(EarlyListBroken):
                _ = [o async for o in client.list_stream("/api/v1/cut", params=RV0, limit=0)]
    finally:
        await runner.cleanup()


async def test_the_thread_reads_at_most_max_pending_ahead(fake: FakeApiServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(300):
        await fake.put(CM, cm("ns", f"c{i:03d}-" + "x" * 200))
    monkeypatch.setattr(kube.earlylist, "MAX_PENDING", 4096)
    monkeypatch.setattr(kube.earlylist, "READ_SIZE", 1024)
    config = ClientConfig(server=fake.url, token="t0k3n")
    early = start_early_list(config, path=CM, query=RV0, headers=HEADERS)
    await asyncio.sleep(0.5)
    assert early.finished is None and 0 < early._pending <= 4096 + 1024  # stopped reading, not done
    async with KubeClient(config, timeout=5) as client:
        items = [o async for o in client.list_stream(CM, params=RV0, limit=0)]
    assert len(items) == 300 and collection_requests(fake) == 1


def test_early_targets_are_only_the_plain_cluster_wide_lists(tmp_path: Path) -> None:
    def config(name: str, target_ref: dict[str, object]) -> dict[str, object]:
        return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
                "metadata": {"name": name}, "spec": {"targetRef": target_ref, "metrics": []}}

    file = tmp_path / "configs.json"
    file.write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": [
        config("widgets", {"apiVersion": "example.com/v1", "kind": "Widget"}),
        config("pods", {"apiVersion": "v1", "kind": "Pod"}),
        config("scoped", {"apiVersion": "apps/v1", "kind": "Deployment",
                          "selector": {"matchLabels": {"a": "b"}}}),
    ]}))

    def args(**overrides: object) -> argparse.Namespace:
        values: dict[str, object] = {"controllers": "exporter,thanos", "source": None, "namespaces": "",
                                     "config": [str(file)], "kubeconfig": None}
        values.update(overrides)
        return argparse.Namespace(**values)

    assert early_targets(args()) == [("", "v1", "Pod"), ("example.com", "v1", "Widget")]
    assert early_targets(args(namespaces="a,b")) == []  # one LIST per namespace: not guessed
    assert early_targets(args(controllers="thanos")) == []
    assert early_targets(args(config=[])) == []  # configurations from the cluster


async def test_start_early_lists_resolves_the_kind_and_sends_the_list_on_one_connection(
        fake: FakeApiServer, tmp_path: Path) -> None:
    """apiserver.early: one discovery GET, then the LIST on the same (kept-alive) connection, and
    ``start_early_lists`` returns only once that LIST is on the wire (not stretched by imports)."""
    from apiserver.early import start_early_lists

    for i in range(3):
        await fake.put(CM, cm("ns", f"c{i}"))
    fake.discovery["/api/v1"] = {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "configmaps", "singularName": "", "namespaced": True, "kind": "ConfigMap",
         "verbs": ["get", "list", "watch"]}]}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": "cms"}, "spec": {"targetRef": {"apiVersion": "v1", "kind": "ConfigMap"},
                                              "metrics": []}}))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": fake.url}}],
        "users": [{"name": "u", "user": {"token": "t0k3n"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    args = argparse.Namespace(controllers="exporter", source=None, namespaces="", config=[str(config_file)],
                              kubeconfig=str(kubeconfig))
    thread = await asyncio.to_thread(start_early_lists, args)
    assert thread is not None
    key = next(iter(kube.earlylist._pending))
    early = kube.earlylist._pending[key]
    assert early.sent.is_set()  # returned after the request was written, not before
    await finished(early)
    assert [p for (m, p, _q) in fake.requests] == ["/api/v1", CM]
    assert fake.peers[0] == fake.peers[1]  # the LIST reused the discovery GET's connection
    config = ClientConfig(server=fake.url, token="t0k3n")
    async with KubeClient(config, timeout=5) as client:
        names = [o["metadata"]["name"] async for o in client.list_stream(CM, params=RV0, limit=0)]
    assert names == ["c0", "c1", "c2"] and collection_requests(fake) == 1
