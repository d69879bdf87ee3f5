"""The extension API server through the real kube-apiserver v1.20.2 aggregator, with real kubectl.

One ``panopticon serve`` process (cluster mode, exporter only) is registered as the APIService
for the whole module. Tests are named after the acceptance criteria of issue 4 (``ac1_``...) and
the statements of docs/design.md "The contract" (``s04_``...).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import FRONT_PROXY_CLIENT_NAME, KubeCluster
from tests.e2e.panopticon_server import FAMILY, GV, PanopticonServer, deployment, running_server


@pytest.fixture(scope="module")
def panopticon(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PanopticonServer]:
    with running_server(kube_cluster, tmp_path_factory.mktemp("panopticon")) as server:
        yield server


@pytest.fixture(scope="module")
def workloads(kube_cluster: KubeCluster, panopticon: PanopticonServer) -> dict[str, str]:
    """Two tenant namespaces with one Deployment each, visible in the API."""
    suffix = uuid.uuid4().hex[:6]
    names = {"a": f"team-a-{suffix}", "b": f"team-b-{suffix}"}
    for ns in names.values():
        kube_cluster.ensure_namespace(ns)
    kube_cluster.apply(deployment("web", names["a"], 3), deployment("api", names["b"], 2))
    panopticon.wait_for(
        lambda: _raw(kube_cluster, f"{GV}/namespaces/{names['b']}/objectmetrics")["items"],
        what="objectmetrics of the new Deployments",
    )
    return names


def _raw(cluster: KubeCluster, path: str, *, kubeconfig: Path | None = None) -> dict:
    result = cluster.kubectl("get", "--raw", path, user_kubeconfig=kubeconfig)
    return json.loads(result.stdout)


def _kubectl_fails(cluster: KubeCluster, *args: str, kubeconfig: Path | None = None) -> str:
    result = cluster.kubectl(*args, check=False, user_kubeconfig=kubeconfig)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_ac1_s04_apiservice_available(kube_cluster: KubeCluster, panopticon: PanopticonServer) -> None:
    service = kube_cluster.get_json("apiservice", panopticon.registration.name)
    available = next(c for c in service["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True" and available["reason"] == "Passed"


def test_ac1_s05_discovery_through_the_aggregator(
    kube_cluster: KubeCluster, panopticon: PanopticonServer
) -> None:
    body = _raw(kube_cluster, GV)
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == "metrics.panopticon.io/v1alpha1"
    assert {r["name"] for r in body["resources"]} == {
        "metricfamilies",
        "objectmetrics",
        "clusterobjectmetrics",
    }
    out = kube_cluster.kubectl("api-resources", "--api-group=metrics.panopticon.io", "-o", "wide").stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {"metricfamilies", "objectmetrics", "clusterobjectmetrics"}
    assert " mf " in lines["metricfamilies"] and "MetricFamily" in lines["metricfamilies"]
    assert (
        "get,list,watch" in lines["objectmetrics"].replace(" ", "").replace("[", "").replace("]", "")
        or "[get list watch]" in lines["objectmetrics"]
    )


def test_ac1_kubectl_get_metricfamilies_table(kube_cluster: KubeCluster, workloads: dict[str, str]) -> None:
    out = kube_cluster.kubectl("get", "metricfamilies").stdout
    header, *rows = out.splitlines()
    assert header.split()[:5] == ["NAME", "TYPE", "SERIES", "OBJECTS", "TARGET"]
    row = next(r for r in rows if r.startswith(FAMILY))
    assert row.split()[1] == "gauge" and int(row.split()[2]) >= 2
    # Short name and -o yaml of one object.
    obj = yaml.safe_load(kube_cluster.kubectl("get", "mf", FAMILY, "-o", "yaml").stdout)
    assert obj["kind"] == "MetricFamily" and obj["metadata"]["name"] == FAMILY
    assert obj["configuration"] == "e2e-deployment-replicas"
    assert obj["target"] == {"apiVersion": "apps/v1", "kind": "Deployment"}
    described = kube_cluster.kubectl("describe", "mf", FAMILY).stdout
    fields = dict(
        line.split(":", 1) for line in described.splitlines() if ":" in line and not line[0].isspace()
    )
    assert fields["Name"].strip() == FAMILY and fields["Configuration"].strip() == "e2e-deployment-replicas"


def test_ac1_kubectl_get_objectmetrics_all_namespaces(
    kube_cluster: KubeCluster, workloads: dict[str, str]
) -> None:
    out = kube_cluster.kubectl("get", "objectmetrics", "-A").stdout
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    assert any(r.split()[:2] == [workloads["a"], "deployments.apps.web"] for r in rows), out
    assert any(r.split()[:2] == [workloads["b"], "deployments.apps.api"] for r in rows), out
    obj = json.loads(
        kube_cluster.kubectl("get", "om", "deployments.apps.web", "-n", workloads["a"], "-o", "json").stdout
    )
    assert obj["series"] == [
        {"name": FAMILY, "labels": {"namespace": workloads["a"], "deployment": "web"}, "value": "3"}
    ]


def test_ac1_s21_kubectl_explain(kube_cluster: KubeCluster, panopticon: PanopticonServer) -> None:
    # The aggregator downloads /openapi/v2 asynchronously after the APIService becomes available.
    deadline = time.monotonic() + 90
    result = None
    while time.monotonic() < deadline:
        result = kube_cluster.kubectl("explain", "metricfamilies", check=False)
        if result.returncode == 0:
            break
        time.sleep(2)
    assert result is not None and result.returncode == 0, result.stderr if result else ""
    assert "KIND:" in result.stdout and "MetricFamily" in result.stdout
    assert "configuration" in result.stdout and "series" in result.stdout
    field = kube_cluster.kubectl("explain", "objectmetrics.series").stdout
    assert "value" in field and "labels" in field


def test_s13_not_found_is_status_through_the_aggregator(
    kube_cluster: KubeCluster, panopticon: PanopticonServer
) -> None:
    err = _kubectl_fails(kube_cluster, "get", "mf", "no-such-family")
    assert (
        'Error from server (NotFound): metricfamilies.metrics.panopticon.io "no-such-family" not found' in err
    )


def test_s20_no_redirect_for_trailing_slash(kube_cluster: KubeCluster, panopticon: PanopticonServer) -> None:
    result = kube_cluster.kubectl("get", "--raw", f"{GV}/metricfamilies/", check=False)
    assert "redirect" not in (result.stderr + result.stdout).lower()
    direct = panopticon.request(f"{GV}/", headers=[("X-Remote-User", "x")])
    assert not 300 <= direct.status < 400


def test_ac2_user_without_rights_gets_403(kube_cluster: KubeCluster, panopticon: PanopticonServer) -> None:
    nobody = kube_cluster.make_user_kubeconfig(f"nobody-{uuid.uuid4().hex[:6]}")
    err = _kubectl_fails(kube_cluster, "get", "metricfamilies", kubeconfig=nobody)
    assert "Forbidden" in err
    err = _kubectl_fails(kube_cluster, "get", "--raw", f"{GV}/prometheus", kubeconfig=nobody)
    assert "Forbidden" in err


def test_ac2_tenant_with_list_prometheus_in_one_namespace(
    kube_cluster: KubeCluster, workloads: dict[str, str]
) -> None:
    ns_a, ns_b = workloads["a"], workloads["b"]
    token = kube_cluster.service_account_token(ns_a, "scraper")
    kube_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "scrape", "namespace": ns_a},
            "rules": [
                {"apiGroups": ["metrics.panopticon.io"], "resources": ["prometheus"], "verbs": ["list"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "scrape", "namespace": ns_a},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "scrape"},
            "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": ns_a}],
        },
    )
    tenant = kube_cluster.make_token_kubeconfig(f"scraper-{ns_a}", token)
    text = kube_cluster.kubectl(
        "get", "--raw", f"{GV}/namespaces/{ns_a}/prometheus", user_kubeconfig=tenant
    ).stdout
    assert f'{FAMILY}{{namespace="{ns_a}",deployment="web"}} 3' in text
    assert ns_b not in text
    for path in (f"{GV}/namespaces/{ns_b}/prometheus", f"{GV}/prometheus"):
        assert "Forbidden" in _kubectl_fails(kube_cluster, "get", "--raw", path, kubeconfig=tenant)


def test_ac2_s07_x_remote_user_without_front_proxy_cert_is_not_trusted(
    kube_cluster: KubeCluster, panopticon: PanopticonServer, tmp_path: Path
) -> None:
    forged = [("X-Remote-User", "e2e-admin"), ("X-Remote-Group", "system:masters")]
    # No client certificate: anonymous, and the real SubjectAccessReview says no.
    resp = panopticon.request(f"{GV}/metricfamilies", headers=forged)
    assert resp.status == 403
    assert 'User "system:anonymous"' in resp.json()["message"]
    # A client certificate of an ordinary user (client CA): that user, not the header's.
    user = kube_cluster.issue_client_cert(tmp_path, user="mallory")
    resp = panopticon.request(f"{GV}/metricfamilies", headers=forged, cert=user.cert, key=user.key)
    assert resp.status == 403 and 'User "mallory"' in resp.json()["message"]
    # The front-proxy CA but a CN that is not in requestheader-allowed-names: rejected.
    wrong_cn = kube_cluster.issue_front_proxy_cert(tmp_path, common_name="not-the-proxy")
    resp = panopticon.request(f"{GV}/metricfamilies", headers=forged, cert=wrong_cn.cert, key=wrong_cn.key)
    assert resp.status == 401
    # The real front-proxy identity: headers trusted.
    proxy = kube_cluster.issue_front_proxy_cert(tmp_path, common_name=FRONT_PROXY_CLIENT_NAME)
    resp = panopticon.request(f"{GV}/metricfamilies", headers=forged, cert=proxy.cert, key=proxy.key)
    assert resp.status == 200 and resp.json()["kind"] == "MetricFamilyList"


def test_s08_multiple_groups_and_extra_headers(
    kube_cluster: KubeCluster, panopticon: PanopticonServer, tmp_path: Path
) -> None:
    """Groups from several X-Remote-Group lines reach the real SubjectAccessReview."""
    group = f"readers-{uuid.uuid4().hex[:6]}"
    kube_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": group},
            "rules": [
                {"apiGroups": ["metrics.panopticon.io"], "resources": ["metricfamilies"], "verbs": ["list"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": group},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": group},
            "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )
    proxy = kube_cluster.issue_front_proxy_cert(tmp_path, common_name=FRONT_PROXY_CLIENT_NAME)
    headers = [
        ("X-Remote-User", "dave"),
        ("X-Remote-Group", "other"),
        ("X-Remote-Group", group),
        ("X-Remote-Extra-Example.com%2fteam", "blue"),
    ]
    resp = panopticon.wait_for(
        lambda: (
            (
                r := panopticon.request(
                    f"{GV}/metricfamilies", headers=headers, cert=proxy.cert, key=proxy.key
                )
            ).status
            == 200
            and r
        ),
        what="RBAC for the second group",
    )
    assert resp.json()["kind"] == "MetricFamilyList"
    only_first = [("X-Remote-User", "dave"), ("X-Remote-Group", "other")]
    resp = panopticon.request(f"{GV}/metricfamilies", headers=only_first, cert=proxy.cert, key=proxy.key)
    assert resp.status == 403


def test_s11_bearer_token_direct(
    kube_cluster: KubeCluster, panopticon: PanopticonServer, workloads: dict[str, str]
) -> None:
    ns = workloads["a"]
    token = kube_cluster.service_account_token(ns, "direct")
    kube_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "direct-view", "namespace": ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "direct-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "direct", "namespace": ns}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "direct-reader"},
            "rules": [
                {"apiGroups": ["metrics.panopticon.io"], "resources": ["objectmetrics"], "verbs": ["list"]}
            ],
        },
    )
    resp = panopticon.wait_for(
        lambda: (
            (
                r := panopticon.request(
                    f"{GV}/namespaces/{ns}/objectmetrics", headers=[("Authorization", f"Bearer {token}")]
                )
            ).status
            == 200
            and r
        ),
        what="token accepted",
    )
    assert [i["metadata"]["name"] for i in resp.json()["items"]] == ["deployments.apps.web"]
    bad = panopticon.request(
        f"{GV}/namespaces/{ns}/objectmetrics", headers=[("Authorization", "Bearer nope")]
    )
    assert bad.status == 401 and bad.json()["reason"] == "Unauthorized"


def test_s19_watch_through_the_aggregator(kube_cluster: KubeCluster, workloads: dict[str, str]) -> None:
    ns = workloads["a"]
    listed = _raw(kube_cluster, f"{GV}/namespaces/{ns}/objectmetrics")
    rv = listed["metadata"]["resourceVersion"]
    kube_cluster.kubectl("scale", "deployment/web", "-n", ns, "--replicas=5")
    out = kube_cluster.kubectl(
        "get", "--raw", f"{GV}/namespaces/{ns}/objectmetrics?watch=1&resourceVersion={rv}&timeoutSeconds=3"
    ).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events and events[0]["type"] == "MODIFIED"
    assert events[-1]["object"]["series"][0]["value"] == "5"
    kube_cluster.kubectl("scale", "deployment/web", "-n", ns, "--replicas=3")


def test_s02_https_only_with_service_name_san(panopticon: PanopticonServer) -> None:
    import socket
    import ssl

    ctx = ssl.create_default_context(cadata=panopticon.ca_pem.decode())  # hostname checked
    with (
        socket.create_connection(("127.0.0.1", panopticon.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=panopticon.registration.service_dns) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Plain HTTP on the same port is not served.
    with socket.create_connection(("127.0.0.1", panopticon.port), timeout=5) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(5)
        try:
            answer = raw.recv(1024)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")


def test_s12_configmap_rotation_applies_without_restart(
    kube_cluster: KubeCluster, panopticon: PanopticonServer, tmp_path: Path
) -> None:
    """A new front-proxy CA and allowed name added to extension-apiserver-authentication are used at once."""
    from certs.generate import new_ca, new_client_cert, write_pair

    ca = new_ca("rotated-front-proxy-ca")
    cert, key = write_pair(tmp_path, "rotated", new_client_cert(ca, common_name="rotated-proxy"))
    headers = [("X-Remote-User", "rotation-check"), ("X-Remote-Group", "system:masters")]

    def status() -> int | str:
        try:
            return panopticon.request(f"{GV}/metricfamilies", headers=headers, cert=cert, key=key).status
        except OSError as exc:  # unknown CA: the TLS handshake fails
            return type(exc).__name__

    assert status() != 200
    cm = kube_cluster.get_json("configmap", "extension-apiserver-authentication", "-n", "kube-system")
    data = cm["data"]
    names = json.loads(data.get("requestheader-allowed-names", "[]"))
    patch = {
        "data": {
            "requestheader-client-ca-file": data["requestheader-client-ca-file"].rstrip("\n")
            + "\n"
            + ca.cert_pem.decode(),
            "requestheader-allowed-names": json.dumps([*names, "rotated-proxy"]),
        }
    }
    kube_cluster.kubectl(
        "patch",
        "configmap",
        "extension-apiserver-authentication",
        "-n",
        "kube-system",
        "--type",
        "merge",
        "-p",
        json.dumps(patch),
    )
    assert panopticon.wait_for(lambda: status() == 200, timeout=20, what="rotated front-proxy CA accepted")
    # No restart happened: the same process is still serving.
    assert panopticon.process.poll() is None


def test_s19_kubectl_get_watch_prints_changes(kube_cluster: KubeCluster, workloads: dict[str, str]) -> None:
    """`kubectl get om -w --watch-only` (list, then a Table watch from the list RV) shows a scale."""
    import subprocess

    ns = workloads["b"]
    proc = subprocess.Popen(
        [
            kube_cluster.kubectl_path,
            f"--kubeconfig={kube_cluster.kubeconfig}",
            "get",
            "objectmetrics",
            "-n",
            ns,
            "--watch-only",
            "--request-timeout=20s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import select

        assert proc.stdout is not None
        # While nothing changes, nothing is printed: the watch from the list's RV replays nothing.
        ready, _, _ = select.select([proc.stdout], [], [], 3.0)
        assert not ready, proc.stdout.readline()
        kube_cluster.kubectl("scale", "deployment/api", "-n", ns, "--replicas=6")
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        assert ready, "kubectl printed nothing after the scale"
        line = proc.stdout.readline()
        if line.split()[:2] == ["NAME", "KIND"]:  # kubectl prints the header with the first row
            line = proc.stdout.readline()
        assert line.split()[:2] == ["deployments.apps.api", "Deployment.apps"], line
    finally:
        proc.kill()
        proc.wait(5)
    obj = json.loads(kube_cluster.kubectl("get", "om", "deployments.apps.api", "-n", ns, "-o", "json").stdout)
    assert obj["series"][0]["value"] == "6"
