"""The Thanos controller loop: watches -> a de-duplicating work queue -> ``Reconciler`` passes.

Watches (raw list/watch informers, which keep no objects):
- ``Thanos`` objects: enqueue the object; remember which Secrets it references;
- the children (label ``app.kubernetes.io/part-of=thanos``) of every owned kind: enqueue their
  controller owner, so a deleted or edited child is put back and workload readiness reaches
  the status;
- Secrets (all, in the watched namespaces): enqueue every ``Thanos`` that references one, so a
  rotated objstore Secret rolls its pods;
- ConfigMaps (all, in the watched namespaces): enqueue every ``Thanos`` whose ruler selects one;
- prometheus-operator's CRDs (``reconciler.OPTIONAL_CRDS``): enqueue every ``Thanos`` when one
  comes or goes; while ``prometheusrules.monitoring.coreos.com`` exists, PrometheusRule objects
  are watched too (the informer starts and stops with the CRD) and enqueue every ``Thanos``
  whose ruler may select them.

The queue is ``kube.workqueue.WorkQueue``: a key is queued at most once at a time, a key that
changes while it is reconciled is reconciled again afterwards, a failing key is retried with
its own exponential back-off (reset on success), ``RetryLater`` (a rollout in progress) comes
back after ``retry_after``; every ``resync_period`` all known objects are queued again, which
costs reads only: a converged object makes no writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from kube.api import KubeApi, ListWatcher
from kube.informer import Informer, WatchTarget
from kube.workqueue import RetryPolicy, WorkQueue
from thanos_operator import names
from thanos_operator.models import API_GROUP, API_VERSION, KIND, PLURAL, ThanosValidationError, parse_thanos
from thanos_operator.reconciler import OPTIONAL_CRDS, RESOURCES, Reconciler, RetryLater, controller_of
from thanos_operator.render import DefaultImages, referenced_secrets

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


class ControllerClient(KubeApi, ListWatcher, Protocol):
    """What the controller needs from ``kube.client.KubeClient`` (plain fakes in unit tests)."""


class ThanosController:
    def __init__(
        self,
        client: ControllerClient,
        *,
        namespace: str | None = None,
        namespaces: Sequence[str] = (),
        resync_period: float = 300.0,
        workers: int = 2,
        identity: str = "",
        retry_after: float = 1.0,
        retry: RetryPolicy | None = None,
        images: DefaultImages | None = None,
    ) -> None:
        self.client = client
        # Watched namespaces (``--namespaces``); empty: all. ``namespace`` is the one-namespace form.
        one = (namespace,) if namespace else ()
        self.namespaces: tuple[str, ...] = tuple(sorted(set(namespaces))) or one
        self.resync_period = resync_period
        self.reconciler = Reconciler(client, identity=identity, images=images, namespaces=self.namespaces)
        self._retry_after = retry_after
        retry = retry or RetryPolicy(initial=1.0, maximum=300.0)
        self.queue: WorkQueue[Key] = WorkQueue(self._process, name="thanos", workers=workers, retry=retry)
        self._secret_refs: dict[Key, set[str]] = {}
        # Thanos -> its ruler's ruleSelector, and whether PrometheusRules of other namespaces count
        self._rule_selectors: dict[Key, tuple[dict[str, str], bool]] = {}
        self._rule_informers: list[Informer] = []  # PrometheusRules, while their CRD exists
        self._tasks: list[asyncio.Task[None]] = []
        self.informers: list[Informer] = []  # the Thanos informers first (one per namespace)

    @property
    def passes(self) -> int:
        return self.queue.passes

    @property
    def failures(self) -> int:
        return self.queue.failures

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    async def _process(self, key: Key) -> float | None:
        try:
            await self.reconciler.reconcile(*key)
        except RetryLater as wait:
            log.info("thanos %s/%s: %s; retrying", *key, wait)
            return self._retry_after
        return None

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            for key in self.known_keys():
                self.enqueue(key)

    def known_keys(self) -> list[Key]:
        thanos = self.informers[: max(1, len(self.namespaces))]
        return sorted({(k.namespace, k.name) for i in thanos for k in i.keys().values()})

    # ---- event handlers ----------------------------------------------------------------------------
    def _on_thanos(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        self._rule_selectors.pop(key, None)
        if event_type == "DELETED":
            self._secret_refs.pop(key, None)
        else:
            try:
                thanos = parse_thanos(obj)
                self._secret_refs[key] = set(referenced_secrets(thanos))
                if thanos.spec.ruler is not None:
                    ruler = thanos.spec.ruler
                    self._rule_selectors[key] = (
                        dict(ruler.rule_selector),
                        ruler.rule_namespace_selector is not None,
                    )
            except ThanosValidationError:
                self._secret_refs.pop(key, None)
        self.enqueue(key)

    def _on_child(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ref = controller_of(obj)
        if ref is not None and ref.get("kind") == KIND:
            self.enqueue((str(meta.get("namespace", "")), str(ref.get("name"))))
            return
        owner = (meta.get("labels") or {}).get(names.LABEL_MANAGED_BY)
        if owner and (meta.get("labels") or {}).get(names.LABEL_PART_OF) == names.PART_OF:
            self.enqueue((str(meta.get("namespace", "")), str(owner)))

    def _on_secret(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        for key, secrets in list(self._secret_refs.items()):
            if key[0] == namespace and name in secrets:
                self.enqueue(key)
        if (meta.get("labels") or {}).get(names.LABEL_PART_OF) == names.PART_OF:
            self._on_child(event_type, obj)

    def _on_config_map(self, event_type: str, obj: dict[str, Any]) -> None:
        """Ours (a child), or a rule file source a ruler selects by label (all ConfigMaps are watched)."""
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(names.LABEL_PART_OF) == names.PART_OF:
            self._on_child(event_type, obj)
            return
        self._enqueue_rule_selectors(meta, other_namespaces=False)

    def _on_prometheus_rule(self, event_type: str, obj: dict[str, Any]) -> None:
        self._enqueue_rule_selectors(obj.get("metadata") or {}, other_namespaces=True)

    def _enqueue_rule_selectors(self, meta: dict[str, Any], *, other_namespaces: bool) -> None:
        """Every Thanos whose ruler selects an object with these labels: in its own namespace,
        or (PrometheusRules with ``ruleNamespaceSelector``) in any; the pass sorts out which."""
        labels = meta.get("labels") or {}
        namespace = str(meta.get("namespace", ""))
        for key, (selector, any_namespace) in list(self._rule_selectors.items()):
            if (key[0] == namespace or (other_namespaces and any_namespace)) and all(
                labels.get(k) == v for k, v in selector.items()
            ):
                self.enqueue(key)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def _targets(self) -> Iterable[tuple[WatchTarget, Any]]:
        namespaces: tuple[str | None, ...] = self.namespaces or (None,)
        for namespace in namespaces:
            yield WatchTarget(API_GROUP, API_VERSION, PLURAL, namespace=namespace), self._on_thanos
        selector = f"{names.LABEL_PART_OF}={names.PART_OF}"
        for namespace in namespaces:
            for kind in RESOURCES:
                if kind in ("Secret", "ConfigMap") or kind in OPTIONAL_CRDS:  # all Secrets/ConfigMaps below
                    continue
                group, version, resource = self.reconciler.group_version(kind)
                yield (
                    WatchTarget(group, version, resource, namespace=namespace, label_selector=selector),
                    self._on_child,
                )
            yield WatchTarget("", "v1", "secrets", namespace=namespace), self._on_secret
            yield WatchTarget("", "v1", "configmaps", namespace=namespace), self._on_config_map
        for crd in OPTIONAL_CRDS.values():
            yield (
                WatchTarget(
                    "apiextensions.k8s.io",
                    "v1",
                    "customresourcedefinitions",
                    field_selector=f"metadata.name={crd}",
                ),
                self._on_crd,
            )

    def _rule_targets(self) -> list[WatchTarget]:
        group, version, resource = RESOURCES["PrometheusRule"]
        return [WatchTarget(group, version, resource, namespace=ns) for ns in self.namespaces or (None,)]

    def _on_crd(self, event_type: str, obj: dict[str, Any]) -> None:
        # prometheus-operator installed or removed: every Thanos gets (or loses) its ServiceMonitors
        # and the rules of its PrometheusRules.
        name = (obj.get("metadata") or {}).get("name")
        if name not in OPTIONAL_CRDS.values():
            return
        if name == OPTIONAL_CRDS["PrometheusRule"]:
            if event_type == "DELETED":
                stopping, self._rule_informers = self._rule_informers, []
                for informer in stopping:
                    self._tasks.append(asyncio.create_task(informer.stop(), name="stop prometheusrules"))
            elif not self._rule_informers:
                for target in self._rule_targets():
                    informer = Informer(self.client, target)
                    informer.add_handler(self._on_prometheus_rule)
                    informer.start()
                    self._rule_informers.append(informer)
        for key in self.known_keys():
            self.enqueue(key)

    async def start(self) -> None:
        await self.reconciler.resolve_served_versions()  # e.g. policy/v1beta1 PDBs on Kubernetes 1.20
        for target, handler in self._targets():
            informer = Informer(self.client, target)
            informer.add_handler(handler)
            informer.start()
            self.informers.append(informer)
        self.queue.start()
        self._tasks = [asyncio.create_task(self._resync(), name="thanos-resync")]

    async def stop(self) -> None:
        await self.queue.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for informer in [*self.informers, *self._rule_informers]:
            await informer.stop()
        self.informers, self._rule_informers = [], []

    async def run(self) -> None:
        """Run until cancelled (the leader elector's ``lead`` callback)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once nothing is queued or running (tests and the benchmark)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.queue.idle and all(i.has_synced for i in self.informers):
                return True
            await asyncio.sleep(0.05)
        return False
