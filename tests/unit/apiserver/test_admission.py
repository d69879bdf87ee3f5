"""The admission webhooks over real TLS: verdicts, messages equal to ``check``'s, warnings, bad input.

The application is the real one (``build_app`` with the webhooks mounted as ``serve`` mounts
them, the real authenticator and SAR authorizer over a fake reviewer); only the kube-apiserver is
replaced: reviews are POSTed by aiohttp, target schemas come from a fake ``SchemaSource`` or a
fake ``Getter`` (``CrdSchemas``).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from apiserver.admission import (
    MAX_BODY,
    METRICS_CONFIGURATION,
    THANOS,
    AdmissionWebhooks,
    BadReview,
    CallerPolicy,
    parse_review,
)
from apiserver.admission_schemas import CrdSchemas
from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.commands.check import check
from apiserver.server import REQUEST_USER, HttpsServer, build_app
from apiserver.views import ApiViews
from certs.generate import KeyPair, new_client_cert
from certs.reload import ReloadingServerTLS
from exporter.compiler import compile_config
from exporter.exposition import Exposition, parse_series
from exporter.schemacheck import SchemaIndex
from exporter.store import MetricsStore
from exporter.types import TargetRef
from kube.client import ApiError
from tests.unit.apiserver.conftest import FakeReviewer, Pki

CONFIG_PATH = METRICS_CONFIGURATION.path
THANOS_PATH = THANOS.path


def config(name: str, *metrics: dict[str, Any], kind: str = "Deployment",
           api_version: str = "apps/v1") -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": api_version, "kind": kind}, "metrics": list(metrics)},
    }


def metric(name: str, **value: str) -> dict[str, Any]:
    return {"name": name, "help": name, "type": "gauge", "metricValue": value}


GOOD = config("good", metric("replicas", valueFromPath=".spec.replicas"))
TWO_PROBLEMS = config(
    "two-problems",
    metric("one", valueFromExpression="no_such_function(obj)"),
    metric("ok", valueFromPath=".spec.replicas"),
    metric("two", valueFromExpression="1 + * 2"),
)


def thanos(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "monitoring.paodin.io/v1alpha1", "kind": "Thanos",
            "metadata": {"name": "t", "namespace": "mon"}, "spec": spec}


def review(obj: Mapping[str, Any] | None, *, operation: str = "CREATE", uid: str = "u-1",
           old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"uid": uid, "operation": operation, "object": obj, "oldObject": old,
                               "userInfo": {"username": "alice"}, "dryRun": False}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class FakeSchemas:
    def __init__(self, schemas: Mapping[TargetRef, Mapping[str, Any]], *, delay: float = 0.0) -> None:
        self.schemas, self.delay, self.asked = schemas, delay, 0

    async def index(self, target: TargetRef) -> SchemaIndex | None:
        self.asked += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        schema = self.schemas.get(target)
        return SchemaIndex(schemas={(target.api_version, target.kind): schema}) if schema else None


WIDGET = TargetRef("example.com/v1", "Widget")
WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "ports": {"type": "array",
                      "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


async def start(pki: Pki, webhooks: AdmissionWebhooks, reviewer: FakeReviewer
                ) -> tuple[HttpsServer, ApiViews]:
    store = MetricsStore()
    views = ApiViews(store)
    settings = pki.settings()
    # As apiserver.https wires it: the webhook paths are always allowed by the SAR authorizer.
    authorizer = Authorizer(reviewer, always_allow_paths=["/healthz", *webhooks.paths])
    app = build_app(views=views, exposition=Exposition(store), parse_series=parse_series,
                    authenticator=Authenticator(settings, token_reviewer=reviewer), authorizer=authorizer,
                    extra_routes=webhooks.routes())
    server = HttpsServer(app, ReloadingServerTLS(pair=pki.serving, client_ca_pem=settings.tls_client_ca_pem),
                         host="127.0.0.1", port=0)
    await server.start()
    return server, views


class Client:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session = url, session

    async def post(self, path: str, body: bytes | dict[str, Any], *,
                   content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(self.url + path, data=data, headers={"Content-Type": content_type}) as r:
            return r.status, await r.json(content_type=None)


@pytest.fixture
async def hooks(pki: Pki) -> AsyncIterator[tuple[Client, AdmissionWebhooks, FakeReviewer, FakeSchemas]]:
    other = compile_config(config("other", {**metric("replicas", valueFromPath=".spec.replicas"),
                                            "help": "Replicas of the widget"},
                                  kind="Widget", api_version="example.com/v1"))
    schemas = FakeSchemas({WIDGET: WIDGET_SCHEMA})
    webhooks = AdmissionWebhooks(plans=lambda: [other], schemas=schemas,
                                 user_of=lambda request: request.get(REQUEST_USER))
    reviewer = FakeReviewer()
    server, views = await start(pki, webhooks, reviewer)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context())) as session:
        yield Client(f"https://127.0.0.1:{server.port}", session), webhooks, reviewer, schemas
    await server.stop()
    views.close()


def check_lines(tmp_path: Path, *objects: Mapping[str, Any]) -> list[str]:
    """What ``panopticon check`` prints for the objects, without ``FILE:LINE: `` and the summary."""
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(list(objects), sort_keys=False))
    out = io.StringIO()
    check(config_paths=[str(path)], object_paths=[], out=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith(f"{path}:")]
    return [line.split(": ", 1)[1] for line in lines]


async def test_good_configuration_is_allowed_and_sar_is_never_asked(hooks: Any) -> None:
    client, _webhooks, reviewer, _ = hooks
    status, body = await client.post(CONFIG_PATH, review(GOOD, uid="abc"))
    assert status == 200
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert body["response"] == {"uid": "abc", "allowed": True}
    assert reviewer.access_reviews == []  # the webhooks are not authorized by SAR


async def test_denial_lists_every_problem_exactly_as_check_prints_it(hooks: Any, tmp_path: Path) -> None:
    client, *_ = hooks
    status, body = await client.post(CONFIG_PATH, review(TWO_PROBLEMS))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 422 and response["status"]["reason"] == "Invalid"
    lines = response["status"]["message"].split("\n")
    assert lines == check_lines(tmp_path, TWO_PROBLEMS)
    assert len(lines) == 2
    assert lines[0].startswith("two-problems: spec.metrics[0].metricValue.valueFromExpression: ")
    assert "unknown function 'no_such_function'" in lines[0]
    assert lines[1].startswith("two-problems: spec.metrics[2].metricValue.valueFromExpression: ")


async def test_update_that_breaks_a_configuration_is_denied(hooks: Any) -> None:
    client, *_ = hooks
    status, body = await client.post(CONFIG_PATH, review(TWO_PROBLEMS, operation="UPDATE", old=GOOD))
    assert status == 200 and body["response"]["allowed"] is False


async def test_metadata_only_update_of_a_broken_object_is_allowed_with_warnings(hooks: Any) -> None:
    client, *_ = hooks
    labelled = {**TWO_PROBLEMS, "metadata": {"name": "two-problems", "labels": {"team": "a"}}}
    status, body = await client.post(CONFIG_PATH, review(labelled, operation="UPDATE", old=TWO_PROBLEMS))
    assert status == 200 and body["response"]["allowed"] is True
    assert len(body["response"]["warnings"]) == 2
    gone = {"name": "two-problems", "deletionTimestamp": "2026-01-01T00:00:00Z"}
    deleting = {**TWO_PROBLEMS, "metadata": gone}
    status, body = await client.post(CONFIG_PATH, review(deleting, operation="UPDATE", old=GOOD))
    assert body["response"]["allowed"] is True


async def test_delete_is_allowed_without_an_object(hooks: Any) -> None:
    client, *_ = hooks
    status, body = await client.post(CONFIG_PATH, review(None, operation="DELETE", old=GOOD))
    assert status == 200 and body["response"]["allowed"] is True


async def test_schema_typo_and_family_clash_are_warnings(hooks: Any) -> None:
    client, _w, _r, schemas = hooks
    typo = config("widgets", metric("replicas", valueFromPath=".spec.replica"),
                  {**metric("port", valueFromPath=".spec.ports[*].port"),
                   "labels": [{"key": "port", "valuePath": ".spec.ports[*].port"}]},
                  metric("label", valueFromPath=".spec.labels.team"),
                  metric("sel", valueFromPath=".spec.selector.anything.below"),
                  metric("phase", valueFromPath=".status.phse"),
                  kind="Widget", api_version="example.com/v1")
    status, body = await client.post(CONFIG_PATH, review(typo))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is True
    assert response["warnings"] == [
        "widgets: spec.metrics[0].metricValue.valueFromPath: '.spec.replica': the schema of the target "
        "has no field 'replica' under .spec; did you mean '.spec.replicas'?",
        "widgets: spec.metrics[4].metricValue.valueFromPath: '.status.phse': the schema of the target "
        "has no field 'phse' under .status; did you mean '.status.phase'?",
        "widgets: spec.metrics[0].name: family 'example_com_widget_replicas' is also produced by "
        "configuration 'other' (spec.metrics[0]) and cannot be shared: HELP differs: "
        "'Replicas of the widget' in 'other', 'replicas' in 'widgets'",
    ]
    assert schemas.asked == 1


async def test_slow_schema_source_does_not_hold_the_review(pki: Pki) -> None:
    schemas = FakeSchemas({WIDGET: WIDGET_SCHEMA}, delay=5.0)
    webhooks = AdmissionWebhooks(schemas=schemas, schema_timeout=0.2)
    server, views = await start(pki, webhooks, FakeReviewer())
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context())) as s:
            client = Client(f"https://127.0.0.1:{server.port}", s)
            loop = asyncio.get_running_loop()
            started = loop.time()
            typo = config("w", metric("r", valueFromPath=".spec.replica"), kind="Widget",
                          api_version="example.com/v1")
            status, body = await client.post(CONFIG_PATH, review(typo))
            assert loop.time() - started < 2.0
            assert status == 200 and body["response"] == {"uid": "u-1", "allowed": True}
    finally:
        await server.stop()
        views.close()


async def test_thanos_denials_carry_field_paths(hooks: Any, tmp_path: Path) -> None:
    client, *_ = hooks
    factor = thanos(receive={"router": {"replicationFactor": 3},
                             "ingestors": [{"name": "hard", "replicas": 2, "tenants": ["a"]}]})
    status, body = await client.post(THANOS_PATH, review(factor))
    assert status == 200 and body["response"]["allowed"] is False
    message = body["response"]["status"]["message"]
    assert message.startswith("t: spec.receive.ingestors[0].replicas: 2 is less than "
                              "spec.receive.router.replicationFactor=3")
    assert message.split("\n") == check_lines(tmp_path, factor)
    no_bucket = thanos(storeGateway={})
    status, body = await client.post(THANOS_PATH, review(no_bucket))
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["message"] == (
        "t: spec.storeGateway.objectStorageConfig: required: Thanos store cannot start without an object "
        "storage configuration")
    status, body = await client.post(THANOS_PATH, review(thanos(query={"replicas": 1})))
    assert body["response"]["allowed"] is True


@pytest.mark.parametrize(("body", "content_type", "code", "needle"), [
    (b"{not json", "application/json", 400, "body is not JSON"),
    (b"[1, 2]", "application/json", 400, "must be a JSON object"),
    (json.dumps({"kind": "Pod", "apiVersion": "v1"}).encode(), "application/json", 400,
     "kind must be AdmissionReview"),
    (json.dumps({**review(GOOD), "apiVersion": "admission.k8s.io/v1beta1"}).encode(), "application/json", 400,
     "apiVersion must be admission.k8s.io/v1"),
    (json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}).encode(),
     "application/json", 400, "request: required"),
    (json.dumps(review(GOOD, uid="")).encode(), "application/json", 400, "request.uid"),
    (json.dumps(review({"apiVersion": "v1", "kind": "Pod"})).encode(), "application/json", 400,
     "this webhook validates metrics.appscode.com/v1alpha1 MetricsConfiguration"),
    (json.dumps(review(None)).encode(), "application/json", 400, "request.object: required for CREATE"),
    (json.dumps(review(GOOD)).encode(), "text/plain", 415, "Content-Type must be application/json"),
    (b"x" * (MAX_BODY + 1), "application/json", 413, f"larger than {MAX_BODY} bytes"),
])
async def test_bad_input_is_a_clear_status_never_a_traceback(
    hooks: Any, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str, code: int, needle: str
) -> None:
    client, *_ = hooks
    with caplog.at_level(logging.INFO):
        status, answer = await client.post(CONFIG_PATH, body, content_type=content_type)
    assert status == code
    assert answer["kind"] == "Status" and answer["code"] == code
    assert needle in answer["message"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_wrong_method_is_a_status(hooks: Any) -> None:
    client, *_ = hooks
    async with client.session.get(client.url + CONFIG_PATH) as r:
        assert r.status == 405
        assert (await r.json())["kind"] == "Status"


def test_parse_review_is_pure_and_bounded() -> None:
    parsed = parse_review(json.dumps(review(GOOD, operation="UPDATE", old=GOOD)).encode(),
                          content_type="application/json; charset=utf-8", expect=METRICS_CONFIGURATION)
    assert (parsed.uid, parsed.operation, parsed.user) == ("u-1", "UPDATE", "alice")
    assert parsed.object == GOOD and parsed.old_object == GOOD
    with pytest.raises(BadReview) as err:
        parse_review(json.dumps(review(GOOD)).encode(), content_type="application/json", expect=THANOS)
    assert err.value.code == 400


async def test_allowed_users_policy(pki: Pki) -> None:
    webhooks = AdmissionWebhooks(policy=CallerPolicy(frozenset({"kube-apiserver-webhook"})),
                                 user_of=lambda request: request.get(REQUEST_USER))
    server, views = await start(pki, webhooks, FakeReviewer())
    url = f"https://127.0.0.1:{server.port}{CONFIG_PATH}"
    data = json.dumps(review(GOOD)).encode()
    headers = {"Content-Type": "application/json"}
    try:
        async def call(pair: KeyPair | None) -> tuple[int, dict[str, Any]]:
            connector = aiohttp.TCPConnector(ssl=pki.client_context(pair))
            async with aiohttp.ClientSession(connector=connector) as s, \
                    s.post(url, data=data, headers=headers) as r:
                return r.status, await r.json()

        status, answer = await call(None)
        assert status == 403 and "may not call the admission webhooks" in answer["message"]
        status, answer = await call(new_client_cert(pki.client_ca, common_name="kube-apiserver-webhook"))
        assert status == 200 and answer["response"]["allowed"] is True
        status, answer = await call(new_client_cert(pki.client_ca, common_name="mallory"))
        assert status == 403
    finally:
        await server.stop()
        views.close()


class FakeGetter:
    def __init__(self, answers: Mapping[str, Any]) -> None:
        self.answers, self.paths = answers, []  # type: list[str]

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.paths.append(path)
        await asyncio.sleep(0.01)
        answer = self.answers.get(path)
        if answer is None:
            raise ApiError(404, "NotFound", f"{path} not found")
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


POD_OPENAPI = {"definitions": {"io.k8s.api.core.v1.Pod": {
    "type": "object", "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Pod"}],
    "properties": {"spec": {"type": "object", "properties": {"nodeName": {"type": "string"}}}}}}}


async def test_crd_schemas_cached_shared_and_failures_are_no_schema() -> None:
    now = [0.0]
    getter = FakeGetter({
        "/apis/example.com/v1": {"resources": [{"name": "widgets", "kind": "Widget", "namespaced": True},
                                               {"name": "widgets/status", "kind": "Widget"}]},
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com": {
            "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": WIDGET_SCHEMA}}]}},
        "/apis/broken.io/v1": ApiError(500, "InternalError", "boom"),
        "/openapi/v2": POD_OPENAPI,
    })
    schemas = CrdSchemas(getter, ttl=60, failure_ttl=5, clock=lambda: now[0])
    first, second = await asyncio.gather(schemas.index(WIDGET), schemas.index(WIDGET))
    assert first is second and first is not None
    assert first.schema_for("example.com/v1", "Widget") == WIDGET_SCHEMA
    assert len(getter.paths) == 2  # one discovery + one CRD read for two concurrent reviews
    assert await schemas.index(WIDGET) is first and len(getter.paths) == 2
    now[0] = 61.0
    await schemas.index(WIDGET)
    assert len(getter.paths) == 4  # expired: read again
    pods = await schemas.index(TargetRef("v1", "Pod"))  # native: the OpenAPI v2 document
    assert pods is not None and pods.schema_for("v1", "Pod") is not None
    typo = config("pods", metric("n", valueFromPath=".spec.nodename"), kind="Pod", api_version="v1")
    assert [p.path for p in pods.check(typo)] == ["spec.metrics[0].metricValue.valueFromPath"]
    asked = len(getter.paths)
    assert await schemas.index(TargetRef("v1", "Node")) is None  # not in the document: no schema
    assert len(getter.paths) == asked  # the OpenAPI document is fetched once per TTL
    assert await schemas.index(TargetRef("broken.io/v1", "Thing")) is None
    asked = len(getter.paths)
    assert await schemas.index(TargetRef("broken.io/v1", "Thing")) is None and len(getter.paths) == asked
