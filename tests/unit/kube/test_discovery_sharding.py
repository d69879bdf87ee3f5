"""Discovery (kind -> resource, version fallback, not found) and shard assignment."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import pytest

from kube.client import ApiError
from kube.discovery import RESOLVED, TARGET_NOT_FOUND, VERSION_FALLBACK, Discovery, ResolvedResource
from kube.sharding import fnv64a, jump_hash, pod_ordinal, shard_filter, shard_of


class StubClient:
    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs
        self.calls: list[str] = []

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(path)
        if path not in self.docs:
            raise ApiError(404, "NotFound", path)
        return self.docs[path]


def resources(*entries: tuple[str, str, bool]) -> dict[str, Any]:
    return {"kind": "APIResourceList",
            "resources": [{"name": n, "kind": k, "namespaced": ns} for n, k, ns in entries]}


DOCS = {
    "/api/v1": resources(
        ("pods", "Pod", True), ("pods/status", "Pod", True), ("namespaces", "Namespace", False)
    ),
    "/apis/example.com/v1": resources(("widgets", "Widget", True)),
    "/apis/example.com/v2": resources(("widgets", "Widget", True), ("gadgets", "Gadget", False)),
    "/apis/example.com": {"kind": "APIGroup", "name": "example.com", "preferredVersion": {"version": "v2"},
                          "versions": [{"version": "v2"}, {"version": "v1"}]},
}


async def test_resolve_core_and_group_kinds() -> None:
    d = Discovery(StubClient(DOCS))
    r = await d.resolve(group="", version="v1", kind="Pod")
    assert (r.reason, r.resource) == (RESOLVED, ResolvedResource("", "v1", "pods", "Pod", True))
    r = await d.resolve(group="", version="v1", kind="Namespace")
    assert r.resource is not None and not r.resource.namespaced
    r = await d.resolve(group="example.com", version="v1", kind="Widget")
    assert r.resource is not None and r.resource.api_version == "example.com/v1"


async def test_version_fallback_and_not_found_and_cache() -> None:
    client = StubClient(DOCS)
    d = Discovery(client)
    r = await d.resolve(group="example.com", version="v1beta1", kind="Widget")
    assert r.reason == VERSION_FALLBACK and r.resource is not None and r.resource.version == "v2"
    assert r.message == "example.com/v1beta1 is not served; using example.com/v2"
    r = await d.resolve(group="example.com", version="v1", kind="Gadget")
    assert r.reason == VERSION_FALLBACK and r.resource is not None and not r.resource.namespaced
    assert "does not serve kind Gadget" in r.message
    r = await d.resolve(group="nope.io", version="v1", kind="Thing")
    assert (r.reason, r.resource) == (TARGET_NOT_FOUND, None) and "CRD not installed" in r.message
    calls = len(client.calls)
    await d.resolve(group="nope.io", version="v1", kind="Thing")
    assert len(client.calls) == calls  # cached
    client.docs["/apis/nope.io/v1"] = resources(("things", "Thing", True))
    d.invalidate()
    assert (await d.resolve(group="nope.io", version="v1", kind="Thing")).reason == RESOLVED


def test_fnv64a_vectors() -> None:
    assert fnv64a(b"") == 0xCBF29CE484222325
    assert fnv64a(b"a") == 0xAF63DC4C8601EC8C
    assert fnv64a(b"foobar") == 0x85944171F73967E8


def test_jump_hash_is_balanced_and_consistent() -> None:
    uids = [f"{i:08x}-0000-4000-8000-{i * 7919:012x}" for i in range(3000)]
    counts = collections.Counter(shard_of(u, 3) for u in uids)
    assert set(counts) == {0, 1, 2} and min(counts.values()) > 850
    # growing 3 -> 4 shards only moves keys into the new shard
    for u in uids:
        before, after = shard_of(u, 3), shard_of(u, 4)
        assert after in (before, 3)
    assert jump_hash(12345, 1) == 0


def test_shard_filter_partitions() -> None:
    uids = [f"uid-{i}" for i in range(500)]
    filters = [shard_filter(s, 3) for s in range(3)]
    assert all(f is not None for f in filters)
    owners = [[s for s, f in enumerate(filters) if f and f(u)] for u in uids]
    assert all(len(o) == 1 for o in owners)
    assert shard_filter(0, 1) is None
    with pytest.raises(ValueError):
        shard_filter(3, 3)


def test_pod_ordinal() -> None:
    assert pod_ordinal("panopticon-12") == 12
    with pytest.raises(ValueError, match="ordinal"):
        pod_ordinal("panopticon-abc")
