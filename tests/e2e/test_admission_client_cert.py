"""Authenticated webhook calls: the kube-apiserver presents a client certificate, we answer only it.

A kube-apiserver of its own (this module's cluster) is started with
``--admission-control-config-file``: its WebhookAdmissionConfiguration gives it a client
certificate (CN ``kube-apiserver-webhook``, from a CA of this test) for the webhook's Service host.
``panopticon serve`` trusts that CA for client certificates (``--client-ca-file``) and answers
only that user (``--admission-allowed-users``), as docs/admission.md describes. A direct call
without the certificate gets a 403 Status.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from certs.generate import new_ca, new_client_cert, write_pair
from tests.e2e.cluster import KubeCluster
from tests.e2e.panopticon_server import PanopticonServer, running_server
from tests.e2e.test_admission import BROKEN, GOOD, denial, webhook_configuration, write

CALLER = "kube-apiserver-webhook"
PATH = "/validate/metrics.appscode.com/v1alpha1/metricsconfigurations"


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeCluster, PanopticonServer]]:
    work = tmp_path_factory.mktemp("admission-mtls")
    ca = new_ca("webhook-client-ca")
    ca_file, _ = write_pair(work / "pki", "webhook-client-ca", ca)
    cert, key = write_pair(work / "pki", CALLER, new_client_cert(ca, common_name=CALLER))
    # The kube-apiserver looks the credentials up by "<service>.<namespace>.svc:<port>" (the name
    # without the port only for 443, as in deploy/); the port is picked later, so "*" (any host).
    host = "*"
    credentials = {"client-certificate": str(cert), "client-key": str(key)}
    (work / "webhook.kubeconfig").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [],
        "users": [{"name": host, "user": credentials}],
    }))
    (work / "admission.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [{"name": "ValidatingAdmissionWebhook", "configuration": {
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": str(work / "webhook.kubeconfig")}}],
    }))
    cluster = KubeCluster.start(
        work / "cluster", extra_apiserver_args=[f"--admission-control-config-file={work / 'admission.yaml'}"])
    try:
        args = [f"--client-ca-file={ca_file}", f"--admission-allowed-users={CALLER}"]
        with running_server(cluster, work / "server", extra_args=args) as server:
            cluster.apply(webhook_configuration(server))
            yield cluster, server
    finally:
        cluster.stop()


def test_kube_apiserver_calls_with_its_client_certificate_and_is_answered(
    mtls: tuple[KubeCluster, PanopticonServer], tmp_path: Path
) -> None:
    cluster, server = mtls
    broken = write(tmp_path / "broken.yaml", BROKEN)
    result = server.wait_for(
        lambda: (r := cluster.kubectl("apply", "--dry-run=server", "-f", str(broken), check=False))
        and "denied the request" in r.stderr and r,
        timeout=30, what="the webhook answering the kube-apiserver")
    assert denial(result.stderr, "metricsconfigurations.metrics.appscode.com").startswith(
        "e2e-admission: spec.metrics[0].metricValue.valueFromExpression: ")
    good = write(tmp_path / "good.yaml", GOOD)
    assert "created (server dry run)" in cluster.kubectl("apply", "--dry-run=server", "-f", str(good)).stdout


def test_a_caller_without_the_certificate_gets_403(mtls: tuple[KubeCluster, PanopticonServer]) -> None:
    _cluster, server = mtls
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.context(), timeout=10)
    try:
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "request": {"uid": "x", "operation": "CREATE", "object": GOOD}})
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 403
    assert answer["kind"] == "Status" and 'User "system:anonymous"' in answer["message"]
