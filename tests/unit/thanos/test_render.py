"""Properties of the pure renderer: determinism, fixed PaodinMonitoring bugs, hash annotations."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings

from tests.unit.thanos.crs import cr
from tests.unit.thanos.strategies import thanos_objects
from thanos_operator import names
from thanos_operator.models import parse_thanos
from thanos_operator.render import referenced_secrets, render
from thanos_operator.render.common import canonical_json


def workload(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@settings(max_examples=150, deadline=None)
@given(thanos_objects())
def test_rendering_is_deterministic_and_sorted(raw: dict[str, Any]) -> None:
    first = render(parse_thanos(raw))
    second = render(parse_thanos(copy.deepcopy(raw)))
    assert canonical_json(first) == canonical_json(second)
    assert json.dumps(first, sort_keys=False) == json.dumps(second, sort_keys=False)  # same key order too
    for obj in first:
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if c["name"] != "proxy":
                assert c["args"][1:] == sorted(c["args"][1:]), c["args"]
        # The applied hash really is over the content: changing anything changes it.
        assert len(obj["metadata"]["annotations"][names.ANNOTATION_APPLIED_HASH]) == 32
    keys = [(o["kind"], o["metadata"]["name"]) for o in first]
    assert len(keys) == len(set(keys))


@settings(max_examples=60, deadline=None)
@given(thanos_objects())
def test_no_quoted_paths_and_every_statefulset_has_a_governing_service(raw: dict[str, Any]) -> None:
    objects = render(parse_thanos(raw))
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            assert obj["spec"]["serviceName"] in services
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for arg in c["args"]:
                assert not any(arg.startswith(f) for f in ('--tsdb.path="', '--data-dir="'))


def test_compact_honours_replicas() -> None:
    objects = render(
        parse_thanos(cr({"compact": {"replicas": 0, "objectStorageConfig": {"name": "b", "key": "k"}}}))
    )
    assert workload(objects, "StatefulSet", "t-compact")["spec"]["replicas"] == 0


def test_removed_ingestor_group_is_no_longer_rendered() -> None:
    two = render(parse_thanos(cr({"receive": {"ingestors": [{"name": "a"}, {"name": "b"}]}})))
    one = render(parse_thanos(cr({"receive": {"ingestors": [{"name": "a"}]}})))
    removed = {(o["kind"], o["metadata"]["name"]) for o in two} - {
        (o["kind"], o["metadata"]["name"]) for o in one
    }
    assert removed == {
        ("StatefulSet", "t-receive-ingestor-b"),
        ("Service", "t-receive-ingestor-b-operated"),
        ("PodDisruptionBudget", "t-receive-ingestor-b"),
    }


def test_objstore_secret_version_rolls_pods_but_envoy_credentials_do_not() -> None:
    thanos = parse_thanos(
        cr(
            {
                "query": {"stores": [{"addresses": ["x:1"], "caSecret": {"name": "ca", "key": "ca.crt"}}]},
                "storeGateway": {"objectStorageConfig": {"name": "bucket", "key": "o.yaml"}},
            }
        )
    )
    assert referenced_secrets(thanos) == {"bucket": True, "ca": False}
    before = render(thanos, secret_versions={"bucket": "1", "ca": "1"})
    after = render(thanos, secret_versions={"bucket": "2", "ca": "2"})

    def ann(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
        return dict(workload(objs, kind, name)["spec"]["template"]["metadata"].get("annotations", {}))

    assert ann(before, "StatefulSet", "t-storegateway") != ann(after, "StatefulSet", "t-storegateway")
    assert ann(before, "Deployment", "t-query") == ann(after, "Deployment", "t-query")


def test_hashring_change_updates_the_configmap_in_place_without_rolling_anything() -> None:
    small = render(parse_thanos(cr({"receive": {"ingestors": [{"name": "a", "replicas": 1}]}})))
    big = render(parse_thanos(cr({"receive": {"ingestors": [{"name": "a", "replicas": 3}]}})))

    def template(objs: list[dict[str, Any]], kind: str, name: str) -> Any:
        return workload(objs, kind, name)["spec"]["template"]

    assert template(small, "Deployment", "t-receive-router") == template(
        big, "Deployment", "t-receive-router"
    )
    assert template(small, "StatefulSet", "t-receive-ingestor-a") == template(
        big, "StatefulSet", "t-receive-ingestor-a"
    )
    assert workload(small, "ConfigMap", "t-receive-router-hashrings-config") != workload(
        big, "ConfigMap", "t-receive-router-hashrings-config"
    )


def rings(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = workload(objects, "ConfigMap", "t-receive-router-hashrings-config")["data"]["hashrings.json"]
    result: list[dict[str, Any]] = json.loads(data)
    return result


def test_hashrings_list_only_ready_pods_below_the_replica_count_by_ordinal() -> None:
    thanos = parse_thanos(
        cr(
            {
                "receive": {
                    "ingestors": [
                        {"name": "hard", "tenants": ["x"], "replicas": 2},
                        {"name": "s1", "replicas": 3},
                        {"name": "s2", "replicas": 1},
                    ]
                }
            }
        )
    )
    ready = {
        "hard": ["t-receive-ingestor-hard-1"],
        # pod-3 is being scaled away (ordinal >= replicas): out of the ring before it is gone
        "s1": ["t-receive-ingestor-s1-3", "t-receive-ingestor-s1-2", "t-receive-ingestor-s1-0"],
    }
    assert rings(render(thanos, ready_pods=ready)) == [
        {
            "hashring": "hard",
            "tenants": ["x"],
            "endpoints": ["t-receive-ingestor-hard-1.t-receive-ingestor-hard-operated:10901"],
        },
        {
            "hashring": "softs",
            "endpoints": [
                "t-receive-ingestor-s1-0.t-receive-ingestor-s1-operated:10901",
                "t-receive-ingestor-s1-2.t-receive-ingestor-s1-operated:10901",
                # s2 has no Endpoints object yet: static membership
                "t-receive-ingestor-s2-0.t-receive-ingestor-s2-operated:10901",
            ],
        },
    ]


def test_a_ring_with_no_ready_pod_stays_with_no_endpoints_and_the_file_is_never_empty() -> None:
    thanos = parse_thanos(
        cr({"receive": {"ingestors": [{"name": "hard", "tenants": ["x"]}, {"name": "soft"}]}})
    )
    found = rings(render(thanos, ready_pods={"hard": [], "soft": []}))
    assert found == [
        {"hashring": "hard", "tenants": ["x"], "endpoints": []},
        {"hashring": "soft", "endpoints": []},
    ]


def test_selector_labels_become_selector_label_flags() -> None:
    objects = render(parse_thanos(cr({"query": {"selectorLabels": {"cluster": "host"}}})))
    args = workload(objects, "Deployment", "t-query")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert '--selector-label=cluster="host"' in args


def test_operator_default_images_apply_only_where_the_cr_names_none() -> None:
    from thanos_operator.render import DefaultImages

    spec = {
        "query": {"stores": [{"addresses": ["x:1"], "caSecret": {"name": "ca", "key": "ca.crt"}}]},
        "receive": {"ingestors": [{"name": "a", "image": "own/thanos:1"}]},
    }
    images = DefaultImages(thanos="mirror/thanos:v0.37.2", envoy="mirror/envoy:v1.40.0")
    objects = render(parse_thanos(cr(spec)), images=images)

    def images_of(kind: str, name: str) -> dict[str, str]:
        pod = workload(objects, kind, name)["spec"]["template"]["spec"]
        return {c["name"]: c["image"] for c in pod["containers"]}

    assert images_of("Deployment", "t-query") == {
        "query": "mirror/thanos:v0.37.2",
        "proxy": "mirror/envoy:v1.40.0",
    }
    assert images_of("StatefulSet", "t-receive-ingestor-a") == {"receive": "own/thanos:1"}
    with_default = render(
        parse_thanos(cr({**spec, "defaultFields": {"image": "cr/thanos:2"}})), images=images
    )
    assert workload(with_default, "Deployment", "t-query")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == ("cr/thanos:2")


def test_escape_hatches_add_args_env_and_volumes_after_ours() -> None:
    spec = {
        "receive": {
            "ingestors": [
                {
                    "name": "a",
                    "extraArgs": ["--tsdb.max-exemplars=1000", '--label=cluster="eu"'],
                    "extraEnv": [{"name": "GOMAXPROCS", "value": "2"}],
                    "extraVolumes": [{"name": "limits", "configMap": {"name": "limits"}}],
                    "extraVolumeMounts": [{"name": "limits", "mountPath": "/etc/limits"}],
                }
            ]
        }
    }
    pod = workload(render(parse_thanos(cr(spec))), "StatefulSet", "t-receive-ingestor-a")["spec"]["template"][
        "spec"
    ]
    container = pod["containers"][0]
    assert container["args"][-2:] == ["--tsdb.max-exemplars=1000", '--label=cluster="eu"']
    assert [e["name"] for e in container["env"]] == ["NAME", "GOMAXPROCS"]
    assert {"name": "limits", "mountPath": "/etc/limits"} in container["volumeMounts"]
    assert {"name": "limits", "configMap": {"name": "limits"}} in pod["volumes"]


def test_escape_hatches_may_not_override_what_the_operator_sets() -> None:
    import pytest

    from thanos_operator.models import ThanosValidationError

    spec = {
        "query": {
            "extraArgs": ["--grpc-address=0.0.0.0:1", "oops"],
            "extraEnv": [{"name": "NAME", "value": "x"}],
            "extraVolumes": [{"name": "tsdb", "emptyDir": {}}],
            "extraVolumeMounts": [{"name": "other", "mountPath": "/thanos/x"}],
        }
    }
    with pytest.raises(ThanosValidationError) as info:
        parse_thanos(cr(spec))
    assert info.value.problems == [
        "spec.query.extraArgs[0]: --grpc-address is set by the operator; use the matching spec field instead",
        "spec.query.extraArgs[1]: 'oops': expected --flag or --flag=value",
        "spec.query.extraEnv[0].name: NAME is set by the operator",
        "spec.query.extraVolumes[0].name: 'tsdb' is a volume name the operator uses",
        "spec.query.extraVolumeMounts[0].name: must name one of extraVolumes",
        "spec.query.extraVolumeMounts[0].mountPath: /thanos/x is inside a directory the operator mounts",
    ]


def test_pods_spread_over_nodes_and_zones_by_default() -> None:
    objects = render(parse_thanos(cr({"query": {"replicas": 2}})))
    pod = workload(objects, "Deployment", "t-query")["spec"]["template"]["spec"]
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in pod["topologySpreadConstraints"])
    off = render(parse_thanos(cr({"query": {"topologySpreadConstraints": []}})))
    assert (
        "topologySpreadConstraints" not in workload(off, "Deployment", "t-query")["spec"]["template"]["spec"]
    )
    with_affinity = render(parse_thanos(cr({"query": {"affinity": {"nodeAffinity": {}}}})))
    assert (
        "topologySpreadConstraints"
        not in workload(with_affinity, "Deployment", "t-query")["spec"]["template"]["spec"]
    )


def test_query_frontend_caches_in_memory_by_default_and_query_auto_downsamples() -> None:
    objects = render(parse_thanos(cr({"query": {}, "queryFrontend": {}})))
    args = workload(objects, "Deployment", "t-query-frontend")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    config = '{"type": "IN-MEMORY", "config": {"max_size": "256MB"}}'
    assert args[0] == "query-frontend"
    assert "--query-frontend.downstream-url=http://t-query-operated.ns.svc:10902" in args
    assert f"--query-range.response-cache-config={config}" in args
    assert f"--labels.response-cache-config={config}" in args
    query_args = workload(objects, "Deployment", "t-query")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "--query.auto-downsampling" in query_args
    assert (
        "--query.auto-downsampling"
        not in render(parse_thanos(cr({"query": {}})))[-2]["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
    )


def test_query_frontend_reads_a_memcached_or_redis_config_from_a_secret() -> None:
    import pytest

    from thanos_operator.models import ThanosValidationError

    spec = {
        "query": {},
        "queryFrontend": {"cache": {"type": "redis", "configSecret": {"name": "c", "key": "r.yaml"}}},
    }
    thanos = parse_thanos(cr(spec))
    assert referenced_secrets(thanos) == {"c": True}
    frontend = workload(render(thanos), "Deployment", "t-query-frontend")
    args = frontend["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--query-range.response-cache-config-file=/etc/thanos/secrets/c/r.yaml" in args
    assert "monitoring.paodin.io/secrets-hash" in frontend["spec"]["template"]["metadata"]["annotations"]
    with pytest.raises(ThanosValidationError) as info:
        parse_thanos(cr({"queryFrontend": {"cache": {"type": "memcached"}}}))
    assert info.value.problems == ["spec.queryFrontend.cache: configSecret is required for a memcached cache"]
    with pytest.raises(ThanosValidationError) as info:
        parse_thanos(cr({"queryFrontend": {}}))
    assert info.value.problems == ["spec.query: required: spec.queryFrontend forwards to Query"]


def test_store_gateway_time_partitions_times_hash_shards() -> None:
    spec = {
        "query": {},
        "storeGateway": {
            "objectStorageConfig": {"name": "bucket", "key": "o.yaml"},
            "timeRanges": [{"maxTime": "-2w"}, {"minTime": "-2w"}],
            "shards": 2,
            "indexCache": {"maxSize": "1GB"},
        },
    }
    objects = render(parse_thanos(cr(spec)))
    stores = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    assert sorted(stores) == [f"t-storegateway-t{i}-s{j}" for i in (0, 1) for j in (0, 1)]
    args = stores["t-storegateway-t1-s0"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--min-time=-2w" in args and not any(a.startswith("--max-time") for a in args)
    relabel = next(a for a in args if a.startswith("--selector.relabel-config="))
    assert json.loads(relabel.partition("=")[2])[1] == {
        "action": "keep",
        "source_labels": ["shard"],
        "regex": "0",
    }
    assert '--index-cache.config={"type": "IN-MEMORY", "config": {"max_size": "1GB"}}' in args
    selectors = {json.dumps(s["spec"]["selector"], sort_keys=True) for s in stores.values()}
    assert len(selectors) == 4  # each partition selects only its own pods
    query_args = workload(objects, "Deployment", "t-query")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert [a for a in query_args if "storegateway" in a] == [
        f"--endpoint=dns+t-storegateway-t{i}-s{j}-operated:10901" for i in (0, 1) for j in (0, 1)
    ]
