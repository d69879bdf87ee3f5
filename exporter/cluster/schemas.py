"""The target kinds' OpenAPI schemas, for the live typo check of paths (I/O: GET requests).

``LiveSchemas.lookup(resource)`` finds the schema of a resolved target kind, the way
``panopticon check --kubeconfig`` does (``exporter.schemacheck.fetch_live``) but per kind and
cached, so that the controller never downloads more than it checks:

- a custom kind: its CustomResourceDefinition (``GET .../customresourcedefinitions/<plural>.<group>``,
  every served version's ``openAPIV3Schema``), one request per targeted CRD;
- a native kind (or a CRD that cannot be read, e.g. 403): the kube-apiserver's ``/openapi/v2``,
  fetched once, on first need (only when some configuration targets a kind that is not a CRD);
  a 404 (a server without OpenAPI) counts as "no schemas".

Answers are cached until ``invalidate()``, which the controller calls whenever discovery is
refreshed after CustomResourceDefinition events (``exporter.cluster.resolution``). A failed
request is not cached: the lookup says why (``Lookup.error``) and the next one tries again.
``generation`` counts invalidations, so a caller can tell whether a cached answer may have
changed. What to do with a schema is pure: ``SchemaIndex.check`` and
``exporter.cluster.status.paths_condition``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from exporter.schemacheck import CRDS, SchemaIndex
from kube.api import Getter
from kube.client import ApiError, NotFound
from kube.discovery import ResolvedResource

log = logging.getLogger(__name__)

OPENAPI = "/openapi/v2"


@dataclass(frozen=True, slots=True)
class Lookup:
    index: SchemaIndex | None  # holds the kind's schema; None: no schema known
    source: str  # where it came from (or was looked for), for messages
    error: str = ""  # why there is none, when a request failed (not cached)


class LiveSchemas:
    def __init__(self, client: Getter) -> None:
        self._client = client
        self._crds: dict[str, SchemaIndex | None] = {}  # CRD name -> its schemas; None: no such CRD
        self._native: SchemaIndex | None = None
        self.generation = 0

    def invalidate(self) -> None:
        self._crds.clear()
        self._native = None
        self.generation += 1

    async def lookup(self, resource: ResolvedResource) -> Lookup:
        """The schema index holding ``resource``'s kind at its resolved version."""
        key = (resource.api_version, resource.kind)
        crd_error = ""
        if resource.group:  # the core group ("") has no CRDs
            name = f"{resource.resource}.{resource.group}"
            try:
                crd = await self._crd(name)
            except (ApiError, OSError, TimeoutError) as err:
                crd, crd_error = None, f"CustomResourceDefinition {name}: {err}"
            if crd is not None:
                found = crd if crd.schema_for(*key) is not None else None
                return Lookup(found, f"CustomResourceDefinition {name}")
        try:
            native = await self._openapi()
        except (ApiError, OSError, TimeoutError) as err:
            return Lookup(None, OPENAPI, "; ".join(filter(None, (crd_error, f"{OPENAPI}: {err}"))))
        return Lookup(native if native.schema_for(*key) is not None else None, OPENAPI)

    async def _crd(self, name: str) -> SchemaIndex | None:
        if name in self._crds:
            return self._crds[name]
        generation = self.generation
        index: SchemaIndex | None = None
        try:
            crd = await self._client.get(f"{CRDS}/{name}")
        except NotFound:
            pass
        else:
            index = SchemaIndex()
            index.add_document({**crd, "kind": "CustomResourceDefinition"})
        if generation == self.generation:  # not invalidated while the request was out
            self._crds[name] = index
        return index

    async def _openapi(self) -> SchemaIndex:
        if self._native is not None:
            return self._native
        generation = self.generation
        index = SchemaIndex()
        try:
            kinds = index.add_document(await self._client.get(OPENAPI))
        except NotFound:  # a server without OpenAPI: no schemas (cached like an answer)
            kinds = 0
        log.debug("%s: schemas of %d kinds", OPENAPI, kinds)
        if generation == self.generation:
            self._native = index
        return index
