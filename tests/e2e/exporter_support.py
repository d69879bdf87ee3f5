"""Helpers for the live-exporter e2e tests: CRDs, configs, a `panopticon serve` subprocess.

Every test gets its own API group (``g<hex>.e2e.panopticon.io``), so family names never clash
between tests that share the session's cluster and its cluster-scoped MetricsConfigurations.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CONFIG_CRD = ROOT / "deploy" / "crds" / "metricsconfigurations.yaml"


def unique_group() -> str:
    return f"g{uuid.uuid4().hex[:8]}.e2e.panopticon.io"


def family_prefix(group: str, kind: str = "Widget") -> str:
    return f"{group.replace('.', '_')}_{kind.lower()}_"


def install_config_crd(cluster: KubeCluster) -> None:
    cluster.kubectl("apply", "-f", str(CONFIG_CRD))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/metricsconfigurations.metrics.appscode.com",
        "--timeout=60s",
    )


def widget_crd(
    group: str,
    *,
    versions: tuple[str, ...] = ("v1",),
    storage: str = "v1",
    spec_properties: dict[str, Any] | None = None,
    status_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Widget CRD of ``group``: free-form spec and status, or a real schema: a spec of
    ``spec_properties`` (and a status of ``status_properties`` when given)."""
    schema: dict[str, Any] = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    }
    if spec_properties is not None:
        properties: dict[str, Any] = {"spec": {"type": "object", "properties": spec_properties}}
        if status_properties is not None:
            properties["status"] = {"type": "object", "properties": status_properties}
        schema = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {"name": v, "served": True, "storage": v == storage, "schema": schema} for v in versions
            ],
        },
    }


def apply_crd(cluster: KubeCluster, crd: dict[str, Any]) -> None:
    cluster.apply(crd)
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=60s")


WIDGET_METRICS: list[dict[str, Any]] = [
    {
        "name": "replicas",
        "help": "Desired replicas.",
        "type": "gauge",
        "field": {"path": ".spec.replicas", "type": "Integer"},
        "metricValue": {"valueFromPath": ".spec.replicas"},
    },
    {
        "name": "info",
        "help": "Widget information.",
        "type": "gauge",
        "labels": [{"key": "color", "valuePath": ".spec.color"}],
        "metricValue": {"value": 1},
    },
    {
        "name": "status_phase",
        "help": "Widget phase.",
        "type": "gauge",
        "params": [{"key": "phase", "valuePath": ".status.phase"}],
        "states": {
            "labelKey": "phase",
            "values": [
                {"labelValue": p, "metricValue": {"valueFromExpression": f"int(phase == '{p}')"}}
                for p in ("Pending", "Running", "Failed")
            ],
        },
    },
]


def metrics_config(
    name: str, group: str, *, version: str = "v1", metrics: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": f"{group}/{version}", "kind": "Widget"},
            "metrics": metrics if metrics is not None else WIDGET_METRICS,
        },
    }


def widget(
    group: str,
    namespace: str,
    name: str,
    *,
    replicas: Any = 1,
    color: str = "red",
    phase: str = "Running",
    version: str = "v1",
) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/{version}",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "color": color},
        "status": {"phase": phase},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, *, timeout: float = 10.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body.decode()

    def samples(self, prefix: str) -> set[str]:
        return {line for line in self.metrics().splitlines() if line.startswith(prefix)}

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def serve(
    cluster: KubeCluster, tmp_path: Path, *args: str, kubeconfig: Path | None = None
) -> Iterator[ServeProcess]:
    """``panopticon serve --controllers=exporter`` against the cluster, plain HTTP on a free port."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    command = [
        sys.executable,
        "-m",
        "apiserver.cli",
        "serve",
        f"--kubeconfig={kubeconfig or cluster.kubeconfig}",
        "--controllers=exporter",
        f"--metrics-address=127.0.0.1:{port}",
        "--log-level=debug",
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    proc = ServeProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: _answers(proc), timeout=30, what=lambda: f"serve to listen\n{proc.log_tail()}")
        yield proc
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(proc: ServeProcess) -> bool:
    if proc.process.poll() is not None:
        raise AssertionError(f"serve exited with {proc.process.returncode}:\n{proc.log_tail()}")
    try:
        return proc.get("/healthz", timeout=1)[0] == 200
    except OSError:
        return False


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: Callable[[], str] | str = "", interval: float = 0.05
) -> float:
    """Poll until ``check()``; returns the seconds it took. AssertionError on timeout."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            message = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {message}")
        time.sleep(interval)


def config_status(cluster: KubeCluster, name: str) -> dict[str, Any]:
    obj = cluster.get_json("metricsconfigurations.metrics.appscode.com", name)
    return dict(obj.get("status") or {})


def ready_condition(cluster: KubeCluster, name: str) -> dict[str, Any]:
    for cond in config_status(cluster, name).get("conditions") or ():
        if cond.get("type") == "Ready":
            return dict(cond)
    return {}


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


def create_widgets(cluster: KubeCluster, objects: list[dict[str, Any]], *, concurrency: int = 32) -> None:
    """POST many objects quickly (kubectl would take one round trip per object, sequentially)."""
    import asyncio

    from kube.client import KubeClient
    from kube.config import load_config
    from kube.paths import resource_path

    async def main() -> None:
        async with KubeClient(load_config(kubeconfig=str(cluster.kubeconfig))) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(obj: dict[str, Any]) -> None:
                group, version = obj["apiVersion"].split("/")
                path = resource_path(
                    group=group, version=version, resource="widgets", namespace=obj["metadata"]["namespace"]
                )
                async with gate:
                    await client.create(path, obj)

            await asyncio.gather(*(one(o) for o in objects))

    asyncio.run(main())


def fresh_render(
    cluster: KubeCluster, tmp_path: Path, config: dict[str, Any], resource: str, prefix: str
) -> set[str]:
    """What `panopticon render` makes of a full LIST taken now (an independent code path)."""
    listed = cluster.get_json(resource, "--all-namespaces")
    objects = tmp_path / "listed.json"
    objects.write_text(json.dumps(listed))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "apiserver.cli", "render", "-c", str(config_file), "-f", str(objects)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {line for line in result.stdout.splitlines() if line.startswith(prefix)}
