"""KSM's "Wildcard matching of version and kind fields" (kubernetes/kube-state-metrics
docs/metrics/extend/customresourcestate-metrics.md), expanded as KSM's discovery does
(internal/discovery/discovery.go ``ResolveGVKToGVKPs``) over a given list of installed CRD
kinds: one configuration per matched group/version/kind, all feeding the same families (one
header, promtool-clean). The Foo series is exactly the document's; the live run against a
kube-apiserver with the two CRDs installed is tests/e2e/test_exporter_ksm.py."""

from __future__ import annotations

from pathlib import Path

import yaml

from exporter.compiler import compile_documents
from exporter.exposition import Exposition
from exporter.ksmconvert import convert
from exporter.sources import Document
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from tests.expo_checks import check_exposition

DATA = Path(__file__).resolve().parent / "ksm"
INSTALLED = [("myteam.io", "v1", "Foo"), ("myteam.io", "v1", "Bar"), ("myteam.io", "v2", "Bar"),
             ("other.io", "v1", "Foo")]
# the document's line (test_ksm_doc.py "wildcard-resolved"), then the Bar it also resolves to
EXPECTED = '''\
# HELP kube_customresource_myobject_info Foo Bar Baz
# TYPE kube_customresource_myobject_info gauge
kube_customresource_myobject_info{customresource_group="myteam.io",customresource_kind="Bar",\
customresource_version="v1",namespace="ns",object="bar"} 1
kube_customresource_myobject_info{customresource_group="myteam.io",customresource_kind="Foo",\
customresource_version="v1",namespace="ns",object="foo"} 1
'''


def _document() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load((DATA / "wildcard.ksm.yaml").read_text()))


def test_every_installed_version_and_kind_of_the_group_matches() -> None:
    result = convert(_document(), installed=INSTALLED)
    assert result.problems == []
    assert [(c["metadata"]["name"], c["spec"]["targetRef"]) for c in result.configs] == [
        ("myteam-io-bar-v1", {"apiVersion": "myteam.io/v1", "kind": "Bar"}),
        ("myteam-io-bar-v2", {"apiVersion": "myteam.io/v2", "kind": "Bar"}),
        ("myteam-io-foo-v1", {"apiVersion": "myteam.io/v1", "kind": "Foo"}),
    ]
    assert {result.resource_of(c["metadata"]["name"]) for c in result.configs} == {0}


def test_version_or_kind_alone_narrows_the_match() -> None:
    doc = _document()
    doc["spec"]["resources"][0]["groupVersionKind"]["kind"] = "Bar"
    assert [c["metadata"]["name"] for c in convert(doc, installed=INSTALLED).configs] == [
        "myteam-io-bar-v1", "myteam-io-bar-v2"]
    doc["spec"]["resources"][0]["groupVersionKind"].update(kind="*", version="v2")
    assert [c["metadata"]["name"] for c in convert(doc, installed=INSTALLED).configs] == ["myteam-io-bar-v2"]
    doc["spec"]["resources"][0]["groupVersionKind"]["version"] = "v9"
    ((_, problem),) = convert(doc, installed=INSTALLED).problems
    assert str(problem) == ("spec.resources[0].groupVersionKind: group 'myteam.io' version 'v9' kind '*' "
                            "matches no installed CustomResourceDefinition")


def test_the_expansions_feed_one_family() -> None:
    result = convert(_document(), installed=INSTALLED)
    docs = [Document(source="x", index=i, line=1, data=c) for i, c in enumerate(result.configs)]
    plans, problems = compile_documents(docs)
    assert problems == []
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    objects = [dict(d) for d in yaml.safe_load_all((DATA / "foo-bar-ns.yaml").read_text())]
    for plan in plans:
        store.set_plan(plan, objects=[o for o in objects if o["apiVersion"] == plan.target.api_version
                                      and o["kind"] == plan.target.kind])
    body = Exposition(store).body(fmt="text")
    assert body.decode() == EXPECTED
    check_exposition(body)


def test_docs_show_the_output() -> None:
    text = (DATA.parent.parent.parent / "docs" / "ksm.md").read_text()
    assert "```\n" + EXPECTED + "```\n" in text
