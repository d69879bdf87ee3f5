"""MetricsStore: entries per object, precise diffs on relist, plan swaps, events, errors."""

from __future__ import annotations

import pytest

from exporter.store import DuplicateFamilyError, EventType, MetricsStore, ObjectEntry
from exporter.telemetry import Telemetry
from tests.plan_doubles import SamplePlan, widget

FAMS = ("widget_size", "widget_info")


def make_store() -> tuple[MetricsStore, list[tuple[EventType, str]]]:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    events: list[tuple[EventType, str]] = []
    store.add_listener(lambda ev, entry: events.append((ev, entry.uid)))
    return store, events


def w(name: str, size: float = 1, ns: str = "default", rv: str = "") -> dict:
    return widget(name, ns, rv=rv, samples={"widget_size": [({}, size)], "widget_info": [({"v": "1"}, 1)]})


def test_upsert_keeps_only_rendered_chunks_and_identity() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    obj = w("a", 3, rv="7")
    store.upsert("widgets", obj)
    entry = store.get("widgets", "uid-default-a")
    assert isinstance(entry, ObjectEntry)
    assert (entry.namespace, entry.name, entry.resource_version) == ("default", "a", "7")
    assert entry.chunks == (b'widget_size{namespace="default",widget="a"} 3.0\n',
                            b'widget_info{namespace="default",widget="a",v="1"} 1.0\n')
    # Never the object itself: only identity, bytes (held, or in the block's joined text), the
    # object's labels (label selectors of the custom metrics API) and when it was rendered.
    assert set(ObjectEntry.__slots__) == {"configuration", "namespace", "name", "uid", "resource_version",
                                          "held", "revision", "labels", "rendered", "block"}
    assert entry.labels == {} and entry.rendered > 0
    assert events == [(EventType.ADDED, "uid-default-a")]


def test_update_modifies_delete_removes_and_generation_moves() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a", 1))
    g1 = store.generation
    store.upsert("widgets", w("a", 2))
    assert store.generation > g1
    assert store.get("widgets", "uid-default-a").chunks[0].endswith(b" 2.0\n")  # type: ignore[union-attr]
    store.delete("widgets", "uid-default-a")
    assert store.get("widgets", "uid-default-a") is None
    assert [e for e, _ in events] == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]
    assert [f.series for f in store.families()] == [0, 0]


def test_identical_render_is_not_a_change() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a", 1, rv="1"))
    g = store.generation
    store.upsert("widgets", w("a", 1, rv="2"))
    assert store.generation == g
    assert store.get("widgets", "uid-default-a").resource_version == "2"  # type: ignore[union-attr]
    assert len(events) == 1


def test_same_resource_version_skips_rendering() -> None:
    store, _ = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a", 1, rv="5"))
    renders = store.telemetry.object_renders.labels("widgets")._value.get()
    store.upsert("widgets", w("a", 99, rv="5"))  # same rv: the informer replayed an old event
    assert store.telemetry.object_renders.labels("widgets")._value.get() == renders
    assert store.get("widgets", "uid-default-a").chunks[0].endswith(b" 1.0\n")  # type: ignore[union-attr]


def test_replace_is_a_precise_diff() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.replace("widgets", [w("a", 1), w("b", 1), w("c", 1)])
    events.clear()
    result = store.replace("widgets", [w("a", 1), w("b", 5), w("d", 1)])
    assert (result.added, result.modified, result.deleted, result.unchanged) == (1, 1, 1, 1)
    assert sorted(events) == sorted([(EventType.MODIFIED, "uid-default-b"),
                                     (EventType.ADDED, "uid-default-d"),
                                     (EventType.DELETED, "uid-default-c")])
    assert sorted(e.name for e in store.objects()) == ["a", "b", "d"]


def test_namespace_index_and_family_counts() -> None:
    store, _ = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.replace("widgets", [w("a", ns="x"), w("b", ns="y"), w("c", ns="x")])
    assert sorted(e.name for e in store.objects(namespace="x")) == ["a", "c"]
    assert list(store.objects(namespace="nope")) == []
    infos = store.families()
    assert [(f.header.name, f.series, f.objects) for f in infos] == [("widget_size", 3, 3),
                                                                      ("widget_info", 3, 3)]
    assert all(f.updated is not None for f in infos)
    assert list(store.stats()) == [("widgets", 3, 6)]


def test_render_errors_drop_series_and_are_counted() -> None:
    store, _ = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    bad = widget("a", samples={"widget_size": [({}, "12 apples")], "widget_info": [({}, 1)]})
    store.upsert("widgets", bad)
    store.upsert("widgets", {**bad, "metadata": {**bad["metadata"], "resourceVersion": "2"}})
    entry = store.get("widgets", "uid-default-a")
    assert entry is not None and entry.chunks[0] == b"" and entry.chunks[1]
    counter = store.telemetry.series_errors.labels("widgets", "widget_size", "conversion")
    assert counter._value.get() == 2


def test_render_exception_drops_object_not_store() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a"))
    store.upsert("widgets", {**w("a"), "explode": True})
    assert store.get("widgets", "uid-default-a") is None
    assert events[-1] == (EventType.DELETED, "uid-default-a")
    assert store.telemetry.render_failures.labels("widgets")._value.get() == 1


def test_replace_with_a_plan_that_raises_drops_the_stored_object() -> None:
    # The path production takes when a binding is re-bound with the same plan
    # (set_plan(same_plan, objects=...)) and one stored object now fails to render.
    store, events = make_store()
    plan = SamplePlan.of("widgets", FAMS)
    store.set_plan(plan, objects=[w("a", rv="1"), w("b", rv="1")])
    events.clear()
    result = store.set_plan(plan, objects=[{**w("a", rv="2"), "explode": True}, w("b", rv="1")])
    assert (result.added, result.modified, result.deleted, result.unchanged) == (0, 0, 1, 1)
    assert events == [(EventType.DELETED, "uid-default-a")]
    assert [e.name for e in store.objects()] == ["b"]
    result = store.replace("widgets", [{**w("b", rv="2"), "explode": True}])
    assert (result.added, result.modified, result.deleted, result.unchanged) == (0, 0, 1, 0)
    assert list(store.objects()) == []


def test_set_plan_with_objects_swaps_atomically_with_diff_events() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.replace("widgets", [w("a", 1), w("b", 1)])
    events.clear()
    new_plan = SamplePlan.of("widgets", ("widget_size",))
    result = store.set_plan(new_plan, objects=[w("a", 1), w("c", 1)])
    assert store.plan("widgets") is new_plan
    assert (result.added, result.modified, result.deleted) == (1, 1, 1)  # a lost a family: modified
    assert sorted(events) == [(EventType.ADDED, "uid-default-c"), (EventType.DELETED, "uid-default-b"),
                              (EventType.MODIFIED, "uid-default-a")]
    assert [f.header.name for f in store.families()] == ["widget_size"]


def test_set_plan_without_objects_drops_old_entries() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a"))
    store.set_plan(SamplePlan.of("widgets", FAMS))
    assert list(store.objects()) == []
    assert events[-1] == (EventType.DELETED, "uid-default-a")


def test_duplicate_family_across_configurations_is_refused() -> None:
    store, _ = make_store()
    store.set_plan(SamplePlan.of("one", ("same_name",)))
    with pytest.raises(DuplicateFamilyError, match="same_name"):
        store.set_plan(SamplePlan.of("two", ("same_name",)))
    assert [p.name for p in store.plans()] == ["one"]


def test_remove_plan_and_unknown_plan() -> None:
    store, events = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a"))
    store.remove_plan("widgets")
    assert store.plans() == [] and list(store.objects()) == []
    assert events[-1] == (EventType.DELETED, "uid-default-a")
    with pytest.raises(KeyError, match="set_plan first"):
        store.upsert("widgets", w("a"))


def test_listener_failure_does_not_break_the_store() -> None:
    store, events = make_store()

    def broken(ev: EventType, entry: ObjectEntry) -> None:
        raise RuntimeError("boom")

    unsubscribe = store.add_listener(broken)
    store.set_plan(SamplePlan.of("widgets", FAMS))
    store.upsert("widgets", w("a"))
    assert events == [(EventType.ADDED, "uid-default-a")]
    unsubscribe()
    store.upsert("widgets", w("b"))
    assert len(events) == 2


def test_objects_without_uid_are_keyed_by_namespace_and_name() -> None:
    store, _ = make_store()
    store.set_plan(SamplePlan.of("widgets", FAMS))
    obj = w("a", ns="x")
    del obj["metadata"]["uid"]
    store.upsert("widgets", obj)
    assert store.get("widgets", "x/a") is not None


# --------------------------------------------------------------------------- blocks vs a model

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from exporter.exposition import Exposition  # noqa: E402
from tests.expo_checks import check_structure  # noqa: E402

_ops = st.lists(st.tuples(st.sampled_from(["upsert", "delete", "replace"]),
                          st.integers(min_value=0, max_value=11),   # object
                          st.integers(min_value=0, max_value=3)),   # value (0: no size series)
                max_size=60)


def _family_lines(body: bytes) -> dict[str, list[bytes]]:
    check_structure(body, openmetrics=False)
    out: dict[str, list[bytes]] = {}
    for line in body.splitlines():
        if line.startswith(b"# HELP "):
            current = out.setdefault(line.split()[2].decode(), [])
        elif not line.startswith(b"#"):
            current.append(line)
    return {name: sorted(lines) for name, lines in out.items()}


@settings(max_examples=150, deadline=None)
@given(ops=_ops)
def test_blocked_store_matches_a_plain_model(ops: list[tuple[str, int, int]]) -> None:
    import exporter.store as store_module

    saved = store_module.BLOCK_SIZE
    store_module.BLOCK_SIZE = 3  # many blocks, holes, emptied blocks
    try:
        store, _ = make_store()
        store.set_plan(SamplePlan.of("widgets", FAMS))
        exposition = Exposition(store)
        model: dict[str, dict] = {}

        def obj(i: int, v: int) -> dict:
            samples = {"widget_info": [({"v": str(v)}, 1)]}
            if v:
                samples["widget_size"] = [({}, v)]
            return widget(f"w{i}", f"ns{i % 3}", samples=samples)

        for op, i, v in ops:
            uid = f"uid-ns{i % 3}-w{i}"
            if op == "upsert":
                store.upsert("widgets", obj(i, v))
                model[uid] = obj(i, v)
            elif op == "delete":
                store.delete("widgets", uid)
                model.pop(uid, None)
            else:  # a relist that keeps every other object
                model = {u: o for n, (u, o) in enumerate(model.items()) if n % 2 == 0}
                store.replace("widgets", list(model.values()))
            exposition.body(fmt="text")  # build and cache blocks between operations

        plan = store.plan("widgets")
        assert plan is not None
        for namespace in (None, "ns1"):
            chosen = [o for o in model.values() if namespace in (None, o["metadata"]["namespace"])]
            rendered = [plan.render(o) for o in chosen]
            expected = {header.name: sorted(line for chunks in rendered for line in chunks[i].splitlines())
                        for i, header in enumerate(plan.families)}
            assert _family_lines(exposition.body(fmt="text", namespace=namespace)) == {
                name: lines for name, lines in expected.items() if lines}
        all_rendered = [plan.render(o) for o in model.values()]
        assert [(f.objects, f.series) for f in store.families()] == [
            (sum(1 for c in all_rendered if c[i]), sum(c[i].count(b"\n") for c in all_rendered))
            for i in range(len(FAMS))]
        assert sorted(e.uid for e in store.objects()) == sorted(model)
    finally:
        store_module.BLOCK_SIZE = saved
