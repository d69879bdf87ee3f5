"""Target schemas for the admission webhook: a CRD's ``openAPIV3Schema``, cached.

This is the one place the webhook calls the kube-apiserver while answering a review: the schema of
a configuration's target lives only there. For ``spec.targetRef`` ``group/version`` ``Kind``:
the group-version's discovery document gives the plural, then
``GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/<plural>.<group>`` gives the schema of
that version. Answers (including "no schema": core kinds, built-in groups, a kind that is not
served, an unreachable server) are cached for ``ttl`` seconds (failures for ``failure_ttl``);
concurrent reviews of one target share one fetch, and a review that stops waiting (the webhook
bounds the wait) does not cancel it, so the next review finds it cached. Native kinds get no
schema here (their OpenAPI is not a CRD; see docs/admission.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from exporter.types import TargetRef
from kube.api import Getter
from kube.client import ApiError, NotFound
from kube.discovery import find_kind
from kube.paths import group_version_path

log = logging.getLogger(__name__)

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def version_schema(crd: Mapping[str, Any], version: str) -> Mapping[str, Any] | None:
    """``spec.versions[name=version].schema.openAPIV3Schema`` of a CRD (pure)."""
    spec = crd.get("spec")
    versions = spec.get("versions") if isinstance(spec, Mapping) else None
    for entry in versions or ():
        if isinstance(entry, Mapping) and entry.get("name") == version:
            schema = (entry.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, Mapping) else None
    return None


class CrdSchemas:
    """``SchemaSource`` over a kube client (``apiserver.admission.SchemaSource``)."""

    def __init__(self, client: Getter, *, ttl: float = 300.0, failure_ttl: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl, self._failure_ttl, self._clock = ttl, failure_ttl, clock
        self._cache: dict[TargetRef, tuple[float, Mapping[str, Any] | None]] = {}
        self._pending: dict[TargetRef, asyncio.Task[Mapping[str, Any] | None]] = {}
        self.fetches = 0  # CRD lookups sent (for tests and telemetry)

    async def schema(self, target: TargetRef) -> Mapping[str, Any] | None:
        if not target.group:
            return None  # the core group has no CRDs
        hit = self._cache.get(target)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        task = self._pending.get(target)
        if task is None:
            task = asyncio.create_task(self._fetch(target), name=f"crd-schema-{target.kind}")
            self._pending[target] = task
        return await asyncio.shield(task)

    async def _fetch(self, target: TargetRef) -> Mapping[str, Any] | None:
        ttl = self._ttl
        schema: Mapping[str, Any] | None = None
        try:
            self.fetches += 1
            doc = await self._client.get(group_version_path(group=target.group, version=target.version))
            found = find_kind(doc, target.kind)
            if found is not None:
                crd = await self._client.get(f"{CRD_PATH}/{found[0]}.{target.group}")
                schema = version_schema(crd, target.version)
        except NotFound:
            pass  # not served, or a built-in group: no CRD schema
        except (ApiError, OSError, TimeoutError, ValueError) as exc:
            ttl = self._failure_ttl
            log.warning("admission: cannot read the schema of %s %s: %s",
                        target.api_version, target.kind, exc)
        finally:
            self._pending.pop(target, None)
        self._cache[target] = (self._clock() + ttl, schema)
        return schema
