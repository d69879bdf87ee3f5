"""Kubernetes object manifests the e2e tests create: one builder per kind, shared by every test."""

from __future__ import annotations

from typing import Any

PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


def deployment(
    name: str,
    namespace: str,
    replicas: int = 1,
    *,
    image: str = PAUSE_IMAGE,
    termination_grace_seconds: int | None = None,
) -> dict[str, Any]:
    """A Deployment of one container labelled ``app: <name>`` (pause image: nothing in it runs)."""
    labels = {"app": name}
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": image}]}
    if termination_grace_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = termination_grace_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
