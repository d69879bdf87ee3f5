"""Aggregates (exporter/aggregates.py): compile-time checks of ``aggregate.by``, and the property
that the incrementally kept groups always equal a from-scratch recount of the current objects,
over random sequences of adds, updates (which move objects between groups) and deletes, for the
full view and every namespace-filtered view."""

from __future__ import annotations

import copy
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.compiler import CompileError, compile_config
from exporter.exposition import Exposition
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from exporter.values import format_value


def config(*metrics: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "agg"},
            "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}, "metrics": list(metrics), **spec}}


def metric(name: str, aggregate: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "help": name, "type": "gauge", "aggregate": aggregate, **fields}


PHASE = [{"key": "phase", "valuePath": ".status.phase"}]


def problems_of(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(CompileError) as err:
        compile_config(cfg)
    return [str(p) for p in err.value.problems]


def test_by_names_labels_the_metric_has() -> None:
    cfg = config(metric("m", {"op": "count", "by": ["phase", "nope", "phase", "bad-name"]}, labels=PHASE))
    assert problems_of(cfg) == [
        "spec.metrics[0].aggregate.by[1]: 'nope' is not a label of this metric (by takes namespace, the kind "
        "label (the object's name), commonLabels keys, the metric's labels keys, its states.labelKey, or a "
        "label_*/annotation_* name the allow-lists produce)",
        "spec.metrics[0].aggregate.by[2]: 'phase' is listed twice (also by[0])",
        "spec.metrics[0].aggregate.by[3]: 'bad-name' is not a valid Prometheus label name "
        "([a-zA-Z_][a-zA-Z0-9_]*)",
    ]


def test_op_is_count_or_sum_and_sum_needs_a_value() -> None:
    assert problems_of(config(metric("m", {"op": "avg"}, labels=PHASE))) == [
        "spec.metrics[0].aggregate.op: must be one of 'count' or 'sum' (got 'avg')"]
    assert problems_of(config(metric("m", {"op": "sum"}, labels=PHASE))) == [
        "spec.metrics[0]: a metric needs states or metricValue"]


def test_every_label_source_can_be_kept() -> None:
    plan = compile_config(config(
        metric("m", {"op": "count", "by": ["namespace", "pod", "cluster", "label_app_kubernetes_io_name",
                                           "annotation_owner", "phase", "state"]},
               labels=PHASE, states={"labelKey": "state", "values": [
                   {"labelValue": "a", "metricValue": {"value": 1}}]}),
        commonLabels=[{"key": "cluster", "value": "c1"}],
        labelsAllowlist=["app.kubernetes.io/*"], annotationsAllowlist=["owner"]))
    assert plan.families[0].aggregate
    obj = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app.kubernetes.io/name": "web"},
                        "annotations": {"owner": "me"}}, "status": {"phase": "Running"}}
    assert plan.render(obj) == (
        b'core_pod_m{namespace="ns",pod="p",cluster="c1",label_app_kubernetes_io_name="web",annotation_owner="me",'
        b'phase="Running",state="a"} 1\n',)


def test_count_without_value_counts_every_series_and_a_dropped_series_is_not_counted() -> None:
    plan = compile_config(config(
        metric("all", {"op": "count", "by": ["image"]},
               labels=[{"key": "container", "valuePath": ".spec.containers[*].name"},
                       {"key": "image", "valuePath": ".spec.containers[*].image"}]),
        metric("ready", {"op": "count"}, params=[{"key": "r", "valuePath": ".status.ready"}],
               metricValue={"valueFromExpression": "r == true ? 1"})))
    obj = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "x"}, {"name": "b", "image": "x"}, {"name": "c", "image": "y"}]},
        "status": {"ready": False}}
    assert plan.render(obj) == (b'core_pod_all{image="x"} 2\ncore_pod_all{image="y"} 1\n', b"")
    obj["status"]["ready"] = True
    assert plan.render(obj)[1] == b"core_pod_ready 1\n"


# --------------------------------------------------------------------------- the property

NAMESPACES = ["a", "b", "c"]
PHASES = ["Running", "Pending", "Failed"]
TEAMS = ["x", "y", None]
IMAGES = ["i1", "i2"]
VALUES = st.one_of(st.integers(-5, 5), st.sampled_from([0.1, 0.2, 0.25, 1.5, -0.3, 1e-9, 3.0]))

PLAN = compile_config(config(
    metric("by_ns_phase", {"op": "count", "by": ["namespace", "phase"]}, labels=PHASE),
    metric("by_phase", {"op": "count", "by": ["phase"]}, labels=PHASE),
    metric("value_by_team", {"op": "sum", "by": ["label_team"]},
           metricValue={"valueFromPath": ".spec.value"}),
    metric("containers_by_image", {"op": "count", "by": ["image"]},
           labels=[{"key": "container", "valuePath": ".spec.containers[*].name"},
                   {"key": "image", "valuePath": ".spec.containers[*].image"}]),
    metric("weight_by_image", {"op": "sum", "by": ["namespace", "image"]},
           labels=[{"key": "container", "valuePath": ".spec.containers[*].name"},
                   {"key": "image", "valuePath": ".spec.containers[*].image"}],
           metricValue={"valueFromPath": ".spec.containers[*].weight"}),
    labelsAllowlist=["team"]))


@st.composite
def pods(draw: st.DrawFn, uid: int) -> dict[str, Any]:
    namespace = NAMESPACES[uid % len(NAMESPACES)]  # namespaces never change for one uid
    team = draw(st.sampled_from(TEAMS))
    containers = [{"name": f"c{i}", "image": draw(st.sampled_from(IMAGES)), "weight": draw(VALUES)}
                  for i in range(draw(st.integers(0, 3)))]
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": f"p{uid}", "namespace": namespace, "uid": str(uid),
                                        "labels": {"team": team} if team else {}},
                           "spec": {"containers": containers}, "status": {}}
    if draw(st.booleans()):
        obj["status"]["phase"] = draw(st.sampled_from(PHASES))
    if draw(st.booleans()):
        obj["spec"]["value"] = draw(VALUES)
    return obj


@st.composite
def events(draw: st.DrawFn) -> list[tuple[str, int, dict[str, Any] | None]]:
    out: list[tuple[str, int, dict[str, Any] | None]] = []
    for _ in range(draw(st.integers(1, 40))):
        uid = draw(st.integers(0, 7))
        if draw(st.integers(0, 3)) == 0:
            out.append(("delete", uid, None))
        else:
            out.append(("upsert", uid, draw(pods(uid))))
    return out


def recount(objects: list[dict[str, Any]], namespace: str | None) -> bytes:
    """The expected exposition, counted from scratch from the objects (no exporter code)."""
    groups: dict[str, dict[str, list[Fraction | int]]] = {}

    def add(family: str, labels: list[tuple[str, str | None]], value: Fraction | int) -> None:
        inner = ",".join(f'{k}="{v}"' for k, v in labels if v is not None)
        key = f"core_pod_{family}{{{inner}}}" if inner else f"core_pod_{family}"
        groups.setdefault(family, {}).setdefault(key, []).append(value)

    for obj in objects:
        meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
        if namespace is not None and meta["namespace"] != namespace:
            continue
        phase = status.get("phase")
        add("by_ns_phase", [("namespace", meta["namespace"]), ("phase", phase)], 1)
        add("by_phase", [("phase", phase)], 1)
        if "value" in spec:
            add("value_by_team", [("label_team", meta["labels"].get("team"))], Fraction(spec["value"]))
        for container in spec["containers"]:
            add("containers_by_image", [("image", container["image"])], 1)
            add("weight_by_image", [("namespace", meta["namespace"]), ("image", container["image"])],
                Fraction(container["weight"]))
    lines: list[str] = []
    for family in ("by_ns_phase", "by_phase", "value_by_team", "containers_by_image", "weight_by_image"):
        if family not in groups:
            continue
        lines += [f"# HELP core_pod_{family} {family}", f"# TYPE core_pod_{family} gauge"]
        found = groups[family]
        lines += [f"{key} {format_value(float(sum(found[key])))}" for key in sorted(found, key=str.encode)]
    return "".join(line + "\n" for line in lines).encode()


@settings(max_examples=150, deadline=None)
@given(events())
def test_aggregates_equal_a_recount_after_any_event_sequence(sequence: list[tuple[str, int, Any]]) -> None:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(PLAN)
    exposition = Exposition(store)
    current: dict[int, dict[str, Any]] = {}
    for step, (kind, uid, obj) in enumerate(sequence):
        if kind == "delete":
            store.delete("agg", str(uid))
            current.pop(uid, None)
        else:
            assert obj is not None
            store.upsert("agg", copy.deepcopy(obj))
            current[uid] = obj
        if step % 5 == 0 or step == len(sequence) - 1:
            for namespace in (None, *NAMESPACES):
                assert exposition.body(fmt="text", namespace=namespace) == recount(list(current.values()),
                                                                                   namespace)
    # A fresh store fed only the final objects says the same (nothing depends on the history).
    fresh = MetricsStore(telemetry=Telemetry(process_metrics=False))
    fresh.set_plan(PLAN, objects=list(current.values()))
    assert Exposition(fresh).body(fmt="text") == exposition.body(fmt="text")


def test_check_reports_aggregate_problems_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""apiVersion: metrics.appscode.com/v1alpha1
kind: MetricsConfiguration
metadata:
  name: bad
spec:
  targetRef: {apiVersion: v1, kind: Pod}
  metrics:
  - name: by_phase
    help: h
    type: gauge
    labels: [{key: phase, valuePath: .status.phase}]
    aggregate:
      op: count
      by: [namespace, phaze]
  - name: total
    help: h
    type: gauge
    aggregate: {op: avg}
""")
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-m", "apiserver.cli", "check", "-c", str(path)], cwd=root,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (f"{path}:18: bad: spec.metrics[1].aggregate.op: must be one of 'count' or 'sum' "
            "(got 'avg')") in lines
    assert any(line.startswith(f"{path}:14: bad: spec.metrics[0].aggregate.by[1]: 'phaze' is not a label")
               for line in lines), lines
