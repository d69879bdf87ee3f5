"""Configuration-language extensions: quiet ternaries, string helpers, object labels and
annotations (allow-lists with globs), map keys as labels; every problem with its field path."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.compiler import CompiledPlan, CompileError, compile_config
from exporter.expressions import EvaluationError, compile_expression
from exporter.functions import FUNCTIONS
from exporter.objectlabels import sanitize
from exporter.paths import MISSING
from exporter.types import RenderErrors


def config(*metrics: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "cfg"},
            "spec": {"targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
                     "metrics": list(metrics), **spec}}


def metric(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "help": "help", "type": "gauge", **fields}


ONE: dict[str, Any] = {"metricValue": {"value": 1}}

WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1", "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "ns1",
                 "labels": {"team": "a", "app.kubernetes.io/name": "shop", "app.kubernetes.io/part-of": "x",
                            "tier": "t", "a.b": "dot", "a_b": "underscore"},
                 "annotations": {"owner": "o\"q"}},
    "spec": {"capacity": {"cpu": "4", "memory": "1Ki"}, "items": [{"n": "i1", "m": {"k1": 1, "k2": 2}}],
             "tags": ["x", "y"], "name": "Web-Front"},
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}


def lines(plan: CompiledPlan, errors: RenderErrors | None = None) -> list[str]:
    return b"".join(plan.render(WIDGET, errors)).decode().splitlines()


def problems(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(CompileError) as info:
        compile_config(cfg)
    return [str(p) for p in info.value.problems]


# --- ternary without else --------------------------------------------------------------------

def test_a_ternary_without_else_drops_the_series_quietly() -> None:
    plan = compile_config(config(metric(
        params=[{"key": "s", "valuePath": ".status.conditions[?(@.type=='Ready')].status"}],
        metricValue={"valueFromExpression": "s == 'True' ? 1"})))
    errors = RenderErrors()
    assert lines(plan, errors) == []
    assert errors.items == []


def test_other_nil_results_are_still_errors() -> None:
    plan = compile_config(config(metric(
        params=[{"key": "s", "valuePath": ".status.phase"}],
        metricValue={"valueFromExpression": "s ?? s"})))
    errors = RenderErrors()
    assert lines(plan, errors) == []
    assert [reason for _, reason, _ in errors.items] == ["expression"]


# --- functions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "env", "expected"), [
    ("len(x)", {"x": [1, 2, 3]}, 3.0),
    ("len(x)", {"x": {"a": 1}}, 1.0),
    ("len(x)", {"x": "abcd"}, 4.0),
    ("lower(x) == 'web'", {"x": "WeB"}, True),
    ("upper(x)", {"x": "web"}, "WEB"),
    ("contains(x, 'eb')", {"x": "web"}, True),
    ("contains(x, 'z')", {"x": ["x", "y"]}, False),
    ("contains(x, 'y')", {"x": ["x", "y"]}, True),
    ("startsWith(x, 'we')", {"x": "web"}, True),
    ("endsWith(x, 'we')", {"x": "web"}, False),
    ("matches(x, '^w.b$')", {"x": "web"}, True),
    ("matches(x, 'z')", {"x": "web"}, False),
    ("default(x, 5)", {"x": MISSING}, 5.0),
    ("default(x, 5)", {"x": 2}, 2.0),
])
def test_helpers(text: str, env: dict[str, Any], expected: Any) -> None:
    expression = compile_expression(text, params=env.keys(), functions=FUNCTIONS)
    assert expression.evaluate(env) == expected


@pytest.mark.parametrize(("text", "env", "reason"), [
    ("len(x)", {"x": 3}, "expression"),
    ("len(x)", {"x": MISSING}, "missing"),
    ("lower(x)", {"x": 3}, "expression"),
    ("matches(x, '(')", {"x": "a"}, "expression"),
])
def test_helper_errors(text: str, env: dict[str, Any], reason: str) -> None:
    expression = compile_expression(text, params=env.keys(), functions=FUNCTIONS)
    with pytest.raises(EvaluationError) as info:
        expression.evaluate(env)
    assert info.value.reason == reason


def test_helpers_render_through_a_plan() -> None:
    plan = compile_config(config(metric(params=[{"key": "tags", "valuePath": ".spec.tags"}],
                                        metricValue={"valueFromExpression": "len(tags)"})))
    assert lines(plan) == ['example_com_widget_m{namespace="ns1",widget="w1"} 2']


# --- labels and annotations ----------------------------------------------------------------------

def test_sanitize_as_kube_state_metrics() -> None:
    assert sanitize("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert sanitize("a-b c") == "a_b_c"


def test_allowlists_copy_keys_and_globs_sorted_after_common_labels() -> None:
    plan = compile_config(config(metric(**ONE), commonLabels=[{"key": "c", "value": "v"}],
                                 labelsAllowlist=["team", "app.kubernetes.io/*", "missing"],
                                 annotationsAllowlist=["owner"]))
    assert lines(plan) == [
        'example_com_widget_m{namespace="ns1",widget="w1",c="v",label_app_kubernetes_io_name="shop",'
        'label_app_kubernetes_io_part_of="x",label_team="a",annotation_owner="o\\"q"} 1']


def test_exact_keys_only() -> None:
    plan = compile_config(config(metric(**ONE), labelsAllowlist=["tier", "team"]))
    assert lines(plan) == [
        'example_com_widget_m{namespace="ns1",widget="w1",label_team="a",label_tier="t"} 1']


def test_a_star_copies_every_label_and_alike_keys_keep_the_first() -> None:
    plan = compile_config(config(metric(**ONE), labelsAllowlist=["a*"]))
    assert lines(plan) == [
        'example_com_widget_m{namespace="ns1",widget="w1",label_a_b="dot",'
        'label_app_kubernetes_io_name="shop",label_app_kubernetes_io_part_of="x"} 1']


def test_allowlist_problems_have_field_paths() -> None:
    assert problems(config(metric(**ONE), labelsAllowlist=["a.b", "a_b", ""])) == [
        "spec.labelsAllowlist[1]: 'a_b' and 'a.b' (spec.labelsAllowlist[0]) both become label 'label_a_b'",
        "spec.labelsAllowlist[2]: an empty key matches nothing",
    ]
    found = problems(config(metric(labels=[{"key": "label_app_kubernetes_io_x", "value": "1"}], **ONE),
                            commonLabels=[{"key": "label_team", "value": "v"}],
                            labelsAllowlist=["team", "app.kubernetes.io/*"]))
    assert [p.split(":")[0] for p in found] == ["spec.commonLabels[0].key", "spec.metrics[0].labels[0].key"]
    assert "collides with the labels 'label_team'" in found[0]


def test_the_schema_rejects_wrong_types() -> None:
    assert problems(config(metric(**ONE), labelsAllowlist="team"))[0].startswith("spec.labelsAllowlist:")


# --- map keys as labels ----------------------------------------------------------------------------

def test_map_fan_out_with_keys_as_labels() -> None:
    plan = compile_config(config(metric(labels=[{"key": "resource", "keyFromPath": ".spec.capacity[*]"}],
                                        metricValue={"valueFromPath": ".spec.capacity[*]"})))
    assert lines(plan) == ['example_com_widget_m{namespace="ns1",widget="w1",resource="cpu"} 4',
                           'example_com_widget_m{namespace="ns1",widget="w1",resource="memory"} 1024']


def test_map_inside_an_array() -> None:
    plan = compile_config(config(metric(labels=[{"key": "item", "valuePath": ".spec.items[*].n"},
                                                {"key": "index", "keyFromPath": ".spec.items[*]"},
                                                {"key": "k", "keyFromPath": ".spec.items[*].m.*"}],
                                        metricValue={"valueFromPath": ".spec.items[*].m.*"})))
    assert lines(plan) == ['example_com_widget_m{namespace="ns1",widget="w1",item="i1",index="0",k="k1"} 1',
                           'example_com_widget_m{namespace="ns1",widget="w1",item="i1",index="0",k="k2"} 2']


def test_key_label_problems() -> None:
    found = problems(config(
        metric("a", labels=[{"key": "k", "keyFromPath": ".spec.capacity"}], **ONE),
        metric("b", labels=[{"key": "k", "keyFromPath": ".spec.capacity[*]", "valuePath": ".x"}], **ONE),
        metric("c", labels=[{"key": "k", "keyFromPath": ".spec.capacity[*]"}],
               metricValue={"valueFromPath": ".spec.items[*].n"}),
        commonLabels=[{"key": "z", "keyFromPath": ".spec.capacity[*]"}]))
    assert [p.split(":")[0] for p in found] == [
        "spec.commonLabels[0].keyFromPath", "spec.metrics[0].labels[0].keyFromPath",
        "spec.metrics[1].labels[0]", "spec.metrics[1]", "spec.metrics[2].metricValue.valueFromPath"]


# --- chosen family names -------------------------------------------------------------------------

def test_default_names_are_panopticons() -> None:
    plan = compile_config(config(metric("replicas", **ONE)))
    assert [f.name for f in plan.families] == ["example_com_widget_replicas"]


def test_prefix_override_and_full_names() -> None:
    plan = compile_config(config(metric("replicas", **ONE),
                                 metric("info", fullName="kube_widget_info", **ONE),
                                 metricNamePrefix="kube_widget"))
    assert [f.name for f in plan.families] == ["kube_widget_replicas", "kube_widget_info"]
    assert lines(plan)[0] == 'kube_widget_replicas{namespace="ns1",widget="w1"} 1'
    bare = compile_config(config(metric("widget_up", **ONE), metricNamePrefix=""))
    assert [f.name for f in bare.families] == ["widget_up"]


def test_name_problems() -> None:
    found = problems(config(metric("a", fullName="x", **ONE), metric("b", fullName="x", **ONE),
                            metric("c", fullName="bad-name", **ONE)))
    assert [p.split(":")[0] for p in found] == ["spec.metrics[1].fullName", "spec.metrics[2].fullName"]
    assert "also the name of spec.metrics[0]" in found[0]
    assert problems(config(metric("a", **ONE), metricNamePrefix="bad-prefix"))[0].startswith(
        "spec.metrics[0].name: family name")
