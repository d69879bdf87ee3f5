"""The Thanos operator as a ``panopticon serve`` component: own API clients, leader election, controller.

The operator uses its own ``KubeClient`` with the user agent ``panopticon-thanos/<identity>``
(and the Lease another one, ``panopticon-leader-election/<identity>``), so its requests can be
told apart in the kube-apiserver's audit log: from the exporter's, between replicas, and from
the Lease renewals, which are the only writes a converged operator makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from kube.client import KubeClient
from kube.config import ClientConfig
from kube.lease import LeaderElector, LeaseConfig
from thanos_operator.controller import ThanosController
from thanos_operator.names import DEFAULT_ENVOY_IMAGE, DEFAULT_THANOS_IMAGE
from thanos_operator.options import OperatorOptions
from thanos_operator.render import DefaultImages

log = logging.getLogger(__name__)

USER_AGENT = "panopticon-thanos"
LEASE_USER_AGENT = "panopticon-leader-election"
LEASE_NAME = "panopticon-thanos-operator"


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


class ThanosOperator:
    name = "thanos-operator"

    def __init__(self, config: ClientConfig, options: OperatorOptions) -> None:
        self.options = options
        self.identity = options.identity or default_identity()
        # The identity in the user agent tells replicas apart in the audit log.
        self.client = KubeClient(config, user_agent=f"{USER_AGENT}/{self.identity}")
        self.lease_client = KubeClient(config, user_agent=f"{LEASE_USER_AGENT}/{self.identity}", timeout=10.0)
        self.controller = ThanosController(
            self.client,
            namespace=options.watch_namespace or None,
            namespaces=options.namespaces,
            resync_period=options.resync_period,
            workers=options.workers,
            identity=self.identity,
            images=DefaultImages(
                thanos=options.default_image or DEFAULT_THANOS_IMAGE,
                envoy=options.default_envoy_image or DEFAULT_ENVOY_IMAGE,
            ),
            retry_after=options.retry_after,
            retry=options.retry,
        )
        self.elector: LeaderElector | None = None
        if options.leader_elect:
            duration = options.lease_duration
            self.elector = LeaderElector(
                self.lease_client,
                LeaseConfig(
                    namespace=options.lease_namespace or config.namespace,
                    name=LEASE_NAME,
                    identity=self.identity,
                    lease_duration=duration,
                    renew_deadline=duration * 2 / 3,
                    retry_period=max(0.5, duration / 7.5),
                ),
            )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.elector is not None:
            self._task = asyncio.create_task(
                self.elector.run(self.controller.run), name="thanos-leader-election"
            )
        else:
            self._task = asyncio.create_task(self.controller.run(), name="thanos-controller")
        log.info(
            "thanos operator started (identity %s, leader election %s)",
            self.identity,
            "on" if self.elector else "off",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.close()
        await self.lease_client.close()
