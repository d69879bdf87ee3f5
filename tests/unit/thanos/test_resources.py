"""Default resource requests: every container of every component gets its documented default,
and a component's ``resources`` replaces it as a whole."""

from __future__ import annotations

from typing import Any

from tests.unit.thanos.crs import cr
from thanos_operator.models import parse_thanos
from thanos_operator.render import render
from thanos_operator.render.common import DEFAULT_RESOURCES

BUCKET = {"name": "bucket", "key": "objstore.yaml"}
EVERYTHING: dict[str, Any] = {
    "query": {"stores": [{"addresses": ["remote:443"], "caSecret": {"name": "ca", "key": "ca.crt"}}]},
    "queryFrontend": {},
    "receive": {"ingestors": [{"name": "a"}]},
    "storeGateway": {"objectStorageConfig": BUCKET},
    "compact": {"objectStorageConfig": BUCKET},
    "ruler": {"ruleSelector": {"rules": "t"}},
}


def containers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """'<workload>/<container>' -> resources, for every container rendered."""
    result = {}
    for obj in render(parse_thanos(cr(spec))):
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            result[f"{obj['metadata']['name']}/{c['name']}"] = c["resources"]
    return result


def test_every_container_gets_its_component_default() -> None:
    assert containers(EVERYTHING) == {
        "t-query/query": DEFAULT_RESOURCES["query"],
        "t-query/proxy": DEFAULT_RESOURCES["envoy"],
        "t-query-frontend/query-frontend": DEFAULT_RESOURCES["query-frontend"],
        "t-receive-router/receive": DEFAULT_RESOURCES["receive-router"],
        "t-receive-ingestor-a/receive": DEFAULT_RESOURCES["receive-ingestor"],
        "t-storegateway/store": DEFAULT_RESOURCES["store"],
        "t-compact/compact": DEFAULT_RESOURCES["compact"],
        "t-ruler/rule": DEFAULT_RESOURCES["rule"],
    }
    for default in DEFAULT_RESOURCES.values():  # requests only: nothing throttled or OOM-killed by a guess
        assert set(default) == {"requests"} and set(default["requests"]) == {"cpu", "memory"}


def test_the_crs_resources_replace_the_default_as_a_whole() -> None:
    limits = {"limits": {"memory": "8Gi"}}
    spec = {
        **EVERYTHING,
        "query": {**EVERYTHING["query"], "resources": limits, "envoy": {"resources": {}}},
        "receive": {"ingestors": [{"name": "a", "resources": {"requests": {"cpu": "4"}}}]},
    }
    got = containers(spec)
    assert got["t-query/query"] == limits  # no default requests merged in
    assert got["t-query/proxy"] == {}  # {}: explicitly none
    assert got["t-receive-ingestor-a/receive"] == {"requests": {"cpu": "4"}}
    assert got["t-compact/compact"] == DEFAULT_RESOURCES["compact"]  # the others keep theirs
    # The defaults are never shared objects that a render could mutate.
    got["t-compact/compact"]["requests"]["cpu"] = "9"
    assert DEFAULT_RESOURCES["compact"]["requests"]["cpu"] == "200m"
