"""KubeClient against the in-process fake API server: JSON in/out, errors, pagination, watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fake_apiserver import FakeApiServer

from kube.client import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeClient,
    LineSplitter,
    NotFound,
    TooManyRequests,
)
from kube.config import ClientConfig
from kube.paths import resource_path

CM = "/api/v1/configmaps"


@pytest.fixture
async def client(fake: FakeApiServer) -> AsyncIterator[KubeClient]:
    async with KubeClient(ClientConfig(server=fake.url, token="t0k3n"), timeout=5) as c:
        yield c


def cm(ns: str, name: str, **data: str) -> dict[str, object]:
    meta = {"namespace": ns, "name": name}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_api_errors_are_typed_by_status_code() -> None:
    typed = {403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone, 422: Invalid, 429: TooManyRequests}
    for code, klass in typed.items():
        err = ApiError(code, "Reason", "message")
        assert type(err) is klass and err.status == code and isinstance(err, ApiError)
        body = b'{"kind":"Status","code":%d,"reason":"R","message":"m"}' % code
        assert type(ApiError.from_body(code, body)) is klass
    assert type(ApiError(418, "Teapot", "short and stout")) is ApiError
    assert type(ApiError.from_status({"kind": "Status", "code": 410, "reason": "Expired"})) is Gone
    assert type(ApiError.from_body(404, b"404 page not found")) is NotFound


def test_resource_path() -> None:
    assert resource_path(group="", version="v1", resource="pods") == "/api/v1/pods"
    assert (
        resource_path(group="apps", version="v1", resource="deployments", namespace="a b", name="x",
                      subresource="status")
        == "/apis/apps/v1/namespaces/a%20b/deployments/x/status"
    )
    with pytest.raises(ValueError):
        resource_path(group="", version="v1", resource="pods", subresource="status")


def test_line_splitter_tolerates_huge_and_split_lines() -> None:
    splitter = LineSplitter()
    big = b"x" * (8 * 2**20)
    assert splitter.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n\n") == [b'{"b":2}']
    out: list[bytes] = []
    for i in range(0, len(big), 65536):
        out += splitter.feed(big[i : i + 65536])
    assert out == []
    assert splitter.feed(b"\n") == [big]
    assert splitter.feed(b"tail") == []
    assert splitter.rest() == b"tail"


async def test_crud_and_errors(fake: FakeApiServer, client: KubeClient) -> None:
    path = "/api/v1/namespaces/ns1/configmaps"
    created = await client.create(path, cm("ns1", "a", k="v"))
    assert created["metadata"]["uid"]
    got = await client.get(f"{path}/a")
    assert got["data"] == {"k": "v"}
    patched = await client.patch(f"{path}/a", {"data": {"k": "w"}})
    assert patched["data"] == {"k": "w"}
    applied = await client.apply(f"{path}/b", cm("ns1", "b", x="1"), field_manager="test")
    assert applied["data"] == {"x": "1"}
    assert fake.requests[-1][2] == {"fieldManager": "test", "force": "true"}
    with pytest.raises(ApiError) as err:
        await client.create(path, cm("ns1", "a"))
    assert (err.value.status, err.value.reason) == (409, "AlreadyExists")
    assert err.value.body["kind"] == "Status"
    assert await client.delete(f"{path}/a") is not None
    assert await client.delete(f"{path}/a") is None
    with pytest.raises(ApiError) as err:
        await client.get(f"{path}/a")
    assert err.value.status == 404


async def test_list_paginates_and_returns_list_rv(fake: FakeApiServer, client: KubeClient) -> None:
    for i in range(7):
        await fake.put(CM, cm(f"ns{i % 2}", f"c{i}"))
    items, rv = await client.list(CM, limit=3)
    assert sorted(o["metadata"]["name"] for o in items) == [f"c{i}" for i in range(7)]
    assert rv == str(fake.rv)
    pages = [q for (m, p, q) in fake.requests if p == CM]
    assert [q.get("continue") for q in pages] == [None, "3", "6"]
    assert all(q["limit"] == "3" for q in pages)


async def test_watch_yields_raw_events_and_http_410(fake: FakeApiServer, client: KubeClient) -> None:
    await fake.put(CM, cm("ns", "a"))
    start = str(fake.rv)
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for typ, obj in client.watch(CM, resource_version=start, timeout_seconds=2):
            events.append((typ, obj["metadata"].get("name", "")))
            if typ == "DELETED":
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    await fake.put(CM, cm("ns", "b"))
    await fake.put(CM, cm("ns", "b", k="1"))
    await fake.remove(CM, "ns", "a")
    await asyncio.wait_for(task, 5)
    assert events == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")]
    q = [q for (m, p, q) in fake.requests if q.get("watch") == "true"][-1]
    assert q["allowWatchBookmarks"] == "true" and q["resourceVersion"] == start and q["timeoutSeconds"] == "2"

    fake.compact()
    fake.gone_as_event = False
    with pytest.raises(ApiError) as err:
        async for _ in client.watch(CM, resource_version=start, timeout_seconds=2):
            pass
    assert err.value.status == 410


async def test_bearer_token_and_token_file_rotation(tmp_path, fake: FakeApiServer) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    seen: list[str] = []
    async with KubeClient(ClientConfig(server=fake.url, token_file=str(token_file))) as c:
        seen.append(c._headers()["Authorization"])
        token_file.write_text("second")
        c._token_read_at -= 3600  # as if a minute had passed
        seen.append(c._headers()["Authorization"])
    assert seen == ["Bearer first", "Bearer second"]
