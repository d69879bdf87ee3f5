"""Dropped-series logging: one line per (configuration, metric, reason), objects by Kind ns/name."""

from __future__ import annotations

import logging

import pytest

from exporter.compiler import compile_config
from exporter.renderlog import RenderLog, object_name
from exporter.store import MetricsStore
from exporter.types import RenderErrors


def errors(*items: tuple[str, str, str]) -> RenderErrors:
    return RenderErrors(items=list(items))


def obj(name: str, namespace: str = "demo") -> dict[str, object]:
    return {"kind": "Elasticsearch", "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}}


def test_object_names() -> None:
    assert object_name(obj("es-1")) == "Elasticsearch demo/es-1"
    assert object_name({"kind": "Node", "metadata": {"name": "n1"}}) == "Node n1"


def test_immediate_mode_logs_once_per_key(caplog: pytest.LogCaptureFixture) -> None:
    log = RenderLog()
    with caplog.at_level(logging.INFO, logger="exporter.render"):
        for i in range(100):
            log.report("es", obj(f"es-{i}"), errors(("tls", "missing", "matched nothing"),
                                                     ("size", "quantity", "not a quantity")))
    assert len(caplog.records) == 2
    assert "Elasticsearch demo/es-0" in caplog.text and "uid-" not in caplog.text
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]
    assert log.seen[("es", "tls", "missing")].count == 100


def test_deferred_mode_logs_one_line_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    log = RenderLog(deferred=True)
    with caplog.at_level(logging.INFO, logger="exporter.render"):
        for i in range(2100):
            log.report("es", obj(f"es-{i}"), errors(("tls", "missing", "matched nothing")))
        assert caplog.records == []
        log.flush()
        log.flush()  # nothing new: nothing more
    (record,) = caplog.records
    assert "2100 series dropped (missing), first for Elasticsearch demo/es-0" in record.getMessage()


def test_the_store_counts_every_drop_and_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    plan = compile_config({
        "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
        "metadata": {"name": "es"},
        "spec": {"targetRef": {"apiVersion": "kubedb.com/v1", "kind": "Elasticsearch"},
                 "metrics": [{"name": "replicas", "help": "r", "type": "gauge",
                              "metricValue": {"valueFromPath": ".spec.replicas"}}]}})
    store = MetricsStore()
    with caplog.at_level(logging.INFO):
        store.set_plan(plan, objects=[obj(f"es-{i}") for i in range(50)])
    lines = [r for r in caplog.records if "series dropped" in r.getMessage()]
    assert len(lines) == 1 and "Elasticsearch demo/es-0" in lines[0].getMessage()
    counted = store.telemetry.series_errors.labels("es", "replicas", "missing")._value.get()
    assert counted == 50
