"""The reconcile pass against an in-memory API: fewest writes, pruning, recreate, status, pause."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.thanos.fake_api import FakeApi
from thanos_operator.reconciler import Reconciler, RetryLater, object_path, thanos_path

NS, NAME = "ns", "t"
SPEC: dict[str, Any] = {
    "query": {"stores": [{"addresses": ["x:1"], "caSecret": {"name": "ca", "key": "ca.crt"}}]},
    "receive": {
        "ingestors": [{"name": "a"}, {"name": "b", "objectStorageConfig": {"name": "bucket", "key": "o"}}]
    },
}


def setup(spec: dict[str, Any] | None = None) -> tuple[FakeApi, Reconciler]:
    api = FakeApi()
    api.put(
        thanos_path(NS, NAME),
        {
            "apiVersion": "monitoring.paodin.io/v1alpha1",
            "kind": "Thanos",
            "metadata": {"name": NAME, "namespace": NS, "generation": 1},
            "spec": copy.deepcopy(spec if spec is not None else SPEC),
        },
    )
    api.put(
        object_path("Secret", NS, "bucket"),
        {"kind": "Secret", "metadata": {"name": "bucket", "namespace": NS}},
    )
    return api, Reconciler(api)


def set_spec(api: FakeApi, spec: dict[str, Any]) -> None:
    cr = api.objects[thanos_path(NS, NAME)]
    cr["spec"] = copy.deepcopy(spec)
    cr["metadata"]["generation"] += 1


def status(api: FakeApi) -> dict[str, Any]:
    return dict(api.objects[thanos_path(NS, NAME)]["status"])


def cond(api: FakeApi, type_: str) -> dict[str, Any]:
    return next(c for c in status(api)["conditions"] if c["type"] == type_)


async def test_first_pass_applies_everything_and_second_pass_writes_nothing() -> None:
    api, reconciler = setup()
    first = await reconciler.reconcile(NS, NAME)
    assert len(first.applied) == 10 and first.status_written
    assert cond(api, "Reconciled")["status"] == "True" and cond(api, "Reconciled")["observedGeneration"] == 1
    assert cond(api, "Ready")["reason"] == "ComponentsNotReady"
    api.writes.clear()
    second = await reconciler.reconcile(NS, NAME)
    assert api.writes == [] and second.applied == [] and len(second.unchanged) == 10


async def test_a_spec_change_applies_only_what_changed() -> None:
    api, reconciler = setup()
    await reconciler.reconcile(NS, NAME)
    api.writes.clear()
    spec = copy.deepcopy(SPEC)
    spec["query"]["replicas"] = 3
    set_spec(api, spec)
    outcome = await reconciler.reconcile(NS, NAME)
    assert outcome.applied == ["Deployment/t-query"]
    assert api.objects[object_path("Deployment", NS, "t-query")]["spec"]["replicas"] == 3
    assert cond(api, "Reconciled")["observedGeneration"] == 2


async def test_removed_ingestor_is_pruned_but_foreign_objects_are_not() -> None:
    api, reconciler = setup()
    await reconciler.reconcile(NS, NAME)
    labels = {"app.kubernetes.io/managed-by": NAME, "app.kubernetes.io/part-of": "thanos"}
    foreign = object_path("ConfigMap", NS, "not-ours")
    api.put(
        foreign, {"kind": "ConfigMap", "metadata": {"name": "not-ours", "namespace": NS, "labels": labels}}
    )
    spec = copy.deepcopy(SPEC)
    spec["receive"]["ingestors"] = [spec["receive"]["ingestors"][0]]
    set_spec(api, spec)
    outcome = await reconciler.reconcile(NS, NAME)
    assert sorted(outcome.pruned) == [
        "Service/t-receive-ingestor-b-operated",
        "StatefulSet/t-receive-ingestor-b",
    ]
    assert foreign in api.objects
    assert object_path("StatefulSet", NS, "t-receive-ingestor-b") not in api.objects


async def test_immutable_statefulset_change_orphan_deletes_then_recreates() -> None:
    api, reconciler = setup()
    await reconciler.reconcile(NS, NAME)
    path = object_path("StatefulSet", NS, "t-receive-ingestor-a")
    old_uid = api.objects[path]["metadata"]["uid"]
    spec = copy.deepcopy(SPEC)
    spec["receive"]["ingestors"][0]["dataVolume"] = {"pvc": {"spec": {}}}
    set_spec(api, spec)
    with pytest.raises(RetryLater):
        await reconciler.reconcile(NS, NAME)
    assert ("delete", path) in api.writes
    assert cond(api, "Reconciled")["reason"] == "Recreating"
    with pytest.raises(RetryLater):  # still terminating: no apply, no second delete
        await reconciler.reconcile(NS, NAME)
    api.collect_garbage()
    outcome = await reconciler.reconcile(NS, NAME)
    assert "StatefulSet/t-receive-ingestor-a" in outcome.applied
    assert api.objects[path]["metadata"]["uid"] != old_uid
    assert (
        api.objects[path]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
        == "t-receive-ingestor-a-tsdb"
    )
    assert cond(api, "Reconciled")["status"] == "True"


async def test_rotated_objstore_secret_rolls_only_its_workload() -> None:
    api, reconciler = setup()
    await reconciler.reconcile(NS, NAME)
    api.put(
        object_path("Secret", NS, "bucket"),
        {"kind": "Secret", "metadata": {"name": "bucket", "namespace": NS}},
    )
    outcome = await reconciler.reconcile(NS, NAME)
    assert outcome.applied == ["StatefulSet/t-receive-ingestor-b"]


async def test_invalid_spec_sets_status_once_and_touches_nothing() -> None:
    api, reconciler = setup({"receive": {"router": {"replicationFactor": 3}, "ingestors": [{"name": "a"}]}})
    outcome = await reconciler.reconcile(NS, NAME)
    assert outcome.invalid and api.writes_of("apply") == []
    assert cond(api, "Reconciled")["reason"] == "InvalidSpec"
    assert "spec.receive.ingestors: the soft-tenant ingestors [0]" in cond(api, "Reconciled")["message"]
    assert [e["reason"] for e in api.events] == ["InvalidSpec"]
    api.writes.clear()
    await reconciler.reconcile(NS, NAME)
    assert api.writes == []


async def test_paused_object_is_left_alone() -> None:
    spec = copy.deepcopy(SPEC)
    spec["paused"] = True
    api, reconciler = setup(spec)
    outcome = await reconciler.reconcile(NS, NAME)
    assert outcome.paused and api.writes_of("apply") == []
    assert status(api)["paused"] is True and cond(api, "Reconciled")["reason"] == "Paused"


async def test_ready_when_every_workload_reports_ready_replicas() -> None:
    api, reconciler = setup({"query": {"replicas": 2}})
    await reconciler.reconcile(NS, NAME)
    api.objects[object_path("Deployment", NS, "t-query")]["status"] = {"readyReplicas": 2}
    await reconciler.reconcile(NS, NAME)
    assert cond(api, "Ready")["status"] == "True"
    assert status(api)["components"] == [
        {
            "name": "t-query",
            "kind": "Deployment",
            "component": "query",
            "desiredReplicas": 2,
            "readyReplicas": 2,
        }
    ]


async def test_deleted_cr_is_a_no_op() -> None:
    api, reconciler = setup()
    del api.objects[thanos_path(NS, NAME)]
    assert (await reconciler.reconcile(NS, NAME)).gone and api.writes == []


async def test_hashrings_follow_the_ready_addresses_of_the_ingestor_endpoints() -> None:
    api, reconciler = setup({"receive": {"ingestors": [{"name": "a", "replicas": 2}]}})
    await reconciler.reconcile(NS, NAME)
    cm_path = object_path("ConfigMap", NS, "t-receive-router-hashrings-config")
    static = api.objects[cm_path]["data"]["hashrings.json"]
    assert "t-receive-ingestor-a-0." in static and "t-receive-ingestor-a-1." in static
    labels = api.objects[object_path("Service", NS, "t-receive-ingestor-a-operated")]["metadata"]["labels"]

    def endpoints(ready: list[int], not_ready: list[int]) -> dict[str, Any]:
        def address(i: int) -> dict[str, Any]:
            pod = f"t-receive-ingestor-a-{i}"
            return {"ip": f"10.0.0.{i + 1}", "hostname": pod, "targetRef": {"kind": "Pod", "name": pod}}

        subset: dict[str, Any] = {"ports": [{"name": "grpc", "port": 10901}]}
        if ready:
            subset["addresses"] = [address(i) for i in ready]
        if not_ready:
            subset["notReadyAddresses"] = [address(i) for i in not_ready]
        return {
            "kind": "Endpoints",
            "metadata": {"name": "t-receive-ingestor-a-operated", "namespace": NS, "labels": labels},
            "subsets": [subset],
        }

    ep_path = object_path("Endpoints", NS, "t-receive-ingestor-a-operated")
    api.put(ep_path, endpoints([1], [0]))
    api.writes.clear()
    await reconciler.reconcile(NS, NAME)
    ring = api.objects[cm_path]["data"]["hashrings.json"]
    assert "t-receive-ingestor-a-1." in ring and "t-receive-ingestor-a-0." not in ring
    # only the ConfigMap is written: the routers are not rolled
    assert [p for v, p in api.writes if v == "apply"] == [cm_path]
    api.put(ep_path, endpoints([], [0, 1]))
    await reconciler.reconcile(NS, NAME)
    assert '"endpoints": []' in api.objects[cm_path]["data"]["hashrings.json"]
