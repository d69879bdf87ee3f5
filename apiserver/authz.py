"""Authorization: may this user do this verb on this resource (or path)? Asked via SubjectAccessReview.

The kube-apiserver already authorized a proxied request with its RBAC; our SubjectAccessReview
must carry exactly the same attributes (docs/design.md, "Sources, by topic": authorization),
built from ``RequestInfo``: resource requests send ``resourceAttributes`` (group, version,
resource, subresource, name, namespace, verb get/list/watch), everything else
``nonResourceAttributes`` (path, verb).

Short-circuits before any review: paths in ``always_allow_paths`` (exact, or prefix when the
entry ends in ``*``) and members of ``system:masters``. Allow *and* deny decisions are cached
for ``ttl`` seconds keyed by the review spec, so a scraper or kubectl loop costs one review per
identity and attributes per TTL. Concurrent identical reviews share one request. A review that
does not answer within ``timeout`` (10 s, as k8s.io/apiserver's delegating authorizer) fails with
``AuthorizationUnavailable`` and a message that says so; failures are not cached.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from apiserver.authn import UserInfo
from apiserver.requestinfo import RequestInfo

MASTERS = "system:masters"
REVIEW_TIMEOUT = 10.0  # the delegating authorizer's SubjectAccessReview timeout


class AuthorizationUnavailable(Exception):
    """No decision could be obtained (the review failed or timed out) -> 500 with this message."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


class AccessReviewer(Protocol):
    async def review_access(self, spec: dict[str, Any]) -> Decision:
        """Send one SubjectAccessReview with ``spec``; its decision (denied/no opinion -> not allowed)."""
        ...


def review_spec(user: UserInfo, info: RequestInfo) -> dict[str, Any]:
    """The ``spec`` of the SubjectAccessReview for this user and request. Pure."""
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in sorted(user.extra.items())}
    if info.is_resource:
        spec["resourceAttributes"] = {
            "namespace": info.namespace,
            "verb": info.verb,
            "group": info.api_group,
            "version": info.api_version,
            "resource": info.resource,
            "subresource": info.subresource,
            "name": info.name,
        }
    else:
        spec["nonResourceAttributes"] = {"path": info.path, "verb": info.verb}
    return spec


def forbidden_message(user: UserInfo, info: RequestInfo, reason: str = "") -> str:
    """The kube-apiserver's wording, so kubectl users see familiar errors."""
    if info.is_resource:
        resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
        qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
        subject = f'{qualified} "{info.name}"' if info.name else qualified
        where = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
        message = (
            f'{subject} is forbidden: User "{user.name}" cannot {info.verb} resource "{resource}" '
            f'in API group "{info.api_group}" {where}'
        )
    else:
        message = f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"'
    return f"{message}: {reason}" if reason else message


def _path_matcher(paths: Iterable[str]) -> Callable[[str], bool]:
    exact = {p for p in paths if p and not p.endswith("*")}
    prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))

    def allowed(path: str) -> bool:
        return path in exact or (bool(prefixes) and path.startswith(prefixes))

    return allowed


class Authorizer:
    def __init__(
        self,
        reviewer: AccessReviewer | None,
        *,
        always_allow_paths: Iterable[str] = (),
        ttl: float = 10.0,
        size: int = 8192,
        timeout: float = REVIEW_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reviewer = reviewer
        self._timeout = timeout
        self._always = _path_matcher(list(always_allow_paths))
        self._ttl, self._size, self._clock = ttl, size, clock
        self._cache: OrderedDict[bytes, tuple[float, Decision]] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[Decision]] = {}
        self.reviews_sent = 0
        self.cache_hits = 0

    def always_allowed(self, info: RequestInfo) -> bool:
        return not info.is_resource and self._always(info.path)

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        if self.always_allowed(info):
            return Decision(True, "always allowed path")
        if MASTERS in user.groups:
            return Decision(True, "system:masters")
        if self._reviewer is None:
            return Decision(False, "no authorizer configured")
        spec = review_spec(user, info)
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self.cache_hits += 1
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            self.reviews_sent += 1
            try:
                async with asyncio.timeout(self._timeout):
                    decision = await self._reviewer.review_access(spec)
            except TimeoutError:
                raise AuthorizationUnavailable(
                    f"authorization: the SubjectAccessReview did not answer within {self._timeout:g}s"
                ) from None
            except (AuthorizationUnavailable, asyncio.CancelledError):
                raise
            except Exception as exc:
                raise AuthorizationUnavailable(
                    f"authorization: the SubjectAccessReview failed: {exc or type(exc).__name__}"
                ) from exc
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(decision)
        self._cache[key] = (self._clock() + self._ttl, decision)
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return decision
