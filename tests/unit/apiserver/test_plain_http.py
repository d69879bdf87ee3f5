"""The plain endpoints in-process (aiohttp test server) and ``panopticon serve --source`` as a
real subprocess on a free port: negotiation, gzip, telemetry, health, reload, clean exit."""

from __future__ import annotations

import gzip
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apiserver.plain import make_plain_app
from exporter.exposition import Exposition
from exporter.offline import apply_snapshot, load_directory
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from tests.expo_checks import check_exposition
from tests.offline_fixtures import (
    deployment,
    free_port,
    http_get,
    make_source_dir,
    serve,
    wait_ready,
    write_and_touch,
)

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


def _app(tmp_path: Path, *, state: bool = True, ready: bool = True) -> tuple[MetricsStore, TestClient]:
    telemetry = Telemetry()
    store = MetricsStore(telemetry=telemetry)
    telemetry.watch_store(store)
    apply_snapshot(store, load_directory([str(make_source_dir(tmp_path))]))
    app = make_plain_app(exposition=Exposition(store) if state else None, telemetry=telemetry,
                         ready=lambda: ready)
    return store, TestClient(TestServer(app, host="127.0.0.1"))


async def test_metrics_text_gzip_and_openmetrics(tmp_path: Path) -> None:
    _, client = _app(tmp_path)
    async with client:
        resp = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "Content-Encoding" not in resp.headers
        text = await resp.read()
        checked = check_exposition(text)
        assert {"apps_deployment_status_replicas", "panopticon_store_series", "panopticon_scrapes",
                "process_resident_memory_bytes"} <= checked.families.keys()
        assert checked.samples("panopticon_store_objects") == [({"configuration": "apps-deployment"}, 2.0)]

        resp = await client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
                                auto_decompress=False)
        assert resp.headers["Content-Type"] == (
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8")
        assert resp.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in resp.headers["Vary"]
        om = gzip.decompress(await resp.read())
        checked = check_exposition(om, openmetrics=True)
        assert "apps_deployment_status_condition" in checked.families
        assert checked.families["panopticon_scrapes"].type == "counter"


async def test_telemetry_only_when_state_metrics_are_off(tmp_path: Path) -> None:
    _, client = _app(tmp_path, state=False)
    async with client:
        body = await (await client.get("/metrics")).read()
    checked = check_exposition(body)
    assert "panopticon_store_series" in checked.families
    assert not any(name.startswith("apps_") for name in checked.families)


async def test_health_endpoints(tmp_path: Path) -> None:
    _, client = _app(tmp_path, ready=False)
    async with client:
        for path in ("/healthz", "/livez"):
            resp = await client.get(path)
            assert (resp.status, await resp.text()) == (200, "ok\n")
        assert (await client.get("/readyz")).status == 503
        assert (await client.head("/metrics")).status == 200


# --------------------------------------------------------------------------- real process


def _replicas(base: str) -> dict[str, float]:
    checked = check_exposition(http_get(base + "/metrics")[2])
    return {labels["deployment"]: v for labels, v in checked.samples("apps_deployment_status_replicas")}


def _failed_reloads(base: str) -> float:  # reloads with a problem (the rest is served)
    text = http_get(base + "/metrics")[2].decode()
    found = re.search(r'^panopticon_source_reloads_total\{result="partial"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_serve_source_subprocess(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path / "src")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve("--source", str(root), "--metrics-address", f"127.0.0.1:{port}")
    try:
        wait_ready(base, proc)
        assert _replicas(base) == {"web": 4, "api": 2}
        status, headers, body = http_get(base + "/metrics",
                                     {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        check_exposition(gzip.decompress(body), openmetrics=True)

        write_and_touch(root / "objects" / "web.yaml", deployment("web", "shop", replicas=9))
        deadline = time.monotonic() + 10
        while _replicas(base).get("web") != 9:
            assert time.monotonic() < deadline, "reload not observed"
            time.sleep(0.2)
        failed = _failed_reloads(base)
        write_and_touch(root / "objects" / "web.yaml", "kind: [unclosed\n")
        deadline = time.monotonic() + 10
        while _failed_reloads(base) == failed:  # the reload of the broken file has happened
            assert time.monotonic() < deadline, "failed reload not observed"
            time.sleep(0.1)
        assert _replicas(base) == {"web": 9, "api": 2}  # last good state kept
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    log = err.decode()
    assert proc.returncode == 0, log
    assert "loaded 1 configurations, 2 objects, 12 series from" in log
    assert "web.yaml" in log and "keeping its last good content" in log
    assert "Traceback" not in log


def test_serve_exits_1_with_clear_errors(tmp_path: Path) -> None:
    root = make_source_dir(tmp_path / "src")
    cfg = root / "configs" / "apps-deployment.yaml"
    good = cfg.read_text()
    cfg.write_text(good.replace("type: Integer", "type: Intgr"))  # nothing at all can be served
    proc = serve("--source", str(root), "--metrics-address", f"127.0.0.1:{free_port()}")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "apps-deployment.yaml" in err.decode() and "spec.metrics[0].field.type" in err.decode()
    assert "Traceback" not in err.decode()

    cfg.write_text(good)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = serve("--source", str(root), "--metrics-address", f"127.0.0.1:{port}")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:", ":80x"])
def test_serve_rejects_bad_address(tmp_path: Path, address: str) -> None:
    root = make_source_dir(tmp_path / "src")
    proc = serve("--source", str(root), "--metrics-address", address)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "expected HOST:PORT" in err.decode()
