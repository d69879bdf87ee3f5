"""Golden test of aggregates (docs/metrics-configuration.md "Aggregates"): the worked example in
the docs is exactly examples/aggregates/, ``panopticon render`` prints exactly the documented
output (all namespaces and ``-n shop``), and the store's exposition of it is promtool-clean in
text 0.0.4, OpenMetrics and gzip, with the same bytes after the objects arrive in another order
or after an update/delete history that ends in the same objects."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.compiler import compile_documents
from exporter.exposition import Exposition
from exporter.sources import load_documents
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from tests.expo_checks import check_exposition
from tests.golden.worked_examples import assert_doc_shows, assert_render_prints

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "metrics-configuration.md"
EXAMPLE = ROOT / "examples" / "aggregates"
FILES = ["config.yaml", "objects.yaml", "expected.prom", "expected-shop.prom"]


@pytest.mark.parametrize("name", FILES)
def test_docs_show_the_example_files(name: str) -> None:
    assert_doc_shows(DOC, EXAMPLE, name)


@pytest.mark.parametrize(("extra", "expected"),
                         [([], "expected.prom"), (["-n", "shop"], "expected-shop.prom")])
def test_render_prints_the_documented_output(extra: list[str], expected: str) -> None:
    assert_render_prints(EXAMPLE, expected, *extra)


def _store(objects: list[dict[str, Any]]) -> tuple[MetricsStore, Exposition]:
    plans, problems = compile_documents(load_documents([str(EXAMPLE / "config.yaml")]))
    assert not problems
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    for plan in plans:
        store.set_plan(plan)
    by_kind = {plan.target.kind: plan.name for plan in plans}
    for obj in objects:
        store.upsert(by_kind[obj["kind"]], obj)
    return store, Exposition(store)


def _objects() -> list[dict[str, Any]]:
    return [dict(doc) for doc in yaml.safe_load_all((EXAMPLE / "objects.yaml").read_text())]


@pytest.mark.parametrize("namespace", [None, "shop", "batch", "argocd", "nowhere"])
def test_every_format_is_valid_and_equal(namespace: str | None) -> None:
    _, exposition = _store(_objects())
    text = exposition.body(fmt="text", namespace=namespace)
    openmetrics = exposition.body(fmt="openmetrics", namespace=namespace)
    expected = {None: "expected.prom", "shop": "expected-shop.prom"}.get(namespace)
    if expected is not None:
        assert text.decode() == (EXAMPLE / expected).read_text()
    checked = check_exposition(text)
    assert check_exposition(openmetrics, openmetrics=True).families.keys() == checked.families.keys()
    assert openmetrics == text + b"# EOF\n"
    assert gzip.decompress(exposition.body(fmt="text", namespace=namespace, gzip=True)) == text
    if namespace == "nowhere":
        assert text == b""


def test_history_does_not_change_the_bytes() -> None:
    """Objects in reverse order, after other states and a deleted object: the same exposition."""
    objects = _objects()
    _, expected = _store(objects)
    store, exposition = _store(list(reversed(objects)))
    plans = {plan.target.kind: plan.name for plan in store.plans()}
    ghost = copy.deepcopy(objects[0])
    ghost["metadata"]["name"] = "ghost"
    store.upsert(plans["Pod"], ghost)
    changed = copy.deepcopy(objects[1])
    changed["status"]["phase"] = "Failed"
    changed["metadata"]["labels"]["team"] = "other"
    store.upsert(plans["Pod"], changed)
    assert b'core_pod_by_phase{namespace="shop",phase="Failed"} 1' in exposition.body(fmt="text")
    assert b'label_team="other"' in exposition.body(fmt="text")
    store.upsert(plans["Pod"], objects[1])
    store.delete(plans["Pod"], "shop/ghost")
    for namespace in (None, "shop", "batch", "argocd"):
        assert exposition.body(fmt="text", namespace=namespace) == expected.body(fmt="text",
                                                                                 namespace=namespace)
    body = exposition.body(fmt="text")
    assert b"Failed" not in body and b"other" not in body  # groups whose count dropped to zero are gone
