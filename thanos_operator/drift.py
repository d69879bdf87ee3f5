"""Which fields a child lost relative to what we applied (someone else edited it): pure comparison.

The reconciler skips a write when the live object carries our ``applied-hash`` annotation, so a
converged object costs no writes. This check catches the edits that matter even when the
annotation still matches: replicas, images and args, our pod-template hash annotations, the
Service ports and selector, ConfigMap/Secret data, labels and our owner reference. It compares
only fields the API server stores as sent (never defaulted or normalised ones, such as
resource quantities), so a steady state never looks drifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thanos_operator import names

_OWNED_TEMPLATE_ANNOTATIONS = (names.ANNOTATION_CONFIG_HASH, names.ANNOTATION_SECRETS_HASH)


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _containers(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("name"): c for c in _get(obj, "spec", "template", "spec", "containers") or []}


def drift(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Field paths where ``live`` no longer has what ``desired`` sets (empty: in line)."""
    problems: list[str] = []
    live_labels = _get(live, "metadata", "labels") or {}
    for key, value in (_get(desired, "metadata", "labels") or {}).items():
        if live_labels.get(key) != value:
            problems.append(f"metadata.labels[{key}]")
    live_refs = [
        (r.get("uid"), bool(r.get("controller"))) for r in _get(live, "metadata", "ownerReferences") or []
    ]
    for ref in _get(desired, "metadata", "ownerReferences") or []:
        if (ref.get("uid"), True) not in live_refs:
            problems.append("metadata.ownerReferences")
    kind = desired.get("kind")
    if kind in ("ConfigMap", "Secret") and (desired.get("data") or {}) != (live.get("data") or {}):
        problems.append("data")
    elif kind == "Service":
        for field in ("selector", "ports"):
            if _get(desired, "spec", field) != _get(live, "spec", field):
                problems.append(f"spec.{field}")
    elif kind in ("Deployment", "StatefulSet"):
        if _get(desired, "spec", "replicas") != _get(live, "spec", "replicas"):
            problems.append("spec.replicas")
        live_annotations = _get(live, "spec", "template", "metadata", "annotations") or {}
        desired_annotations = _get(desired, "spec", "template", "metadata", "annotations") or {}
        for key in _OWNED_TEMPLATE_ANNOTATIONS:
            if desired_annotations.get(key) != live_annotations.get(key):
                problems.append(f"spec.template.metadata.annotations[{key}]")
        live_containers = _containers(live)
        for name, container in _containers(desired).items():
            current = live_containers.get(name)
            if current is None:
                problems.append(f"spec.template.spec.containers[{name}]")
                continue
            for field in ("image", "args"):
                if container.get(field) != current.get(field):
                    problems.append(f"spec.template.spec.containers[{name}].{field}")
    return problems
