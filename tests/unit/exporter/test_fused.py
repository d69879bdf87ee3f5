"""The fused render (exporter/fused.py) against the rule-walking one: same bytes, same errors.

The generated function is only correct if it is the generic renderer unrolled, so every test
here renders with both (``CompiledPlan.render`` and ``render_generic``) and compares the sample
text and the ``RenderErrors``, over the shipped and golden configurations and over a set of
configurations covering every rule kind, on objects hypothesis draws with awkward values at the
paths those configurations read.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.compiler import CompiledPlan, compile_config
from exporter.types import RenderErrors

ROOT = Path(__file__).resolve().parents[3]


def config(*metrics: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "fused"},
            "spec": {"targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
                     "metrics": list(metrics), **spec}}


def metric(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "help": "h", "type": "gauge", **fields}


STATES = {"labelKey": "phase", "values": [
    {"labelValue": p, "metricValue": {"valueFromExpression": f"int(phase == '{p}')"}}
    for p in ("Pending", "Running")]}

# every rule kind a family without fan-out has, and neighbours that are not fused
RULE_KINDS = config(
    metric("constant", metricValue={"value": 1}),
    metric("from_path", metricValue={"valueFromPath": ".spec.size"}),
    metric("date", field={"path": ".spec.when", "type": "DateTime"},
           metricValue={"valueFromPath": ".spec.when"}),
    metric("labelled", labels=[{"key": "color", "valuePath": ".spec.color"},
                               {"key": "fixed", "value": 'a"b\\c'},
                               {"key": "size", "valuePath": ".spec.size"}],
           metricValue={"value": 2.5}),
    metric("phase", params=[{"key": "phase", "valuePath": ".status.phase"}], states=STATES),
    metric("expression", params=[{"key": "size", "valuePath": ".spec.size"},
                                 {"key": "ratio", "valuePath": ".spec.ratio"}],
           metricValue={"valueFromExpression": "size * 2 + ratio"}),
    metric("optional", params=[{"key": "flag", "valuePath": ".spec.flag"}],
           metricValue={"valueFromExpression": "flag ? 1"}),
    metric("no_params", metricValue={"valueFromExpression": "1 + 2"}),  # an empty env
    metric("fan_out", labels=[{"key": "type", "valuePath": ".status.conditions[*].type"}],
           metricValue={"valueFromPath": ".status.conditions[*].status"}),
)
TEAM = [{"key": "team", "valuePath": ".metadata.labels.team"}]
WITH_COMMON = {**RULE_KINDS, "spec": {**RULE_KINDS["spec"], "commonLabels": TEAM}}
WITH_ALLOWLIST = {**RULE_KINDS, "spec": {**RULE_KINDS["spec"], "labelsAllowlist": ["team"]}}
ONLY_CONSTANT_EXPRESSION = config(metric("sum", metricValue={"valueFromExpression": "1 + 2"}))
AGGREGATE = config(metric("count", aggregate={"op": "count", "by": ["namespace"]}),
                   metric("size", metricValue={"valueFromPath": ".spec.size"}))


def shipped() -> list[dict[str, Any]]:
    files = sorted((ROOT / "examples" / "configs").glob("*.yaml"))
    files += sorted((ROOT / "tests" / "golden").glob("*/config.yaml"))
    assert len(files) >= 6, files
    return [doc for file in files for doc in yaml.safe_load_all(file.read_text())
            if isinstance(doc, dict) and doc.get("kind") == "MetricsConfiguration"]


def golden_objects() -> list[Any]:
    objects: list[Any] = []
    for file in sorted((ROOT / "tests" / "golden").glob("*/objects.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if isinstance(doc, dict):
                objects.extend(doc["items"] if doc.get("kind", "").endswith("List") else [doc])
    assert objects
    return objects


def both(plan: CompiledPlan, obj: Any) -> tuple[tuple[bytes, ...], list[tuple[str, str, str]]]:
    fused_errors, generic_errors = RenderErrors(), RenderErrors()
    fused = plan.render(obj, fused_errors)
    generic = plan.render_generic(copy.deepcopy(obj), generic_errors)
    assert fused == generic
    assert fused_errors.items == generic_errors.items
    assert plan.render(obj) == fused  # errors=None takes the same path
    return fused, fused_errors.items


def test_plain_plans_are_fused_and_ksm_plans_are_not() -> None:
    plan = compile_config(RULE_KINDS)
    assert plan._fused is not None
    source = plan._fused.__source__  # type: ignore[attr-defined]
    assert source.startswith("def render(obj, errors):")
    assert "fan_out" not in source  # the fan-out family is called through its own render
    ksm = compile_config(config(metric("m", metricValue={"value": 1}), compatibility="KubeStateMetrics"))
    assert ksm._fused is None


@pytest.mark.parametrize(("cfg", "lines"), [(RULE_KINDS, 10), (WITH_COMMON, 10), (WITH_ALLOWLIST, 10),
                                             (AGGREGATE, 2), (ONLY_CONSTANT_EXPRESSION, 1)],
                         ids=["rule-kinds", "common-labels", "allowlist", "aggregate",
                              "expression-without-params"])
def test_every_rule_kind_renders_the_same_on_a_plain_object(cfg: dict[str, Any], lines: int) -> None:
    obj = {"metadata": {"name": "w1", "namespace": "ns1", "labels": {"team": "a"}},
           "spec": {"size": 3, "color": "red", "when": "2024-03-01T10:20:30Z", "ratio": 0.5, "flag": True},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    text, errors = both(compile_config(cfg), obj)
    assert b"".join(text).count(b"\n") == lines
    assert errors == []


def test_a_failing_series_is_dropped_and_reported_alike() -> None:
    obj = {"metadata": {"name": "w1"}, "spec": {"size": "many", "when": "yesterday"}}
    text, errors = both(compile_config(RULE_KINDS), obj)
    assert {metric for metric, _, _ in errors} >= {"from_path", "date", "expression"}
    assert b"example_com_widget_from_path" not in b"".join(text)


def test_object_without_metadata_renders_bare_lines_alike() -> None:
    text, _ = both(compile_config(RULE_KINDS), {"spec": {"size": 1}})
    assert b"example_com_widget_constant 1\n" in text
    assert b'example_com_widget_phase{phase="Pending"}' in b"".join(text)


def test_configuration_text_is_never_code() -> None:
    """Label values and keys with quotes, backslashes and newlines reach the source as repr'd
    literals only: the render is still the generic one's."""
    cfg = config(metric("tricky", labels=[{"key": "k", "value": "'\"); import os; (\"\n\\"}],
                        metricValue={"value": 1}))
    text, _ = both(compile_config(cfg), {"metadata": {"name": "x'\"\\\n"}})
    assert b"import os" in text[0]


def test_shipped_and_golden_configurations_render_the_golden_objects_alike() -> None:
    configs = shipped()
    objects = golden_objects()
    rendered = 0
    for cfg in configs:
        plan = compile_config(cfg)
        for obj in objects:
            text, _ = both(plan, obj)
            rendered += bool(b"".join(text))
    assert rendered >= len(configs)  # every configuration produced text for some object


SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["Running", "Pending", "2024-03-01T10:20:30Z", "250m",
                                                      "1Gi", "true", "", "a\"b\\c\nd"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["type", "status", "team", "x"]), inner, max_size=3),
                      max_leaves=6)
MISSING = object()


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(MISSING) | value


@st.composite
def objects(draw: st.DrawFn) -> Any:
    def put(target: dict[str, Any], key: str, value: Any) -> None:
        if value is not MISSING:
            target[key] = value

    meta: dict[str, Any] = {}
    put(meta, "name", draw(maybe(st.text(max_size=8) | VALUES)))
    put(meta, "namespace", draw(maybe(st.text(max_size=8) | VALUES)))
    put(meta, "labels", draw(maybe(VALUES)))
    spec: dict[str, Any] = {}
    for key in ("size", "color", "when", "ratio", "flag", "replicas"):
        put(spec, key, draw(maybe(VALUES)))
    status: dict[str, Any] = {}
    put(status, "phase", draw(maybe(VALUES)))
    put(status, "conditions", draw(maybe(VALUES)))
    obj: dict[str, Any] = {}
    put(obj, "metadata", draw(st.just(meta) | VALUES))
    put(obj, "spec", draw(st.just(spec) | VALUES))
    put(obj, "status", draw(st.just(status) | VALUES))
    return obj


PLANS = [compile_config(cfg) for cfg in (RULE_KINDS, WITH_COMMON, WITH_ALLOWLIST, AGGREGATE)]


@settings(max_examples=300, deadline=None)
@given(obj=objects())
def test_any_object_renders_the_same_fused_and_generic(obj: Any) -> None:
    for plan in PLANS:
        both(plan, obj)
