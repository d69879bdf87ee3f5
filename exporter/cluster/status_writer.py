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
from dataclasses import dataclass
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


@dataclass(kw_only=True, frozen=True)
class StatusWriter:
    client: Patcher
    desired: Callable[[ConfigState], dict[str, Any]]  # the status a configuration should have
    telemetry: ConfigTelemetry
    interval: float  # seconds between two writes of one configuration, at least
    enabled: bool  # False: record what would be written, never patch

    async def write(self, states: Iterable[ConfigState], *, force: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        for state in list(states):
            if state.raw is None or (state.plan is None and not state.error_reason):
                continue
            desired = self.desired(state)
            if desired == state.written:
                continue
            if not force and state.written_at is not None and now - state.written_at < self.interval:
                continue
            if not self.enabled:
                state.written, state.written_at = desired, now
                continue
            state.written_at = now
            try:
                await self.client.patch(status_path(state.name), {"status": desired})
            except NotFound as err:
                self.telemetry.wrote(state.name, ok=False)
                log.debug("configuration %s: no status subresource (%s)", state.name, err)
                continue
            except (ApiError, OSError, TimeoutError) as err:
                self.telemetry.wrote(state.name, ok=False)
                log.warning("configuration %s: status write failed: %s", state.name, err)
                continue
            self.telemetry.wrote(state.name, ok=True)
            state.written = desired
