"""Kubernetes Events about MetricsConfigurations (I/O: best-effort POSTs of ``core/v1`` Events).

What the controller tells a user once rather than in every status write: today, the paths a
configuration reads that its target's schema cannot have (``Warning``, reason ``UnknownPath``),
once per distinct outcome. MetricsConfigurations are cluster-scoped, so their Events live in
the ``default`` namespace, as Node events do; ``kubectl describe metricsconfiguration NAME``
shows them. Events are best effort: a failed POST is logged at debug level, the status
condition holds the state. ``config_event`` (pure) builds the object.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.cluster.status_writer import CONFIG_GROUP, CONFIG_VERSION
from kube.api import Creator
from kube.client import ApiError
from kube.conditions import now_rfc3339
from kube.paths import resource_path

log = logging.getLogger(__name__)

EVENT_NAMESPACE = "default"  # where Events about cluster-scoped objects go
MAX_MESSAGE = 1024


def config_event(
    config: Mapping[str, Any], *, type_: str, reason: str, message: str, component: str, now: str
) -> dict[str, Any]:
    """A ``core/v1`` Event about the MetricsConfiguration ``config`` (pure)."""
    meta = config.get("metadata") or {}
    name = str(meta.get("name", ""))
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": EVENT_NAMESPACE},
        "involvedObject": {"apiVersion": f"{CONFIG_GROUP}/{CONFIG_VERSION}", "kind": "MetricsConfiguration",
                           "name": name, "uid": str(meta.get("uid", ""))},
        "type": type_, "reason": reason, "message": message,
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


@dataclass(kw_only=True, frozen=True)
class EventRecorder:
    client: Creator
    enabled: bool  # False (configurations from files, --no-write-status): never POST
    component: str = "panopticon"

    async def warn(self, config: Mapping[str, Any], *, reason: str, message: str) -> None:
        if not self.enabled:
            return
        event = config_event(config, type_="Warning", reason=reason, message=message,
                             component=self.component, now=now_rfc3339())
        try:
            await self.client.create(
                resource_path(group="", version="v1", resource="events", namespace=EVENT_NAMESPACE), event)
        except (ApiError, OSError, TimeoutError) as err:
            log.debug("event %s for configuration %s not recorded: %s", reason,
                      event["involvedObject"]["name"], err)
