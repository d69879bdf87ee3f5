"""Thanos Query: Deployment ``<t>-query`` (+ envoy ``proxy`` sidecar), headless Service, proxy config.

Query reaches every StoreAPI through ``--endpoint`` args (PaodinMonitoring used the deprecated
``--store.sd-files``): plain stores directly, in-cluster ingestors and the store gateway through
``dns+`` lookups of their headless Services (scaling them does not roll Query), and each
secured store through its own 127.0.0.1 listener of the envoy sidecar.
"""

from __future__ import annotations

from thanos_operator import envoy, names
from thanos_operator.models import Query, QueryStores, split_host_port, store_partition_suffixes
from thanos_operator.render.common import (
    DEFAULT_CONTAINER_SECURITY_CONTEXT,
    JsonObject,
    RenderContext,
    component_labels,
    config_hash_annotation,
    container_port,
    container_resources,
    copy_json,
    deployment,
    headless_service,
    log_args,
    pod_disruption_budget,
    pod_template,
    replicas,
    secret,
    thanos_container,
)


def proxied_endpoints(stores: list[QueryStores]) -> list[tuple[int, envoy.ProxiedEndpoint]]:
    """(store index among secured stores, endpoint) for every address behind envoy, in order."""
    result: list[tuple[int, envoy.ProxiedEndpoint]] = []
    secured = [s for s in stores if s.secured]
    for store_index, store in enumerate(secured):
        for address in store.addresses:
            host, port = split_host_port(address)
            result.append(
                (
                    store_index,
                    envoy.ProxiedEndpoint(
                        index=len(result),
                        host=host,
                        port=port,
                        server_name=store.server_name or host,
                        credentials_dir=f"{names.ENVOY_STORES_DIR}/{store_index}",
                        client_cert=store.client_cert_secret is not None,
                        bearer_token=store.bearer_token_secret is not None,
                        resolve_all=address.startswith("dns+"),
                    ),
                )
            )
    return result


def _credentials_volume(store_index: int, store: QueryStores) -> JsonObject:
    items_by_secret: dict[str, list[JsonObject]] = {}

    def add(secret_name: str, key: str, path: str) -> None:
        items_by_secret.setdefault(secret_name, []).append({"key": key, "path": path})

    assert store.ca_secret is not None
    add(store.ca_secret.name, store.ca_secret.key, envoy.CA_FILE)
    if store.client_cert_secret is not None:
        add(store.client_cert_secret.name, store.client_cert_secret.cert_key, envoy.CERT_FILE)
        add(store.client_cert_secret.name, store.client_cert_secret.key_key, envoy.KEY_FILE)
    if store.bearer_token_secret is not None:
        add(store.bearer_token_secret.name, store.bearer_token_secret.key, envoy.TOKEN_FILE)
    return {
        "name": f"store-{store_index}-credentials",
        "projected": {
            "sources": [{"secret": {"name": n, "items": items}} for n, items in items_by_secret.items()],
        },
    }


def render_query(ctx: RenderContext, query: Query) -> list[JsonObject]:
    t, defaults = ctx.name, ctx.thanos.spec.default_fields
    labels = component_labels(ctx, "query")
    stores = query.stores or []
    proxied = proxied_endpoints(stores)

    flags = [
        f"--grpc-address=0.0.0.0:{names.GRPC_PORT}",
        f"--http-address=0.0.0.0:{names.HTTP_PORT}",
        f"--query.replica-label={names.PROMETHEUS_REPLICA_LABEL}",
        f"--query.replica-label={names.REPLICA_LABEL}",
        *log_args(query, defaults),
    ]
    flags += [f"--endpoint={a}" for s in stores if not s.secured for a in s.addresses]
    flags += [f"--endpoint=127.0.0.1:{envoy.listen_port(e.index)}" for _, e in proxied]
    receive = ctx.thanos.spec.receive
    for ingestor in (receive.ingestors or []) if receive is not None else []:
        flags.append(f"--endpoint=dns+{names.ingestor_service(t, ingestor.name)}:{names.GRPC_PORT}")
    if ctx.thanos.spec.store_gateway is not None:
        for suffix in store_partition_suffixes(ctx.thanos.spec.store_gateway):
            flags.append(f"--endpoint=dns+{names.store_gateway_service(t, suffix)}:{names.GRPC_PORT}")
    flags += [f'--selector-label={k}="{v}"' for k, v in sorted((query.selector_labels or {}).items())]
    if ctx.thanos.spec.ruler is not None:
        flags.append(f"--endpoint=dns+{names.ruler_service(t)}:{names.GRPC_PORT}")
    if ctx.thanos.spec.query_frontend is not None:
        flags.append("--query.auto-downsampling")  # the frontend's split ranges use downsampled data

    containers = [
        thanos_container(
            ctx,
            query,
            subcommand="query",
            flags=flags,
            ports=[container_port("grpc", names.GRPC_PORT), container_port("http", names.HTTP_PORT)],
        )
    ]
    volumes: list[JsonObject] = []
    objects: list[JsonObject] = []
    annotations: dict[str, str] = {}
    if proxied:
        files = envoy.envoy_files(
            [e for _, e in proxied], config_dir=names.ENVOY_CONFIG_DIR, node_id=f"{ctx.namespace}/{t}"
        )
        proxy_config = secret(ctx, name=names.query_proxy_config(t), labels=labels, data=files)
        objects.append(proxy_config)
        annotations.update(config_hash_annotation(proxy_config))
        envoy_spec = query.envoy
        mounts: list[JsonObject] = [
            {"name": "proxy-config", "mountPath": names.ENVOY_CONFIG_DIR, "readOnly": True}
        ]
        volumes.append({"name": "proxy-config", "secret": {"secretName": names.query_proxy_config(t)}})
        for store_index, store in enumerate(s for s in stores if s.secured):
            volume = _credentials_volume(store_index, store)
            volumes.append(volume)
            mounts.append(
                {
                    "name": volume["name"],
                    "mountPath": f"{names.ENVOY_STORES_DIR}/{store_index}",
                    "readOnly": True,
                }
            )
        containers.append(
            {
                "name": "proxy",
                "image": (envoy_spec.image if envoy_spec and envoy_spec.image else ctx.images.envoy),
                "args": [
                    "-c",
                    f"{names.ENVOY_CONFIG_DIR}/{envoy.BOOTSTRAP_FILE}",
                    "--concurrency",
                    str(envoy.CONCURRENCY),
                ],
                "ports": [container_port("proxy-ready", envoy.READY_PORT)],
                "readinessProbe": {
                    "httpGet": {"path": envoy.READY_PATH, "port": "proxy-ready", "scheme": "HTTP"},
                    "periodSeconds": 5,
                    "failureThreshold": 3,
                },
                "resources": container_resources(
                    envoy_spec.resources if envoy_spec else None, component="envoy"
                ),
                "securityContext": copy_json(DEFAULT_CONTAINER_SECURITY_CONTEXT),
                "volumeMounts": sorted(mounts, key=lambda m: m["mountPath"]),
            }
        )

    template = pod_template(
        labels=labels, annotations=annotations, fields=query, containers=containers, volumes=volumes
    )
    objects.append(
        deployment(ctx, name=names.query(t), labels=labels, replica_count=replicas(query), template=template)
    )
    objects.append(
        headless_service(
            ctx,
            name=names.query_service(t),
            labels=labels,
            ports=[("grpc", names.GRPC_PORT), ("http", names.HTTP_PORT)],
        )
    )
    objects.append(pod_disruption_budget(ctx, name=names.query(t), labels=labels))
    return objects
