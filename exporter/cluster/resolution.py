"""Keeping discovery fresh: which kinds are served changes when CustomResourceDefinitions do.

A configuration whose kind is not served (``TargetNotFound``) stays pending; one whose pinned
version went away falls back (``VersionFallback``). Both must be resolved again when the set
of served kinds changes. ``Reresolution`` watches CustomResourceDefinitions (I/O: one informer)
and, a moment after any CRD event (events come in bursts: ``debounce`` seconds), drops the
discovery cache and asks the controller to reconcile every configuration. Where CRDs cannot
be watched (403, e.g. with a namespaced Role) it stops that informer and instead, every
``interval`` seconds, drops the cache and re-queues the pending configurations; ``tick`` (the
controller's periodic loop) drives that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kube.api import ListWatcher
from kube.client import Forbidden
from kube.discovery import Discovery
from kube.informer import Informer, WatchTarget
from kube.telemetry import InformerTelemetry

log = logging.getLogger(__name__)

CRDS = WatchTarget(group="apiextensions.k8s.io", version="v1", resource="customresourcedefinitions")


@dataclass(kw_only=True, eq=False)
class Reresolution:
    client: ListWatcher
    discovery: Discovery
    resolve_all: Callable[[], None]  # reconcile every configuration
    pending: Callable[[], list[str]]  # the configurations whose kind is not served
    enqueue: Callable[[str], None]
    interval: float
    debounce: float
    telemetry: InformerTelemetry | None = None
    watching_crds: bool = field(default=True, init=False)
    _informer: Informer | None = field(default=None, init=False)
    _timer: asyncio.TimerHandle | None = field(default=None, init=False)
    _last_periodic: float = field(default=0.0, init=False)

    def start(self) -> None:
        self._last_periodic = asyncio.get_running_loop().time()
        self._informer = Informer(self.client, CRDS, telemetry=self.telemetry)
        self._informer.add_handler(self._on_crd)
        self._informer.start()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        informer, self._informer = self._informer, None
        if informer is not None:
            await informer.stop()

    def _on_crd(self, event_type: str, obj: dict[str, Any]) -> None:
        # A CRD appeared, changed its served versions, or went away: discovery is stale.
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.discovery.invalidate()
        self.resolve_all()

    async def tick(self) -> None:
        """The periodic part (called about every second): fallback and interval re-resolution."""
        crds = self._informer
        if crds is not None and not crds.has_synced and isinstance(crds.last_exception, Forbidden):
            log.warning("cannot watch CustomResourceDefinitions (%s); re-resolving pending kinds "
                        "every %.0fs instead", crds.last_error, self.interval)
            self.watching_crds = False
            self._informer = None
            await crds.stop()
        now = asyncio.get_running_loop().time()
        if now - self._last_periodic >= self.interval:
            self._last_periodic = now
            pending = self.pending()
            if pending or not self.watching_crds:
                self.discovery.invalidate()
                for name in pending:
                    self.enqueue(name)
