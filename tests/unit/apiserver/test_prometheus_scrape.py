"""A real Prometheus (Debian's ``prometheus`` 2.42) scrapes ``panopticon serve --source``.

Prometheus negotiates OpenMetrics by default and asks for gzip: this proves a real Go parser
accepts our negotiated format, Content-Type, compression and grouping, and that the values it
stores are the ones the golden files expect. Then an edit of a source file is observed through
Prometheus too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.offline_fixtures import deployment, free_port, make_source_dir, serve, wait_ready, write_and_touch
from tests.polling import poll

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[3]


def _query(base: str, expr: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        data = json.load(resp)
    assert data["status"] == "success", data
    return data["data"]["result"]  # type: ignore[no-any-return]


def _targets(base: str) -> list[dict]:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as resp:
        return json.load(resp)["data"]["activeTargets"]  # type: ignore[no-any-return]


def _eventually(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    return poll(
        check,
        timeout=timeout,
        interval=0.25,
        failure=lambda last: f"condition not met in {timeout}s; last value {last!r}",
    )


def test_prometheus_scrapes_serve_source(tmp_path: Path) -> None:
    exe = shutil.which("prometheus")
    assert exe is not None, "prometheus not found: install it with `apt-get install prometheus`"
    source = make_source_dir(tmp_path / "src")
    for name in ("mongodbs.yaml", "backupsessions.yaml"):
        shutil.copy(ROOT / "examples" / "objects" / name, source / "objects" / name)
    for name in ("kubedb-com-mongodb.yaml", "kubestash-appscode-com-backupsession.yaml"):
        shutil.copy(ROOT / "examples" / "configs" / name, source / "configs" / name)

    app_port, prom_port = free_port(), free_port()
    app = serve("--source", str(source), "--metrics-address", f"127.0.0.1:{app_port}")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"- job_name: panopticon\n  static_configs: [{{targets: ['127.0.0.1:{app_port}']}}]\n")
    prom = subprocess.Popen(
        [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{prom_port}"
    try:
        wait_ready(f"http://127.0.0.1:{app_port}", app)

        def healthy() -> dict | None:  # type: ignore[type-arg]
            assert prom.poll() is None, prom.communicate()[1].decode()
            try:
                targets = _targets(base)
            except OSError:
                return None
            return next((t for t in targets if t["health"] == "up"), None)

        target = _eventually(healthy)
        assert target["lastError"] == ""

        phase = _eventually(lambda: _query(base, 'kubedb_com_mongodb_status_phase{phase="Critical"} == 1'))
        assert [r["metric"]["mongodb"] for r in phase] == ["mgo-sh"]
        created = _query(base, 'kubedb_com_mongodb_created{mongodb="mgo-rs"}')
        assert created[0]["value"][1] == "1709288430"
        assert _query(base, 'apps_deployment_status_replicas{deployment="web"}')[0]["value"][1] == "4"
        # Our telemetry arrives in the same scrape.
        objects = _query(base, 'panopticon_store_objects{configuration="kubedb-com-mongodb"}')
        assert objects[0]["value"][1] == "3"
        samples = _query(base, 'scrape_samples_scraped{job="panopticon"}')
        assert int(samples[0]["value"][1]) > 100
        # Prometheus negotiated OpenMetrics and gzip (counted by our own telemetry, which a
        # scrape reports as of before its own request: wait for the next scrape).
        negotiated = 'panopticon_scrapes_total{format="openmetrics",encoding="gzip"} >= 1'
        _eventually(lambda: _query(base, negotiated))
        assert not _query(base, 'panopticon_scrapes_total{format="text"}')

        write_and_touch(source / "objects" / "web.yaml", deployment("web", "shop", replicas=6))
        _eventually(lambda: _query(base, 'apps_deployment_status_replicas{deployment="web"} == 6'))
        assert healthy()["lastError"] == ""
    finally:
        prom.terminate()
        app.terminate()
        prom.communicate(timeout=30)
        app.communicate(timeout=30)
