"""ApiViews: object-level events across configurations, resourceVersions, the lazy read index."""

from __future__ import annotations

from apiserver.views import ApiViews
from tests.unit.apiserver.conftest import DEPLOYMENTS, FakePlan, deployment, populated_store


def _events(views: ApiViews, rv: int) -> list[tuple[str, str, tuple[str, ...]]]:
    events = views.events_after(rv)
    assert events is not None
    return [
        (e.type, e.payload.api_name, tuple(x.configuration for x in e.payload.entries))  # type: ignore[union-attr]
        for e in events
    ]


def test_two_configurations_one_object_merge_and_split() -> None:
    store = populated_store()
    views = ApiViews(store)
    start = views.rv
    store.set_plan(FakePlan("deployments-extra", DEPLOYMENTS, "extra_deployment"))
    store.upsert("deployments-extra", deployment("web", "team-a", 3))
    snap = views.object("objectmetrics", namespace="team-a", name="deployments.apps.web")
    assert snap is not None and [e.configuration for e in snap.entries] == [
        "deployments",
        "deployments-extra",
    ]
    assert snap.series == 4 and int(snap.rv) > start
    # The second configuration's entry made it a MODIFIED of the same object, with both entries.
    assert _events(views, start)[-1] == (
        "MODIFIED",
        "deployments.apps.web",
        ("deployments", "deployments-extra"),
    )
    mark = views.rv
    store.delete("deployments-extra", "uid-team-a-web")
    assert _events(views, mark) == [("MODIFIED", "deployments.apps.web", ("deployments",))]
    mark = views.rv
    store.delete("deployments", "uid-team-a-web")
    assert _events(views, mark) == [("DELETED", "deployments.apps.web", ("deployments",))]
    assert views.object("objectmetrics", namespace="team-a", name="deployments.apps.web") is None
    views.close()


def test_every_event_has_its_own_increasing_rv_and_lists_see_the_latest() -> None:
    store = populated_store()
    views = ApiViews(store)
    start = views.rv
    store.replace("deployments", [deployment("web", "team-a", 9, rv="5")])  # modify web, delete api
    events = views.events_after(start)
    assert events is not None
    got = [(e.rv, e.type, e.payload.api_name) for e in events]  # type: ignore[union-attr]
    assert [t for _rv, t, _n in got] == ["MODIFIED", "DELETED"]
    assert got[0][0] < got[1][0] == views.rv  # one RV per event, even within one relist
    listed = {s.api_name: s.rv for s in views.objects("objectmetrics")}
    assert listed == {"deployments.apps.web": got[0][0]}
    views.close()


def test_unchanged_relist_emits_nothing() -> None:
    store = populated_store()
    views = ApiViews(store)
    start = views.rv
    store.replace("deployments", [deployment("web", "team-a", 3), deployment("api", "team-b", 2)])
    assert list(views.events_after(start) or ["missing"]) == []
    views.close()


def test_bookkeeping_of_deleted_objects_does_not_pile_up_without_readers(monkeypatch: object) -> None:
    import apiserver.views as views_module

    monkeypatch.setattr(views_module, "DIRTY_LIMIT", 100)  # type: ignore[attr-defined]
    store = populated_store()
    views = ApiViews(store)
    for i in range(1000):  # churn: objects come and go, nobody reads the API
        store.upsert("deployments", deployment(f"tmp{i}", "churn", 1))
        store.delete("deployments", f"uid-churn-tmp{i}")
    assert len(views._dirty) <= 101 and len(views._created) <= 110
    assert {s.api_name for s in views.objects("objectmetrics")} == {
        "deployments.apps.web",
        "deployments.apps.api",
    }
    views.close()


def test_sorted_lists_are_shared_until_the_index_changes() -> None:
    store = populated_store()
    views = ApiViews(store)
    first = views.objects("objectmetrics")
    assert views.objects("objectmetrics") is first  # an unchanged store is sorted once
    keys = [(s.namespace, s.api_name) for s in first]
    assert keys == sorted(keys) and len(keys) > 1
    store.upsert("deployments", deployment("aaa", "team-a", 1))
    second = views.objects("objectmetrics")
    assert second is not first  # a change shows in the very next list
    assert "deployments.apps.aaa" in [s.api_name for s in second]
    store.delete("deployments", "uid-team-a-aaa")
    assert "deployments.apps.aaa" not in [s.api_name for s in views.objects("objectmetrics")]
    per_ns = views.objects("objectmetrics", namespace="team-a")
    assert {s.namespace for s in per_ns} == {"team-a"}
    assert views.objects("objectmetrics", namespace="team-a") is per_ns
    views.close()
