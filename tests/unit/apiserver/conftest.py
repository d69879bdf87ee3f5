"""Shared fixtures for the extension API server unit tests.

Everything real except the cluster: the real ``MetricsStore`` and ``Exposition``, the real
aiohttp application served over real TLS on 127.0.0.1 with the reloading TLS context, real
certificates from ``certs.generate``; the kube-apiserver is replaced by ``FakeReviewer`` (a
TokenReview / SubjectAccessReview policy that records what it was asked).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from apiserver.authconfig import AuthSettings, with_roots
from apiserver.authn import Authenticator, UserInfo
from apiserver.authz import Authorizer, Decision
from apiserver.connections import ServingLimits
from apiserver.server import HttpsServer, build_app
from apiserver.views import ApiViews
from certs.generate import KeyPair, new_ca, new_client_cert, new_serving_cert, write_pair
from certs.reload import ReloadingServerTLS
from exporter.exposition import Exposition, parse_series
from exporter.store import MetricsStore
from exporter.types import FamilyHeader, RenderErrors, TargetRef

DEPLOYMENTS = TargetRef("apps/v1", "Deployment")
NODES = TargetRef("v1", "Node")


@dataclass
class FakePlan:
    """Renders ``<prefix>_replicas{namespace,name} spec.replicas`` (and a label family)."""

    name: str
    target: TargetRef
    prefix: str
    families: tuple[FamilyHeader, ...] = ()

    def __post_init__(self) -> None:
        self.families = (
            FamilyHeader(f"{self.prefix}_replicas", "Desired replicas.", "gauge", self.name, self.target),
            FamilyHeader(f"{self.prefix}_info", "Object info.", "gauge", self.name, self.target),
        )

    def render(self, obj: Mapping[str, Any], errors: RenderErrors | None = None) -> tuple[bytes, ...]:
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        labels = f'namespace="{ns}",name="{meta["name"]}"' if ns else f'name="{meta["name"]}"'
        replicas = obj.get("spec", {}).get("replicas")
        first = f"{self.prefix}_replicas{{{labels}}} {replicas}\n".encode() if replicas is not None else b""
        return first, f"{self.prefix}_info{{{labels}}} 1\n".encode()


def deployment(name: str, namespace: str, replicas: int, *, rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "resourceVersion": rv,
        },
        "spec": {"replicas": replicas},
    }


def node(name: str, *, rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": f"uid-node-{name}", "resourceVersion": rv},
    }


def populated_store() -> MetricsStore:
    store = MetricsStore()
    store.set_plan(FakePlan("deployments", DEPLOYMENTS, "kube_deployment"))
    store.set_plan(FakePlan("nodes", NODES, "kube_node"))
    store.replace("deployments", [deployment("web", "team-a", 3), deployment("api", "team-b", 2)])
    store.replace("nodes", [node("n1")])
    return store


@dataclass
class FakeReviewer:
    """TokenReview + SubjectAccessReview stand-in with a programmable policy."""

    tokens: dict[str, UserInfo] = field(default_factory=dict)
    allow: Callable[[dict[str, Any]], bool] = lambda spec: False
    access_reviews: list[dict[str, Any]] = field(default_factory=list)
    token_reviews: list[str] = field(default_factory=list)

    async def review_token(self, token: str) -> UserInfo | None:
        self.token_reviews.append(token)
        return self.tokens.get(token)

    async def review_access(self, spec: dict[str, Any]) -> Decision:
        self.access_reviews.append(spec)
        return Decision(self.allow(spec), "fake policy")


@dataclass
class Pki:
    directory: Path
    serving_ca: KeyPair
    serving: KeyPair
    front_proxy_ca: KeyPair
    front_proxy: KeyPair  # CN front-proxy-client
    client_ca: KeyPair

    def settings(self, *, allowed: frozenset[str] = frozenset({"front-proxy-client"})) -> AuthSettings:
        return with_roots(
            AuthSettings(
                client_ca_pem=self.client_ca.cert_pem,
                requestheader_ca_pem=self.front_proxy_ca.cert_pem,
                allowed_names=allowed,
            )
        )

    def client_context(self, pair: KeyPair | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.serving_ca.cert_pem.decode())
        ctx.check_hostname = False
        if pair is not None:
            cert, key = write_pair(self.directory / "clients", f"c{id(pair)}", pair)
            ctx.load_cert_chain(cert, key)
        return ctx


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    serving_ca = new_ca("serving-ca")
    front_proxy_ca = new_ca("front-proxy-ca")
    return Pki(
        directory=directory,
        serving_ca=serving_ca,
        serving=new_serving_cert(serving_ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"]),
        front_proxy_ca=front_proxy_ca,
        front_proxy=new_client_cert(front_proxy_ca, common_name="front-proxy-client"),
        client_ca=new_ca("client-ca"),
    )


@dataclass
class Served:
    url: str
    store: MetricsStore
    views: ApiViews
    reviewer: FakeReviewer
    authenticator: Authenticator
    authorizer: Authorizer
    tls: ReloadingServerTLS
    pki: Pki

    def session(self, pair: KeyPair | None = None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.pki.client_context(pair)))

    def proxy_session(self) -> aiohttp.ClientSession:
        return self.session(self.pki.front_proxy)


async def serve(
    pki: Pki,
    *,
    store: MetricsStore | None = None,
    reviewer: FakeReviewer | None = None,
    settings: AuthSettings | None = None,
    limits: ServingLimits | None = None,
    on_reject: Callable[[str], None] | None = None,
    authorizer: Authorizer | None = None,
    **app_kwargs: Any,
) -> tuple[Served, HttpsServer]:
    store = store if store is not None else populated_store()
    reviewer = reviewer or FakeReviewer()
    settings = settings or pki.settings()
    views = ApiViews(store)
    authenticator = Authenticator(settings, token_reviewer=reviewer)
    authorizer = authorizer or Authorizer(reviewer, always_allow_paths=["/healthz", "/livez", "/readyz"])
    app = build_app(
        views=views,
        exposition=Exposition(store),
        parse_series=parse_series,
        authenticator=authenticator,
        authorizer=authorizer,
        limits=limits,
        **app_kwargs,
    )
    tls = ReloadingServerTLS(pair=pki.serving, client_ca_pem=settings.tls_client_ca_pem)
    server = HttpsServer(app, tls, host="127.0.0.1", port=0, limits=limits, on_reject=on_reject)
    await server.start()
    return Served(
        f"https://127.0.0.1:{server.port}", store, views, reviewer, authenticator, authorizer, tls, pki
    ), server


@pytest.fixture
async def served(pki: Pki) -> AsyncIterator[Served]:
    result, server = await serve(pki)
    try:
        yield result
    finally:
        await server.stop()
        result.views.close()


MASTERS_HEADERS = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
