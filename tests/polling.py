"""Waiting for a condition in tests: poll until a predicate returns something truthy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(
    predicate: Callable[[], Any], *, timeout: float, interval: float, failure: Callable[[Any], str]
) -> Any:
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, polled every ``interval``;
    else AssertionError with ``failure(last value)``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(failure(last))
