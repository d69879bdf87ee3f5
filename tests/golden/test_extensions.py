"""Golden test of the configuration-language extensions (docs/metrics-configuration.md
"Extensions"): the worked example in the docs is exactly examples/extensions/, and
``panopticon render`` of it prints exactly the output the docs show."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.golden.worked_examples import assert_doc_shows, cli

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "metrics-configuration.md"
EXAMPLE = ROOT / "examples" / "extensions"


@pytest.mark.parametrize("name", ["config.yaml", "objects.yaml", "expected.prom"])
def test_docs_show_the_example_files(name: str) -> None:
    assert_doc_shows(DOC, EXAMPLE, name)


def test_render_prints_the_documented_output() -> None:
    result = cli("render", "-c", str(EXAMPLE / "config.yaml"), "-f", str(EXAMPLE / "objects.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLE / "expected.prom").read_text()
    families = {family.name: family for family in text_string_to_metric_families(result.stdout)}
    assert set(families) == {"core_pod_ready", "core_pod_not_ready_reason", "core_pod_containers",
                             "core_pod_restarted_containers", "core_node_capacity", "core_node_pool_quota"}


def test_check_passes_with_the_samples() -> None:
    result = cli("check", "-c", str(EXAMPLE / "config.yaml"), "-f", str(EXAMPLE / "objects.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 sample object(s) rendered into 12 series" in result.stdout
