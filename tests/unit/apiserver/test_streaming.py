"""Slicing: concurrent list loops share one slice budget per turn of the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from apiserver import streaming
from apiserver.streaming import select


async def test_concurrent_selects_split_the_budget_and_release_it() -> None:
    seen: list[int] = []

    def slow_keep(item: int) -> bool:
        seen.append(streaming._SliceBudget.active)
        time.sleep(0.00005)
        return item % 2 == 0

    first, second = await asyncio.gather(
        select(range(2000), slow_keep, slice_seconds=0.002),
        select(range(2000), slow_keep, slice_seconds=0.002),
    )
    assert first == second == list(range(0, 2000, 2))
    assert max(seen) == 2  # both loops were active at once, each with half the budget
    assert streaming._SliceBudget.active == 0
    assert streaming._SliceBudget.share(0.002) == 0.002


async def test_the_budget_is_released_when_a_filter_raises() -> None:
    def boom(item: int) -> bool:
        raise RuntimeError("bad item")

    with pytest.raises(RuntimeError):
        await select(range(10), boom)
    assert streaming._SliceBudget.active == 0
