"""Authentication and authorization over real TLS: front proxy, x509, tokens, SAR attributes, caches."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest

from apiserver.authconfig import AuthSettings, settings_from_configmap, with_roots
from apiserver.authn import ANONYMOUS_USER, Authenticator, UserInfo, unescape_extra_key, user_from_headers
from apiserver.authz import Authorizer, review_spec
from apiserver.requestinfo import parse_request_info
from certs.generate import new_ca, new_client_cert
from tests.unit.apiserver.conftest import MASTERS_HEADERS, FakeReviewer, Pki, Served, serve

GV = "/apis/metrics.panopticon.io/v1alpha1"


async def _status(session: aiohttp.ClientSession, url: str, headers: Any = None) -> tuple[int, Any]:
    async with session.get(url, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_s07_front_proxy_requires_requestheader_ca_and_allowed_cn(served: Served, pki: Pki) -> None:
    served.reviewer.allow = lambda spec: False
    # Valid front-proxy cert: X-Remote-* trusted, system:masters bypasses SAR.
    async with served.proxy_session() as s:
        status, _ = await _status(s, served.url + GV + "/metricfamilies", MASTERS_HEADERS)
    assert status == 200
    # No certificate: headers ignored, anonymous, SAR denies.
    async with served.session() as s:
        status, body = await _status(s, served.url + GV + "/metricfamilies", MASTERS_HEADERS)
    assert status == 403 and body["reason"] == "Forbidden"
    assert served.reviewer.access_reviews[-1]["user"] == "system:anonymous"
    # A certificate from the *client* CA (not the requestheader CA) with the right CN: headers ignored.
    impostor = new_client_cert(pki.client_ca, common_name="front-proxy-client")
    async with served.session(impostor) as s:
        status, _ = await _status(s, served.url + GV + "/metricfamilies", MASTERS_HEADERS)
    assert status == 403
    assert served.reviewer.access_reviews[-1]["user"] == "front-proxy-client"  # x509 user, not the header
    # Right CA, CN not in the allowed names: not a front proxy (and not a client-CA user) -> 401.
    wrong_cn = new_client_cert(pki.front_proxy_ca, common_name="someone-else")
    async with served.session(wrong_cn) as s:
        status, body = await _status(s, served.url + GV + "/metricfamilies", MASTERS_HEADERS)
    assert status == 401 and body["reason"] == "Unauthorized"


async def test_front_proxy_any_cn_when_allowed_names_empty(pki: Pki) -> None:
    result, server = await serve(pki, settings=pki.settings(allowed=frozenset()))
    try:
        anyone = new_client_cert(pki.front_proxy_ca, common_name="whatever")
        async with result.session(anyone) as s:
            status, _ = await _status(s, result.url + GV + "/metricfamilies", MASTERS_HEADERS)
        assert status == 200
    finally:
        await server.stop()
        result.views.close()


async def test_s08_multiple_groups_and_extra_headers(served: Served) -> None:
    served.reviewer.allow = lambda spec: True
    headers = [
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "dev"),
        ("X-Remote-Group", "ops"),
        ("X-Remote-Extra-Authentication.kubernetes.io%2fpod-Name", "p1"),
        ("X-Remote-Extra-Scopes", "a"),
        ("X-Remote-Extra-Scopes", "b"),
    ]
    async with served.proxy_session() as s:
        status, _ = await _status(s, served.url + GV + "/metricfamilies", headers)
    assert status == 200
    spec = served.reviewer.access_reviews[-1]
    assert spec["user"] == "alice"
    assert spec["groups"] == ["dev", "ops", "system:authenticated"]
    assert spec["extra"] == {"authentication.kubernetes.io/pod-name": ["p1"], "scopes": ["a", "b"]}


def test_extra_key_unescaping() -> None:
    assert unescape_extra_key("Foo%2fbar") == "foo/bar"
    assert unescape_extra_key("Example.com%2Fkey%25x") == "example.com/key%x"


def test_comma_in_group_header_is_one_group() -> None:
    from multidict import CIMultiDict

    settings = AuthSettings()
    user = user_from_headers(CIMultiDict([("X-Remote-User", "u"), ("X-Remote-Group", "a,b")]), settings)
    assert user is not None and user.groups == ("a,b", "system:authenticated")
    assert user_from_headers(CIMultiDict([("X-Remote-Group", "a")]), settings) is None


async def test_s09_anonymous_is_403_and_untrusted_cert_fails_handshake(served: Served) -> None:
    async with served.session() as s:
        status, body = await _status(s, served.url + GV + "/metricfamilies")
    assert status == 403 and body["code"] == 403
    assert 'User "system:anonymous" cannot list resource "metricfamilies"' in body["message"]
    stranger = new_client_cert(new_ca("unknown-ca"), common_name="mallory")
    async with served.session(stranger) as s:
        with pytest.raises(
            (
                aiohttp.ClientConnectorError,
                aiohttp.ClientOSError,
                ssl.SSLError,
                aiohttp.ServerDisconnectedError,
            )
        ):
            await _status(s, served.url + GV + "/metricfamilies")


async def test_x509_user_from_client_ca(served: Served, pki: Pki) -> None:
    served.reviewer.allow = lambda spec: spec["user"] == "bob" and "team" in spec["groups"]
    bob = new_client_cert(pki.client_ca, common_name="bob", organizations=["team"])
    async with served.session(bob) as s:
        status, _ = await _status(s, served.url + GV + "/metricfamilies")
    assert status == 200
    assert served.reviewer.access_reviews[-1]["groups"] == ["team", "system:authenticated"]


async def test_s11_bearer_token_review_cached(served: Served) -> None:
    served.reviewer.tokens["good"] = UserInfo(
        name="system:serviceaccount:mon:prom", groups=("system:serviceaccounts",)
    )
    served.reviewer.allow = lambda spec: spec["user"] == "system:serviceaccount:mon:prom"
    async with served.session() as s:
        for _ in range(5):
            status, _ = await _status(
                s, served.url + GV + "/metricfamilies", {"Authorization": "Bearer good"}
            )
            assert status == 200
        status, body = await _status(s, served.url + GV + "/metricfamilies", {"Authorization": "Bearer bad"})
        assert status == 401 and body["reason"] == "Unauthorized"
        await _status(s, served.url + GV + "/metricfamilies", {"Authorization": "Bearer bad"})
    assert served.reviewer.token_reviews == ["good", "bad"]  # one review per token within the TTL
    assert served.reviewer.access_reviews[-1]["groups"] == ["system:serviceaccounts", "system:authenticated"]


async def test_token_cache_expires(pki: Pki) -> None:
    now = [0.0]
    reviewer = FakeReviewer(tokens={"t": UserInfo(name="u")})
    authn = Authenticator(pki.settings(), token_reviewer=reviewer, token_ttl=10.0, clock=lambda: now[0])
    from multidict import CIMultiDict

    headers = CIMultiDict({"Authorization": "Bearer t"})
    assert (await authn.authenticate(headers, None)).name == "u"
    now[0] = 9.0
    await authn.authenticate(headers, None)
    assert len(reviewer.token_reviews) == 1
    now[0] = 10.5
    await authn.authenticate(headers, None)
    assert len(reviewer.token_reviews) == 2
    assert await authn.authenticate(CIMultiDict(), None) == ANONYMOUS_USER


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        (
            "GET",
            f"{GV}/metricfamilies",
            {},
            {"verb": "list", "resource": "metricfamilies", "name": "", "namespace": ""},
        ),
        ("GET", f"{GV}/metricfamilies/x", {}, {"verb": "get", "resource": "metricfamilies", "name": "x"}),
        ("GET", f"{GV}/metricfamilies", {"watch": "1"}, {"verb": "watch", "resource": "metricfamilies"}),
        ("GET", f"{GV}/metricfamilies", {"watch": "true"}, {"verb": "watch"}),
        ("GET", f"{GV}/metricfamilies", {"watch": "false"}, {"verb": "list"}),
        (
            "GET",
            f"{GV}/namespaces/a/objectmetrics",
            {},
            {"verb": "list", "namespace": "a", "resource": "objectmetrics"},
        ),
        (
            "GET",
            f"{GV}/namespaces/a/prometheus",
            {},
            {"verb": "list", "namespace": "a", "resource": "prometheus"},
        ),
        ("GET", f"{GV}/prometheus", {}, {"verb": "list", "namespace": "", "resource": "prometheus"}),
        ("GET", f"{GV}/watch/metricfamilies", {}, {"verb": "watch", "resource": "metricfamilies"}),
        (
            "GET",
            f"{GV}/namespaces/a",
            {},
            {"verb": "get", "resource": "namespaces", "name": "a", "namespace": "a"},
        ),
        ("DELETE", f"{GV}/metricfamilies", {}, {"verb": "deletecollection"}),
    ],
)
def test_s10_request_info_attributes(
    method: str, path: str, query: dict[str, str], expected: dict[str, str]
) -> None:
    info = parse_request_info(method, path, query)
    assert info.is_resource
    assert info.api_group == "metrics.panopticon.io" and info.api_version == "v1alpha1"
    for key, value in expected.items():
        assert getattr(info, key) == value, key


@pytest.mark.parametrize(
    "path", ["/apis", "/apis/metrics.panopticon.io", GV, "/openapi/v2", "/healthz", "/version"]
)
def test_non_resource_paths(path: str) -> None:
    info = parse_request_info("GET", path, {})
    assert not info.is_resource and info.verb == "get"
    spec = review_spec(UserInfo("u", groups=("g",)), info)
    assert spec["nonResourceAttributes"] == {"path": path, "verb": "get"}
    assert "resourceAttributes" not in spec


async def test_s10_sar_attributes_and_cache(served: Served) -> None:
    served.reviewer.allow = lambda spec: True
    headers = [("X-Remote-User", "carol"), ("X-Remote-Group", "dev")]
    async with served.proxy_session() as s:
        for path in (
            f"{GV}/namespaces/team-a/objectmetrics",
            f"{GV}/metricfamilies/kube_node_info",
            f"{GV}/metricfamilies?watch=1&timeoutSeconds=1",
            f"{GV}/namespaces/team-a/prometheus",
            GV,
        ):
            async with s.get(served.url + path, headers=headers) as resp:
                assert resp.status == 200, path
                await resp.read()
        reviews = list(served.reviewer.access_reviews)
        # Same requests again: all answered from the cache.
        async with s.get(served.url + f"{GV}/namespaces/team-a/objectmetrics", headers=headers) as resp:
            assert resp.status == 200
    assert len(served.reviewer.access_reviews) == len(reviews) == 5
    attrs = [r.get("resourceAttributes") or r.get("nonResourceAttributes") for r in reviews]
    assert attrs[0] == {
        "namespace": "team-a",
        "verb": "list",
        "group": "metrics.panopticon.io",
        "version": "v1alpha1",
        "resource": "objectmetrics",
        "subresource": "",
        "name": "",
    }
    assert attrs[1]["verb"] == "get" and attrs[1]["name"] == "kube_node_info"
    assert attrs[2]["verb"] == "watch" and attrs[2]["resource"] == "metricfamilies"
    assert attrs[3] == {
        "namespace": "team-a",
        "verb": "list",
        "group": "metrics.panopticon.io",
        "version": "v1alpha1",
        "resource": "prometheus",
        "subresource": "",
        "name": "",
    }
    assert attrs[4] == {"path": GV, "verb": "get"}


async def test_s10_masters_and_always_allowed_paths_skip_sar(served: Served) -> None:
    async with served.proxy_session() as s:
        async with s.get(served.url + f"{GV}/metricfamilies", headers=MASTERS_HEADERS) as resp:
            assert resp.status == 200
        async with s.get(served.url + "/readyz", headers={"X-Remote-User": "x"}) as resp:
            assert resp.status == 200
    assert served.reviewer.access_reviews == []


async def test_deny_cached_for_ttl(pki: Pki) -> None:
    now = [0.0]
    reviewer = FakeReviewer(allow=lambda spec: False)
    authz = Authorizer(reviewer, ttl=10.0, clock=lambda: now[0])
    info = parse_request_info("GET", f"{GV}/metricfamilies", {})
    user = UserInfo("eve", groups=("system:authenticated",))
    assert not (await authz.authorize(user, info)).allowed
    now[0] = 9.9
    assert not (await authz.authorize(user, info)).allowed
    assert len(reviewer.access_reviews) == 1
    reviewer.allow = lambda spec: True
    now[0] = 10.1
    assert (await authz.authorize(user, info)).allowed
    assert len(reviewer.access_reviews) == 2


def test_settings_from_configmap() -> None:
    ca = new_ca("x")
    data = {
        "client-ca-file": ca.cert_pem.decode(),
        "requestheader-client-ca-file": ca.cert_pem.decode(),
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }
    settings = settings_from_configmap(data)
    assert settings.allowed_names == frozenset({"front-proxy-client"})
    assert settings.username_headers == ("x-remote-user",)
    assert len(settings.requestheader_roots) == 1 and len(settings.client_roots) == 1
    assert settings == with_roots(settings)
