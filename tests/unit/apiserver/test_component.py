"""The `serve` component: flags -> a running HTTPS server (self-signed or file pair), readiness, dedup."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp

from apiserver.authn import UserInfo
from apiserver.authz import Authorizer, Decision
from apiserver.cli import build_parser
from apiserver.https import ExtensionApiComponent
from apiserver.requestinfo import parse_request_info
from apiserver.server import Health
from certs.generate import write_pair
from exporter.exposition import Exposition
from tests.unit.apiserver.conftest import MASTERS_HEADERS, Pki, populated_store, serve

GV = "/apis/metrics.panopticon.io/v1alpha1"


async def test_component_from_flags_self_signed_and_front_proxy_ca_flags(tmp_path: Path, pki: Pki) -> None:
    ca_file = tmp_path / "front-proxy-ca.crt"
    ca_file.write_bytes(pki.front_proxy_ca.cert_pem)
    args = build_parser().parse_args(
        [
            "serve",
            "--source",
            str(tmp_path),
            "--secure-port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--requestheader-client-ca-file",
            str(ca_file),
            "--requestheader-allowed-names",
            "front-proxy-client",
        ]
    )
    store = populated_store()
    component = ExtensionApiComponent(args=args, store=store, exposition=Exposition(store))
    await component.start()
    try:
        assert component.server is not None and component.ready()
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed development pair
        cert, key = write_pair(tmp_path / "c", "proxy", pki.front_proxy)
        ctx.load_cert_chain(cert, key)
        url = f"https://127.0.0.1:{component.server.port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
            async with s.get(url + "/readyz") as resp:
                assert resp.status == 200
            async with s.get(url + f"{GV}/metricfamilies", headers=MASTERS_HEADERS) as resp:
                assert resp.status == 200 and (await resp.json())["kind"] == "MetricFamilyList"
            # Without a cluster nobody answers reviews: ordinary users are refused.
            async with s.get(url + f"{GV}/metricfamilies", headers={"X-Remote-User": "alice"}) as resp:
                assert resp.status == 403
    finally:
        await component.stop()


async def test_readyz_is_503_until_ready(pki: Pki) -> None:
    state = {"ready": False}
    result, server = await serve(pki, health=Health(ready=lambda: state["ready"]))
    try:
        async with result.session() as s:
            async with s.get(result.url + "/readyz") as resp:
                body = await resp.json()
                assert (
                    resp.status == 503 and body["kind"] == "Status" and body["reason"] == "ServiceUnavailable"
                )
            async with s.get(result.url + "/livez") as resp:
                assert resp.status == 200
            state["ready"] = True
            async with s.get(result.url + "/readyz") as resp:
                assert resp.status == 200
    finally:
        await server.stop()
        result.views.close()


async def test_concurrent_identical_reviews_share_one_request() -> None:
    calls = 0
    release = asyncio.Event()

    class SlowReviewer:
        async def review_access(self, spec: dict) -> Decision:
            nonlocal calls
            calls += 1
            await release.wait()
            return Decision(True)

    authz = Authorizer(SlowReviewer())
    info = parse_request_info("GET", f"{GV}/prometheus", {})
    user = UserInfo("prom", groups=("system:authenticated",))
    tasks = [asyncio.create_task(authz.authorize(user, info)) for _ in range(20)]
    await asyncio.sleep(0.05)
    release.set()
    decisions = await asyncio.gather(*tasks)
    assert all(d.allowed for d in decisions)
    assert calls == 1 and authz.reviews_sent == 1


async def test_own_telemetry_counts_requests_and_reviews(pki: Pki) -> None:
    from prometheus_client import CollectorRegistry

    from apiserver.telemetry import ApiTelemetry

    registry = CollectorRegistry()
    result, server = await serve(pki, telemetry=ApiTelemetry(registry))
    result.reviewer.allow = lambda spec: True
    try:
        async with result.proxy_session() as s:
            for _ in range(3):
                async with s.get(result.url + f"{GV}/prometheus", headers={"X-Remote-User": "p"}) as resp:
                    assert resp.status == 200
            async with s.get(result.url + f"{GV}/no-such-thing/x", headers=MASTERS_HEADERS) as resp:
                assert resp.status == 404
    finally:
        await server.stop()
        result.views.close()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("panopticon_apiserver_requests_total", verb="list", resource="prometheus", code="200") == 3
    assert value("panopticon_apiserver_requests_total", verb="get", resource="other", code="404") == 1
    assert value("panopticon_apiserver_subjectaccessreviews_total") == 1
    assert value("panopticon_apiserver_authorization_cache_hits_total") == 2
    assert (
        value("panopticon_apiserver_request_duration_seconds_count", verb="list", resource="prometheus") == 3
    )
