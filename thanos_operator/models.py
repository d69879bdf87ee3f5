"""The ``Thanos`` API (``monitoring.paodin.io/v1alpha1``) as pydantic models.

This is the boundary of the operator: a raw object read from the kube-apiserver (or a YAML
file) goes through :func:`parse_thanos` and comes out as a frozen, validated :class:`Thanos`, or
as a :class:`ThanosValidationError` whose messages name the exact field path
(``spec.receive.ingestors[1].name``). Everything downstream (rendering, status) works on
these models only.

Field names and JSON names follow PaodinMonitoring's single-CRD API (commit cca15b61) so its
sample CR and its docs/usage.md scenarios apply unchanged. Our extensions are marked
``(extension)`` in the field descriptions and documented in docs/thanos.md. Kubernetes core
types that we only pass through (affinity, tolerations, resources, PVC templates) are kept as
plain JSON objects: the kube-apiserver validates them when the rendered workload is applied.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from thanos_operator import names
from thanos_operator.addresses import SRV_PREFIXES, address_problem
from thanos_operator.durations import check_duration, check_go_duration, check_time_or_duration
from thanos_operator.group import API_GROUP, API_VERSION, KIND, PLURAL

__all__ = ["API_GROUP", "API_VERSION", "KIND", "PLURAL", "Thanos", "ThanosValidationError", "parse_thanos"]

JsonObject = dict[str, Any]

# A Kubernetes object name usable inside other names (DNS-1123 label).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SecretKeySelector(_Model):
    """A key of a Secret in the Thanos object's namespace (corev1.SecretKeySelector)."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    optional: bool | None = None


class ClientCertSecret(_Model):
    """(extension) A Secret holding a client certificate and its key, for mTLS to a store."""

    name: str = Field(min_length=1, description="Secret name (e.g. a kubernetes.io/tls Secret)")
    cert_key: str = Field(default="tls.crt", description="key holding the PEM certificate chain")
    key_key: str = Field(default="tls.key", description="key holding the PEM private key")


class CommonThanosFields(_Model):
    image: str | None = Field(default=None, description="thanos image with tag/version")
    log_level: Literal["error", "warn", "info", "debug"] | None = None
    log_format: Literal["logfmt", "json"] | None = None


class PodFields(CommonThanosFields):
    @model_validator(mode="after")
    def _escape_hatches(self) -> PodFields:
        problems = escape_hatch_problems(self)
        if problems:
            raise _FieldErrors(problems, relative=True)
        return self

    affinity: JsonObject | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[JsonObject] | None = None
    resources: JsonObject | None = Field(
        default=None,
        description="container resources; replaces the component's default requests as a whole ({}: none)",
    )
    replicas: int | None = Field(default=None, ge=0)
    security_context: JsonObject | None = Field(
        default=None,
        description="(extension) pod securityContext; replaces the default (UID 1001, fsGroup 1001)",
    )
    container_security_context: JsonObject | None = Field(
        default=None,
        description="(extension) securityContext of the Thanos container; replaces the default "
        "(no privilege escalation, all capabilities dropped, read-only root filesystem)",
    )
    topology_spread_constraints: list[JsonObject] | None = Field(
        default=None,
        description="(extension) replaces the default spread over nodes and zones ([] turns it off)",
    )
    extra_args: list[str] | None = Field(
        default=None, description="(extension) more --flag[=value] arguments for the Thanos container"
    )
    extra_env: list[JsonObject] | None = Field(default=None, description="(extension) more EnvVars")
    extra_volumes: list[JsonObject] | None = Field(default=None, description="(extension) more pod volumes")
    extra_volume_mounts: list[JsonObject] | None = Field(
        default=None, description="(extension) mounts of extraVolumes into the Thanos container"
    )
    termination_grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        description="(extension) default: 900 for ingestors, the Kubernetes default otherwise",
    )


class KubernetesVolume(_Model):
    empty_dir: JsonObject | None = None
    pvc: JsonObject | None = Field(default=None, description="a PersistentVolumeClaim used as template")

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesVolume:
        if self.empty_dir is not None and self.pvc is not None:
            raise ValueError("set at most one of emptyDir and pvc")
        return self


class QueryStores(_Model):
    addresses: list[str] = Field(default_factory=list)
    ca_secret: SecretKeySelector | None = Field(
        default=None, description="Secret containing the CA cert to use for StoreApi connections"
    )
    client_cert_secret: ClientCertSecret | None = Field(
        default=None, description="(extension) client certificate for mTLS to these stores"
    )
    bearer_token_secret: SecretKeySelector | None = Field(
        default=None, description="(extension) bearer token sent as 'Authorization: Bearer <token>'"
    )
    server_name: str | None = Field(
        default=None, description="(extension) TLS SNI and certificate name (default: address host)"
    )

    @property
    def secured(self) -> bool:
        return self.ca_secret is not None

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for i, address in enumerate(value):
            problem = address_problem(address)
            if problem is not None:
                raise ValueError(f"addresses[{i}]: {problem}")
        return value

    @model_validator(mode="after")
    def _security(self) -> QueryStores:
        wants_tls = self.client_cert_secret or self.bearer_token_secret or self.server_name
        if wants_tls and self.ca_secret is None:
            raise ValueError(
                "caSecret is required when clientCertSecret, bearerTokenSecret or serverName is set"
            )
        if self.ca_secret is not None:
            for i, address in enumerate(self.addresses):
                if address.startswith(SRV_PREFIXES):
                    raise ValueError(
                        f"addresses[{i}]: SRV discovery is not supported for stores behind the envoy "
                        "proxy; use host:port or dns+host:port"
                    )
                if _split_host_port(address.removeprefix("dns+")) is None:
                    raise ValueError(f"addresses[{i}]: expected host:port (optionally dns+host:port)")
        return self


def escape_hatch_problems(fields: PodFields) -> list[tuple[str, str]]:
    """extraArgs/extraEnv/extraVolumes/extraVolumeMounts may add, never override what we set."""
    problems: list[tuple[str, str]] = []
    for i, arg in enumerate(fields.extra_args or []):
        name = arg.partition("=")[0].removeprefix("--")
        if not arg.startswith("--") or not name:
            problems.append((f"extraArgs[{i}]", f"{arg!r}: expected --flag or --flag=value"))
        elif name in names.MANAGED_FLAGS or name.removeprefix("no-") in names.MANAGED_FLAGS:
            problems.append(
                (f"extraArgs[{i}]", f"--{name} is set by the operator; use the matching spec field instead")
            )
    for i, env in enumerate(fields.extra_env or []):
        if not isinstance(env.get("name"), str) or not env["name"]:
            problems.append((f"extraEnv[{i}].name", "required"))
        elif env["name"] in names.MANAGED_ENV:
            problems.append((f"extraEnv[{i}].name", f"{env['name']} is set by the operator"))
    volume_names = set()
    for i, spec in enumerate(fields.extra_volumes or []):
        volume = spec.get("name")
        if not isinstance(volume, str) or not volume:
            problems.append((f"extraVolumes[{i}].name", "required"))
        elif volume in names.MANAGED_VOLUMES or volume.startswith(names.MANAGED_VOLUME_PREFIXES):
            problems.append((f"extraVolumes[{i}].name", f"{volume!r} is a volume name the operator uses"))
        else:
            volume_names.add(volume)
    for i, mount in enumerate(fields.extra_volume_mounts or []):
        path = mount.get("mountPath")
        if mount.get("name") not in volume_names:
            problems.append((f"extraVolumeMounts[{i}].name", "must name one of extraVolumes"))
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append((f"extraVolumeMounts[{i}].mountPath", "required: an absolute path"))
        elif any(path == p or path.startswith(p + "/") for p in names.MANAGED_MOUNT_PATHS):
            problems.append(
                (f"extraVolumeMounts[{i}].mountPath", f"{path} is inside a directory the operator mounts")
            )
    return problems


def _duration(value: str | None) -> str | None:
    return None if value is None else check_duration(value)


def _split_host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def split_host_port(address: str) -> tuple[str, int]:
    """Host and port of a validated secured-store address (``dns+`` prefix allowed)."""
    parsed = _split_host_port(address.removeprefix("dns+"))
    if parsed is None:  # the model validator rejects these; keep mypy and callers honest
        raise ValueError(f"not host:port: {address!r}")
    return parsed


class EnvoySpec(_Model):
    image: str | None = None
    resources: JsonObject | None = None


class Query(PodFields):
    stores: list[QueryStores] | None = None
    selector_labels: dict[str, str] | None = None
    envoy: EnvoySpec | None = None


class CacheConfig(_Model):
    """(extension) A Thanos cache: in memory (default), or memcached / redis configured by a
    Thanos cache config (``type: MEMCACHED`` / ``REDIS``) kept in a Secret."""

    type: Literal["inMemory", "memcached", "redis"] = "inMemory"
    max_size: str = Field(default="256MB", description="inMemory only: the cache's size, e.g. 512MB")
    config_secret: SecretKeySelector | None = Field(
        default=None, description="memcached/redis: a Secret key holding the Thanos cache config YAML"
    )

    @model_validator(mode="after")
    def _source(self) -> CacheConfig:
        if self.type != "inMemory" and self.config_secret is None:
            raise ValueError(f"configSecret is required for a {self.type} cache")
        if self.type == "inMemory" and self.config_secret is not None:
            raise ValueError("configSecret is only used by memcached and redis caches")
        if not re.fullmatch(r"[0-9]+(B|KB|MB|GB)", self.max_size):
            raise ValueError(f"maxSize {self.max_size!r}: expected a size such as 256MB")
        return self


class QueryFrontend(PodFields):
    """(extension) Thanos Query Frontend in front of Query: splits, retries and caches range queries."""

    cache: CacheConfig = Field(default_factory=CacheConfig)
    split_interval: str | None = Field(
        default=None, description="--query-range.split-interval, a Go duration: h, m, s (default 24h)"
    )

    @field_validator("split_interval")
    @classmethod
    def _split(cls, value: str | None) -> str | None:
        return None if value is None else check_go_duration(value)  # kingpin DurationVar upstream


class ReceiveRouter(PodFields):
    replication_factor: int | None = Field(default=None, ge=1)
    tenant_header: str | None = Field(default=None, description="--receive.tenant-header")
    default_tenant_id: str | None = Field(default=None, description="--receive.default-tenant-id")
    tenant_label_name: str | None = Field(default=None, description="--receive.tenant-label-name")


class ReceiveIngestor(PodFields):
    name: str
    tenants: list[str] | None = None
    local_tsdb_retention: str | None = None
    object_storage_config: SecretKeySelector | None = None
    data_volume: KubernetesVolume | None = None

    @field_validator("local_tsdb_retention")
    @classmethod
    def _retention(cls, value: str | None) -> str | None:
        return _duration(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > 40:
            raise ValueError("must be a lowercase DNS label of at most 40 characters")
        return value


class Receive(_Model):
    router: ReceiveRouter = Field(default_factory=ReceiveRouter)
    ingestors: list[ReceiveIngestor] | None = None

    @model_validator(mode="after")
    def _ingestors(self) -> Receive:
        seen: set[str] = set()
        for ingestor in self.ingestors or []:
            if ingestor.name in seen:
                raise ValueError(f"ingestor name {ingestor.name!r} is used twice")
            seen.add(ingestor.name)
        return self


class TimeRange(_Model):
    """(extension) One time partition of the Store Gateway (its own StatefulSet)."""

    min_time: str | None = None
    max_time: str | None = None

    @field_validator("min_time", "max_time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else check_time_or_duration(value)


class StoreGateway(PodFields):
    min_time: str | None = None
    max_time: str | None = None
    time_ranges: list[TimeRange] | None = Field(
        default=None,
        description="(extension) one StatefulSet per time partition (instead of minTime/maxTime)",
    )
    shards: int | None = Field(
        default=None,
        ge=1,
        description="(extension) hash-shard the blocks of each partition over N StatefulSets",
    )
    index_cache: CacheConfig | None = Field(
        default=None,
        description="(extension) index cache: inMemory (maxSize) or memcached/redis (configSecret)",
    )
    bucket_cache_config: SecretKeySelector | None = Field(
        default=None,
        description="(extension) a Secret key with a caching-bucket config (--store.caching-bucket)",
    )

    @model_validator(mode="after")
    def _partitions(self) -> StoreGateway:
        if self.time_ranges is not None and (self.min_time or self.max_time):
            raise ValueError("set either minTime/maxTime or timeRanges, not both")
        if self.time_ranges is not None and not self.time_ranges:
            raise ValueError("timeRanges: at least one range (or leave it out)")
        return self

    @field_validator("min_time", "max_time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else check_time_or_duration(value)

    object_storage_config: SecretKeySelector | None = None
    data_volume: KubernetesVolume | None = None


class Retention(_Model):
    retention_raw: str | None = Field(default=None, alias="retentionRaw")
    retention_5m: str | None = Field(default=None, alias="retention5m")
    retention_1h: str | None = Field(default=None, alias="retention1h")

    @field_validator("retention_raw", "retention_5m", "retention_1h")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return _duration(value)


class Ruler(PodFields):
    """(extension) Thanos Rule: evaluates rule files from ConfigMaps against Query and sends
    alerts to Alertmanagers; its blocks go to the bucket when ``objectStorageConfig`` is set."""

    rule_selector: dict[str, str] = Field(
        description="labels of the ConfigMaps (in the CR's namespace) whose keys are rule files, and of the "
        "PrometheusRule objects (monitoring.coreos.com/v1, while that CRD is served) whose groups are read"
    )
    rule_namespace_selector: dict[str, str] | None = Field(
        default=None,
        description="labels of the namespaces PrometheusRule objects are read from (as ThanosRuler's "
        "ruleNamespaceSelector): absent, only the CR's namespace; {} every namespace the operator watches",
    )
    alertmanagers: list[str] | None = Field(default=None, description="--alertmanagers.url values")
    eval_interval: str | None = Field(
        default=None, description="--eval-interval, a Go duration: h, m, s (default 1m)"
    )
    retention: str | None = Field(default=None, description="--tsdb.retention (default 48h)")
    object_storage_config: SecretKeySelector | None = None
    data_volume: KubernetesVolume | None = None

    @field_validator("retention")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return _duration(value)

    @field_validator("eval_interval")
    @classmethod
    def _go_durations(cls, value: str | None) -> str | None:
        return None if value is None else check_go_duration(value)  # kingpin DurationVar upstream

    @field_validator("rule_selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one label (an empty selector would mount every ConfigMap)")
        return value

    @field_validator("alertmanagers")
    @classmethod
    def _urls(cls, value: list[str] | None) -> list[str] | None:
        for i, url in enumerate(value or []):
            if not re.fullmatch(r"(dns\+|dnssrv\+)?https?://[^\s/]+(/\S*)?", url):
                raise ValueError(f"[{i}] {url!r}: expected http(s)://host:port (optionally dns+ or dnssrv+)")
        return value


class Compact(PodFields):
    downsampling_disable: bool | None = None
    retention: Retention | None = None
    object_storage_config: SecretKeySelector | None = None
    data_volume: KubernetesVolume | None = None

    @field_validator("replicas")
    @classmethod
    def _one_compactor(cls, value: int | None) -> int | None:
        if value is not None and value > 1:
            raise ValueError(
                f"{value} compactors: at most 1; Thanos Compact must be the only compactor of a bucket "
                "(several would compact and delete the same blocks concurrently)"
            )
        return value


_OBJSTORE_REQUIRED = "required: Thanos {} cannot start without an object storage configuration"


class ThanosSpec(_Model):
    default_fields: CommonThanosFields = Field(default_factory=CommonThanosFields)
    query: Query | None = None
    query_frontend: QueryFrontend | None = Field(default=None, description="(extension) needs query")
    receive: Receive | None = None
    store_gateway: StoreGateway | None = None
    compact: Compact | None = None
    ruler: Ruler | None = Field(default=None, description="(extension) needs query")
    paused: bool = Field(default=False, description="(extension) stop reconciling this object")

    @model_validator(mode="after")
    def _object_storage(self) -> ThanosSpec:
        # PaodinMonitoring dereferenced these without a check and crashed; we reject the object
        # with a field path instead (the CRD keeps them optional for schema compatibility).
        if self.store_gateway is not None and self.store_gateway.object_storage_config is None:
            raise _FieldError("spec.storeGateway.objectStorageConfig", _OBJSTORE_REQUIRED.format("store"))
        if self.compact is not None and self.compact.object_storage_config is None:
            raise _FieldError("spec.compact.objectStorageConfig", _OBJSTORE_REQUIRED.format("compact"))
        if self.query_frontend is not None and self.query is None:
            raise _FieldError("spec.query", "required: spec.queryFrontend forwards to Query")
        if self.ruler is not None and self.query is None:
            raise _FieldError("spec.query", "required: spec.ruler evaluates its rules against Query")
        return self


class ObjectMeta(BaseModel):
    """The part of metadata the operator uses; everything else is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=40)
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = Field(default="", alias="resourceVersion")
    deletion_timestamp: str | None = Field(default=None, alias="deletionTimestamp")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must be a lowercase DNS label (it prefixes Service names)")
        return value


class Thanos(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    api_version: Literal["monitoring.paodin.io/v1alpha1"] = Field(
        default="monitoring.paodin.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["Thanos"] = "Thanos"
    metadata: ObjectMeta
    spec: ThanosSpec = Field(default_factory=ThanosSpec)

    @model_validator(mode="after")
    def _replication_factor(self) -> Thanos:
        receive = self.spec.receive
        if receive is None or receive.router.replication_factor is None:
            return self
        factor = receive.router.replication_factor
        soft_total = 0
        soft_indexes: list[int] = []
        for i, ingestor in enumerate(receive.ingestors or []):
            replicas = ingestor.replicas if ingestor.replicas is not None else 1
            if not ingestor.tenants:
                soft_total += replicas
                soft_indexes.append(i)
            elif replicas < factor:
                raise _FieldError(
                    f"spec.receive.ingestors[{i}].replicas",
                    f"{replicas} is less than spec.receive.router.replicationFactor={factor}: "
                    "every hashring needs at least replicationFactor endpoints",
                )
        if soft_indexes and soft_total < factor:
            where = ", ".join(f"[{i}]" for i in soft_indexes)
            raise _FieldError(
                "spec.receive.ingestors",
                f"the soft-tenant ingestors {where} form one catch-all hashring of {soft_total} "
                f"replicas, less than spec.receive.router.replicationFactor={factor}",
            )
        return self

    @model_validator(mode="after")
    def _cross_field(self) -> Thanos:
        problems = derived_name_problems(self) + hashring_problems(self)
        if problems:
            raise _FieldErrors(problems)
        return self


def store_partition_suffixes(store: StoreGateway) -> list[str]:
    """Name suffix of each Store Gateway StatefulSet: ``""`` (one, PaodinMonitoring's name), or
    ``-t<i>`` per time range and/or ``-s<j>`` per hash shard."""
    ranges = [f"-t{i}" for i in range(len(store.time_ranges))] if store.time_ranges else [""]
    shards = [f"-s{j}" for j in range(store.shards)] if store.shards and store.shards > 1 else [""]
    return [r + s for r in ranges for s in shards]


def derived_name_problems(thanos: Thanos) -> list[tuple[str, str]]:
    """Every object name the operator derives, checked against the limit the cluster enforces."""
    t, spec = thanos.metadata.name, thanos.spec
    wanted: list[tuple[str, str, str]] = []  # (field path, kind, name)
    if spec.query is not None:
        wanted += [
            ("metadata.name", "Deployment", names.query(t)),
            ("metadata.name", "Service", names.query_service(t)),
            ("metadata.name", "Secret", names.query_proxy_config(t)),
        ]
    if spec.query_frontend is not None:
        wanted += [
            ("metadata.name", "Deployment", names.query_frontend(t)),
            ("metadata.name", "Service", names.query_frontend_service(t)),
        ]
    if spec.receive is not None:
        wanted += [
            ("metadata.name", "Deployment", names.router(t)),
            ("metadata.name", "ConfigMap", names.router_hashrings(t)),
            ("metadata.name", "Service", names.router_service(t)),
        ]
        for i, ingestor in enumerate(spec.receive.ingestors or []):
            path = f"spec.receive.ingestors[{i}].name"
            wanted += [
                (path, "StatefulSet", names.ingestor(t, ingestor.name)),
                (path, "Service", names.ingestor_service(t, ingestor.name)),
            ]
    if spec.store_gateway is not None:
        for suffix in store_partition_suffixes(spec.store_gateway):
            wanted += [
                ("metadata.name", "StatefulSet", names.store_gateway(t, suffix)),
                ("metadata.name", "Service", names.store_gateway_service(t, suffix)),
            ]
    if spec.ruler is not None:
        wanted += [
            ("metadata.name", "StatefulSet", names.ruler(t)),
            ("metadata.name", "Service", names.ruler_service(t)),
        ]
    if spec.compact is not None:
        wanted += [
            ("metadata.name", "StatefulSet", names.compact(t)),
            ("metadata.name", "Service", names.compact_service(t)),
        ]
    problems = []
    for path, kind, name in wanted:
        problem = names.name_problem(kind, name)
        if problem is not None:
            problems.append((path, problem))
    return problems


def _replica_count(fields: PodFields) -> int:
    return fields.replicas if fields.replicas is not None else 1


def hashring_problems(thanos: Thanos) -> list[tuple[str, str]]:
    """Routing that Thanos would accept but that silently loses or misroutes writes.

    - no hashring at all (no ingestor with replicas): Thanos refuses an empty hashrings file;
    - a hard-tenant group with 0 replicas: its ring would vanish and its tenants' writes land in
      the soft-tenant ring; a soft-tenant ring of 0 replicas: unmatched tenants would fail;
    - a tenant in two groups: Thanos uses the first matching ring, the second never gets data.
    """
    receive = thanos.spec.receive
    if receive is None:
        return []
    ingestors = receive.ingestors or []
    problems: list[tuple[str, str]] = []
    if not any(_replica_count(i) > 0 for i in ingestors):
        problems.append(
            (
                "spec.receive.ingestors",
                "required: at least one ingestor with replicas >= 1; the router cannot start with an "
                "empty hashrings file",
            )
        )
        return problems
    owner: dict[str, int] = {}
    soft = [i for i, ingestor in enumerate(ingestors) if not ingestor.tenants]
    for i, ingestor in enumerate(ingestors):
        if ingestor.tenants and _replica_count(ingestor) == 0:
            problems.append(
                (
                    f"spec.receive.ingestors[{i}].replicas",
                    f"0 replicas would drop the hashring of tenants {sorted(set(ingestor.tenants))} and "
                    "send their writes to the soft-tenant ring; remove the tenants or the group instead",
                )
            )
        for k, tenant in enumerate(ingestor.tenants or []):
            first = owner.setdefault(tenant, i)
            if first != i:
                problems.append(
                    (
                        f"spec.receive.ingestors[{i}].tenants[{k}]",
                        f"tenant {tenant!r} is already routed to spec.receive.ingestors[{first}] "
                        f"({ingestors[first].name!r}); Thanos uses the first matching hashring, so this "
                        "group would never receive its data",
                    )
                )
    if soft and sum(_replica_count(ingestors[i]) for i in soft) == 0:
        where = ", ".join(f"[{i}]" for i in soft)
        problems.append(
            (
                "spec.receive.ingestors",
                f"the soft-tenant ingestors {where} have 0 replicas in total: writes of every tenant "
                "without a hashring of its own would fail; remove them or give one replicas",
            )
        )
    return problems


class _FieldError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message


class _FieldErrors(ValueError):
    """Several problems; ``relative`` paths are below the model that raised them."""

    def __init__(self, problems: list[tuple[str, str]], *, relative: bool = False) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems
        self.relative = relative


class ThanosValidationError(ValueError):
    """Every problem of one object, each as ``field.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + part
    return path


def parse_thanos(obj: JsonObject) -> Thanos:
    """Validate a raw ``Thanos`` object; raise :class:`ThanosValidationError` with field paths."""
    try:
        return Thanos.model_validate(obj)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = _field_path(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _FieldErrors):
                prefix = f"{path}." if ctx_error.relative and path else ""
                problems += [f"{prefix}{p}: {m}" for p, m in ctx_error.problems]
                continue
            if isinstance(ctx_error, _FieldError):
                path, message = ctx_error.path, ctx_error.detail
            elif message.startswith("addresses[") and path:
                head, _, rest = message.partition(": ")
                path, message = f"{path.removesuffix('.addresses')}.{head}", rest
            elif message.startswith("caSecret is required") and path:
                path, message = f"{path}.caSecret", message.removeprefix("caSecret is ")
            problems.append(f"{path}: {message}" if path else message)
        raise ThanosValidationError(problems) from None


class Condition(_Model):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: str | None = None


class ComponentStatus(_Model):
    name: str = Field(description="workload name")
    kind: Literal["Deployment", "StatefulSet"]
    component: str = Field(default="", description="query, receive, storegateway or compact")
    desired_replicas: int = 0
    ready_replicas: int = 0


class ThanosStatus(_Model):
    """(extension) Written by the operator through the status subresource."""

    observed_generation: int | None = None
    paused: bool = False
    conditions: list[Condition] = Field(default_factory=list, description="Ready and Reconciled")
    components: list[ComponentStatus] = Field(default_factory=list)
