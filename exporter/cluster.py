"""The live exporter: MetricsConfigurations and their target objects from a real cluster.

Flow:

    MetricsConfiguration (informer) --compile--> Plan --discovery--> resource (plural, scope)
        --> Binding: one shared informer per watched collection --> MetricsStore[config][uid]
    status <-- conditions, observedGeneration, resolved resource, object and series counts

A *binding* ties one compiled plan to the collections it watches (one per namespace with
``--namespaces``, else cluster-wide) and to a namespace filter (``--namespace-selector``). It
is built whenever any of the three changes (spec, resolved resource, selected namespaces) and
swapped in atomically: the new binding joins the shared informers, which hand it the complete
current set of objects (``replay``), object by object while the LIST decodes; each is rendered
at once into the plan's next state (``MetricsStore.build_plan``) and dropped. Once every
collection has replayed, the store switches to that state in one step (``commit``), buffered
events are applied, and only then is the old binding detached. Scrapes never see a
half-rendered configuration and no series disappears during a config update.

Configurations that do not compile (``CompileError``), whose kind is not served
(``TargetNotFound``: kept pending, re-resolved when CustomResourceDefinitions change, or every
``resolve_interval`` when CRDs cannot be watched), or that clash with another configuration
export nothing and say why in ``status``; everything else keeps being served.

Everything runs on one event loop: informer handlers are synchronous and the store is not
locked (see ``exporter.store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, Gauge

from exporter.store import DuplicateFamilyError, MetricsStore, PlanBuilder
from exporter.types import Plan
from kube.client import ApiError, Forbidden, KubeClient, NotFound
from kube.conditions import now_rfc3339, set_condition
from kube.discovery import TARGET_NOT_FOUND, VERSION_FALLBACK, Discovery, ResolvedResource
from kube.informer import Informer, InformerRegistry, WatchTarget
from kube.paths import resource_path
from kube.sharding import pod_ordinal, shard_filter
from kube.telemetry import PrometheusInformerTelemetry
from kube.workqueue import RetryPolicy, WorkQueue

log = logging.getLogger(__name__)

CONFIG_GROUP, CONFIG_VERSION, CONFIG_RESOURCE = "metrics.appscode.com", "v1alpha1", "metricsconfigurations"
CONFIGS = WatchTarget(group=CONFIG_GROUP, version=CONFIG_VERSION, resource=CONFIG_RESOURCE)
CRDS = WatchTarget(group="apiextensions.k8s.io", version="v1", resource="customresourcedefinitions")

# Reasons of the Ready condition.
COMPILED = "Compiled"
COMPILE_ERROR = "CompileError"
SYNCING = "Syncing"
LIST_ERROR = "ListError"


class Compiler(Protocol):
    def __call__(self, config: Mapping[str, Any]) -> Plan: ...


def default_compiler(config: Mapping[str, Any]) -> Plan:
    from exporter.compiler import compile_config

    return compile_config(config)


RECONCILE_RETRY = RetryPolicy(initial=2.0, maximum=60.0)


@dataclass(frozen=True)
class ExporterOptions:
    namespaces: tuple[str, ...] = ()
    namespace_selector: str = ""
    shard: int = 0
    total_shards: int = 1
    status_interval: float = 3.0  # at most one status write per configuration this often
    resolve_interval: float = 30.0  # re-resolve pending kinds this often even without CRD events
    page_size: int = 500
    watch_timeout: int = 300
    retry: RetryPolicy = RECONCILE_RETRY  # failed reconcile passes, per configuration
    write_status: bool = True
    # Configurations from local files instead of the CRD (sidecar with a namespaced Role: it may
    # not list cluster-scoped MetricsConfigurations). They have no status to write.
    static_configs: tuple[Mapping[str, Any], ...] = ()
    # Automatic sharding (--pod): this pod's ordinal is the shard; the StatefulSet's replicas,
    # watched, the number of shards. Scaling the StatefulSet re-shards without a restart.
    statefulset: str = ""
    statefulset_namespace: str = ""


def compile_message(err: Exception) -> str:
    problems = getattr(err, "problems", None)
    if problems:
        return "; ".join(str(p) for p in problems)
    return f"{type(err).__name__}: {err}"


def config_status(
    *,
    previous: list[dict[str, Any]] | None,
    generation: int | None,
    ready: str,
    reason: str,
    message: str,
    resource: ResolvedResource | None,
    objects: int,
    series: int,
    now: str,
) -> dict[str, Any]:
    """The ``status`` of one MetricsConfiguration (pure; ``now`` only used on transitions)."""
    return {
        "observedGeneration": generation,
        "conditions": set_condition(
            previous, type_="Ready", status=ready, reason=reason, message=message,
            observed_generation=generation, now=now,
        ),
        "resolvedResource": None if resource is None else {
            "group": resource.group, "version": resource.version, "resource": resource.resource,
            "kind": resource.kind, "namespaced": resource.namespaced,
        },
        "objects": objects,
        "series": series,
    }


class Binding:
    """One plan wired to its collections; buffers until every collection has replayed."""

    def __init__(
        self,
        owner: ClusterExporter,
        *,
        name: str,
        plan: Plan,
        resource: ResolvedResource,
        targets: tuple[WatchTarget, ...],
        namespace_ok: Callable[[str], bool] | None,
    ) -> None:
        self.owner = owner
        self.name = name
        self.plan = plan
        self.resource = resource
        self.targets = targets
        self.namespace_ok = namespace_ok
        self.key = owner.binding_key(plan, resource, targets)
        self.registry: InformerRegistry | None = None
        self.live = False
        self.closed = False
        self._pending = set(targets)
        self.builder: PlanBuilder = owner.store.build_plan(plan)
        self._buffer: list[tuple[str, dict[str, Any]]] = []
        self._handlers: dict[WatchTarget, Callable[[str, dict[str, Any]], None]] = {}

    def start(self, registry: InformerRegistry) -> None:
        self.registry = registry
        for target in self.targets:
            handler = self._handler_for(target)
            self._handlers[target] = handler
            registry.acquire(target, handler, replay=self._replay_for(target))

    async def stop(self) -> None:
        self.closed = True
        for target, handler in self._handlers.items():
            if self.registry is not None:
                await self.registry.release(target, handler)
        self._handlers.clear()

    def informers(self) -> list[Informer]:
        if self.registry is None:
            return []
        return [i for t in self.targets if (i := self.registry.get(t)) is not None]

    def _handler_for(self, target: WatchTarget) -> Callable[[str, dict[str, Any]], None]:
        def handle(event_type: str, obj: dict[str, Any]) -> None:
            if self.closed:
                return
            if self.live:
                self.owner.apply_event(self, event_type, obj)
            else:
                self._buffer.append((event_type, obj))

        return handle

    def _replay_for(self, target: WatchTarget) -> _TargetReplay:
        return _TargetReplay(self, target)

    def replayed(self, target: WatchTarget) -> None:
        self._pending.discard(target)
        if not self._pending:
            buffered, self._buffer = self._buffer, []
            self.owner.activate(self, buffered)


class _TargetReplay:
    """One collection's replay into its binding's next plan state (``kube.informer.ReplayStream``)."""

    def __init__(self, binding: Binding, target: WatchTarget) -> None:
        self.binding = binding
        self.target = target
        self._uids: list[str] = []  # this attempt's objects, to forget if the LIST fails

    def _wanted(self) -> bool:
        return not self.binding.closed and self.target in self.binding._pending

    def item(self, obj: dict[str, Any]) -> None:
        ok = self.binding.namespace_ok
        if self._wanted() and (ok is None or ok(_namespace(obj))):
            self._uids.append(self.binding.builder.add(obj))

    def done(self) -> None:
        self._uids = []
        if self._wanted():
            self.binding.replayed(self.target)

    def abort(self) -> None:
        uids, self._uids = self._uids, []
        for uid in uids:
            self.binding.builder.discard(uid)


def _namespace(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("namespace") or "") if isinstance(meta, Mapping) else ""


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("uid") or "") if isinstance(meta, Mapping) else ""


@dataclass
class ConfigState:
    name: str
    raw: dict[str, Any] | None = None
    spec_key: bytes = b""
    plan: Plan | None = None
    resolution_reason: str = ""
    resolution_message: str = ""
    resource: ResolvedResource | None = None
    error_reason: str = ""  # COMPILE_ERROR or TARGET_NOT_FOUND (nothing exported)
    error_message: str = ""
    binding: Binding | None = None  # the live one
    next_binding: Binding | None = None  # being synced, replaces ``binding`` on activation
    written: dict[str, Any] | None = None
    written_at: float = 0.0
    conditions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def generation(self) -> int | None:
        meta = (self.raw or {}).get("metadata") or {}
        gen = meta.get("generation")
        return int(gen) if isinstance(gen, int) else None

    @property
    def active(self) -> bool:
        """Should be exporting (compiled, resolved, no clash)."""
        return self.plan is not None and self.resource is not None and not self.error_reason


class ConfigTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ready = Gauge(
            "panopticon_configuration_ready",
            "1 when a MetricsConfiguration is exporting, 0 otherwise; reason as in its Ready condition.",
            ["configuration", "reason"], registry=registry,
        )
        self.status_writes = Gauge(
            "panopticon_configuration_status_writes",
            "Status writes per configuration since start.", ["configuration", "result"], registry=registry,
        )
        self._reasons: dict[str, str] = {}

    def set(self, name: str, *, ready: bool, reason: str) -> None:
        old = self._reasons.get(name)
        if old is not None and old != reason:
            with contextlib.suppress(KeyError):
                self.ready.remove(name, old)
        self._reasons[name] = reason
        self.ready.labels(name, reason).set(1 if ready else 0)

    def forget(self, name: str) -> None:
        old = self._reasons.pop(name, None)
        if old is not None:
            with contextlib.suppress(KeyError):
                self.ready.remove(name, old)

    def wrote(self, name: str, *, ok: bool) -> None:
        self.status_writes.labels(name, "success" if ok else "error").inc()


class ClusterExporter:
    """Keeps ``store`` equal to what every MetricsConfiguration renders from the cluster."""

    def __init__(
        self,
        client: KubeClient,
        store: MetricsStore,
        *,
        options: ExporterOptions | None = None,
        compiler: Compiler = default_compiler,
    ) -> None:
        self.client = client
        self.store = store
        self.options = options or ExporterOptions()
        self._compiler = compiler
        registry = store.telemetry.registry
        self._informer_telemetry = PrometheusInformerTelemetry(registry)
        self.telemetry = ConfigTelemetry(registry)
        self._shard_ordinal = Gauge("panopticon_shard_ordinal", "This instance's shard (0-based).",
                                    registry=registry)
        self._total_shards = Gauge("panopticon_total_shards", "Number of shards objects are spread over.",
                                   registry=registry)
        self._shard_ordinal.set(self.options.shard)
        self._total_shards.set(self.options.total_shards)
        self._sts_informer: Informer | None = None
        self.discovery = Discovery(client)
        self.registry = self._make_registry(self.options.shard, self.options.total_shards)
        self.configs: dict[str, ConfigState] = {}
        self._config_informer: Informer | None = None
        self._crd_informer: Informer | None = None
        self._ns_informer: Informer | None = None
        self._selected_namespaces: set[str] = set()
        self.queue: WorkQueue[str] = WorkQueue(self._process, name="configuration", retry=self.options.retry)
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._resolve_all_scheduled = False
        self._watch_crds = True
        self._synced_once = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background (from synchronous handlers), keeping a reference."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _make_registry(self, shard: int, total: int) -> InformerRegistry:
        return InformerRegistry(
            self.client,
            telemetry=self._informer_telemetry,
            keep=shard_filter(shard, total),
            page_size=self.options.page_size,
            watch_timeout=self.options.watch_timeout,
        )

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.options.namespace_selector:
            self._ns_informer = Informer(
                self.client,
                WatchTarget(group="", version="v1", resource="namespaces",
                            label_selector=self.options.namespace_selector),
                telemetry=self._informer_telemetry,
            )
            self._ns_informer.add_handler(self._on_namespace)
            self._ns_informer.start()
            await self._ns_informer.wait_synced()
        if self.options.statefulset:
            self._sts_informer = Informer(
                self.client,
                WatchTarget(group="apps", version="v1", resource="statefulsets",
                            namespace=self.options.statefulset_namespace,
                            field_selector=f"metadata.name={self.options.statefulset}"),
                telemetry=self._informer_telemetry,
            )
            self._sts_informer.add_handler(self._on_statefulset)
            self._sts_informer.start()
        self._crd_informer = Informer(self.client, CRDS, telemetry=self._informer_telemetry)
        self._crd_informer.add_handler(self._on_crd)
        self._crd_informer.start()
        if self.options.static_configs:
            for doc in self.options.static_configs:
                self._on_config("ADDED", dict(doc))
        else:
            self._config_informer = Informer(self.client, CONFIGS, telemetry=self._informer_telemetry)
            self._config_informer.add_handler(self._on_config)
            self._config_informer.start()
        self.queue.start()
        self._tasks = [asyncio.create_task(self._periodic(), name="exporter status+resolve")]

    async def stop(self) -> None:
        await self.queue.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for informer in (self._config_informer, self._crd_informer, self._ns_informer, self._sts_informer):
            if informer is not None:
                await informer.stop()
        await self.registry.stop()

    def ready(self) -> bool:
        """Every exporting configuration's informers have replayed into the store.

        Before the first time that holds, also: the configurations are listed and processed.
        Afterwards, a configuration being re-bound (spec update) keeps serving its previous
        binding and does not make the process unready; a new one does until it has synced.
        """
        if not self._synced_once:
            if not self.options.static_configs and (
                self._config_informer is None or not self._config_informer.has_synced
            ):
                return False
            if not self.queue.idle:
                return False
        ready = all(s.binding is not None for s in self.configs.values() if s.active)
        self._synced_once = self._synced_once or ready
        return ready

    # ---- informer handlers (synchronous, on the loop) ----------------------------------------
    def _on_config(self, event_type: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        state = self.configs.setdefault(name, ConfigState(name))
        if event_type == "DELETED":
            state.raw = None
        else:
            state.raw = obj
            conditions = (obj.get("status") or {}).get("conditions")
            if state.written is None and isinstance(conditions, list):
                state.conditions = conditions
        self._enqueue(name)

    def _on_crd(self, event_type: str, obj: dict[str, Any]) -> None:
        # A CRD appeared, changed its served versions, or went away: discovery is stale.
        if not self._resolve_all_scheduled:
            self._resolve_all_scheduled = True
            asyncio.get_running_loop().call_later(0.2, self._resolve_all)

    def _on_namespace(self, event_type: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        before = set(self._selected_namespaces)
        if event_type == "DELETED":
            self._selected_namespaces.discard(name)
        else:
            self._selected_namespaces.add(name)
        if before != self._selected_namespaces:
            for config in self.configs:
                self._enqueue(config)

    def _on_statefulset(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            return
        replicas = (obj.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 1:
            return
        if self.options.shard >= replicas:
            log.warning("StatefulSet scaled to %d replicas: shard %d is going away; keeping %d of %d",
                        replicas, self.options.shard, self.options.shard, self.options.total_shards)
            return
        self.reshard(self.options.shard, replicas)

    def reshard(self, shard: int, total_shards: int) -> None:
        """Switch to another shard assignment; every configuration re-binds (atomic swaps)."""
        if (shard, total_shards) == (self.options.shard, self.options.total_shards):
            return
        log.info("re-sharding: shard %d of %d (was %d of %d)", shard, total_shards,
                 self.options.shard, self.options.total_shards)
        shard_filter(shard, total_shards)  # validates before anything changes
        self.options = dataclasses.replace(self.options, shard=shard, total_shards=total_shards)
        old = self.registry
        self.registry = self._make_registry(shard, total_shards)
        self._shard_ordinal.set(shard)
        self._total_shards.set(total_shards)
        for name in self.configs:
            self._enqueue(name)
        # The old registry's informers stop when the last old binding is released; stop it for
        # good once nothing refers to it any more.
        self._spawn(self._retire(old))

    async def _retire(self, registry: InformerRegistry) -> None:
        while any(b is not None and b.registry is registry
                  for s in self.configs.values() for b in (s.binding, s.next_binding)):
            await asyncio.sleep(0.5)
        await registry.stop()

    def _resolve_all(self) -> None:
        self._resolve_all_scheduled = False
        self.discovery.invalidate()
        for name in self.configs:
            self._enqueue(name)

    def _enqueue(self, name: str) -> None:
        self.queue.add(name)

    # ---- reconcile -----------------------------------------------------------------------------
    async def _process(self, name: str) -> None:
        await self.reconcile(name)

    def binding_key(
        self, plan: Plan, resource: ResolvedResource, targets: tuple[WatchTarget, ...]
    ) -> tuple[Any, ...]:
        """What a binding depends on; a different key means re-binding (and an atomic swap)."""
        return (id(plan), resource, targets, self.namespace_filter_key(), id(self.registry))

    def namespace_filter_key(self) -> tuple[str, ...] | None:
        if not self.options.namespace_selector:
            return None
        return tuple(sorted(self._selected_namespaces))

    def _namespace_ok(self) -> Callable[[str], bool] | None:
        if not self.options.namespace_selector:
            return None
        selected = frozenset(self._selected_namespaces)

        def ok(namespace: str) -> bool:
            return namespace == "" or namespace in selected

        return ok

    def _targets(self, resource: ResolvedResource) -> tuple[WatchTarget, ...]:
        base = dict(group=resource.group, version=resource.version, resource=resource.resource)
        if resource.namespaced and self.options.namespaces:
            return tuple(WatchTarget(**base, namespace=ns) for ns in sorted(set(self.options.namespaces)))
        return (WatchTarget(**base),)

    async def reconcile(self, name: str) -> None:
        state = self.configs.get(name)
        if state is None:
            return
        if state.raw is None:
            await self._teardown(state)
            self.configs.pop(name, None)
            self.telemetry.forget(name)
            # A clash may have been resolved by this deletion.
            for other in self.configs.values():
                if other.error_reason == COMPILE_ERROR and other.plan is not None:
                    self._enqueue(other.name)
            return
        spec_key = orjson.dumps(state.raw.get("spec"), option=orjson.OPT_SORT_KEYS)
        if spec_key != state.spec_key or (state.plan is not None and state.error_reason == COMPILE_ERROR):
            state.spec_key = spec_key
            try:
                state.plan = self._compiler(state.raw)
            except Exception as err:
                state.plan = None
                await self._fail(state, COMPILE_ERROR, compile_message(err))
                return
        if state.plan is None:
            return  # still the same spec that did not compile
        target = state.plan.target
        resolution = await self.discovery.resolve(
            group=target.group, version=target.version, kind=target.kind
        )
        state.resolution_reason, state.resolution_message = resolution.reason, resolution.message
        if resolution.resource is None:
            state.resource = None
            await self._fail(state, TARGET_NOT_FOUND, resolution.message)
            return
        state.resource = resolution.resource
        state.error_reason = state.error_message = ""
        self._bind(state)

    def _bind(self, state: ConfigState) -> None:
        assert state.plan is not None and state.resource is not None
        targets = self._targets(state.resource)
        key = self.binding_key(state.plan, state.resource, targets)
        current = state.next_binding or state.binding
        if current is not None and current.key == key:
            return
        if state.next_binding is not None:
            self._spawn(state.next_binding.stop())
        binding = Binding(
            self, name=state.name, plan=state.plan, resource=state.resource, targets=targets,
            namespace_ok=self._namespace_ok(),
        )
        state.next_binding = binding
        binding.start(self.registry)

    async def _fail(self, state: ConfigState, reason: str, message: str) -> None:
        state.error_reason, state.error_message = reason, message
        log.warning("configuration %s: %s: %s", state.name, reason, message)
        await self._teardown(state)

    async def _teardown(self, state: ConfigState) -> None:
        for binding in (state.next_binding, state.binding):
            if binding is not None:
                await binding.stop()
        state.binding = state.next_binding = None
        self.store.remove_plan(state.name)

    # ---- called by bindings (synchronously, inside an informer's task) -----------------------
    def activate(self, binding: Binding, buffered: list[tuple[str, dict[str, Any]]]) -> None:
        state = self.configs.get(binding.name)
        if state is None or state.next_binding is not binding:
            return
        started = time.perf_counter()
        objects = len(binding.builder)
        try:
            binding.builder.commit()
        except DuplicateFamilyError as err:
            state.next_binding = None
            state.error_reason, state.error_message = COMPILE_ERROR, str(err)
            self._spawn(self._teardown_binding(binding, state))
            return
        binding.live = True
        for event_type, obj in buffered:
            self.apply_event(binding, event_type, obj)
        log.info("configuration %s: %d objects of %s swapped in in %.3fs", binding.name, objects,
                 binding.resource.resource, time.perf_counter() - started)
        old, state.binding, state.next_binding = state.binding, binding, None
        if old is not None:
            self._spawn(old.stop())

    async def _teardown_binding(self, binding: Binding, state: ConfigState) -> None:
        await binding.stop()
        if state.binding is not None:
            await state.binding.stop()
            state.binding = None
            self.store.remove_plan(state.name)

    def apply_event(self, binding: Binding, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.store.delete(binding.name, _uid(obj))
        elif binding.namespace_ok is None or binding.namespace_ok(_namespace(obj)):
            self.store.upsert(binding.name, obj)

    # ---- status --------------------------------------------------------------------------------
    def desired_status(self, state: ConfigState) -> dict[str, Any]:
        objects = series = 0
        for config, n_objects, n_series in self.store.stats():
            if config == state.name:
                objects, series = n_objects, n_series
        if state.error_reason:
            ready, reason, message = "False", state.error_reason, state.error_message
        elif state.binding is None:
            informers = state.next_binding.informers() if state.next_binding else []
            errors = [f"{i.target}: {i.last_error}" for i in informers if i.last_error]
            if errors:
                ready, reason, message = "False", LIST_ERROR, "; ".join(errors)
            else:
                ready, reason, message = "Unknown", SYNCING, "listing target objects"
        elif state.resolution_reason == VERSION_FALLBACK:
            ready, reason, message = "True", VERSION_FALLBACK, state.resolution_message
        else:
            assert state.plan is not None and state.resource is not None
            # Never an empty message: kube-apiserver 1.20's JSON merge patch turns "" inside a
            # list into null, which the schema then rejects.
            resource = f"{state.resource.api_version} {state.resource.resource}"
            message = f"{len(state.plan.families)} families from {resource}"
            ready, reason = "True", COMPILED
        self.telemetry.set(state.name, ready=ready == "True", reason=reason)
        previous = state.written["conditions"] if state.written else state.conditions
        return config_status(
            previous=previous, generation=state.generation, ready=ready, reason=reason, message=message,
            resource=state.resource,
            objects=objects, series=series, now=now_rfc3339(),
        )

    async def write_statuses(self, *, force: bool = False) -> None:
        now = time.monotonic()
        for state in list(self.configs.values()):
            if state.raw is None or (state.plan is None and not state.error_reason):
                continue
            desired = self.desired_status(state)
            if desired == state.written:
                continue
            if not force and now - state.written_at < self.options.status_interval:
                continue
            if not self.options.write_status or self.options.static_configs:
                state.written, state.written_at = desired, now
                continue
            path = resource_path(group=CONFIG_GROUP, version=CONFIG_VERSION, resource=CONFIG_RESOURCE,
                                 name=state.name, subresource="status")
            state.written_at = now
            try:
                await self.client.patch(path, {"status": desired})
            except NotFound as err:
                self.telemetry.wrote(state.name, ok=False)
                log.debug("configuration %s: no status subresource (%s)", state.name, err)
                continue
            except ApiError as err:
                self.telemetry.wrote(state.name, ok=False)
                log.warning("configuration %s: status write failed: %s", state.name, err)
                continue
            except (OSError, TimeoutError) as err:
                self.telemetry.wrote(state.name, ok=False)
                log.warning("configuration %s: status write failed: %s", state.name, err)
                continue
            self.telemetry.wrote(state.name, ok=True)
            state.written = desired

    async def _periodic(self) -> None:
        last_resolve = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, self.options.status_interval))
            try:
                await self.write_statuses()
            except Exception:
                log.exception("status writer failed")
            crds = self._crd_informer
            if crds is not None and not crds.has_synced and isinstance(crds.last_exception, Forbidden):
                log.warning("cannot watch CustomResourceDefinitions (%s); re-resolving pending kinds "
                            "every %.0fs instead", crds.last_error, self.options.resolve_interval)
                self._watch_crds = False
                self._crd_informer = None
                await crds.stop()
            if time.monotonic() - last_resolve >= self.options.resolve_interval:
                last_resolve = time.monotonic()
                pending = [s.name for s in self.configs.values() if s.error_reason == TARGET_NOT_FOUND]
                if pending or not self._watch_crds:
                    self.discovery.invalidate()
                    for name in pending:
                        self._enqueue(name)


async def shard_from_pod(client: KubeClient, *, pod: str, namespace: str) -> tuple[int, int]:
    """(shard, total shards) from a StatefulSet pod: its ordinal and the set's replicas."""
    shard, total, _ = await statefulset_of_pod(client, pod=pod, namespace=namespace)
    return shard, total


async def statefulset_of_pod(client: KubeClient, *, pod: str, namespace: str) -> tuple[int, int, str]:
    """(ordinal, replicas, StatefulSet name) of a StatefulSet pod."""
    ordinal = pod_ordinal(pod)
    pod_obj = await client.get(
        resource_path(group="", version="v1", resource="pods", namespace=namespace, name=pod)
    )
    refs = (pod_obj.get("metadata") or {}).get("ownerReferences") or ()
    owners = [o for o in refs if o.get("kind") == "StatefulSet"]
    if not owners:
        raise ValueError(f"pod {namespace}/{pod} is not owned by a StatefulSet")
    sts = await client.get(resource_path(
        group="apps", version="v1", resource="statefulsets", namespace=namespace, name=owners[0]["name"]
    ))
    replicas = int((sts.get("spec") or {}).get("replicas", 1))
    if ordinal >= replicas:
        raise ValueError(f"pod ordinal {ordinal} >= StatefulSet replicas {replicas}")
    return ordinal, replicas, str(owners[0]["name"])


__all__ = [
    "ClusterExporter",
    "ExporterOptions",
    "config_status",
    "shard_from_pod",
    "statefulset_of_pod",
]
