"""Authentication: who sent a request (front proxy, x509 client certificate, bearer token).

The order and semantics follow the k8s.io/apiserver delegating authenticator
(kubernetes/apiserver ``pkg/authentication/request/headerrequest``; docs/design.md):

1. front proxy: the TLS peer certificate verifies against the *requestheader* CA with clientAuth
   usage and its CN is in the allowed names (any CN when the list is empty). Only then are the
   identity headers trusted: the first non-empty username header, every value of every group
   header (one group per header line, never comma-split), and every ``X-Remote-Extra-<key>``
   header with ``<key>`` URL-unescaped and lower-cased;
2. x509: the peer certificate verifies against the *client* CA: user = CN, groups = O;
3. bearer token: a TokenReview, positive and negative answers cached for ``ttl`` seconds.

If none applies and none failed the request is anonymous (``system:anonymous``,
``system:unauthenticated``); if one failed (a certificate from the wrong CA, a CN that is not
allowed, a rejected token) and none succeeded the answer is 401. Authenticated users get
``system:authenticated`` appended. Identity headers that were not trusted are simply ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from multidict import MultiMapping

from apiserver.authconfig import AuthSettings
from certs.verify import VerificationError, VerifiedClient, verify_client_certificate

REVIEW_TIMEOUT = 10.0  # as the delegating authenticator's TokenReview webhook
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)
    method: str = ""  # front-proxy | x509 | token | anonymous (for logs and tests)

    @property
    def is_anonymous(self) -> bool:
        return self.name == ANONYMOUS


ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(UNAUTHENTICATED,), method="anonymous")


class AuthenticationFailed(Exception):
    """Credentials were presented and rejected (-> 401)."""


Headers = MultiMapping[str]  # aiohttp request headers (CIMultiDictProxy) or a CIMultiDict in tests


class TokenReviewer(Protocol):
    async def review_token(self, token: str) -> UserInfo | None:
        """The user a bearer token belongs to, or ``None`` when it is not authenticated."""
        ...


def _with_authenticated(groups: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(groups))
    return out if AUTHENTICATED in out else (*out, AUTHENTICATED)


def unescape_extra_key(raw: str) -> str:
    """``Authentication.kubernetes.io%2fpod-Name`` -> ``authentication.kubernetes.io/pod-name``."""
    return unquote(raw).lower()


def user_from_headers(headers: Headers, settings: AuthSettings) -> UserInfo | None:
    """The identity the front proxy asserted, or ``None`` when no username header is set."""
    name = ""
    for header in settings.username_headers:
        for value in headers.getall(header, []):
            if value.strip():
                name = value.strip()
                break
        if name:
            break
    if not name:
        return None
    groups: list[str] = []
    for header in settings.group_headers:
        groups.extend(headers.getall(header, []))
    extra: dict[str, list[str]] = {}
    seen: set[str] = set()
    for key in headers:
        lowered = key.lower()
        if lowered in seen:
            continue
        for prefix in settings.extra_prefixes:
            if lowered.startswith(prefix) and len(lowered) > len(prefix):
                seen.add(lowered)
                extra.setdefault(unescape_extra_key(key[len(prefix) :]), []).extend(headers.getall(key, []))
                break
    return UserInfo(
        name=name,
        groups=_with_authenticated(groups),
        extra={k: tuple(v) for k, v in extra.items()},
        method="front-proxy",
    )


class _VerifyCache:
    """Bounded memo of certificate verifications (one signature check per client, not per request)."""

    def __init__(self, *, size: int = 256, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[tuple[bytes, int], tuple[float, VerifiedClient | str, object]] = (
            OrderedDict()
        )
        self._size, self._ttl, self._clock = size, ttl, clock

    def verify(self, der: bytes, roots: tuple[Any, ...]) -> VerifiedClient:
        key = (hashlib.sha256(der).digest(), id(roots))
        now = self._clock()
        hit = self._entries.get(key)
        # The entry keeps the roots tuple alive and is only used for that very object: an id()
        # reused after a CA rotation must never validate a certificate against the new roots.
        if hit is not None and hit[0] > now and hit[2] is roots:
            self._entries.move_to_end(key)
            result = hit[1]
        else:
            try:
                result = verify_client_certificate(der, roots)
            except VerificationError as exc:
                result = str(exc)
            self._entries[key] = (now + self._ttl, result, roots)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        if isinstance(result, str):
            raise VerificationError(result)
        return result


class _TTLCache:
    def __init__(self, *, ttl: float, size: int = 4096, clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()
        self._ttl, self._size, self._clock = ttl, size, clock

    def get(self, key: bytes) -> tuple[bool, Any]:
        hit = self._entries.get(key)
        if hit is None or hit[0] <= self._clock():
            return False, None
        return True, hit[1]

    def put(self, key: bytes, value: Any) -> None:
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class Authenticator:
    """Runs the three methods in order for one request. Settings are swapped atomically."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        token_reviewer: TokenReviewer | None = None,
        token_ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._tokens = token_reviewer
        self._token_cache = _TTLCache(ttl=token_ttl, clock=clock)
        self._verified = _VerifyCache(clock=clock)
        self.token_reviews = 0

    def update(self, settings: AuthSettings) -> None:
        self.settings = settings

    async def authenticate(self, headers: Headers, peer_der: bytes | None) -> UserInfo:
        settings = self.settings
        errors: list[str] = []
        if peer_der:
            user = self._front_proxy(headers, peer_der, settings, errors)
            if user is not None:
                return user
            user = self._x509(peer_der, settings, errors)
            if user is not None:
                return user
        authorization = headers.get("authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            user = await self._token(token.strip())
            if user is not None:
                return user
            errors.append("invalid bearer token")
        if errors:
            raise AuthenticationFailed("; ".join(errors))
        return ANONYMOUS_USER

    def _front_proxy(
        self, headers: Headers, der: bytes, settings: AuthSettings, errors: list[str]
    ) -> UserInfo | None:
        if not settings.requestheader_roots:
            return None
        try:
            client = self._verified.verify(der, settings.requestheader_roots)
        except VerificationError:
            return None  # not a front-proxy certificate; the x509 method may still accept it
        if settings.allowed_names and client.common_name not in settings.allowed_names:
            errors.append(f"client certificate CN {client.common_name!r} is not an allowed front proxy")
            return None
        return user_from_headers(headers, settings)

    def _x509(self, der: bytes, settings: AuthSettings, errors: list[str]) -> UserInfo | None:
        if not settings.client_roots:
            return None
        try:
            client = self._verified.verify(der, settings.client_roots)
        except VerificationError as exc:
            if not errors:
                errors.append(str(exc))
            return None
        if not client.common_name:
            errors.append("client certificate has no common name")
            return None
        return UserInfo(
            name=client.common_name, groups=_with_authenticated(client.organizations), method="x509"
        )

    async def _token(self, token: str) -> UserInfo | None:
        if self._tokens is None:
            return None
        key = hashlib.sha256(token.encode()).digest()
        hit, cached = self._token_cache.get(key)
        if hit:
            result: UserInfo | None = cached
            return result
        self.token_reviews += 1
        try:
            async with asyncio.timeout(REVIEW_TIMEOUT):
                user = await self._tokens.review_token(token)
        except TimeoutError:
            raise AuthenticationFailed(f"token review did not answer within {REVIEW_TIMEOUT:g}s") from None
        except Exception as exc:  # an unreachable TokenReview API is not cached, only refused
            raise AuthenticationFailed(f"token review failed: {exc}") from exc
        if user is not None:
            user = UserInfo(
                name=user.name,
                uid=user.uid,
                groups=_with_authenticated(user.groups),
                extra=user.extra,
                method="token",
            )
        self._token_cache.put(key, user)
        return user
