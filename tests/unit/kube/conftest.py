"""Shared fixtures for the kube/ unit tests: an in-process fake API server and a client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_apiserver import FakeApiServer

from kube.client import KubeClient
from kube.config import ClientConfig


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
