"""EncodedItems: an item's JSON is reused while its version is the one served, within a byte budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from apiserver.encoded import EncodedItems


@dataclass(eq=False)
class Snap:
    name: str
    value: int
    rv: int = 1


def make(budget: int = 1 << 20) -> tuple[EncodedItems, list[str]]:
    converted: list[str] = []

    def to_object(item: Snap) -> dict[str, Any]:
        converted.append(item.name)
        return {"name": item.name, "value": item.value}

    cache = EncodedItems(
        key=lambda s: ("", s.name), version=lambda s: s.rv, to_object=to_object, budget=budget
    )
    return cache, converted


def test_a_version_is_encoded_once_and_a_new_version_of_the_same_key_again() -> None:
    cache, converted = make()
    a = Snap("a", 1)
    assert orjson.loads(cache(a)) == {"name": "a", "value": 1}
    assert cache(a) is cache(a) and converted == ["a"]
    assert cache(Snap("a", 1)) is cache(a)  # an equal snapshot at the same version shares the bytes
    changed = Snap("a", 2, rv=2)  # same key, a new version: never the stale bytes
    assert orjson.loads(cache(changed)) == {"name": "a", "value": 2}
    assert converted == ["a", "a"] and len(cache) == 1
    assert cache.size == len(orjson.dumps({"name": "a", "value": 2}))
    assert (cache.hits, cache.misses) == (4, 2)


def test_the_budget_evicts_the_least_recently_listed_first() -> None:
    one = len(orjson.dumps({"name": "a", "value": 1}))
    cache, converted = make(budget=2 * one)
    a, b, c = Snap("a", 1), Snap("b", 1), Snap("c", 1)
    cache(a), cache(b)
    cache(a)  # a is now the most recent
    cache(c)  # over budget: b goes
    assert cache.size <= cache.budget and len(cache) == 2
    converted.clear()
    cache(a), cache(c)
    assert converted == []
    cache(b)
    assert converted == ["b"]


def test_an_item_larger_than_the_budget_is_served_but_not_kept() -> None:
    cache, _ = make(budget=4)
    big = Snap("big", 123456)
    assert orjson.loads(cache(big))["value"] == 123456
    assert len(cache) == 0 and cache.size == 0
