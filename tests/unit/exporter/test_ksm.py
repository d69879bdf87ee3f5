"""kube-state-metrics compatibility: KSM's value rules (``exporter/ksmvalues.py``), the
conversion of ``CustomResourceStateMetrics`` files (``exporter/ksmconvert.py``) and the
``compatibility: KubeStateMetrics`` rendering (``exporter/compiler.py``). The expected values
are KSM's, read from kubernetes/kube-state-metrics ``pkg/customresourcestate/registry_factory.go``
(``toFloat64``, ``addPathLabels``, the gauge/info/stateset ``Values``) and ``pkg/metric/metric.go``
(``writeFloat``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apiserver.cli import main
from exporter.compiler import CompileError, compile_config
from exporter.ksmconvert import convert
from exporter.ksmvalues import format_sample, label_text, to_float
from exporter.types import RenderErrors
from exporter.values import ValueConversionError

# --- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (True, 1.0), (False, 0.0), (3, 3.0), (2.5, 2.5),
    ("True", 1.0), ("YES", 1.0), ("no", 0.0), ("Unknown", 0.0), ("false", 0.0),
    # Time.Unix(): whole seconds
    ("2019-10-22T16:29:31Z", 1571761771.0), ("2019-10-22T16:29:31.999+01:00", 1571758171.0),
    ("250m", 0.25), ("1Gi", 1073741824.0), ("1e3", 1000.0), ("25%", 0.25), ("-7", -7.0),
    ("0x1p-2", 0.25), ("Inf", float("inf")),
])
def test_to_float_follows_ksm(value: Any, expected: float) -> None:
    assert to_float(value) == expected


@pytest.mark.parametrize(("value", "reason"), [
    (None, "missing"), ({"a": 1}, "conversion"), ([1], "conversion"), ("12.5%", "conversion"),
    ("abc", "conversion"), (" 1", "conversion"),
])
def test_to_float_errors(value: Any, reason: str) -> None:
    with pytest.raises(ValueConversionError) as info:
        to_float(value)
    assert info.value.reason == reason


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.0, "0"), (-1.0, "-1"), (43.21, "43.21"), (123456.0, "123456"),
    (104857600.0, "1.048576e+08"), (1e6, "1e+06"), (0.0001, "0.0001"), (1e-5, "1e-05"),
    (-2.5e-7, "-2.5e-07"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"),
])
def test_format_sample_is_go_g(value: float, text: str) -> None:
    assert format_sample(value) == text


@pytest.mark.parametrize(("value", "text"), [
    ("x", "x"), (True, "true"), (3, "3"), (1.0, "1"), (1e6, "1e+06"), (None, "<nil>"),
    ({"b": 1, "a": "x"}, "map[a:x b:1]"), (["a", 2], "[a 2]"),
])
def test_label_text_is_go_percent_v(value: Any, text: str) -> None:
    assert label_text(value) == text


# --- conversion ----------------------------------------------------------------------------------

def ksm(*metrics: dict[str, Any], **resource: Any) -> dict[str, Any]:
    return {"kind": "CustomResourceStateMetrics", "spec": {"resources": [{
        "groupVersionKind": {"group": "example.com", "version": "v1", "kind": "Widget"},
        **resource, "metrics": list(metrics)}]}}


def gauge(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "help": "h", "each": {"type": "Gauge", "gauge": fields}}


def render(document: dict[str, Any], obj: dict[str, Any]) -> str:
    result = convert(document)
    assert not result.problems, result.problems
    plan = compile_config(result.configs[0])
    return b"".join(plan.render(obj)).decode()


OBJ = {"apiVersion": "example.com/v1", "kind": "Widget",
       "metadata": {"name": "w", "namespace": "ns", "labels": {"app.kubernetes.io/name": "x", "tier": "a"}},
       "spec": {"replicas": 2, "paused": None, "order": [{"id": 1, "on": True}, {"id": "3", "on": False}],
                "capacity": {"cpu": "2", "memory": "1Ki"}, "timeout": "1m30s"},
       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
GVK = 'customresource_group="example.com",customresource_kind="Widget",customresource_version="v1"'


def test_names_and_the_reserved_labels() -> None:
    assert render(ksm(gauge(path=["spec", "replicas"])), OBJ) == f"kube_customresource_m{{{GVK}}} 2\n"
    assert render(ksm(gauge(path=["spec", "replicas"]), metricNamePrefix="x"), OBJ) == f"x_m{{{GVK}}} 2\n"
    # the reserved labels overwrite user values, as KSM's compile() does
    assert render(ksm(gauge(path=["spec", "replicas"]), metricNamePrefix="",
                      commonLabels={"customresource_kind": "Other"}), OBJ) == f"m{{{GVK}}} 2\n"


def test_gauge_over_a_map_with_label_from_key_and_nil_is_zero() -> None:
    text = render(ksm(gauge(path=["spec", "capacity"], labelFromKey="resource")), OBJ)
    assert text == (f'kube_customresource_m{{{GVK},resource="cpu"}} 2\n'
                    f'kube_customresource_m{{{GVK},resource="memory"}} 1024\n')
    paused = ksm(gauge(path=["spec", "paused"], nilIsZero=True))
    assert render(paused, OBJ) == f"kube_customresource_m{{{GVK}}} 0\n"
    assert render(ksm(gauge(path=["spec", "absent"])), OBJ) == ""


def test_list_lookup_matches_strings_and_numbers() -> None:
    """``[id=3]`` matches the string "3" and the number 3 (KSM compares as string, then number)."""
    first = gauge("a", path=["spec", "order", "[id=1]", "on"])
    third = gauge("b", path=["spec", "order", "[id=3]", "on"])
    assert render(ksm(first, third), OBJ) == (f"kube_customresource_a{{{GVK}}} 1\n"
                                              f"kube_customresource_b{{{GVK}}} 0\n")


def test_label_precedence_is_ksm_s() -> None:
    """Element labels override the resource's; a specific field overrides a ``*`` copy; an
    absent element label leaves the resource's value."""
    document = ksm({"name": "m", "help": "h",
                    "labelsFromPath": {"label_*": ["metadata", "labels"], "label_tier": ["spec", "replicas"]},
                    "each": {"type": "Gauge", "gauge": {
                        "path": ["spec", "order"], "valueFrom": ["id"],
                        "labelsFromPath": {"tier": ["absent"], "id": ["id"]}}}},
                   labelsFromPath={"tier": ["status", "phase"]})
    text = render(document, OBJ)
    rest = 'label_app_kubernetes_io_name="x",label_tier="2",tier="Running"'
    assert text == (f'kube_customresource_m{{{GVK},id="1",{rest}}} 1\n'
                    f'kube_customresource_m{{{GVK},id="3",{rest}}} 3\n')


def test_stateset_and_duration() -> None:
    stateset = {"name": "s", "help": "h", "each": {"type": "StateSet", "stateSet": {
        "path": ["status", "phase"], "labelName": "phase", "list": ["Running", "Failed"]}}}
    duration = gauge("d", path=["spec", "timeout"], valueType="duration")
    assert render(ksm(stateset, duration), OBJ) == (
        f'kube_customresource_s{{{GVK},phase="Failed"}} 0\nkube_customresource_s{{{GVK},phase="Running"}} 1\n'
        f"kube_customresource_d{{{GVK}}} 90\n")
    # a missing value gives no state series (KSM skips it), quietly
    errors = RenderErrors()
    missing = {**OBJ, "status": {}}
    assert render(ksm(stateset), missing) == ""
    plan = compile_config(convert(ksm(stateset)).configs[0])
    plan.render(missing, errors)
    assert errors.items == []


@pytest.mark.parametrize(("document", "path", "message"), [
    ({"kind": "Other", "spec": {"resources": []}}, "kind", "expected 'CustomResourceStateMetrics'"),
    ({"spec": {}}, "spec.resources", "required field is missing"),
    (ksm(gauge(path=["spec"], bogus=1)), "spec.resources[0].metrics[0].each.gauge.bogus", "unknown field"),
    (ksm({"name": "m", "help": "h", "each": {"type": "Histogram"}}),
     "spec.resources[0].metrics[0].each.type", "must be one of 'Gauge', 'Info' or 'StateSet'"),
    (ksm(gauge(path=["metadata", "name=foo"])), "spec.resources[0].metrics[0].each.gauge.path",
     "a 'key=value' test on an object field cannot be converted"),
    (ksm(gauge(path=["spec", "[broken]"])), "spec.resources[0].metrics[0].each.gauge.path",
     "invalid list lookup: [broken]"),
    (ksm({"name": "i", "help": "h", "each": {"type": "Info", "info": {"path": ["spec"]}}}),
     "spec.resources[0].metrics[0].each.info.labelsFromPath", "gives no series in kube-state-metrics"),
    ({"kind": "CustomResourceStateMetrics", "spec": {"resources": [
        {"groupVersionKind": {"group": "g", "version": "*", "kind": "K"}, "metrics": [gauge()]}]}},
     "spec.resources[0].groupVersionKind.version", "a wildcard"),
])
def test_what_cannot_be_converted_names_the_field(document: dict[str, Any], path: str, message: str) -> None:
    problems = convert(document).problems
    assert len(problems) == 1
    assert problems[0][1].path == path and message in problems[0][1].message


def test_two_resources_feeding_one_family_is_an_error() -> None:
    document = ksm(gauge(path=["spec", "replicas"]))
    document["spec"]["resources"].append({
        "groupVersionKind": {"group": "example.com", "version": "v1", "kind": "Gadget"},
        "metrics": [gauge(path=["spec", "replicas"])]})
    result = convert(document)
    assert [c["metadata"]["name"] for c in result.configs] == ["example-com-widget"]
    assert result.problems[0][1].path == "spec.resources[1].metrics[0].name"
    assert "also produced by spec.resources[0].metrics[0]" in result.problems[0][1].message


def test_compatibility_fields_are_checked() -> None:
    config = convert(ksm(gauge(path=["spec", "replicas"]))).configs[0]
    config["spec"]["labelsAllowlist"] = ["team"]
    with pytest.raises(CompileError) as info:
        compile_config(config)
    assert info.value.problems[0].path == "spec.labelsAllowlist"
    config = convert(ksm(gauge(path=["spec", "capacity"], labelFromKey="r"))).configs[0]
    config["spec"]["metrics"][0]["field"]["path"] = ".spec.pools[*].quota"
    with pytest.raises(CompileError) as info:
        compile_config(config)
    assert "walks one map or list" in str(info.value)


def test_import_cli_errors_are_file_line_name_path_message(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "crs.yaml"
    source.write_text("kind: CustomResourceStateMetrics\nspec:\n  resources:\n  - groupVersionKind:\n"
                      "      {group: example.com, version: v1, kind: Widget}\n    metrics:\n"
                      "    - name: m\n      help: h\n      each:\n        type: Gauge\n"
                      "        gauge: {path: [metadata, 'name=foo']}\n")
    assert main(["import", "ksm", str(source)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"{source}:11: example-com-widget: spec.resources[0].metrics[0].each.gauge.path: "
                   "'name=foo': a 'key=value' test on an object field cannot be converted (use the list "
                   "lookup '[key=value]' or the field name)\n")
    assert main(["import", "ksm", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err


def test_import_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "ksm", "--help"])
    out = capsys.readouterr().out
    assert "kube_customresource_<name>" in out and "docs/ksm.md" in out and "panopticon render" in out


# --- serve --source DIR --ksm-config FILE -------------------------------------------------------

def test_source_mode_compiles_the_ksm_file_with_the_directory(tmp_path: Path) -> None:
    import yaml

    from exporter.exposition import Exposition
    from exporter.ksmsource import with_ksm_configs
    from exporter.offline import OfflineSource, default_compiler
    from exporter.store import MetricsStore
    from exporter.telemetry import Telemetry

    source = tmp_path / "src"
    source.mkdir()
    (source / "widget.yaml").write_text(yaml.safe_dump(OBJ))
    crs = tmp_path / "crs.yaml"
    crs.write_text(yaml.safe_dump(ksm(gauge(path=["spec", "replicas"]))))
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    offline = OfflineSource([str(source)], store, compiler=with_ksm_configs(default_compiler, [str(crs)]))
    assert offline.reload()
    assert f"kube_customresource_m{{{GVK}}} 2\n" in Exposition(store).body(fmt="text").decode()
    # a file that stops converting is a problem line; the directory is still served
    crs.write_text(yaml.safe_dump(ksm(gauge(path=["metadata", "name=x"]))))
    assert not offline.reload()
    assert offline.last_problems[0].startswith(f"{crs}:")
    assert "spec.resources[0].metrics[0].each.gauge.path" in offline.last_problems[0]
