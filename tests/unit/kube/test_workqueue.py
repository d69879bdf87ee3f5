"""The work queue on virtual time: de-duplication, re-queue on change, back-off bounds, stop."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from kube.workqueue import RetryPolicy, WorkQueue

pytestmark = pytest.mark.virtual_time


class Recorder:
    """A ``process`` that records (loop time, key) and can be told to fail, block or wait."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []
        self.fail: set[str] = set()
        self.again: dict[str, float] = {}
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.most_at_once = 0

    async def __call__(self, key: str) -> float | None:
        self.calls.append((asyncio.get_running_loop().time(), key))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if key in self.fail:
                raise OSError(f"{key}: connection refused")
            return self.again.get(key)
        finally:
            self.running -= 1

    def keys(self) -> list[str]:
        return [k for _, k in self.calls]


async def test_the_loop_runs_on_virtual_time() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(3600)
    assert 3600 <= loop.time() - started < 3601


async def test_a_key_added_many_times_before_a_worker_takes_it_is_processed_once() -> None:
    process = Recorder()
    queue: WorkQueue[str] = WorkQueue(process, name="test")
    for key in ("a", "b", "a", "a", "b", "c"):
        queue.add(key)
    assert queue.waiting() == {"a", "b", "c"}
    queue.start()
    assert await queue.wait_idle(5)
    await queue.stop()
    assert process.keys() == ["a", "b", "c"]
    assert (queue.passes, queue.failures) == (3, 0)


async def test_a_key_changed_while_processed_runs_again_after_never_concurrently() -> None:
    process = Recorder()
    process.gate = asyncio.Event()
    queue: WorkQueue[str] = WorkQueue(process, name="test", workers=4)
    queue.add("a")
    queue.start()
    await asyncio.sleep(0.1)
    assert process.keys() == ["a"]  # the first pass is running (blocked on the gate)
    queue.add("a")
    queue.add("a")
    await asyncio.sleep(0.1)
    assert process.keys() == ["a"] and not queue.idle  # not a second concurrent pass
    process.gate.set()
    assert await queue.wait_idle(5)
    await queue.stop()
    assert process.keys() == ["a", "a"]  # one more pass for all the changes during the first
    assert process.most_at_once == 1


async def test_distinct_keys_run_concurrently_up_to_the_worker_count() -> None:
    process = Recorder()
    process.gate = asyncio.Event()
    queue: WorkQueue[str] = WorkQueue(process, name="test", workers=2)
    for key in "abc":
        queue.add(key)
    queue.start()
    await asyncio.sleep(0.1)
    assert process.running == 2
    process.gate.set()
    assert await queue.wait_idle(5)
    await queue.stop()
    assert sorted(process.keys()) == ["a", "b", "c"] and process.most_at_once == 2


async def test_failures_back_off_exponentially_with_jitter_per_key_and_reset_on_success() -> None:
    process = Recorder()
    process.fail = {"bad"}
    policy = RetryPolicy(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5)
    queue: WorkQueue[str] = WorkQueue(process, name="test", retry=policy, rng=random.Random(7))
    queue.add("bad")
    queue.add("good")
    queue.start()
    await asyncio.sleep(60)
    bad = [t for t, k in process.calls if k == "bad"]
    gaps = [b - a for a, b in itertools.pairwise(bad)]
    steps = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(gaps) >= len(steps)
    for gap, step in zip(gaps, steps, strict=False):
        assert step * 0.5 <= gap <= step + 0.01, (gap, step)  # within the jitter band of its step
    assert all(g <= 8.0 + 0.01 for g in gaps)  # never beyond the maximum
    assert len(set(gaps[3:])) > 1  # jittered: capped delays are not all the same
    assert process.keys().count("good") == 1  # the other key is unaffected
    assert queue.failures == len(bad)
    # A success resets the key's back-off: the next failure waits the initial step again.
    process.fail.clear()
    await asyncio.sleep(10)
    calls = len(process.calls)
    assert queue.idle and queue.next_retry("bad") is None
    process.fail = {"bad"}
    queue.add("bad")
    await asyncio.sleep(0.01)
    failed_at = process.calls[-1][0]
    await asyncio.sleep(1.01)
    assert len(process.calls) == calls + 2
    assert 0.5 <= process.calls[-1][0] - failed_at <= 1.01
    await queue.stop()


async def test_a_returned_delay_requeues_without_counting_a_failure() -> None:
    process = Recorder()
    process.again = {"rolling": 5.0}
    queue: WorkQueue[str] = WorkQueue(process, name="test")
    queue.add("rolling")
    queue.start()
    await asyncio.sleep(12)
    await queue.stop()
    times = [t for t, _ in process.calls]
    assert len(times) == 3 and [round(b - a, 3) for a, b in itertools.pairwise(times)] == [5.0, 5.0]
    assert queue.failures == 0


async def test_add_after_keeps_the_earlier_deadline() -> None:
    process = Recorder()
    queue: WorkQueue[str] = WorkQueue(process, name="test")
    queue.start()
    start = asyncio.get_running_loop().time()
    queue.add_after("a", 10)
    queue.add_after("a", 3)
    queue.add_after("a", 20)
    assert queue.next_retry("a") == pytest.approx(start + 3)
    await asyncio.sleep(30)
    await queue.stop()
    assert [round(t - start, 3) for t, _ in process.calls] == [3.0]


async def failed_once(key: str) -> tuple[Recorder, WorkQueue[str]]:
    """A running queue whose first pass of ``key`` has failed (its retry timer is pending)."""
    process = Recorder()
    process.fail = {key}
    queue: WorkQueue[str] = WorkQueue(process, name="test")
    queue.add(key)
    queue.start()
    await asyncio.sleep(0.01)
    return process, queue


async def test_stop_cancels_timers_and_running_passes_and_ignores_later_adds() -> None:
    process, queue = await failed_once("a")
    assert queue.next_retry("a") is not None  # a retry timer is pending
    process.gate = asyncio.Event()
    queue.add("b")
    await asyncio.sleep(0.01)
    assert process.running == 1  # "b" is blocked inside process
    await queue.stop()
    assert process.running == 0 and queue.next_retry("a") is None
    queue.add("c")
    queue.add_after("c", 1)
    await asyncio.sleep(100)
    assert process.keys() == ["a", "b"]
    assert not [t for t in asyncio.all_tasks() if "worker" in t.get_name()]


async def test_forget_drops_a_pending_retry() -> None:
    process, queue = await failed_once("a")
    queue.forget("a")
    await asyncio.sleep(100)
    await queue.stop()
    assert process.keys() == ["a"]


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        WorkQueue(Recorder(), name="test", workers=0)
