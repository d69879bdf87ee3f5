"""One test per defect of issue 11 ("Thanos operator for production data"); each failed before its fix.

Every test builds what a user would write and asserts the operator refuses it with a field path,
or renders what production Thanos needs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.unit.thanos.crs import cr
from tests.unit.thanos.fake_api import FakeApi, invalid_error
from thanos_operator.models import ThanosValidationError, parse_thanos
from thanos_operator.reconciler import Reconciler, object_path, thanos_path
from thanos_operator.render import render

BUCKET = {"name": "bucket", "key": "objstore.yaml"}


def problems(spec: dict[str, Any], name: str = "t") -> list[str]:
    with pytest.raises(ThanosValidationError) as info:
        parse_thanos(cr(spec, name))
    return info.value.problems


def pod_spec(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    obj = next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


# 1 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "receive",
    [
        {"router": {}},
        {"router": {}, "ingestors": []},
        {"ingestors": [{"name": "a", "replicas": 0}, {"name": "b", "replicas": 0}]},
    ],
)
def test_defect_1_no_ingestor_endpoint_means_no_hashring_and_is_refused(receive: dict[str, Any]) -> None:
    found = problems({"receive": receive})
    assert found == [
        "spec.receive.ingestors: required: at least one ingestor with replicas >= 1; the router cannot "
        "start with an empty hashrings file"
    ]


def test_defect_1_a_valid_receive_never_renders_an_empty_hashrings_file() -> None:
    objects = render(parse_thanos(cr({"receive": {"ingestors": [{"name": "a"}]}})))
    hashrings = next(o for o in objects if o["kind"] == "ConfigMap")["data"]["hashrings.json"]
    assert json.loads(hashrings) != []


# 2 -------------------------------------------------------------------------------------------------
def test_defect_2_a_40_character_cr_name_cannot_make_a_64_character_service_name() -> None:
    name = "a" * 40
    found = problems({"receive": {"ingestors": [{"name": "x"}]}}, name=name)
    assert (
        f"metadata.name: Service name '{name}-receive-router-operated' is 64 characters; at most 63 "
        "(DNS-1035 label)" in found
    )


def test_defect_2_statefulset_names_over_52_characters_are_refused_at_the_ingestor() -> None:
    ingestor = "i" * 40
    found = problems({"receive": {"ingestors": [{"name": ingestor}]}})
    sts = f"t-receive-ingestor-{ingestor}"
    assert found[0] == (
        f"spec.receive.ingestors[0].name: StatefulSet name '{sts}' is {len(sts)} characters; at most 52, "
        "else its pods cannot be created (their controller-revision-hash label would exceed 63)"
    )
    # The longest name that fits is accepted.
    parse_thanos(cr({"receive": {"ingestors": [{"name": "i" * (52 - len("t-receive-ingestor-"))}]}}))


def test_defect_2_a_cr_name_starting_with_a_digit_cannot_name_a_service() -> None:
    assert problems({"query": {}}, name="1t")[0] == (
        "metadata.name: Service name '1t-query-operated' must start with a letter (DNS-1035 label)"
    )


# 3 -------------------------------------------------------------------------------------------------
def test_defect_3_more_than_one_compactor_is_refused() -> None:
    assert problems({"compact": {"replicas": 3, "objectStorageConfig": BUCKET}}) == [
        "spec.compact.replicas: 3 compactors: at most 1; Thanos Compact must be the only compactor of a "
        "bucket (several would compact and delete the same blocks concurrently)"
    ]
    parse_thanos(cr({"compact": {"replicas": 1, "objectStorageConfig": BUCKET}}))
    parse_thanos(cr({"compact": {"replicas": 0, "objectStorageConfig": BUCKET}}))


# 4 -------------------------------------------------------------------------------------------------
def test_defect_4_pods_run_as_thanos_with_fs_group_and_a_locked_down_container() -> None:
    spec = {
        "query": {"stores": [{"addresses": ["x:1"], "caSecret": {"name": "ca", "key": "ca.crt"}}]},
        "receive": {"ingestors": [{"name": "a", "dataVolume": {"pvc": {"spec": {}}}}]},
        "storeGateway": {"objectStorageConfig": BUCKET},
        "compact": {"objectStorageConfig": BUCKET},
    }
    objects = render(parse_thanos(cr(spec)))
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 5
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"] == {
            "fsGroup": 1001,
            "runAsGroup": 1001,
            "runAsNonRoot": True,
            "runAsUser": 1001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, workload["metadata"]["name"]
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
            }, (workload["metadata"]["name"], container["name"])


def test_defect_4_the_cr_overrides_the_security_contexts() -> None:
    spec = {
        "receive": {
            "ingestors": [
                {
                    "name": "a",
                    "securityContext": {"runAsUser": 0},
                    "containerSecurityContext": {"readOnlyRootFilesystem": False},
                }
            ]
        }
    }
    pod = pod_spec(render(parse_thanos(cr(spec))), "StatefulSet", "t-receive-ingestor-a")
    assert pod["securityContext"] == {"runAsUser": 0}
    assert pod["containers"][0]["securityContext"] == {"readOnlyRootFilesystem": False}


# 5 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "path", "value"),
    [
        (
            {"receive": {"ingestors": [{"name": "a", "localTsdbRetention": "one day"}]}},
            "spec.receive.ingestors[0].localTsdbRetention",
            "one day",
        ),
        (
            {"compact": {"objectStorageConfig": BUCKET, "retention": {"retentionRaw": "30 days"}}},
            "spec.compact.retention.retentionRaw",
            "30 days",
        ),
        (
            {"compact": {"objectStorageConfig": BUCKET, "retention": {"retention1h": "1h1y"}}},
            "spec.compact.retention.retention1h",
            "1h1y",
        ),
    ],
)
def test_defect_5_durations_follow_thanos_model_duration(spec: dict[str, Any], path: str, value: str) -> None:
    assert problems(spec) == [
        f"{path}: {value!r} is not a Thanos duration: use integers with units in the order y, w, d, h, m, "
        "s, ms (e.g. 15d, 1w, 2h30m, 0)"
    ]


def test_defect_5_min_and_max_time_are_rfc3339_or_relative_durations() -> None:
    assert problems({"storeGateway": {"objectStorageConfig": BUCKET, "minTime": "yesterday"}}) == [
        "spec.storeGateway.minTime: 'yesterday' is neither an RFC 3339 time (2024-01-02T15:04:05Z) nor a "
        "duration relative to now (-2w, -36h, 0)"
    ]
    assert problems({"storeGateway": {"objectStorageConfig": BUCKET, "maxTime": "2024-13-01T00:00:00Z"}})
    for good in ("-2w", "-36h", "0", "2024-01-02T15:04:05Z", "2024-01-02T15:04:05.123+02:00", "1d"):
        parse_thanos(cr({"storeGateway": {"objectStorageConfig": BUCKET, "minTime": good}}))
    for good in ("15d", "2h30m", "0", "1y2w3d4h5m6s7ms"):
        parse_thanos(cr({"receive": {"ingestors": [{"name": "a", "localTsdbRetention": good}]}}))


# 6 -------------------------------------------------------------------------------------------------
def test_defect_6_ingestors_get_time_to_flush_and_upload_their_head() -> None:
    objects = render(parse_thanos(cr({"receive": {"ingestors": [{"name": "a"}]}})))
    assert pod_spec(objects, "StatefulSet", "t-receive-ingestor-a")["terminationGracePeriodSeconds"] == 900
    overridden = render(
        parse_thanos(cr({"receive": {"ingestors": [{"name": "a", "terminationGracePeriodSeconds": 3600}]}}))
    )
    grace = pod_spec(overridden, "StatefulSet", "t-receive-ingestor-a")["terminationGracePeriodSeconds"]
    assert grace == 3600


# 7 -------------------------------------------------------------------------------------------------
def test_defect_7_a_hard_tenant_group_scaled_to_zero_is_refused() -> None:
    found = problems(
        {"receive": {"ingestors": [{"name": "a", "tenants": ["x"], "replicas": 0}, {"name": "soft"}]}}
    )
    assert found == [
        "spec.receive.ingestors[0].replicas: 0 replicas would drop the hashring of tenants ['x'] and send "
        "their writes to the soft-tenant ring; remove the tenants or the group instead"
    ]


def test_defect_7_a_tenant_in_two_groups_is_refused() -> None:
    found = problems(
        {
            "receive": {
                "ingestors": [{"name": "a", "tenants": ["x", "y"]}, {"name": "b", "tenants": ["z", "y"]}]
            }
        }
    )
    assert found == [
        "spec.receive.ingestors[1].tenants[1]: tenant 'y' is already routed to spec.receive.ingestors[0] "
        "('a'); Thanos uses the first matching hashring, so this group would never receive its data"
    ]


def test_defect_7_soft_tenant_groups_all_at_zero_are_refused() -> None:
    found = problems(
        {"receive": {"ingestors": [{"name": "a", "tenants": ["x"]}, {"name": "soft", "replicas": 0}]}}
    )
    assert found[0].startswith("spec.receive.ingestors: the soft-tenant ingestors [1] have 0 replicas")


# 8 -------------------------------------------------------------------------------------------------
async def test_defect_8_only_an_immutable_field_422_recreates_a_statefulset() -> None:
    api = FakeApi()
    spec = {"receive": {"ingestors": [{"name": "a"}]}}
    api.put(
        thanos_path("ns", "t"),
        {
            "apiVersion": "monitoring.paodin.io/v1alpha1",
            "kind": "Thanos",
            "metadata": {"name": "t", "namespace": "ns", "generation": 1},
            "spec": copy.deepcopy(spec),
        },
    )
    reconciler = Reconciler(api)
    await reconciler.reconcile("ns", "t")
    path = object_path("StatefulSet", "ns", "t-receive-ingestor-a")
    # A user sets a resource quantity the API server refuses: a 422 that is no immutable field.
    api.reject[path] = invalid_error(
        "StatefulSet",
        "t-receive-ingestor-a",
        [
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "lots": quantities must match the regular expression',
                "field": "spec.template.spec.containers[0].resources.limits[cpu]",
            }
        ],
    )
    cr_obj = api.objects[thanos_path("ns", "t")]
    cr_obj["spec"]["receive"]["ingestors"][0]["resources"] = {"limits": {"cpu": "lots"}}
    cr_obj["metadata"]["generation"] = 2
    api.writes.clear()
    outcome = await reconciler.reconcile("ns", "t")
    assert ("delete", path) not in api.writes
    assert path in api.objects and not api.objects[path]["metadata"].get("deletionTimestamp")
    conditions = api.objects[thanos_path("ns", "t")]["status"]["conditions"]
    reconciled = next(c for c in conditions if c["type"] == "Reconciled")
    assert reconciled["status"] == "False" and reconciled["reason"] == "ApplyRejected"
    assert "resources.limits[cpu]" in reconciled["message"]
    warnings = [e for e in api.events if e.get("type") == "Warning"]
    assert [e["reason"] for e in warnings] == ["ApplyRejected"]
    assert outcome.rejected


# 9 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address",
    ["<member-thanos-sidecar-adress>:10901", "sidecar", "sidecar:port", "sidecar:0", "host name:10901"],
)
def test_defect_9_placeholder_and_malformed_store_addresses_are_refused(address: str) -> None:
    found = problems({"query": {"stores": [{"addresses": ["ok.example.com:10901", address]}]}})
    assert len(found) == 1 and found[0].startswith(f"spec.query.stores[0].addresses[1]: {address!r}: ")


def test_defect_9_every_thanos_address_form_still_passes() -> None:
    addresses = [
        "a.b:10901",
        "dns+a.b:10901",
        "dnssrv+_grpc._tcp.a.b",
        "dnssrvnoa+_grpc._tcp.a",
        "10.0.0.1:1",
        "[::1]:10901",
    ]
    parse_thanos(cr({"query": {"stores": [{"addresses": addresses}]}}))
