"""Authentication settings: the CAs and header names that decide who a request comes from.

They come from the ``kube-system/extension-apiserver-authentication`` ConfigMap that the
kube-apiserver maintains (docs/design.md, "The authentication ConfigMap"), watched with
``fieldSelector=metadata.name=extension-apiserver-authentication`` (the only form the
``extension-apiserver-authentication-reader`` Role allows), so CA rotation and allowed-name
changes apply without a restart. Explicit flags override the ConfigMap per field.

``AuthSettings`` is immutable; the watcher publishes a new one to its subscribers (the
authenticator and the TLS context, which needs the union of both CA bundles).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from cryptography import x509

from certs.verify import load_bundle
from kube.api import Getter, Watcher

log = logging.getLogger(__name__)

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "extension-apiserver-authentication"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    client_ca_pem: bytes = b""
    requestheader_ca_pem: bytes = b""
    allowed_names: frozenset[str] = frozenset()
    username_headers: tuple[str, ...] = ("x-remote-user",)
    group_headers: tuple[str, ...] = ("x-remote-group",)
    extra_prefixes: tuple[str, ...] = ("x-remote-extra-",)
    client_roots: tuple[x509.Certificate, ...] = field(default=(), compare=False)
    requestheader_roots: tuple[x509.Certificate, ...] = field(default=(), compare=False)

    @property
    def tls_client_ca_pem(self) -> bytes:
        """What the TLS layer must accept: both bundles (verification per purpose comes later)."""
        parts = [p.strip() for p in (self.client_ca_pem, self.requestheader_ca_pem) if p.strip()]
        return b"\n".join(parts) + (b"\n" if parts else b"")


def with_roots(settings: AuthSettings) -> AuthSettings:
    """Parse the PEM bundles once, so requests never parse certificates."""
    return replace(
        settings,
        client_roots=load_bundle(settings.client_ca_pem),
        requestheader_roots=load_bundle(settings.requestheader_ca_pem),
    )


class InvalidAuthConfig(ValueError):
    """The ConfigMap (or a CA file) cannot be used; the last good settings stay in force."""


def _json_list(data: Mapping[str, str], key: str) -> tuple[str, ...] | None:
    """A JSON list of strings, ``None`` when the key is absent; ``InvalidAuthConfig`` otherwise.

    Never "ignored": a malformed ``requestheader-allowed-names`` read as "absent" would mean
    "any CN" and widen front-proxy trust to every certificate of the request-header CA.
    """
    raw = data.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise InvalidAuthConfig(f"key {key} is not a JSON list: {raw[:80]!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAuthConfig(f"key {key} is not a JSON list of strings: {raw[:80]!r}")
    return tuple(value)


def settings_from_configmap(data: Mapping[str, str]) -> AuthSettings:
    """Build settings from the ConfigMap's ``data`` (lists are JSON-encoded string arrays).

    Raises ``InvalidAuthConfig`` for a malformed list or CA bundle.
    """
    defaults = AuthSettings()
    users = _json_list(data, "requestheader-username-headers")
    groups = _json_list(data, "requestheader-group-headers")
    extras = _json_list(data, "requestheader-extra-headers-prefix")
    allowed = _json_list(data, "requestheader-allowed-names")
    return _with_roots_checked(
        AuthSettings(
            client_ca_pem=data.get("client-ca-file", "").encode(),
            requestheader_ca_pem=data.get("requestheader-client-ca-file", "").encode(),
            allowed_names=frozenset(allowed or ()),
            username_headers=tuple(h.lower() for h in users) if users else defaults.username_headers,
            group_headers=tuple(h.lower() for h in groups) if groups else defaults.group_headers,
            extra_prefixes=tuple(h.lower() for h in extras) if extras else defaults.extra_prefixes,
        )
    )


def _with_roots_checked(settings: AuthSettings) -> AuthSettings:
    try:
        return with_roots(settings)
    except ValueError as exc:
        raise InvalidAuthConfig(f"a CA bundle does not parse: {exc}") from None


@dataclass(frozen=True, slots=True)
class AuthOverrides:
    """Flag values that win over the ConfigMap (``None`` = not given)."""

    client_ca_file: Path | None = None
    requestheader_ca_file: Path | None = None
    allowed_names: tuple[str, ...] | None = None

    @classmethod
    def from_flags(
        cls, *, client_ca_file: str | None, requestheader_ca_file: str | None, allowed_names: str | None
    ) -> AuthOverrides:
        return cls(
            client_ca_file=Path(client_ca_file) if client_ca_file else None,
            requestheader_ca_file=Path(requestheader_ca_file) if requestheader_ca_file else None,
            allowed_names=tuple(n.strip() for n in allowed_names.split(",") if n.strip())
            if allowed_names is not None
            else None,
        )

    @property
    def complete(self) -> bool:
        """True when flags alone define the front proxy, so the ConfigMap is not needed."""
        return self.requestheader_ca_file is not None and self.allowed_names is not None

    def apply(self, settings: AuthSettings) -> AuthSettings:
        changed = settings
        if self.client_ca_file is not None:
            changed = replace(changed, client_ca_pem=self.client_ca_file.read_bytes())
        if self.requestheader_ca_file is not None:
            changed = replace(changed, requestheader_ca_pem=self.requestheader_ca_file.read_bytes())
        if self.allowed_names is not None:
            changed = replace(changed, allowed_names=frozenset(self.allowed_names))
        return with_roots(changed)


class ConfigMapWatchClient(Getter, Watcher, Protocol):
    """What the watcher needs from ``kube.client.KubeClient``."""


Subscriber = Callable[[AuthSettings], None]


class AuthConfigSource:
    """Holds the current settings and tells subscribers when they change."""

    def __init__(self, overrides: AuthOverrides, *, initial: AuthSettings | None = None) -> None:
        self.overrides = overrides
        self._base = initial or AuthSettings()
        self.current = overrides.apply(self._base)
        self._subscribers: list[Subscriber] = []
        self.ready = asyncio.Event()
        self.rejected = 0  # malformed ConfigMap versions seen (and not applied)

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)
        callback(self.current)

    def update_from_configmap(self, data: Mapping[str, str]) -> bool:
        """Apply a ConfigMap's data; returns whether the effective settings changed.

        A malformed ConfigMap changes nothing: the last good settings stay in force (before the
        first good one, the defaults: no request-header CA, so no front-proxy request is trusted).
        """
        try:
            new = self.overrides.apply(settings_from_configmap(data))
        except (InvalidAuthConfig, OSError, ValueError) as exc:
            self.rejected += 1
            log.warning(
                "%s/%s rejected, keeping the previous authentication settings: %s",
                CONFIGMAP_NAMESPACE,
                CONFIGMAP_NAME,
                exc,
            )
            return False
        self.ready.set()
        if new == self.current:
            return False
        self.current = new
        log.info(
            "authentication settings updated from %s/%s (allowed names %s)",
            CONFIGMAP_NAMESPACE,
            CONFIGMAP_NAME,
            sorted(new.allowed_names) or "any",
        )
        for callback in self._subscribers:
            callback(new)
        return True

    async def run(self, client: ConfigMapWatchClient, *, backoff_max: float = 30.0) -> None:
        """Keep the settings in sync with the ConfigMap forever (list, then watch, re-list on end)."""
        base = f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps"
        selector = f"metadata.name={CONFIGMAP_NAME}"
        delay = 0.5
        while True:
            try:
                listed = await client.get(base, params={"fieldSelector": selector})
                delay = 0.5  # the API answered: the next failure starts its back-off afresh
                for item in listed.get("items", []):
                    self.update_from_configmap(item.get("data") or {})
                if not listed.get("items"):
                    self.ready.set()
                rv = str(listed.get("metadata", {}).get("resourceVersion", ""))
                async for kind, obj in client.watch(
                    base, params={"fieldSelector": selector}, resource_version=rv, timeout_seconds=300
                ):
                    if kind in ("ADDED", "MODIFIED"):
                        self.update_from_configmap(obj.get("data") or {})
                    elif kind == "ERROR":
                        break
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "watching %s/%s failed, retrying in %.1fs: %s",
                    CONFIGMAP_NAMESPACE,
                    CONFIGMAP_NAME,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff_max)
