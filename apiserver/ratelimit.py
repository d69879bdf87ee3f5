"""Rate-limited logging for events that clients can cause at will (bad requests, slow readers).

A client error is not a server error: it is counted (telemetry) and logged in one line, at most
``burst`` lines per ``interval`` seconds; the next line after a quiet period says how many were
suppressed. So a flood of malformed requests costs a few log lines, not megabytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._burst, self._interval, self._clock = logger, burst, interval, clock
        self._window = -interval
        self._count = 0
        self.suppressed = 0

    def allow(self) -> bool:
        """Whether a line may be written now (counts the attempt either way)."""
        now = self._clock()
        if now - self._window >= self._interval:
            self._window, self._count = now, 0
        self._count += 1
        if self._count > self._burst:
            self.suppressed += 1
            return False
        return True

    def log(self, level: int, message: str, *args: object, exc_info: bool = False) -> None:
        if not self.allow():
            return
        if self.suppressed:
            message = f"{message} (%d similar lines suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self._log.log(level, message, *args, exc_info=exc_info)
