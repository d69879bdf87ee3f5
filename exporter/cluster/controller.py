"""The live exporter's controller: MetricsConfigurations in, bindings and status out (I/O).

Informers on MetricsConfigurations (or configurations from files), on Namespaces (with
``--namespace-selector``), on CustomResourceDefinitions (``resolution``) and on the own
StatefulSet (``sharding``) only put configuration names into one ``kube.workqueue.WorkQueue``;
a single worker reconciles one name at a time: compile when the spec changed, resolve the
target kind through discovery, and re-bind when the plan, the resolved resource, the
selected namespaces or the shard assignment changed (``binding``). A periodic loop writes
status (``status_writer``) and drives re-resolution. ``ready()`` is what ``/readyz`` asks.

Everything runs on one event loop: informer handlers are synchronous and the store is not
locked (see ``exporter.store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from exporter.cluster.binding import Binding, Event, namespace_of, uid_of
from exporter.cluster.events import EventRecorder
from exporter.cluster.options import ExporterOptions
from exporter.cluster.resolution import Reresolution
from exporter.cluster.schemas import LiveSchemas
from exporter.cluster.sharding import StatefulSetWatch
from exporter.cluster.state import (
    COMPILE_ERROR,
    UNKNOWN_PATH,
    Compiler,
    ConfigState,
    PathCheck,
    compile_message,
    default_compiler,
)
from exporter.cluster.status import desired_status, path_check, ready_condition
from exporter.cluster.status_writer import CONFIG_GROUP, CONFIG_RESOURCE, CONFIG_VERSION, StatusWriter
from exporter.cluster.telemetry import ConfigTelemetry, ShardTelemetry
from exporter.scoping import Scope
from exporter.store import DuplicateFamilyError, MetricsStore
from exporter.types import Plan
from kube.client import KubeClient
from kube.conditions import now_rfc3339
from kube.discovery import TARGET_NOT_FOUND, Discovery, ResolvedResource
from kube.informer import Informer, InformerRegistry, WatchTarget
from kube.sharding import shard_filter
from kube.telemetry import PrometheusInformerTelemetry
from kube.workqueue import WorkQueue

log = logging.getLogger(__name__)

CONFIGS = WatchTarget(group=CONFIG_GROUP, version=CONFIG_VERSION, resource=CONFIG_RESOURCE)


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
        self._shard_telemetry = ShardTelemetry(registry)
        self._shard_telemetry.set(self.options.shard, self.options.total_shards)
        self.discovery = Discovery(client)
        self.schemas = LiveSchemas(client)
        self.registry = self._make_registry(self.options.shard, self.options.total_shards)
        self.configs: dict[str, ConfigState] = {}
        self.queue: WorkQueue[str] = WorkQueue(self.reconcile, name="configuration", retry=self.options.retry)
        self.resolution = Reresolution(
            client=client, discovery=self.discovery, resolve_all=self._resolve_all, pending=self._pending,
            enqueue=self.queue.add, interval=self.options.resolve_interval,
            debounce=self.options.crd_debounce, telemetry=self._informer_telemetry,
        )
        self.status_writer = StatusWriter(
            client=client, desired=self.desired_status, telemetry=self.telemetry,
            interval=self.options.status_interval,
            enabled=self.options.write_status and not self.options.static_configs,
        )
        self.events = EventRecorder(
            client=client, enabled=self.options.write_status and not self.options.static_configs)
        self._config_informer: Informer | None = None
        self._ns_informer: Informer | None = None
        self._sts_watch: StatefulSetWatch | None = None
        self._selected_namespaces: set[str] = set()
        self._retiring: set[InformerRegistry] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
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
            self._sts_watch = StatefulSetWatch(
                self.client, name=self.options.statefulset, namespace=self.options.statefulset_namespace,
                shard=lambda: (self.options.shard, self.options.total_shards), reshard=self.reshard,
                telemetry=self._informer_telemetry,
            )
            self._sts_watch.start()
        self.resolution.start()
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
        tasks, self._tasks = self._tasks + list(self._background), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.resolution.stop()
        for informer in (self._config_informer, self._ns_informer):
            if informer is not None:
                await informer.stop()
        if self._sts_watch is not None:
            await self._sts_watch.stop()
        for registry in (*self._retiring, self.registry):
            await registry.stop()
        self._retiring.clear()

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
        self.queue.add(name)

    def _on_namespace(self, event_type: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        before = set(self._selected_namespaces)
        if event_type == "DELETED":
            self._selected_namespaces.discard(name)
        else:
            self._selected_namespaces.add(name)
        if before != self._selected_namespaces:
            for config in self.configs:
                self.queue.add(config)

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
        self._shard_telemetry.set(shard, total_shards)
        for name in self.configs:
            self.queue.add(name)
        # The old registry's informers stop when the last old binding is released; stop it for
        # good once nothing refers to it any more.
        self._retiring.add(old)
        self._spawn(self._retire(old))

    async def _retire(self, registry: InformerRegistry) -> None:
        while any(b is not None and b.registry is registry
                  for s in self.configs.values() for b in (s.binding, s.next_binding)):
            await asyncio.sleep(self.options.retire_poll)
        self._retiring.discard(registry)
        await registry.stop()

    def _resolve_all(self) -> None:
        self.schemas.invalidate()  # CRDs changed: their schemas (and /openapi/v2) may have too
        for name in self.configs:
            self.queue.add(name)

    def _pending(self) -> list[str]:
        return [s.name for s in self.configs.values() if s.error_reason == TARGET_NOT_FOUND]

    # ---- reconcile -----------------------------------------------------------------------------
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

    def _targets(self, resource: ResolvedResource, scope: Scope | None = None) -> tuple[WatchTarget, ...]:
        """The collections to watch; a configuration's ``spec.targetRef.selector`` goes to the
        kube-apiserver as ``labelSelector`` and its ``namespaces`` narrow ``--namespaces``."""
        base = dict(group=resource.group, version=resource.version, resource=resource.resource,
                    label_selector=scope.selector if scope is not None else "")
        namespaces = set(self.options.namespaces or ())
        if scope is not None and scope.namespaces:
            narrowed = set(scope.namespaces) & namespaces if namespaces else set(scope.namespaces)
            namespaces = narrowed or namespaces  # nothing in common: the filter drops everything
        if resource.namespaced and namespaces:
            return tuple(WatchTarget(**base, namespace=ns) for ns in sorted(namespaces))
        return (WatchTarget(**base),)

    def _scoped_namespace_ok(self, scope: Scope | None) -> Callable[[str], bool] | None:
        """``--namespace-selector`` and the configuration's namespaces/excludeNamespaces."""
        global_ok = self._namespace_ok()
        if scope is None or (not scope.namespaces and not scope.exclude_namespaces):
            return global_ok
        scoped = scope.namespace_ok
        if global_ok is None:
            return scoped
        return lambda namespace: global_ok(namespace) and scoped(namespace)

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
                    self.queue.add(other.name)
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
        await self._check_paths(state)

    async def _check_paths(self, state: ConfigState) -> None:
        """The typo check of the paths against the target's schema: a warning, after binding, so
        it never delays or blocks serving. Logged once per distinct outcome, not per object."""
        assert state.raw is not None and state.resource is not None
        resource = state.resource
        target = (resource.api_version, resource.kind)
        key = (state.spec_key, target, self.schemas.generation)
        if state.path_check is not None and state.path_check.key == key:
            return
        previous = state.path_check
        try:
            lookup = await self.schemas.lookup(resource)
            check = path_check(key=key, config=state.raw, target=target, index=lookup.index,
                               source=lookup.source, error=lookup.error)
        except Exception as err:  # a schema the checker cannot walk must not stop the reconcile
            log.exception("configuration %s: checking paths failed", state.name)
            lookup, check = None, PathCheck(key=(), source="", unavailable=f"{type(err).__name__}: {err}")
        if lookup is None or lookup.error:
            check = dataclasses.replace(check, key=())  # not cached: try again later
            self.queue.add_after(state.name, self.options.resolve_interval)
        state.path_check = check
        self.telemetry.unknown_paths(state.name, len(check.problems))
        if previous is not None and (previous.problems, previous.unavailable) == (
                check.problems, check.unavailable):
            return
        if check.problems:
            log.warning("configuration %s: %d path(s) the schema of %s cannot have (still serving): %s",
                        state.name, len(check.problems), check.source, "; ".join(check.problems))
            if self.options.shard == 0:  # every shard finds the same: one Event, not one per shard
                await self.events.warn(state.raw, reason=UNKNOWN_PATH, message="; ".join(check.problems))
        elif check.unavailable:
            log.info("configuration %s: paths not checked: %s", state.name, check.unavailable)
        else:
            log.info("configuration %s: %d paths match the schema of %s", state.name, check.checked,
                     check.source)

    def _bind(self, state: ConfigState) -> None:
        assert state.plan is not None and state.resource is not None
        scope = getattr(state.plan, "scope", None)  # CompiledPlan: spec.targetRef scoping
        targets = self._targets(state.resource, scope)
        key = self.binding_key(state.plan, state.resource, targets)
        current = state.next_binding or state.binding
        if current is not None and current.key == key:
            return
        if state.next_binding is not None:
            self._spawn(state.next_binding.stop())
        binding = Binding(
            owner=self, name=state.name, plan=state.plan, resource=state.resource, targets=targets,
            namespace_ok=self._scoped_namespace_ok(scope), key=key, builder=self.store.build_plan(state.plan),
        )
        state.next_binding = binding
        binding.start(self.registry)

    async def _fail(self, state: ConfigState, reason: str, message: str) -> None:
        state.error_reason, state.error_message = reason, message
        state.path_check = None
        self.telemetry.unknown_paths(state.name, None)
        log.warning("configuration %s: %s: %s", state.name, reason, message)
        await self._teardown(state)

    async def _teardown(self, state: ConfigState) -> None:
        for binding in (state.next_binding, state.binding):
            if binding is not None:
                await binding.stop()
        state.binding = state.next_binding = None
        self.store.remove_plan(state.name)

    # ---- called by bindings (synchronously, inside an informer's task) -----------------------
    def activate(self, binding: Binding, buffered: list[Event]) -> None:
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
            self.store.delete(binding.name, uid_of(obj))
        elif binding.namespace_ok is None or binding.namespace_ok(namespace_of(obj)):
            self.store.upsert(binding.name, obj)

    # ---- status --------------------------------------------------------------------------------
    def desired_status(self, state: ConfigState) -> dict[str, Any]:
        objects = series = 0
        for config, n_objects, n_series in self.store.stats():
            if config == state.name:
                objects, series = n_objects, n_series
        syncing = state.next_binding.list_errors() if state.binding is None and state.next_binding else []
        ready = ready_condition(state, list_errors=syncing)
        self.telemetry.set(state.name, ready=ready[0] == "True", reason=ready[1])
        return desired_status(state, ready=ready, objects=objects, series=series, now=now_rfc3339())

    async def write_statuses(self, *, force: bool = False) -> None:
        await self.status_writer.write(self.configs.values(), force=force)

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.options.status_interval))
            try:
                await self.write_statuses()
            except Exception:
                log.exception("status writer failed")
            await self.resolution.tick()
