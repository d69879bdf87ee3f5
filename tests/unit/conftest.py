"""Unit-test wiring: ``@pytest.mark.virtual_time`` runs a test on the virtual-time loop.

pytest-asyncio asks ``pytest_asyncio_loop_factories`` which loop factory each test gets; marked
tests get ``tests.virtual_time.VirtualTimeLoop``, every other test asyncio's default loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from tests.virtual_time import VirtualTimeLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("virtual_time") is not None:
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}
