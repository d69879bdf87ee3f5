"""``panopticon serve``: compose the long-running components and run them until a signal.

This module only wires things together. ``Runtime`` holds what components share (telemetry,
store, exposition, readiness); ``build_components`` decides which components this invocation
runs; ``serve`` starts them in order, waits for SIGINT/SIGTERM and stops them in reverse order.
A component is anything with ``async start()`` (raise ``StartupError`` for a problem the user can
fix: it is printed and the command exits 1) and ``async stop()``.

Modes: ``--source DIR`` (offline: configurations and objects from files, see
``exporter.offline``) runs the offline source and the plain HTTP server. Cluster mode
(informers, the extension API server, the Thanos operator) adds its components in
``build_components``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from apiserver.settings import Settings
from exporter.exposition import Exposition
from exporter.familyfilter import FamilyFilter, FamilyFilterError
from exporter.metriclabels import MetricLabelsAllowlist, MetricLabelsError
from exporter.offline import LoadError, OfflineSource, compiler_with
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry

if TYPE_CHECKING:
    from kube.client import KubeClient

log = logging.getLogger("panopticon.serve")


class StartupError(Exception):
    """A problem the user can fix (bad flag value, port in use, unloadable --source)."""


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """Shared state of one ``serve`` process."""

    args: argparse.Namespace
    settings: Settings
    telemetry: Telemetry
    store: MetricsStore
    exposition: Exposition
    readiness: list[Callable[[], bool]] = field(default_factory=list)
    kube: KubeClient | None = None  # cluster mode: the shared API client (KubeClientComponent)

    @classmethod
    def create(cls, args: argparse.Namespace) -> Runtime:
        telemetry = Telemetry()
        store = MetricsStore(telemetry=telemetry)
        telemetry.watch_store(store)
        return cls(args=args, settings=Settings.from_args(args), telemetry=telemetry, store=store,
                   exposition=Exposition(store))

    def ready(self) -> bool:
        return all(check() for check in self.readiness)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) into (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise StartupError(f"--metrics-bind-address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _family_filter(args: argparse.Namespace) -> FamilyFilter | None:
    """``--metric-allowlist`` / ``--metric-denylist`` (exporter.familyfilter)."""
    try:
        return FamilyFilter.parse(allow=getattr(args, "metric_allowlist", "") or "",
                                  deny=getattr(args, "metric_denylist", "") or "")
    except FamilyFilterError as exc:
        raise StartupError(str(exc)) from None


def _metric_labels(args: argparse.Namespace) -> MetricLabelsAllowlist | None:
    """``--metric-labels-allowlist`` / ``--metric-annotations-allowlist`` (exporter.metriclabels)."""
    try:
        return MetricLabelsAllowlist.parse(
            labels=getattr(args, "metric_labels_allowlist", "") or "",
            annotations=getattr(args, "metric_annotations_allowlist", "") or "")
    except MetricLabelsError as exc:
        raise StartupError(str(exc)) from None


class OfflineComponent:
    name = "offline-source"

    def __init__(self, runtime: Runtime, directory: str) -> None:
        families = _family_filter(runtime.args)
        compiler = compiler_with(_metric_labels(runtime.args))
        compiler = families.documents_compiler(compiler) if families is not None else compiler
        if getattr(runtime.args, "ksm_config", None):
            from exporter.ksmsource import with_ksm_configs

            compiler = with_ksm_configs(compiler, runtime.args.ksm_config)
        self.source = OfflineSource([directory], runtime.store, compiler=compiler)
        runtime.readiness.append(lambda: self.source.loaded)

    async def start(self) -> None:
        try:
            await self.source.start()
        except LoadError as exc:
            raise StartupError("cannot load --source:\n  " + "\n  ".join(exc.problems)) from None

    async def stop(self) -> None:
        await self.source.stop()


class PlainHTTPComponent:
    """``/metrics``, ``/healthz``, ``/livez``, ``/readyz`` over plain HTTP."""

    name = "plain-http"

    def __init__(self, runtime: Runtime, address: str, *, state_metrics: bool) -> None:
        from apiserver.plain import make_plain_app

        self.host, self.port = parse_address(address)
        self.app = make_plain_app(exposition=runtime.exposition if state_metrics else None,
                                  telemetry=runtime.telemetry, ready=runtime.ready)
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        self.bound: tuple[str, int] | None = None

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            raise StartupError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound = sockets[0].getsockname()[:2] if sockets else (self.host, self.port)
        host, port = self.bound
        shown = f"[{host}]" if ":" in host else host
        log.info("serving /metrics, /healthz, /livez, /readyz on http://%s:%d", shown, port)

    async def stop(self) -> None:
        await self.runner.cleanup()


def controllers_of(args: argparse.Namespace) -> set[str]:
    return {c.strip() for c in (args.controllers or "").split(",") if c.strip()}


class KubeClientComponent:
    """Cluster mode: the one ``KubeClient`` every controller shares (``runtime.kube``)."""

    name = "kube-client"

    def __init__(self, runtime: Runtime) -> None:
        from kube.client import KubeClient
        from kube.config import ConfigError, load_config

        try:
            config = load_config(kubeconfig=runtime.args.kubeconfig)
        except ConfigError as exc:
            raise StartupError(str(exc)) from None
        self.client = runtime.kube = KubeClient(config, timeout=runtime.settings.request_timeout)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.client.close()


class ClusterExporterComponent:
    """The live exporter (``exporter.cluster``): configs and targets from the cluster into the store."""

    name = "cluster-exporter"

    def __init__(self, runtime: Runtime) -> None:
        from exporter.cluster import ClusterExporter

        self.runtime = runtime
        self.exporter: ClusterExporter | None = None
        runtime.readiness.append(lambda: self.exporter is not None and self.exporter.ready())

    async def start(self) -> None:
        from exporter.cluster import ClusterExporter, statefulset_of_pod
        from kube.client import ApiError

        args, client = self.runtime.args, self.runtime.kube
        assert client is not None
        settings = self.runtime.settings.exporter
        shard, total = settings.shard, settings.total_shards
        statefulset = ""
        pod_namespace = args.pod_namespace or client.config.namespace
        if args.pod:
            try:
                shard, total, statefulset = await statefulset_of_pod(client, pod=args.pod,
                                                                     namespace=pod_namespace)
            except (ValueError, ApiError) as exc:
                raise StartupError(f"--pod {args.pod}: {exc}") from None
        if total < 1 or not 0 <= shard < total:
            raise StartupError(f"--shard {shard} must be in [0, --total-shards {total})")
        static: list[dict[str, Any]] = []
        if getattr(args, "config", None):
            from exporter.sources import SourceError, is_config, load_documents

            try:
                static = [dict(d.data) for d in load_documents(args.config) if is_config(d.data)]
            except SourceError as exc:
                raise StartupError(f"--config: {exc}") from None
            if not static:
                raise StartupError(f"--config {', '.join(args.config)}: no MetricsConfiguration found")
        if getattr(args, "ksm_config", None):
            from exporter.ksmsource import crd_kinds, load_ksm, needs_crds

            installed = None
            if needs_crds(args.ksm_config):  # a wildcard groupVersionKind: KSM's CRD discovery, once
                try:
                    installed = await crd_kinds(client)
                except ApiError as exc:
                    raise StartupError(
                        f"--ksm-config: cannot list CustomResourceDefinitions: {exc}") from None
            converted, problems = load_ksm(args.ksm_config, installed=installed)
            if problems:
                raise StartupError("--ksm-config:\n  " + "\n  ".join(problems))
            static += [dict(d.data) for d in converted]
        options = dataclasses.replace(
            settings, shard=shard, total_shards=total, static_configs=tuple(static),
            statefulset=statefulset, statefulset_namespace=pod_namespace if statefulset else "",
        )
        from exporter.cluster.state import compiler_with as config_compiler_with

        config_compiler = config_compiler_with(_metric_labels(args))
        families = _family_filter(args)
        compiler = families.config_compiler(config_compiler) if families is not None else config_compiler
        self.exporter = ClusterExporter(client, self.runtime.store, options=options, compiler=compiler)
        await self.exporter.start()
        log.info("exporter: watching MetricsConfigurations (shard %d of %d)", shard, total)

    async def stop(self) -> None:
        if self.exporter is not None:
            await self.exporter.stop()


class ExtensionApiServerComponent:
    """The HTTPS extension API server (``--secure-port`` > 0) over the shared store and exposition."""

    name = "extension-apiserver"

    def __init__(self, runtime: Runtime, *, client: object | None = None,
                 exporter: ClusterExporterComponent | None = None) -> None:
        from apiserver.https import ExtensionApiComponent, resolved_namer
        from apiserver.metric_lookup import guess_namespaced
        from apiserver.views import guess_resource

        def resolved_resource(configuration: str) -> Any:
            live = exporter.exporter if exporter is not None else None
            state = live.configs.get(configuration) if live is not None else None
            return state.resource if state is not None else None

        def resolved(configuration: str) -> str | None:
            # ObjectMetrics names use the plural the live exporter's discovery resolved.
            resource = resolved_resource(configuration)
            return resource.resource if resource is not None else None

        def namespaced(configuration: str, target: Any) -> bool:
            # The custom metrics API's scope of a kind: from discovery, else well-known kinds.
            resource = resolved_resource(configuration)
            if resource is None:
                return guess_namespaced(configuration, target)
            return bool(resource.namespaced)

        def shards() -> tuple[int, int]:
            # The live exporter's current assignment (--pod re-shards when the StatefulSet scales).
            live = exporter.exporter if exporter is not None else None
            if live is not None:
                return live.options.shard, live.options.total_shards
            return int(runtime.args.shard), int(runtime.args.total_shards)

        self.inner = ExtensionApiComponent(args=runtime.args, store=runtime.store,
                                           exposition=runtime.exposition, client=client,  # type: ignore[arg-type]
                                           namer=resolved_namer(resolved) if exporter else guess_resource,
                                           shards=shards, namespaced=namespaced)
        runtime.readiness.append(self.inner.ready)

    async def start(self) -> None:
        from apiserver.https import StartupFailure

        try:
            await self.inner.start()
        except StartupFailure as exc:
            raise StartupError(str(exc)) from None

    async def stop(self) -> None:
        await self.inner.stop()


class ThanosOperatorComponent:
    """The Thanos operator (``thanos_operator.service``), leader-elected unless --no-leader-elect."""

    name = "thanos-operator"

    def __init__(self, runtime: Runtime) -> None:
        from thanos_operator.service import ThanosOperator

        assert runtime.kube is not None
        self.operator = ThanosOperator(runtime.kube.config, runtime.settings.operator)

    async def start(self) -> None:
        await self.operator.start()

    async def stop(self) -> None:
        await self.operator.stop()


def build_components(runtime: Runtime) -> list[Component]:
    args = runtime.args
    components: list[Component] = []
    if args.source:
        components.append(OfflineComponent(runtime, args.source))
    else:
        components.append(KubeClientComponent(runtime))
        if "exporter" in controllers_of(args):
            components.append(ClusterExporterComponent(runtime))
        if "thanos" in controllers_of(args):
            components.append(ThanosOperatorComponent(runtime))
    if args.secure_port:
        exporter = next((c for c in components if isinstance(c, ClusterExporterComponent)), None)
        components.append(ExtensionApiServerComponent(runtime, client=runtime.kube, exporter=exporter))
    if args.metrics_address:
        components.append(PlainHTTPComponent(runtime, args.metrics_address,
                                             state_metrics=args.state_metrics_on_plain))
    return components


async def serve(args: argparse.Namespace, *, stop: asyncio.Event | None = None,
                freeze_gc: bool = False) -> int:
    """Run the components until ``stop`` (or a signal).

    ``freeze_gc``: the cyclic GC stays off through start-up and the initial sync (the CLI
    turns it off before its imports): the imports and the sync allocate hundreds of thousands
    of long-lived objects and no garbage cycles, so every full collection meanwhile would
    re-scan them for nothing (25% of the sync's CPU, bench/README.md, initial sync). Once
    every component is ready (or after ``GC_OFF_SECONDS``), everything alive is moved to the
    permanent generation (``gc.freeze``) and the GC is turned on. The CLI sets it; in-process
    callers (tests) do not.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Component] = []
    try:
        runtime = Runtime.create(args)
        components = build_components(runtime)
        gc_on = asyncio.create_task(_gc_on_when_ready(runtime)) if freeze_gc else None
        for component in components:
            await component.start()
            started.append(component)
        await stop.wait()
        if gc_on is not None:
            gc_on.cancel()
        log.info("shutting down")
        return 0
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for component in reversed(started):
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %s failed", component.name)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


GC_OFF_SECONDS = 120.0  # the GC comes on by then even when the initial sync does not complete (RBAC, outage)


async def _gc_on_when_ready(runtime: Runtime, *, poll: float = 0.05) -> None:
    """``serve(freeze_gc=True)``: freeze what start-up and the initial sync made, then turn on the GC."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GC_OFF_SECONDS
    try:
        while not runtime.ready() and loop.time() < deadline:
            await asyncio.sleep(poll)
    finally:
        gc.freeze()
        gc.enable()
        log.debug("garbage collector on (%d objects frozen)", gc.get_freeze_count())


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return asyncio.run(serve(args, freeze_gc=True))
