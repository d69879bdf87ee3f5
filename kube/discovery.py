"""Resolve an ``apiVersion``/``kind`` to the resource that serves it, from API discovery.

``Discovery.resolve`` reads ``/api/v1`` or ``/apis/<group>/<version>`` (a ``APIResourceList``)
and finds the resource (plural name, namespaced or not) whose ``kind`` matches, ignoring
subresources. When the pinned version is not served (any more), it reads ``/apis/<group>`` and
falls back to the group's preferred version (then any other served version) that has the
kind, and says so (``Resolution.reason == "VersionFallback"``). When no version has the kind,
the answer is ``TargetNotFound`` — typically a CRD that is not installed yet; callers re-resolve
when CRDs change. Discovery documents are cached until ``invalidate()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kube.api import Getter
from kube.client import NotFound, ServiceUnavailable
from kube.paths import group_version_path
from kube.resourcelist import find_kind

RESOLVED = "Resolved"
VERSION_FALLBACK = "VersionFallback"
TARGET_NOT_FOUND = "TargetNotFound"


DiscoveryClient = Getter


@dataclass(frozen=True, slots=True)
class ResolvedResource:
    group: str
    version: str
    resource: str  # plural, e.g. "deployments"
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class Resolution:
    resource: ResolvedResource | None
    reason: str  # RESOLVED, VERSION_FALLBACK or TARGET_NOT_FOUND
    message: str


def candidate_versions(group_doc: Mapping[str, Any], *, skip: str) -> list[str]:
    """The group's preferred version first, then the other served versions, without ``skip``."""
    preferred = (group_doc.get("preferredVersion") or {}).get("version")
    versions = [str(v.get("version")) for v in group_doc.get("versions") or () if v.get("version")]
    ordered = ([preferred] if preferred else []) + [v for v in versions if v != preferred]
    return [v for v in ordered if v != skip]


class Discovery:
    def __init__(self, client: DiscoveryClient) -> None:
        self._client = client
        self._cache: dict[str, dict[str, Any] | None] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    async def _doc(self, path: str) -> dict[str, Any] | None:
        if path not in self._cache:
            try:
                self._cache[path] = await self._client.get(path)
            except (NotFound, ServiceUnavailable):
                self._cache[path] = None  # not served (503: an aggregated API that is down)
        return self._cache[path]

    async def resolve(self, *, group: str, version: str, kind: str) -> Resolution:
        pinned = await self._doc(group_version_path(group=group, version=version))
        found = find_kind(pinned, kind) if pinned else None
        if found:
            return Resolution(ResolvedResource(group, version, found[0], kind, found[1]), RESOLVED, "")
        api_version = f"{group}/{version}" if group else version
        if group:
            group_doc = await self._doc(f"/apis/{group}")
            for other in candidate_versions(group_doc or {}, skip=version):
                doc = await self._doc(group_version_path(group=group, version=other))
                hit = find_kind(doc, kind) if doc else None
                if hit:
                    why = "is not served" if pinned is None else f"does not serve kind {kind}"
                    return Resolution(
                        ResolvedResource(group, other, hit[0], kind, hit[1]),
                        VERSION_FALLBACK,
                        f"{api_version} {why}; using {group}/{other}",
                    )
        missing = f"kind {kind} is not served by {api_version} (CRD not installed?)"
        return Resolution(None, TARGET_NOT_FOUND, missing)
