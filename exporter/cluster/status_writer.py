"""Writing MetricsConfiguration status (I/O: JSON merge patches of the ``status`` subresource).

At most one write per configuration every ``interval`` seconds, none when the status has not
changed since the last write; ``force`` skips the rate limit (not the "unchanged" check).
Configurations from files (``--config``) and ``write=False`` record what they would write and
never talk to the API. Every write is counted (``panopticon_configuration_status_writes_total``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from exporter.cluster.state import ConfigState
from exporter.cluster.telemetry import ConfigTelemetry
from kube.client import ApiError, NotFound
from kube.paths import resource_path

log = logging.getLogger(__name__)

CONFIG_GROUP, CONFIG_VERSION, CONFIG_RESOURCE = "metrics.appscode.com", "v1alpha1", "metricsconfigurations"


class Patcher(Protocol):
    async def patch(self, path: str, patch: Any, *, patch_type: str = "merge") -> dict[str, Any]: ...


def status_path(name: str) -> str:
    return resource_path(group=CONFIG_GROUP, version=CONFIG_VERSION, resource=CONFIG_RESOURCE,
                         name=name, subresource="status")


class StatusWriter:
    def __init__(
        self,
        client: Patcher,
        *,
        desired: Callable[[ConfigState], dict[str, Any]],
        telemetry: ConfigTelemetry,
        interval: float,
        write: bool,
    ) -> None:
        self._client = client
        self._desired = desired
        self._telemetry = telemetry
        self._interval = interval
        self._write = write

    async def write(self, states: Iterable[ConfigState], *, force: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        for state in list(states):
            if state.raw is None or (state.plan is None and not state.error_reason):
                continue
            desired = self._desired(state)
            if desired == state.written:
                continue
            if not force and state.written_at is not None and now - state.written_at < self._interval:
                continue
            if not self._write:
                state.written, state.written_at = desired, now
                continue
            state.written_at = now
            try:
                await self._client.patch(status_path(state.name), {"status": desired})
            except NotFound as err:
                self._telemetry.wrote(state.name, ok=False)
                log.debug("configuration %s: no status subresource (%s)", state.name, err)
                continue
            except (ApiError, OSError, TimeoutError) as err:
                self._telemetry.wrote(state.name, ok=False)
                log.warning("configuration %s: status write failed: %s", state.name, err)
                continue
            self._telemetry.wrote(state.name, ok=True)
            state.written = desired
