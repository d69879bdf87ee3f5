"""Shards from a StatefulSet: this pod's ordinal is the shard, the set's replicas the total.

``statefulset_of_pod`` reads the pod and its owning StatefulSet once at start (``--pod``);
``StatefulSetWatch`` then watches that StatefulSet (I/O: one informer, one object) and calls
``reshard(shard, replicas)`` when it is scaled, so a running process re-shards without a
restart. The assignment itself (``jump_hash(fnv64a(uid))``) is ``kube.sharding``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kube.api import Getter, ListWatcher
from kube.informer import Informer, WatchTarget
from kube.paths import resource_path
from kube.sharding import pod_ordinal
from kube.telemetry import InformerTelemetry

log = logging.getLogger(__name__)


async def statefulset_of_pod(client: Getter, *, pod: str, namespace: str) -> tuple[int, int, str]:
    """(ordinal, replicas, StatefulSet name) of a StatefulSet pod."""
    ordinal = pod_ordinal(pod)
    pod_obj = await client.get(
        resource_path(group="", version="v1", resource="pods", namespace=namespace, name=pod)
    )
    refs = (pod_obj.get("metadata") or {}).get("ownerReferences") or ()
    owners = [o for o in refs if o.get("kind") == "StatefulSet"]
    if not owners:
        raise ValueError(f"pod {namespace}/{pod} is not owned by a StatefulSet")
    sts = await client.get(resource_path(
        group="apps", version="v1", resource="statefulsets", namespace=namespace, name=owners[0]["name"]
    ))
    replicas = int((sts.get("spec") or {}).get("replicas", 1))
    if ordinal >= replicas:
        raise ValueError(f"pod ordinal {ordinal} >= StatefulSet replicas {replicas}")
    return ordinal, replicas, str(owners[0]["name"])


class StatefulSetWatch:
    """Re-shard when the StatefulSet this process belongs to is scaled."""

    def __init__(
        self,
        client: ListWatcher,
        *,
        name: str,
        namespace: str,
        shard: Callable[[], tuple[int, int]],
        reshard: Callable[[int, int], None],
        telemetry: InformerTelemetry | None = None,
    ) -> None:
        self._shard = shard
        self._reshard = reshard
        self._informer = Informer(
            client,
            WatchTarget(group="apps", version="v1", resource="statefulsets", namespace=namespace,
                        field_selector=f"metadata.name={name}"),
            telemetry=telemetry,
        )
        self._informer.add_handler(self._on_statefulset)

    def start(self) -> None:
        self._informer.start()

    async def stop(self) -> None:
        await self._informer.stop()

    def _on_statefulset(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            return
        replicas = (obj.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 1:
            return
        shard, total = self._shard()
        if shard >= replicas:
            log.warning("StatefulSet scaled to %d replicas: shard %d is going away; keeping %d of %d",
                        replicas, shard, shard, total)
            return
        self._reshard(shard, replicas)
