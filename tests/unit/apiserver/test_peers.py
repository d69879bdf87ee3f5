"""apiserver.peers: merging shard answers, the EndpointSlice peer list, and the union middleware
between real HTTPS servers on loopback (pinning, a missing and a hanging shard)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from apiserver.peers import (
    Peer,
    ShardUnion,
    UnionOptions,
    _certificate,
    _shard_of,
    decode_continue,
    merge_exposition,
    merge_lists,
    page,
    peers_of_slices,
)
from apiserver.requestinfo import parse_request_info
from apiserver.server import REQUEST_INFO, status_middleware
from apiserver.status import StatusError
from certs.generate import self_signed_serving, write_pair

A = b"""# HELP a_total Things.
# TYPE a_total counter
a_total{namespace="x"} 1
# HELP b Gauge b.
# TYPE b gauge
b{namespace="x"} 2
"""
B = b"""# HELP a_total Things.
# TYPE a_total counter
a_total{namespace="y"} 3
# HELP c Only in shard 1.
# TYPE c gauge
c 4
"""


def test_families_merge_by_name_with_one_header() -> None:
    merged = merge_exposition([A, B]).decode()
    assert merged.count("# HELP a_total") == 1 and merged.count("# TYPE a_total") == 1
    lines = merged.splitlines()
    assert lines[:4] == ['# HELP a_total Things.', '# TYPE a_total counter',
                         'a_total{namespace="x"} 1', 'a_total{namespace="y"} 3']
    assert lines[4:] == ['# HELP b Gauge b.', '# TYPE b gauge', 'b{namespace="x"} 2',
                         '# HELP c Only in shard 1.', '# TYPE c gauge', 'c 4']


def test_openmetrics_eof_once_at_the_end() -> None:
    merged = merge_exposition([A + b"# EOF\n", B + b"# EOF\n"])
    assert merged.endswith(b"c 4\n# EOF\n") and merged.count(b"# EOF") == 1


def test_an_aggregate_group_in_several_shards_is_their_sum() -> None:
    """Aggregates (exporter/aggregates.py): each shard counts its own objects; the union adds."""
    one = b'# HELP p Pods by phase.\n# TYPE p gauge\np{phase="Running"} 2\np{phase="Failed"} 0.25\n'
    two = (b'# HELP p Pods by phase.\n# TYPE p gauge\n'
           b'p{phase="Pending"} 1\np{phase="Failed"} 0.5\np{phase="Running"} 3\n')
    assert merge_exposition([one, two]) == (b'# HELP p Pods by phase.\n# TYPE p gauge\n'
                                            b'p{phase="Running"} 5\np{phase="Failed"} 0.75\n'
                                            b'p{phase="Pending"} 1\n')


def test_one_shard_is_unchanged() -> None:
    assert merge_exposition([A]) == A


def _item(ns: str, name: str) -> dict[str, object]:
    return {"metadata": {"namespace": ns, "name": name}}


def test_lists_are_unioned_and_sorted_by_key() -> None:
    first = {"kind": "ObjectMetricsList", "metadata": {"resourceVersion": "7"},
             "items": [_item("a", "2"), _item("b", "1")]}
    second = {"kind": "ObjectMetricsList", "metadata": {"resourceVersion": "3"},
              "items": [_item("a", "1"), _item("c", "0")]}
    merged = merge_lists([first, second], families=False)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in merged["items"]] == [
        ("a", "1"), ("a", "2"), ("b", "1"), ("c", "0")]
    assert merged["metadata"] == {"resourceVersion": "7"}  # ours


def test_tables_union_rows_and_families_sum_counts() -> None:
    columns = [{"name": "Name"}, {"name": "Series"}, {"name": "Objects"}, {"name": "Updated"}]

    def row(series: int, updated: str) -> dict[str, object]:
        return {"cells": ["f", series, 1, updated], "object": {"metadata": {"name": "f", "namespace": ""}}}

    one = {"kind": "Table", "columnDefinitions": columns, "rows": [row(2, "2026-01-01T00:00:00Z")]}
    two = {"kind": "Table", "columnDefinitions": columns, "rows": [row(5, "2026-02-01T00:00:00Z")]}
    merged = merge_lists([one, two], families=True)
    assert merged["rows"][0]["cells"] == ["f", 7, 2, "2026-02-01T00:00:00Z"]
    families = merge_lists([{"kind": "MetricFamilyList", "items": [
        {"metadata": {"name": "f"}, "series": 2, "objects": 1, "lastUpdateTime": "a"}]},
        {"kind": "MetricFamilyList", "items": [
            {"metadata": {"name": "f"}, "series": 3, "objects": 2, "lastUpdateTime": "b"}]}], families=True)
    assert families["items"][0]["series"] == 5 and families["items"][0]["objects"] == 3


def test_paging_the_union_with_a_stateless_token() -> None:
    body = {"kind": "ObjectMetricsList", "metadata": {}, "items": [_item("a", str(i)) for i in range(5)]}
    first = page(body, limit=2, after=None)
    assert [i["metadata"]["name"] for i in first["items"]] == ["0", "1"]
    assert first["metadata"]["remainingItemCount"] == 3
    after = decode_continue(first["metadata"]["continue"])
    rest = page(body, limit=10, after=after)
    assert [i["metadata"]["name"] for i in rest["items"]] == ["2", "3", "4"]
    assert "continue" not in rest["metadata"]
    with pytest.raises(StatusError):
        decode_continue("not-a-token")


def test_ready_endpoints_except_ourselves() -> None:
    slices = [
        {"ports": [{"name": "https", "port": 8443}], "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "targetRef": {"name": "p-0"}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}, "targetRef": {"name": "p-1"}},
            {"addresses": ["10.0.0.3"], "targetRef": {"name": "p-2"}},
        ]},
        {"ports": [{"name": "metrics", "port": 8080}], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]
    assert peers_of_slices(slices, port_name="https", own="p-0") == [Peer("p-2", "10.0.0.3", 8443)]


def test_shard_header() -> None:
    assert _shard_of("1/3", 3) == 1
    assert _shard_of("3/3", 3) is None
    assert _shard_of("1/2", 3) is None
    assert _shard_of("", 3) is None


# --- the middleware between real HTTPS servers on loopback -------------------------------------------


PATH = "/apis/metrics.panopticon.io/v1alpha1/prometheus"


class StaticPeers:
    def __init__(self, peers: list[Peer]) -> None:
        self.list = peers

    async def peers(self) -> list[Peer]:
        return self.list


async def _shard_server(body: bytes, *, shard: int, cert: Path, key: Path,
                        peers: StaticPeers, timeout: float) -> tuple[web.AppRunner, int]:
    @web.middleware
    async def info(request: web.Request, handler):  # type: ignore[no-untyped-def]
        request[REQUEST_INFO] = parse_request_info(request.method, request.path, request.query)
        return await handler(request)

    async def scrape(request: web.Request) -> web.StreamResponse:
        # Streamed, as the real handler: the headers leave inside the handler.
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    union = ShardUnion(UnionOptions(self_host="127.0.0.1", self_port=0, timeout=timeout), peers,
                       shards=lambda: (shard, 2), token=lambda: "t", certificate_der=_certificate(str(cert)),
                       request_info_key=REQUEST_INFO)
    app = web.Application(middlewares=[status_middleware, info, union.middleware])
    union.install(app)
    app.router.add_get(PATH, scrape)
    app.on_cleanup.append(lambda _app: union.close())
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    object.__setattr__(union, "options", UnionOptions(self_host="127.0.0.1", self_port=port, timeout=timeout))
    return runner, port


async def _get(port: int) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    url = f"https://127.0.0.1:{port}{PATH}"
    async with ClientSession() as session, session.get(url, ssl=context) as resp:
        return resp.status, await resp.read()


async def test_union_of_two_shards_and_503_when_one_is_missing(tmp_path: Path) -> None:
    _ca, pair = self_signed_serving()
    cert, key = write_pair(tmp_path, "tls", pair)
    peers0, peers1 = StaticPeers([]), StaticPeers([])
    r0, p0 = await _shard_server(A, shard=0, cert=cert, key=key, peers=peers0, timeout=1.0)
    r1, p1 = await _shard_server(B, shard=1, cert=cert, key=key, peers=peers1, timeout=1.0)
    try:
        peers0.list, peers1.list = [Peer("s1", "127.0.0.1", p1)], [Peer("s0", "127.0.0.1", p0)]
        for port in (p0, p1):
            status, body = await _get(port)
            assert status == 200, body
            assert sorted(body.splitlines()) == sorted(merge_exposition([A, B]).splitlines())
        # A peer that presents another certificate is not a shard of ours.
        _ca2, other = self_signed_serving()
        cert2, key2 = write_pair(tmp_path / "other", "tls", other)
        r2, p2 = await _shard_server(B, shard=1, cert=cert2, key=key2, peers=StaticPeers([]), timeout=1.0)
        peers0.list = [Peer("impostor", "127.0.0.1", p2)]
        status, body = await _get(p0)
        assert status == 503 and b"shard(s) 1 of 2" in body and b"serving certificate" in body, body
        await r2.cleanup()
        # A missing shard: 503 Status, never a partial answer.
        peers0.list = []
        status, body = await _get(p0)
        assert status == 503 and b'"reason":"ServiceUnavailable"' in body, body
        # A hanging shard: 503 after the timeout.
        hang = await asyncio.start_server(lambda r, w: asyncio.sleep(30), "127.0.0.1", 0)
        hang_port = hang.sockets[0].getsockname()[1]
        peers0.list = [Peer("hung", "127.0.0.1", hang_port)]
        started = asyncio.get_running_loop().time()
        status, body = await _get(p0)
        elapsed = asyncio.get_running_loop().time() - started
        assert status == 503 and b"within 1s" in body and b"shard(s) 1 of 2" in body, body
        assert 0.9 < elapsed < 3, elapsed
        hang.close()
    finally:
        await r0.cleanup()
        await r1.cleanup()
