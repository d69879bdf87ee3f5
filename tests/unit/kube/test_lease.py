"""Leader election semantics with a fake Lease API and a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from kube.client import ApiError
from kube.lease import LeaderElector, LeaseConfig


class FakeLeases:
    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if self.lease is None:
            raise ApiError(404, "NotFound", path)
        return copy.deepcopy(self.lease)

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise ApiError(409, "AlreadyExists", path)
        self.version += 1
        self.lease = copy.deepcopy(dict(obj))
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    async def request(self, method: str, path: str, *, json: Any = None) -> Any:
        assert method == "PUT" and self.lease is not None
        if json["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "stale resourceVersion")
        self.version += 1
        self.lease = copy.deepcopy(json)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(api: FakeLeases, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        api, LeaseConfig(namespace="ns", name="l", identity=identity, lease_duration=15), clock=clock
    )


async def test_first_candidate_creates_and_holds_the_lease() -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, "a", clock)
    assert await a.try_acquire_or_renew()
    assert api.lease is not None and api.lease["spec"]["holderIdentity"] == "a"
    assert api.lease["spec"]["leaseDurationSeconds"] == 15
    assert await a.try_acquire_or_renew()  # renewal


async def test_follower_waits_for_the_locally_observed_expiry() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 10
    assert await a.try_acquire_or_renew()  # a renews ...
    assert not await b.try_acquire_or_renew()  # ... and b sees the record change now
    clock.now += 10
    assert not await b.try_acquire_or_renew()  # 10s since b saw the change: not expired
    clock.now += 6
    assert await b.try_acquire_or_renew()  # 16s without a change: expired, b takes it
    assert api.lease is not None and api.lease["spec"]["holderIdentity"] == "b"
    assert api.lease["spec"]["leaseTransitions"] == 1
    assert not await a.try_acquire_or_renew()  # a has lost it


async def test_racing_candidates_cannot_both_win() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]


async def test_release_frees_the_lease_for_a_successor() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert await b.try_acquire_or_renew()


async def test_run_leads_and_cancels_lead_when_stopped() -> None:
    api = FakeLeases()
    a = LeaderElector(
        api,
        LeaseConfig(
            namespace="ns", name="l", identity="a", lease_duration=2, renew_deadline=1, retry_period=0.01
        ),
    )
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def lead() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(a.run(lead))
    await asyncio.wait_for(started.wait(), 5)
    assert a.is_leader
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert cancelled.is_set()
    assert api.lease is not None and api.lease["spec"]["holderIdentity"] == ""  # released on stop


async def test_a_crashing_leader_task_is_restarted_while_the_lease_is_held() -> None:
    api = FakeLeases()
    a = LeaderElector(
        api,
        LeaseConfig(
            namespace="ns", name="l", identity="a", lease_duration=2, renew_deadline=1, retry_period=0.01
        ),
    )
    runs: list[int] = []
    again = asyncio.Event()

    async def lead() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("boom")
        again.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(a.run(lead))
    await asyncio.wait_for(again.wait(), 5)
    assert len(runs) == 2 and a.transitions == 2
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
