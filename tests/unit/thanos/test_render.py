"""Properties of the pure renderer: determinism, fixed PaodinMonitoring bugs, hash annotations."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings

from tests.unit.thanos.strategies import thanos_objects
from thanos_operator import names
from thanos_operator.models import parse_thanos
from thanos_operator.render import referenced_secrets, render
from thanos_operator.render.common import canonical_json


def cr(spec: dict[str, Any], name: str = "t") -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
        "spec": spec,
    }


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
    assert removed == {("StatefulSet", "t-receive-ingestor-b"), ("Service", "t-receive-ingestor-b-operated")}


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
