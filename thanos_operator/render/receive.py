"""Thanos Receive in split mode: one router Deployment (RouterOnly: a hashring, no local
endpoint) in front of one ingestor StatefulSet per ``ingestors[]`` entry (IngestorOnly: a local
endpoint, no hashring), plus the hashrings ConfigMap and headless Services.

Hashrings: every ingestor with ``tenants`` is its own hashring, in spec order; all soft-tenant
ingestors are merged into ONE catch-all hashring placed last. Thanos sends an unmatched tenant
to the first hashring without tenants, so PaodinMonitoring's one-ring-per-soft-ingestor left
every soft ingestor but the first idle.

Ring membership follows readiness: a ring lists the Ready pods of its ingestors (from the
Endpoints of each ingestor Service), by ordinal, and only ordinals below the group's
``replicas`` (so a scale-down takes a pod out of the ring as soon as the spec changes, before
it starts flushing). A ring whose pods are all NotReady stays in the file with no endpoints:
its tenants get "insufficient nodes" errors (Prometheus retries them) instead of being sent to
another ring, and the file is never ``[]``, which Thanos refuses. A group with no Endpoints
object yet (and the offline render) gets its static membership, pod-0..replicas-1. The routers
re-read the file in place (no restart).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from thanos_operator import names
from thanos_operator.models import Receive, ReceiveIngestor, ReceiveRouter
from thanos_operator.render.common import (
    POD_NAME_ENV,
    JsonObject,
    RenderContext,
    component_labels,
    config_map,
    container_port,
    data_stateful_set,
    data_volume,
    deployment,
    headless_service,
    log_args,
    pod_disruption_budget,
    pod_template,
    replicas,
    thanos_container,
)

SOFT_HASHRING = "softs"
# Receive flushes its head block and uploads it on shutdown; 30 s (the Kubernetes default) cuts
# that short and loses data on every rollout. kube-thanos gives ingestors 900 s.
INGESTOR_TERMINATION_GRACE_SECONDS = 900

_PORTS = [("grpc", names.GRPC_PORT), ("http", names.HTTP_PORT), ("remote-write", names.REMOTE_WRITE_PORT)]


def _container_ports() -> list[JsonObject]:
    return [container_port(n, p) for n, p in _PORTS]


def ingestor_endpoints(
    t: str, ingestor: ReceiveIngestor, ready_pods: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The ring members of one group: its Ready pods when known, else pod-0..replicas-1."""
    sts, svc = names.ingestor(t, ingestor.name), names.ingestor_service(t, ingestor.name)
    ordinals = list(range(replicas(ingestor)))
    if ready_pods is not None and ingestor.name in ready_pods:
        ready = set(ready_pods[ingestor.name])
        ordinals = [i for i in ordinals if f"{sts}-{i}" in ready]
    return [f"{sts}-{i}.{svc}:{names.GRPC_PORT}" for i in ordinals]


def hashrings(
    t: str, receive: Receive, ready_pods: Mapping[str, Sequence[str]] | None = None
) -> list[JsonObject]:
    ingestors = receive.ingestors or []
    rings: list[JsonObject] = []
    for ingestor in ingestors:
        if ingestor.tenants and replicas(ingestor) > 0:
            rings.append(
                {
                    "hashring": ingestor.name,
                    "tenants": sorted(set(ingestor.tenants)),
                    "endpoints": ingestor_endpoints(t, ingestor, ready_pods),
                }
            )
    soft = [i for i in ingestors if not i.tenants]
    if any(replicas(i) > 0 for i in soft):
        ring_name = soft[0].name if len(soft) == 1 else SOFT_HASHRING
        endpoints = [e for i in soft for e in ingestor_endpoints(t, i, ready_pods)]
        rings.append({"hashring": ring_name, "endpoints": endpoints})
    return rings


def _tenant_flags(router: ReceiveRouter) -> list[str]:
    flags = []
    if router.tenant_header:
        flags.append(f"--receive.tenant-header={router.tenant_header}")
    if router.default_tenant_id:
        flags.append(f"--receive.default-tenant-id={router.default_tenant_id}")
    if router.tenant_label_name:
        flags.append(f"--receive.tenant-label-name={router.tenant_label_name}")
    return flags


def _common_flags() -> list[str]:
    return [
        f"--grpc-address=0.0.0.0:{names.GRPC_PORT}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        f"--remote-write.address=0.0.0.0:{names.REMOTE_WRITE_PORT}",
        f'--label={names.REPLICA_LABEL}="$(NAME)"',
    ]


def render_router(ctx: RenderContext, receive: Receive) -> list[JsonObject]:
    t, defaults, router = ctx.name, ctx.thanos.spec.default_fields, receive.router
    labels = component_labels(ctx, "receive", **{names.LABEL_RECEIVE_TYPE: "router"})
    hashrings_json = json.dumps(hashrings(t, receive, ctx.ready_pods), indent=2, sort_keys=True) + "\n"
    hashrings_config = config_map(
        ctx, name=names.router_hashrings(t), labels=labels, data={names.HASHRINGS_FILE: hashrings_json}
    )
    flags = [
        *_common_flags(),
        f"--receive.hashrings-file={names.HASHRINGS_DIR}/{names.HASHRINGS_FILE}",
        *_tenant_flags(router),
        *log_args(router, defaults),
    ]
    if router.replication_factor is not None:
        flags.append(f"--receive.replication-factor={router.replication_factor}")
    container = thanos_container(
        ctx,
        router,
        subcommand="receive",
        component="receive-router",
        flags=flags,
        env=[POD_NAME_ENV],
        ports=_container_ports(),
        volume_mounts=[{"name": "hashrings-config", "mountPath": names.HASHRINGS_DIR, "readOnly": True}],
    )
    # No hash of the hashrings in the pod template: membership now follows pod readiness, and
    # rolling every router on each readiness change would churn the write path. Thanos watches
    # the file; the kubelet updates the ConfigMap volume in place (within its sync period plus
    # the ConfigMap cache TTL, about a minute by default), so routers converge on the same ring.
    template = pod_template(
        labels=labels,
        annotations={},
        fields=router,
        containers=[container],
        volumes=[{"name": "hashrings-config", "configMap": {"name": names.router_hashrings(t)}}],
    )
    return [
        hashrings_config,
        deployment(
            ctx, name=names.router(t), labels=labels, replica_count=replicas(router), template=template
        ),
        headless_service(ctx, name=names.router_service(t), labels=labels, ports=_PORTS),
        pod_disruption_budget(ctx, name=names.router(t), labels=labels),
    ]


def render_ingestor(ctx: RenderContext, receive: Receive, ingestor: ReceiveIngestor) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    sts, svc = names.ingestor(t, ingestor.name), names.ingestor_service(t, ingestor.name)
    labels = component_labels(
        ctx, "receive", **{names.LABEL_RECEIVE_TYPE: "ingestor", names.LABEL_INGESTOR_NAME: ingestor.name}
    )
    data = data_volume(sts, ingestor.data_volume)
    flags = [
        *_common_flags(),
        f"--receive.local-endpoint=$(NAME).{svc}:{names.GRPC_PORT}",
        f"--tsdb.path={names.DATA_DIR}",
        *_tenant_flags(receive.router),
        *log_args(ingestor, defaults),
    ]
    if ingestor.local_tsdb_retention:
        flags.append(f"--tsdb.retention={ingestor.local_tsdb_retention}")
    return data_stateful_set(
        ctx,
        fields=ingestor,
        subcommand="receive",
        component="receive-ingestor",
        flags=flags,
        names_=(sts, svc),
        labels=labels,
        data=data,
        object_storage_config=ingestor.object_storage_config,
        ports=_PORTS,
        env=[POD_NAME_ENV],
        termination_grace_period=INGESTOR_TERMINATION_GRACE_SECONDS,
        disruption_budget=True,
    )


def render_receive(ctx: RenderContext, receive: Receive) -> list[JsonObject]:
    objects = render_router(ctx, receive)
    for ingestor in receive.ingestors or []:
        objects += render_ingestor(ctx, receive, ingestor)
    return objects
