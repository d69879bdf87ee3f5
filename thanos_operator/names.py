"""Names, labels and well-known constants of everything the operator creates.

Object names, labels and ports follow PaodinMonitoring (``<t>-query``,
``<t>-receive-ingestor-<name>``, ``app.kubernetes.io/managed-by: <t>`` ...) so objects it
created are adopted in place. The labels double as workload selectors (immutable once a
Deployment/StatefulSet exists) and as the pruning selector of the reconciler.
"""

from __future__ import annotations

import re

from thanos_operator.group import API_GROUP

DEFAULT_THANOS_IMAGE = "quay.io/thanos/thanos:v0.37.2"
DEFAULT_ENVOY_IMAGE = "envoyproxy/envoy:v1.40.0"

GRPC_PORT = 10901
HTTP_PORT = 10902
REMOTE_WRITE_PORT = 19291

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_RECEIVE_TYPE = "receive.type"
LABEL_INGESTOR_NAME = "ingestor.name"
PART_OF = "thanos"

# Annotations we own. The applied hash lets the reconciler skip writes in steady state.
ANNOTATION_APPLIED_HASH = f"{API_GROUP}/applied-hash"
ANNOTATION_CONFIG_HASH = f"{API_GROUP}/config-hash"
ANNOTATION_SECRETS_HASH = f"{API_GROUP}/secrets-hash"

REPLICA_LABEL = "receive_replica"
PROMETHEUS_REPLICA_LABEL = "prometheus_replica"

DATA_DIR = "/thanos"
HASHRINGS_DIR = "/etc/thanos"
HASHRINGS_FILE = "hashrings.json"
SECRETS_DIR = "/etc/thanos/secrets"
ENVOY_CONFIG_DIR = "/etc/envoy/config"
ENVOY_STORES_DIR = "/etc/envoy/stores"


def owner_labels(thanos_name: str) -> dict[str, str]:
    """The labels every child carries; also the selector the reconciler prunes by."""
    return {LABEL_MANAGED_BY: thanos_name, LABEL_PART_OF: PART_OF}


def query(t: str) -> str:
    return f"{t}-query"


def query_service(t: str) -> str:
    return f"{t}-query-operated"


def query_proxy_config(t: str) -> str:
    return f"{t}-query-proxy-config"


def query_frontend(t: str) -> str:
    return f"{t}-query-frontend"


def query_frontend_service(t: str) -> str:
    return f"{t}-query-frontend-operated"


def router(t: str) -> str:
    return f"{t}-receive-router"


def router_service(t: str) -> str:
    return f"{t}-receive-router-operated"


def router_hashrings(t: str) -> str:
    return f"{t}-receive-router-hashrings-config"


def ingestor(t: str, name: str) -> str:
    return f"{t}-receive-ingestor-{name}"


def ingestor_service(t: str, name: str) -> str:
    return f"{ingestor(t, name)}-operated"


def store_gateway(t: str, partition: str = "") -> str:
    return f"{t}-storegateway{partition}"


def store_gateway_service(t: str, partition: str = "") -> str:
    return f"{t}-storegateway{partition}-operated"


LABEL_STORE_PARTITION = "store.partition"


def ruler(t: str) -> str:
    return f"{t}-ruler"


def ruler_service(t: str) -> str:
    return f"{t}-ruler-operated"


def ruler_rule_files(t: str, index: int) -> str:
    """The ConfigMaps holding the rule files rendered from PrometheusRule objects."""
    return f"{t}-ruler-rulefiles-{index}"


RULES_DIR = "/etc/thanos/rules"
RULER_REPLICA_LABEL = "ruler_replica"


def compact(t: str) -> str:
    return f"{t}-compact"


def compact_service(t: str) -> str:
    return f"{t}-compact-operated"


# -- limits of derived names ------------------------------------------------------------------------
# A Service name is a DNS-1035 label (at most 63 characters, starting with a letter). A
# StatefulSet's pods carry the label ``controller-revision-hash: <name>-<10 characters>``, and a
# label value has at most 63 characters, so a StatefulSet name longer than 52 characters is
# accepted by the API server but its pods can never be created. Deployments and ConfigMaps
# are DNS subdomains (253); none of ours comes close, but they are checked the same way.
SERVICE_NAME_MAX = 63
STATEFUL_SET_NAME_MAX = 52
OBJECT_NAME_MAX = 253
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_problem(kind: str, name: str) -> str | None:
    """Why the API server (or the StatefulSet controller) cannot use ``name`` for ``kind``."""
    if kind == "Service":
        if len(name) > SERVICE_NAME_MAX:
            return (
                f"Service name {name!r} is {len(name)} characters; at most {SERVICE_NAME_MAX} "
                "(DNS-1035 label)"
            )
        if not _DNS_1035.match(name):
            return f"Service name {name!r} must start with a letter (DNS-1035 label)"
    elif kind == "StatefulSet" and len(name) > STATEFUL_SET_NAME_MAX:
        return (
            f"StatefulSet name {name!r} is {len(name)} characters; at most {STATEFUL_SET_NAME_MAX}, "
            "else its pods cannot be created (their controller-revision-hash label would exceed 63)"
        )
    elif len(name) > OBJECT_NAME_MAX:
        return f"{kind} name {name!r} is {len(name)} characters; at most {OBJECT_NAME_MAX}"
    return None


# -- what the operator sets in a Thanos container (escape hatches may not override it) ----------
# Every flag any component is rendered with; tests/golden/thanos/test_flags.py checks that each
# rendered flag is listed here, so the list cannot fall behind the renderer. Repeatable flags
# users legitimately add more of (--label, --selector-label, --endpoint,
# --query.replica-label, --deduplication.replica-label) are not listed.
MANAGED_FLAGS = frozenset(
    {
        "data-dir",
        "index-cache.config",
        "index-cache.config-file",
        "selector.relabel-config",
        "store.caching-bucket.config-file",
        "downsampling.disable",
        "eval-interval",
        "rule-file",
        "alertmanagers.url",
        "labels.response-cache-config",
        "labels.response-cache-config-file",
        "query-frontend.downstream-url",
        "query-range.response-cache-config",
        "query-range.response-cache-config-file",
        "query-range.split-interval",
        "query.auto-downsampling",
        "grpc-address",
        "http-address",
        "log.format",
        "log.level",
        "min-time",
        "max-time",
        "objstore.config-file",
        "receive.default-tenant-id",
        "receive.hashrings-file",
        "receive.local-endpoint",
        "receive.replication-factor",
        "receive.tenant-header",
        "receive.tenant-label-name",
        "remote-write.address",
        "retention.resolution-1h",
        "retention.resolution-5m",
        "retention.resolution-raw",
        "tsdb.path",
        "tsdb.retention",
        "wait",
    }
)
REPEATABLE_RENDERED_FLAGS = frozenset(
    {"label", "selector-label", "endpoint", "query.replica-label", "deduplication.replica-label", "query"}
)
MANAGED_ENV = frozenset({"NAME"})
MANAGED_VOLUMES = frozenset({"tsdb", "hashrings-config", "proxy-config"})
MANAGED_VOLUME_PREFIXES = ("secret-", "store-", "rules-", "prometheus-rules-")
MANAGED_MOUNT_PATHS = (DATA_DIR, HASHRINGS_DIR, "/etc/envoy")
