"""AC3: the real Prometheus (Debian package) scrapes our metrics *through* the kube-apiserver.

Prometheus authenticates to the kube-apiserver with a ServiceAccount token, the aggregator proxies
``/apis/metrics.panopticon.io/v1alpha1/prometheus`` to ``panopticon serve`` with the scraper's
identity, our SubjectAccessReview (``list prometheus``) allows it, and a PromQL query on
Prometheus' HTTP API returns the Deployment's replicas - and the new value after a scale.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import KubeCluster, free_port
from tests.e2e.panopticon_server import FAMILY, GV, PanopticonServer, deployment, running_server


@pytest.fixture(scope="module")
def panopticon(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PanopticonServer]:
    with running_server(kube_cluster, tmp_path_factory.mktemp("panopticon-prom")) as server:
        yield server


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus not found: apt-get install prometheus (Debian package)", pytrace=False)
    return found


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _wait_value(port: int, promql: str, expected: float, *, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = _query(port, promql)
        except OSError as exc:
            last = exc
        else:
            last = result
            if result and float(result[0]["value"][1]) == expected:
                return
        time.sleep(0.5)
    raise AssertionError(
        f"{promql} != {expected} after {timeout}s (last {last!r})\n"
        + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    )


def test_ac3_prometheus_scrapes_through_the_kube_apiserver(
    kube_cluster: KubeCluster, panopticon: PanopticonServer, tmp_path: Path
) -> None:
    ns = f"prom-target-{uuid.uuid4().hex[:6]}"
    kube_cluster.ensure_namespace(ns)
    kube_cluster.apply(deployment("shop", ns, 2))
    monitoring = f"monitoring-{uuid.uuid4().hex[:6]}"
    token = kube_cluster.service_account_token(monitoring, "prometheus")
    role = f"panopticon-scraper-{monitoring}"
    kube_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {"apiGroups": ["metrics.panopticon.io"], "resources": ["prometheus"], "verbs": ["list"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": monitoring}],
        },
    )
    token_file = tmp_path / "token"
    token_file.write_text(token)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "panopticon",
                "scheme": "https",
                "metrics_path": f"{GV}/prometheus",
                "honor_labels": True,
                "tls_config": {"ca_file": str(kube_cluster.ca_file)},
                "authorization": {"credentials_file": str(token_file)},
                "static_configs": [{"targets": [kube_cluster.server.removeprefix("https://")]}],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    subprocess.run(["promtool", "check", "config", str(config_file)], check=True, capture_output=True)
    port = free_port()
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [
            _prometheus_binary(),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        selector = f'{FAMILY}{{namespace="{ns}",deployment="shop"}}'
        _wait_value(port, 'up{job="panopticon"}', 1, timeout=60, log=log)
        _wait_value(port, selector, 2, timeout=60, log=log)
        kube_cluster.kubectl("scale", "deployment/shop", "-n", ns, "--replicas=7")
        _wait_value(port, selector, 7, timeout=60, log=log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
