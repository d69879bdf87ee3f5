"""Golden tests: PaodinMonitoring's sample CR and the three docs/usage.md scenarios.

Two layers. The hand-written expectations below are derived by reading PaodinMonitoring's
generator (WizTelemetry/whizard at cca15b61, docs/design.md "Thanos operator") and
applying our fixes: names, labels, args, hashrings. The ``*.golden.yaml`` files pin the
complete output byte for byte (regenerate with ``PANOPTICON_UPDATE_GOLDEN=1`` and review
the diff).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from thanos_operator.models import parse_thanos
from thanos_operator.render import render

CASES = Path(__file__).parent / "cases"


def load(case: str) -> list[dict[str, Any]]:
    raw = yaml.safe_load((CASES / f"{case}.input.yaml").read_text())
    return render(parse_thanos(raw))


def by_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


@pytest.mark.parametrize(
    "case", sorted(p.name.removesuffix(".input.yaml") for p in CASES.glob("*.input.yaml"))
)
def test_matches_golden_file(case: str) -> None:
    rendered = yaml.safe_dump_all(load(case), sort_keys=True)
    golden = CASES / f"{case}.golden.yaml"
    if os.environ.get("PANOPTICON_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    assert golden.exists(), f"{golden} missing: run with PANOPTICON_UPDATE_GOLDEN=1 and review it"
    assert rendered == golden.read_text()


def test_every_object_is_owned_by_the_cr_and_labelled() -> None:
    for case in ("sample", "usage-1-scattered", "usage-2-push", "usage-3-central"):
        raw = yaml.safe_load((CASES / f"{case}.input.yaml").read_text())
        for obj in load(case):
            meta = obj["metadata"]
            assert meta["ownerReferences"] == [
                {
                    "apiVersion": "monitoring.paodin.io/v1alpha1",
                    "kind": "Thanos",
                    "name": raw["metadata"]["name"],
                    "uid": raw["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
            assert meta["labels"]["app.kubernetes.io/managed-by"] == raw["metadata"]["name"]
            assert meta["labels"]["app.kubernetes.io/part-of"] == "thanos"
            assert meta["namespace"] == raw["metadata"].get("namespace", "default")


def test_sample_cr() -> None:
    objs = by_name(load("sample"))
    t = "thanos-sample"
    ing = f"{t}-receive-ingestor-soft-tenants"
    assert set(objs) == {
        ("ConfigMap", f"{t}-receive-router-hashrings-config"),
        ("Service", f"{t}-query-operated"),
        ("Service", f"{t}-receive-router-operated"),
        ("Service", f"{ing}-operated"),
        ("StatefulSet", ing),
        ("Deployment", f"{t}-query"),
        ("Deployment", f"{t}-receive-router"),
    }
    query = objs[("Deployment", f"{t}-query")]
    assert query["spec"]["replicas"] == 1
    assert container(query, "query")["args"] == [
        "query",
        f"--endpoint=dns+{ing}-operated:10901",
        "--grpc-address=0.0.0.0:10901",
        "--http-address=0.0.0.0:10902",
        "--log.level=info",
        "--query.replica-label=prometheus_replica",
        "--query.replica-label=receive_replica",
    ]
    assert [c["name"] for c in query["spec"]["template"]["spec"]["containers"]] == [
        "query"
    ]  # no secured store
    router = objs[("Deployment", f"{t}-receive-router")]
    router_container = container(router, "receive")
    assert router_container["args"] == [
        "receive",
        "--grpc-address=0.0.0.0:10901",
        "--http-address=0.0.0.0:10902",
        '--label=receive_replica="$(NAME)"',
        "--log.level=info",
        "--receive.hashrings-file=/etc/thanos/hashrings.json",
        "--receive.replication-factor=2",
        "--remote-write.address=0.0.0.0:19291",
    ]
    assert router_container["env"][0]["name"] == "NAME"  # PaodinMonitoring referenced $(NAME) without it
    assert {p["containerPort"] for p in router_container["ports"]} == {10901, 10902, 19291}
    hashrings = json.loads(
        objs[("ConfigMap", f"{t}-receive-router-hashrings-config")]["data"]["hashrings.json"]
    )
    assert hashrings == [
        {
            "hashring": "soft-tenants",
            "endpoints": [f"{ing}-0.{ing}-operated:10901", f"{ing}-1.{ing}-operated:10901"],
        }
    ]
    sts = objs[("StatefulSet", ing)]
    assert sts["spec"]["serviceName"] == f"{ing}-operated"
    assert sts["spec"]["replicas"] == 2
    assert container(sts, "receive")["args"] == [
        "receive",
        "--grpc-address=0.0.0.0:10901",
        "--http-address=0.0.0.0:10902",
        '--label=receive_replica="$(NAME)"',
        "--log.level=info",
        f"--receive.local-endpoint=$(NAME).{ing}-operated:10901",
        "--remote-write.address=0.0.0.0:19291",
        "--tsdb.path=/thanos",  # no literal quotes
    ]
    assert sts["spec"]["template"]["spec"]["volumes"] == [{"name": "tsdb", "emptyDir": {}}]
    for svc in (f"{t}-query-operated", f"{t}-receive-router-operated", f"{ing}-operated"):
        assert objs[("Service", svc)]["spec"]["clusterIP"] == "None"


def test_usage_1_query_only() -> None:
    objs = by_name(load("usage-1-scattered"))
    assert set(objs) == {("Deployment", "t1-query"), ("Service", "t1-query-operated")}
    args = container(objs[("Deployment", "t1-query")], "query")["args"]
    assert [a for a in args if a.startswith("--endpoint")] == [
        "--endpoint=member-thanos-sidecar.example.com:10901",
        "--endpoint=prometheus-operated:10901",
    ]
    assert not any(a.startswith("--store") for a in args)  # deprecated/removed flags
    svc = objs[("Service", "t1-query-operated")]
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"grpc": 10901, "http": 10902}


def test_usage_2_push_with_pvc() -> None:
    objs = by_name(load("usage-2-push"))
    assert objs[("Deployment", "t2-query")]["spec"]["replicas"] == 2
    assert objs[("Deployment", "t2-receive-router")]["spec"]["replicas"] == 2
    sts = objs[("StatefulSet", "t2-receive-ingestor-softs")]
    assert sts["metadata"]["namespace"] == "default"
    assert sts["spec"]["volumeClaimTemplates"] == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "t2-receive-ingestor-softs-tsdb"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
        }
    ]
    assert container(sts, "receive")["volumeMounts"] == [
        {"name": "t2-receive-ingestor-softs-tsdb", "mountPath": "/thanos"}
    ]
    assert "volumes" not in sts["spec"]["template"]["spec"]
    router_args = container(objs[("Deployment", "t2-receive-router")], "receive")["args"]
    assert not any(a.startswith("--receive.replication-factor") for a in router_args)  # unset: Thanos default


def test_usage_3_central_host() -> None:
    objs = by_name(load("usage-3-central"))
    ing = "t3-receive-ingestor"
    hashrings = json.loads(
        objs[("ConfigMap", "t3-receive-router-hashrings-config")]["data"]["hashrings.json"]
    )
    # Hard tenants first in spec order; every soft ingestor in ONE catch-all ring, last.
    assert hashrings == [
        {
            "hashring": "member-a",
            "tenants": ["member-a"],
            "endpoints": [
                f"{ing}-member-a-0.{ing}-member-a-operated:10901",
                f"{ing}-member-a-1.{ing}-member-a-operated:10901",
            ],
        },
        {
            "hashring": "member-b",
            "tenants": ["member-b"],
            "endpoints": [
                f"{ing}-member-b-0.{ing}-member-b-operated:10901",
                f"{ing}-member-b-1.{ing}-member-b-operated:10901",
            ],
        },
        {
            "hashring": "softs",
            "endpoints": [
                f"{ing}-softs-a-0.{ing}-softs-a-operated:10901",
                f"{ing}-softs-b-0.{ing}-softs-b-operated:10901",
            ],
        },
    ]
    router_args = container(objs[("Deployment", "t3-receive-router")], "receive")["args"]
    for flag in (
        "--receive.tenant-header=X-Scope-OrgID",
        "--receive.default-tenant-id=unknown",
        "--receive.tenant-label-name=tenant_id",
        "--log.format=json",
        "--receive.replication-factor=2",
    ):
        assert flag in router_args
    member_a = objs[("StatefulSet", f"{ing}-member-a")]
    assert "--tsdb.retention=1d" in container(member_a, "receive")["args"]
    assert (
        "--objstore.config-file=/etc/thanos/secrets/bucket/objstore.yaml"
        in container(member_a, "receive")["args"]
    )
    assert container(member_a, "receive")["image"] == "quay.io/thanos/thanos:v0.36.1"
    assert "monitoring.paodin.io/secrets-hash" in member_a["spec"]["template"]["metadata"]["annotations"]

    compact = objs[("StatefulSet", "t3-compact")]
    assert compact["spec"]["replicas"] == 1
    assert compact["spec"]["serviceName"] == "t3-compact-operated"
    assert container(compact, "compact")["args"] == [
        "compact",
        "--data-dir=/thanos",
        "--deduplication.replica-label=receive_replica",
        "--downsampling.disable",
        "--http-address=0.0.0.0:10902",
        "--log.format=json",
        "--log.level=info",
        "--objstore.config-file=/etc/thanos/secrets/bucket/objstore.yaml",
        "--retention.resolution-1h=1y",  # PaodinMonitoring put the 5m value here
        "--retention.resolution-5m=90d",
        "--retention.resolution-raw=30d",
        "--wait",
    ]
    store = objs[("StatefulSet", "t3-storegateway")]
    assert store["spec"]["serviceName"] == "t3-storegateway-operated"
    assert "--min-time=-8w" in container(store, "store")["args"]

    query = objs[("Deployment", "t3-query")]
    assert [a for a in container(query, "query")["args"] if a.startswith("--endpoint")] == [
        "--endpoint=127.0.0.1:11000",
        *(f"--endpoint=dns+{ing}-{n}-operated:10901" for n in ("member-a", "member-b", "softs-a", "softs-b")),
        "--endpoint=dns+t3-storegateway-operated:10901",
        "--endpoint=prometheus-operated:10901",
    ]
    proxy = container(query, "proxy")
    assert proxy["args"] == ["-c", "/etc/envoy/config/envoy.yaml"]
    volumes = {v["name"]: v for v in query["spec"]["template"]["spec"]["volumes"]}
    assert volumes["proxy-config"] == {
        "name": "proxy-config",
        "secret": {"secretName": "t3-query-proxy-config"},
    }
    assert volumes["store-0-credentials"]["projected"]["sources"] == [
        {"secret": {"name": "host-b-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "secret": {
                "name": "host-b-client",
                "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
            }
        },
        {"secret": {"name": "host-b-token", "items": [{"key": "token", "path": "token"}]}},
    ]
    assert not any("subPath" in m for m in proxy["volumeMounts"])  # subPath mounts never see updates
    assert "monitoring.paodin.io/config-hash" in query["spec"]["template"]["metadata"]["annotations"]

    proxy_secret = objs[("Secret", "t3-query-proxy-config")]
    files = {k: base64.b64decode(v).decode() for k, v in proxy_secret["data"].items()}
    cds = yaml.safe_load(files["cds.yaml"])["resources"][0]
    tls = cds["transport_socket"]["typed_config"]
    assert tls["sni"] == "query.host-b.example.com"
    assert cds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ] == {"address": "thanos-query.host-b.example.com", "port_value": 443}
    assert "tls_certificate_sds_secret_configs" in tls["common_tls_context"]
    token_sds = yaml.safe_load(files["sds-store-0-token.yaml"])["resources"][0]
    assert token_sds["generic_secret"] == {"secret": {"filename": "/etc/envoy/stores/0/token"}}
    # No credential material is inlined anywhere in the config.
    assert "inline_" not in "".join(files.values())
