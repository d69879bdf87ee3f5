"""Hypothesis strategies for valid ``Thanos`` objects (raw JSON, as read from the API)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

dns_label = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hosts = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}.example.com", dns_label, dns_label),
    st.builds(lambda a, b: f"10.{a}.0.{b}", st.integers(0, 255), st.integers(1, 254)),
)
ports = st.integers(1, 65535)
secret_ref = st.builds(
    lambda n, k: {"name": n, "key": k}, dns_label, st.sampled_from(["ca.crt", "token", "objstore.yaml"])
)


@st.composite
def stores(draw: st.DrawFn) -> dict[str, Any]:
    prefix = draw(st.sampled_from(["", "dns+"]))
    addresses = [f"{prefix}{draw(hosts)}:{draw(ports)}" for _ in range(draw(st.integers(1, 3)))]
    store: dict[str, Any] = {"addresses": addresses}
    if draw(st.booleans()):
        store["caSecret"] = draw(secret_ref)
        if draw(st.booleans()):
            store["clientCertSecret"] = {"name": draw(dns_label)}
        if draw(st.booleans()):
            store["bearerTokenSecret"] = draw(secret_ref)
        if draw(st.booleans()):
            store["serverName"] = draw(hosts)
    return store


@st.composite
def thanos_objects(draw: st.DrawFn, *, namespace: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["defaultFields"] = {
            "logLevel": draw(st.sampled_from(["info", "debug"])),
            "logFormat": draw(st.sampled_from(["logfmt", "json"])),
        }
    if draw(st.booleans()):
        spec["query"] = {"replicas": draw(st.integers(0, 3)), "stores": draw(st.lists(stores(), max_size=3))}
        if draw(st.booleans()):
            spec["query"]["selectorLabels"] = {"cluster": draw(dns_label)}
    if draw(st.booleans()):
        factor = draw(st.integers(1, 3))
        names = draw(st.lists(dns_label, min_size=1, max_size=3, unique=True))
        ingestors = []
        for name in names:
            ingestor: dict[str, Any] = {"name": name, "replicas": draw(st.integers(factor, factor + 2))}
            if draw(st.booleans()):
                # a tenant belongs to one group only (validation refuses it in two)
                tenants = draw(st.lists(dns_label, min_size=1, max_size=3))
                ingestor["tenants"] = [f"{name}-{t}" for t in tenants]
            if draw(st.booleans()):
                ingestor["localTsdbRetention"] = draw(st.sampled_from(["1d", "15d"]))
            if draw(st.booleans()):
                ingestor["objectStorageConfig"] = draw(secret_ref)
            if draw(st.booleans()):
                ingestor["dataVolume"] = {"pvc": {"spec": {"resources": {"requests": {"storage": "5Gi"}}}}}
            ingestors.append(ingestor)
        spec["receive"] = {
            "router": {"replicationFactor": factor, "replicas": draw(st.integers(1, 2))},
            "ingestors": ingestors,
        }
        if draw(st.booleans()):
            spec["receive"]["router"].update(
                tenantHeader="X-Tenant", defaultTenantId="anon", tenantLabelName="tenant"
            )
    if draw(st.booleans()):
        spec["storeGateway"] = {"objectStorageConfig": draw(secret_ref), "minTime": "-2w"}
    if draw(st.booleans()):
        spec["compact"] = {
            "objectStorageConfig": draw(secret_ref),
            "replicas": draw(st.integers(0, 1)),
            "downsamplingDisable": draw(st.booleans()),
            "retention": {"retentionRaw": "30d", "retention5m": "90d", "retention1h": "1y"},
        }
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {
            "name": draw(dns_label),
            "namespace": namespace or draw(dns_label),
            "uid": "0b7c4f8e-1d2a-4c3b-9e8f-7a6b5c4d3e2f",
            "generation": 1,
        },
        "spec": spec,
    }
