"""The compiler: precedence rules, default labels, fan-out, naming, problems, conflicts."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.compiler import CompiledPlan, CompileError, compile_config, find_conflicts
from exporter.naming import escape_label_value, family_name
from exporter.types import Plan, Problem, RenderErrors, TargetRef


def config(*metrics: dict[str, Any], common: list[dict[str, Any]] | None = None, name: str = "cfg",
           api_version: str = "example.com/v1", kind: str = "Widget") -> dict[str, Any]:
    spec: dict[str, Any] = {"targetRef": {"apiVersion": api_version, "kind": kind}, "metrics": list(metrics)}
    if common is not None:
        spec["commonLabels"] = common
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name}, "spec": spec}


def metric(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "help": "help", "type": "gauge", **fields}


WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "ns1", "labels": {"team": "a"}},
    "spec": {"size": 3, "flag": True, "ratio": "250m", "when": "2024-03-01T10:20:30Z",
             "groups": [{"name": "g1", "items": [{"id": "i1", "v": 1}, {"id": "i2", "v": 2}]},
                        {"name": "g2", "items": [{"id": "i3", "v": 3}]},
                        {"name": "g3"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                                  {"type": "Synced", "status": "False"}]},
}


def lines(plan: CompiledPlan, obj: dict[str, Any] = WIDGET, errors: RenderErrors | None = None) -> list[str]:
    return b"".join(plan.render(obj, errors)).decode().splitlines()


def problems(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(CompileError) as info:
        compile_config(cfg)
    return [str(p) for p in info.value.problems]


def test_plan_satisfies_the_protocol_and_names_families() -> None:
    plan: Plan = compile_config(config(metric("size", metricValue={"valueFromPath": ".spec.size"})))
    assert plan.name == "cfg"
    assert plan.target == TargetRef("example.com/v1", "Widget")
    (family,) = plan.families
    assert (family.name, family.help, family.type, family.configuration) == (
        "example_com_widget_size", "help", "gauge", "cfg")


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [("v1", "Pod", "core_pod_x"), ("apps/v1", "Deployment", "apps_deployment_x"),
     ("kubedb.com/v1", "MongoDB", "kubedb_com_mongodb_x"),
     ("cert-manager.io/v1", "Certificate", "cert_manager_io_certificate_x")],
)
def test_family_names(api_version: str, kind: str, expected: str) -> None:
    assert family_name(TargetRef(api_version, kind), "x") == expected


def test_default_labels_then_common_then_metric_labels() -> None:
    plan = compile_config(config(
        metric("info",
               labels=[{"key": "phase", "valuePath": ".status.phase"}, {"key": "fixed", "value": "v"}],
               metricValue={"value": 1}),
        common=[{"key": "team", "valuePath": ".metadata.labels.team"}, {"key": "env", "value": "prod"}],
    ))
    assert lines(plan) == ['example_com_widget_info{namespace="ns1",widget="w1",team="a",env="prod",'
                           'phase="Running",fixed="v"} 1']


def test_cluster_scoped_objects_get_no_namespace_label() -> None:
    plan = compile_config(config(metric("size", metricValue={"valueFromPath": ".spec.size"})))
    obj = copy.deepcopy(WIDGET)
    del obj["metadata"]["namespace"]
    assert lines(plan, obj) == ['example_com_widget_size{widget="w1"} 3']


def test_label_value_wins_over_value_path_and_unresolved_paths_are_omitted() -> None:
    plan = compile_config(config(metric("info", labels=[
        {"key": "a", "value": "literal", "valuePath": ".status.phase"},
        {"key": "b", "valuePath": ".spec.nothing"},
        {"key": "c", "valuePath": ".spec.flag"},
        {"key": "d", "valuePath": ".spec.size"},
    ], metricValue={"value": 1})))
    assert lines(plan) == [
        'example_com_widget_info{namespace="ns1",widget="w1",a="literal",c="true",d="3"} 1']


def test_metric_value_precedence_value_then_path_then_expression() -> None:
    plan = compile_config(config(
        metric("a", params=[{"key": "s", "valuePath": ".spec.size"}],
               metricValue={"value": 7, "valueFromPath": ".spec.size", "valueFromExpression": "s * 100"}),
        metric("b", params=[{"key": "s", "valuePath": ".spec.size"}],
               metricValue={"valueFromPath": ".spec.size", "valueFromExpression": "s * 100"}),
        metric("c", params=[{"key": "s", "valuePath": ".spec.size"}],
               metricValue={"valueFromExpression": "s * 100"}),
    ))
    assert [line.rsplit(" ", 1)[1] for line in lines(plan)] == ["7", "3", "300"]


def test_states_win_over_metric_value() -> None:
    plan = compile_config(config(metric(
        "phase",
        params=[{"key": "phase", "valuePath": ".status.phase"}],
        states={"labelKey": "phase", "values": [
            {"labelValue": "Running", "metricValue": {"valueFromExpression": "int(phase == 'Running')"}},
            {"labelValue": "Failed", "metricValue": {"valueFromExpression": "int(phase == 'Failed')"}},
        ]},
        metricValue={"value": 42},
    )))
    assert lines(plan) == [
        'example_com_widget_phase{namespace="ns1",widget="w1",phase="Running"} 1',
        'example_com_widget_phase{namespace="ns1",widget="w1",phase="Failed"} 0',
    ]


def test_param_value_wins_over_value_path_and_dot_is_the_whole_object() -> None:
    plan = compile_config(config(
        metric("a", params=[{"key": "p", "value": "fixed", "valuePath": ".status.phase"}],
               metricValue={"valueFromExpression": "int(p == 'fixed')"}),
        metric("b", params=[{"key": "o", "valuePath": "."}],
               metricValue={"valueFromExpression": "int(o != 'nil')"}),
    ))
    assert [line.rsplit(" ", 1)[1] for line in lines(plan)] == ["1", "1"]


def test_value_conversions_from_paths() -> None:
    plan = compile_config(config(
        metric("when", field={"path": ".spec.when", "type": "DateTime"},
               metricValue={"valueFromPath": ".spec.when"}),
        metric("ratio", metricValue={"valueFromPath": ".spec.ratio"}),
        metric("flag", metricValue={"valueFromPath": ".spec.flag"}),
    ))
    assert [line.rsplit(" ", 1)[1] for line in lines(plan)] == ["1709288430", "0.25", "1"]


def test_array_fan_out_zips_labels_and_values_by_element() -> None:
    plan = compile_config(config(metric(
        "cond", field={"path": ".status.conditions", "type": "Array"},
        labels=[{"key": "type", "valuePath": ".status.conditions[*].type"},
                {"key": "status", "valuePath": ".status.conditions[*].status"}],
        params=[{"key": "s", "valuePath": ".status.conditions[*].status"}],
        metricValue={"valueFromExpression": "int(s == 'True')"},
    )))
    assert lines(plan) == [
        'example_com_widget_cond{namespace="ns1",widget="w1",type="Ready",status="True"} 1',
        'example_com_widget_cond{namespace="ns1",widget="w1",type="Synced",status="False"} 0',
    ]


def test_nested_fan_out_walks_the_product_in_document_order() -> None:
    plan = compile_config(config(metric(
        "item",
        labels=[{"key": "group", "valuePath": ".spec.groups[*].name"},
                {"key": "item", "valuePath": ".spec.groups[*].items[*].id"}],
        metricValue={"valueFromPath": ".spec.groups[*].items[*].v"},
    )))
    assert lines(plan) == [
        'example_com_widget_item{namespace="ns1",widget="w1",group="g1",item="i1"} 1',
        'example_com_widget_item{namespace="ns1",widget="w1",group="g1",item="i2"} 2',
        'example_com_widget_item{namespace="ns1",widget="w1",group="g2",item="i3"} 3',
    ]


def test_fan_out_over_a_missing_array_emits_nothing() -> None:
    plan = compile_config(config(metric(
        "cond", field={"path": ".status.nothing", "type": "Array"},
        labels=[{"key": "type", "valuePath": ".status.nothing[*].type"}], metricValue={"value": 1})))
    assert lines(plan) == []


def test_runtime_duplicate_label_sets_are_dropped_and_recorded() -> None:
    plan = compile_config(config(metric(
        "cond", field={"path": ".status.conditions", "type": "Array"},
        labels=[{"key": "type", "valuePath": ".status.conditions[*].kind"}],  # resolves for no element
        metricValue={"value": 1})))
    errors = RenderErrors()
    assert lines(plan, errors=errors) == ['example_com_widget_cond{namespace="ns1",widget="w1"} 1']
    assert [(m, r) for m, r, _ in errors.items] == [("cond", "duplicate")]


def test_conversion_errors_drop_only_that_series_and_are_recorded() -> None:
    plan = compile_config(config(
        metric("bad", metricValue={"valueFromPath": ".status.phase"}),
        metric("gone", metricValue={"valueFromPath": ".spec.nothing"}),
        metric("good", metricValue={"valueFromPath": ".spec.size"}),
    ))
    errors = RenderErrors()
    chunks = plan.render(WIDGET, errors)
    assert chunks[:2] == (b"", b"")
    assert chunks[2] == b'example_com_widget_good{namespace="ns1",widget="w1"} 3\n'
    assert [(m, r) for m, r, _ in errors.items] == [("bad", "conversion"), ("gone", "missing")]
    assert plan.render(WIDGET) == chunks  # errors=None is fine too


def test_render_never_raises_on_hostile_objects() -> None:
    plan = compile_config(config(
        metric("a", params=[{"key": "o", "valuePath": "."}],
               metricValue={"valueFromExpression": "total_resource_requests(o, 'cpu')"}),
        metric("b", labels=[{"key": "t", "valuePath": ".status.conditions[*].type"}],
               metricValue={"value": 1}),
        metric("c", field={"path": ".x", "type": "DateTime"}, metricValue={"valueFromPath": ".x"}),
        common=[{"key": "c", "valuePath": ".metadata.labels"}],
    ))
    for obj in ({}, {"metadata": None}, {"metadata": {"name": 5}}, {"status": {"conditions": "no"}},
                {"x": [1]}, {"x": {"y": 1}}, {"spec": []}):
        plan.render(obj, RenderErrors())


def test_label_values_are_escaped() -> None:
    plan = compile_config(config(metric("info", labels=[{"key": "v", "valuePath": ".spec.text"}],
                                        metricValue={"value": 1})))
    obj = {"metadata": {"name": 'a"b', "namespace": "n"}, "spec": {"text": 'q"\\\nz'}}
    assert lines(plan, obj) == ['example_com_widget_info{namespace="n",widget="a\\"b",v="q\\"\\\\\\nz"} 1']
    assert escape_label_value("plain") == "plain"


def test_every_problem_is_reported_with_its_field_path() -> None:
    found = problems(config(
        metric("ok", labels=[{"key": "namespace", "value": "x"}], metricValue={"value": 1}),
        metric("bad-name", metricValue={"value": 1}),
        metric("m2", labels=[{"key": "9x", "value": "a"}, {"key": "widget", "valuePath": ".a"}],
               metricValue={"valueFromExpression": "1 +"}),
        metric("m3", labels=[{"key": "a", "value": "1"}, {"key": "a", "valuePath": ".b"}],
               params=[{"key": "p"}], metricValue={}),
        metric("m4"),
        metric("m5", states={"labelKey": "env", "values": [
            {"labelValue": "x", "metricValue": {"value": 1}},
            {"labelValue": "x", "metricValue": {"value": 0}}]}),
        metric("m6", labels=[{"key": "t", "valuePath": ".a[*].b"}, {"key": "u", "valuePath": ".c[*].d"}],
               metricValue={"value": 1}),
        metric("ok", metricValue={"value": 1}),
        metric("m7", labels=[{"key": "t", "valuePath": ".spec.["}], metricValue={"valueFromPath": ".x..y["}),
        common=[{"key": "env", "valuePath": ".metadata.labels.env"}, {"key": "bad", "valuePath": ".a[*]"}],
    ))
    expected_paths = [
        "spec.commonLabels[1].valuePath",
        "spec.metrics[0].labels[0].key",
        "spec.metrics[1].name",
        "spec.metrics[2].labels[0].key",
        "spec.metrics[2].labels[1].key",
        "spec.metrics[2].metricValue.valueFromExpression",
        "spec.metrics[3].labels[1].key",
        "spec.metrics[3].params[0]",
        "spec.metrics[3].metricValue",
        "spec.metrics[4]",
        "spec.metrics[5].states.labelKey",
        "spec.metrics[5].states.values[1].labelValue",
        "spec.metrics[6].labels[1].valuePath",
        "spec.metrics[7].name",
        "spec.metrics[8].labels[0].valuePath",
        "spec.metrics[8].metricValue.valueFromPath",
    ]
    assert [p.split(": ", 1)[0] for p in found] == expected_paths
    assert "collides with a default label" in found[1]
    assert "column 4" in found[5]
    assert "duplicate state 'x'" in found[11]
    assert "same array" in found[12]
    assert "emitted twice" in found[13]


def test_fan_out_without_a_per_element_label_is_a_problem() -> None:
    found = problems(config(metric("m", field={"path": ".status.conditions", "type": "Array"},
                                   labels=[{"key": "x", "value": "1"}], metricValue={"value": 1})))
    assert found == ["spec.metrics[0]: fan-out over '.status.conditions' has no label taken from its "
                     "elements (a labels[].valuePath with 1 [*]): every element would emit the same "
                     "label set"]
    nested = problems(config(metric("m", labels=[{"key": "g", "valuePath": ".spec.groups[*].name"}],
                                    metricValue={"valueFromPath": ".spec.groups[*].items[*].v"})))
    assert "2 [*]" in nested[0]


def test_schema_problems_come_back_as_compile_errors() -> None:
    cfg = config(metric("m", metricValue={"value": "1"}, bogus=1))
    cfg["spec"]["targetRef"]["kind"] = 5
    found = problems(cfg)
    assert found == [
        "spec.targetRef.kind: Input should be a valid string (got 5)",
        "spec.metrics[0].metricValue.value: Input should be a valid number (got '1')",
        "spec.metrics[0].bogus: unknown field",
    ]


def check_conflicts(plans: list[CompiledPlan]) -> list[Problem]:
    """Only the problems of ``find_conflicts`` (which also names the configuration)."""
    return [problem for _, problem in find_conflicts(plans)]


def test_conflicts_between_configurations() -> None:
    first = compile_config(config(metric("a", metricValue={"value": 1}),
                                  metric("b", metricValue={"value": 1}), name="first"))
    second = compile_config(config({**metric("b", metricValue={"value": 1}), "help": "other"}, name="second"))
    other_kind = compile_config(config(metric("b", metricValue={"value": 1}), name="third", kind="Gadget"))
    assert check_conflicts([first, other_kind]) == []
    found = find_conflicts([first, second, other_kind])
    assert [(name, str(problem)) for name, problem in found] == [
        ("second", "spec.metrics[0].name: family 'example_com_widget_b' is also produced by configuration "
                   "'first' (spec.metrics[1]) and cannot be shared: HELP differs: 'help' in 'first', "
                   "'other' in 'second'"),
    ]


def test_agreeing_families_of_two_configurations_are_shared() -> None:
    """Same name, TYPE, HELP and label keys: one family fed by both, no conflict."""
    first = compile_config(config(metric("b", metricValue={"value": 1}), name="first"))
    second = compile_config(config(metric("b", metricValue={"value": 1}), name="second"))
    assert check_conflicts([first, second]) == []
    assert first.families[0].label_keys == second.families[0].label_keys == frozenset({"namespace", "widget"})


def test_label_keys_of_a_family() -> None:
    """Default labels, commonLabels, the metric's labels, its states label, the allow-list's
    names and patterns; an aggregate's are its ``by``; compatibility ``<prefix>*`` a pattern."""
    tier = [{"key": "tier", "value": "gold"}]
    plan = compile_config(config(
        metric("s", labels=tier,
               states={"labelKey": "phase", "values": [{"labelValue": "Up", "metricValue": {"value": 1}}]}),
        metric("n", labels=tier, metricValue={"value": 1},
               aggregate={"op": "count", "by": ["namespace", "tier"]}),
        common=[{"key": "app", "value": "a"}]))
    assert [h.label_keys for h in plan.families] == [
        frozenset({"namespace", "widget", "app", "tier", "phase"}), frozenset({"namespace", "tier"})]
    allowed = config(metric("x", metricValue={"value": 1}))
    allowed["spec"]["labelsAllowlist"] = ["team", "app.kubernetes.io/*"]
    assert compile_config(allowed).families[0].label_keys == frozenset(
        {"namespace", "widget", "label_team", "label_app_kubernetes_io_*"})
    compat = config(metric("x", labels=tier, metricValue={"value": 1}),
                    common=[{"key": "customresource_kind", "value": "Widget"},
                            {"key": "label_*", "valuePath": ".metadata.labels"}])
    compat["spec"]["compatibility"] = "KubeStateMetrics"
    keys = compile_config(compat).families[0].label_keys
    assert keys == frozenset({"customresource_kind", "label_*", "tier"})


def test_disagreeing_label_keys_name_both_configurations() -> None:
    first = compile_config(config(metric("b", fullName="kube_b", metricValue={"value": 1}), name="first"))
    second = compile_config(config(metric("b", fullName="kube_b", metricValue={"value": 1}), name="second",
                                   kind="Gadget"))
    (problem,) = check_conflicts([first, second])
    assert str(problem) == (
        "spec.metrics[0].name: family 'kube_b' is also produced by configuration 'first' (spec.metrics[0]) "
        "and cannot be shared: label keys differ (only in 'first': widget; only in 'second': gadget)")


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=20), text=st.text(max_size=30),
       number=st.one_of(st.integers(-(2**60), 2**60), st.floats(allow_nan=True, allow_infinity=True)))
def test_rendered_lines_parse_back_exactly(name: str, text: str, number: float) -> None:
    plan = compile_config(config(
        metric("info", labels=[{"key": "v", "valuePath": ".spec.text"}], metricValue={"value": 1}),
        metric("n", metricValue={"valueFromPath": ".spec.n"}),
    ))
    obj = {"metadata": {"name": name, "namespace": "ns"}, "spec": {"text": text, "n": number}}
    body = b"".join(plan.render(obj)).decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    (info,) = families["example_com_widget_info"].samples
    assert info.labels == {"namespace": "ns", "widget": name, "v": text}
    (sample,) = families["example_com_widget_n"].samples
    expected = float(number)
    assert (math.isnan(sample.value) and math.isnan(expected)) or sample.value == expected


PATHISH = st.text(alphabet=".[]*'\"$@ab0-:?()=,{}", max_size=14)
EXPRISH = st.text(alphabet="ab()+-*/%!=<>&|?:,'\"[] 01.", max_size=20)
ANY_JSON = st.recursive(  # YAML may give non-string keys and non-finite floats
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5) | st.integers(), c, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(path=PATHISH, label_path=PATHISH, expression=EXPRISH, key=st.text(max_size=6),
       field_type=st.sampled_from(["Integer", "DateTime", "Array", "String"]), junk=ANY_JSON)
def test_compile_raises_only_compile_error_and_render_never_raises(
    path: str, label_path: str, expression: str, key: str, field_type: str, junk: Any,
) -> None:
    cfg = config(
        metric("a", field={"path": path or ".", "type": field_type},
               labels=[{"key": key or "k", "valuePath": label_path or "."}],
               params=[{"key": "a", "valuePath": path or "."}, {"key": "b", "value": "x"}],
               metricValue={"valueFromExpression": expression or "a"}),
        metric("b", labels=[{"key": "l", "valuePath": label_path or "."}],
               metricValue={"valueFromPath": path or "."}),
    )
    try:
        plan = compile_config(cfg)
    except CompileError as exc:
        assert exc.problems
        return
    for obj in (WIDGET, {"metadata": {"name": "x"}, "a": junk, "b": [junk, junk]}, {"spec": junk},
                {"metadata": {"name": "x"}, "": {"": junk}, "a": {"b": junk}}):
        fused, generic = RenderErrors(), RenderErrors()
        # the generated render (exporter/fused.py) is the rule-walking one, byte for byte
        assert plan.render(obj, fused) == plan.render_generic(obj, generic)
        assert fused.items == generic.items


def test_unencodable_label_values_do_not_break_the_render() -> None:
    plan = compile_config(config(metric("info", labels=[{"key": "v", "valuePath": ".spec.text"}],
                                        metricValue={"value": 1})))
    obj = {"metadata": {"name": "w"}, "spec": {"text": "a\ud800b"}}  # YAML "\ud800" gives this
    assert lines(plan, obj) == ['example_com_widget_info{widget="w",v="a?b"} 1']
