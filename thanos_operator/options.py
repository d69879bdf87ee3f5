"""``OperatorOptions``: the Thanos operator's settings, in a module of their own.

``apiserver.settings`` builds them from ``panopticon serve``'s flags for every invocation, also
when the operator does not run (``--controllers=exporter``); keeping them apart from
``thanos_operator.service`` means that building the settings does not import the operator (its
pydantic models take a large share of the process's start-up, bench/README.md, initial sync).
"""

from __future__ import annotations

from dataclasses import dataclass

from kube.workqueue import RetryPolicy

FAILED_PASS_RETRY = RetryPolicy(initial=1.0, maximum=300.0)


@dataclass(frozen=True)
class OperatorOptions:
    """The operator's settings with their defaults (built from the flags by ``apiserver.settings``)."""

    leader_elect: bool = True  # --leader-elect
    lease_namespace: str = ""  # --leader-elect-namespace (default: the client's namespace)
    lease_duration: float = 15.0  # --leader-elect-lease-duration; renew deadline 2/3, retry 1/7.5 of it
    namespaces: tuple[str, ...] = ()  # --namespaces: watch only these (default: all)
    watch_namespace: str = ""  # --watch-namespace (deprecated: one namespace, the operator only)
    resync_period: float = 300.0  # --resync-period: every Thanos is reconciled again this often
    workers: int = 2  # concurrent reconcile passes (of different Thanos objects)
    retry: RetryPolicy = FAILED_PASS_RETRY  # per-Thanos back-off after a failed pass
    retry_after: float = 1.0  # look again this soon while a rollout is in progress (RetryLater)
    identity: str = ""
    default_image: str = ""  # --thanos-default-image ("" = names.DEFAULT_THANOS_IMAGE)
    default_envoy_image: str = ""  # --envoy-default-image ("" = names.DEFAULT_ENVOY_IMAGE)
