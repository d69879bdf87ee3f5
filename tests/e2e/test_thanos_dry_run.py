"""Every rendered object is accepted by the real kube-apiserver (`kubectl apply --dry-run=server`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from tests.e2e.cluster import KubeCluster
from tests.unit.thanos.strategies import thanos_objects
from thanos_operator.models import parse_thanos
from thanos_operator.render import render

CASES = Path(__file__).resolve().parents[1] / "golden" / "thanos" / "cases"


def as_served(cluster: KubeCluster, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """policy/v1 PodDisruptionBudgets become policy/v1beta1 where only that is served (1.20), as
    the reconciler does through discovery."""
    versions = set(cluster.kubectl("api-versions").stdout.split())
    if "policy/v1" in versions:
        return objects
    return [
        {**o, "apiVersion": "policy/v1beta1"} if o["kind"] == "PodDisruptionBudget" else o for o in objects
    ]


def dry_run(cluster: KubeCluster, objects: list[dict[str, Any]]) -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": as_served(cluster, objects)}
    result = cluster.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=panopticon-thanos",
        "-f",
        "-",
        input=json.dumps(document),
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.count("(server dry run)") == len(objects), result.stdout


@pytest.mark.parametrize(
    "case", sorted(p.name.removesuffix(".input.yaml") for p in CASES.glob("*.input.yaml"))
)
def test_golden_cases_pass_server_dry_run(kube_cluster: KubeCluster, kube_namespace: str, case: str) -> None:
    raw = yaml.safe_load((CASES / f"{case}.input.yaml").read_text())
    raw["metadata"]["namespace"] = kube_namespace
    dry_run(kube_cluster, render(parse_thanos(raw)))


def test_an_invalid_object_is_rejected(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    """The dry run really validates (guards against a vacuous check)."""
    raw = yaml.safe_load((CASES / "sample.input.yaml").read_text())
    raw["metadata"]["namespace"] = kube_namespace
    objects = render(parse_thanos(raw))
    next(o for o in reversed(objects) if o["kind"] == "Deployment")["spec"]["replicas"] = -1
    with pytest.raises(AssertionError):
        dry_run(kube_cluster, objects)


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=thanos_objects(namespace="thanos-dry-run"))
def test_every_rendered_object_passes_server_dry_run(kube_cluster: KubeCluster, raw: dict[str, Any]) -> None:
    kube_cluster.ensure_namespace("thanos-dry-run")
    objects = render(parse_thanos(raw))
    if objects:
        dry_run(kube_cluster, objects)


def without_nulls(value: Any) -> Any:
    """kubectl drops null fields (the sample's commented-out ``stores:``) before sending."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize(
    "case", sorted(p.name.removesuffix(".input.yaml") for p in CASES.glob("*.input.yaml"))
)
def test_paodin_crs_are_accepted_unchanged_by_the_generated_crd(
    kube_cluster: KubeCluster, kube_namespace: str, case: str
) -> None:
    from tests.e2e.thanos_support import install_thanos_crd

    install_thanos_crd(kube_cluster)
    raw = yaml.safe_load((CASES / f"{case}.input.yaml").read_text())
    raw["metadata"] = {"name": raw["metadata"]["name"], "namespace": kube_namespace}
    kube_cluster.apply(raw)
    stored = kube_cluster.get_json("thanos", raw["metadata"]["name"], "-n", kube_namespace)
    assert stored["spec"] == without_nulls(raw["spec"])  # nothing pruned, nothing defaulted
    deadline = time.monotonic() + 60  # the CRD's OpenAPI is published asynchronously
    while True:
        result = kube_cluster.kubectl("explain", "thanos.spec.receive.router", check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "replicationFactor" in result.stdout and "tenantHeader" in result.stdout, result.stderr
