"""A real ``panopticon serve`` process registered as the APIService ``v1alpha1.metrics.panopticon.io``.

Used by the ``test_apiserver_*`` e2e tests: the serving certificate comes from ``panopticon certs``
(so that command is exercised too), the process runs in cluster mode against the test
kube-apiserver with the admin kubeconfig (exporter only), reads the front-proxy CA and allowed
names from ``kube-system/extension-apiserver-authentication`` (no CA flags), and the APIService
points at it through an ExternalName Service (``KubeCluster.register_apiservice``).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.cluster import (
    EXTENSION_NAMESPACE,
    APIServiceRegistration,
    KubeCluster,
    free_port,
    service_name_for,
)
from tests.e2e.manifests import deployment as deployment
from tests.polling import poll

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "metrics.panopticon.io", "v1alpha1"
GV = f"/apis/{GROUP}/{VERSION}"
FAMILY = "apps_deployment_e2e_deployment_spec_replicas"

CONFIG = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "e2e-deployment-replicas"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment"},
        "metrics": [
            {
                "name": "e2e_deployment_spec_replicas",
                "help": "Desired replicas of a Deployment",
                "type": "gauge",
                "field": {"path": ".spec.replicas", "type": "Integer"},
                "metricValue": {"valueFromPath": ".spec.replicas"},
            }
        ],
    },
}


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def https_get(
    port: int, path: str, *, context: ssl.SSLContext, headers: Iterable[tuple[str, str]], timeout: float
) -> Response:
    """A GET to 127.0.0.1:``port`` with raw header lines (repeated names and all, sent as given)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.putrequest("GET", path)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@dataclass
class PanopticonServer:
    cluster: KubeCluster
    process: subprocess.Popen[bytes]
    port: int
    cert_dir: Path
    ca_pem: bytes
    log: Path
    registration: APIServiceRegistration
    registrations: tuple[APIServiceRegistration, ...] = ()

    @classmethod
    def start(
        cls,
        cluster: KubeCluster,
        workdir: Path,
        *,
        configs: Iterable[Mapping[str, Any]] = (CONFIG,),
        apis: Iterable[tuple[str, str, int]] = ((GROUP, VERSION, 15),),
        service: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> PanopticonServer:
        """Start ``panopticon serve`` with ``configs`` applied, registered for each of ``apis``.

        ``apis`` are (group, version, versionPriority); all share one ExternalName Service
        (``service``, default the first API's), whose name the serving certificate carries.
        ``extra_args`` are appended to ``panopticon serve``'s command line.
        """
        apis = list(apis)
        cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "crds" / "metricsconfigurations.yaml"))
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/metricsconfigurations.metrics.appscode.com",
            "--timeout=60s",
        )
        cluster.apply(*configs)
        service = service or service_name_for(apis[0][0], apis[0][1])
        cert_dir = workdir / "serving"
        certs = subprocess.run(
            [
                sys.executable,
                "-m",
                "apiserver.cli",
                "certs",
                "--service",
                service,
                "--namespace",
                EXTENSION_NAMESPACE,
                "--out",
                str(cert_dir),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        ca_pem = base64.b64decode(certs.stdout.strip())
        port = free_port()
        log = workdir / "panopticon.log"
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apiserver.cli",
                "serve",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--controllers",
                "exporter",
                "--secure-port",
                str(port),
                "--bind-address",
                "127.0.0.1",
                "--tls-cert-file",
                str(cert_dir / "tls.crt"),
                "--tls-private-key-file",
                str(cert_dir / "tls.key"),
                "--metrics-address",
                "",
                "--log-level",
                "info",
                *extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        registrations = tuple(
            cluster.register_apiservice(
                group, version, port, ca_pem, service=service, version_priority=priority
            )
            for group, version, priority in apis
        )
        server = cls(cluster, process, port, cert_dir, ca_pem, log, registrations[0], registrations)
        server.wait_ready()
        return server

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"panopticon serve exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.request("/readyz").status == 200:
                    return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"panopticon serve not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        for registration in self.registrations or (self.registration,):
            self.cluster.unregister_apiservice(registration)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def context(self, *, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        ctx.check_hostname = False  # the certificate names the Service, we dial 127.0.0.1
        if cert is not None and key is not None:
            ctx.load_cert_chain(cert, key)
        return ctx

    def request(
        self,
        path: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        cert: Path | None = None,
        key: Path | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """A request straight to the extension server (not through the kube-apiserver)."""
        return https_get(
            self.port, path, context=self.context(cert=cert, key=key), headers=headers, timeout=timeout
        )

    def wait_for(self, predicate: Any, *, timeout: float = 30.0, what: str = "condition") -> Any:
        return poll(
            predicate,
            timeout=timeout,
            interval=0.3,
            failure=lambda last: f"{what} not reached in {timeout}s (last: {last!r})\n{self.log_tail()}",
        )


@contextlib.contextmanager
def running_server(
    cluster: KubeCluster, workdir: Path, *, extra_args: Sequence[str] = ()
) -> Iterator[PanopticonServer]:
    """Start, wait for ``Available=True``, yield, stop (and unregister) - for module fixtures."""
    server = PanopticonServer.start(cluster, workdir, extra_args=extra_args)
    try:
        cluster.wait_apiservice_available(server.registration.name, timeout=90)
        # kube-apiserver 1.20 may report Available=True a moment before its proxy handler for the
        # group is installed (404 "page not found" until then): wait until a request gets through.
        server.wait_for(
            lambda: cluster.kubectl("get", "--raw", GV, check=False).returncode == 0,
            timeout=30,
            what="the aggregator proxying to panopticon",
        )
        yield server
    finally:
        server.stop()
