"""Building blocks shared by the per-component renderers: metadata, owner references,
containers with Thanos' standard probes, pod specs, headless Services, workloads, hashes.

Everything here is pure and deterministic: dicts are built in a fixed order and hashed over
their canonical (sorted-keys) JSON, so equal inputs give byte-identical objects.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from thanos_operator import names
from thanos_operator.models import CommonThanosFields, KubernetesVolume, PodFields, SecretKeySelector, Thanos

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class DefaultImages:
    """Images used when the CR names none (operator flags; spec.defaultFields.image wins)."""

    thanos: str = names.DEFAULT_THANOS_IMAGE
    envoy: str = names.DEFAULT_ENVOY_IMAGE


@dataclass(frozen=True)
class RenderContext:
    """The CR plus what the pure renderer needs to know about the cluster."""

    thanos: Thanos
    # resourceVersion of every referenced Secret the reconciler could read (name -> version);
    # hashed into pod templates of workloads that only read those Secrets at start-up.
    secret_versions: Mapping[str, str] = field(default_factory=dict)
    # Ready pods of each ingestor group (ingestor name -> pod names), read from the Endpoints of
    # its Service; a group missing here (offline render, no Endpoints yet) gets its static
    # membership pod-0..replicas-1.
    ready_pods: Mapping[str, Sequence[str]] = field(default_factory=dict)
    images: DefaultImages = field(default_factory=DefaultImages)
    # The ConfigMaps the ruler's ruleSelector selects (name -> data), listed by the reconciler.
    rule_config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The PrometheusRule objects it selects ((namespace, name) -> spec), while that CRD is served.
    prometheus_rules: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.thanos.metadata.name

    @property
    def namespace(self) -> str:
        return self.thanos.metadata.namespace


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def owner_reference(thanos: Thanos) -> JsonObject:
    return {
        "apiVersion": thanos.api_version,
        "kind": thanos.kind,
        "name": thanos.metadata.name,
        "uid": thanos.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(ctx: RenderContext, name: str, labels: Mapping[str, str]) -> JsonObject:
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": dict(sorted(labels.items())),
        "ownerReferences": [owner_reference(ctx.thanos)],
    }


def component_labels(ctx: RenderContext, component: str, **extra: str) -> dict[str, str]:
    labels = {**names.owner_labels(ctx.name), names.LABEL_NAME: component}
    labels.update(extra)
    return dict(sorted(labels.items()))


def resolved_image(ctx: RenderContext, fields: CommonThanosFields) -> str:
    """The component's image, else ``spec.defaultFields.image``, else the operator's default."""
    return fields.image or ctx.thanos.spec.default_fields.image or ctx.images.thanos


def log_args(fields: CommonThanosFields, defaults: CommonThanosFields) -> list[str]:
    args = []
    level = fields.log_level or defaults.log_level
    if level:
        args.append(f"--log.level={level}")
    fmt = fields.log_format or defaults.log_format
    if fmt:
        args.append(f"--log.format={fmt}")
    return args


def command_args(subcommand: str, flags: Iterable[str]) -> list[str]:
    """The subcommand, then its flags sorted and de-duplicated (stable pod templates)."""
    return [subcommand, *sorted(set(flags))]


def container_port(name: str, port: int) -> JsonObject:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


# The Thanos image runs as UID 1001; PVC data volumes are usually root-owned, so fsGroup makes
# them writable. Every Thanos component writes only below its data directory (a volume), so the
# root filesystem can be read-only. The CR's securityContext / containerSecurityContext replace
# these defaults as a whole.
THANOS_UID = 1001
DEFAULT_POD_SECURITY_CONTEXT: JsonObject = {
    "fsGroup": THANOS_UID,
    "runAsGroup": THANOS_UID,
    "runAsNonRoot": True,
    "runAsUser": THANOS_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEFAULT_CONTAINER_SECURITY_CONTEXT: JsonObject = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def copy_json(value: JsonObject) -> JsonObject:
    copied: JsonObject = json.loads(json.dumps(value))
    return copied


def copy_json_list(values: list[JsonObject] | None) -> list[JsonObject]:
    return [copy_json(v) for v in values or []]


def spread_constraints(fields: PodFields, labels: Mapping[str, str]) -> list[JsonObject]:
    """Default: spread a group's pods over nodes and zones, as a preference (ScheduleAnyway), so a
    single node or zone outage takes down as few replicas as possible. The CR's
    ``topologySpreadConstraints`` replaces it (``[]`` turns it off); an explicit ``affinity``
    also turns the default off, since the user then decides placement."""
    if fields.topology_spread_constraints is not None:
        return copy_json_list(fields.topology_spread_constraints)
    if fields.affinity:
        return []
    return [
        {
            "labelSelector": {"matchLabels": dict(labels)},
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


# Requests only, no limits: the scheduler places pods by what they need, and nothing is
# throttled or OOM-killed for crossing a guess (a CPU limit throttles Query's fan-out, a memory
# limit kills an ingestor with its head unflushed). Sized for a small production install
# (a few hundred thousand active series); a component's ``resources`` replaces its entry as a
# whole (``resources: {}`` means no requests). Keyed by ``thanos_container``'s ``component``.
DEFAULT_RESOURCES: dict[str, JsonObject] = {
    "query": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    "query-frontend": {"requests": {"cpu": "50m", "memory": "128Mi"}},
    "receive-router": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    "receive-ingestor": {"requests": {"cpu": "500m", "memory": "2Gi"}},
    "store": {"requests": {"cpu": "200m", "memory": "512Mi"}},
    "compact": {"requests": {"cpu": "200m", "memory": "1Gi"}},
    "rule": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    "envoy": {"requests": {"cpu": "50m", "memory": "64Mi"}},
}


def container_resources(resources: JsonObject | None, *, component: str) -> JsonObject:
    """The CR's ``resources`` when it sets them (even ``{}``), else the component's default."""
    return copy_json(resources if resources is not None else DEFAULT_RESOURCES[component])


def container_security_context(fields: PodFields) -> JsonObject:
    chosen = fields.container_security_context
    return copy_json(chosen if chosen is not None else DEFAULT_CONTAINER_SECURITY_CONTEXT)


def thanos_container(
    ctx: RenderContext,
    fields: PodFields,
    *,
    subcommand: str,
    flags: Iterable[str],
    ports: list[JsonObject],
    env: list[JsonObject] | None = None,
    volume_mounts: list[JsonObject] | None = None,
    component: str | None = None,
) -> JsonObject:
    """The container named after ``subcommand``: the component's image, resources (default:
    ``DEFAULT_RESOURCES[component or subcommand]``) and security context from ``fields``, and
    its escape hatches (extraArgs after our sorted flags, in the user's order; extraEnv after
    ours; extraVolumeMounts with ours), already validated against what we set."""
    args = [*command_args(subcommand, flags), *(fields.extra_args or [])]
    env = [*(env or []), *copy_json_list(fields.extra_env)]
    volume_mounts = [*(volume_mounts or []), *copy_json_list(fields.extra_volume_mounts)]
    container: JsonObject = {"name": subcommand, "image": resolved_image(ctx, fields), "args": args}
    if env:
        container["env"] = env
    container["ports"] = ports
    container["livenessProbe"] = {
        "httpGet": {"path": "/-/healthy", "port": "http", "scheme": "HTTP"},
        "periodSeconds": 30,
        "failureThreshold": 4,
    }
    container["readinessProbe"] = {
        "httpGet": {"path": "/-/ready", "port": "http", "scheme": "HTTP"},
        "periodSeconds": 5,
        "failureThreshold": 20,
    }
    container["resources"] = container_resources(fields.resources, component=component or subcommand)
    container["securityContext"] = container_security_context(fields)
    if volume_mounts:
        container["volumeMounts"] = sorted(volume_mounts, key=lambda m: m["mountPath"])
    return container


POD_NAME_ENV: JsonObject = {
    "name": "NAME",
    "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
}


def pod_template(
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    fields: PodFields,
    containers: list[JsonObject],
    volumes: list[JsonObject],
    termination_grace_period: int | None = None,
) -> JsonObject:
    """``termination_grace_period`` is the component's default; the CR's value wins."""
    spec: JsonObject = {"containers": containers}
    spec["securityContext"] = copy_json(
        fields.security_context if fields.security_context is not None else DEFAULT_POD_SECURITY_CONTEXT
    )
    grace = fields.termination_grace_period_seconds
    grace = grace if grace is not None else termination_grace_period
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if fields.affinity:
        spec["affinity"] = fields.affinity
    if fields.node_selector:
        spec["nodeSelector"] = dict(sorted(fields.node_selector.items()))
    if fields.tolerations:
        spec["tolerations"] = list(fields.tolerations)
    spread = spread_constraints(fields, labels)
    if spread:
        spec["topologySpreadConstraints"] = spread
    volumes = [*volumes, *copy_json_list(fields.extra_volumes)]
    if volumes:
        spec["volumes"] = sorted(volumes, key=lambda v: v["name"])
    template_meta: JsonObject = {"labels": dict(labels)}
    if annotations:
        template_meta["annotations"] = dict(sorted(annotations.items()))
    return {"metadata": template_meta, "spec": spec}


def replicas(fields: PodFields) -> int:
    return fields.replicas if fields.replicas is not None else 1


def deployment(
    ctx: RenderContext, *, name: str, labels: Mapping[str, str], replica_count: int, template: JsonObject
) -> JsonObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(ctx, name, labels),
        "spec": {"replicas": replica_count, "selector": {"matchLabels": dict(labels)}, "template": template},
    }


def stateful_set(
    ctx: RenderContext,
    *,
    name: str,
    service_name: str,
    labels: Mapping[str, str],
    replica_count: int,
    template: JsonObject,
    claims: list[JsonObject],
) -> JsonObject:
    spec: JsonObject = {
        "replicas": replica_count,
        "selector": {"matchLabels": dict(labels)},
        "serviceName": service_name,
        "template": template,
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ctx, name, labels),
        "spec": spec,
    }


# A voluntary disruption (drain, cluster upgrade) may take down one pod of a group at a time;
# Thanos Receive with replicationFactor >= 3 keeps its write quorum, Query and Store Gateway
# keep serving from the others.
PDB_MAX_UNAVAILABLE = 1


def pod_disruption_budget(ctx: RenderContext, *, name: str, labels: Mapping[str, str]) -> JsonObject:
    """Rendered as ``policy/v1``; the reconciler applies it as ``policy/v1beta1`` where only that
    is served (Kubernetes < 1.21)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(ctx, name, labels),
        "spec": {"maxUnavailable": PDB_MAX_UNAVAILABLE, "selector": {"matchLabels": dict(labels)}},
    }


def service_monitor(ctx: RenderContext, *, service: JsonObject) -> JsonObject:
    """A prometheus-operator ServiceMonitor scraping ``/metrics`` on the Service's ``http`` port."""
    meta = service["metadata"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(ctx, meta["name"], meta["labels"]),
        "spec": {
            "endpoints": [{"interval": "30s", "path": "/metrics", "port": "http"}],
            "namespaceSelector": {"matchNames": [ctx.namespace]},
            "selector": {"matchLabels": dict(service["spec"]["selector"])},
        },
    }


def headless_service(
    ctx: RenderContext, *, name: str, labels: Mapping[str, str], ports: list[tuple[str, int]]
) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ctx, name, labels),
        "spec": {
            "clusterIP": "None",
            "ports": [{"name": n, "port": p, "protocol": "TCP", "targetPort": n} for n, p in ports],
            "selector": dict(labels),
        },
    }


def config_map(
    ctx: RenderContext, *, name: str, labels: Mapping[str, str], data: Mapping[str, str]
) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(ctx, name, labels),
        "data": dict(sorted(data.items())),
    }


def secret(
    ctx: RenderContext, *, name: str, labels: Mapping[str, str], data: Mapping[str, str]
) -> JsonObject:
    # `data` (base64), never `stringData`: stringData is write-only, so the live object could
    # never be compared with what we apply.
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ctx, name, labels),
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


@dataclass
class DataVolume:
    """How /thanos is backed: a pod volume (emptyDir) or a StatefulSet claim template."""

    mount: JsonObject
    volumes: list[JsonObject]
    claims: list[JsonObject]


def data_volume(workload_name: str, spec: KubernetesVolume | None) -> DataVolume:
    if spec is not None and spec.pvc is not None:
        claim: JsonObject = json.loads(json.dumps(spec.pvc))  # deep copy, JSON-only
        claim_meta = claim.setdefault("metadata", {})
        claim_meta.setdefault("name", f"{workload_name}-tsdb")
        claim_spec = claim.setdefault("spec", {})
        claim_spec.setdefault("accessModes", ["ReadWriteOnce"])
        claim.pop("status", None)
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        return DataVolume(
            mount={"name": claim_meta["name"], "mountPath": names.DATA_DIR},
            volumes=[],
            claims=[claim],
        )
    empty_dir = spec.empty_dir if spec is not None and spec.empty_dir is not None else {}
    return DataVolume(
        mount={"name": "tsdb", "mountPath": names.DATA_DIR},
        volumes=[{"name": "tsdb", "emptyDir": dict(empty_dir)}],
        claims=[],
    )


@dataclass
class ObjectStorage:
    flag: str
    mount: JsonObject
    volume: JsonObject
    secret_name: str


def object_storage(selector: SecretKeySelector) -> ObjectStorage:
    volume_name = f"secret-{selector.name}"[:63].rstrip("-.")
    mount_path = f"{names.SECRETS_DIR}/{selector.name}"
    return ObjectStorage(
        flag=f"--objstore.config-file={mount_path}/{selector.key}",
        mount={"name": volume_name, "mountPath": mount_path, "readOnly": True},
        volume={
            "name": volume_name,
            "secret": {"secretName": selector.name, "items": [{"key": selector.key, "path": selector.key}]},
        },
        secret_name=selector.name,
    )


def secrets_hash_annotation(ctx: RenderContext, secret_names: Iterable[str]) -> dict[str, str]:
    """Pod-template annotation that changes when a Secret read only at start-up changes."""
    wanted = sorted(set(secret_names))
    if not wanted:
        return {}
    versions = {n: ctx.secret_versions.get(n, "") for n in wanted}
    return {names.ANNOTATION_SECRETS_HASH: content_hash(versions)[:16]}


def config_hash_annotation(*objects: JsonObject) -> dict[str, str]:
    """Pod-template annotation that changes when rendered, mounted config changes."""
    return {names.ANNOTATION_CONFIG_HASH: content_hash([o.get("data") for o in objects])[:16]}


def data_stateful_set(
    ctx: RenderContext,
    *,
    fields: PodFields,
    subcommand: str,
    flags: list[str],
    names_: tuple[str, str],
    labels: dict[str, str],
    data: DataVolume,
    object_storage_config: SecretKeySelector | None,
    ports: list[tuple[str, int]],
    env: list[JsonObject] | None = None,
    termination_grace_period: int | None = None,
    disruption_budget: bool = False,
    secret_files: list[ObjectStorage] | None = None,
    component: str | None = None,
) -> list[JsonObject]:
    """A Thanos component with a data volume (Store Gateway, Compact, Receive ingestors, Ruler): one
    container, a StatefulSet whose pod template hashes the objstore Secret it reads at start-up
    (when there is one; its ``--objstore.config-file`` flag is added here), and the headless
    Service that governs it."""
    sts, svc = names_
    objstore = object_storage(object_storage_config) if object_storage_config is not None else None
    if objstore is not None:
        flags = [*flags, objstore.flag]
    mounts, volumes, secret_names = [data.mount], list(data.volumes), []
    for mounted in [*([objstore] if objstore is not None else []), *(secret_files or [])]:
        if mounted.mount not in mounts:  # one Secret may hold several keys we read
            mounts.append(mounted.mount)
            volumes.append(mounted.volume)
        secret_names.append(mounted.secret_name)
    container = thanos_container(
        ctx,
        fields,
        subcommand=subcommand,
        flags=flags,
        env=env,
        ports=[container_port(name, port) for name, port in ports],
        volume_mounts=mounts,
        component=component,
    )
    template = pod_template(
        labels=labels,
        annotations=secrets_hash_annotation(ctx, secret_names),
        fields=fields,
        containers=[container],
        volumes=volumes,
        termination_grace_period=termination_grace_period,
    )
    return [
        stateful_set(
            ctx,
            name=sts,
            service_name=svc,
            labels=labels,
            replica_count=replicas(fields),
            template=template,
            claims=data.claims,
        ),
        headless_service(ctx, name=svc, labels=labels, ports=ports),
        *([pod_disruption_budget(ctx, name=sts, labels=labels)] if disruption_budget else []),
    ]
