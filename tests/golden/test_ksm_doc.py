"""Golden tests: every worked example of kube-state-metrics' Custom Resource State document,
through ``panopticon import ksm`` and ``panopticon render``.

Upstream document: https://github.com/kubernetes/kube-state-metrics/blob/main/docs/metrics/extend/customresourcestate-metrics.md
(semantics: ``pkg/customresourcestate/registry_factory.go``, ``pkg/metric/metric.go``,
``pkg/metrics_store/metrics_writer.go``). The configurations, objects and output lines in
``tests/golden/ksm/`` are typed from that document. For every example:

1. ``import ksm`` converts the file (exit 0) and ``render`` of the result on the example object
   prints exactly ``<example>.prom``, which is promtool-clean;
2. the series of that output equal the series the document shows (``DOC``, typed as the
   document prints them; spaces and line breaks inside the braces are the document's layout),
   except where the document contradicts KSM's code: each such place is in ``CORRECTIONS``
   with the reason, and the code wins.

Series order: KSM sorts an object's series by their labels (``scrapeValuesFor``), so the
``.prom`` files list ``ref="foo_2"`` before ``ref="my_other_foo"`` and ``phase="Bar"`` before
``phase="Pending"`` where the document keeps the config's order; the comparison is per series.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiserver.cli import main
from tests.expo_checks import check_exposition

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = Path(__file__).resolve().parent / "ksm"

# example -> the object file it renders
EXAMPLES = {
    "single-values": "foo.yaml",  # "Single Values"; the "Gauge" section shows the same config
    "kitchen-sink": "foo.yaml",  # "Multiple Metrics/Kitchen Sink"
    "non-map-arrays": "foo.yaml",  # "Non-map Arrays"
    "same-metric-different-labels": "vpa-example.yaml",  # "Same Metrics with Different Labels"
    "vpa-target": "hamster-vpa.yaml",  # "VerticalPodAutoscaler"
    "vpa-all": "hamster-vpa.yaml",  # "All VerticalPodAutoscaler Metrics" (no output in the doc)
    "status-conditions": "foo-conditions.yaml",  # "Example for status conditions on Kubernetes Controllers"
    "stateset": "foo.yaml",  # "StateSet"
    "info": "foo.yaml",  # "Info"
    "naming-prefix": "foo.yaml",  # "Naming", metricNamePrefix: myteam_foos
    "naming-empty": "foo.yaml",  # "Naming", metricNamePrefix: ""
    "logging": "foo.yaml",  # "Logging": errorLogV changes no series
    "path-syntax": "foo.yaml",  # "Path Syntax": the results its comments give
    "wildcard-resolved": "foo-bar-ns.yaml",  # "Wildcard matching ...", the Foo it resolves to
}

_UPTIME = 'customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1"'
DOC: dict[str, str] = {
    "single-values": "kube_customresource_uptime{" + _UPTIME + "} 43.21\n",
    "kitchen-sink": '''\
kube_customresource_ready_count{customresource_group="myteam.io", customresource_kind="Foo", \ncustomresource_version="v1", active="1",custom_metric="yes",foo="bar",name="foo",bar="baz",qux="quxx",type="type-a",
lorem_bar="baz",lorem_qux="quxx",} 2
kube_customresource_ready_count{customresource_group="myteam.io", customresource_kind="Foo", \ncustomresource_version="v1", active="3",custom_metric="yes",foo="bar",name="foo",bar="baz",qux="quxx",type="type-b",
lorem_bar="baz",lorem_qux="quxx",} 4
''',  # noqa: E501
    "non-map-arrays": '''\
kube_customresource_ref_info{customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1", name="foo",ref="my_other_foo"} 1
kube_customresource_ref_info{customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1", name="foo",ref="foo_2"} 1
kube_customresource_ref_info{customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1", name="foo",ref="foo_with_extensions"} 1
''',  # noqa: E501
    "same-metric-different-labels": '''\
kube_customresource_verticalpodautoscaler_status_recommendation_containerrecommendations_lowerbound{container="consumer",customresource_group="autoscaling.k8s.io",customresource_kind="VerticalPodAutoscaler",customresource_version="v1",namespace="namespace-example",resource="memory",target_api_version="apps/v1",target_kind="Deployment",target_name="target-name-example",unit="byte",verticalpodautoscaler="vpa-example"} 123456
kube_customresource_verticalpodautoscaler_status_recommendation_containerrecommendations_lowerbound{container="consumer",customresource_group="autoscaling.k8s.io",customresource_kind="VerticalPodAutoscaler",customresource_version="v1",namespace="namespace-example",resource="cpu",target_api_version="apps/v1",target_kind="Deployment",target_name="target-name-example",unit="core",verticalpodautoscaler="vpa-example"} 0.1
''',  # noqa: E501
    "vpa-target": '''\
kube_customresource_vpa_containerrecommendations_target_memory{container="hamster",customresource_group="autoscaling.k8s.io",customresource_kind="VerticalPodAutoscaler",customresource_version="v1",namespace="default",target_api_version="autoscaling.k8s.io/v1",target_kind="Deployment",target_name="hamster",verticalpodautoscaler="hamster-vpa"} 1.048576e+08
kube_customresource_vpa_containerrecommendations_target_cpu{container="hamster",customresource_group="autoscaling.k8s.io",customresource_kind="VerticalPodAutoscaler",customresource_version="v1",namespace="default",target_api_version="autoscaling.k8s.io/v1",target_kind="Deployment",target_name="hamster",verticalpodautoscaler="hamster-vpa"} 0.1
''',  # noqa: E501
    "status-conditions": 'kube_customresource_foo_status{' + _UPTIME + ', type="Ready"} 1.0\n',
    "stateset": '''\
kube_customresource_status_phase{customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1", phase="Pending"} 1
kube_customresource_status_phase{customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1", phase="Bar"} 0
kube_customresource_status_phase{customresource_group="myteam.io", customresource_kind="Foo", customresource_version="v1", phase="Baz"} 0
''',  # noqa: E501
    "info": "kube_customresource_version{" + _UPTIME + ', version="v1.2.3"} 1\n',
    "naming-prefix": "myteam_foos_uptime{" + _UPTIME + "} 43.21\n",
    "naming-empty": "uptime{" + _UPTIME + "} 43.21\n",
    "logging": "kube_customresource_uptime{" + _UPTIME + "} 43.21\n",
    # the document's comments: spec.replicas == 1, spec.order[0].value = true,
    # status.conditions[0].value = 45 ([name=a]), status.conditions[1].name = "b" ([value=66])
    "path-syntax": "".join(
        f"kube_customresource_{name}{{{_UPTIME}{extra}}} {value}\n" for name, extra, value in (
            ("replicas", "", 1), ("first_order_value", "", 1), ("condition_a_value", "", 45),
            ("condition_66_info", ', name="b"', 1))),
    "wildcard-resolved": ('kube_customresource_myobject_info{customresource_group="myteam.io",'
                          'customresource_kind="Foo",customresource_version="v1",'
                          'namespace="ns",object="foo"} 1\n'),
}

# (example, series index in DOC) -> (label or "value", the document's, KSM's code's, why)
CORRECTIONS: dict[tuple[str, int], list[tuple[str, str | None, str | None, str]]] = {
    **{("kitchen-sink", i): [
        ("crd_type", None, "foo", "the resource's commonLabels are merged into every metric "
         "(Labels.Merge, BaseLabels); the document leaves it out"),
        ("bar", "baz", None, 'labelsFromPath "**": addPathLabels prefixes star[:len-1] = "*", '
         'so the key is "*bar", sanitized "_bar"'),
        ("qux", "quxx", None, "as bar"),
        ("_bar", None, "baz", "as bar"),
        ("_qux", None, "quxx", "as bar"),
    ] for i in (0, 1)},
    **{("same-metric-different-labels", i): [
        ("target_api_version", "apps/v1", "autoscaling.k8s.io/v1", "the config reads [apiVersion], the "
         "VerticalPodAutoscaler's own apiVersion, not spec.targetRef.apiVersion"),
    ] for i in (0, 1)},
    ("same-metric-different-labels", 0): [
        ("target_api_version", "apps/v1", "autoscaling.k8s.io/v1", "as above"),
        ("value", "123456", "2.62144e+08", "the object the document shows has lowerBound.memory "
         "262144k = 262144000, written by writeFloat ('g') as 2.62144e+08"),
    ],
    ("status-conditions", 0): [
        ("name", None, "foo", "the resource's labelsFromPath name: [metadata, name]"),
        ("namespace", None, "ns", "the resource's labelsFromPath namespace: [metadata, namespace]"),
        ("value", "1.0", "1", "writeFloat writes 1 as '1'"),
    ],
}


def _series(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(name, labels, value text) of every sample line; the document's layout normalized."""
    def tidy(match: re.Match[str]) -> str:
        return re.sub(r",\s*", ",", match.group(0).replace("\n", "")).replace(",}", "}")

    flat = re.sub(r"\{[^}]*\}", tidy, text)
    out = []
    for line in flat.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        family = next(text_string_to_metric_families(f"{head} {value}\n"))
        sample = family.samples[0]
        out.append((sample.name, dict(sample.labels), value))
    return out


def _corrected(example: str) -> list[tuple[str, dict[str, str], str]]:
    series = _series(DOC[example])
    for index, (name, labels, value) in enumerate(series):
        for key, documented, code, _why in CORRECTIONS.get((example, index), []):
            if key == "value":
                assert value == documented, (example, index, value)
                value = code or value
                continue
            assert labels.get(key) == documented, (example, index, key)
            if code is None:
                del labels[key]
            else:
                labels[key] = code
        series[index] = (name, labels, value)
    return series


def _import(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["import", "ksm", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_import_then_render_prints_the_golden_exposition(example: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, converted, err = _import(DATA / f"{example}.ksm.yaml", capsys)
    assert code == 0 and err == "", err
    config = tmp_path / "config.yaml"
    config.write_text(converted)
    result = subprocess.run([sys.executable, "-m", "apiserver.cli", "render", "-c", str(config),
                             "-f", str(DATA / EXAMPLES[example])],
                            capture_output=True, check=False, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == (DATA / f"{example}.prom").read_text()
    lint = ('should not have "_count" suffix',) if example == "kitchen-sink" else ()  # the doc's name
    check_exposition(result.stdout, allowed_lint=lint)


@pytest.mark.parametrize("example", sorted(DOC))
def test_output_has_the_series_the_document_shows(example: str) -> None:
    ours = _series((DATA / f"{example}.prom").read_text())
    documented = _corrected(example)
    assert sorted(ours, key=repr) == sorted(documented, key=repr)


def test_every_example_has_a_document_output_or_says_why() -> None:
    assert set(EXAMPLES) - set(DOC) == {"vpa-all"}  # the document shows no output for it


def test_vpa_all_has_one_family_per_metric_and_the_states() -> None:
    families = {f.name: f for f in text_string_to_metric_families((DATA / "vpa-all.prom").read_text())}
    assert len(families) == 15  # 2 info, 1 state set, 12 gauges: every metric of the document's config
    states = families["kube_verticalpodautoscaler_spec_updatepolicy_updatemode"].samples
    modes = {s.labels["update_mode"]: s.value for s in states}
    assert modes == {"Auto": 1, "Initial": 0, "Off": 0, "Recreate": 0}


def test_same_name_metrics_form_one_family_with_the_first_help() -> None:
    """KSM before v2.14 printed the HELP/TYPE pair twice (an invalid text exposition: promtool
    rejects a second HELP); its current metrics_writer.go drops the second family's header. Here
    both metrics feed one family under the first metric's HELP (promtool-clean, same series)."""
    text = (DATA / "same-metric-different-labels.prom").read_text()
    assert text.count("# HELP ") == 1 and "Minimum memory resources" in text


def test_wildcard_group_version_kind_is_a_clear_error() -> None:
    """"Wildcard matching of version and kind fields" needs KSM's CRD discovery: offline (no
    --kubeconfig) the error names the field, its line, and says what to pass (the expansion
    through the cluster's CRDs: test_ksm_wildcard.py and tests/e2e/test_exporter_ksm.py)."""
    result = subprocess.run([sys.executable, "-m", "apiserver.cli", "import", "ksm",
                             str(DATA / "wildcard.ksm.yaml")],
                            capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{DATA / 'wildcard.ksm.yaml'}:6: myteam-io: spec.resources[0].groupVersionKind.version: "
        "'*': a wildcard (every version KSM discovers from the installed CRDs) needs the cluster's "
        "CustomResourceDefinitions: pass --kubeconfig (or write one resource per group/version/kind)\n")
