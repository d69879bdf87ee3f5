"""The extension API server as a ``serve`` component: flags in, a running HTTPS server out.

Wiring only: the serving pair (``--tls-cert-file``/``--tls-private-key-file``, reloaded when the
files change, or a self-signed pair for development), the authentication settings (flags over
the ``extension-apiserver-authentication`` ConfigMap, watched when a cluster client is given),
TokenReview/SubjectAccessReview through the same client, and the application of
``apiserver.server`` over the shared store and exposition cache.

Without a cluster client (``serve --source``) there is nobody to ask for reviews: only
``system:masters`` (front proxy or x509 via the CA flags) and the always-allowed paths pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from apiserver.admission import AdmissionTelemetry, AdmissionWebhooks, CallerPolicy
from apiserver.admission_schemas import CrdSchemas
from apiserver.authconfig import AuthConfigSource, AuthOverrides, AuthSettings
from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.connections import ServingLimits
from apiserver.prometheus import ExpositionSource
from apiserver.reviews import KubeReviewer
from apiserver.server import REQUEST_USER, Health, HttpsServer, build_app
from apiserver.settings import comma_list
from apiserver.telemetry import ApiTelemetry
from apiserver.views import ApiViews, ResourceNamer, guess_resource
from certs.generate import self_signed_serving
from certs.reload import ReloadingServerTLS
from exporter.exposition import parse_series
from exporter.store import MetricsStore
from exporter.types import Plan, TargetRef
from kube.api import Creator, Getter, Watcher

log = logging.getLogger(__name__)


class StartupFailure(Exception):
    """A problem the user can fix (bad certificate files, port in use)."""


class ClusterClient(Creator, Getter, Watcher, Protocol):
    """What the API server component needs: reviews, the auth ConfigMap get + watch."""


def resolved_namer(resolved: Callable[[str], str | None]) -> ResourceNamer:
    """A namer using the plural the exporter's discovery resolved for a configuration.

    ``resolved(configuration)`` returns it (or ``None`` when unknown, then the plural is guessed
    from the kind). The exporter installs a plan only after resolving it, so for objects in the
    store the resolved plural is known.
    """

    def namer(configuration: str, target: TargetRef) -> str:
        return resolved(configuration) or guess_resource(configuration, target)

    return namer


def limits_from_args(args: Any) -> ServingLimits:
    """``--max-connections``, ``--idle-timeout``, ``--write-timeout`` (defaults: ``ServingLimits``)."""
    defaults = ServingLimits()
    return ServingLimits(
        idle_timeout=getattr(args, "idle_timeout", None) or defaults.idle_timeout,
        write_timeout=getattr(args, "write_timeout", None) or defaults.write_timeout,
        max_connections=getattr(args, "max_connections", None) or defaults.max_connections,
    )


def admission_webhooks(args: Any, *, plans: Callable[[], Iterable[Plan]], client: Getter | None,
                       registry: CollectorRegistry | None) -> AdmissionWebhooks:
    """The admission webhooks over the exporter's plans and (when connected) CRD schemas."""
    users = comma_list(getattr(args, "admission_allowed_users", ""))
    return AdmissionWebhooks(
        plans=plans,
        schemas=CrdSchemas(client) if client is not None else None,
        policy=CallerPolicy(frozenset(users)),
        schema_timeout=getattr(args, "admission_schema_timeout", None) or 1.0,
        telemetry=AdmissionTelemetry(registry),
        user_of=lambda request: request.get(REQUEST_USER),
    )


class ExtensionApiComponent:
    """``start``/``stop`` an HTTPS extension API server on ``--bind-address:--secure-port``."""

    name = "extension-apiserver"

    def __init__(
        self,
        *,
        args: Any,
        store: MetricsStore,
        exposition: ExpositionSource,
        client: ClusterClient | None = None,
        namer: ResourceNamer = guess_resource,
    ) -> None:
        self.args, self.store, self.exposition, self.client, self.namer = (
            args,
            store,
            exposition,
            client,
            namer,
        )
        self.server: HttpsServer | None = None
        self.views: ApiViews | None = None
        self.source: AuthConfigSource | None = None
        self.tls: ReloadingServerTLS | None = None
        self._watch: asyncio.Task[None] | None = None

    def ready(self) -> bool:
        if self.source is None:
            return False
        return self.client is None or self.source.overrides.complete or self.source.ready.is_set()

    def _tls(self, settings: AuthSettings) -> ReloadingServerTLS:
        args = self.args
        try:
            if args.tls_cert_file or args.tls_private_key_file:
                if not (args.tls_cert_file and args.tls_private_key_file):
                    raise StartupFailure("--tls-cert-file and --tls-private-key-file must be given together")
                return ReloadingServerTLS(
                    cert_file=Path(args.tls_cert_file),
                    key_file=Path(args.tls_private_key_file),
                    client_ca_pem=settings.tls_client_ca_pem,
                )
            _ca, pair = self_signed_serving(hosts=("localhost",), ips=("127.0.0.1",))
            log.warning("no --tls-cert-file: serving a self-signed certificate (development only)")
            return ReloadingServerTLS(pair=pair, client_ca_pem=settings.tls_client_ca_pem)
        except (OSError, ValueError) as exc:
            raise StartupFailure(f"cannot load the serving certificate: {exc}") from None

    async def start(self) -> None:
        args = self.args
        try:
            overrides = AuthOverrides.from_flags(
                client_ca_file=args.client_ca_file,
                requestheader_ca_file=args.requestheader_client_ca_file,
                allowed_names=args.requestheader_allowed_names,
            )
            self.source = source = AuthConfigSource(overrides)
        except (OSError, ValueError) as exc:
            raise StartupFailure(f"cannot read the client CA files: {exc}") from None
        self.tls = tls = self._tls(source.current)
        reviewer = KubeReviewer(self.client) if self.client is not None else None
        authenticator = Authenticator(source.current, token_reviewer=reviewer, token_ttl=args.authn_cache_ttl)
        always = [p.strip() for p in args.authorization_always_allow_paths.split(",") if p.strip()]
        webhooks = admission_webhooks(args, plans=self.store.plans, client=self.client,
                                      registry=self.store.telemetry.registry)
        # The webhooks authorize their callers themselves (CallerPolicy), not by SAR.
        authorizer = Authorizer(reviewer, always_allow_paths=[*always, *webhooks.paths],
                                ttl=args.authz_cache_ttl)
        source.subscribe(authenticator.update)
        source.subscribe(lambda settings: tls.set_client_ca(settings.tls_client_ca_pem))
        self.views = ApiViews(self.store, namer=self.namer)
        limits = limits_from_args(args)
        telemetry = ApiTelemetry(self.store.telemetry.registry)
        app = build_app(
            views=self.views,
            exposition=self.exposition,
            parse_series=parse_series,
            authenticator=authenticator,
            authorizer=authorizer,
            health=Health(ready=self.ready),
            telemetry=telemetry,
            limits=limits,
            extra_routes=webhooks.routes(),
        )
        self.server = HttpsServer(
            app, tls, host=args.bind_address, port=args.secure_port, limits=limits, on_reject=telemetry.reject
        )
        try:
            await self.server.start()
        except OSError as exc:
            raise StartupFailure(
                f"cannot listen on {args.bind_address}:{args.secure_port}: {exc.strerror or exc}"
            ) from None
        if self.client is not None:
            self._watch = asyncio.create_task(source.run(self.client), name="auth-configmap-watch")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.server is not None:
            await self.server.stop()
        if self.views is not None:
            self.views.close()
