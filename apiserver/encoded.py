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
from collections.abc import Callable
from typing import Any

import orjson

DEFAULT_BUDGET = 64 * 1024 * 1024


class EncodedItems:
    """A bounded map of item key -> its version and encoded JSON (see the module docstring).

    Keys are ``"<namespace>/<name>"`` strings and the two maps hold only ints and bytes: none of
    it is tracked by the cyclic GC, so filling the cache never triggers a full collection.
    """

    def __init__(
        self,
        *,
        key: Callable[[Any], tuple[str, str]],
        version: Callable[[Any], int],
        to_object: Callable[[Any], dict[str, Any]],
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        self._key, self._version, self._to_object, self.budget = key, version, to_object, budget
        self._encoded: OrderedDict[str, bytes] = OrderedDict()  # least recently listed first
        self._versions: dict[str, int] = {}
        self.size = 0
        self.hits = 0
        self.misses = 0

    def __call__(self, item: Any) -> bytes:
        """The item's JSON: cached while the item's version is the one it was encoded at."""
        namespace, name = self._key(item)
        key, version = f"{namespace}/{name}", self._version(item)
        if self._versions.get(key) == version:
            self._encoded.move_to_end(key)
            self.hits += 1
            return self._encoded[key]
        self.misses += 1
        encoded = orjson.dumps(self._to_object(item))
        stale = self._encoded.pop(key, None)
        if stale is not None:
            self.size -= len(stale)
            del self._versions[key]
        if len(encoded) > self.budget:
            return encoded
        self._encoded[key] = encoded
        self._versions[key] = version
        self.size += len(encoded)
        while self.size > self.budget:
            dropped_key, dropped = self._encoded.popitem(last=False)
            del self._versions[dropped_key]
            self.size -= len(dropped)
        return encoded

    def __len__(self) -> int:
        return len(self._encoded)
