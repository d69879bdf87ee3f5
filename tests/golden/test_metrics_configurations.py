"""Golden tests: the three real Panopticon configurations over realistic objects.

Each case directory holds ``config.yaml`` (copied from Panopticon's users: kubedb/installer
``charts/kubedb-metrics/``, the Panopticon launch post, kubestash/installer
``charts/kubestash-metrics/``), ``objects.yaml`` and ``expected.prom``: the exact sample
lines of every family (objects in file order), written by hand from the objects, and ``#
dropped OBJECT METRIC REASON`` lines for the series a conversion error must drop. The
examples/ directory ships the same files.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from exporter.compiler import compile_config
from exporter.sources import load_documents
from exporter.types import RenderErrors

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CASES = ["deployment", "mongodb", "backupsession"]


def _expected(case: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    families: dict[str, list[str]] = {}
    dropped: list[tuple[str, str, str]] = []
    current: list[str] | None = None
    for line in (HERE / case / "expected.prom").read_text().splitlines():
        if line.startswith("# family "):
            current = families.setdefault(line.removeprefix("# family "), [])
        elif line.startswith("# dropped "):
            obj, metric, reason = line.removeprefix("# dropped ").split()
            dropped.append((obj, metric, reason))
        elif line and not line.startswith("#"):
            assert current is not None, f"sample before any '# family' line: {line}"
            current.append(line)
    return families, dropped


@pytest.mark.parametrize("case", CASES)
def test_golden_render(case: str) -> None:
    (config,) = load_documents([str(HERE / case / "config.yaml")])
    plan = compile_config(config.data)
    objects = load_documents([str(HERE / case / "objects.yaml")])
    expected, expected_dropped = _expected(case)

    got: dict[str, list[str]] = {family.name: [] for family in plan.families}
    dropped: list[tuple[str, str, str]] = []
    for doc in objects:
        errors = RenderErrors()
        chunks = plan.render(doc.data, errors)
        assert len(chunks) == len(plan.families)
        for family, chunk in zip(plan.families, chunks, strict=True):
            text = chunk.decode()
            assert text == "" or text.endswith("\n")
            got[family.name].extend(text.splitlines())
        dropped.extend((doc.name, metric, reason) for metric, reason, _ in errors.items)

    assert list(got) == list(expected), "family names and order"
    for name, lines in expected.items():
        assert got[name] == lines, name
    assert dropped == expected_dropped


@pytest.mark.parametrize(
    ("case", "config", "objects"),
    [
        ("deployment", "apps-deployment.yaml", "deployments.yaml"),
        ("mongodb", "kubedb-com-mongodb.yaml", "mongodbs.yaml"),
        ("backupsession", "kubestash-appscode-com-backupsession.yaml", "backupsessions.yaml"),
    ],
)
def test_examples_ship_the_golden_inputs(case: str, config: str, objects: str) -> None:
    assert filecmp.cmp(HERE / case / "config.yaml", ROOT / "examples" / "configs" / config, shallow=False)
    assert filecmp.cmp(HERE / case / "objects.yaml", ROOT / "examples" / "objects" / objects, shallow=False)
