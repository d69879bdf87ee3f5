"""PrometheusRule objects as ruler rule files: the pure rendering (files, packing, mounts, the
pod-template hash) checked with promtool, and the reconciler's reads (namespace selection)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.thanos.crs import cr
from tests.unit.thanos.fake_api import FakeApi
from thanos_operator import names
from thanos_operator.models import parse_thanos
from thanos_operator.reconciler import Reconciler, object_path, thanos_path
from thanos_operator.render import render
from thanos_operator.render.prometheus_rules import pack, rule_file, rule_file_key, rule_files

SPEC: dict[str, Any] = {"query": {}, "ruler": {"ruleSelector": {"rules": "t"}}}
ALERTS: dict[str, Any] = {
    "groups": [
        {
            "name": "node",
            "interval": "1m",
            "partial_response_strategy": "warn",
            "labels": {"added": "by prometheus 3"},  # unknown to Thanos v0.37's rule-file grammar
            "rules": [
                {
                    "alert": "NodeDown",
                    "expr": 'up{job="node"} == 0',
                    "for": "5m",
                    "labels": {"severity": "page"},
                    "annotations": {"summary": "{{ $labels.instance }} is down"},
                    "unknownField": True,
                },
                {"record": "job:up:sum", "expr": "sum by (job) (up)"},
            ],
        }
    ]
}


def objects_of(prometheus_rules: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    return render(parse_thanos(cr(SPEC)), prometheus_rules=prometheus_rules)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_rule_file_keeps_what_thanos_parses_and_promtool_accepts_it(tmp_path: Path) -> None:
    text = rule_file(ALERTS)
    parsed = yaml.safe_load(text)
    group = parsed["groups"][0]
    assert set(group) == {"name", "interval", "partial_response_strategy", "rules"}  # labels dropped
    assert group["rules"][0] == {
        k: v for k, v in ALERTS["groups"][0]["rules"][0].items() if k != "unknownField"
    }
    assert rule_file(ALERTS) == text  # deterministic
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed: install prometheus' promtool (apt-get install prometheus)"
    # promtool does not know Thanos' partial_response_strategy; Thanos strips it before parsing.
    plain = {
        "groups": [{k: v for k, v in g.items() if k != "partial_response_strategy"} for g in parsed["groups"]]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(plain))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_keys_never_collide_and_stay_within_the_key_limit() -> None:
    assert rule_file_key("a-b", "c") != rule_file_key("a", "b-c")
    assert rule_file_key("monitoring", "node.rules") == "monitoring.node.rules.yaml"
    long = rule_file_key("n" * 63, "r" * 253)
    assert len(long) <= 253 and long.endswith(".yaml")
    assert long != rule_file_key("n" * 63, "r" * 252 + "s")


def test_files_are_packed_into_configmaps_below_the_limit() -> None:
    files = {f"f{i}.yaml": "x" * 100 for i in range(10)}
    shards = pack(files, limit=350)
    assert [sorted(s) for s in shards] == [
        ["f0.yaml", "f1.yaml", "f2.yaml"],
        ["f3.yaml", "f4.yaml", "f5.yaml"],
        ["f6.yaml", "f7.yaml", "f8.yaml"],
        ["f9.yaml"],
    ]
    assert pack({"big.yaml": "x" * 1000}, limit=10) == [{"big.yaml": "x" * 1000}]
    assert pack({}) == []


def test_prometheus_rules_become_a_mounted_configmap_of_ours() -> None:
    assert not [o for o in objects_of({}) if o["kind"] == "ConfigMap"]  # none selected: nothing extra
    objects = objects_of({("ns", "node"): ALERTS, ("other", "node"): {"groups": []}})
    cm = find(objects, "ConfigMap", "t-ruler-rulefiles-0")
    assert sorted(cm["data"]) == ["ns.node.yaml", "other.node.yaml"]
    assert cm["data"] == rule_files({("ns", "node"): ALERTS, ("other", "node"): {"groups": []}})
    assert cm["metadata"]["ownerReferences"][0]["name"] == "t"
    assert cm["metadata"]["labels"][names.LABEL_PART_OF] == names.PART_OF  # a child: pruned when unwanted
    pod = find(objects, "StatefulSet", "t-ruler")["spec"]["template"]["spec"]
    assert {"name": "prometheus-rules-0", "configMap": {"name": "t-ruler-rulefiles-0"}} in pod["volumes"]
    assert {
        "name": "prometheus-rules-0",
        "mountPath": "/etc/thanos/rules/t-ruler-rulefiles-0",
        "readOnly": True,
    } in pod["containers"][0]["volumeMounts"]
    assert "--rule-file=/etc/thanos/rules/*/*" in pod["containers"][0]["args"]  # the glob reads them


def test_a_changed_rule_rolls_the_ruler() -> None:
    def config_hash(rules: dict[tuple[str, str], Any]) -> str:
        sts = find(objects_of(rules), "StatefulSet", "t-ruler")
        return str(sts["spec"]["template"]["metadata"]["annotations"][names.ANNOTATION_CONFIG_HASH])

    changed = {"groups": [{**ALERTS["groups"][0], "interval": "2m"}]}
    assert config_hash({("ns", "a"): ALERTS}) == config_hash({("ns", "a"): ALERTS})
    assert config_hash({("ns", "a"): ALERTS}) != config_hash({("ns", "a"): changed})
    assert config_hash({("ns", "a"): ALERTS}) != config_hash({})


def _rule(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": ALERTS,
    }


def _setup(ruler: dict[str, Any], *, namespaces: tuple[str, ...] = ()) -> tuple[FakeApi, Reconciler]:
    api = FakeApi()
    api.put(
        thanos_path("ns", "t"),
        {
            "apiVersion": "monitoring.paodin.io/v1alpha1",
            "kind": "Thanos",
            "metadata": {"name": "t", "namespace": "ns", "generation": 1},
            "spec": {"query": {}, "ruler": ruler},
        },
    )
    api.put(
        "/apis/monitoring.coreos.com/v1",
        {"kind": "APIResourceList", "resources": [{"name": "prometheusrules"}]},
    )
    for ns, labels in (("ns", {}), ("team-a", {"rules": "yes"}), ("team-b", {})):
        api.put(f"/api/v1/namespaces/{ns}", {"kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
        api.put(object_path("PrometheusRule", ns, "r"), _rule(ns, "r", {"rules": "t"}))
        api.put(object_path("PrometheusRule", ns, "unselected"), _rule(ns, "unselected", {"rules": "x"}))
    return api, Reconciler(api, namespaces=namespaces)


def _rule_files(api: FakeApi) -> list[str]:
    cm = api.objects.get(object_path("ConfigMap", "ns", "t-ruler-rulefiles-0"))
    return sorted(cm["data"]) if cm else []


@pytest.mark.parametrize(
    ("namespace_selector", "watched", "expected"),
    [
        (None, (), ["ns.r.yaml"]),  # as ThanosRuler: no ruleNamespaceSelector, the CR's namespace
        ({"rules": "yes"}, (), ["team-a.r.yaml"]),
        ({}, (), ["ns.r.yaml", "team-a.r.yaml", "team-b.r.yaml"]),
        ({}, ("ns", "team-b"), ["ns.r.yaml", "team-b.r.yaml"]),  # only namespaces the operator watches
    ],
)
async def test_reconciler_reads_the_selected_prometheus_rules(
    namespace_selector: dict[str, str] | None, watched: tuple[str, ...], expected: list[str]
) -> None:
    ruler: dict[str, Any] = {"ruleSelector": {"rules": "t"}}
    if namespace_selector is not None:
        ruler["ruleNamespaceSelector"] = namespace_selector
    api, reconciler = _setup(ruler, namespaces=watched)
    await reconciler.reconcile("ns", "t")
    assert _rule_files(api) == expected
    api.writes.clear()
    await reconciler.reconcile("ns", "t")
    assert api.writes == []  # steady state: no writes


async def test_prometheus_rules_are_read_only_while_their_crd_is_served() -> None:
    api, reconciler = _setup({"ruleSelector": {"rules": "t"}})
    await reconciler.reconcile("ns", "t")
    assert _rule_files(api) == ["ns.r.yaml"]
    del api.objects["/apis/monitoring.coreos.com/v1"]
    api.writes.clear()
    await reconciler.reconcile("ns", "t")
    assert object_path("ConfigMap", "ns", "t-ruler-rulefiles-0") in api.writes_of("delete")  # pruned
    assert object_path("StatefulSet", "ns", "t-ruler") in api.writes_of("apply")  # unmounted
