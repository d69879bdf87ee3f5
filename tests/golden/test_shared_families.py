"""Golden test of families fed by several configurations (docs/metrics-configuration.md "Chosen
family names"): the worked example in the docs is exactly examples/shared-families/ (two
configurations, two kinds, one ``kube_*`` family), ``panopticon render`` prints exactly the
documented output, the store's exposition of it has one header per family and is
promtool-clean in text 0.0.4, OpenMetrics, gzip and every namespace view; interleaved events of
the configurations (hypothesis) give the bytes of a fresh render of the objects they end in;
families that disagree stay a ``check`` error naming both configurations and the difference."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.compiler import compile_documents
from exporter.exposition import Exposition
from exporter.sources import Document, load_documents
from exporter.store import DuplicateFamilyError, MetricsStore
from exporter.telemetry import Telemetry
from exporter.types import Plan
from tests.expo_checks import check_exposition
from tests.golden.worked_examples import assert_doc_shows, assert_render_prints, cli

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "metrics-configuration.md"
EXAMPLE = ROOT / "examples" / "shared-families"
FILES = ["config.yaml", "objects.yaml", "expected.prom", "expected-shop.prom"]
NAMESPACES = [None, "shop", "batch", "nowhere"]

# Per-object families shared too: kube-state-metrics' compatibility mode has no kind-named
# default label, so two kinds can agree on {customresource_kind, name, namespace}.
COMPAT = """\
apiVersion: metrics.appscode.com/v1alpha1
kind: MetricsConfiguration
metadata: {name: compat-%(lower)s}
spec:
  targetRef: {apiVersion: apps/v1, kind: %(kind)s}
  compatibility: KubeStateMetrics
  commonLabels:
  - {key: customresource_kind, value: %(kind)s}
  - {key: name, valuePath: .metadata.name}
  - {key: namespace, valuePath: .metadata.namespace}
  metrics:
  - {name: ready, fullName: kube_workload_ready_replicas, help: Ready replicas, type: gauge,
     metricValue: {valueFromPath: .status.readyReplicas}}
"""


@pytest.mark.parametrize("name", FILES)
def test_docs_show_the_example_files(name: str) -> None:
    assert_doc_shows(DOC, EXAMPLE, name)


@pytest.mark.parametrize(("extra", "expected"),
                         [([], "expected.prom"), (["-n", "shop"], "expected-shop.prom")])
def test_render_prints_the_documented_output(extra: list[str], expected: str) -> None:
    assert_render_prints(EXAMPLE, expected, *extra)


def _plans(*, compat: bool = True) -> list[Plan]:
    docs = load_documents([str(EXAMPLE / "config.yaml")])
    if compat:
        docs += [Document(source="<compat>", index=i, line=1,
                          data=yaml.safe_load(COMPAT % {"kind": kind, "lower": kind.lower()}))
                 for i, kind in enumerate(("Deployment", "StatefulSet"))]
    plans, problems = compile_documents(docs)
    assert not problems
    return plans


def _objects() -> list[dict[str, Any]]:
    return [dict(doc) for doc in yaml.safe_load_all((EXAMPLE / "objects.yaml").read_text())]


def _fresh(plans: list[Plan], by_plan: dict[str, list[dict[str, Any]]]) -> Exposition:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    for plan in plans:
        store.set_plan(plan, objects=by_plan.get(plan.name, []))
    return Exposition(store)


def _by_plan(plans: list[Plan], objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {plan.name: [obj for obj in objects if obj["kind"] == plan.target.kind] for plan in plans}


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_one_header_per_family_in_every_format(namespace: str | None) -> None:
    plans = _plans()
    exposition = _fresh(plans, _by_plan(plans, _objects()))
    text = exposition.body(fmt="text", namespace=namespace)
    checked = check_exposition(text)  # promtool + one header, contiguous samples, no duplicates
    openmetrics = exposition.body(fmt="openmetrics", namespace=namespace)
    assert check_exposition(openmetrics, openmetrics=True).families.keys() == checked.families.keys()
    assert openmetrics == text + b"# EOF\n"
    assert gzip.decompress(exposition.body(fmt="text", namespace=namespace, gzip=True)) == text
    if namespace == "nowhere":
        assert text == b""
        return
    assert text.count(b"# TYPE kube_workload_replicas gauge\n") == 1
    assert text.count(b"# TYPE kube_workload_ready_replicas gauge\n") == 1
    kinds = {labels["customresource_kind"] for labels, _ in checked.samples("kube_workload_ready_replicas")}
    assert kinds == {"Deployment", "StatefulSet"}
    only_example = _fresh(_plans(compat=False), _by_plan(plans, _objects()))
    expected = {None: "expected.prom", "shop": "expected-shop.prom"}.get(namespace)
    if expected is not None:
        assert only_example.body(fmt="text", namespace=namespace).decode() == (EXAMPLE / expected).read_text()


def test_the_compat_family_sits_where_its_first_configuration_puts_it() -> None:
    plans = _plans()
    exposition = _fresh(plans, _by_plan(plans, _objects()))
    body = exposition.body(fmt="text", namespace="batch").decode()
    assert body.startswith("# HELP kube_workload_replicas")  # "apps-deployment" sorts first
    assert body.endswith(
        "# HELP kube_workload_ready_replicas Ready replicas\n"
        "# TYPE kube_workload_ready_replicas gauge\n"
        'kube_workload_ready_replicas{customresource_kind="Deployment",name="cron-ui",namespace="batch"} 1\n'
        'kube_workload_ready_replicas{customresource_kind="StatefulSet",name="queue",namespace="batch"} 2\n')
    families = {info.header.name: info for info in exposition._store.families()}
    shared = families["kube_workload_ready_replicas"]
    assert (shared.series, shared.objects) == (5, 5)
    assert [(part.header.configuration, part.series) for part in shared.parts] == [
        ("compat-deployment", 3), ("compat-statefulset", 2)]
    assert len(families) == len(exposition._store.families())  # one entry per family name


# (configuration kind, object index, operation) with operation: upsert as is / upsert changed / delete
EVENTS = st.lists(st.tuples(st.sampled_from(["Deployment", "StatefulSet"]), st.integers(0, 4),
                            st.sampled_from(["put", "change", "delete", "move"])), max_size=40)


@settings(max_examples=60, deadline=None)
@given(events=EVENTS)
def test_interleaved_events_give_the_bytes_of_a_fresh_render(events: list[tuple[str, int, str]]) -> None:
    """Events of all four configurations in any order: every body equals a fresh store's,
    built from the objects the history ends in (in the order the store keeps them)."""
    plans = _plans()
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    for plan in plans:
        store.set_plan(plan)
    live = Exposition(store)
    base = _objects()
    for kind, index, op in events:
        obj = copy.deepcopy(base[index])
        obj["kind"] = kind
        obj["metadata"]["uid"] = f"{kind}-{index}"
        if op == "change":
            obj["spec"]["replicas"] += 10
            obj["status"]["readyReplicas"] += 1
        elif op == "move":
            obj["metadata"]["namespace"] = "batch" if obj["metadata"]["namespace"] == "shop" else "shop"
        for plan in plans:
            if plan.target.kind != kind:
                continue
            if op == "delete":
                store.delete(plan.name, obj["metadata"]["uid"])
            else:
                store.upsert(plan.name, obj)
        live.body(fmt="text")  # bodies cached in between must not go stale
    current = {plan.name: [_object_of(entry.uid, base, events) for entry in store.entries(plan.name)]
               for plan in plans}
    fresh = _fresh(plans, current)
    for namespace in NAMESPACES:
        body = live.body(fmt="text", namespace=namespace)
        assert body == fresh.body(fmt="text", namespace=namespace)
        assert live.body(fmt="openmetrics", namespace=namespace) == body + b"# EOF\n"
    check_exposition(live.body(fmt="text"))


def _object_of(uid: str, base: list[dict[str, Any]], events: list[tuple[str, int, str]]) -> dict[str, Any]:
    """The last version of ``uid`` the history upserted (replayed: the store keeps no objects)."""
    last: dict[str, Any] | None = None
    for kind, index, op in events:
        if f"{kind}-{index}" != uid:
            continue
        obj = copy.deepcopy(base[index])
        obj["kind"] = kind
        obj["metadata"]["uid"] = uid
        if op == "change":
            obj["spec"]["replicas"] += 10
            obj["status"]["readyReplicas"] += 1
        elif op == "move":
            obj["metadata"]["namespace"] = "batch" if obj["metadata"]["namespace"] == "shop" else "shop"
        last = None if op == "delete" else obj
    assert last is not None
    return last


def _write(tmp_path: Path, replace: tuple[str, str]) -> Path:
    text = (EXAMPLE / "config.yaml").read_text()
    first, second = text.split("\n---\n")
    path = tmp_path / "config.yaml"
    path.write_text(first + "\n---\n" + second.replace(*replace))
    return path


@pytest.mark.parametrize(("replace", "why"), [
    (("    help: Desired replicas per namespace and workload kind\n",
      "    help: Desired replicas\n"),
     "HELP differs: 'Desired replicas per namespace and workload kind' in 'apps-deployment', "
     "'Desired replicas' in 'apps-statefulset'"),
    (("aggregate: {op: sum, by: [namespace, workload_kind]}",
      "aggregate: {op: sum, by: [workload_kind]}"),
     "label keys differ (only in 'apps-deployment': namespace)"),
])
def test_disagreeing_families_are_a_check_error(tmp_path: Path, replace: tuple[str, str], why: str) -> None:
    path = _write(tmp_path, replace)
    result = cli("check", "-c", str(path))
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert (f"{path}:29: apps-statefulset: spec.metrics[0].name: family 'kube_workload_replicas' is also "
            "produced by configuration 'apps-deployment' (spec.metrics[0]) and cannot be shared: "
            f"{why}") in lines


def test_the_store_refuses_a_disagreeing_family() -> None:
    plans = _plans(compat=False)
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(plans[0])
    docs = load_documents([str(EXAMPLE / "config.yaml")])
    other = copy.deepcopy(dict(docs[1].data))
    other["spec"]["metrics"][0]["help"] = "Desired replicas"
    (plan,), problems = compile_documents([Document(source="x", index=0, line=1, data=other)])
    assert not problems
    with pytest.raises(DuplicateFamilyError, match=r"kube_workload_replicas \(HELP differs"):
        store.set_plan(plan)
    store.set_plan(plans[1])  # the agreeing one is taken
    assert [info.header.name for info in store.families()] == [
        "kube_workload_replicas", "apps_deployment_ready_replicas", "apps_statefulset_ready_replicas"]


def test_check_passes_and_counts_the_shared_family_once() -> None:
    result = cli("check", "-c", str(EXAMPLE / "config.yaml"), "-f", str(EXAMPLE / "objects.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 2 configuration(s), 3 metric families;")
