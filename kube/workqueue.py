"""One work queue for controllers: keys in, one ``process(key)`` pass at a time per key, retries.

A controller's event handlers only say *which* key (a configuration name, a ``(namespace,
name)``) needs attention: ``add(key)``. Workers take keys and run ``process(key)``, which reads
the current state and converges it; events that arrive in between are folded into one pass.
The rules (those of client-go's ``util/workqueue`` and kopf's per-object queueing in
``kopf/_core/reactor/queueing.py``):

- De-duplication: a key waiting in the queue is there once, however many events named it.
- Re-queue on change: a key added while it is being processed is not processed concurrently
  (never two passes of one key at once); it is queued again when the running pass ends,
  because that pass may have read the state from before the change.
- Retries: when ``process`` raises, the key comes back after its own exponential back-off
  with full jitter (``kube.backoff.Backoff``; reset by the next successful pass). ``process``
  may instead return a number of seconds: the key comes back after that delay (a planned
  wait, e.g. for a rollout) without counting as a failure.
- Delayed adds (``add_after``) are timers the queue keeps; for a key with a pending timer
  the earlier deadline wins.
- Clean stop: ``stop()`` cancels every timer and worker and waits for them; adds after that
  are ignored.

Time is the event loop's (``loop.time()``, ``loop.call_later``), so tests run the queue on a
virtual-time loop (``tests/virtual_time.py``) instead of sleeping real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kube.backoff import Backoff
from kube.client import ApiError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# What ``process`` returns: ``None`` when done, or seconds after which to look at the key again.
Process = Callable[[K], Awaitable[float | None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-key exponential back-off of failed passes (see ``kube.backoff``)."""

    initial: float = 1.0  # seconds before the first retry
    maximum: float = 300.0  # the delay stops growing here
    factor: float = 2.0
    jitter: float = 0.5  # each delay is drawn from [(1 - jitter) * step, step]

    def backoff(self, rng: random.Random) -> Backoff:
        return Backoff(initial=self.initial, maximum=self.maximum, factor=self.factor, jitter=self.jitter,
                       rng=rng)


class WorkQueue(Generic[K]):
    """De-duplicating, per-key retrying work queue with ``workers`` concurrent passes."""

    def __init__(
        self,
        process: Process[K],
        *,
        name: str,
        workers: int = 1,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.name = name
        self._process = process
        self._workers = workers
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._backoff: dict[K, Backoff] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.passes = 0  # passes run (successful or not)
        self.failures = 0  # passes that raised

    # ---- producers -------------------------------------------------------------------------------
    def add(self, key: K) -> None:
        """Process ``key`` soon (once, however often it is added before a worker takes it)."""
        if self._closed:
            return
        if key in self._active:
            self._dirty.add(key)  # run again after the current pass: it may have read stale state
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """``add(key)`` in ``delay`` seconds (the earlier deadline wins for a key already waiting)."""
        if self._closed:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= deadline:
                return
            pending[1].cancel()
        self._timers[key] = (deadline, loop.call_at(deadline, self._fire, key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s back-off and drop its pending retry (e.g. the object was deleted)."""
        self._backoff.pop(key, None)
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    # ---- state -----------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """Nothing queued, running or waiting to run again (pending retry timers aside)."""
        return not self._queued and not self._active and not self._dirty

    def waiting(self) -> set[K]:
        """Keys queued, running, or with a pending retry."""
        return self._queued | self._active | self._dirty | set(self._timers)

    def next_retry(self, key: K) -> float | None:
        """The loop time at which ``key``'s pending timer fires (``None``: no timer)."""
        pending = self._timers.get(key)
        return pending[0] if pending is not None else None

    def take_queued(self) -> list[K]:
        """Remove and return the keys waiting for a worker, in order (tests of handlers)."""
        keys: list[K] = []
        while not self._queue.empty():
            keys.append(self._queue.get_nowait())
        self._queued.clear()
        return keys

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._tasks or self._closed:
            return
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.name} worker {i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        """Cancel pending timers and running passes; wait for the workers to end."""
        self._closed = True
        for _deadline, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self, timeout: float = 30.0, *, poll: float = 0.05) -> bool:
        """True once ``idle`` holds; False after ``timeout`` seconds (loop time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.idle:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True

    # ---- workers ---------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self._pass(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)

    async def _pass(self, key: K) -> None:
        try:
            again = await self._process(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.passes += 1
            self.failures += 1
            backoff = self._backoff.get(key)
            if backoff is None:
                backoff = self._backoff[key] = self._retry.backoff(self._rng)
            delay = backoff.next_delay()
            expected = isinstance(exc, ApiError | OSError | TimeoutError)  # no traceback for those
            log.warning("%s %s: pass failed (%s: %s); retry in %.1fs", self.name, key, type(exc).__name__,
                        exc, delay, exc_info=not expected)
            self.add_after(key, delay)
            return
        self.passes += 1
        self._backoff.pop(key, None)
        if again is not None:
            self.add_after(key, again)


__all__ = ["Process", "RetryPolicy", "WorkQueue"]
