"""Resource functions (kmodules/resource-metrics semantics): one hand-written case per rule and
per calculator shape of ``exporter.resources.calculators.CALCULATORS``."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.expressions import EvaluationError, compile_expression
from exporter.functions import FUNCTIONS
from exporter.resources import CALCULATORS

MI = 2**20
GI = 2**30


def call(text: str, obj: Any) -> Any:
    return compile_expression(text, params=["obj"], functions=FUNCTIONS).evaluate({"obj": obj})


def res(requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def c(
    name: str, requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"name": name, "resources": res(requests, limits)}


def figures(obj: Any) -> dict[str, float]:
    out = {"replicas": call("resource_replicas(obj)", obj)}
    for fn in (
        "total_resource_limits",
        "total_resource_requests",
        "app_resource_limits",
        "app_resource_requests",
    ):
        for kind in ("cpu", "memory", "storage"):
            out[f"{fn}.{kind}"] = call(f"{fn}(obj, '{kind}')", obj)
    return out


POD_SPEC = {
    "containers": [
        c("app", {"cpu": "500m", "memory": "256Mi"}, {"cpu": "1", "memory": "512Mi"}),
        c("helper", {"cpu": "100m"}, {"cpu": "200m"}),
    ],
    "initContainers": [c("init", {"cpu": "2"}, {"cpu": "3"}), c("init2", {"cpu": "1"})],
}


def test_pod_sums_containers_and_compares_with_the_largest_init_container() -> None:
    got = figures({"apiVersion": "v1", "kind": "Pod", "spec": POD_SPEC})
    assert got["replicas"] == 1
    assert got["app_resource_requests.cpu"] == 0.6  # every container of a Pod is the application
    assert got["total_resource_requests.cpu"] == 2  # max(0.6 running, max(2, 1) init)
    assert got["total_resource_limits.cpu"] == 3
    assert got["total_resource_requests.memory"] == 256 * MI


@pytest.mark.parametrize(
    ("api_version", "kind", "replicas", "scale"),
    [
        ("apps/v1", "Deployment", 3, 3),
        ("apps/v1", "StatefulSet", 3, 3),
        ("apps/v1", "ReplicaSet", 3, 3),
        ("v1", "ReplicationController", 3, 3),
        ("apps/v1", "DaemonSet", 0, 1),
        ("batch/v1", "Job", 0, 1),  # upstream: no replica list, one pod
    ],
)
def test_native_workloads(api_version: str, kind: str, replicas: int, scale: int) -> None:
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "spec": {
            "replicas": 3,
            "template": {"spec": POD_SPEC},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }
    got = figures(obj)
    assert got["replicas"] == replicas
    assert got["app_resource_limits.cpu"] == pytest.approx(1.2 * scale)
    assert got["total_resource_limits.cpu"] == pytest.approx(3 * scale)
    assert got["total_resource_requests.storage"] == 0  # PVC templates are not counted


def test_cronjob_reads_the_job_template() -> None:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}},
    }
    assert figures(obj)["app_resource_requests.cpu"] == 0.6


def test_limit_falls_back_to_request_and_request_to_limit() -> None:
    spec = {"containers": [c("a", requests={"cpu": "250m"}), c("b", limits={"memory": "1Gi"})]}
    got = figures({"apiVersion": "v1", "kind": "Pod", "spec": spec})
    assert got["total_resource_limits.cpu"] == 0.25  # a missing limit is the request (upstream)
    assert got["total_resource_requests.memory"] == GI  # a missing request is the limit (Kubernetes)


def test_per_role_quantities_round_up_to_millis_before_multiplying() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"replicas": 3, "template": {"spec": {"containers": [c("a", {"cpu": "100100u"})]}}},
    }
    assert call("total_resource_requests(obj, 'cpu')", obj) == 0.303  # ceil(0.1001, milli) x 3


def kubedb(kind: str, spec: dict[str, Any], version: str = "kubedb.com/v1") -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": kind,
        "metadata": {"name": "db", "namespace": "demo"},
        "spec": spec,
    }


EXPORTER = {"prometheus": {"exporter": {"resources": res({"cpu": "100m"}, {"cpu": "150m"})}}}
STORAGE = {"resources": {"requests": {"storage": "2Gi"}}}


def test_kubedb_node_named_container_sidecars_exporter_and_storage() -> None:
    obj = kubedb(
        "Postgres",
        {
            "replicas": 3,
            "monitor": EXPORTER,
            "storage": STORAGE,
            "podTemplate": {
                "spec": {
                    "containers": [
                        c("postgres", {"cpu": "400m"}, {"cpu": "450m"}),
                        c("pg-coordinator", {"cpu": "300m"}, {"cpu": "350m"}),
                    ],
                    "initContainers": [c("init", {"cpu": "9"})],
                }
            },
        },
    )
    got = figures(obj)
    assert got["replicas"] == 3
    assert got["app_resource_limits.cpu"] == pytest.approx(1.35)  # 3 x the postgres container
    assert got["total_resource_limits.cpu"] == pytest.approx(2.85)  # + coordinator + exporter
    assert got["total_resource_requests.storage"] == 6 * GI
    assert got["total_resource_limits.storage"] == 6 * GI  # storage limit falls back to the request
    assert call("resource_mode(obj)", obj) == "Cluster"
    assert call("resource_uses_tls(obj)", obj) is False


def test_kubedb_v1alpha2_pod_template_resources() -> None:
    obj = kubedb(
        "MongoDB",
        {
            "podTemplate": {"spec": {"resources": res({"cpu": "250m"}, {"cpu": "500m"})}},
            "monitor": EXPORTER,
            "tls": {},
        },
        version="kubedb.com/v1alpha2",
    )
    got = figures(obj)
    assert (got["replicas"], got["app_resource_limits.cpu"], got["total_resource_limits.cpu"]) == (
        1,
        0.5,
        0.65,
    )
    assert call("resource_mode(obj)", obj) == "Standalone"
    assert call("resource_uses_tls(obj)", obj) is True


def test_elasticsearch_topology_roles_each_with_replicas_and_storage() -> None:
    node = {
        "replicas": 2,
        "storage": STORAGE,
        "podTemplate": {"spec": {"containers": [c("elasticsearch", {"cpu": "500m"})]}},
    }
    obj = kubedb(
        "Elasticsearch",
        {
            "topology": {"master": node, "data": {**node, "replicas": 3}},
            "monitor": EXPORTER,
            "enableSSL": False,
        },
    )
    got = figures(obj)
    assert got["replicas"] == 5
    assert got["app_resource_requests.cpu"] == 2.5
    assert got["total_resource_requests.cpu"] == 3.0  # exporter on all 5 pods
    assert got["app_resource_requests.storage"] == 10 * GI
    assert call("resource_mode(obj)", obj) == "Dedicated"
    assert call("resource_uses_tls(obj)", obj) is True  # upstream: enableSSL present
    assert call("resource_mode(obj)", kubedb("Elasticsearch", {"replicas": 1})) == "Combined"


def test_mongodb_shard_topology() -> None:
    def part(**extra: Any) -> dict[str, Any]:
        return {"podTemplate": {"spec": {"containers": [c("mongodb", {"cpu": "1"})]}}, **extra}

    obj = kubedb(
        "MongoDB",
        {
            "shardTopology": {
                "shard": part(shards=2, replicas=3),
                "configServer": part(replicas=3),
                "mongos": part(replicas=2),
            }
        },
    )
    got = figures(obj)
    assert got["replicas"] == 11  # 2 x 3 shard pods + 3 config servers + 2 mongos
    assert got["total_resource_requests.cpu"] == 11
    assert call("resource_mode(obj)", obj) == "Sharded"
    assert call("resource_mode(obj)", kubedb("MongoDB", {"replicaSet": {"name": "rs0"}})) == "ReplicaSet"


def test_redis_cluster_counts_shards_times_replicas() -> None:
    obj = kubedb(
        "Redis",
        {
            "mode": "Cluster",
            "cluster": {"shards": 3, "replicas": 2},
            "podTemplate": {"spec": {"containers": [c("redis", {"cpu": "500m"})]}},
        },
    )
    got = figures(obj)
    assert (got["replicas"], got["app_resource_requests.cpu"]) == (6, 3.0)
    assert call("resource_mode(obj)", obj) == "Cluster"


def test_mysql_innodb_router_has_no_exporter() -> None:
    obj = kubedb(
        "MySQL",
        {
            "replicas": 3,
            "monitor": EXPORTER,
            "topology": {
                "mode": "InnoDBCluster",
                "innoDBCluster": {
                    "router": {
                        "replicas": 1,
                        "podTemplate": {"spec": {"containers": [c("mysql-router", {"cpu": "500m"})]}},
                    }
                },
            },
            "podTemplate": {"spec": {"containers": [c("mysql", {"cpu": "400m"})]}},
        },
    )
    got = figures(obj)
    assert got["replicas"] == 4
    assert got["app_resource_requests.cpu"] == pytest.approx(1.7)
    assert got["total_resource_requests.cpu"] == pytest.approx(2.0)  # exporter x 3, not on the router
    assert call("resource_mode(obj)", obj) == "InnoDBCluster"


def test_cassandra_racks_and_clickhouse_shards() -> None:
    rack = {"replicas": 2, "podTemplate": {"spec": {"containers": [c("cassandra", {"cpu": "1"})]}}}
    obj = kubedb(
        "Cassandra", {"topology": {"rack": [rack, {**rack, "replicas": 1}]}}, "kubedb.com/v1alpha2"
    )
    assert figures(obj)["replicas"] == 3
    assert call("resource_mode(obj)", obj) == "Cluster"
    cluster = {
        "shards": 2,
        "replicas": 3,
        "podTemplate": {"spec": {"containers": [c("clickhouse", {"cpu": "1"})]}},
    }
    ch = kubedb("ClickHouse", {"clusterTopology": {"cluster": cluster}}, "kubedb.com/v1alpha2")
    assert figures(ch)["total_resource_requests.cpu"] == 6


def test_oracle_observer_is_runtime_only_and_vault_raft_storage() -> None:
    obj = kubedb(
        "Oracle",
        {
            "replicas": 2,
            "podTemplate": {"spec": {"containers": [c("oracle", {"cpu": "1"})]}},
            "dataGuard": {
                "observer": {
                    "podTemplate": {"spec": {"containers": [c("observer", {"cpu": "1"})]}},
                    "storage": STORAGE,
                }
            },
        },
        "kubedb.com/v1alpha2",
    )
    got = figures(obj)
    assert (got["app_resource_requests.cpu"], got["total_resource_requests.cpu"]) == (2, 3)
    assert got["total_resource_requests.storage"] == 0  # the observer's volume is not the database's
    vault = {
        "apiVersion": "kubevault.com/v1alpha2",
        "kind": "VaultServer",
        "spec": {
            "replicas": 3,
            "backend": {"raft": {"storage": STORAGE}},
            "podTemplate": {"spec": {"resources": res({"cpu": "500m"}, {"memory": "1Gi"})}},
        },
    }
    got = figures(vault)
    assert (got["total_resource_limits.cpu"], got["app_resource_requests.storage"]) == (1.5, 6 * GI)
    assert call("resource_mode(obj)", vault) == "Default"


@pytest.mark.parametrize(
    ("kind", "spec", "mode"),
    [
        ("ZooKeeper", {"replicas": 3}, "Ensemble"),
        ("ZooKeeper", {}, "Standalone"),
        ("HanaDB", {"topology": {"mode": "SystemReplication"}}, "SystemReplication"),
        ("Milvus", {"topology": {"mode": "Distributed"}}, "Distributed"),
        ("MariaDB", {"replicas": 3}, "Cluster"),
        ("PgBouncer", {"replicas": 3}, "Standalone"),
    ],
)
def test_modes(kind: str, spec: dict[str, Any], mode: str) -> None:
    assert call("resource_mode(obj)", kubedb(kind, spec, "kubedb.com/v1alpha2")) == mode


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}, "no resource calculator"),
        ("not an object", "needs the whole object"),
    ],
)
def test_errors(obj: Any, fragment: str) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        call("total_resource_requests(obj, 'cpu')", obj)
    with pytest.raises(EvaluationError, match="resource type must be one of"):
        call("total_resource_requests(obj, 'gpu')", {"apiVersion": "v1", "kind": "Pod", "spec": {}})


def test_every_calculator_answers_on_an_empty_object() -> None:
    for (group, kind), _ in CALCULATORS.items():
        obj = {"apiVersion": f"{group}/v1" if group else "v1", "kind": kind, "spec": {}}
        assert call("total_resource_limits(obj, 'cpu')", obj) >= 0
        assert isinstance(call("resource_mode(obj)", obj), str)


def totals_config() -> dict[str, Any]:
    """Six resource totals of one MongoDB, as kubedb's configuration asks for them."""
    metrics = [{"name": f"{field}_{kind}", "help": "h", "type": "gauge",
                "params": [{"key": "obj", "valuePath": "."}, {"key": "resourceType", "value": kind}],
                "metricValue": {"valueFromExpression": f"total_resource_{field}(obj, resourceType)"}}
               for field in ("requests", "limits") for kind in ("cpu", "memory", "storage")]
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "totals"},
            "spec": {"targetRef": {"apiVersion": "kubedb.com/v1", "kind": "MongoDB"}, "metrics": metrics}}


def test_a_render_computes_each_total_once_and_an_edited_object_afresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import exporter.resources as resources
    from exporter.compiler import compile_config

    plan = compile_config(totals_config())
    calls: list[str] = []
    walk = resources._roles

    def counted(obj: Any, read: Any, function: str) -> Any:
        calls.append(function)
        return walk(obj, read, function)

    monkeypatch.setattr(resources, "_roles", counted)
    obj = kubedb("MongoDB", {"podTemplate": {"spec": {"containers": [
        c("mongodb", {"cpu": "1", "memory": "1Gi"}, {"cpu": "2"})]}}, "storage": STORAGE})
    first = b"".join(plan.render(obj)).decode()
    assert sorted(calls) == ["total_resource_limits", "total_resource_requests"]  # not three times each
    assert 'mongodb_requests_cpu{namespace="demo",mongodb="db"} 1\n' in first
    obj["spec"]["podTemplate"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "3"
    second = b"".join(plan.render(obj)).decode()  # the same dict, changed: computed afresh
    assert 'mongodb_requests_cpu{namespace="demo",mongodb="db"} 3\n' in second
    assert len(calls) == 4
    calls.clear()
    for _ in range(2):  # outside a render nothing is remembered
        assert call("total_resource_requests(obj, 'cpu')", obj) == 3
    assert len(calls) == 2


def test_only_plans_that_ask_for_totals_bracket_their_renders() -> None:
    from exporter.compiler import compile_config

    assert compile_config(totals_config())._memo_totals
    plain = totals_config()
    for metric in plain["spec"]["metrics"]:
        metric["metricValue"] = {"valueFromPath": ".spec.replicas"}
    assert not compile_config(plain)._memo_totals
