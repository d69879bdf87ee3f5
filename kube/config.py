"""How to reach the kube-apiserver: a kubeconfig context or the pod's service account.

``load_config`` turns either source into one immutable ``ClientConfig`` (server URL, trust,
client credentials). It reads files once, except the service-account token: that is kept as a
path (``token_file``) because the kubelet rotates projected tokens, and ``KubeClient`` re-reads
it periodically. Exec plugins and auth providers are not supported and are reported as such.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """The cluster connection cannot be configured (message says what is missing)."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to open authenticated connections to one API server."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str = "default"  # the context's (or the pod's) namespace


def load_config(*, kubeconfig: str | None = None, context: str | None = None) -> ClientConfig:
    """Load from ``kubeconfig`` (a path list as in ``KUBECONFIG``), else in-cluster.

    With neither an explicit path nor a service account, ``$KUBECONFIG`` and then
    ``~/.kube/config`` are tried, like kubectl.
    """
    if kubeconfig:
        return _from_kubeconfig(kubeconfig, context=context)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").exists():
        return load_incluster_config()
    fallback = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if any(Path(p).exists() for p in fallback.split(os.pathsep) if p):
        return _from_kubeconfig(fallback, context=context)
    raise ConfigError(
        "no cluster configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account"
    )


def load_incluster_config(*, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("in-cluster config: KUBERNETES_SERVICE_HOST is not set")
    token_file = sa_dir / "token"
    if not token_file.exists():
        raise ConfigError(f"in-cluster config: {token_file} does not exist")
    host = f"[{host}]" if ":" in host else host
    ns_file = sa_dir / "namespace"
    return ClientConfig(
        server=f"https://{host}:{port}",
        ca_file=str(sa_dir / "ca.crt"),
        token_file=str(token_file),
        namespace=ns_file.read_text().strip() if ns_file.exists() else "default",
    )


def _merged_kubeconfig(paths: str) -> dict[str, Any]:
    """Merge a path list the way kubectl does: the first file to define a name wins."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    found = False
    for raw in paths.split(os.pathsep):
        if not raw:
            continue
        path = Path(raw).expanduser()
        if not path.exists():
            continue
        found = True
        doc = yaml.safe_load(path.read_text()) or {}
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{path}: not a kubeconfig mapping")
        base = path.parent.resolve()
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for i, entry in enumerate(doc.get(section) or []):
                if not isinstance(entry, Mapping) or "name" not in entry:
                    raise ConfigError(f"{path}: {section}[{i}].name is missing")
                body = dict(entry.get(key) or {})
                body["__base__"] = base
                merged[section].setdefault(entry["name"], body)
        if merged["current-context"] is None and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    if not found:
        raise ConfigError(f"kubeconfig {paths!r} does not exist")
    return merged


def _file(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else entry["__base__"] / path)


def _data(entry: Mapping[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    return base64.b64decode(value) if value else None


def _from_kubeconfig(paths: str, *, context: str | None) -> ClientConfig:
    doc = _merged_kubeconfig(paths)
    ctx_name = context or doc["current-context"]
    if not ctx_name:
        raise ConfigError(f"kubeconfig {paths!r}: no current-context and no context given")
    ctx = doc["contexts"].get(ctx_name)
    if ctx is None:
        raise ConfigError(f"kubeconfig {paths!r}: context {ctx_name!r} not found")
    cluster = doc["clusters"].get(ctx.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise ConfigError(f"kubeconfig {paths!r}: contexts[{ctx_name}].cluster has no server")
    user = doc["users"].get(ctx.get("user"), {"__base__": Path(".")})
    for unsupported in ("exec", "auth-provider"):
        if user.get(unsupported):
            raise ConfigError(
                f"kubeconfig {paths!r}: users[{ctx.get('user')}].{unsupported} is not supported; "
                "use a token, a token file or a client certificate"
            )
    return ClientConfig(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=_file(cluster, "certificate-authority"),
        ca_data=_data(cluster, "certificate-authority-data"),
        cert_file=_file(user, "client-certificate"),
        cert_data=_data(user, "client-certificate-data"),
        key_file=_file(user, "client-key"),
        key_data=_data(user, "client-key-data"),
        token=user.get("token") or None,
        token_file=_file(user, "tokenFile"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
    )
