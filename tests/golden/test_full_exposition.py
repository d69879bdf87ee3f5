"""Golden, end to end: the three real configurations and their objects, all at once, through
the store and the exposition (and the ``render`` CLI), compared with an exposition assembled
independently from the hand-written per-family lines in ``tests/golden/<case>/expected.prom``
and the HELP texts of the config files. Every body also passes promtool and the parsers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.exposition import Exposition
from exporter.offline import apply_snapshot, load_directory
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from tests.expo_checks import check_exposition

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
# Configuration names in exposition order (by name): apps-deployment, kubedb-com-mongodb,
# kubestash-appscode-com-backupsession.
CASES = ["deployment", "mongodb", "backupsession"]
# Panopticon's shipped MongoDB config names labels in camelCase (clusterAuthMode, sslMode...):
# promtool's style lint flags it; the data is real, so that one finding is expected.
CAMEL_CASE_LINT = ("label names should be written in 'snake_case' not 'camelCase'",)


def _families(case: str) -> list[tuple[str, str, list[str]]]:
    """(family, help, expected lines) in configuration order."""
    config = yaml.safe_load((HERE / case / "config.yaml").read_text())
    helps = [metric["help"] for metric in config["spec"]["metrics"]]
    families: list[tuple[str, list[str]]] = []
    for line in (HERE / case / "expected.prom").read_text().splitlines():
        if line.startswith("# family "):
            families.append((line.removeprefix("# family "), []))
        elif line and not line.startswith("#"):
            families[-1][1].append(line)
    assert len(families) == len(helps)
    return [(name, help_, lines) for (name, lines), help_ in zip(families, helps, strict=True)]


def expected_exposition(*, openmetrics: bool, namespace: str | None = None) -> bytes:
    out: list[str] = []
    for case in CASES:
        for name, help_, lines in _families(case):
            if namespace is not None:
                lines = [line for line in lines if f'{{namespace="{namespace}",' in line]
            if not lines:
                continue
            help_ = help_.replace("\\", "\\\\").replace("\n", "\\n")
            if openmetrics:
                help_ = help_.replace('"', '\\"')
            out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", *lines]
    text = "".join(line + "\n" for line in out)
    return (text + "# EOF\n" if openmetrics else text).encode()


@pytest.fixture(scope="module")
def exposition() -> Exposition:
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    apply_snapshot(store, load_directory([str(HERE / case) for case in CASES]))
    return Exposition(store)


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("namespace", [None, "demo", "shop"])
def test_full_exposition(exposition: Exposition, openmetrics: bool, namespace: str | None) -> None:
    body = exposition.body(fmt="openmetrics" if openmetrics else "text", namespace=namespace)
    assert body == expected_exposition(openmetrics=openmetrics, namespace=namespace)
    checked = check_exposition(body, openmetrics=openmetrics, allowed_lint=CAMEL_CASE_LINT)
    if namespace is None:
        expected_series = sum(len(lines) for case in CASES for _, _, lines in _families(case))
        assert sum(len(f.samples) for f in checked.families.values()) == expected_series
    else:
        assert {s.labels["namespace"] for f in checked.families.values() for s in f.samples} == {namespace}


def test_render_cli_prints_the_golden_exposition() -> None:
    args = [sys.executable, "-m", "apiserver.cli", "render"]
    for case in CASES:
        args += ["-c", str(HERE / case / "config.yaml"), "-f", str(HERE / case / "objects.yaml")]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == expected_exposition(openmetrics=False)
    # The dropped series are reported on stderr, once each, never as a traceback.
    assert b"duration_seconds" in proc.stderr and b"Traceback" not in proc.stderr
