"""TokenReview and SubjectAccessReview against the kube-apiserver (delegated authn/authz).

The two adapters between ``apiserver.authn``/``apiserver.authz`` and ``kube.client.KubeClient``:
they only build the review objects and read the answer. Caching lives in the callers. The
process's own ServiceAccount needs ``system:auth-delegator`` for both (deploy/rbac).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiserver.authn import UserInfo
from apiserver.authz import Decision
from kube.api import Creator

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


CreatingClient = Creator


def user_from_token_review(review: Mapping[str, Any]) -> UserInfo | None:
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    extra = {str(k): tuple(str(x) for x in v) for k, v in (user.get("extra") or {}).items()}
    return UserInfo(
        name=str(user.get("username", "")),
        uid=str(user.get("uid", "")),
        groups=tuple(user.get("groups") or ()),
        extra=extra,
        method="token",
    )


def decision_from_access_review(review: Mapping[str, Any]) -> Decision:
    status = review.get("status") or {}
    reason = str(status.get("reason") or status.get("evaluationError") or "")
    if status.get("denied"):
        return Decision(False, reason)
    return Decision(bool(status.get("allowed")), reason)


class KubeReviewer:
    """Both review kinds through one client."""

    def __init__(self, client: CreatingClient, *, audiences: tuple[str, ...] = ()) -> None:
        self._client = client
        self._audiences = audiences

    async def review_token(self, token: str) -> UserInfo | None:
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        review = await self._client.create(
            TOKEN_REVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        )
        return user_from_token_review(review)

    async def review_access(self, spec: dict[str, Any]) -> Decision:
        review = await self._client.create(
            ACCESS_REVIEWS,
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        return decision_from_access_review(review)
