"""Validating admission webhooks (``admission.k8s.io/v1`` AdmissionReview) for our two kinds.

The kube-apiserver POSTs an ``AdmissionReview`` to

- ``/validate/metrics.appscode.com/v1alpha1/metricsconfigurations`` and
- ``/validate/monitoring.paodin.io/v1alpha1/thanos``

on the same HTTPS server as the extension API (``apiserver.server``), after the CRD's structural
schema accepted the object. The answer is decided by the pure reviews ``panopticon check`` uses
(``exporter.validation.review_config``, ``thanos_operator.review.review_thanos``): a denial's
message is the lines ``check`` prints for the object without their ``FILE:LINE: `` prefix, one
per line; notes (a path the target's schema cannot have, a family another configuration already
produces) come back as ``warnings``, which kubectl prints as ``Warning: ...``.

Boundary (``parse_review``, pure): the body is bounded (``MAX_BODY``: two objects at etcd's
1.5 MiB request limit plus the review around them; bigger is a 413 before it is read), must be
``application/json`` (else 415), a JSON ``AdmissionReview`` of ``admission.k8s.io/v1`` with a
``request.uid`` and, for CREATE/UPDATE, a ``request.object`` of the webhook's kind (else 400,
each with a message saying what was wrong). An UPDATE that keeps the stored ``spec`` (labels,
finalizers) or of an object being deleted is allowed with its problems as warnings
(``settle``). Every error is a ``metav1.Status``, never a
traceback; the kube-apiserver treats a non-200 as a failed call and applies the webhook's
``failurePolicy``.

Who may call: the SAR authorizer does not apply (the kube-apiserver calls webhooks anonymously
unless ``--admission-control-config-file`` gives it credentials), so these paths are always
allowed there and checked here by ``CallerPolicy``: by default any caller (the answer is a pure
function of the submitted object, and TLS with the ``caBundle`` proves to the kube-apiserver
that it talks to us); with ``--admission-allowed-users`` only those authenticated users (an x509
client certificate from the client CA, or a token, see docs/admission.md).

The request path never calls the kube-apiserver, except for a target's schema: other
configurations come from the exporter's informer (``PlanIndex``), and the target's schema (a
CRD's ``openAPIV3Schema``, or the kube-apiserver's OpenAPI v2 for native kinds) from
``SchemaSource`` (``apiserver.admission_schemas``: cached, bounded by ``schema_timeout``; when it
is slow or fails the review goes on without schema warnings). Path checking itself is
``exporter.schemacheck``, the code behind ``check --schema``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from apiserver.authn import UserInfo
from apiserver.ratelimit import RateLimitedLog
from apiserver.status import StatusError
from exporter.schemacheck import SchemaIndex
from exporter.types import Plan, TargetRef
from exporter.validation import FamilyIndex, review_config
from thanos_operator.review import review_thanos

log = logging.getLogger(__name__)
_errors = RateLimitedLog(log)

ADMISSION_API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 4 * 1024 * 1024  # 2 x etcd's 1.5 MiB object limit (UPDATE: object + oldObject) + the review
MAX_WARNINGS = 50  # kube-apiserver truncates long warning lists anyway; keep the header small

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class GroupKind:
    group: str
    version: str
    kind: str
    resource: str

    @property
    def path(self) -> str:
        return f"/validate/{self.group}/{self.version}/{self.resource}"

    @property
    def webhook_name(self) -> str:
        return f"{self.resource}.{self.group}"


METRICS_CONFIGURATION = GroupKind("metrics.appscode.com", "v1alpha1", "MetricsConfiguration",
                                  "metricsconfigurations")
THANOS = GroupKind("monitoring.paodin.io", "v1alpha1", "Thanos", "thanos")
ADMISSION_PATHS = (METRICS_CONFIGURATION.path, THANOS.path)


class BadReview(StatusError):
    """Input that is not an AdmissionReview we can answer (400, 413 or 415)."""

    def __init__(self, message: str, *, code: int = 400, reason: str | None = None) -> None:
        super().__init__(code, message, reason=reason)


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """The parts of ``AdmissionReview.request`` a validation needs."""

    uid: str
    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    dry_run: bool
    user: str


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"


def parse_review(body: bytes, *, content_type: str, expect: GroupKind) -> AdmissionRequest:
    """Validate one AdmissionReview body (pure); raise ``BadReview`` saying what is wrong."""
    if len(body) > MAX_BODY:
        raise BadReview(f"request body is larger than {MAX_BODY} bytes", code=413,
                        reason="RequestEntityTooLarge")
    if not _is_json(content_type):
        raise BadReview(f"Content-Type must be application/json (got {content_type or 'none'!r})",
                        code=415)
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadReview(f"body is not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise BadReview("body must be a JSON object (an AdmissionReview)")
    kind, api_version = review.get("kind"), review.get("apiVersion")
    if kind != "AdmissionReview":
        raise BadReview(f"kind must be AdmissionReview (got {kind!r})")
    if api_version != ADMISSION_API_VERSION:
        raise BadReview(f"apiVersion must be {ADMISSION_API_VERSION} (got {api_version!r}); "
                        "set admissionReviewVersions: [v1] on the webhook")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("request: required object is missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid: required string is missing")
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise BadReview(f"request.operation: must be CREATE, UPDATE, DELETE or CONNECT (got {operation!r})")
    obj, old = request.get("object"), request.get("oldObject")
    if operation in ("CREATE", "UPDATE"):
        if not isinstance(obj, dict):
            raise BadReview(f"request.object: required for {operation}")
        got = (obj.get("apiVersion"), obj.get("kind"))
        want = (f"{expect.group}/{expect.version}", expect.kind)
        if got != want:
            raise BadReview(f"request.object: this webhook validates {want[0]} {want[1]} "
                            f"(got {got[0]!r} {got[1]!r}); check the webhook's rules")
    if old is not None and not isinstance(old, dict):
        raise BadReview("request.oldObject: must be an object or null")
    user_info = request.get("userInfo")
    user = user_info.get("username", "") if isinstance(user_info, dict) else ""
    return AdmissionRequest(
        uid=uid,
        operation=operation,
        object=obj if isinstance(obj, dict) else None,
        old_object=old if isinstance(old, dict) else None,
        dry_run=request.get("dryRun") is True,
        user=user if isinstance(user, str) else "",
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.problems


def settle(request: AdmissionRequest, verdict: Verdict) -> Verdict:
    """An UPDATE that leaves ``spec`` as stored, or of an object being deleted, is never refused.

    Otherwise an object stored before the webhook existed (or while it was down) could not have
    its labels or finalizers changed, and its deletion could hang on a finalizer; its problems
    come back as warnings instead. Pure.
    """
    if verdict.allowed or request.operation != "UPDATE" or request.old_object is None:
        return verdict
    obj, old = request.object or {}, request.old_object
    meta = obj.get("metadata")
    deleting = isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))
    if deleting or obj.get("spec") == old.get("spec"):
        return Verdict(problems=(), warnings=verdict.problems + verdict.warnings)
    return verdict


def review_response(uid: str, verdict: Verdict) -> dict[str, Any]:
    """The ``AdmissionReview`` answer (pure). Denials: 422 Invalid, one problem per line."""
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {
            "metadata": {},
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": "\n".join(verdict.problems),
        }
    if verdict.warnings:
        warnings = list(verdict.warnings[:MAX_WARNINGS])
        if len(verdict.warnings) > MAX_WARNINGS:
            warnings.append(f"... and {len(verdict.warnings) - MAX_WARNINGS} more")
        response["warnings"] = warnings
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


class PlanIndex(Protocol):
    """The compiled configurations the exporter holds (its informer's view of the cluster)."""

    def __call__(self) -> Iterable[Plan]: ...


class SchemaSource(Protocol):
    """A ``SchemaIndex`` holding a target kind's schema (``None``: unknown or not reachable)."""

    async def index(self, target: TargetRef) -> SchemaIndex | None: ...


@dataclass(frozen=True, slots=True)
class CallerPolicy:
    """Who may call the webhooks: anybody (empty ``allowed_users``) or only the users named."""

    allowed_users: frozenset[str] = frozenset()

    def check(self, user: UserInfo | None) -> None:
        if not self.allowed_users:
            return
        name = user.name if user is not None else "system:anonymous"
        if name not in self.allowed_users:
            raise StatusError(403, f'User "{name}" may not call the admission webhooks '
                              "(--admission-allowed-users)")


class AdmissionTelemetry:
    """``panopticon_admission_reviews_total{webhook,result}`` and their latency."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.reviews = Counter("panopticon_admission_reviews", "Admission reviews answered",
                               ["webhook", "result"], registry=registry)
        self.seconds = Histogram("panopticon_admission_review_duration_seconds",
                                 "Time to answer one admission review", ["webhook"], registry=registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

    def observe(self, webhook: str, result: str, seconds: float) -> None:
        self.reviews.labels(webhook, result).inc()
        self.seconds.labels(webhook).observe(seconds)


def _no_plans() -> Iterable[Plan]:
    return ()


class AdmissionWebhooks:
    """The two webhook handlers; ``routes()`` is what ``apiserver.server.build_app`` mounts."""

    def __init__(
        self,
        *,
        plans: PlanIndex = _no_plans,
        schemas: SchemaSource | None = None,
        policy: CallerPolicy | None = None,
        schema_timeout: float = 1.0,
        telemetry: AdmissionTelemetry | None = None,
        user_of: Callable[[web.Request], UserInfo | None] = lambda _r: None,
    ) -> None:
        self._plans = plans
        self._schemas = schemas
        self._policy = policy or CallerPolicy()
        self._schema_timeout = schema_timeout
        self._telemetry = telemetry
        self._user_of = user_of
        # (plan ids, the plans themselves - so no id is reused while cached -, their index)
        self._index: tuple[tuple[int, ...], list[Plan], FamilyIndex] = ((), [], FamilyIndex(()))

    @property
    def paths(self) -> Sequence[str]:
        return ADMISSION_PATHS

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", METRICS_CONFIGURATION.path, self.metricsconfigurations),
                ("POST", THANOS.path, self.thanos)]

    async def metricsconfigurations(self, request: web.Request) -> web.Response:
        return await self._serve(request, METRICS_CONFIGURATION, self.review_config)

    async def thanos(self, request: web.Request) -> web.Response:
        return await self._serve(request, THANOS, self.review_thanos)

    async def review_config(self, request: AdmissionRequest) -> Verdict:
        obj = request.object
        if obj is None:  # DELETE / CONNECT: nothing to validate
            return Verdict()
        schemas = await self._target_schemas(obj)
        review = review_config(obj, others=self._family_index(), schemas=schemas)
        return Verdict(problems=tuple(review.problem_lines), warnings=tuple(review.warning_lines))

    def _family_index(self) -> FamilyIndex:
        """The index of the current plans, rebuilt only when the set of plan objects changed."""
        plans = list(self._plans())
        key = tuple(id(p) for p in plans)
        if key != self._index[0]:
            self._index = (key, plans, FamilyIndex(plans))
        return self._index[2]

    async def review_thanos(self, request: AdmissionRequest) -> Verdict:
        if request.object is None:
            return Verdict()
        return Verdict(problems=tuple(review_thanos(request.object).problem_lines))

    async def _target_schemas(self, obj: Mapping[str, Any]) -> SchemaIndex | None:
        if self._schemas is None:
            return None
        spec = obj.get("spec")
        ref = spec.get("targetRef") if isinstance(spec, Mapping) else None
        if not isinstance(ref, Mapping):
            return None
        api_version, kind = ref.get("apiVersion"), ref.get("kind")
        if not (isinstance(api_version, str) and isinstance(kind, str) and api_version and kind):
            return None
        try:
            return await asyncio.wait_for(self._schemas.index(TargetRef(api_version, kind)),
                                          timeout=self._schema_timeout)
        except TimeoutError:
            _errors.log(logging.WARNING, "admission: the schema of %s %s took longer than %.1fs; "
                        "reviewing without it", api_version, kind, self._schema_timeout)
            return None

    async def _serve(self, request: web.Request, expect: GroupKind,
                     decide: Callable[[AdmissionRequest], Awaitable[Verdict]]) -> web.Response:
        started = time.perf_counter()
        result = "error"
        try:
            self._policy.check(self._user_of(request))
            body = await _read_bounded(request)
            parsed = parse_review(body, content_type=request.headers.get("Content-Type", ""), expect=expect)
            verdict = settle(parsed, await decide(parsed))
            result = "allowed" if verdict.allowed else "denied"
            return web.Response(body=orjson.dumps(review_response(parsed.uid, verdict)),
                                content_type="application/json")
        except StatusError as exc:
            _errors.log(logging.INFO, "admission %s: %d %s", expect.webhook_name, exc.code,
                        exc.body.get("message", ""))
            raise
        finally:
            if self._telemetry is not None:
                self._telemetry.observe(expect.webhook_name, result, time.perf_counter() - started)


async def _read_bounded(request: web.Request) -> bytes:
    """The body, refusing (413) more than ``MAX_BODY`` bytes without buffering them."""
    too_large = BadReview(f"request body is larger than {MAX_BODY} bytes", code=413,
                          reason="RequestEntityTooLarge")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
