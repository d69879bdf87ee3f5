"""Thanos Receive in split mode: one router Deployment (RouterOnly: a hashring, no local
endpoint) in front of one ingestor StatefulSet per ``ingestors[]`` entry (IngestorOnly: a local
endpoint, no hashring), plus the hashrings ConfigMap and headless Services.

Hashrings: every ingestor with ``tenants`` is its own hashring, in spec order; all soft-tenant
ingestors are merged into ONE catch-all hashring placed last. Thanos sends an unmatched tenant
to the first hashring without tenants, so PaodinMonitoring's one-ring-per-soft-ingestor left
every soft ingestor but the first idle.
"""

from __future__ import annotations

import json

from thanos_operator import names
from thanos_operator.models import Receive, ReceiveIngestor, ReceiveRouter
from thanos_operator.render.common import (
    POD_NAME_ENV,
    JsonObject,
    RenderContext,
    command_args,
    component_labels,
    config_hash_annotation,
    config_map,
    container_port,
    container_security_context,
    data_stateful_set,
    data_volume,
    deployment,
    headless_service,
    log_args,
    object_storage,
    pod_template,
    replicas,
    resolved_image,
    thanos_container,
)

SOFT_HASHRING = "softs"
# Receive flushes its head block and uploads it on shutdown; 30 s (the Kubernetes default) cuts
# that short and loses data on every rollout. kube-thanos gives ingestors 900 s.
INGESTOR_TERMINATION_GRACE_SECONDS = 900

_PORTS = [("grpc", names.GRPC_PORT), ("http", names.HTTP_PORT), ("remote-write", names.REMOTE_WRITE_PORT)]


def _container_ports() -> list[JsonObject]:
    return [container_port(n, p) for n, p in _PORTS]


def ingestor_endpoints(t: str, ingestor: ReceiveIngestor) -> list[str]:
    sts, svc = names.ingestor(t, ingestor.name), names.ingestor_service(t, ingestor.name)
    return [f"{sts}-{i}.{svc}:{names.GRPC_PORT}" for i in range(replicas(ingestor))]


def hashrings(t: str, receive: Receive) -> list[JsonObject]:
    ingestors = receive.ingestors or []
    rings: list[JsonObject] = []
    for ingestor in ingestors:
        if ingestor.tenants:
            endpoints = ingestor_endpoints(t, ingestor)
            if endpoints:
                rings.append(
                    {
                        "hashring": ingestor.name,
                        "tenants": sorted(set(ingestor.tenants)),
                        "endpoints": endpoints,
                    }
                )
    soft = [i for i in ingestors if not i.tenants]
    soft_endpoints = [e for i in soft for e in ingestor_endpoints(t, i)]
    if soft_endpoints:
        ring_name = soft[0].name if len(soft) == 1 else SOFT_HASHRING
        rings.append({"hashring": ring_name, "endpoints": soft_endpoints})
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
    hashrings_json = json.dumps(hashrings(t, receive), indent=2, sort_keys=True) + "\n"
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
        name="receive",
        image=resolved_image(router, defaults),
        args=command_args("receive", flags),
        env=[POD_NAME_ENV],
        ports=_container_ports(),
        resources=router.resources,
        volume_mounts=[{"name": "hashrings-config", "mountPath": names.HASHRINGS_DIR, "readOnly": True}],
        security_context=container_security_context(router),
    )
    # Thanos watches the hashrings file, but the kubelet refreshes a ConfigMap volume only after
    # its sync period, so routers would disagree on the ring for up to a minute; rolling the
    # routers (stateless) on a ring change gives every router the same ring.
    template = pod_template(
        labels=labels,
        annotations=config_hash_annotation(hashrings_config),
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
    objstore = None
    if ingestor.object_storage_config is not None:
        objstore = object_storage(ingestor.object_storage_config)
        flags.append(objstore.flag)
    return data_stateful_set(
        ctx,
        fields=ingestor,
        subcommand="receive",
        flags=flags,
        names_=(sts, svc),
        labels=labels,
        data=data,
        objstore=objstore,
        ports=_PORTS,
        env=[POD_NAME_ENV],
        termination_grace_period=INGESTOR_TERMINATION_GRACE_SECONDS,
    )


def render_receive(ctx: RenderContext, receive: Receive) -> list[JsonObject]:
    objects = render_router(ctx, receive)
    for ingestor in receive.ingestors or []:
        objects += render_ingestor(ctx, receive, ingestor)
    return objects
