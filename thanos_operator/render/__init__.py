"""Pure rendering: a validated ``Thanos`` -> the list of objects it wants in the cluster.

``render`` is deterministic: the same CR (and the same referenced-Secret versions) always gives
byte-identical objects (sorted args, keys and object order). Each object carries an
``applied-hash`` annotation over its own content, which is what the reconciler compares with
the live object to decide whether a write is needed at all.

Objects come out in apply order: config (ConfigMaps, Secrets) before the Services and
workloads that use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from thanos_operator import names
from thanos_operator.models import Thanos
from thanos_operator.render.common import (
    DefaultImages,
    JsonObject,
    RenderContext,
    content_hash,
    service_monitor,
)
from thanos_operator.render.frontend import render_query_frontend
from thanos_operator.render.query import render_query
from thanos_operator.render.receive import render_receive
from thanos_operator.render.ruler import render_ruler
from thanos_operator.render.storage import render_compact, render_store_gateway

# Every kind the operator may create: the reconciler lists these to prune what is unwanted.
OWNED_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)
# Rendered only while the API server serves them (the reconciler checks discovery every pass).
OPTIONAL_KINDS = frozenset({"ServiceMonitor"})
_KIND_ORDER = {kind: i for i, (_, kind) in enumerate(OWNED_KINDS)}

__all__ = ["OPTIONAL_KINDS", "OWNED_KINDS", "DefaultImages", "referenced_secrets", "render"]


def _stamp(obj: JsonObject) -> JsonObject:
    obj["metadata"]["annotations"] = {names.ANNOTATION_APPLIED_HASH: content_hash(obj)[:32]}
    return obj


def render(
    thanos: Thanos,
    *,
    secret_versions: Mapping[str, str] | None = None,
    ready_pods: Mapping[str, Sequence[str]] | None = None,
    images: DefaultImages | None = None,
    service_monitors: bool = False,
    rule_config_maps: Mapping[str, Mapping[str, str]] | None = None,
    prometheus_rules: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> list[JsonObject]:
    """``ready_pods``: ingestor name -> names of its Ready pods (see ``render.receive.hashrings``);
    ``images``: the operator's default images (``--thanos-default-image``/``--envoy-default-image``);
    ``rule_config_maps`` / ``prometheus_rules``: what the ruler's ``ruleSelector`` selects."""
    ctx = RenderContext(
        thanos=thanos,
        images=images or DefaultImages(),
        rule_config_maps=dict(rule_config_maps or {}),
        prometheus_rules=dict(prometheus_rules or {}),
        secret_versions=dict(secret_versions or {}),
        ready_pods={k: tuple(v) for k, v in (ready_pods or {}).items()},
    )
    spec = thanos.spec
    objects: list[JsonObject] = []
    if spec.compact is not None:
        objects += render_compact(ctx, spec.compact)
    if spec.store_gateway is not None:
        objects += render_store_gateway(ctx, spec.store_gateway)
    if spec.receive is not None:
        objects += render_receive(ctx, spec.receive)
    if spec.query is not None:
        objects += render_query(ctx, spec.query)
    if spec.query_frontend is not None:
        objects += render_query_frontend(ctx, spec.query_frontend)
    if spec.ruler is not None:
        objects += render_ruler(ctx, spec.ruler)
    if service_monitors:  # one per Service: every component serves /metrics on its http port
        objects += [service_monitor(ctx, service=o) for o in objects if o["kind"] == "Service"]
    objects.sort(key=lambda o: (_KIND_ORDER[o["kind"]], o["metadata"]["name"]))
    return [_stamp(o) for o in objects]


def referenced_secrets(thanos: Thanos) -> dict[str, bool]:
    """Secrets the CR references: name -> whether a change must roll pods (read at start-up).

    The objstore Secrets are read once by Thanos, so their versions are hashed into pod
    templates; the envoy credentials are re-read by envoy itself and never roll the Query pods.
    """
    spec = thanos.spec
    result: dict[str, bool] = {}
    for store in (spec.query.stores or []) if spec.query is not None else []:
        for ref in (store.ca_secret, store.client_cert_secret, store.bearer_token_secret):
            if ref is not None:
                result.setdefault(ref.name, False)
    selectors = [i.object_storage_config for i in (spec.receive.ingestors or [])] if spec.receive else []
    selectors += [c.object_storage_config for c in (spec.store_gateway, spec.compact) if c is not None]
    if spec.query_frontend is not None:
        selectors.append(spec.query_frontend.cache.config_secret)
    if spec.ruler is not None:
        selectors.append(spec.ruler.object_storage_config)
    if spec.store_gateway is not None:
        index_cache = spec.store_gateway.index_cache
        selectors += [
            index_cache.config_secret if index_cache else None,
            spec.store_gateway.bucket_cache_config,
        ]
    for selector in selectors:
        if selector is not None:
            result[selector.name] = True
    return dict(sorted(result.items()))
