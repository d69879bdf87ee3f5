"""Envoy configuration for the Query pod's ``proxy`` sidecar: plaintext in, TLS (+ mTLS + token) out.

Thanos Query dials one local plaintext (h2c) listener per secured store address on 127.0.0.1;
envoy forwards each to one upstream cluster over HTTP/2 + TLS, verifying the store's
certificate against its CA and name (SNI / SAN), optionally presenting a client certificate
and injecting ``Authorization: Bearer <token>``.

Credentials never appear in the config: every certificate, key and token is referenced by file
path through file-based SDS. Each SDS resource file watches the directory the credentials are
mounted from (``watched_directory``), so when the kubelet swaps a Secret volume's ``..data``
link the secret is re-read and new connections use it, without a restart. LDS and CDS are
file-based too and watch the config directory.

This module is pure: :func:`envoy_files` maps a description of the endpoints to file contents
(file name -> YAML text), deterministic byte for byte. The renderer puts those files in a
Secret; tests write them to a temporary directory and run the real envoy against them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

# File names inside a store's credentials directory (the projected Secret volume's item paths).
CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
TOKEN_FILE = "token"

BOOTSTRAP_FILE = "envoy.yaml"
LDS_FILE = "lds.yaml"
CDS_FILE = "cds.yaml"

_TLS_SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
_GENERIC_CREDENTIAL = "type.googleapis.com/envoy.extensions.http.injected_credentials.generic.v3.Generic"
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

# Hardening (docs/thanos.md "Envoy sidecar"):
# - worker threads: envoy defaults to one per host CPU; a sidecar gets a fixed, small number.
CONCURRENCY = 2
# - HTTP/2 PINGs on idle upstream connections, so a remote store behind a NAT or load balancer
#   that dropped the connection is noticed in seconds, not at the next query.
KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT = "30s", "10s"
# - a Series stream may stay silent while the remote store scans blocks: allow 10 minutes of
#   silence (Query's own --query.timeout defaults to 2 minutes), close idle connections after 1 h.
STREAM_IDLE_TIMEOUT, CONNECTION_IDLE_TIMEOUT = "600s", "3600s"
# - circuit breakers sized for Query's fan-out: --query.max-concurrent (20) x
#   --query.max-concurrent-select (4) concurrent streams per store, with ample headroom.
MAX_REQUESTS, MAX_PENDING, MAX_CONNECTIONS = 1024, 1024, 256
# - readiness: the admin endpoint stays on loopback; a listener on the pod IP answers /ready via
#   the health_check filter (200 while envoy is live, 503 while it drains or starts).
READY_PORT, READY_PATH = 9902, "/ready"


@dataclass(frozen=True)
class ProxiedEndpoint:
    """One remote StoreAPI address reached through envoy."""

    index: int  # position among all proxied endpoints: names the listener, cluster and port
    host: str  # DNS name or IP of the remote store
    port: int
    server_name: str  # SNI and the name the certificate must carry
    credentials_dir: str  # where ca.crt [tls.crt tls.key] [token] are mounted
    client_cert: bool
    bearer_token: bool
    resolve_all: bool = False  # dns+ prefix: balance over every A record (STRICT_DNS)

    @property
    def name(self) -> str:
        return f"store-{self.index}"


def listen_port(index: int, *, base_port: int = 11000) -> int:
    return base_port + index


def _file_sds(name: str, *, config_dir: str, watch_dir: str) -> dict[str, Any]:
    return {
        "name": name,
        "sds_config": {
            "resource_api_version": "V3",
            "path_config_source": {
                "path": f"{config_dir}/sds-{name}.yaml",
                "watched_directory": {"path": watch_dir},
            },
        },
    }


def _san_matcher(server_name: str) -> dict[str, Any]:
    try:
        ipaddress.ip_address(server_name)
        san_type = "IP_ADDRESS"
    except ValueError:
        san_type = "DNS"
    return {"san_type": san_type, "matcher": {"exact": server_name}}


def _listener(endpoint: ProxiedEndpoint, *, config_dir: str, base_port: int) -> dict[str, Any]:
    http_filters: list[dict[str, Any]] = []
    if endpoint.bearer_token:
        http_filters.append(
            {
                "name": "envoy.filters.http.credential_injector",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3"
                    ".CredentialInjector",
                    "overwrite": True,
                    "credential": {
                        "name": "envoy.http.injected_credentials.generic",
                        "typed_config": {
                            "@type": _GENERIC_CREDENTIAL,
                            "credential": _file_sds(
                                f"{endpoint.name}-token",
                                config_dir=config_dir,
                                watch_dir=endpoint.credentials_dir,
                            ),
                            "header": "Authorization",
                            "header_value_prefix": "Bearer ",
                        },
                    },
                },
            }
        )
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    return {
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": endpoint.name,
        "address": {
            "socket_address": {
                "address": "127.0.0.1",
                "port_value": listen_port(endpoint.index, base_port=base_port),
            }
        },
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": endpoint.name.replace("-", "_"),
                            # Thanos Query speaks gRPC over cleartext HTTP/2 (h2c) to the local listener.
                            "codec_type": "HTTP2",
                            "stream_idle_timeout": STREAM_IDLE_TIMEOUT,
                            "common_http_protocol_options": {"idle_timeout": CONNECTION_IDLE_TIMEOUT},
                            "http_filters": http_filters,
                            "route_config": {
                                "name": endpoint.name,
                                "virtual_hosts": [
                                    {
                                        "name": endpoint.name,
                                        "domains": ["*"],
                                        "routes": [
                                            {
                                                "match": {"prefix": "/"},
                                                "route": {
                                                    "cluster": endpoint.name,
                                                    "host_rewrite_literal": endpoint.server_name,
                                                    # Series calls are long server streams: no route timeout.
                                                    "timeout": "0s",
                                                },
                                            }
                                        ],
                                    }
                                ],
                            },
                        },
                    }
                ],
            }
        ],
    }


def _cluster(endpoint: ProxiedEndpoint, *, config_dir: str) -> dict[str, Any]:
    common_tls: dict[str, Any] = {
        "alpn_protocols": ["h2"],
        "combined_validation_context": {
            "default_validation_context": {
                "match_typed_subject_alt_names": [_san_matcher(endpoint.server_name)]
            },
            "validation_context_sds_secret_config": _file_sds(
                f"{endpoint.name}-ca", config_dir=config_dir, watch_dir=endpoint.credentials_dir
            ),
        },
    }
    if endpoint.client_cert:
        common_tls["tls_certificate_sds_secret_configs"] = [
            _file_sds(
                f"{endpoint.name}-client-cert", config_dir=config_dir, watch_dir=endpoint.credentials_dir
            )
        ]
    return {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": endpoint.name,
        "type": "STRICT_DNS" if endpoint.resolve_all else "LOGICAL_DNS",
        "connect_timeout": "10s",
        "dns_lookup_family": "V4_PREFERRED",
        "lb_policy": "ROUND_ROBIN",
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": MAX_CONNECTIONS,
                    "max_pending_requests": MAX_PENDING,
                    "max_requests": MAX_REQUESTS,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": endpoint.name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": endpoint.host, "port_value": endpoint.port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": CONNECTION_IDLE_TIMEOUT},
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": KEEPALIVE_INTERVAL, "timeout": KEEPALIVE_TIMEOUT}
                    }
                },
            }
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": endpoint.server_name,
                "common_tls_context": common_tls,
            },
        },
    }


def _readiness_listener(port: int) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": "readiness",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": "readiness",
                            "http_filters": [
                                {
                                    "name": "envoy.filters.http.health_check",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http"
                                        ".health_check.v3.HealthCheck",
                                        "pass_through_mode": False,
                                        "headers": [{"name": ":path", "string_match": {"exact": READY_PATH}}],
                                    },
                                },
                                {
                                    "name": "envoy.filters.http.router",
                                    "typed_config": {
                                        "@type": _ROUTER,
                                    },
                                },
                            ],
                            "route_config": {"name": "readiness", "virtual_hosts": []},
                        },
                    }
                ]
            }
        ],
    }


def _sds_files(endpoint: ProxiedEndpoint) -> dict[str, dict[str, Any]]:
    creds = endpoint.credentials_dir
    secrets: dict[str, dict[str, Any]] = {
        f"{endpoint.name}-ca": {
            "validation_context": {
                "trusted_ca": {"filename": f"{creds}/{CA_FILE}"},
                "watched_directory": {"path": creds},
            }
        }
    }
    if endpoint.client_cert:
        secrets[f"{endpoint.name}-client-cert"] = {
            "tls_certificate": {
                "certificate_chain": {"filename": f"{creds}/{CERT_FILE}"},
                "private_key": {"filename": f"{creds}/{KEY_FILE}"},
                "watched_directory": {"path": creds},
            }
        }
    if endpoint.bearer_token:
        secrets[f"{endpoint.name}-token"] = {
            "generic_secret": {"secret": {"filename": f"{creds}/{TOKEN_FILE}"}}
        }
    return {
        f"sds-{name}.yaml": {"resources": [{"@type": _TLS_SECRET, "name": name, **body}]}
        for name, body in secrets.items()
    }


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, width=1000)


def envoy_files(
    endpoints: Sequence[ProxiedEndpoint],
    *,
    config_dir: str,
    node_id: str,
    admin_port: int = 9901,
    base_port: int = 11000,
    ready_port: int = READY_PORT,
) -> dict[str, str]:
    """Every file envoy needs, by name (all live in ``config_dir``)."""
    bootstrap = {
        "node": {"cluster": "query-stores-proxy", "id": node_id},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {
            kind: {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": f"{config_dir}/{file}",
                    "watched_directory": {"path": config_dir},
                },
            }
            for kind, file in (("lds_config", LDS_FILE), ("cds_config", CDS_FILE))
        },
    }
    files = {
        BOOTSTRAP_FILE: _dump(bootstrap),
        LDS_FILE: _dump(
            {
                "resources": [
                    *(_listener(e, config_dir=config_dir, base_port=base_port) for e in endpoints),
                    _readiness_listener(ready_port),
                ]
            }
        ),
        CDS_FILE: _dump({"resources": [_cluster(e, config_dir=config_dir) for e in endpoints]}),
    }
    for endpoint in endpoints:
        files.update({name: _dump(doc) for name, doc in _sds_files(endpoint).items()})
    return dict(sorted(files.items()))
