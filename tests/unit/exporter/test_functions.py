"""Expression functions: scalar helpers and the workload resource functions for every kind."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.expressions import EvaluationError, compile_expression
from exporter.functions import FUNCTIONS
from exporter.paths import MISSING


def call(text: str, **env: Any) -> Any:
    return compile_expression(text, params=list(env) or ["x"], functions=FUNCTIONS).evaluate(env)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("int(x)", {"x": True}, 1),
        ("int(x)", {"x": False}, 0),
        ("int(x)", {"x": 3.9}, 3),
        ("int(x)", {"x": -3.9}, -3),
        ("int(x)", {"x": "7"}, 7),
        ("toInt(x == 'a')", {"x": "a"}, 1),
        ("percentage(x, r, false)", {"x": "25%", "r": 3}, 0),
        ("percentage(x, r, true)", {"x": "25%", "r": 3}, 1),
        ("percentage(x, r)", {"x": "25%", "r": 10}, 2),
        ("percentage(x, r, true)", {"x": "30%", "r": 10}, 3),
        ("percentage(x, r, true)", {"x": "12.5%", "r": 10}, 2),
        ("percentage(x, r, false)", {"x": 2, "r": 10}, 2),
        ("percentage(x, r, false)", {"x": "2", "r": 10}, 2),
        ("percentage(x, r, true)", {"x": "50%", "r": "5"}, 3),
        ("cpu_cores(x)", {"x": "150m"}, 0.15),
        ("cpu_cores(x)", {"x": "2"}, 2),
        ("cpu_cores(x)", {"x": "1.0001"}, 1.001),  # rounded up to millicores
        ("cpu_cores(x)", {"x": 0.1}, 0.1),  # a YAML number is its decimal, not the binary float
        ("total_resource_requests(o, 'cpu')",
         {"o": {"kind": "Pod", "spec": {"containers": [{"resources": {"requests": {"cpu": 0.1}}}]}}}, 0.1),
        ("bytes(x)", {"x": "1Ki"}, 1024),
        ("bytes(x)", {"x": "1.5Gi"}, 1610612736),
        ("bytes(x)", {"x": "100m"}, 1),  # rounded up to whole bytes
        ("unix(x)", {"x": "2024-03-01T10:20:30Z"}, 1709288430),
        ("toUnix(x)", {"x": "1970-01-01T00:01:00Z"}, 60),
        ("toSecond(x)", {"x": "1h2m3.5s"}, 3723.5),
        ("toSecond(x)", {"x": "150ms"}, 0.15),
    ],
)
def test_scalar_functions(text: str, env: dict[str, Any], expected: float) -> None:
    assert call(text, **env) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "env", "reason"),
    [
        ("percentage(x, r)", {"x": MISSING, "r": 3}, "missing"),
        ("percentage(x, r)", {"x": "25%", "r": MISSING}, "missing"),
        ("percentage(x, r)", {"x": "a%", "r": 3}, "expression"),
        ("cpu_cores(x)", {"x": "lots"}, "expression"),
        ("bytes(x)", {"x": MISSING}, "missing"),
        ("unix(x)", {"x": "yesterday"}, "expression"),
        ("toSecond(x)", {"x": MISSING}, "missing"),
        ("toSecond(x)", {"x": "1 day"}, "expression"),
        ("int(x)", {"x": {"a": 1}}, "expression"),
    ],
)
def test_scalar_function_errors(text: str, env: dict[str, Any], reason: str) -> None:
    with pytest.raises(EvaluationError) as info:
        call(text, **env)
    assert info.value.reason == reason


def container(name: str, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None,
              **extra: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"name": name, "resources": resources, **extra}


POD_SPEC = {
    "initContainers": [
        container("init-big", {"cpu": "2", "memory": "64Mi"}),
        container("proxy", {"cpu": "100m", "memory": "32Mi"}, restartPolicy="Always"),  # sidecar
    ],
    "containers": [
        container("app", {"cpu": "500m", "memory": "256Mi"}, {"cpu": "1", "memory": "512Mi"}),
        container("exporter", limits={"cpu": "50m", "memory": "16Mi"}),  # requests default to limits
    ],
}
# per pod: cpu requests max(0.5 + 0.05 + 0.1 sidecar, 2 init) = 2;
#          memory requests max(256 + 16 + 32, 64) Mi = 304Mi; limits: cpu 1.05, memory 528Mi
CLAIMS = [{"spec": {"resources": {"requests": {"storage": "10Gi"}}}},
          {"spec": {"resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}}}}]


def workload(kind: str) -> dict[str, Any]:
    template = {"metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "app"}},
                "spec": POD_SPEC}
    if kind == "Pod":
        return {"kind": "Pod", "spec": POD_SPEC}
    if kind == "CronJob":
        return {"kind": kind, "spec": {"jobTemplate": {"spec": {"parallelism": 2, "template": template}}}}
    if kind == "Job":
        return {"kind": kind, "spec": {"parallelism": 2, "template": template}}
    if kind == "DaemonSet":
        return {"kind": kind, "spec": {"template": template}, "status": {"desiredNumberScheduled": 2}}
    if kind == "StatefulSet":
        return {"kind": kind, "spec": {"replicas": 2, "template": template, "volumeClaimTemplates": CLAIMS}}
    if kind == "Postgres":  # a KubeDB-style custom resource
        return {"kind": kind, "spec": {"replicas": 2, "podTemplate": template,
                                        "storage": {"resources": {"requests": {"storage": "10Gi"}}}}}
    return {"kind": kind, "spec": {"replicas": 2, "template": template}}


MI = 2**20
GI = 2**30


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                  "Postgres", "ReplicationController"])
def test_resource_functions_for_two_pod_workloads(kind: str) -> None:
    obj = workload(kind)
    assert call("resource_replicas(obj)", obj=obj) == 2
    assert call("total_resource_requests(obj, 'cpu')", obj=obj) == 4
    assert call("total_resource_requests(obj, 'memory')", obj=obj) == 2 * 304 * MI
    assert call("total_resource_limits(obj, 'cpu')", obj=obj) == 2.1
    assert call("total_resource_limits(obj, 'memory')", obj=obj) == 2 * 528 * MI
    # app_*: only the default container ("app", or the first one)
    assert call("app_resource_requests(obj, 'cpu')", obj=obj) == 1
    assert call("app_resource_limits(obj, 'memory')", obj=obj) == 2 * 512 * MI
    storage = {"StatefulSet": 2 * 11 * GI, "Postgres": 2 * 10 * GI}.get(kind, 0)
    assert call("total_resource_requests(obj, 'storage')", obj=obj) == storage
    storage_limits = {"StatefulSet": 2 * 12 * GI, "Postgres": 2 * 10 * GI}.get(kind, 0)
    assert call("total_resource_limits(obj, 'storage')", obj=obj) == storage_limits


def test_pod_is_one_replica() -> None:
    pod = workload("Pod")
    assert call("resource_replicas(obj)", obj=pod) == 1
    assert call("total_resource_requests(obj, 'cpu')", obj=pod) == 2
    assert call("app_resource_requests(obj, 'memory')", obj=pod) == 256 * MI  # first container


def test_replicas_default_to_one_and_zero_replicas_count_nothing() -> None:
    obj = workload("Deployment")
    del obj["spec"]["replicas"]
    assert call("resource_replicas(obj)", obj=obj) == 1
    obj["spec"]["replicas"] = 0
    assert call("total_resource_requests(obj, 'cpu')", obj=obj) == 0


def test_mongodb_shard_topology() -> None:
    def part(cpu: str) -> dict[str, Any]:
        return {"spec": {"containers": [container("mongodb", {"cpu": cpu, "memory": "1Gi"})]}}

    obj = {"kind": "MongoDB", "spec": {"shardTopology": {
        "shard": {"shards": 2, "replicas": 3, "podTemplate": part("1"),
                  "storage": {"resources": {"requests": {"storage": "20Gi"}}}},
        "configServer": {"replicas": 3, "podTemplate": part("250m"),
                         "storage": {"resources": {"requests": {"storage": "2Gi"}}}},
        "mongos": {"replicas": 2, "podTemplate": part("100m")},
    }}}
    assert call("resource_replicas(obj)", obj=obj) == 11
    assert call("total_resource_requests(obj, 'cpu')", obj=obj) == 6.95
    assert call("total_resource_requests(obj, 'memory')", obj=obj) == 11 * GI
    assert call("total_resource_requests(obj, 'storage')", obj=obj) == 126 * GI


@pytest.mark.parametrize(
    ("obj", "resource", "fragment"),
    [
        ({"kind": "ConfigMap", "data": {}}, "cpu", "do not know how to find the pods"),
        (MISSING, "cpu", "need the whole object"),
        ({"kind": "Pod", "spec": {}}, "gpu", "must be one of cpu, memory, storage"),
        ({"kind": "Pod", "spec": {"containers": [container("a", {"cpu": "lots"})]}}, "cpu", "not a quantity"),
    ],
)
def test_resource_function_errors(obj: Any, resource: str, fragment: str) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        call("total_resource_requests(obj, r)", obj=obj, r=resource)
