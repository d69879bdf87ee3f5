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

API_GROUP = "monitoring.paodin.io"
API_VERSION = "v1alpha1"
KIND = "Thanos"
PLURAL = "thanos"

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
    affinity: JsonObject | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[JsonObject] | None = None
    resources: JsonObject | None = None
    replicas: int | None = Field(default=None, ge=0)


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
            if not address or any(ch.isspace() for ch in address):
                raise ValueError(f"addresses[{i}]: must be a non-empty host:port without spaces")
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
                if address.startswith("dnssrv+") or address.startswith("dnssrvnoa+"):
                    raise ValueError(
                        f"addresses[{i}]: SRV discovery is not supported for stores behind the envoy "
                        "proxy; use host:port or dns+host:port"
                    )
                if _split_host_port(address.removeprefix("dns+")) is None:
                    raise ValueError(f"addresses[{i}]: expected host:port (optionally dns+host:port)")
        return self


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


class StoreGateway(PodFields):
    min_time: str | None = None
    max_time: str | None = None
    object_storage_config: SecretKeySelector | None = None
    data_volume: KubernetesVolume | None = None


class Retention(_Model):
    retention_raw: str | None = Field(default=None, alias="retentionRaw")
    retention_5m: str | None = Field(default=None, alias="retention5m")
    retention_1h: str | None = Field(default=None, alias="retention1h")


class Compact(PodFields):
    downsampling_disable: bool | None = None
    retention: Retention | None = None
    object_storage_config: SecretKeySelector | None = None
    data_volume: KubernetesVolume | None = None


_OBJSTORE_REQUIRED = "required: Thanos {} cannot start without an object storage configuration"


class ThanosSpec(_Model):
    default_fields: CommonThanosFields = Field(default_factory=CommonThanosFields)
    query: Query | None = None
    receive: Receive | None = None
    store_gateway: StoreGateway | None = None
    compact: Compact | None = None
    paused: bool = Field(default=False, description="(extension) stop reconciling this object")

    @model_validator(mode="after")
    def _object_storage(self) -> ThanosSpec:
        # PaodinMonitoring dereferenced these without a check and crashed; we reject the object
        # with a field path instead (the CRD keeps them optional for schema compatibility).
        if self.store_gateway is not None and self.store_gateway.object_storage_config is None:
            raise _FieldError("spec.storeGateway.objectStorageConfig", _OBJSTORE_REQUIRED.format("store"))
        if self.compact is not None and self.compact.object_storage_config is None:
            raise _FieldError("spec.compact.objectStorageConfig", _OBJSTORE_REQUIRED.format("compact"))
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


class _FieldError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message


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
            if isinstance(ctx_error, _FieldError):
                path, message = ctx_error.path, ctx_error.detail
            elif message.startswith("addresses[") and path:
                head, _, rest = message.partition(": ")
                path, message = f"{path}.{head}", rest
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
