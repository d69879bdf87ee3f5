"""Issue 13: autoscaling on state metrics, with the real HPA controller.

Real kube-apiserver v1.20.2, real kube-controller-manager (every controller with its own service
account, ``--use-service-account-credentials``; HPA sync every 5 s), the simulated kubelet (pods
Running/Ready), kubectl, and ``panopticon serve`` registered as the APIServices
``v1beta2.custom.metrics.k8s.io``, ``v1beta1.custom.metrics.k8s.io`` and
``v1beta1.external.metrics.k8s.io``. Widgets (a CRD of this test) carry ``spec.backlog``; the
MetricsConfiguration below turns it into ``example_com_widget_backlog``; HPAs of type ``Object``
and ``External`` scale Deployments on it. The HPA controller reads through the shipped
ClusterRole (``deploy/base/rbac-metrics-apis.yaml``), applied as it is.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import KubeCluster
from tests.e2e.exporter_support import widget_crd
from tests.e2e.kubelet import SimulatedKubelet
from tests.e2e.manifests import deployment
from tests.e2e.panopticon_server import ROOT, PanopticonServer
from tests.polling import poll

CM = "/apis/custom.metrics.k8s.io/v1beta2"
CM1 = "/apis/custom.metrics.k8s.io/v1beta1"
EM = "/apis/external.metrics.k8s.io/v1beta1"
BACKLOG = "example_com_widget_backlog"
PHASE = "example_com_widget_phase"
HPA_SA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
DISCOVERY_RESET = 30.0  # kube-controller-manager 1.20 resets its RESTMapper every 30 s

WIDGET_CRD = widget_crd(
    "example.com",
    spec_properties={
        "queue": {"type": "string"},
        "backlog": {"type": "integer"},
        "phase": {"type": "string"},
    },
)

WIDGET_CONFIG = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "example-com-widget"},
    "spec": {
        "targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
        "commonLabels": [{"key": "queue", "valuePath": ".spec.queue"}],
        "metrics": [
            {
                "name": "backlog",
                "help": "Items waiting in the widget's queue",
                "type": "gauge",
                "field": {"path": ".spec.backlog", "type": "Integer"},
                "metricValue": {"valueFromPath": ".spec.backlog"},
            },
            {
                "name": "phase",
                "help": "The widget's phase",
                "type": "gauge",
                "field": {"path": ".spec.phase", "type": "String"},
                "params": [{"key": "phase", "valuePath": ".spec.phase"}],
                "states": {
                    "labelKey": "phase",
                    "values": [
                        {
                            "labelValue": "Ready",
                            "metricValue": {"valueFromExpression": "int(phase == 'Ready')"},
                        },
                        {
                            "labelValue": "Stalled",
                            "metricValue": {"valueFromExpression": "int(phase == 'Stalled')"},
                        },
                    ],
                },
            },
        ],
    },
}


def widget(name: str, namespace: str, *, queue: str, backlog: int, app: str = "queue") -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"queue": queue, "backlog": backlog, "phase": "Ready"},
    }


def hpa(name: str, namespace: str, target: str, metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 8,
            "metrics": [metric],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}},
        },
    }


def shipped_rbac() -> list[dict[str, Any]]:
    """The ClusterRole and its binding to the HPA controller exactly as ``deploy/`` ships them."""
    docs = yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac-metrics-apis.yaml").read_text())
    return [d for d in docs if d]


def wait(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25) -> Any:
    return poll(
        predicate,
        timeout=timeout,
        interval=interval,
        failure=lambda last: f"{what}: not reached in {timeout}s (last: {last!r})",
    )


class Env:
    """The module's cluster, namespace, panopticon server and when discovery can know Widgets."""

    def __init__(self, cluster: KubeCluster, namespace: str, server: PanopticonServer, ready_at: float):
        self.cluster, self.namespace, self.server, self.ready_at = cluster, namespace, server, ready_at

    def raw(self, path: str, *, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("get", "--raw", path, check=False, user_kubeconfig=kubeconfig)

    def raw_json(self, path: str) -> Any:
        result = self.raw(path)
        assert result.returncode == 0, f"{path}: {result.stderr}"
        return json.loads(result.stdout)

    def patch_backlog(self, name: str, backlog: int) -> float:
        self.cluster.kubectl(
            "patch",
            "widgets.example.com",  # fully qualified: other tests' CRDs share the name "widget"
            name,
            "-n",
            self.namespace,
            "--type",
            "merge",
            "-p",
            json.dumps({"spec": {"backlog": backlog}}),
        )
        return time.monotonic()

    def replicas(self, name: str) -> tuple[int, int]:
        dep = self.cluster.get_json("deployment", name, "-n", self.namespace)
        return int(dep["spec"]["replicas"]), int(dep.get("status", {}).get("readyReplicas") or 0)

    def hpa(self, name: str) -> Any:
        """The HPA as autoscaling/v2beta2 (``kubectl get hpa`` alone returns autoscaling/v1)."""
        return self.cluster.get_json(
            "horizontalpodautoscalers.v2beta2.autoscaling", name, "-n", self.namespace
        )

    def hpa_events(self, name: str) -> list[dict[str, Any]]:
        events = self.cluster.get_json(
            "events", "-n", self.namespace, "--field-selector", f"involvedObject.name={name}"
        )["items"]
        return [e for e in events if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"]


@pytest.fixture(scope="module")
def env(
    kube_controller_manager: KubeCluster,
    simulated_kubelet: SimulatedKubelet,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    cluster = kube_controller_manager
    cluster.apply(WIDGET_CRD)
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=60s")
    established = time.monotonic()
    namespace = f"autoscaling-{int(time.time()) % 100000}"
    cluster.ensure_namespace(namespace)
    cluster.apply(
        widget("orders", namespace, queue="orders", backlog=5),
        widget("pay-1", namespace, queue="payments", backlog=3),
        widget("pay-2", namespace, queue="payments", backlog=4),
        widget("other", namespace, queue="misc", backlog=9, app="other"),
    )
    server = PanopticonServer.start(
        cluster,
        tmp_path_factory.mktemp("autoscaling"),
        configs=(WIDGET_CONFIG,),
        apis=(
            ("custom.metrics.k8s.io", "v1beta2", 200),
            ("custom.metrics.k8s.io", "v1beta1", 100),
            ("external.metrics.k8s.io", "v1beta1", 100),
        ),
        service="panopticon-autoscaling",
    )
    try:
        for registration in server.registrations:
            cluster.wait_apiservice_available(registration.name, timeout=90)
        available = time.monotonic()
        probe = f"{CM}/namespaces/{namespace}/widgets.example.com/orders/{BACKLOG}"
        wait(
            lambda: cluster.kubectl("get", "--raw", probe, check=False).returncode == 0,
            timeout=60,
            what="panopticon serving the Widgets' metrics through the aggregator",
        )
        yield Env(cluster, namespace, server, max(established, available) + DISCOVERY_RESET + 1)
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------- AC1


def test_ac1_discovery_of_both_groups(env: Env) -> None:
    groups = {g["name"]: g for g in env.raw_json("/apis")["groups"]}
    custom = groups["custom.metrics.k8s.io"]
    assert custom["preferredVersion"]["version"] == "v1beta2"
    assert {v["version"] for v in custom["versions"]} == {"v1beta2", "v1beta1"}
    assert groups["external.metrics.k8s.io"]["preferredVersion"]["version"] == "v1beta1"
    for base in (CM, CM1):
        resources = {r["name"]: r for r in env.raw_json(base)["resources"]}
        assert resources[f"widgets.example.com/{BACKLOG}"] == {
            "name": f"widgets.example.com/{BACKLOG}",
            "singularName": "",
            "namespaced": True,
            "kind": "MetricValueList",
            "verbs": ["get"],
        }
        assert f"widgets.example.com/{PHASE}" in resources
    external = {r["name"]: r for r in env.raw_json(EM)["resources"]}
    assert external[BACKLOG]["kind"] == "ExternalMetricValueList" and external[BACKLOG]["namespaced"] is True


def test_ac1_object_metric_star_and_external(env: Env) -> None:
    ns = env.namespace
    one = env.raw_json(f"{CM}/namespaces/{ns}/widgets.example.com/orders/{BACKLOG}")
    assert one["kind"] == "MetricValueList"
    [item] = one["items"]
    assert item["describedObject"] == {
        "kind": "Widget",
        "namespace": ns,
        "name": "orders",
        "apiVersion": "example.com/v1",
    }
    assert item["value"] == "5" and item["metric"] == {"name": BACKLOG}
    old = env.raw_json(f"{CM1}/namespaces/{ns}/widgets.example.com/orders/{BACKLOG}")
    assert old["items"][0]["metricName"] == BACKLOG and old["items"][0]["value"] == "5"
    # kubectl sends '*' percent-encoded; the object selector is on the Widgets' own labels.
    star = env.raw_json(f"{CM}/namespaces/{ns}/widgets.example.com/%2A/{BACKLOG}?labelSelector=app%3Dqueue")
    assert sorted((i["describedObject"]["name"], i["value"]) for i in star["items"]) == [
        ("orders", "5"),
        ("pay-1", "3"),
        ("pay-2", "4"),
    ]
    narrowed = env.raw_json(
        f"{CM}/namespaces/{ns}/widgets.example.com/orders/{PHASE}?metricLabelSelector=phase%3DReady"
    )
    assert [i["value"] for i in narrowed["items"]] == ["1"]
    ext = env.raw_json(f"{EM}/namespaces/{ns}/{BACKLOG}?labelSelector=queue%3Dpayments")
    assert ext["kind"] == "ExternalMetricValueList"
    assert sorted((i["metricLabels"]["widget"], i["value"]) for i in ext["items"]) == [
        ("pay-1", "3"),
        ("pay-2", "4"),
    ]
    assert all(i["metricLabels"]["namespace"] == ns for i in ext["items"])


@pytest.mark.parametrize(
    ("suffix", "reason"),
    [
        ("widgets.example.com/nope/" + BACKLOG, "NotFound"),
        ("widgets.example.com/orders/no_such_metric", "NotFound"),
        ("widgets.example.com/orders/" + PHASE, "BadRequest"),  # two series: must be narrowed
    ],
)
def test_ac1_missing_is_not_found_status(env: Env, suffix: str, reason: str) -> None:
    result = env.raw(f"{CM}/namespaces/{env.namespace}/{suffix}")
    assert result.returncode != 0 and f"Error from server ({reason})" in result.stderr, result.stderr
    ext = env.raw(f"{EM}/namespaces/{env.namespace}/no_such_metric")
    assert "Error from server (NotFound)" in ext.stderr


# ---------------------------------------------------------------------------------------- AC3


def _hpa_may(env: Env, group: str, resource: str, subresource: str = "") -> bool:
    """A SubjectAccessReview for the HPA controller's identity, as the kube-apiserver asks it."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": HPA_SA,
            "groups": [
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": env.namespace,
                "verb": "get" if subresource else "list",
                "group": group,
                "version": "v1beta2" if group == "custom.metrics.k8s.io" else "v1beta1",
                "resource": resource,
                "subresource": subresource,
                "name": "orders" if subresource else "",
            },
        },
    }
    result = env.cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    return bool(json.loads(result.stdout)["status"].get("allowed"))


def test_ac3_shipped_role_gives_the_hpa_external_metrics(env: Env) -> None:
    # 1.20's built-in HPA role covers custom metrics only; the shipped binding adds external.
    custom = _hpa_may(env, "custom.metrics.k8s.io", "widgets.example.com", BACKLOG)
    before = _hpa_may(env, "external.metrics.k8s.io", BACKLOG)
    env.cluster.apply(*shipped_rbac())
    after = wait(
        lambda: _hpa_may(env, "external.metrics.k8s.io", BACKLOG),
        timeout=20,
        what="the shipped ClusterRoleBinding taking effect",
    )
    assert (custom, before, after) == (True, False, True)


def test_ac3_unprivileged_service_account_gets_403(env: Env) -> None:
    token = env.cluster.service_account_token(env.namespace, "nobody")
    kubeconfig = env.cluster.make_token_kubeconfig("autoscaling-nobody", token)
    for path in (
        f"{CM}/namespaces/{env.namespace}/widgets.example.com/orders/{BACKLOG}",
        f"{EM}/namespaces/{env.namespace}/{BACKLOG}",
    ):
        result = env.raw(path, kubeconfig=kubeconfig)
        assert "Error from server (Forbidden)" in result.stderr, result.stderr


def test_ac3_tenant_reads_only_its_namespace(env: Env) -> None:
    other = f"{env.namespace}-other"
    env.cluster.ensure_namespace(other)
    env.cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tenant-metrics", "namespace": env.namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "panopticon-metrics-apis-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "tenant"}],
        }
    )
    kubeconfig = env.cluster.make_user_kubeconfig("tenant")
    own = wait(
        lambda: env.raw(f"{EM}/namespaces/{env.namespace}/{BACKLOG}", kubeconfig=kubeconfig).returncode == 0,
        timeout=20,
        what="the tenant's RoleBinding taking effect",
    )
    assert own
    denied = env.raw(f"{EM}/namespaces/{other}/{BACKLOG}", kubeconfig=kubeconfig)
    assert "Error from server (Forbidden)" in denied.stderr, denied.stderr


def test_ac3_forged_identity_headers_are_not_trusted(env: Env, tmp_path: Path) -> None:
    forged = [("X-Remote-User", HPA_SA), ("X-Remote-Group", "system:masters")]
    path = f"{EM}/namespaces/{env.namespace}/{BACKLOG}"
    anonymous = env.server.request(path, headers=forged)
    assert anonymous.status == 403, anonymous.body
    assert 'User "system:anonymous"' in anonymous.json()["message"]
    # A real client certificate of another user: that user, never the headers' identity.
    pair = env.cluster.issue_client_cert(tmp_path, user="mallory")
    mallory = env.server.request(path, headers=forged, cert=pair.cert, key=pair.key)
    assert mallory.status == 403 and 'User "mallory"' in mallory.json()["message"], mallory.body


# ---------------------------------------------------------------------------------------- AC2


def _scale_and_measure(
    env: Env, name: str, deployment_name: str, changes: list[tuple[str, int]], expected: int
) -> dict[str, float]:
    started = 0.0
    for widget_name, backlog in changes:
        started = env.patch_backlog(widget_name, backlog)
    spec = wait(
        lambda: env.replicas(deployment_name)[0] == expected,
        timeout=90,
        what=f"{deployment_name} scaled to {expected} by HPA {name}",
    )
    spec_at = time.monotonic()
    assert spec
    wait(
        lambda: env.replicas(deployment_name)[1] == expected,
        timeout=90,
        what=f"{deployment_name} with {expected} ready pods",
    )
    return {"to_spec_s": round(spec_at - started, 1), "to_ready_s": round(time.monotonic() - started, 1)}


def _check_hpa_status(env: Env, name: str, kind: str) -> None:
    status = env.hpa(name)["status"]
    [current] = status["currentMetrics"]
    assert current["type"] == kind and current[kind.lower()]["current"].get("averageValue"), status
    table = env.cluster.kubectl("get", "hpa", name, "-n", env.namespace).stdout
    assert "/10 (avg)" in table and "<unknown>" not in table, table
    failed = [
        e for e in env.hpa_events(name) if e["reason"].startswith("FailedGet") or e["type"] == "Warning"
    ]
    assert not failed, [(e["reason"], e["message"]) for e in failed]


def _wait_for_discovery(env: Env) -> None:
    # Wait for the controller manager's discovery to know Widgets (reset every 30 s) rather than
    # tolerating the one FailedGetObjectMetric an HPA created earlier may log.
    delay = env.ready_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _test_hpa(
    env: Env,
    record_property: Callable[[str, object], None],
    *,
    name: str,
    kind: str,
    metric: dict[str, Any],
    up: list[tuple[str, int]],
    up_to: int,
    down: list[tuple[str, int]],
) -> None:
    target = f"worker-{kind.lower()}"
    env.cluster.apply(deployment(target, env.namespace, termination_grace_seconds=0))
    wait(lambda: env.replicas(target) == (1, 1), timeout=90, what=f"{target} with one ready pod")
    _wait_for_discovery(env)
    env.cluster.apply(hpa(name, env.namespace, target, metric))

    def reading() -> Any:
        return env.hpa(name).get("status", {}).get("currentMetrics")

    try:
        wait(reading, timeout=60, what=f"HPA {name} reading its metric")
    except AssertionError as error:
        conditions = env.hpa(name).get("status", {}).get("conditions")
        events = [(e["reason"], e["message"]) for e in env.hpa_events(name)]
        raise AssertionError(f"{error}\nconditions: {conditions}\nevents: {events}") from None
    scale_up = _scale_and_measure(env, name, target, up, up_to)
    _check_hpa_status(env, name, kind)
    scale_down = _scale_and_measure(env, name, target, down, 1)
    _check_hpa_status(env, name, kind)
    print(f"\nHPA {name} ({kind}): 1 -> {up_to}: {scale_up}; {up_to} -> 1: {scale_down}")
    record_property(f"{name}_scale_up", scale_up)
    record_property(f"{name}_scale_down", scale_down)


def test_ac2_hpa_object_metric_scales_up_and_down(env: Env, record_property: Any) -> None:
    env.cluster.apply(*shipped_rbac())
    metric = {
        "type": "Object",
        "object": {
            "describedObject": {"apiVersion": "example.com/v1", "kind": "Widget", "name": "orders"},
            "metric": {"name": BACKLOG},
            "target": {"type": "AverageValue", "averageValue": "10"},
        },
    }
    # backlog 5 -> 1 replica; 30 -> ceil(30 / 10) = 3; back to 5 -> 1
    _test_hpa(
        env,
        record_property,
        name="by-object",
        kind="Object",
        metric=metric,
        up=[("orders", 30)],
        up_to=3,
        down=[("orders", 5)],
    )


def test_ac2_hpa_external_metric_scales_up_and_down(env: Env, record_property: Any) -> None:
    env.cluster.apply(*shipped_rbac())
    metric = {
        "type": "External",
        "external": {
            "metric": {"name": BACKLOG, "selector": {"matchLabels": {"queue": "payments"}}},
            "target": {"type": "AverageValue", "averageValue": "10"},
        },
    }
    # the HPA sums the matching series: 3 + 4 -> 1 replica; 10 + 30 -> 4; 1 + 1 -> 1
    _test_hpa(
        env,
        record_property,
        name="by-external",
        kind="External",
        metric=metric,
        up=[("pay-1", 10), ("pay-2", 30)],
        up_to=4,
        down=[("pay-1", 1), ("pay-2", 1)],
    )


def test_kustomize_ships_the_metrics_apis() -> None:
    def build(path: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True
        )
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    base = {(d["kind"], d["metadata"]["name"]): d for d in build("deploy")}
    for name, priority in (
        ("v1beta2.custom.metrics.k8s.io", 200),
        ("v1beta1.custom.metrics.k8s.io", 100),
        ("v1beta1.external.metrics.k8s.io", 100),
    ):
        spec = base[("APIService", name)]["spec"]
        assert f"{spec['version']}.{spec['group']}" == name and spec["versionPriority"] == priority
        assert spec["service"] == {"namespace": "panopticon", "name": "panopticon", "port": 443}
    binding = base[("ClusterRoleBinding", "panopticon-metrics-apis-reader:horizontal-pod-autoscaler")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]
    overlay = [d for d in build("deploy/overlays/cert-manager") if d["kind"] == "APIService"]
    assert len(overlay) == 4
    for apiservice in overlay:
        assert apiservice["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            "panopticon/panopticon-serving-cert"
        )
        assert "caBundle" not in apiservice["spec"]
    assert urllib.parse.quote("*") == "%2A"  # what kubectl and client-go send for '*'
