"""Block layout (exporter.blocks): one copy of the text, splices, and entries that keep their state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.exposition import Exposition
from exporter.store import EventType, MetricsStore, ObjectEntry
from exporter.telemetry import Telemetry
from tests.plan_doubles import SamplePlan, widget

FAMS = ("widget_size", "widget_info")

_ops = st.lists(st.tuples(st.sampled_from(["upsert", "delete", "swap", "scrape"]),
                          st.integers(min_value=0, max_value=9),
                          st.integers(min_value=0, max_value=3)), max_size=50)


def obj(i: int, v: int) -> dict:
    samples = {"widget_info": [({"v": str(v)}, 1)]}
    if v:
        samples["widget_size"] = [({}, v)]
    return widget(f"w{i}", f"ns{i % 3}", samples=samples)


@settings(max_examples=120, deadline=None)
@given(ops=_ops)
def test_entries_keep_the_exact_state_of_their_event_and_bodies_match(
        ops: list[tuple[str, int, int]]) -> None:
    import exporter.store as store_module

    saved = store_module.BLOCK_SIZE
    store_module.BLOCK_SIZE = 2
    try:
        store = MetricsStore(telemetry=Telemetry(process_metrics=False))
        plan = SamplePlan.of("widgets", FAMS)
        store.set_plan(plan)
        seen: list[tuple[ObjectEntry, tuple[bytes, ...]]] = []
        store.add_listener(lambda ev, entry: seen.append((entry, entry.chunks)))
        exposition = Exposition(store)
        model: dict[str, dict] = {}
        for op, i, v in ops:
            uid = f"uid-ns{i % 3}-w{i}"
            if op == "upsert":
                store.upsert("widgets", obj(i, v))
                model[uid] = obj(i, v)
            elif op == "delete":
                store.delete("widgets", uid)
                model.pop(uid, None)
            elif op == "swap":  # a new plan object with the model's objects, built one by one
                plan = SamplePlan.of("widgets", FAMS)
                builder = store.build_plan(plan)
                for o in model.values():
                    builder.add(o)
                builder.commit()
            else:
                parts = exposition.parts(fmt="text")
                assert b"".join(parts) == exposition.body(fmt="text")
        # every entry a listener was given still shows the chunks it had at that event
        for entry, chunks in seen:
            assert entry.chunks == chunks
        # the live entries and the body are exactly the model
        expected = b"".join(
            b"".join(plan.render(o)[f] for o in model.values()) for f in range(len(FAMS)))
        body = exposition.body(fmt="text")
        assert sorted(line for line in body.splitlines() if not line.startswith(b"#")) == sorted(
            expected.splitlines())
        for uid, o in model.items():
            entry = store.get("widgets", uid)
            assert entry is not None and entry.chunks == plan.render(o)
        assert sum(f.series for f in store.families()) == expected.count(b"\n")
    finally:
        store_module.BLOCK_SIZE = saved


def test_a_change_splices_one_block_and_leaves_the_others_untouched() -> None:
    import exporter.store as store_module

    saved = store_module.BLOCK_SIZE
    store_module.BLOCK_SIZE = 4
    try:
        store = MetricsStore(telemetry=Telemetry(process_metrics=False))
        store.set_plan(SamplePlan.of("widgets", FAMS))
        for i in range(12):
            store.upsert("widgets", obj(i, 1))
        exposition = Exposition(store)
        before = exposition.parts(fmt="text")
        store.upsert("widgets", obj(5, 2))  # in block 1 (objects 4..7); both families change
        after = exposition.parts(fmt="text")
        # parts: [size header, block 0, block 1, block 2, info header, block 0, block 1, block 2]
        assert len(before) == len(after) == 8
        changed = [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a is not b]
        assert changed == [2, 6]
        assert b'widget="w5"} 2.0' in after[2] and b'widget="w5",v="2"} 1.0' in after[6]
    finally:
        store_module.BLOCK_SIZE = saved


def test_a_plan_swap_detaches_old_entries_and_reports_a_precise_diff() -> None:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    events: list[tuple[EventType, str]] = []
    store.add_listener(lambda ev, entry: events.append((ev, entry.uid)))
    store.set_plan(SamplePlan.of("widgets", FAMS), objects=[obj(i, 1) for i in range(3)])
    old = store.get("widgets", "uid-ns1-w1")
    assert old is not None and old.block is not None
    events.clear()
    builder = store.build_plan(SamplePlan.of("widgets", FAMS))
    builder.add(obj(0, 1))  # unchanged
    builder.add(obj(1, 3))  # modified
    builder.add(obj(7, 1))  # added; w2 deleted
    builder.discard("uid-ns1-w7")
    builder.add(obj(7, 2))
    result = builder.commit()
    assert (result.added, result.modified, result.deleted, result.unchanged) == (1, 1, 1, 1)
    assert sorted(events) == [(EventType.ADDED, "uid-ns1-w7"), (EventType.DELETED, "uid-ns2-w2"),
                              (EventType.MODIFIED, "uid-ns1-w1")]
    assert old.block is None and old.held is not None and b"} 1.0" in old.held[0]
