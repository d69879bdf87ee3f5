"""Store Gateway and Compact: StatefulSets that read the bucket, with their headless Services.

Both read the objstore Secret only at start-up, so its resourceVersion is hashed into the pod
template. Unlike PaodinMonitoring: the store StatefulSet has a ``serviceName``, Compact honours
``replicas``, the data dir is passed without literal quotes, ``--retention.resolution-1h`` comes
from ``retention1h`` and ``--downsampling.disable`` is a plain boolean flag.
"""

from __future__ import annotations

from thanos_operator import names
from thanos_operator.models import Compact, StoreGateway
from thanos_operator.render.common import (
    JsonObject,
    RenderContext,
    component_labels,
    data_stateful_set,
    data_volume,
    log_args,
    object_storage,
)


def render_store_gateway(ctx: RenderContext, store: StoreGateway) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    sts, svc = names.store_gateway(t), names.store_gateway_service(t)
    labels = component_labels(ctx, "storegateway")
    data = data_volume(sts, store.data_volume)
    assert store.object_storage_config is not None  # enforced by ThanosSpec validation
    objstore = object_storage(store.object_storage_config)
    flags = [
        f"--data-dir={names.DATA_DIR}",
        f"--grpc-address=0.0.0.0:{names.GRPC_PORT}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        objstore.flag,
        *log_args(store, defaults),
    ]
    if store.min_time:
        flags.append(f"--min-time={store.min_time}")
    if store.max_time:
        flags.append(f"--max-time={store.max_time}")
    return data_stateful_set(
        ctx,
        fields=store,
        subcommand="store",
        flags=flags,
        names_=(sts, svc),
        labels=labels,
        data=data,
        objstore=objstore,
        ports=[("grpc", names.GRPC_PORT), ("http", names.HTTP_PORT)],
        disruption_budget=True,
    )


def render_compact(ctx: RenderContext, compact: Compact) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    sts, svc = names.compact(t), names.compact_service(t)
    labels = component_labels(ctx, "compact")
    data = data_volume(sts, compact.data_volume)
    assert compact.object_storage_config is not None  # enforced by ThanosSpec validation
    objstore = object_storage(compact.object_storage_config)
    flags = [
        "--wait",
        f"--data-dir={names.DATA_DIR}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        f"--deduplication.replica-label={names.REPLICA_LABEL}",
        objstore.flag,
        *log_args(compact, defaults),
    ]
    if compact.downsampling_disable:
        flags.append("--downsampling.disable")
    retention = compact.retention
    if retention is not None:
        for flag, value in (
            ("raw", retention.retention_raw),
            ("5m", retention.retention_5m),
            ("1h", retention.retention_1h),
        ):
            if value:
                flags.append(f"--retention.resolution-{flag}={value}")
    return data_stateful_set(
        ctx,
        fields=compact,
        subcommand="compact",
        flags=flags,
        names_=(sts, svc),
        labels=labels,
        data=data,
        objstore=objstore,
        ports=[("http", names.HTTP_PORT)],
    )
