"""Discovery documents: ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``, ``/version``.

Built from the registry (``apiserver.registry``): every group-version and every discoverable
resource entry. They never look at the store, so the aggregator's availability probe and
discovery refresh (a 5 s budget; docs/design.md) are answered at once whatever the data is
doing. ``/apis`` answers the legacy ``APIGroupList`` with ``application/json`` for every Accept,
including the aggregated-discovery v2 media type: the aggregator then falls back to
``/apis/<group>/<version>`` (§8.6), which is how v1.20 to current kube-apiservers all work.

The Prometheus endpoints (``.../prometheus``) are deliberately *not* listed as a resource: they
answer text, not objects, so listing them would make ``kubectl get prometheus`` (and any
"get every listable resource" tool) fail to decode them. RBAC does not need discovery: rules
name ``prometheus`` in group ``metrics.panopticon.io`` directly.
"""

from __future__ import annotations

import platform
from typing import Any

from apiserver.registry import ApiGroupVersion, ApiRegistry, ServedResource


def _resource(resource: ServedResource) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        out["shortNames"] = list(resource.short_names)
    if resource.categories:
        out["categories"] = list(resource.categories)
    return out


def api_resource_list(entry: ApiGroupVersion) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": entry.group_version,
        "resources": [_resource(r) for r in entry.resources if r.discoverable],
    }


def _group(versions: list[ApiGroupVersion]) -> dict[str, Any]:
    entries = [{"groupVersion": v.group_version, "version": v.version} for v in versions]
    return {"name": versions[0].group, "versions": entries, "preferredVersion": entries[0]}


def api_group(registry: ApiRegistry, group: str) -> dict[str, Any] | None:
    for name, versions in registry.groups():
        if name == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(versions)}
    return None


def api_group_list(registry: ApiRegistry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(versions) for _name, versions in registry.groups()],
    }


def version_info(version: str = "0.1.0") -> dict[str, Any]:
    major, minor, *_ = ([*version.split("."), "0", "0"])[:3]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{version}",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
    }
