"""What consumers need from the Kubernetes client, as small ``Protocol``s.

``kube.client.KubeClient`` implements all of them. Each consumer asks for the narrowest
combination it uses (discovery only ``get``s, the informer ``list``s and ``watch``es, the
reconciler writes), so unit tests can pass plain fakes that implement just that much, and the
signatures live in one place instead of being re-declared beside every consumer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

JsonObject = dict[str, Any]


class Getter(Protocol):
    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> JsonObject: ...


class Lister(Protocol):
    async def list(
        self, path: str, *, params: Mapping[str, Any] | None = None, limit: int = 500
    ) -> tuple[list[JsonObject], str]: ...


class ItemStream(Protocol):
    """The items of one LIST as they decode; ``resource_version`` is the list's once exhausted.

    ``batches`` gives the same items a batch at a time (consume each batch before asking for
    the next): the informer's loop, where one async step per item through the layers (page,
    list, informer) cost more than the per-item work of some configurations."""

    resource_version: str

    def __aiter__(self) -> AsyncIterator[JsonObject]: ...

    def batches(self) -> AsyncIterator[Iterable[JsonObject]]: ...


@runtime_checkable
class ListStreamer(Protocol):
    """A LIST whose items are handed on one by one while the answer arrives (informers use it
    when the client has it; a ``Lister`` alone is enough for fakes)."""

    def list_stream(
        self, path: str, *, params: Mapping[str, Any] | None = None, limit: int = 500
    ) -> ItemStream: ...


class Creator(Protocol):
    async def create(self, path: str, obj: Mapping[str, Any]) -> JsonObject: ...


class Watcher(Protocol):
    def watch(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        resource_version: str,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[tuple[str, JsonObject], None]: ...


class Writer(Creator, Protocol):
    async def apply(
        self,
        path: str,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = True,
        dry_run: bool = False,
    ) -> JsonObject: ...

    async def patch(self, path: str, patch: Any, *, patch_type: str = "merge") -> JsonObject: ...

    async def delete(
        self,
        path: str,
        *,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> JsonObject | None: ...


class ListWatcher(Lister, Watcher, Protocol):
    """List then watch: what an informer needs."""


class KubeApi(Getter, Lister, Writer, Protocol):
    """Read and write objects (no watch): what a reconciler pass needs."""
