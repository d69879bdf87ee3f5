"""Informer and InformerRegistry against the fake API server: sync, watch, 410 diff, back-off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fake_apiserver import FakeApiServer

from kube.backoff import Backoff
from kube.client import KubeClient
from kube.informer import Informer, InformerRegistry, WatchTarget, list_difference

CM = "/api/v1/configmaps"
TARGET = WatchTarget(group="", version="v1", resource="configmaps")


def cm(ns: str, name: str, **data: str) -> dict[str, Any]:
    meta = {"namespace": ns, "name": name}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


class Mirror:
    """What a consumer believes: uid -> (name, resourceVersion), built only from events."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, str]] = {}
        self.events: list[tuple[str, str]] = []

    def __call__(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.events.append((event_type, meta["name"]))
        if event_type == "DELETED":
            assert meta["uid"] in self.objects, f"delete of unknown {meta['name']}"
            del self.objects[meta["uid"]]
        else:
            assert (event_type == "ADDED") == (meta["uid"] not in self.objects), (event_type, meta["name"])
            self.objects[meta["uid"]] = (meta["name"], meta["resourceVersion"])


def truth(fake: FakeApiServer, keep: Callable[[str], bool] = lambda uid: True) -> dict[str, tuple[str, str]]:
    return {o["metadata"]["uid"]: (o["metadata"]["name"], o["metadata"]["resourceVersion"])
            for o in fake.objects.get(CM, {}).values() if keep(o["metadata"]["uid"])}


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_list_difference() -> None:
    from kube.informer import Known

    known = {"u1": Known("a", "x", "1"), "u2": Known("a", "y", "2"), "u3": Known("b", "z", "3")}
    items = [{"metadata": {"uid": "u1", "resourceVersion": "1"}},
             {"metadata": {"uid": "u2", "resourceVersion": "5"}},
             {"metadata": {"uid": "u4", "resourceVersion": "6"}}]
    added, modified, deleted = list_difference(known, items)
    assert [o["metadata"]["uid"] for o in added] == ["u4"]
    assert [o["metadata"]["uid"] for o in modified] == ["u2"]
    assert deleted == [{"metadata": {"uid": "u3", "namespace": "b", "name": "z", "resourceVersion": "3"}}]


async def test_initial_list_then_watch(fake: FakeApiServer, client: KubeClient) -> None:
    for i in range(5):
        await fake.put(CM, cm("ns", f"c{i}"))
    mirror = Mirror()
    informer = Informer(client, TARGET, page_size=2, use_watch_cache=False)
    informer.add_handler(mirror)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        assert informer.has_synced and len(informer) == 5
        assert mirror.objects == truth(fake)
        await fake.put(CM, cm("ns", "c1", k="v"))
        await fake.remove(CM, "ns", "c2")
        await fake.put(CM, cm("other", "n"))
        await eventually(lambda: mirror.objects == truth(fake))
        assert mirror.events[5:] == [("MODIFIED", "c1"), ("DELETED", "c2"), ("ADDED", "n")]
    finally:
        await informer.stop()
    lists = [q for (_, p, q) in fake.requests if p == CM and q.get("watch") != "true"]
    assert [q.get("continue") for q in lists] == [None, "2", "4"]
    watch = next(q for (_, p, q) in fake.requests if q.get("watch") == "true")
    assert watch["allowWatchBookmarks"] == "true"


@pytest.mark.parametrize("gone_as_event", [True, False])
async def test_410_relists_and_emits_exact_difference(
    fake: FakeApiServer, client: KubeClient, gone_as_event: bool
) -> None:
    for i in range(6):
        await fake.put(CM, cm("ns", f"c{i}"))
    fake.gone_as_event = gone_as_event
    mirror = Mirror()
    informer = Informer(client, TARGET, backoff=Backoff(initial=0.05, maximum=0.1))
    informer.add_handler(mirror)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        # Cut the connection and make the server refuse new watches while objects change.
        fake.fail_next = [503, 503]
        await fake.kill_watches()
        await fake.put(CM, cm("ns", "c0", k="changed"))
        await fake.remove(CM, "ns", "c1")
        await fake.put(CM, cm("ns", "new"))
        await fake.remove(CM, "ns", "c2")
        await fake.put(CM, cm("ns", "c2"))  # same name, new uid
        fake.compact()
        lists_before = fake.list_count
        await eventually(lambda: mirror.objects == truth(fake))
        assert fake.list_count == lists_before + 1
        lists = [q for (_, p, q) in fake.requests if p == CM and q.get("watch") != "true"]
        # first LIST from the watch cache (rv=0, one answer); after 410 a consistent paginated one
        assert lists[0] == {"resourceVersion": "0"}
        assert lists[-1] == {"limit": "500"}
        tail = sorted(mirror.events[6:])
        assert tail == sorted([("MODIFIED", "c0"), ("DELETED", "c1"), ("ADDED", "new"),
                               ("DELETED", "c2"), ("ADDED", "c2")])
        # and the informer keeps watching after the re-list
        await fake.put(CM, cm("ns", "after"))
        await eventually(lambda: mirror.objects == truth(fake))
    finally:
        await informer.stop()


@pytest.mark.virtual_time  # the server's 1 s watch timeouts pass without waiting
async def test_rewatch_after_server_timeout_does_not_relist(fake: FakeApiServer, client: KubeClient) -> None:
    await fake.put(CM, cm("ns", "a"))
    mirror = Mirror()
    informer = Informer(client, TARGET, watch_timeout=1)
    informer.add_handler(mirror)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        await asyncio.sleep(2.5)  # virtual seconds: two or three server-side watch timeouts
        await fake.put(CM, cm("ns", "b"))
        await eventually(lambda: mirror.objects == truth(fake))
        assert fake.list_count == 1
        assert fake.watch_count >= 3
    finally:
        await informer.stop()


async def test_list_errors_back_off_and_recover(fake: FakeApiServer, client: KubeClient) -> None:
    await fake.put(CM, cm("ns", "a"))
    fake.fail_next = [500, 500, 500]
    informer = Informer(client, TARGET, backoff=Backoff(initial=0.05, maximum=0.2))
    mirror = Mirror()
    informer.add_handler(mirror)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        assert mirror.objects == truth(fake)
        assert not fake.fail_next
    finally:
        await informer.stop()


async def test_handler_exception_does_not_stop_informer(fake: FakeApiServer, client: KubeClient) -> None:
    def broken(event_type: str, obj: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    mirror = Mirror()
    informer = Informer(client, TARGET)
    informer.add_handler(broken)
    informer.add_handler(mirror)
    informer.start()
    try:
        await fake.put(CM, cm("ns", "a"))
        await eventually(lambda: mirror.objects == truth(fake) and len(mirror.objects) == 1)
    finally:
        await informer.stop()


async def test_keep_filter_drops_objects_before_handlers(fake: FakeApiServer, client: KubeClient) -> None:
    for i in range(20):
        await fake.put(CM, cm("ns", f"c{i}"))

    def keep(uid: str) -> bool:
        return int(uid.replace("-", ""), 16) % 2 == 0

    mirror = Mirror()
    informer = Informer(client, TARGET, keep=keep)
    informer.add_handler(mirror)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        for i in range(20, 30):
            await fake.put(CM, cm("ns", f"c{i}"))
        await eventually(lambda: mirror.objects == truth(fake, keep))
        assert 0 < len(mirror.objects) < 30
    finally:
        await informer.stop()


async def test_registry_shares_and_replays_for_joining_consumer(
    fake: FakeApiServer, client: KubeClient
) -> None:
    for i in range(3):
        await fake.put(CM, cm("ns", f"c{i}"))
    registry = InformerRegistry(client)
    first, second = Mirror(), Mirror()
    informer = registry.acquire(TARGET, first)
    assert await informer.wait_synced(5)
    assert registry.acquire(TARGET, second) is informer
    await eventually(lambda: second.objects == truth(fake) and informer.has_synced)
    # the existing consumer got no duplicate events from the replay list
    assert [e for e, _ in first.events] == ["ADDED"] * 3
    await fake.put(CM, cm("ns", "d"))
    await eventually(lambda: first.objects == second.objects == truth(fake))
    await registry.release(TARGET, first)
    assert registry.get(TARGET) is informer
    await registry.release(TARGET, second)
    assert registry.get(TARGET) is None
    watches = fake.watch_count
    await fake.put(CM, cm("ns", "e"))
    await asyncio.sleep(0.2)
    assert fake.watch_count == watches and "e" not in {n for n, _ in second.objects.values()}
    await registry.stop()


def test_backoff_grows_with_jitter_and_resets() -> None:
    b = Backoff(initial=1, maximum=8, factor=2, jitter=0.5)
    delays = [b.next_delay() for _ in range(6)]
    steps = [1, 2, 4, 8, 8, 8]
    assert all(s * 0.5 <= d <= s for d, s in zip(delays, steps, strict=True))
    b.reset()
    assert 0.5 <= b.next_delay() <= 1


async def test_replay_callable_gets_the_full_set_once(fake: FakeApiServer, client: KubeClient) -> None:
    for i in range(4):
        await fake.put(CM, cm("ns", f"c{i}"))
    registry = InformerRegistry(client)
    first = Mirror()
    informer = registry.acquire(TARGET, first)
    assert await informer.wait_synced(5)
    batches: list[list[str]] = []
    late = Mirror()
    registry.acquire(
        TARGET, late, replay=lambda items: batches.append([o["metadata"]["name"] for o in items])
    )
    await eventually(lambda: bool(batches) and informer.has_synced)
    assert sorted(batches[0]) == ["c0", "c1", "c2", "c3"] and late.events == []
    await fake.put(CM, cm("ns", "c4"))
    await eventually(lambda: late.events == [("ADDED", "c4")])
    await registry.stop()
