"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Several replicas run the same controller; only the holder of the Lease acts. A candidate takes
the Lease when it is free or when its record has not changed for ``lease_duration`` *as
observed locally* (clocks of different machines are never compared: we remember when we last
saw the record change, on our own monotonic clock). The holder renews every ``retry_period``;
if it cannot renew for ``renew_deadline`` it stops leading (its callback is cancelled) before
another candidate can take over. Every write carries the read ``resourceVersion``, so two
candidates racing for a free Lease cannot both win (the loser gets 409 Conflict).

Flow: ``LeaderElector.run(lead)`` loops acquire -> ``lead()`` runs as a task while renewals
succeed -> on loss ``lead()`` is cancelled and the loop tries to acquire again. On a clean stop
the holder releases the Lease (empties ``holderIdentity``) so a successor need not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kube.api import Creator, Getter
from kube.client import ApiError, Conflict, NotFound
from kube.paths import resource_path

log = logging.getLogger(__name__)


class LeaseApi(Getter, Creator, Protocol):
    async def request(self, method: str, path: str, *, json: Any = None) -> Any: ...


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def micro_time(moment: datetime) -> str:
    """``metav1.MicroTime`` text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self, client: LeaseApi, config: LeaseConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.config = config
        self._clock = clock
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self.is_leader = False
        self.transitions = 0  # times this process became leader

    @property
    def _collection(self) -> str:
        return resource_path(
            group="coordination.k8s.io", version="v1", resource="leases", namespace=self.config.namespace
        )

    @property
    def _path(self) -> str:
        return f"{self._collection}/{self.config.name}"

    def _spec(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        now = micro_time(datetime.now(UTC))
        prev = previous or {}
        spec: dict[str, Any] = {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, round(self.config.lease_duration)),
            "renewTime": now,
            "acquireTime": prev.get("acquireTime") or now,
            "leaseTransitions": int(prev.get("leaseTransitions") or 0),
        }
        if prev.get("holderIdentity") != self.config.identity:
            spec["acquireTime"] = now
            if prev.get("holderIdentity"):
                spec["leaseTransitions"] += 1
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the Lease afterwards."""
        try:
            lease = await self.client.get(self._path)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                "spec": self._spec(None),
            }
            try:
                created = await self.client.create(self._collection, body)
            except Conflict:
                return False
            self._observe(created.get("spec") or {})
            return True
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        expired = self._clock() - self._observed_at > duration
        if holder and holder != self.config.identity and not expired:
            return False
        updated = dict(lease)
        updated["spec"] = self._spec(spec)
        try:
            result = await self.client.request("PUT", self._path, json=updated)
        except Conflict:
            return False
        self._observe((result or {}).get("spec") or updated["spec"])
        return True

    def _observe(self, spec: Mapping[str, Any]) -> None:
        self._observed_spec = dict(spec)
        self._observed_at = self._clock()

    async def release(self) -> None:
        with contextlib.suppress(ApiError, OSError, asyncio.TimeoutError):
            lease = await self.client.get(self._path)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.config.identity:
                return
            lease["spec"] = {
                **spec,
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(datetime.now(UTC)),
            }
            await self.client.request("PUT", self._path, json=lease)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (TimeoutError, ApiError, OSError) as exc:
            log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Acquire, lead while renewals succeed, repeat; releases the Lease when cancelled."""
        try:
            while True:
                while not await self._attempt():
                    await asyncio.sleep(self.config.retry_period)
                self.is_leader = True
                self.transitions += 1
                log.info(
                    "lease %s/%s acquired by %s",
                    self.config.namespace,
                    self.config.name,
                    self.config.identity,
                )
                task: asyncio.Task[None] = asyncio.create_task(lead(), name="leader")
                try:
                    await self._renew_until_lost(task)
                finally:
                    self.is_leader = False
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if task.done() and not task.cancelled() and task.exception() is not None:
                    # The leader's work crashed while we still hold the Lease: start it again,
                    # but not in a tight loop.
                    log.error("leader task failed: %r; restarting it", task.exception())
                    await asyncio.sleep(self.config.retry_period)
                else:
                    log.warning(
                        "lease %s/%s lost by %s",
                        self.config.namespace,
                        self.config.name,
                        self.config.identity,
                    )
        except asyncio.CancelledError:
            if self.is_leader or (
                self._observed_spec and self._observed_spec.get("holderIdentity") == self.config.identity
            ):
                await asyncio.shield(self.release())
            raise

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        last_renewed = self._clock()
        while not task.done():
            await asyncio.sleep(self.config.retry_period)
            if await self._attempt():
                last_renewed = self._clock()
            elif self._clock() - last_renewed > self.config.renew_deadline:
                return
            elif (self._observed_spec or {}).get("holderIdentity") not in (None, "", self.config.identity):
                return  # somebody else holds it now
