"""Golden test of docs/ksm.md's worked example: the document shows exactly examples/ksm/, and
``panopticon import ksm`` of the KSM file prints exactly the converted configurations shown,
whose rendering is exactly the exposition shown (promtool-clean)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.expo_checks import check_exposition
from tests.golden.worked_examples import assert_doc_shows, assert_render_prints

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "ksm.md"
EXAMPLE = ROOT / "examples" / "ksm"
FILES = ["crs-config.yaml", "objects.yaml", "converted.yaml", "expected.prom"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiserver.cli", *args], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("name", FILES)
def test_docs_show_the_example_files(name: str) -> None:
    assert_doc_shows(DOC, EXAMPLE, name)


def test_import_prints_the_converted_configurations() -> None:
    result = _cli("import", "ksm", str(EXAMPLE / "crs-config.yaml"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == (EXAMPLE / "converted.yaml").read_text()


def test_render_prints_the_documented_output() -> None:
    printed = assert_render_prints(EXAMPLE, "expected.prom", config="converted.yaml")
    checked = check_exposition(printed.encode())
    assert len(checked.families) == 6


def test_check_accepts_the_converted_configurations_with_the_samples() -> None:
    result = _cli("check", "-c", str(EXAMPLE / "converted.yaml"), "-f", str(EXAMPLE / "objects.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
