"""Thanos Query Frontend: a Deployment in front of Query that splits range queries by day,
retries them and caches their responses, plus its headless Service and disruption budget.

The response cache is in memory by default (``IN-MEMORY``, passed inline); memcached and redis
are configured by a Thanos cache config kept in a Secret, mounted and passed by file (its
resourceVersion rolls the frontend, which reads it only at start). The same cache serves the
labels/series API. Query gets ``--query.auto-downsampling`` so long ranges the frontend splits
are served from downsampled blocks.
"""

from __future__ import annotations

from thanos_operator import names
from thanos_operator.models import QueryFrontend
from thanos_operator.render.common import (
    JsonObject,
    RenderContext,
    component_labels,
    container_port,
    deployment,
    headless_service,
    log_args,
    object_storage,
    pod_disruption_budget,
    pod_template,
    replicas,
    secrets_hash_annotation,
    thanos_container,
)


def in_memory_cache_config(max_size: str) -> str:
    return f'{{"type": "IN-MEMORY", "config": {{"max_size": "{max_size}"}}}}'


def render_query_frontend(ctx: RenderContext, frontend: QueryFrontend) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    labels = component_labels(ctx, "query-frontend")
    downstream = f"http://{names.query_service(t)}.{ctx.namespace}.svc:{names.HTTP_PORT}"
    flags = [
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        f"--query-frontend.downstream-url={downstream}",
        *log_args(frontend, defaults),
    ]
    if frontend.split_interval:
        flags.append(f"--query-range.split-interval={frontend.split_interval}")
    mounts: list[JsonObject] = []
    volumes: list[JsonObject] = []
    secret_names: list[str] = []
    cache = frontend.cache
    if cache.config_secret is not None:
        mounted = object_storage(cache.config_secret)  # the same read-only Secret-key mount
        path = mounted.flag.partition("=")[2]
        flags += [
            f"--query-range.response-cache-config-file={path}",
            f"--labels.response-cache-config-file={path}",
        ]
        mounts.append(mounted.mount)
        volumes.append(mounted.volume)
        secret_names.append(mounted.secret_name)
    else:
        config = in_memory_cache_config(cache.max_size)
        flags += [f"--query-range.response-cache-config={config}", f"--labels.response-cache-config={config}"]
    container = thanos_container(
        ctx,
        frontend,
        subcommand="query-frontend",
        flags=flags,
        ports=[container_port("http", names.HTTP_PORT)],
        volume_mounts=mounts,
    )
    template = pod_template(
        labels=labels,
        annotations=secrets_hash_annotation(ctx, secret_names),
        fields=frontend,
        containers=[container],
        volumes=volumes,
    )
    name = names.query_frontend(t)
    return [
        deployment(ctx, name=name, labels=labels, replica_count=replicas(frontend), template=template),
        headless_service(
            ctx, name=names.query_frontend_service(t), labels=labels, ports=[("http", names.HTTP_PORT)]
        ),
        pod_disruption_budget(ctx, name=name, labels=labels),
    ]
