"""Helpers for the Thanos operator e2e tests: CRD install, an in-process controller, polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from kube.client import KubeClient
from kube.config import load_config
from tests.e2e.cluster import KubeCluster
from tests.polling import poll
from thanos_operator.controller import ThanosController

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "deploy" / "crds" / "thanos.yaml"
OPERATOR_AGENT = "panopticon-thanos-e2e"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def prometheus_operator_crd(kind: str) -> dict[str, Any]:
    """A minimal structural stand-in for one of prometheus-operator's CRDs (group, kind, plural and
    scope as upstream; the schema preserves unknown fields), enough for the API server to store them."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


async def install_crd(cluster: KubeCluster, crd: dict[str, Any]) -> None:
    await apply_obj(cluster, crd)
    await asyncio.to_thread(wait_established, cluster, crd["metadata"]["name"])


async def remove_crd(cluster: KubeCluster, crd: dict[str, Any]) -> None:
    """Delete the CRD and wait until its objects and itself are gone (the API server's
    customresourcecleanup finalizer deletes every object first; that can take a while)."""
    await asyncio.to_thread(
        cluster.kubectl,
        "delete",
        "crd",
        crd["metadata"]["name"],
        "--ignore-not-found",
        "--wait=true",
        timeout=180,
    )


def wait_established(cluster: KubeCluster, name: str) -> None:
    """Until the CRD is Established. Polled: ``kubectl wait`` right after an apply fails while the
    CRD has no status.conditions yet ("accessor error: <nil>")."""
    poll(
        lambda: (
            cluster.kubectl(
                "get", "crd", name, "-o", 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
            ).stdout
            == "True"
        ),
        timeout=60,
        interval=0.2,
        failure=lambda _: f"crd/{name} not Established within 60 s",
    )


def install_thanos_crd(cluster: KubeCluster) -> None:
    cluster.kubectl("apply", "-f", str(CRD_FILE))
    wait_established(cluster, "thanos.monitoring.paodin.io")


async def kubectl(cluster: KubeCluster, *args: str, input: str | None = None, check: bool = True) -> str:
    result = await asyncio.to_thread(cluster.kubectl, *args, input=input, check=check)
    return result.stdout


async def get_json(cluster: KubeCluster, *args: str) -> Any:
    return json.loads(await kubectl(cluster, "get", *args, "-o", "json"))


async def apply_obj(cluster: KubeCluster, obj: dict[str, Any]) -> None:
    await kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_controller(
    cluster: KubeCluster, namespace: str, *, resync_period: float = 300.0, user_agent: str = OPERATOR_AGENT
) -> AsyncIterator[ThanosController]:
    client = KubeClient(load_config(kubeconfig=str(cluster.kubeconfig)), user_agent=user_agent)
    controller = ThanosController(client, namespace=namespace, resync_period=resync_period, identity="e2e")
    await controller.start()
    try:
        yield controller
    finally:
        await controller.stop()
        await client.close()


def writes_by(
    cluster: KubeCluster, user_agent_prefix: str, *, namespace: str | None = None
) -> list[dict[str, Any]]:
    events = []
    for event in cluster.audit_events(verbs=WRITE_VERBS):
        if not str(event.get("userAgent", "")).startswith(user_agent_prefix):
            continue
        if namespace is not None and (event.get("objectRef") or {}).get("namespace") != namespace:
            continue
        events.append(event)
    return events


def thanos_cr(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.paodin.io/v1alpha1",
        "kind": "Thanos",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}
