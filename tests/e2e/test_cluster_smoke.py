"""Smoke tests of the e2e test cluster itself: the real kube-apiserver does what later tests rely on.

Each test checks one promise of ``tests/e2e/cluster.py``: version and basic reads, custom
resources (the reflect2/json-iterator swap), RBAC with service-account tokens and client
certificates, the front-proxy configuration published for extension servers, aggregation to a
server on 127.0.0.1 through an ExternalName Service, the write audit log, and a 410 Gone after
an apiserver restart plus etcd compaction.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.cluster import (
    FRONT_PROXY_CLIENT_NAME,
    KUBE_VERSION,
    APIServiceRegistration,
    ClusterError,
    KubeCluster,
    apiserver_binary,
    service_name_for,
)
from tests.e2e.exporter_support import widget_crd


def test_server_is_v1_20_2_and_lists_namespaces(kube_cluster: KubeCluster) -> None:
    version = json.loads(kube_cluster.kubectl("version", "-o", "json", check=False).stdout)
    assert version["serverVersion"]["gitVersion"] == KUBE_VERSION
    names = {item["metadata"]["name"] for item in kube_cluster.get_json("namespaces")["items"]}
    assert {"default", "kube-system", "kube-public"} <= names


def test_custom_resources_work(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.e2e.panopticon.io"
    kube_cluster.apply(_crd(group))
    kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=30s")
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": kube_namespace, "labels": {"tier": "gold"}},
        "spec": {"size": 3, "tags": ["a", "b"]},
    }
    kube_cluster.apply(widget)
    kube_cluster.kubectl(
        "patch", f"widgets.{group}", "w1", "-n", kube_namespace, "--type=merge", "-p", '{"spec":{"size":4}}'
    )
    stored = kube_cluster.get_json(f"widgets.{group}", "w1", "-n", kube_namespace)
    assert stored["spec"] == {"size": 4, "tags": ["a", "b"]}
    assert stored["metadata"]["labels"] == {"tier": "gold"}
    # The crash this guards against killed the apiserver right after the first custom object.
    listed = kube_cluster.get_json(f"widgets.{group}", "-A")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["w1"]
    assert kube_cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_service_account_token_is_authenticated_and_subject_to_rbac(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    token = kube_cluster.service_account_token(kube_namespace, "reader")
    assert token.count(".") == 2  # a signed JWT
    as_reader = kube_cluster.make_token_kubeconfig("reader", token)
    denied = kube_cluster.kubectl(
        "get", "configmaps", "-n", kube_namespace, user_kubeconfig=as_reader, check=False
    )
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{kube_namespace}:reader" in denied.stderr
    kube_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-configmaps", "namespace": kube_namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": kube_namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": kube_namespace}],
        },
    )
    allowed = kube_cluster.get_json("configmaps", "-n", kube_namespace, user_kubeconfig=as_reader)
    # With kube-controller-manager running, its root-ca-cert-publisher adds kube-root-ca.crt.
    assert [i for i in allowed["items"] if i["metadata"]["name"] != "kube-root-ca.crt"] == []
    other = kube_cluster.kubectl("get", "configmaps", "-n", "default", user_kubeconfig=as_reader, check=False)
    assert "Forbidden" in other.stderr


def test_client_certificate_users_carry_groups(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    alice = kube_cluster.make_user_kubeconfig("alice", groups=["team-a"])
    denied = kube_cluster.kubectl("get", "secrets", "-n", kube_namespace, user_kubeconfig=alice, check=False)
    assert 'User "alice"' in denied.stderr
    kube_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "team-a-configmaps", "namespace": kube_namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "team-a-configmaps", "namespace": kube_namespace},
            # Not the aggregated ClusterRole `view`: without kube-controller-manager it has no rules.
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "team-a-configmaps"},
            "subjects": [{"kind": "Group", "name": "team-a", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )
    can = kube_cluster.kubectl(
        "auth", "can-i", "list", "configmaps", "-n", kube_namespace, user_kubeconfig=alice
    )
    assert can.stdout.strip() == "yes"


def test_extension_apiserver_authentication_configmap_has_requestheader_fields(
    kube_cluster: KubeCluster,
) -> None:
    data = kube_cluster.get_json("configmap", "extension-apiserver-authentication", "-n", "kube-system")[
        "data"
    ]
    # kube-apiserver merges what it publishes into this ConfigMap with what is there (other tests
    # may add names or CAs, e.g. to test rotation), so ours must be contained, not equal.
    assert FRONT_PROXY_CLIENT_NAME in json.loads(data["requestheader-allowed-names"])
    assert "X-Remote-User" in json.loads(data["requestheader-username-headers"])
    assert "X-Remote-Group" in json.loads(data["requestheader-group-headers"])
    assert "X-Remote-Extra-" in json.loads(data["requestheader-extra-headers-prefix"])
    assert kube_cluster.front_proxy_ca_file.read_text().strip() in data["requestheader-client-ca-file"]
    assert kube_cluster.client_ca_file.read_text().strip() in data["client-ca-file"]


@dataclass
class _SeenRequest:
    path: str
    user: str | None
    groups: list[str]
    client_cn: str | None


@dataclass
class _ExtensionServer:
    """A minimal aggregated API: answers discovery for one group/version, remembers requests."""

    group: str
    version: str
    seen: list[_SeenRequest] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
        self.seen.append(
            _SeenRequest(
                path=request.path,
                user=request.headers.get("X-Remote-User"),
                groups=request.headers.getall("X-Remote-Group", []),
                client_cn=subject.get("commonName"),
            )
        )
        if request.path != f"/apis/{self.group}/{self.version}":
            return web.json_response({"kind": "Status", "status": "Failure", "code": 404}, status=404)
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{self.group}/{self.version}",
                "resources": [
                    {
                        "name": "gadgets",
                        "singularName": "gadget",
                        "namespaced": True,
                        "kind": "Gadget",
                        "verbs": ["get", "list"],
                    }
                ],
            }
        )


@pytest.fixture
async def extension_server(
    kube_cluster: KubeCluster, tmp_path: Path
) -> AsyncIterator[tuple[_ExtensionServer, APIServiceRegistration]]:
    group, version = f"g{uuid.uuid4().hex[:8]}.e2e.panopticon.io", "v1alpha1"
    service_dns = f"{service_name_for(group, version)}.panopticon-e2e.svc"
    cert = kube_cluster.issue_serving_cert(tmp_path, name="extension", dns_names=[service_dns, "localhost"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert), str(cert.key))
    # Only kube-apiserver's front-proxy client certificate may connect, as a real extension
    # server configured from extension-apiserver-authentication would insist.
    context.load_verify_locations(cafile=str(kube_cluster.front_proxy_ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    server = _ExtensionServer(group=group, version=version)
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    registration = await asyncio.to_thread(
        kube_cluster.register_apiservice, group, version, port, kube_cluster.ca_file.read_bytes()
    )
    try:
        yield server, registration
    finally:
        # An APIService left without its server makes discovery fail for every later test.
        await asyncio.to_thread(kube_cluster.unregister_apiservice, registration)
        await runner.cleanup()


async def test_apiservice_reaches_extension_server_on_loopback(
    kube_cluster: KubeCluster, extension_server: tuple[_ExtensionServer, APIServiceRegistration]
) -> None:
    server, registration = extension_server
    assert registration.service_dns == f"{service_name_for(server.group, server.version)}.panopticon-e2e.svc"
    # Blocking kubectl calls run in threads: this event loop must keep serving the apiserver.
    await asyncio.to_thread(kube_cluster.wait_apiservice_available, registration.name, timeout=60)
    raw = await asyncio.to_thread(
        kube_cluster.kubectl, "get", "--raw", f"/apis/{server.group}/{server.version}"
    )
    assert json.loads(raw.stdout)["resources"][0]["name"] == "gadgets"
    proxied = [seen for seen in server.seen if seen.user == "e2e-admin"]
    assert proxied, server.seen
    assert proxied[-1].client_cn == FRONT_PROXY_CLIENT_NAME
    assert "system:masters" in proxied[-1].groups


def test_audit_log_records_writes_with_user_and_agent(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    kube_cluster.kubectl("create", "configmap", "audited", "-n", kube_namespace, "--from-literal=a=b")
    kube_cluster.kubectl("get", "configmap", "audited", "-n", kube_namespace)
    events = [
        event
        for event in kube_cluster.audit_events()
        if event.get("objectRef", {}).get("namespace") == kube_namespace
        and event.get("objectRef", {}).get("name") == "audited"
    ]
    assert [event["verb"] for event in events] == ["create"]  # reads are not logged
    assert events[0]["user"]["username"] == "e2e-admin"
    assert events[0]["userAgent"].startswith("kubectl")
    assert events[0]["stage"] == "ResponseComplete"


def test_restart_and_compaction_make_old_resource_versions_gone(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    kube_cluster.kubectl("create", "configmap", "churn", "-n", kube_namespace, "--from-literal=n=0")
    old_version = kube_cluster.get_json("configmap", "churn", "-n", kube_namespace)["metadata"][
        "resourceVersion"
    ]
    for n in range(1, 4):
        kube_cluster.kubectl(
            "patch", "configmap", "churn", "-n", kube_namespace, "-p", json.dumps({"data": {"n": str(n)}})
        )
    kube_cluster.restart_apiserver()
    revision = kube_cluster.compact_etcd()
    assert revision > int(old_version)
    status, first_event = _first_watch_event(
        kube_cluster, f"/api/v1/namespaces/{kube_namespace}/configmaps?watch=1&resourceVersion={old_version}"
    )
    gone = status == 410 or (first_event.get("type") == "ERROR" and first_event["object"].get("code") == 410)
    assert gone, (status, first_event)
    # The cluster is fully usable after the restart: a list still sees the latest state.
    assert kube_cluster.get_json("configmap", "churn", "-n", kube_namespace)["data"] == {"n": "3"}


def _first_watch_event(cluster: KubeCluster, path: str) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    context.load_cert_chain(str(cluster.admin.cert), str(cluster.admin.key))
    connection = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=context, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            return response.status, json.loads(response.read() or b"{}")
        line = response.readline()
        return response.status, json.loads(line)
    finally:
        connection.close()


def _crd(group: str) -> dict[str, Any]:
    return widget_crd(
        group,
        spec_properties={"size": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
    )


def test_missing_binary_fails_saying_how_to_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PANOPTICON_CACHE", str(tmp_path))
    with pytest.raises(ClusterError, match=r"kube-apiserver not built: run scripts/test-cluster build"):
        apiserver_binary()


def test_startup_failure_reports_the_apiserver_log(tmp_path: Path) -> None:
    with pytest.raises(ClusterError) as failure:
        KubeCluster.start(tmp_path, extra_apiserver_args=["--no-such-flag"], timeout=60)
    assert "kube-apiserver exited" in str(failure.value)
    assert "unknown flag: --no-such-flag" in str(failure.value)


@pytest.mark.parametrize(
    ("group", "version"),
    [("metrics.panopticon.io", "v1alpha1"), ("a" * 80 + ".Example.COM", "v2"), ("x_y.io", "v1")],
)
def test_service_names_are_dns_labels(group: str, version: str) -> None:
    name = service_name_for(group, version)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name), name
    assert name.startswith(version)
