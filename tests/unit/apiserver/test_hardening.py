"""Issue 9: fail-open, exhaustion, bad input and kube-apiserver mismatches, one test per item.

Real TLS on 127.0.0.1 with the real application and connection handling; limits are small here
(timeouts under 2 s, a 2 MB body, a few thousand objects) so every test stays bounded. The
full-size figures (1,500 idle connections, 80 stalled clients of a 5.8 MB body, five 7.5 MB
lists) are measured by bench/bench_apiserver_limits.py (bench/README.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import re
import socket
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from multidict import CIMultiDict

from apiserver.authconfig import AuthConfigSource, AuthOverrides, InvalidAuthConfig, settings_from_configmap
from apiserver.authn import Authenticator
from apiserver.authz import Authorizer, Decision
from apiserver.connections import ServingLimits, SharedBufferSSLProtocol
from certs.generate import new_client_cert
from exporter.store import MetricsStore
from tests.unit.apiserver.conftest import (
    DEPLOYMENTS,
    MASTERS_HEADERS,
    FakePlan,
    Pki,
    Served,
    deployment,
    populated_store,
    serve,
)
from tests.unit.apiserver.test_server_http import GV, TABLE, get

# ---------------------------------------------------------------------- helpers


def configmap_data(pki: Pki, *, allowed: str = '["front-proxy-client"]') -> dict[str, str]:
    return {
        "client-ca-file": pki.client_ca.cert_pem.decode(),
        "requestheader-client-ca-file": pki.front_proxy_ca.cert_pem.decode(),
        "requestheader-allowed-names": allowed,
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }


async def raw_tls(
    served: Served, *, pair: Any = None, rcvbuf: int = 0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(served.url.rsplit(":", 1)[1])
    ctx = served.pki.client_context(pair if pair is not None else served.pki.front_proxy)
    sock = socket.socket()
    if rcvbuf:  # a small receive window, so a client that does not read stalls the server's writes
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname="localhost")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return code, headers, body


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closed the connection; fails when it is still open after ``seconds``."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        pytest.fail(f"connection still open after {seconds} s")
    except (ConnectionError, ssl.SSLError):
        pass
    return time.monotonic() - started


@pytest.fixture
async def limited(pki: Pki) -> AsyncIterator[tuple[Served, list[str]]]:
    rejected: list[str] = []
    limits = ServingLimits(idle_timeout=1.0, header_timeout=0.6, write_timeout=1.0, max_connections=8)
    result, server = await serve(pki, limits=limits, on_reject=rejected.append)
    try:
        yield result, rejected
    finally:
        await server.stop()
        result.views.close()


# ---------------------------------------------------------------------- 1. front-proxy trust


def test_item1_malformed_allowed_names_is_rejected_not_ignored(pki: Pki) -> None:
    with pytest.raises(InvalidAuthConfig, match="requestheader-allowed-names"):
        settings_from_configmap(configmap_data(pki, allowed="not-a-list"))


async def test_item1_malformed_allowed_names_keeps_the_last_good_value(served: Served, pki: Pki) -> None:
    source = AuthConfigSource(AuthOverrides())
    source.subscribe(served.authenticator.update)
    assert source.update_from_configmap(configmap_data(pki))
    good = source.current
    assert not source.update_from_configmap(configmap_data(pki, allowed="not-a-list"))
    assert source.current is good and source.rejected == 1
    evil = new_client_cert(pki.front_proxy_ca, common_name="evil-proxy")
    async with served.session(evil) as session:
        status, body, _ = await get(served, GV + "/metricfamilies", session=session)
    assert status == 401 and body["kind"] == "Status"


async def test_item1_malformed_first_configmap_trusts_no_front_proxy(pki: Pki) -> None:
    source = AuthConfigSource(AuthOverrides())
    assert not source.update_from_configmap(configmap_data(pki, allowed='{"a": 1}'))
    assert source.current.requestheader_roots == () and not source.ready.is_set()


# ---------------------------------------------------------------------- 2. connections


async def test_item2_idle_connection_is_closed_after_the_idle_timeout(
    limited: tuple[Served, list[str]],
) -> None:
    served, _ = limited
    reader, writer = await raw_tls(served)
    took = await closed_within(reader, 5.0)  # aiohttp's default keep-alive: 3,630 s
    assert 0.8 <= took < 3.0
    writer.close()


async def test_item2_slowloris_is_closed_after_the_header_timeout(limited: tuple[Served, list[str]]) -> None:
    served, rejected = limited
    reader, writer = await raw_tls(served)
    writer.write(f"GET {GV}/metricfamilies HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())

    async def drip() -> None:
        while not writer.is_closing():
            await asyncio.sleep(0.1)
            writer.write(b"a")  # bytes keep coming: only a header deadline ends this

    task = asyncio.create_task(drip())
    try:
        took = await closed_within(reader, 5.0)
    finally:
        task.cancel()
        writer.close()
    assert took < 1.0  # header timeout 0.6 s, idle timeout 1.0 s
    assert "header_timeout" in rejected


async def test_item2_connections_above_the_limit_are_refused(limited: tuple[Served, list[str]]) -> None:
    served, rejected = limited
    conns = [await raw_tls(served) for _ in range(8)]
    with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
        reader, _w = await raw_tls(served)
        await asyncio.wait_for(reader.read(1), 2)
        raise ConnectionResetError("closed")  # read b"" (EOF) counts as refused too
    assert "too_many_connections" in rejected
    for _r, w in conns:
        w.close()
    await asyncio.sleep(0.2)
    status, _, _ = await get(served, "/livez")  # room again once they are gone
    assert status == 200


async def test_item2_connections_share_one_tls_read_buffer(limited: tuple[Served, list[str]]) -> None:
    served, _ = limited
    conns = [await raw_tls(served) for _ in range(3)]
    status, _, _ = await get(served, "/livez")
    assert status == 200
    protocols = [
        obj for obj in _live_objects(SharedBufferSSLProtocol) if obj._transport is not None
    ]
    assert len(protocols) >= 3
    assert len({id(p._ssl_buffer) for p in protocols}) == 1  # not 256 KiB per connection
    for _r, w in conns:
        w.close()


def _live_objects(cls: type) -> list[Any]:
    import gc

    return [o for o in gc.get_objects() if isinstance(o, cls)]


# ---------------------------------------------------------------------- 3. stalled readers


def big_store(objects: int) -> MetricsStore:
    store = MetricsStore()
    store.set_plan(FakePlan("deployments", DEPLOYMENTS, "kube_deployment_with_a_long_family_name_for_bulk"))
    objs = [deployment(f"app-{i:05d}-{'x' * 60}", f"ns-{i % 7}", i) for i in range(objects)]
    store.replace("deployments", objs)
    return store


async def test_item3_stalled_prometheus_readers_pin_no_copy_and_are_cut_off(pki: Pki) -> None:
    rejected: list[str] = []
    limits = ServingLimits(write_timeout=1.0)
    served, server = await serve(pki, store=big_store(8000), limits=limits, on_reject=rejected.append)
    try:
        async with (
            served.proxy_session() as session,
            session.get(served.url + GV + "/prometheus", headers=MASTERS_HEADERS) as resp,
        ):
            size = len(await resp.read())
        assert size > 2_000_000
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            stalled = []
            for _ in range(4):
                reader, writer = await raw_tls(served, rcvbuf=4096)
                transport = cast(asyncio.Transport, writer.transport)
                transport.set_write_buffer_limits(0)
                transport.pause_reading()  # never read: the server's writes must stall
                writer.write(f"GET {GV}/prometheus HTTP/1.1\r\nHost: x\r\n".encode()
                             + b"X-Remote-User: u\r\nX-Remote-Group: system:masters\r\n\r\n")
                stalled.append((reader, writer))
            await asyncio.sleep(0.6)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # Before: each stalled client held a full encrypted copy of the body (4 x 2+ MB). Allow
        # one body's worth on top of the slices: a loaded CI machine was seen to (re)build the
        # cached body inside the window (3.26 MB for a 2.49 MB body), which is not per client.
        assert grown < 2 * size, f"{grown} bytes held for 4 stalled clients of a {size}-byte body"
        await asyncio.sleep(1.5)  # past the write timeout: the server must have cut them off
        assert rejected.count("write_timeout") == 4
        for reader, writer in stalled:
            cast(asyncio.Transport, writer.transport).resume_reading()
            received = 0
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                async with asyncio.timeout(5):
                    while chunk := await reader.read(65536):
                        received += len(chunk)
            assert received < size  # cut off, not served to the end
            writer.close()
    finally:
        await server.stop()
        served.views.close()


# ---------------------------------------------------------------------- 4. big headers


async def test_item4_two_thousand_groups_big_extra_and_big_selector_are_served(served: Served) -> None:
    headers: CIMultiDict[str] = CIMultiDict({"X-Remote-User": "many-groups"})
    for i in range(2000):
        headers.add("X-Remote-Group", f"group-{i}")
    headers.add("X-Remote-Group", "system:masters")
    headers.add("X-Remote-Extra-Scopes", "s" * 9 * 1024)
    selector = ",".join(f"metrics.panopticon.io/k{i}!=v{i}" for i in range(400))
    assert len(selector) > 11 * 1024
    async with served.proxy_session() as session, session.get(
        served.url + GV + "/metricfamilies", params={"labelSelector": selector}, headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["kind"] == "MetricFamilyList" and body["items"]


async def test_item4_headers_beyond_the_budget_are_a_431_status(served: Served) -> None:
    reader, writer = await raw_tls(served)
    writer.write(f"GET {GV}/metricfamilies HTTP/1.1\r\nHost: x\r\n".encode())
    for _ in range(70):
        writer.write(b"X-Remote-Group: " + b"g" * 16 * 1024 + b"\r\n")  # 1.1 MiB > 1 MiB
    writer.write(b"\r\n")
    code, headers, body = await read_response(reader)
    writer.close()
    assert code == 431 and headers["content-type"].startswith("application/json")
    assert orjson.loads(body)["kind"] == "Status"


# ---------------------------------------------------------------------- 5. continue token


@pytest.mark.parametrize(
    "token",
    [
        b'{"rv": 1e30, "after": ["", "x"]}',
        b'{"rv": 1000000000000000000000000000000, "after": ["", "x"]}',
        b'{"rv": 9223372036854775808, "after": ["", "x"]}',
        b'{"rv": "12", "after": ["", "x"]}',
        b'{"rv": true, "after": ["", "x"]}',
        b'{"rv": -1, "after": ["", "x"]}',
        b'{"rv": 1, "after": ["", 5]}',
        b'["rv", 1]',
        b"not json",
    ],
)
async def test_item5_tampered_continue_token_is_400(served: Served, token: bytes) -> None:
    raw = base64.urlsafe_b64encode(token).decode()
    status, body, _ = await get(served, f"{GV}/metricfamilies?limit=1&continue={raw}")
    assert status == 400 and body["kind"] == "Status" and "continue" in body["message"], body


async def test_item5_future_continue_token_is_400_and_rv_never_echoed(served: Served) -> None:
    status, first, _ = await get(served, f"{GV}/metricfamilies?limit=1")
    token = orjson.loads(base64.urlsafe_b64decode(first["metadata"]["continue"]))
    token["rv"] = served.views.rv + 10**6
    raw = base64.urlsafe_b64encode(orjson.dumps(token)).decode()
    status, body, _ = await get(served, f"{GV}/metricfamilies?limit=1&continue={raw}")
    assert status == 400 and body["kind"] == "Status"


# ---------------------------------------------------------------------- 6. watcher back-off


class FlakyConfigMapClient:
    """Lists a good ConfigMap, then watches: a corrupt CA, then a valid change."""

    def __init__(self, good: dict[str, str], corrupt: dict[str, str], changed: dict[str, str]) -> None:
        self.good, self.corrupt, self.changed = good, corrupt, changed
        self.lists = 0

    async def get(self, path: str, *, params: Any = None) -> dict[str, Any]:
        self.lists += 1
        return {"metadata": {"resourceVersion": "1"}, "items": [{"data": self.good}]}

    async def watch(self, path: str, **_kwargs: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        yield "MODIFIED", {"data": self.corrupt}
        await asyncio.sleep(0.05)
        yield "MODIFIED", {"data": self.changed}
        await asyncio.sleep(3600)


async def test_item6_valid_change_after_a_corrupt_ca_applies_at_once(pki: Pki) -> None:
    good = configmap_data(pki)
    corrupt = {**good, "requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\nnot base64\n"}
    changed = configmap_data(pki, allowed='["front-proxy-client", "second-proxy"]')
    client = FlakyConfigMapClient(good, corrupt, changed)
    source = AuthConfigSource(AuthOverrides())
    task = asyncio.create_task(source.run(client))  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 2.0  # before: the corrupt PEM started a 0.5-30 s back-off
        while "second-proxy" not in source.current.allowed_names:
            assert time.monotonic() < deadline, "valid change not applied within 2 s"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
    assert source.rejected == 1 and client.lists == 1


# ---------------------------------------------------------------------- 7. big lists vs probes


async def test_item7_concurrent_big_lists_do_not_stall_the_loop(pki: Pki) -> None:
    served, server = await serve(pki, store=big_store(6000))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    try:
        async with served.proxy_session() as session:

            async def one(query: str = "") -> int:
                async with session.get(
                    served.url + GV + "/objectmetrics" + query, headers=MASTERS_HEADERS
                ) as resp:
                    return len(await resp.read())

            # Warm the read index only: a selector that matches nothing encodes no item, so the
            # three lists below convert every item themselves (the cold path, in slices).
            await one("?labelSelector=nothing-has%3Dthis")
            tick = asyncio.create_task(ticker())
            gc.disable()  # the whole test process's full collections are not what is measured
            try:
                started = time.perf_counter()
                sizes = await asyncio.gather(*(one() for _ in range(3)))
                took = time.perf_counter() - started
            finally:
                gc.enable()
            tick.cancel()
        assert min(sizes) > 2_000_000
        # Before: each list was built and encoded in one go (~0.3 ms per item: seconds per list).
        assert max(gaps) < 0.25, (max(gaps), took)
    finally:
        await server.stop()
        served.views.close()


async def test_item7_streamed_list_equals_the_objects(served: Served) -> None:
    status, body, _ = await get(served, GV + "/objectmetrics")
    assert status == 200 and body["kind"] == "ObjectMetricsList"
    assert [i["metadata"]["name"] for i in body["items"]] == ["deployments.apps.web", "deployments.apps.api"]
    for item in body["items"]:
        meta = item["metadata"]
        path = f"{GV}/namespaces/{meta['namespace']}/objectmetrics/{meta['name']}"
        status, one, _ = await get(served, path)
        assert status == 200 and one == item


# ---------------------------------------------------------------------- 8. client errors


async def test_item8_malformed_requests_are_counted_and_logged_briefly(
    limited: tuple[Served, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    served, rejected = limited
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    for _ in range(30):
        reader, writer = await raw_tls(served)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: \x01\r\n\r\n")
        code, _headers, body = await read_response(reader)
        assert code == 400 and orjson.loads(body)["kind"] == "Status"
        writer.close()
    assert rejected.count("bad_request") == 30
    lines = [r for r in caplog.records if r.levelno >= logging.INFO and "aiohttp" not in r.name]
    windows = 1 + int((time.monotonic() - started) // 10)  # 5 lines per 10 s (a loaded machine may span two)
    assert len(lines) <= 5 * windows
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)
    assert not [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR]


# ---------------------------------------------------------------------- 9. kube-apiserver answers


@pytest.mark.parametrize("method", [b"get", b"FOO", b"PURGE"])
async def test_item9_unknown_or_lower_case_methods_are_405_status(served: Served, method: bytes) -> None:
    reader, writer = await raw_tls(served)
    request = f" {GV}/metricfamilies HTTP/1.1\r\nHost: x\r\nX-Remote-User: u\r\n"
    writer.write(method + request.encode() + b"X-Remote-Group: system:masters\r\n\r\n")
    code, headers, body = await read_response(reader)
    writer.close()
    assert code == 405 and headers["content-type"].startswith("application/json")
    assert orjson.loads(body)["reason"] == "MethodNotAllowed"


class HangingReviewer:
    async def review_access(self, spec: dict[str, Any]) -> Decision:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def review_token(self, token: str) -> None:
        return None


async def test_item9_unanswered_review_fails_at_the_timeout_with_a_clear_message(pki: Pki) -> None:
    authorizer = Authorizer(HangingReviewer(), always_allow_paths=["/livez"], timeout=0.3)
    served, server = await serve(pki, authorizer=authorizer)
    try:
        started = time.monotonic()
        status, body, _ = await get(
            served, GV + "/metricfamilies", headers={"X-Remote-User": "alice", "X-Remote-Group": "dev"}
        )
        took = time.monotonic() - started
    finally:
        await server.stop()
        served.views.close()
    assert status == 500 and body["kind"] == "Status"
    assert "did not answer within 0.3s" in body["message"] and took < 2.0


async def test_item9_negative_limit_and_timeout_are_accepted(served: Served) -> None:
    status, body, _ = await get(served, GV + "/metricfamilies?limit=-1&timeoutSeconds=-1")
    assert status == 200 and len(body["items"]) == 4 and "continue" not in body["metadata"]
    body_rv = body["metadata"]["resourceVersion"]
    started = time.monotonic()
    async with (
        served.proxy_session() as session,
        session.get(
            served.url + GV + f"/metricfamilies?watch=1&timeoutSeconds=-1&resourceVersion={body_rv}",
            headers=MASTERS_HEADERS,
        ) as resp,
    ):
        assert resp.status == 200 and await resp.read() == b""
    assert time.monotonic() - started < 2.0  # ends at once, like the kube-apiserver's timer


@pytest.mark.parametrize(
    ("query", "code", "reason"),
    [
        ("fieldSelector=metadata.name%3Da%3Db", 400, "BadRequest"),
        ("limit=9223372036854775808", 400, "BadRequest"),
        ("timeoutSeconds=-9223372036854775809", 400, "BadRequest"),
        ("limit=1e3", 400, "BadRequest"),
        ("resourceVersion=99999999999999999999", 400, "BadRequest"),
        ("resourceVersionMatch=Bogus&resourceVersion=1", 422, "Invalid"),
        ("resourceVersionMatch=NotOlderThan", 422, "Invalid"),
        ("resourceVersionMatch=Exact&resourceVersion=0", 422, "Invalid"),
        ("resourceVersionMatch=Exact&resourceVersion=1&continue=abc", 422, "Invalid"),
    ],
)
async def test_item9_invalid_parameters_match_the_kube_apiserver(
    served: Served, query: str, code: int, reason: str
) -> None:
    status, body, _ = await get(served, f"{GV}/metricfamilies?{query}")
    assert (status, body["kind"], body["reason"], body["code"]) == (code, "Status", reason, code), body


async def test_item9_escaped_field_selector_value_is_accepted(served: Served) -> None:
    status, body, _ = await get(served, GV + "/metricfamilies?fieldSelector=metadata.name%3Da%5C%3Db")
    assert status == 200 and body["items"] == []


async def test_item9_table_age_cells_are_ages(pki: Pki) -> None:
    store = populated_store()
    served, server = await serve(pki, store=store)
    try:
        for path in ("/metricfamilies", "/objectmetrics", "/clusterobjectmetrics"):
            status, body, _ = await get(served, GV + path, headers={**MASTERS_HEADERS, "Accept": TABLE})
            assert status == 200
            names = [c["name"] for c in body["columnDefinitions"]]
            age = names.index("Age")
            for row in body["rows"]:
                assert re.fullmatch(r"\d+s", row["cells"][age]), row["cells"]
    finally:
        await server.stop()
        served.views.close()


def test_item9_human_duration_matches_kubectl() -> None:
    from apiserver.objects import human_duration

    cases = {
        -5: "<invalid>", -1: "0s", 0: "0s", 119: "119s", 120: "2m", 150: "2m30s", 600: "10m",
        3 * 3600 - 1: "179m", 3 * 3600: "3h", 3 * 3600 + 60: "3h1m", 8 * 3600: "8h", 47 * 3600: "47h",
        48 * 3600: "2d", 50 * 3600: "2d2h", 8 * 86400: "8d", 2 * 365 * 86400: "2y",
        2 * 365 * 86400 + 86400: "2y1d", 9 * 365 * 86400: "9y",
    }
    assert {s: human_duration(s) for s in cases} == cases


async def test_item9_unauthenticated_authenticator_unaffected(pki: Pki) -> None:
    # A token review that hangs is refused (401) after the review timeout, never a hang.
    class Hang:
        async def review_token(self, token: str) -> None:
            await asyncio.sleep(3600)

    import apiserver.authn as authn

    authenticator = Authenticator(pki.settings(), token_reviewer=Hang())
    old = authn.REVIEW_TIMEOUT
    authn.REVIEW_TIMEOUT = 0.2
    try:
        with pytest.raises(authn.AuthenticationFailed, match="did not answer"):
            await authenticator.authenticate(CIMultiDict({"Authorization": "Bearer x"}), None)
    finally:
        authn.REVIEW_TIMEOUT = old


def test_limit_flags_quote_the_serving_limits_defaults_and_reach_them() -> None:
    from apiserver.cli import build_parser
    from apiserver.https import limits_from_args

    parser = build_parser()
    serve_parser = next(
        a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)
    ).choices["serve"]
    defaults = ServingLimits()
    for flag, value in (
        ("--max-connections", defaults.max_connections),
        ("--idle-timeout", defaults.idle_timeout),
        ("--write-timeout", defaults.write_timeout),
    ):
        action = next(a for a in serve_parser._actions if flag in a.option_strings)
        assert action.help is not None and re.search(rf"default {value:g}\b", action.help), flag
    assert limits_from_args(serve_parser.parse_args([])) == defaults
    given = limits_from_args(serve_parser.parse_args(["--idle-timeout", "5", "--max-connections", "7"]))
    assert (given.idle_timeout, given.max_connections) == (5.0, 7)
