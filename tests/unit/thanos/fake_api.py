"""An in-memory stand-in for the kube-apiserver, enough for the reconciler's unit tests."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

from kube.client import ApiError

_IMMUTABLE_STS = ("selector", "serviceName", "volumeClaimTemplates")


def invalid_error(kind: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """A 422 exactly as kube-apiserver 1.20 sends it (a Status with details.causes)."""
    fields = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    message = f'{kind}.apps "{name}" is invalid: {fields}'
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": {"name": name, "group": "apps", "kind": kind, "causes": causes},
        "code": 422,
    }
    return ApiError.from_status(body)


def immutable_statefulset_error(name: str) -> ApiError:
    return invalid_error(
        "StatefulSet",
        name,
        [
            {
                "reason": "FieldValueForbidden",
                "message": "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'template', and 'updateStrategy' are forbidden",
                "field": "spec",
            }
        ],
    )


def _in_all_namespaces(obj_path: str, list_path: str) -> bool:
    """``/apis/g/v/namespaces/<ns>/<resource>/<name>`` is in the cluster-wide ``/apis/g/v/<resource>``."""
    prefix, _, resource = list_path.rpartition("/")
    parts = obj_path.removeprefix(prefix + "/").split("/")
    return (
        "/namespaces/" not in list_path
        and obj_path.startswith(prefix + "/namespaces/")
        and len(parts) == 4
        and parts[2] == resource
    )


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.events: list[dict[str, Any]] = []
        self.reject: dict[str, ApiError] = {}  # path -> the error its next applies get
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)

    # helpers
    def put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta["resourceVersion"] = str(next(self._rv))
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def writes_of(self, verb: str) -> list[str]:
        return [p for v, p in self.writes if v == verb]

    # KubeApi
    async def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if path not in self.objects:
            raise ApiError(404, "NotFound", path)
        return copy.deepcopy(self.objects[path])

    async def list(
        self, path: str, *, params: Mapping[str, Any] | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        selector = dict(kv.split("=", 1) for kv in (params or {}).get("labelSelector", "").split(",") if kv)
        items = []
        for obj_path, obj in sorted(self.objects.items()):
            if obj_path.rsplit("/", 1)[0] != path and not _in_all_namespaces(obj_path, path):
                continue
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                items.append(copy.deepcopy(obj))
        return items, "1"

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.writes.append(("create", path))
        self.events.append(dict(obj))
        return dict(obj)

    async def apply(
        self,
        path: str,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = True,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        self.writes.append(("apply", path))
        if path in self.reject:
            raise self.reject[path]
        current = self.objects.get(path)
        if current is not None and obj["kind"] == "StatefulSet":
            for field in _IMMUTABLE_STS:
                if current["spec"].get(field) != obj["spec"].get(field):
                    raise immutable_statefulset_error(obj["metadata"]["name"])
        merged = copy.deepcopy(dict(obj))
        if current is not None:
            merged["metadata"]["uid"] = current["metadata"]["uid"]
            if "status" in current:
                merged["status"] = current["status"]
        return self.put(path, merged)

    async def patch(self, path: str, patch: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        self.writes.append(("patch", path))
        target = path.removesuffix("/status")
        obj = self.objects[target]
        obj.update(copy.deepcopy(patch))
        return copy.deepcopy(obj)

    async def delete(
        self,
        path: str,
        *,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        self.writes.append(("delete", path))
        if path not in self.objects:
            return None
        if preconditions and self.objects[path]["metadata"]["uid"] != preconditions.get("uid"):
            raise ApiError(409, "Conflict", "uid precondition failed")
        if propagation_policy == "Orphan":  # the garbage collector must still remove the finalizer
            self.objects[path]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            self.objects[path]["metadata"]["finalizers"] = ["orphan"]
            return copy.deepcopy(self.objects[path])
        return self.objects.pop(path)

    def collect_garbage(self) -> None:
        for path in [p for p, o in self.objects.items() if o["metadata"].get("deletionTimestamp")]:
            del self.objects[path]
