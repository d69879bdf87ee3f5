"""Store Gateway and Compact: StatefulSets that read the bucket, with their headless Services.

Both read the objstore Secret only at start-up, so its resourceVersion is hashed into the pod
template. Unlike PaodinMonitoring: the store StatefulSet has a ``serviceName``, Compact honours
``replicas``, the data dir is passed without literal quotes, ``--retention.resolution-1h`` comes
from ``retention1h`` and ``--downsampling.disable`` is a plain boolean flag.
"""

from __future__ import annotations

import json

from thanos_operator import names
from thanos_operator.models import CacheConfig, Compact, StoreGateway, TimeRange, store_partition_suffixes
from thanos_operator.render.common import (
    JsonObject,
    ObjectStorage,
    RenderContext,
    component_labels,
    data_stateful_set,
    data_volume,
    log_args,
    object_storage,
)


def shard_relabel_config(shard: int, shards: int) -> str:
    """Keep the blocks whose ``__block_id`` hashes to ``shard`` (of ``shards``), as kube-thanos does."""
    return json.dumps(
        [
            {
                "action": "hashmod",
                "source_labels": ["__block_id"],
                "target_label": "shard",
                "modulus": shards,
            },
            {"action": "keep", "source_labels": ["shard"], "regex": str(shard)},
        ],
        separators=(",", ":"),
    )


def cache_flags(flag: str, cache: CacheConfig | None) -> tuple[list[str], list[ObjectStorage]]:
    if cache is None:
        return [], []
    if cache.config_secret is not None:
        mounted = object_storage(cache.config_secret)
        return [f"--{flag}-file={mounted.flag.partition('=')[2]}"], [mounted]
    return [f'--{flag}={{"type": "IN-MEMORY", "config": {{"max_size": "{cache.max_size}"}}}}'], []


def render_store_gateway(ctx: RenderContext, store: StoreGateway) -> list[JsonObject]:
    """One StatefulSet per time range and hash shard (just ``<t>-storegateway`` by default)."""
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    assert store.object_storage_config is not None  # enforced by ThanosSpec validation
    common_flags = [
        f"--data-dir={names.DATA_DIR}",
        f"--grpc-address=0.0.0.0:{names.GRPC_PORT}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        *log_args(store, defaults),
    ]
    index_flags, secret_files = cache_flags("index-cache.config", store.index_cache)
    common_flags += index_flags
    if store.bucket_cache_config is not None:
        bucket = object_storage(store.bucket_cache_config)
        common_flags.append(f"--store.caching-bucket.config-file={bucket.flag.partition('=')[2]}")
        secret_files.append(bucket)
    ranges = store.time_ranges or [TimeRange(min_time=store.min_time, max_time=store.max_time)]
    shards = store.shards if store.shards and store.shards > 1 else 1
    suffixes = iter(store_partition_suffixes(store))
    objects: list[JsonObject] = []
    for time_range in ranges:
        for shard in range(shards):
            suffix = next(suffixes)
            sts, svc = names.store_gateway(t, suffix), names.store_gateway_service(t, suffix)
            extra = {names.LABEL_STORE_PARTITION: suffix.removeprefix("-")} if suffix else {}
            flags = list(common_flags)
            if time_range.min_time:
                flags.append(f"--min-time={time_range.min_time}")
            if time_range.max_time:
                flags.append(f"--max-time={time_range.max_time}")
            if shards > 1:
                flags.append(f"--selector.relabel-config={shard_relabel_config(shard, shards)}")
            objects += data_stateful_set(
                ctx,
                fields=store,
                subcommand="store",
                flags=flags,
                names_=(sts, svc),
                labels=component_labels(ctx, "storegateway", **extra),
                data=data_volume(sts, store.data_volume),
                object_storage_config=store.object_storage_config,
                ports=[("grpc", names.GRPC_PORT), ("http", names.HTTP_PORT)],
                disruption_budget=True,
                secret_files=secret_files,
            )
    return objects


def render_compact(ctx: RenderContext, compact: Compact) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    sts, svc = names.compact(t), names.compact_service(t)
    labels = component_labels(ctx, "compact")
    data = data_volume(sts, compact.data_volume)
    assert compact.object_storage_config is not None  # enforced by ThanosSpec validation
    flags = [
        "--wait",
        f"--data-dir={names.DATA_DIR}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        f"--deduplication.replica-label={names.REPLICA_LABEL}",
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
        object_storage_config=compact.object_storage_config,
        ports=[("http", names.HTTP_PORT)],
    )
