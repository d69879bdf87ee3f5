"""``--metric-allowlist`` / ``--metric-denylist``: whole-name regexes, exclusive, applied to the
compiled plan once (filtered families are never rendered)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter.compiler import CompiledPlan, compile_config
from exporter.familyfilter import FamilyFilter, FamilyFilterError

ROOT = Path(__file__).resolve().parents[3]


def config() -> dict[str, Any]:
    metrics = [{"name": n, "help": "h", "type": "gauge", "metricValue": {"value": 1}}
               for n in ("a", "b", "ab")]
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "cfg"},
            "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}, "metrics": metrics}}


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}}


def test_no_flags_no_filter() -> None:
    assert FamilyFilter.parse() is None


def test_allowlist_matches_whole_names() -> None:
    families = FamilyFilter.parse(allow="core_pod_a, core_pod_x.*")
    assert families is not None
    assert [families.keeps(n) for n in ("core_pod_a", "core_pod_ab", "core_pod_xyz")] == [True, False, True]


def test_denylist_and_plan_filtering() -> None:
    families = FamilyFilter.parse(deny="core_pod_a.*")
    assert families is not None
    plan = families.apply(compile_config(config()))
    assert isinstance(plan, CompiledPlan)
    assert [f.name for f in plan.families] == ["core_pod_b"]
    assert plan.family_paths == ("spec.metrics[1]",)
    assert plan.render(POD) == (b'core_pod_b{namespace="n",pod="p"} 1\n',)


def test_the_live_compiler_is_wrapped() -> None:
    families = FamilyFilter.parse(allow="core_pod_ab")
    assert families is not None
    plan = families.config_compiler(compile_config)(config())
    assert [f.name for f in plan.families] == ["core_pod_ab"]


@pytest.mark.parametrize(("allow", "deny", "message"), [
    ("a", "b", "mutually exclusive"),
    ("(", "", "cannot compile"),
])
def test_bad_flags(allow: str, deny: str, message: str) -> None:
    with pytest.raises(FamilyFilterError, match=message):
        FamilyFilter.parse(allow=allow, deny=deny)


def test_render_flag() -> None:
    example = ROOT / "examples" / "extensions"
    result = subprocess.run(
        [sys.executable, "-m", "apiserver.cli", "render", "-c", str(example / "config.yaml"),
         "-f", str(example / "objects.yaml"), "--metric-denylist", "core_pod_.*,core_node_pool_quota"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [line.split("{")[0] for line in result.stdout.splitlines() if not line.startswith("#")] == [
        "core_node_capacity"] * 3
