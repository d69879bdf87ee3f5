"""One level-based reconcile pass for one ``Thanos`` object: desired vs live, then the fewest writes.

Flow: GET the CR -> validate (bad spec: status + event, no retry) -> paused? (status only) ->
read the resourceVersions of the Secrets whose change must roll pods -> ``render`` -> LIST the
children by label -> for each desired object: skip when the live one carries the same
``applied-hash`` annotation, else server-side apply (one field manager, force) -> delete
children the CR no longer wants (controller-owned by this CR, found by label) -> write status
through ``/status`` only when it differs.

That comparison is what makes a steady state write-free: an SSA of identical content still
costs a request (and an audit entry), so it is skipped entirely. Edits by others to the fields
that matter (replicas, images, args, data, ports, labels: ``thanos_operator.drift``) are still
seen and re-applied; other fields are corrected at the next change of the desired object.

Immutable StatefulSet fields (volumeClaimTemplates, serviceName, selector): the apply fails with
422; the StatefulSet is then deleted with ``propagationPolicy: Orphan`` (its pods and PVCs stay)
and re-created by a later pass once the garbage collector has removed it; the re-created
StatefulSet adopts the orphaned pods by their labels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kube.api import KubeApi
from kube.client import ApiError, Invalid, NotFound
from kube.conditions import get_condition, now_rfc3339, set_condition
from kube.paths import resource_path
from thanos_operator import names
from thanos_operator.drift import drift
from thanos_operator.models import API_GROUP, API_VERSION, KIND, PLURAL, ThanosValidationError, parse_thanos
from thanos_operator.render import OPTIONAL_KINDS, OWNED_KINDS, DefaultImages, referenced_secrets, render

log = logging.getLogger(__name__)

FIELD_MANAGER = "panopticon-thanos"
JsonObject = dict[str, Any]

RESOURCES = {
    "ConfigMap": ("", "v1", "configmaps"),
    "Secret": ("", "v1", "secrets"),
    "Service": ("", "v1", "services"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "Deployment": ("apps", "v1", "deployments"),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets"),
    # Optional: only while prometheus-operator's CRD is installed (``optional_kinds_served``).
    "ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors"),
    # Read and watched, never written: rule sources of the ruler (``render.prometheus_rules``).
    "PrometheusRule": ("monitoring.coreos.com", "v1", "prometheusrules"),
    # Read and watched, never written: the endpoints controller copies our Service labels onto
    # them, and their ready addresses decide the hashring membership (``ready_ingestor_pods``).
    "Endpoints": ("", "v1", "endpoints"),
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
_STAGES = (("ConfigMap", "Secret"), ("Service",), WORKLOAD_KINDS, ("PodDisruptionBudget", "ServiceMonitor"))
# prometheus-operator's kinds the operator uses only while their CRD is served: kind -> CRD name.
# Discovery says whether they are (``optional_kinds_served``, every pass); the controller watches
# these CRDs to re-queue every Thanos when one comes or goes.
OPTIONAL_CRDS = {
    "ServiceMonitor": "servicemonitors.monitoring.coreos.com",
    "PrometheusRule": "prometheusrules.monitoring.coreos.com",
}
# Kinds rendered at their newest version but applied at an older one where only that is served
# (found through discovery once per Reconciler): policy/v1 PDBs arrived in Kubernetes 1.21.
OLDER_VERSIONS = {"PodDisruptionBudget": ("v1beta1",)}


class RetryLater(Exception):
    """Not an error: the pass must run again soon (e.g. waiting for an orphan delete)."""


class ApplyRejected(Exception):
    """The API server refused a rendered object (422) for a reason a re-creation cannot fix."""

    def __init__(self, label: str, error: ApiError) -> None:
        super().__init__(f"{label}: {error.message}")
        self.label = label
        self.error = error


def is_immutable_field_error(error: ApiError) -> bool:
    """True only for the 422 a StatefulSet re-creation fixes (``kube.client.Invalid`` decides)."""
    return isinstance(error, Invalid) and error.statefulset_spec_immutable


@dataclass
class Outcome:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    recreating: list[str] = field(default_factory=list)
    status_written: bool = False
    invalid: str = ""
    rejected: str = ""
    gone: bool = False
    paused: bool = False


def thanos_path(namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
    return resource_path(
        group=API_GROUP,
        version=API_VERSION,
        resource=PLURAL,
        namespace=namespace,
        name=name,
        subresource=subresource,
    )


def object_path(kind: str, namespace: str, name: str | None = None, *, version: str | None = None) -> str:
    group, default_version, resource = RESOURCES[kind]
    return resource_path(
        group=group, version=version or default_version, resource=resource, namespace=namespace, name=name
    )


def label_selector(labels: Mapping[str, str]) -> str:
    """``{a: 1, b: 2}`` -> ``a=1,b=2`` (sorted); ``{}`` -> ``""`` (everything)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj.get("kind")), str(obj["metadata"]["name"])


def _label(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj['metadata']['name']}"


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_ours(obj: Mapping[str, Any], thanos_name: str) -> bool:
    ref = controller_of(obj)
    return (
        ref is not None
        and ref.get("kind") == KIND
        and ref.get("apiVersion", "").startswith(API_GROUP + "/")
        and ref.get("name") == thanos_name
    )


def _applied_hash(obj: Mapping[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(names.ANNOTATION_APPLIED_HASH)
    return str(value) if value is not None else None


def ready_ingestor_pods(
    endpoints: list[JsonObject], *, thanos_name: str, ingestor_names: list[str]
) -> dict[str, list[str]]:
    """Ingestor name -> its Ready pods, from the Endpoints of each ingestor Service.

    Only ``subsets[].addresses`` count (``notReadyAddresses`` are pods failing readiness); a
    group without an Endpoints object is left out, so it keeps its static ring membership.
    """
    by_service = {str(e["metadata"]["name"]): e for e in endpoints}
    result: dict[str, list[str]] = {}
    for ingestor in ingestor_names:
        current = by_service.get(names.ingestor_service(thanos_name, ingestor))
        if current is None:
            continue
        pods = set()
        for subset in current.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                if ref.get("kind") == "Pod" and ref.get("name"):
                    pods.add(str(ref["name"]))
                elif address.get("hostname"):
                    pods.add(str(address["hostname"]))
        result[ingestor] = sorted(pods)
    return result


def component_status(
    desired: list[JsonObject], live: Mapping[tuple[str, str], JsonObject]
) -> list[JsonObject]:
    components = []
    for obj in desired:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        current = live.get(_key(obj)) or {}
        status = current.get("status") or {}
        components.append(
            {
                "name": obj["metadata"]["name"],
                "kind": obj["kind"],
                "component": obj["metadata"]["labels"].get(names.LABEL_NAME, ""),
                "desiredReplicas": int(obj["spec"].get("replicas", 1)),
                "readyReplicas": int(status.get("readyReplicas") or 0),
            }
        )
    return components


class Reconciler:
    """Stateless between passes: everything it decides comes from the API server."""

    def __init__(
        self,
        client: KubeApi,
        *,
        field_manager: str = FIELD_MANAGER,
        identity: str = "",
        images: DefaultImages | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        """``namespaces``: the namespaces the operator watches (empty: all); PrometheusRules are
        read only from these."""
        self.client = client
        self.namespaces = tuple(sorted(set(namespaces)))
        self.images = images or DefaultImages()
        self.field_manager = field_manager
        self.identity = identity
        self.served_versions: dict[str, str] = {}  # kind -> the version applied (see OLDER_VERSIONS)

    async def resolve_served_versions(self) -> dict[str, str]:
        """For each kind with older fallbacks, the newest version the API server serves it at."""
        for kind, older in OLDER_VERSIONS.items():
            if kind in self.served_versions:
                continue
            group, newest, resource = RESOURCES[kind]
            chosen = older[-1]
            for version in (newest, *older):
                try:
                    doc = await self.client.get(f"/apis/{group}/{version}")
                except NotFound:
                    continue
                if any(r.get("name") == resource for r in doc.get("resources") or []):
                    chosen = version
                    break
            self.served_versions[kind] = chosen
        return self.served_versions

    async def optional_kinds_served(self) -> frozenset[str]:
        """The ``OPTIONAL_CRDS`` kinds the API server serves now. Asked every pass (one GET per
        group version, one in all): the CRDs may come and go while the operator runs."""
        by_group_version: dict[str, dict[str, str]] = {}
        for kind in OPTIONAL_CRDS:
            group, version, resource = RESOURCES[kind]
            by_group_version.setdefault(f"/apis/{group}/{version}", {})[resource] = kind
        served = set()
        for path, kinds in by_group_version.items():
            try:
                doc = await self.client.get(path)
            except NotFound:
                continue
            served |= {kinds[r["name"]] for r in doc.get("resources") or [] if r.get("name") in kinds}
        return frozenset(served)

    def group_version(self, kind: str) -> tuple[str, str, str]:
        group, version, resource = RESOURCES[kind]
        return group, self.served_versions.get(kind, version), resource

    def path(self, kind: str, namespace: str, name: str | None = None) -> str:
        return object_path(kind, namespace, name, version=self.served_versions.get(kind))

    def _as_served(self, obj: JsonObject) -> JsonObject:
        version = self.served_versions.get(obj["kind"])
        if version is None:
            return obj
        group = RESOURCES[obj["kind"]][0]
        return {**obj, "apiVersion": f"{group}/{version}"}

    async def reconcile(self, namespace: str, name: str) -> Outcome:
        outcome = Outcome()
        try:
            raw = await self.client.get(thanos_path(namespace, name))
        except NotFound:
            outcome.gone = True  # children carry owner references: the garbage collector cleans up
            return outcome
        if (raw.get("metadata") or {}).get("deletionTimestamp"):
            outcome.gone = True
            return outcome
        generation = int(raw["metadata"].get("generation") or 0)
        try:
            thanos = parse_thanos(raw)
        except ThanosValidationError as exc:
            outcome.invalid = str(exc)
            status = self._status(
                raw,
                generation=generation,
                components=None,
                reconciled=("False", "InvalidSpec", str(exc)),
                ready=("False", "InvalidSpec", "the spec is invalid"),
            )
            if await self._write_status(raw, status):
                outcome.status_written = True
                await self._event(raw, "Warning", "InvalidSpec", str(exc))
            return outcome
        if thanos.spec.paused:
            outcome.paused = True
            status = self._status(
                raw,
                generation=generation,
                components=None,
                reconciled=("False", "Paused", "spec.paused is true: children are left as they are"),
                ready=None,
                paused=True,
            )
            outcome.status_written = await self._write_status(raw, status)
            return outcome

        try:
            await self._converge(raw, thanos_name=name, namespace=namespace, outcome=outcome, thanos=thanos)
        except RetryLater:
            raise
        except ApplyRejected as exc:
            # Retrying cannot help: the rendered object itself is refused (e.g. a bad quantity
            # in resources). Surface it; the next change of the CR (or a resync) tries again.
            outcome.rejected = str(exc)[:1000]
            status = self._status(
                raw,
                generation=generation,
                components=None,
                reconciled=("False", "ApplyRejected", outcome.rejected),
                ready=None,
            )
            if await self._write_status(raw, status):
                await self._event(raw, "Warning", "ApplyRejected", outcome.rejected)
            return outcome
        except Exception as exc:
            message = str(exc)[:1000]
            status = self._status(
                raw,
                generation=generation,
                components=None,
                reconciled=("False", "ReconcileFailed", message),
                ready=None,
            )
            if await self._write_status(raw, status):
                await self._event(raw, "Warning", "ReconcileFailed", message)
            raise
        return outcome

    async def _converge(
        self, raw: JsonObject, *, thanos_name: str, namespace: str, outcome: Outcome, thanos: Any
    ) -> None:
        generation = int(raw["metadata"].get("generation") or 0)
        versions: dict[str, str] = {}
        for secret_name, rolls_pods in referenced_secrets(thanos).items():
            if not rolls_pods:
                continue
            try:
                secret = await self.client.get(object_path("Secret", namespace, secret_name))
                versions[secret_name] = str(secret["metadata"].get("resourceVersion") or "")
            except NotFound:
                versions[secret_name] = ""  # pods will not start until it exists; its creation rolls them
        await self.resolve_served_versions()
        ready_pods = await self._ready_ingestor_pods(namespace, thanos)
        served = await self.optional_kinds_served()
        monitors = "ServiceMonitor" in served
        desired = render(
            thanos,
            secret_versions=versions,
            ready_pods=ready_pods,
            images=self.images,
            service_monitors=monitors,
            rule_config_maps=await self._rule_config_maps(namespace, thanos),
            prometheus_rules=(
                await self._prometheus_rules(namespace, thanos) if "PrometheusRule" in served else {}
            ),
        )
        live = await self._list_children(namespace, thanos_name, optional=monitors)

        wanted = {_key(o) for o in desired}
        # Config first, then Services, then workloads; within a stage the writes run concurrently.
        for stage in _STAGES:
            batch = [o for o in desired if o["kind"] in stage]
            results = await asyncio.gather(
                *(self._sync_one(obj, live.get(_key(obj)), namespace, thanos_name) for obj in batch),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            for obj, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    continue
                action, applied = result
                getattr(outcome, action).append(_label(obj))
                if applied is not None:
                    live[_key(obj)] = applied
            if failures:
                raise failures[0]
        for key, current in sorted(live.items()):
            if (
                key in wanted
                or not is_ours(current, thanos_name)
                or current["metadata"].get("deletionTimestamp")
            ):
                continue
            await self.client.delete(
                self.path(key[0], namespace, key[1]),
                propagation_policy="Background",
                preconditions={"uid": current["metadata"]["uid"]},
            )
            outcome.pruned.append(_label(current))

        if outcome.applied:
            await self._event(raw, "Normal", "Applied", "applied " + ", ".join(outcome.applied))
        if outcome.pruned:
            await self._event(raw, "Normal", "Pruned", "deleted " + ", ".join(outcome.pruned))
        if outcome.recreating:
            await self._event(
                raw,
                "Normal",
                "Recreating",
                "immutable fields changed; re-creating (pods and PVCs kept): "
                + ", ".join(outcome.recreating),
            )

        components = component_status(desired, live)
        not_ready = [
            f"{c['name']} {c['readyReplicas']}/{c['desiredReplicas']}"
            for c in components
            if c["readyReplicas"] < c["desiredReplicas"]
        ]
        if outcome.recreating:
            reconciled = (
                "False",
                "Recreating",
                "waiting for " + ", ".join(outcome.recreating) + " to be deleted",
            )
        else:
            reconciled = ("True", "ReconcileSucceeded", f"{len(desired)} objects up to date")
        ready = (
            ("False", "ComponentsNotReady", "not ready: " + ", ".join(not_ready))
            if not_ready
            else ("True", "AllComponentsReady", f"{len(components)} workloads ready")
        )
        status = self._status(
            raw, generation=generation, components=components, reconciled=reconciled, ready=ready
        )
        outcome.status_written = await self._write_status(raw, status)
        if outcome.recreating:
            raise RetryLater(", ".join(outcome.recreating))

    async def _sync_one(
        self, obj: JsonObject, current: JsonObject | None, namespace: str, thanos_name: str
    ) -> tuple[str, JsonObject | None]:
        """Bring one object in line; returns the Outcome list it belongs to and the applied object."""
        if current is not None and not is_ours(current, thanos_name) and controller_of(current) is not None:
            raise RuntimeError(f"{_label(obj)} exists and is controlled by {controller_of(current)}")
        if current is not None and current["metadata"].get("deletionTimestamp"):
            return "recreating", None
        if current is not None and _applied_hash(current) == _applied_hash(obj):
            drifted = drift(obj, current)
            if not drifted:
                return "unchanged", None
            log.info(
                "%s/%s was changed by someone else (%s); re-applying",
                namespace,
                _label(obj),
                ", ".join(drifted),
            )
        path = self.path(obj["kind"], namespace, obj["metadata"]["name"])
        try:
            applied = await self.client.apply(
                path, self._as_served(obj), field_manager=self.field_manager, force=True
            )
        except Invalid as err:
            if not (obj["kind"] == "StatefulSet" and current is not None and is_immutable_field_error(err)):
                raise ApplyRejected(_label(obj), err) from err
            log.info(
                "%s/%s: immutable field changed (%s); orphan delete and re-create",
                namespace,
                _label(obj),
                err.message,
            )
            await self.client.delete(
                path, propagation_policy="Orphan", preconditions={"uid": current["metadata"]["uid"]}
            )
            return "recreating", None
        return "applied", applied

    async def _rule_config_maps(self, namespace: str, thanos: Any) -> dict[str, dict[str, str]]:
        """The ConfigMaps the ruler selects (never our own children), name -> data."""
        ruler = thanos.spec.ruler
        if ruler is None:
            return {}
        items, _ = await self.client.list(
            object_path("ConfigMap", namespace),
            params={"labelSelector": label_selector(ruler.rule_selector)},
        )
        return {
            str(i["metadata"]["name"]): dict(i.get("data") or {})
            for i in items
            if (i["metadata"].get("labels") or {}).get(names.LABEL_PART_OF) != names.PART_OF
        }

    async def _prometheus_rules(self, namespace: str, thanos: Any) -> dict[tuple[str, str], JsonObject]:
        """The PrometheusRules the ruler selects: (namespace, name) -> spec.

        As ThanosRuler: without ``ruleNamespaceSelector`` only the CR's namespace (one LIST); with
        it the namespaces it selects (one LIST of Namespaces) that the operator watches, read by
        one cluster-wide LIST, or one LIST per watched namespace when the operator is scoped.
        """
        ruler = thanos.spec.ruler
        if ruler is None:
            return {}
        rule_params = {"labelSelector": label_selector(ruler.rule_selector)}
        path = self.path
        if ruler.rule_namespace_selector is None:
            items, _ = await self.client.list(path("PrometheusRule", namespace), params=rule_params)
        else:
            ns_params = {"labelSelector": label_selector(ruler.rule_namespace_selector)}
            ns_items, _ = await self.client.list(
                resource_path(group="", version="v1", resource="namespaces"),
                params={k: v for k, v in ns_params.items() if v},
            )
            selected = {str(n["metadata"]["name"]) for n in ns_items}
            if self.namespaces:
                selected &= set(self.namespaces)
                lists = await asyncio.gather(
                    *(
                        self.client.list(path("PrometheusRule", ns), params=rule_params)
                        for ns in sorted(selected)
                    )
                )
                items = [item for found, _ in lists for item in found]
            else:
                group, version, resource = RESOURCES["PrometheusRule"]
                items, _ = await self.client.list(
                    resource_path(group=group, version=version, resource=resource), params=rule_params
                )
            items = [i for i in items if i["metadata"].get("namespace") in selected]
        return {
            (str(i["metadata"].get("namespace", namespace)), str(i["metadata"]["name"])): dict(
                i.get("spec") or {}
            )
            for i in items
        }

    async def _ready_ingestor_pods(self, namespace: str, thanos: Any) -> dict[str, list[str]]:
        receive = thanos.spec.receive
        if receive is None or not receive.ingestors:
            return {}
        selector = {**names.owner_labels(thanos.metadata.name), names.LABEL_RECEIVE_TYPE: "ingestor"}
        items, _ = await self.client.list(
            object_path("Endpoints", namespace),
            params={"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))},
        )
        return ready_ingestor_pods(
            items, thanos_name=thanos.metadata.name, ingestor_names=[i.name for i in receive.ingestors]
        )

    async def _list_children(
        self, namespace: str, thanos_name: str, *, optional: bool = False
    ) -> dict[tuple[str, str], JsonObject]:
        """Children of every owned kind; the optional kinds (ServiceMonitor) only when served."""
        kinds = [(v, k) for v, k in OWNED_KINDS if optional or k not in OPTIONAL_KINDS]
        selector = ",".join(f"{k}={v}" for k, v in sorted(names.owner_labels(thanos_name).items()))
        live: dict[tuple[str, str], JsonObject] = {}
        lists = await asyncio.gather(
            *(
                self.client.list(self.path(kind, namespace), params={"labelSelector": selector})
                for _, kind in kinds
            )
        )
        for (api_version, kind), (items, _) in zip(kinds, lists, strict=True):
            for item in items:
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                live[(kind, item["metadata"]["name"])] = item
        return live

    def _status(
        self,
        raw: JsonObject,
        *,
        generation: int,
        components: list[JsonObject] | None,
        reconciled: tuple[str, str, str],
        ready: tuple[str, str, str] | None,
        paused: bool = False,
    ) -> JsonObject:
        current = dict(raw.get("status") or {})
        now = now_rfc3339()
        conditions = current.get("conditions") or []
        status_, reason, message = reconciled
        conditions = set_condition(
            conditions,
            type_="Reconciled",
            status=status_,
            reason=reason,
            message=message,
            observed_generation=generation,
            now=now,
        )
        if ready is not None:
            status_, reason, message = ready
            conditions = set_condition(
                conditions,
                type_="Ready",
                status=status_,
                reason=reason,
                message=message,
                observed_generation=generation,
                now=now,
            )
        elif get_condition(conditions, "Ready") is None:
            conditions = set_condition(
                conditions,
                type_="Ready",
                status="Unknown",
                reason="NotReconciled",
                message="",
                observed_generation=generation,
                now=now,
            )
        order = {"Ready": 0, "Reconciled": 1}
        conditions.sort(key=lambda c: order.get(str(c.get("type")), 2))
        status: JsonObject = {"observedGeneration": generation, "paused": paused, "conditions": conditions}
        status["components"] = components if components is not None else current.get("components", [])
        return status

    async def _write_status(self, raw: JsonObject, status: JsonObject) -> bool:
        if _same_status(raw.get("status") or {}, status):
            return False
        meta = raw["metadata"]
        path = thanos_path(meta["namespace"], meta["name"], "status")
        try:
            updated = await self.client.patch(path, {"status": status}, patch_type="merge")
        except NotFound:
            return False
        raw["status"] = updated.get("status", status)
        return True

    async def _event(self, raw: JsonObject, type_: str, reason: str, message: str) -> None:
        meta = raw["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": self.field_manager},
            "reportingComponent": self.field_manager,
            "reportingInstance": self.identity or self.field_manager,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.client.create(
                resource_path(group="", version="v1", resource="events", namespace=meta["namespace"]), event
            )
        except (ApiError, OSError) as exc:  # events are best effort; status holds the state
            log.debug("event %s for %s/%s not recorded: %s", reason, meta["namespace"], meta["name"], exc)


def _same_status(current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def normal(status: Mapping[str, Any]) -> JsonObject:
        conds = sorted((dict(c) for c in status.get("conditions") or []), key=lambda c: str(c.get("type")))
        return {
            "observedGeneration": status.get("observedGeneration"),
            "paused": bool(status.get("paused")),
            "conditions": conds,
            "components": status.get("components") or [],
        }

    return normal(current) == normal(new)
