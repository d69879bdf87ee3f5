"""The live exporter's settings: scope, sharding, and its tuning numbers, with their defaults.

One frozen object, built once from the command line (``apiserver.settings``) and passed down;
``docs/live-exporter.md`` lists every field with its flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kube.workqueue import RetryPolicy

RECONCILE_RETRY = RetryPolicy(initial=2.0, maximum=60.0)


@dataclass(frozen=True)
class ExporterOptions:
    namespaces: tuple[str, ...] = ()  # --namespaces: watch namespaced targets per namespace
    namespace_selector: str = ""  # --namespace-selector: export only objects of matching Namespaces
    shard: int = 0  # --shard
    total_shards: int = 1  # --total-shards
    status_interval: float = 3.0  # at most one status write per configuration this often (seconds)
    resolve_interval: float = 30.0  # re-resolve pending kinds this often even without CRD events
    crd_debounce: float = 0.2  # after a CRD event, wait this long for more before re-resolving
    page_size: int = 500  # objects per page of a consistent (paginated) LIST
    watch_timeout: int = 300  # timeoutSeconds of every WATCH request
    retry: RetryPolicy = RECONCILE_RETRY  # failed reconcile passes, per configuration
    retire_poll: float = 0.5  # after a re-shard, check this often whether the old informers are unused
    write_status: bool = True
    # Configurations from local files instead of the CRD (sidecar with a namespaced Role: it may
    # not list cluster-scoped MetricsConfigurations). They have no status to write.
    static_configs: tuple[Mapping[str, Any], ...] = ()
    # Automatic sharding (--pod): this pod's ordinal is the shard; the StatefulSet's replicas,
    # watched, the number of shards. Scaling the StatefulSet re-shards without a restart.
    statefulset: str = ""
    statefulset_namespace: str = ""
