"""Which shard owns an object: FNV-64a of its UID, then jump consistent hash.

The same assignment kube-state-metrics uses (kubernetes/kube-state-metrics
``pkg/sharding/listwatch.go``), so a UID lands on the
same shard in both, and changing the shard count moves only ~1/n of the objects. Pure functions,
plus the StatefulSet ordinal parsing for automatic sharding (``--pod``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3
MASK64 = 0xFFFFFFFFFFFFFFFF


def fnv64a(data: bytes) -> int:
    h = FNV64_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV64_PRIME) & MASK64
    return h


def jump_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: a bucket in ``[0, buckets)``."""
    if buckets <= 0:
        raise ValueError("buckets must be positive")
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(uid: str, total_shards: int) -> int:
    return jump_hash(fnv64a(uid.encode()), total_shards)


def shard_filter(shard: int, total_shards: int) -> Callable[[str], bool] | None:
    """A ``keep(uid)`` predicate for this shard; ``None`` when there is only one shard."""
    if total_shards < 1 or not 0 <= shard < total_shards:
        raise ValueError(f"--shard must be in [0, {total_shards}) and --total-shards >= 1")
    if total_shards == 1:
        return None

    def keep(uid: str) -> bool:
        return shard_of(uid, total_shards) == shard

    return keep


_ORDINAL = re.compile(r"-(\d+)$")


def pod_ordinal(pod_name: str) -> int:
    """The StatefulSet ordinal at the end of a pod name (``kube-state-metrics-2`` -> 2)."""
    m = _ORDINAL.search(pod_name)
    if not m:
        raise ValueError(f"pod name {pod_name!r} does not end in a StatefulSet ordinal (-N)")
    return int(m.group(1))
