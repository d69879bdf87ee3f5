"""Unit-test wiring shared by the packages' tests.

- ``@pytest.mark.virtual_time`` runs a test on ``tests.virtual_time.VirtualTimeLoop``:
  pytest-asyncio asks ``pytest_asyncio_loop_factories`` which loop factory each test gets;
  marked tests get the virtual-time loop, every other test asyncio's default loop.
- ``fake`` / ``client``: an in-process fake API server (``tests/unit/kube/fake_apiserver.py``)
  and a ``KubeClient`` to it, for the ``kube/`` tests and the live exporter's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest

from kube.client import KubeClient
from kube.config import ClientConfig
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.virtual_time import VirtualTimeLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("virtual_time") is not None:
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeApiServer) -> AsyncIterator[KubeClient]:
    async with KubeClient(ClientConfig(server=fake.url), timeout=5) as c:
        yield c
