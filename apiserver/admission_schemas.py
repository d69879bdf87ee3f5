"""Target schemas for the admission webhook, cached: a CRD's ``openAPIV3Schema`` or the OpenAPI v2.

This is the one place the webhook calls the kube-apiserver while answering a review: the schema of
a configuration's target lives only there. For ``spec.targetRef`` ``group/version`` ``Kind``:

- a custom resource: the group-version's discovery document gives the plural, then
  ``GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/<plural>.<group>`` gives that
  version's ``openAPIV3Schema`` (exact, and current within ``ttl``);
- a native kind (the core group, or a group with no CRD): the kube-apiserver's ``/openapi/v2``
  (several MB, so fetched once per ``openapi_ttl`` and indexed once), as
  ``check --schema openapi-v2.json`` uses it.

Answers (including "no schema": a kind that is not served, an unreachable server) are cached for
``ttl`` seconds (failures for ``failure_ttl``); concurrent reviews of one target share one fetch,
and a review that stops waiting (the webhook bounds the wait) does not cancel it, so the next
review finds it cached. Path checking is ``exporter.schemacheck.SchemaIndex``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from exporter.schemacheck import SchemaIndex
from exporter.types import TargetRef
from kube.api import Getter
from kube.client import ApiError, NotFound
from kube.paths import group_version_path
from kube.resourcelist import find_kind

log = logging.getLogger(__name__)

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
OPENAPI_V2 = "/openapi/v2"


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
                 openapi_ttl: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl, self._failure_ttl, self._openapi_ttl, self._clock = ttl, failure_ttl, openapi_ttl, clock
        self._cache: dict[TargetRef, tuple[float, SchemaIndex | None]] = {}
        self._pending: dict[TargetRef, asyncio.Task[SchemaIndex | None]] = {}
        self._openapi: tuple[float, SchemaIndex | None] = (float("-inf"), None)
        self._openapi_task: asyncio.Task[SchemaIndex | None] | None = None
        self.fetches = 0  # requests sent to the kube-apiserver (for tests)

    async def index(self, target: TargetRef) -> SchemaIndex | None:
        hit = self._cache.get(target)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        task = self._pending.get(target)
        if task is None:
            task = asyncio.create_task(self._fetch(target), name=f"target-schema-{target.kind}")
            self._pending[target] = task
        return await asyncio.shield(task)

    async def _get(self, path: str) -> dict[str, Any]:
        self.fetches += 1
        return await self._client.get(path)

    async def _fetch(self, target: TargetRef) -> SchemaIndex | None:
        ttl = self._ttl
        index: SchemaIndex | None = None
        try:
            crd_schema = await self._crd_schema(target) if target.group else None
            if crd_schema is not None:
                index = SchemaIndex(schemas={(target.api_version, target.kind): crd_schema})
            else:
                native = await self._native()
                if native is not None and native.schema_for(target.api_version, target.kind) is not None:
                    index = native
        except (ApiError, OSError, TimeoutError, ValueError) as exc:
            ttl = self._failure_ttl
            log.warning("admission: cannot read the schema of %s %s: %s",
                        target.api_version, target.kind, exc)
        finally:
            self._pending.pop(target, None)
        self._cache[target] = (self._clock() + ttl, index)
        return index

    async def _crd_schema(self, target: TargetRef) -> Mapping[str, Any] | None:
        try:
            doc = await self._get(group_version_path(group=target.group, version=target.version))
            found = find_kind(doc, target.kind)
            if found is None:
                return None
            crd = await self._get(f"{CRD_PATH}/{found[0]}.{target.group}")
        except NotFound:
            return None  # not served, or a built-in group: no CRD
        return version_schema(crd, target.version)

    async def _native(self) -> SchemaIndex | None:
        """The OpenAPI v2 index of every kind the kube-apiserver serves (fetched once per TTL)."""
        if self._openapi[0] > self._clock():
            return self._openapi[1]
        if self._openapi_task is None:
            self._openapi_task = asyncio.create_task(self._fetch_openapi(), name="openapi-v2")
        try:
            return await asyncio.shield(self._openapi_task)
        finally:
            if self._openapi_task is not None and self._openapi_task.done():
                self._openapi_task = None

    async def _fetch_openapi(self) -> SchemaIndex | None:
        index: SchemaIndex | None = SchemaIndex()
        ttl = self._openapi_ttl
        try:
            assert index is not None
            index.add_document(await self._get(OPENAPI_V2))
        except NotFound:
            index = None
        except (ApiError, OSError, TimeoutError, ValueError) as exc:
            index, ttl = None, self._failure_ttl
            log.warning("admission: cannot read %s: %s", OPENAPI_V2, exc)
        self._openapi = (self._clock() + ttl, index)
        return index
