"""The Thanos operator against the real kube-apiserver: create, change, prune, status, delete, recreate.

The cluster runs the real kube-controller-manager (``kube_controller_manager`` fixture): the
garbage collector deletes the children of a deleted CR and finishes the orphan delete of a
StatefulSet whose immutable fields changed; with the simulated kubelet its pods run and are
adopted by the re-created StatefulSet.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.cluster import KubeCluster
from tests.e2e.kubelet import SimulatedKubelet
from tests.e2e.thanos_support import (
    apply_obj,
    condition,
    eventually,
    get_json,
    install_thanos_crd,
    kubectl,
    running_controller,
    thanos_cr,
)

SPEC: dict[str, Any] = {
    "defaultFields": {"logLevel": "info"},
    "query": {
        "replicas": 1,
        "stores": [
            {"addresses": ["prometheus-operated:10901"]},
            {
                "addresses": ["query.peer.example.com:443"],
                "caSecret": {"name": "peer-ca", "key": "ca.crt"},
                "bearerTokenSecret": {"name": "peer-token", "key": "token"},
            },
        ],
    },
    "receive": {
        "router": {"replicationFactor": 1, "tenantHeader": "X-Tenant"},
        "ingestors": [
            {"name": "team-a", "tenants": ["a"], "replicas": 1},
            {
                "name": "softs",
                "replicas": 2,
                "objectStorageConfig": {"name": "bucket", "key": "objstore.yaml"},
                "dataVolume": {"pvc": {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}},
            },
        ],
    },
    "storeGateway": {"objectStorageConfig": {"name": "bucket", "key": "objstore.yaml"}},
    "compact": {"objectStorageConfig": {"name": "bucket", "key": "objstore.yaml"}},
}

CHILD_KINDS = "deployments,statefulsets,services,configmaps,secrets"


@pytest.fixture(scope="module")
def crd(kube_cluster: KubeCluster) -> None:
    install_thanos_crd(kube_cluster)


async def children(cluster: KubeCluster, ns: str, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = (await get_json(cluster, CHILD_KINDS, "-n", ns, "-l", f"app.kubernetes.io/managed-by={name}"))[
        "items"
    ]
    return {(i["kind"], i["metadata"]["name"]): i for i in items}


def args_of(obj: dict[str, Any], container: str) -> list[str]:
    return next(c["args"] for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == container)


async def test_cr_lifecycle(
    kube_controller_manager: KubeCluster, simulated_kubelet: SimulatedKubelet, kube_namespace: str, crd: None
) -> None:
    kube_cluster = kube_controller_manager
    ns, t = kube_namespace, "t"
    await apply_obj(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "bucket", "namespace": ns},
            "stringData": {"objstore.yaml": "type: FILESYSTEM\nconfig: {directory: /tmp}\n"},
        },
    )
    async with running_controller(kube_cluster, ns) as controller:
        await apply_obj(kube_cluster, thanos_cr(ns, t, SPEC))
        cr = await get_json(kube_cluster, "thanos", t, "-n", ns)
        uid = cr["metadata"]["uid"]
        expected = {
            ("Deployment", "t-query"),
            ("Service", "t-query-operated"),
            ("Secret", "t-query-proxy-config"),
            ("Deployment", "t-receive-router"),
            ("Service", "t-receive-router-operated"),
            ("ConfigMap", "t-receive-router-hashrings-config"),
            ("StatefulSet", "t-receive-ingestor-team-a"),
            ("Service", "t-receive-ingestor-team-a-operated"),
            ("StatefulSet", "t-receive-ingestor-softs"),
            ("Service", "t-receive-ingestor-softs-operated"),
            ("StatefulSet", "t-storegateway"),
            ("Service", "t-storegateway-operated"),
            ("StatefulSet", "t-compact"),
            ("Service", "t-compact-operated"),
        }

        async def all_created() -> bool:
            return set(await children(kube_cluster, ns, t)) == expected

        await eventually(all_created, what="every child object")
        objs = await children(kube_cluster, ns, t)
        for obj in objs.values():
            assert obj["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": "monitoring.paodin.io/v1alpha1",
                    "kind": "Thanos",
                    "name": t,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        query_args = args_of(objs[("Deployment", "t-query")], "query")
        assert (
            "--endpoint=127.0.0.1:11000" in query_args
            and "--endpoint=prometheus-operated:10901" in query_args
        )
        assert "--endpoint=dns+t-receive-ingestor-softs-operated:10901" in query_args
        assert "--query.replica-label=receive_replica" in query_args
        assert "--receive.tenant-header=X-Tenant" in args_of(
            objs[("Deployment", "t-receive-router")], "receive"
        )
        assert objs[("StatefulSet", "t-storegateway")]["spec"]["serviceName"] == "t-storegateway-operated"
        hashrings = json.loads(
            objs[("ConfigMap", "t-receive-router-hashrings-config")]["data"]["hashrings.json"]
        )
        assert [h["hashring"] for h in hashrings] == ["team-a", "softs"]

        async def status_for(generation: int, reconciled: str = "True") -> bool:
            obj = await get_json(kube_cluster, "thanos", t, "-n", ns)
            cond = condition(obj, "Reconciled")
            return (
                cond.get("status") == reconciled
                and cond.get("observedGeneration") == generation
                and obj["status"].get("observedGeneration") == generation
            )

        await eventually(lambda: status_for(1), what="Reconciled=True for generation 1")

        # The simulated kubelet runs the pods: readiness reaches the status.
        async def all_ready() -> bool:
            ready = condition(await get_json(kube_cluster, "thanos", t, "-n", ns), "Ready")
            return ready.get("status") == "True" and ready.get("reason") == "AllComponentsReady"

        await eventually(all_ready, timeout=120, what="Ready=True once every pod runs")
        cr = await get_json(kube_cluster, "thanos", t, "-n", ns)
        assert condition(cr, "Ready")["observedGeneration"] == 1
        query_status = next(c for c in cr["status"]["components"] if c["name"] == "t-query")
        assert query_status == {
            "name": "t-query",
            "kind": "Deployment",
            "component": "query",
            "desiredReplicas": 1,
            "readyReplicas": 1,
        }
        table = await kubectl(kube_cluster, "get", "thanos", t, "-n", ns)
        assert "READY" in table and "RECONCILED" in table

        # 1. replicas change -> the Deployment follows.
        await kubectl(
            kube_cluster,
            "patch",
            "thanos",
            t,
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"query":{"replicas":3}}}',
        )

        async def query_scaled() -> bool:
            dep = await get_json(kube_cluster, "deployment", "t-query", "-n", ns)
            return bool(dep["spec"]["replicas"] == 3)

        await eventually(query_scaled, what="query replicas 3")
        await eventually(lambda: status_for(2), what="Reconciled for generation 2")

        # 2. remove an ingestor group and a component -> their objects are pruned.
        spec = json.loads(json.dumps(SPEC))
        spec["query"]["replicas"] = 3
        spec["receive"]["ingestors"] = [spec["receive"]["ingestors"][1]]
        del spec["compact"]
        await apply_obj(kube_cluster, thanos_cr(ns, t, spec))
        gone = {
            ("StatefulSet", "t-receive-ingestor-team-a"),
            ("Service", "t-receive-ingestor-team-a-operated"),
            ("StatefulSet", "t-compact"),
            ("Service", "t-compact-operated"),
        }

        async def pruned() -> bool:
            return set(await children(kube_cluster, ns, t)) == expected - gone

        await eventually(pruned, what="pruning of team-a and compact")
        await eventually(lambda: status_for(3), what="Reconciled for generation 3")
        cm = await get_json(kube_cluster, "configmap", "t-receive-router-hashrings-config", "-n", ns)
        assert [h["hashring"] for h in json.loads(cm["data"]["hashrings.json"])] == ["softs"]

        # 3. a deleted child is put back.
        await kubectl(kube_cluster, "delete", "service", "t-query-operated", "-n", ns)

        async def restored() -> bool:
            return ("Service", "t-query-operated") in await children(kube_cluster, ns, t)

        await eventually(restored, what="re-created Service")

        # 3b. edits by others to fields we own are reverted (the applied-hash annotation still matches).
        await kubectl(kube_cluster, "scale", "deployment", "t-query", "-n", ns, "--replicas=5")
        await kubectl(
            kube_cluster,
            "patch",
            "configmap",
            "t-receive-router-hashrings-config",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"data":{"hashrings.json":"[]"}}',
        )

        async def reverted() -> bool:
            dep = await get_json(kube_cluster, "deployment", "t-query", "-n", ns)
            cm = await get_json(kube_cluster, "configmap", "t-receive-router-hashrings-config", "-n", ns)
            return bool(dep["spec"]["replicas"] == 3 and json.loads(cm["data"]["hashrings.json"]) != [])

        await eventually(reverted, what="drift reverted")

        # 4. an invalid spec -> Reconciled=False with the field path; children untouched.
        await kubectl(
            kube_cluster,
            "patch",
            "thanos",
            t,
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"receive":{"router":{"replicationFactor":5}}}}',
        )
        await eventually(lambda: status_for(4, "False"), what="Reconciled=False for the invalid generation 4")
        cr = await get_json(kube_cluster, "thanos", t, "-n", ns)
        assert condition(cr, "Reconciled")["reason"] == "InvalidSpec"
        assert (
            "spec.receive.ingestors: the soft-tenant ingestors [0]" in condition(cr, "Reconciled")["message"]
        )
        events = (await get_json(kube_cluster, "events", "-n", ns))["items"]
        assert any(e["reason"] == "InvalidSpec" and e["involvedObject"]["uid"] == uid for e in events)
        assert any(e["reason"] == "Pruned" for e in events)
        assert controller.failures == 0

        # 5. delete the CR: the real garbage collector deletes every child through its owner reference.
        assert all(
            o["metadata"]["ownerReferences"][0]["uid"] == uid
            for o in (await children(kube_cluster, ns, t)).values()
        )
        await kubectl(kube_cluster, "delete", "thanos", t, "-n", ns, "--wait=false")

        async def all_deleted() -> bool:
            return not await children(kube_cluster, ns, t)

        await eventually(all_deleted, timeout=60, what="the garbage collector to delete every child")


async def test_immutable_statefulset_change_is_recreated_keeping_pods(
    kube_controller_manager: KubeCluster, simulated_kubelet: SimulatedKubelet, kube_namespace: str, crd: None
) -> None:
    kube_cluster = kube_controller_manager
    ns, t = kube_namespace, "imm"
    spec: dict[str, Any] = {
        "receive": {
            "ingestors": [
                {
                    "name": "a",
                    "dataVolume": {"pvc": {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}},
                }
            ]
        }
    }
    async with running_controller(kube_cluster, ns):
        await apply_obj(kube_cluster, thanos_cr(ns, t, spec))
        sts_name = "imm-receive-ingestor-a"

        async def sts_uid() -> str:
            out = await kubectl(
                kube_cluster,
                "get",
                "statefulset",
                sts_name,
                "-n",
                ns,
                "-o",
                "jsonpath={.metadata.uid}",
                check=False,
            )
            return out.strip()

        async def exists() -> bool:
            return bool(await sts_uid())

        await eventually(exists, what="StatefulSet")
        first_uid = await sts_uid()

        async def pod_running() -> bool:
            out = await kubectl(
                kube_cluster, "get", "pod", f"{sts_name}-0", "-n", ns, "-o", "json", check=False
            )
            return bool(out) and json.loads(out)["status"].get("phase") == "Running"

        await eventually(pod_running, timeout=60, what="the ingestor pod Running (simulated kubelet)")
        pod_uid = (await get_json(kube_cluster, "pod", f"{sts_name}-0", "-n", ns))["metadata"]["uid"]
        spec["receive"]["ingestors"][0]["dataVolume"]["pvc"]["spec"]["resources"]["requests"]["storage"] = (
            "2Gi"
        )
        await apply_obj(kube_cluster, thanos_cr(ns, t, spec))

        # The operator orphan-deletes; the real garbage collector orphans the pod and removes the
        # finalizer (too fast to watch reliably), then the operator re-creates the StatefulSet.
        async def recreated() -> bool:
            uid = await sts_uid()
            return bool(uid) and uid != first_uid

        await eventually(recreated, what="the re-created StatefulSet")
        sts = await get_json(kube_cluster, "statefulset", sts_name, "-n", ns)
        claim = sts["spec"]["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
        events = (await get_json(kube_cluster, "events", "-n", ns))["items"]
        assert any(e["reason"] == "Recreating" for e in events)

        async def adopted() -> bool:
            pod = await get_json(kube_cluster, "pod", f"{sts_name}-0", "-n", ns)
            refs = pod["metadata"].get("ownerReferences") or []
            return pod["metadata"]["uid"] == pod_uid and any(r["uid"] == sts["metadata"]["uid"] for r in refs)

        await eventually(adopted, timeout=60, what="the same pod adopted by the re-created StatefulSet")

        async def reconciled() -> bool:
            return (
                condition(await get_json(kube_cluster, "thanos", t, "-n", ns), "Reconciled").get("status")
                == "True"
            )

        await eventually(reconciled, what="Reconciled=True after re-create")
