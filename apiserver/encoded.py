"""Each served item's JSON, encoded once and reused by every list until the item changes.

Converting a store entry into its API object (parsing its series back out of the Prometheus
text, building labels and metadata) costs about 0.3 ms per ``ObjectMetrics``: a list of 5,000
is 1.5 s of CPU, and five clients listing at once kept the event loop too busy to answer probes
in time (issue 9 item 7). Items are immutable snapshots and every change gives the item a new
resourceVersion, so the encoded bytes of an item stay right for exactly as long as its
resourceVersion is the one served: ``EncodedItems`` keys them by the item's (namespace, name) and
checks the version. Entries hold only strings, an int and bytes (no reference to the snapshot),
so the garbage collector untracks them and a full collection does not walk the cache.

The cache is bounded by bytes (least recently listed first out), so a store of 50,000 objects
listed once costs at most ``budget`` bytes here, not a second copy of everything. A miss is
what every list cost before; a hit is a dictionary lookup.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import orjson

DEFAULT_BUDGET = 64 * 1024 * 1024


class EncodedItems:
    """A bounded map of item key -> (its version, its encoded JSON) (see the module docstring)."""

    def __init__(
        self,
        *,
        key: Callable[[Any], Hashable],
        version: Callable[[Any], int],
        to_object: Callable[[Any], dict[str, Any]],
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        self._key, self._version, self._to_object, self.budget = key, version, to_object, budget
        self._cache: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0

    def __call__(self, item: Any) -> bytes:
        """The item's JSON: cached while the item's version is the one it was encoded at."""
        key, version = self._key(item), self._version(item)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            self._cache.move_to_end(key)
            self.hits += 1
            return cached[1]
        self.misses += 1
        encoded = orjson.dumps(self._to_object(item))
        if cached is not None:
            self.size -= len(cached[1])
        if len(encoded) > self.budget:
            self._cache.pop(key, None)
            return encoded
        self._cache[key] = (version, encoded)
        self._cache.move_to_end(key)
        self.size += len(encoded)
        while self.size > self.budget:
            _, (_, dropped) = self._cache.popitem(last=False)
            self.size -= len(dropped)
        return encoded

    def __len__(self) -> int:
        return len(self._cache)
