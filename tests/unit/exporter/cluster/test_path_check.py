"""The live typo check of paths: the pure decision (``path_check``, ``paths_condition``,
``config_status``), the schema cache (``LiveSchemas``) and the controller writing ``PathsValid``
(against the fake API server; on a real kube-apiserver: tests/e2e/test_exporter_path_check.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cluster import ClusterExporter, ExporterOptions
from exporter.cluster.events import config_event
from exporter.cluster.schemas import OPENAPI, LiveSchemas
from exporter.cluster.state import PathCheck
from exporter.cluster.status import config_status, path_check, paths_condition
from exporter.schemacheck import CRDS, SchemaIndex
from exporter.store import MetricsStore
from kube.client import KubeClient, NotFound, ServiceUnavailable
from kube.discovery import ResolvedResource
from tests.unit.kube.fake_apiserver import FakeApiServer

CRD = yaml.safe_load((Path(__file__).resolve().parents[1] / "schemas" / "widgets-crd.yaml").read_text())
CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
WIDGETS = "/apis/example.com/v1/widgets"
WIDGET = ResolvedResource(group="example.com", version="v1", resource="widgets", kind="Widget",
                          namespaced=True)
DEPLOYMENT = ResolvedResource(group="apps", version="v1", resource="deployments", kind="Deployment",
                              namespaced=True)
POD = ResolvedResource(group="", version="v1", resource="pods", kind="Pod", namespaced=True)
OPENAPI_DOC = {"swagger": "2.0", "definitions": {
    "io.k8s.api.apps.v1.Deployment": {
        "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
        "properties": {"spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}}},
    "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {"replicas": {"type": "integer"}}},
    "io.k8s.api.core.v1.Pod": {
        "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Pod"}],
        "properties": {"spec": {"properties": {"nodeName": {"type": "string"}}}}},
}}


def config(*paths: str, api_version: str = "example.com/v1", kind: str = "Widget",
           name: str = "widgets") -> dict[str, Any]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name},
            "spec": {"targetRef": {"apiVersion": api_version, "kind": kind}, "metrics": [
                {"name": f"m{i}", "help": "h", "type": "gauge", "metricValue": {"valueFromPath": p}}
                for i, p in enumerate(paths)]}}


def crd_index() -> SchemaIndex:
    index = SchemaIndex()
    index.add_document(CRD)
    return index


# ---- the pure decision ---------------------------------------------------------------------------
def test_unknown_path_is_false_with_did_you_mean() -> None:
    check = path_check(key=("k",), config=config(".spec.replica", ".spec.nodeName"),
                       target=("example.com/v1", "Widget"), index=crd_index(), source="CRD widgets")
    assert check.checked == 2 and len(check.problems) == 1
    status, reason, message = paths_condition(check) or ("", "", "")
    assert (status, reason) == ("False", "UnknownPath")
    assert message == ("spec.metrics[0].metricValue.valueFromPath: '.spec.replica': the schema of the "
                       "target has no field 'replica' under .spec; did you mean '.spec.replicas'?")


def test_clean_paths_are_true_and_no_schema_is_unknown() -> None:
    clean = path_check(key=(), config=config(".spec.replicas", ".spec.shards[*].size"),
                       target=("example.com/v1", "Widget"), index=crd_index(), source="CRD widgets")
    assert paths_condition(clean) == ("True", "SchemaMatched", "2 paths match the schema of CRD widgets")
    other_version = path_check(key=(), config=config(".spec.replica"), target=("example.com/v2", "Widget"),
                               index=crd_index(), source="CRD widgets")
    assert paths_condition(other_version) == (
        "Unknown", "SchemaUnavailable", "no schema for example.com/v2 Widget in CRD widgets")
    failed = path_check(key=(), config=config(".spec.replica"), target=("example.com/v1", "Widget"),
                        index=None, source="/openapi/v2", error="/openapi/v2: 503")
    assert paths_condition(failed) == ("Unknown", "SchemaUnavailable", "/openapi/v2: 503")
    assert paths_condition(None) is None


def test_the_resolved_version_is_checked_not_the_pinned_one() -> None:
    index = crd_index()
    cfg = config(".spec.replica", api_version="example.com/v1beta1")  # fell back to v1
    check = path_check(key=(), config=cfg, target=("example.com/v1", "Widget"), index=index, source="x")
    assert len(check.problems) == 1


def test_many_problems_are_capped_in_the_message() -> None:
    check = PathCheck(key=(), source="x", checked=12, problems=tuple(f"p{i}" for i in range(12)))
    _, _, message = paths_condition(check) or ("", "", "")
    assert message == "; ".join(f"p{i}" for i in range(10)) + "; and 2 more"


def test_config_status_adds_paths_valid_after_ready_and_keeps_its_transition_time() -> None:
    common: dict[str, Any] = dict(generation=2, ready="True", reason="Compiled", message="1 family",
                                  resource=WIDGET, objects=1, series=1)
    first = config_status(previous=None, now="T1", paths=("False", "UnknownPath", "typo"), **common)
    assert [c["type"] for c in first["conditions"]] == ["Ready", "PathsValid"]
    assert first["conditions"][1] == {"type": "PathsValid", "status": "False", "reason": "UnknownPath",
                                      "message": "typo", "observedGeneration": 2, "lastTransitionTime": "T1"}
    same = config_status(previous=first["conditions"], now="T2", paths=("False", "UnknownPath", "two"),
                         **common)
    assert same["conditions"][1]["lastTransitionTime"] == "T1"
    fixed = config_status(previous=same["conditions"], now="T3", paths=("True", "SchemaMatched", "ok"),
                          **common)
    assert fixed["conditions"][1]["lastTransitionTime"] == "T3"
    assert fixed["conditions"][0]["lastTransitionTime"] == "T1"  # Ready did not change
    dropped = config_status(previous=fixed["conditions"], now="T4", **common)
    assert [c["type"] for c in dropped["conditions"]] == ["Ready"]


def test_config_event_names_the_cluster_scoped_configuration() -> None:
    cfg = config(".spec.replica")
    cfg["metadata"]["uid"] = "u1"
    event = config_event(cfg, type_="Warning", reason="UnknownPath", message="x" * 2000,
                         component="panopticon", now="T")
    assert event["metadata"] == {"generateName": "widgets.", "namespace": "default"}
    assert event["involvedObject"] == {"apiVersion": "metrics.appscode.com/v1alpha1",
                                       "kind": "MetricsConfiguration", "name": "widgets", "uid": "u1"}
    assert (event["type"], event["reason"], len(event["message"])) == ("Warning", "UnknownPath", 1024)
    assert event["message"].endswith("...")


# ---- the schema cache ----------------------------------------------------------------------------
class Api:
    """A Getter that serves a few documents and counts requests."""

    def __init__(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self.gets: list[str] = []

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.gets.append(path)
        doc = self.docs.get(path)
        if isinstance(doc, Exception):
            raise doc
        if doc is None:
            raise NotFound(404, "NotFound", f"{path} not found")
        return dict(doc)


async def test_crd_schema_fetched_once_per_crd_until_invalidated() -> None:
    api = Api({f"{CRDS}/widgets.example.com": {k: v for k, v in CRD.items() if k != "kind"}})
    schemas = LiveSchemas(api)
    first = await schemas.lookup(WIDGET)
    assert first.index is not None and first.index.schema_for("example.com/v1", "Widget") is not None
    assert first.source == "CustomResourceDefinition widgets.example.com" and not first.error
    assert (await schemas.lookup(WIDGET)).index is first.index
    assert api.gets == [f"{CRDS}/widgets.example.com"]
    schemas.invalidate()
    await schemas.lookup(WIDGET)
    assert api.gets == [f"{CRDS}/widgets.example.com"] * 2


async def test_native_kinds_share_one_openapi_download() -> None:
    api = Api({OPENAPI: OPENAPI_DOC})
    schemas = LiveSchemas(api)
    deployment, pod = await schemas.lookup(DEPLOYMENT), await schemas.lookup(POD)
    again = await schemas.lookup(DEPLOYMENT)
    assert deployment.index is pod.index is again.index is not None and deployment.source == OPENAPI
    # apps is not a CRD (asked once, remembered); the core group is never asked
    assert api.gets == [f"{CRDS}/deployments.apps", OPENAPI]
    check = path_check(key=(), config=config(".spec.replica", api_version="apps/v1", kind="Deployment"),
                       target=("apps/v1", "Deployment"), index=deployment.index, source=OPENAPI)
    assert check.problems and "did you mean '.spec.replicas'?" in check.problems[0]


async def test_a_failed_request_is_not_cached() -> None:
    api = Api({OPENAPI: ServiceUnavailable(503, "ServiceUnavailable", "openapi down")})
    schemas = LiveSchemas(api)
    failed = await schemas.lookup(POD)
    assert failed.index is None and "openapi down" in failed.error
    api.docs[OPENAPI] = OPENAPI_DOC
    assert (await schemas.lookup(POD)).index is not None
    assert api.gets == [OPENAPI, OPENAPI]


async def test_a_server_without_openapi_has_no_schemas_and_is_asked_once() -> None:
    api = Api({})
    schemas = LiveSchemas(api)
    first, second = await schemas.lookup(POD), await schemas.lookup(POD)
    assert first.index is None and not first.error and first.source == OPENAPI
    assert second == first and api.gets == [OPENAPI]
    check = path_check(key=(), config=config(".spec.x", api_version="v1", kind="Pod"), target=("v1", "Pod"),
                       index=first.index, source=first.source)
    assert paths_condition(check) == ("Unknown", "SchemaUnavailable", "no schema for v1 Pod in /openapi/v2")


async def test_invalidation_during_a_request_does_not_keep_the_stale_answer() -> None:
    api = Api({OPENAPI: OPENAPI_DOC})
    schemas = LiveSchemas(api)
    original = api.get

    async def slow_get(path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        schemas.invalidate()  # a CRD event while the request is out
        return await original(path, params=params)

    api.get = slow_get  # type: ignore[method-assign]
    assert (await schemas.lookup(POD)).index is not None
    api.get = original  # type: ignore[method-assign]
    await schemas.lookup(POD)
    assert api.gets == [OPENAPI, OPENAPI]


# ---- the controller against the fake API server --------------------------------------------------
@pytest.fixture
async def exporter(client: KubeClient, fake: FakeApiServer) -> AsyncIterator[ClusterExporter]:
    fake.discovery["/apis/example.com/v1"] = {
        "kind": "APIResourceList", "groupVersion": "example.com/v1",
        "resources": [{"name": "widgets", "kind": "Widget", "namespaced": True}]}
    await fake.put(CRDS, {k: v for k, v in CRD.items()})
    for i in range(5):
        await fake.put(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                 "metadata": {"namespace": "a", "name": f"w{i}"}, "spec": {"replicas": i}})
    run = ClusterExporter(client, MetricsStore(), options=ExporterOptions(status_interval=0.05))
    await run.start()
    yield run
    await run.stop()


async def eventually(check: Callable[[], bool], what: Callable[[], str], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, what()
        await asyncio.sleep(0.02)


def conditions(fake: FakeApiServer, name: str) -> dict[str, dict[str, Any]]:
    status = fake.objects[CONFIGS][("", name)].get("status") or {}
    return {c["type"]: c for c in status.get("conditions") or ()}


async def test_typo_reported_once_keeps_serving_and_fix_flips_to_true(
    fake: FakeApiServer, exporter: ClusterExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.cluster.controller")
    await fake.put(CONFIGS, config(".spec.replicas", ".spec.replica"))
    await eventually(lambda: conditions(fake, "widgets").get("PathsValid", {}).get("status") == "False",
                     what=lambda: str(conditions(fake, "widgets")))
    conds = conditions(fake, "widgets")
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "Compiled"
    assert conds["PathsValid"]["reason"] == "UnknownPath"
    assert "did you mean '.spec.replicas'?" in conds["PathsValid"]["message"]
    series = {c: n for c, _, n in exporter.store.stats()}
    assert series["widgets"] == 5  # the good path keeps serving (the typo'd one finds nothing)
    registry = exporter.store.telemetry.registry
    unknown = {"configuration": "widgets"}
    assert registry.get_sample_value("panopticon_configuration_unknown_paths", unknown) == 1
    # more object events and a re-resolution (CRD event) do not repeat the warning
    for i in range(5):
        await fake.put(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                 "metadata": {"namespace": "a", "name": f"w{i}"},
                                 "spec": {"replicas": i + 1}})
    await fake.put(CRDS, {k: v for k, v in CRD.items()})
    await eventually(lambda: exporter.schemas.generation >= 1, what=lambda: "no re-resolution")
    await exporter.queue.wait_idle()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cannot have" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "widgets: 1 path(s)" in warnings[0].getMessage()
    events = [r for r in fake.requests if r[:2] == ("POST", "/api/v1/namespaces/default/events")]
    assert len(events) == 1  # and one Warning Event

    await fake.put(CONFIGS, config(".spec.replicas", ".spec.nodeName"))
    await eventually(lambda: conditions(fake, "widgets").get("PathsValid", {}).get("status") == "True",
                     what=lambda: str(conditions(fake, "widgets")))
    assert conditions(fake, "widgets")["PathsValid"]["message"] == (
        "2 paths match the schema of CustomResourceDefinition widgets.example.com")
    assert registry.get_sample_value("panopticon_configuration_unknown_paths", unknown) == 0


async def test_compile_error_has_no_paths_condition(fake: FakeApiServer, exporter: ClusterExporter) -> None:
    await fake.put(CONFIGS, config(".spec.replica"))
    await eventually(lambda: "PathsValid" in conditions(fake, "widgets"),
                     what=lambda: str(conditions(fake, "widgets")))
    broken = config(".spec.replica")
    broken["spec"]["metrics"][0]["metricValue"] = {"valueFromExpression": "int(("}
    await fake.put(CONFIGS, broken)
    await eventually(lambda: conditions(fake, "widgets").get("Ready", {}).get("reason") == "CompileError",
                     what=lambda: str(conditions(fake, "widgets")))
    assert "PathsValid" not in conditions(fake, "widgets")
