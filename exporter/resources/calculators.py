"""THE table of per-kind resource calculators (kmodules/resource-metrics semantics).

``CALCULATORS`` maps ``(group, kind)`` to a ``Calculator``: how the kind lays out its pods
(``pods(obj, read)`` -> roles), its mode (``resource_mode``) and whether it uses TLS
(``resource_uses_tls``). Adding a kind is one entry here and its test. The shapes, as in
upstream's one-file-per-kind calculators:

- native workloads read ``[spec.template.]spec.containers`` (summed) and ``initContainers``
  (their maximum, compared with the running sum); Deployment, ReplicaSet, StatefulSet and
  ReplicationController multiply by ``spec.replicas`` (default 1); DaemonSet, Job and CronJob
  count one pod's resources and report 0 replicas (upstream returns no replica list for them);
  Pod is one pod; PVC templates are not counted;
- KubeDB-style kinds read a *node* (``spec`` itself, or each role of a topology): ``replicas``
  (default 1), the application container (the ``podTemplate.spec.containers`` entry named after
  the kind, else ``podTemplate.spec.resources``, else the node's own ``resources``, else the first
  container), the node's other containers as runtime-only sidecars, and ``storage`` (PVC spec)
  per pod; plus the exporter sidecar ``spec.monitor.prometheus.exporter.resources`` on every pod;
- topologies: MongoDB ``spec.shardTopology`` (shard = shards x replicas, configServer, mongos),
  Redis ``spec.mode: Cluster`` (``spec.cluster.shards x replicas``), MySQL InnoDB Cluster's
  router, and for the kinds marked ``topology`` every node-like entry of ``spec.topology``
  (a map of roles, a list of racks, or one level deeper, e.g. Milvus ``distributed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from exporter.resources.model import PodInfo, Reader, container_amounts, get, maximum, replicas_of

__all__ = ["CALCULATORS", "Calculator", "lookup"]

Pods = Callable[[Any, Reader], list[PodInfo]]


@dataclass(frozen=True, slots=True)
class Calculator:
    pods: Pods
    mode: Callable[[Any], str]
    uses_tls: Callable[[Any], bool]
    replicas: Callable[[Any], int] | None = None  # default: the app roles' pods


# --- native workloads ----------------------------------------------------------------------------

def _native(template: tuple[str, ...], *, scaled: bool) -> Pods:
    def pods(obj: Any, read: Reader) -> list[PodInfo]:
        spec = get(obj, *template)
        count = replicas_of(get(obj, "spec")) if scaled else 1
        running = container_amounts(get(spec, "containers"), read)
        init = container_amounts(get(spec, "initContainers"), read, combine=maximum)
        return [PodInfo(running, count), PodInfo(init, count, app=False, init=True)]

    return pods


def _no_replicas(obj: Any) -> int:
    return 0


def _no_mode(obj: Any) -> str:
    return ""


def _no_tls(obj: Any) -> bool:
    return False


# --- KubeDB-style nodes ----------------------------------------------------------------------------

def _looks_like_node(value: Any) -> bool:
    keys = ("replicas", "podTemplate", "resources", "storage")
    return isinstance(value, dict) and any(key in value for key in keys)


def _node(node: Any, read: Reader, *, container: str, count: int | None = None) -> list[PodInfo]:
    """The application pod of one node (plus its other containers as a runtime-only sidecar)."""
    if count is None:
        count = replicas_of(node)
        if isinstance(get(node, "shards"), int):  # e.g. ClickHouse: shards x replicas
            count *= replicas_of(node, "shards")
    replicas = count
    template = get(node, "podTemplate", "spec")
    containers = [c for c in get(template, "containers") or () if isinstance(c, dict)]
    named = [c for c in containers if c.get("name") == container]
    sidecars: list[Any] = []
    if named:
        app = read(get(named[0], "resources"))
        sidecars = [c for c in containers if c is not named[0]]
    elif isinstance(get(template, "resources"), dict):
        app = read(get(template, "resources"))
        sidecars = containers
    elif isinstance(get(node, "resources"), dict):
        app = read(get(node, "resources"))
    elif containers:
        app = read(get(containers[0], "resources"))
        sidecars = containers[1:]
    else:
        app = {}
    storage = read(get(node, "storage", "resources")).get("storage")
    if storage is not None:
        app = {**app, "storage": storage}
    found = [PodInfo(app, replicas)]
    if sidecars:
        found.append(PodInfo(container_amounts(sidecars, read), replicas, app=False))
    return found


def _exporter(obj: Any, read: Reader, pods: list[PodInfo]) -> list[PodInfo]:
    """The exporter sidecar runs in every application pod."""
    resources = get(obj, "spec", "monitor", "prometheus", "exporter", "resources")
    if not isinstance(resources, dict):
        return pods
    count = sum(info.replicas for info in pods if info.app)
    return [*pods, PodInfo(read(resources), count, app=False)]


def _topology_nodes(value: Any, depth: int = 0) -> Iterator[Any]:
    if _looks_like_node(value):
        yield value
    elif isinstance(value, dict) and depth < 2:
        for child in value.values():
            yield from _topology_nodes(child, depth + 1)
    elif isinstance(value, list) and depth < 2:
        for child in value:
            yield from _topology_nodes(child, depth + 1)


def _kubedb(container: str, *, topology: tuple[str, ...] = (), exporter: bool = True,
            runtime: tuple[tuple[str, ...], ...] = ()) -> Pods:
    def pods(obj: Any, read: Reader) -> list[PodInfo]:
        found: list[PodInfo] = []
        if topology:
            for node in _topology_nodes(get(obj, *topology)):
                found.extend(_node(node, read, container=container))
        if not found:
            found = _node(get(obj, "spec"), read, container=container)
        if exporter:
            found = _exporter(obj, read, found)
        for path in runtime:  # helper pods that are not the database (Oracle's Data Guard observer)
            node = get(obj, *path)
            if isinstance(node, dict):
                found.extend(PodInfo({k: v for k, v in info.amounts.items() if k != "storage"},
                                     info.replicas, app=False)
                             for info in _node(node, read, container=path[-1]))
        return found

    return pods


def _mongodb(obj: Any, read: Reader) -> list[PodInfo]:
    shards = get(obj, "spec", "shardTopology")
    if not isinstance(shards, dict):
        return _exporter(obj, read, _node(get(obj, "spec"), read, container="mongodb"))
    shard = get(shards, "shard")
    found = _node(shard, read, container="mongodb",
                  count=replicas_of(shard, "shards") * replicas_of(shard))
    for part in ("configServer", "mongos"):
        if isinstance(get(shards, part), dict):
            found.extend(_node(get(shards, part), read, container="mongodb"))
    return _exporter(obj, read, found)


def _redis(obj: Any, read: Reader) -> list[PodInfo]:
    count = None
    if get(obj, "spec", "mode") == "Cluster":
        cluster = get(obj, "spec", "cluster")
        count = replicas_of(cluster, "shards") * replicas_of(cluster)
    return _exporter(obj, read, _node(get(obj, "spec"), read, container="redis", count=count))


def _mysql(obj: Any, read: Reader) -> list[PodInfo]:
    found = _exporter(obj, read, _node(get(obj, "spec"), read, container="mysql"))  # not on routers
    if get(obj, "spec", "topology", "mode") == "InnoDBCluster":
        router = get(obj, "spec", "topology", "innoDBCluster", "router")
        found.extend(_node(router if isinstance(router, dict) else {}, read, container="mysql-router"))
    return found


def _vault(obj: Any, read: Reader) -> list[PodInfo]:
    spec = get(obj, "spec")
    found = _node(spec, read, container="vault")
    storage = read(get(spec, "backend", "raft", "storage", "resources")).get("storage")
    if storage is not None:
        found[0] = PodInfo({**found[0].amounts, "storage": storage}, found[0].replicas)
    return _exporter(obj, read, found)


# --- modes and TLS -----------------------------------------------------------------------------------

def _explicit_mode(obj: Any) -> str | None:
    for path in (("spec", "topology", "mode"), ("spec", "mode")):
        value = get(obj, *path)
        if isinstance(value, str) and value:
            return value
    return None


def _by_replicas(many: str, one: str = "Standalone") -> Callable[[Any], str]:
    def mode(obj: Any) -> str:
        explicit = _explicit_mode(obj)
        if explicit is not None:
            return explicit
        return many if replicas_of(get(obj, "spec")) > 1 else one

    return mode


def _by_field(path: tuple[str, ...], present: str, absent: str) -> Callable[[Any], str]:
    def mode(obj: Any) -> str:
        explicit = _explicit_mode(obj)
        if explicit is not None:
            return explicit
        return present if get(obj, *path) is not None else absent

    return mode


def _mongodb_mode(obj: Any) -> str:
    if isinstance(get(obj, "spec", "shardTopology"), dict):
        return "Sharded"
    if isinstance(get(obj, "spec", "replicaSet"), dict):
        return "ReplicaSet"
    return "Standalone"


def _constant(value: str) -> Callable[[Any], str]:
    return lambda obj: value


def _has(*path: str) -> Callable[[Any], bool]:
    def uses(obj: Any) -> bool:
        spec = get(obj, *path[:-1])
        return isinstance(spec, dict) and path[-1] in spec

    return uses


_TLS = _has("spec", "tls")
_SSL = _has("spec", "enableSSL")


def _db(container: str, mode: Callable[[Any], str], *, topology: tuple[str, ...] = (),
                       tls: Callable[[Any], bool] = _TLS, exporter: bool = True,
                       runtime: tuple[tuple[str, ...], ...] = ()) -> Calculator:
    return Calculator(pods=_kubedb(container, topology=topology, exporter=exporter, runtime=runtime),
                      mode=mode, uses_tls=tls)


_TOPOLOGY = ("spec", "topology")
_TEMPLATE = ("spec", "template", "spec")
_DEDICATED = _by_field(_TOPOLOGY, "Dedicated", "Combined")

CALCULATORS: dict[tuple[str, str], Calculator] = {
    # native
    ("", "Pod"): Calculator(_native(("spec",), scaled=False), _no_mode, _no_tls),
    ("", "ReplicationController"): Calculator(_native(_TEMPLATE, scaled=True), _no_mode, _no_tls),
    ("apps", "Deployment"): Calculator(_native(_TEMPLATE, scaled=True), _no_mode, _no_tls),
    ("apps", "ReplicaSet"): Calculator(_native(_TEMPLATE, scaled=True), _no_mode, _no_tls),
    ("apps", "StatefulSet"): Calculator(_native(_TEMPLATE, scaled=True), _no_mode, _no_tls),
    ("apps", "DaemonSet"): Calculator(_native(_TEMPLATE, scaled=False), _no_mode, _no_tls,
                                      replicas=_no_replicas),
    ("batch", "Job"): Calculator(_native(_TEMPLATE, scaled=False), _no_mode, _no_tls,
                                 replicas=_no_replicas),
    ("batch", "CronJob"): Calculator(_native(("spec", "jobTemplate", *_TEMPLATE), scaled=False), _no_mode,
                                     _no_tls, replicas=_no_replicas),
    # KubeDB with a topology of roles
    ("kubedb.com", "Elasticsearch"): _db("elasticsearch", _DEDICATED, topology=_TOPOLOGY, tls=_SSL),
    ("kubedb.com", "Kafka"): _db("kafka", _DEDICATED, topology=_TOPOLOGY, tls=_SSL),
    ("kubedb.com", "Druid"): _db("druid", _DEDICATED, topology=_TOPOLOGY),
    ("kubedb.com", "Singlestore"): _db("singlestore", _DEDICATED, topology=_TOPOLOGY),
    ("kubedb.com", "Solr"): _db("solr", _DEDICATED, topology=_TOPOLOGY),
    ("kubedb.com", "Milvus"): _db("milvus", _by_field(_TOPOLOGY, "Distributed", "Standalone"),
                                                 topology=_TOPOLOGY, exporter=False),
    ("kubedb.com", "Cassandra"): _db("cassandra", _by_field(_TOPOLOGY, "Cluster", "Standalone"),
                                                    topology=_TOPOLOGY),
    ("kubedb.com", "ClickHouse"): _db(
        "clickhouse", _by_field(("spec", "clusterTopology"), "Cluster", "Standalone"),
        topology=("spec", "clusterTopology", "cluster")),
    # KubeDB with their own layouts
    ("kubedb.com", "MongoDB"): Calculator(_mongodb, _mongodb_mode, _TLS),
    ("kubedb.com", "Redis"): Calculator(_redis, lambda obj: _explicit_mode(obj) or "Standalone", _TLS),
    ("kubedb.com", "MySQL"): Calculator(_mysql, lambda obj: _explicit_mode(obj) or "Standalone", _TLS),
    # KubeDB, one node at spec
    ("kubedb.com", "Postgres"): _db("postgres", _by_replicas("Cluster")),
    ("kubedb.com", "MariaDB"): _db("mariadb", _by_replicas("Cluster")),
    ("kubedb.com", "PerconaXtraDB"): _db("perconaxtradb", _by_replicas("Cluster")),
    ("kubedb.com", "ProxySQL"): _db("proxysql", _by_replicas("Cluster")),
    ("kubedb.com", "Memcached"): _db("memcached", _by_replicas("Cluster")),
    ("kubedb.com", "RedisSentinel"): _db("redissentinel", _by_replicas("Cluster")),
    ("kubedb.com", "PgBouncer"): _db("pgbouncer", _constant("Standalone")),
    ("kubedb.com", "Pgpool"): _db("pgpool", _by_replicas("Cluster")),
    ("kubedb.com", "Neo4j"): _db("neo4j", _by_replicas("Cluster")),
    ("kubedb.com", "Oracle"): _db("oracle", _by_replicas("Cluster"),
                                                 runtime=(("spec", "dataGuard", "observer"),)),
    ("kubedb.com", "HanaDB"): _db("hanadb", _by_replicas("Cluster")),
    ("kubedb.com", "ZooKeeper"): _db("zookeeper", _by_replicas("Ensemble")),
    ("kubedb.com", "Hazelcast"): _db("hazelcast", _by_replicas("Cluster")),
    ("kubedb.com", "RabbitMQ"): _db("rabbitmq", _by_replicas("Cluster")),
    ("kubedb.com", "Ignite"): _db("ignite", _by_replicas("Cluster")),
    ("kubedb.com", "Weaviate"): _db("weaviate", _by_replicas("Cluster")),
    ("kubedb.com", "Qdrant"): _db("qdrant", _by_replicas("Cluster")),
    ("kubedb.com", "MSSQLServer"): _db("mssql", _by_replicas("Cluster")),
    ("kubedb.com", "DB2"): _db("db2", _by_replicas("Cluster")),
    ("kubedb.com", "DocumentDB"): _db("documentdb", _by_replicas("Cluster")),
    ("kubedb.com", "FerretDB"): _db("ferretdb", _by_replicas("Cluster")),
    ("kubedb.com", "Etcd"): _db("etcd", _by_replicas("Cluster")),
    ("kafka.kubedb.com", "ConnectCluster"): _db("connect-cluster", _constant("Distributed")),
    ("kubevault.com", "VaultServer"): Calculator(_vault, _constant("Default"), _TLS),
}


def lookup(obj: Any) -> Calculator | None:
    """The calculator of an object's kind (any version of its group), or None."""
    if not isinstance(obj, dict):
        return None
    api_version = obj.get("apiVersion")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    return CALCULATORS.get((group, str(obj.get("kind", ""))))
