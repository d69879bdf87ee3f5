"""Validation of the Thanos API at the boundary: compatible shapes accepted, errors name field paths."""

from __future__ import annotations

from typing import Any

import pytest

from thanos_operator.models import ThanosValidationError, parse_thanos


def cr(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {"name": "t", "namespace": "ns"},
        "spec": spec,
    }


def problems(spec: dict[str, Any]) -> list[str]:
    with pytest.raises(ThanosValidationError) as info:
        parse_thanos(cr(spec))
    return info.value.problems


def test_every_paodin_field_is_accepted_with_its_json_name() -> None:
    thanos = parse_thanos(
        cr(
            {
                "defaultFields": {"image": "img", "logLevel": "debug", "logFormat": "json"},
                "query": {
                    "replicas": 2,
                    "affinity": {},
                    "nodeSelector": {"a": "b"},
                    "tolerations": [{"key": "k"}],
                    "resources": {"limits": {"cpu": "1"}},
                    "selectorLabels": {"c": "d"},
                    "envoy": {"image": "e", "resources": {}},
                    "stores": [{"addresses": ["a:1"], "caSecret": {"name": "s", "key": "k"}}],
                },
                "receive": {
                    "router": {
                        "replicationFactor": 1,
                        "tenantHeader": "h",
                        "defaultTenantId": "d",
                        "tenantLabelName": "l",
                    },
                    "ingestors": [
                        {
                            "name": "i",
                            "tenants": ["x"],
                            "localTsdbRetention": "1d",
                            "objectStorageConfig": {"name": "o", "key": "k"},
                            "dataVolume": {"emptyDir": {"medium": "Memory"}},
                        }
                    ],
                },
                "storeGateway": {
                    "minTime": "-1w",
                    "maxTime": "-1d",
                    "objectStorageConfig": {"name": "o", "key": "k"},
                    "dataVolume": {"pvc": {"spec": {}}},
                },
                "compact": {
                    "downsamplingDisable": True,
                    "objectStorageConfig": {"name": "o", "key": "k"},
                    "retention": {"retentionRaw": "1d", "retention5m": "2d", "retention1h": "3d"},
                },
            }
        )
    )
    spec = thanos.spec
    assert spec.compact is not None and spec.compact.retention is not None
    assert spec.compact.retention.retention_5m == "2d" and spec.compact.retention.retention_1h == "3d"
    assert spec.receive is not None and spec.receive.router.default_tenant_id == "d"
    assert spec.query is not None and spec.query.stores is not None and spec.query.stores[0].secured


def test_replication_factor_above_hard_tenant_replicas_names_the_ingestor() -> None:
    assert problems(
        {
            "receive": {
                "router": {"replicationFactor": 3},
                "ingestors": [
                    {"name": "a", "tenants": ["x"], "replicas": 3},
                    {"name": "b", "tenants": ["y"], "replicas": 2},
                ],
            }
        }
    ) == [
        "spec.receive.ingestors[1].replicas: 2 is less than spec.receive.router.replicationFactor=3: "
        "every hashring needs at least replicationFactor endpoints"
    ]


def test_soft_ingestors_are_counted_together_for_the_replication_factor() -> None:
    parse_thanos(
        cr(
            {
                "receive": {
                    "router": {"replicationFactor": 2},
                    "ingestors": [{"name": "a", "replicas": 1}, {"name": "b", "replicas": 1}],
                }
            }
        )
    )
    assert problems(
        {
            "receive": {
                "router": {"replicationFactor": 3},
                "ingestors": [{"name": "a", "replicas": 1}, {"name": "b", "replicas": 1}],
            }
        }
    )[0].startswith(
        "spec.receive.ingestors: the soft-tenant ingestors [0], [1] form one catch-all hashring of 2"
    )


def test_store_and_compact_without_object_storage_are_rejected_not_crashing() -> None:
    assert problems({"storeGateway": {}}) == [
        "spec.storeGateway.objectStorageConfig: required: Thanos store cannot start without an object "
        "storage configuration"
    ]
    assert problems({"compact": {"replicas": 1}})[0].startswith("spec.compact.objectStorageConfig: required")


def test_errors_carry_exact_field_paths() -> None:
    found = problems(
        {
            "query": {
                "stores": [
                    {"addresses": ["a:1", "dnssrv+_grpc._tcp.x"], "caSecret": {"name": "a", "key": "b"}},
                    {"addresses": ["x:1"], "bearerTokenSecret": {"name": "t", "key": "k"}},
                ]
            },
            "receive": {"ingestors": [{"name": "Upper"}, {"replicas": -1}]},
            "defaultFields": {"logLevel": "loud"},
        }
    )
    assert (
        "spec.query.stores[0].addresses[1]: SRV discovery is not supported for stores behind the envoy "
        "proxy; use host:port or dns+host:port" in found
    )
    assert (
        "spec.query.stores[1].caSecret: required when clientCertSecret, bearerTokenSecret or serverName "
        "is set" in found
    )
    assert "spec.receive.ingestors[0].name: must be a lowercase DNS label of at most 40 characters" in found
    assert "spec.receive.ingestors[1].name: Field required" in found
    assert "spec.receive.ingestors[1].replicas: Input should be greater than or equal to 0" in found
    assert any(p.startswith("spec.defaultFields.logLevel: ") for p in found)


def test_unknown_fields_are_reported_with_their_path() -> None:
    assert problems({"query": {"replica": 2}}) == ["spec.query.replica: Extra inputs are not permitted"]


def test_duplicate_ingestor_names_are_rejected() -> None:
    assert problems({"receive": {"ingestors": [{"name": "a"}, {"name": "a"}]}}) == [
        "spec.receive: ingestor name 'a' is used twice"
    ]


def test_paused_and_empty_stores_from_the_sample_parse() -> None:
    thanos = parse_thanos(cr({"paused": True, "query": {"stores": None}}))
    assert thanos.spec.paused and thanos.spec.query is not None and thanos.spec.query.stores is None


def test_go_duration_flags_refuse_what_time_parse_duration_refuses() -> None:
    """thanos rule --eval-interval and query-frontend --query-range.split-interval are kingpin
    DurationVars (Go's time.ParseDuration: no d/w/y), not model.Durations like --tsdb.retention."""
    spec: dict[str, Any] = {
        "query": {},
        "queryFrontend": {"splitInterval": "1d"},
        "ruler": {"ruleSelector": {"a": "b"}, "evalInterval": "1w", "retention": "2d"},
    }
    found = problems(spec)
    assert any(p.startswith("spec.queryFrontend.splitInterval:") and "'1d'" in p for p in found), found
    assert any(p.startswith("spec.ruler.evalInterval:") and "'1w'" in p for p in found), found
    assert not any("retention" in p for p in found), found  # --tsdb.retention is a model.Duration: 2d is fine
    ok: dict[str, Any] = {
        "query": {},
        "queryFrontend": {"splitInterval": "1.5h"},
        "ruler": {"ruleSelector": {"a": "b"}, "evalInterval": "90s"},
    }
    parse_thanos(cr(ok))  # fractions and any unit order are Go durations
    assert problems({**ok, "ruler": {"ruleSelector": {"a": "b"}, "evalInterval": "-1m"}})
