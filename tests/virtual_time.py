"""A looptime-style event loop: time is virtual and jumps to the next timer when nothing is ready.

Tests of timing (back-off delays, periodic loops, server-side watch timeouts) run on it instead of
sleeping real seconds: ``loop.time()`` starts at 0 and advances only when the loop would otherwise
block, by exactly the time to its next scheduled callback. Real I/O still works (select is polled
without waiting first; when it has nothing, time moves on), which is how in-process fake servers
on loopback sockets keep working. The idea is the ``looptime`` pytest plugin's
(https://github.com/nolar/looptime), in a few lines and without a dependency.

Mark a test ``@pytest.mark.virtual_time`` to run it (and its function-scoped async fixtures) on
this loop; ``tests/unit/conftest.py`` wires the marker to pytest-asyncio's loop factories.
"""

from __future__ import annotations

import asyncio
import selectors


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout is None or timeout <= 0 or self.loop is None:
            if not ready and timeout is None:
                return super().select(None)  # nothing scheduled: wait for real I/O
            return ready
        # Give I/O in flight on loopback a moment (real, short), then move the clock.
        ready = super().select(min(timeout, 0.001))
        if not ready:
            self.loop.advance(timeout)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual (see the module docstring)."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds

    def __repr__(self) -> str:
        return f"<VirtualTimeLoop time={self._virtual_now:.3f}>"
