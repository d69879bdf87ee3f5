"""Discovery documents: ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``, ``/version``.

These are constants: they never look at the store, so the aggregator's availability probe and
discovery refresh (5 s budget: kube-aggregator's availability probe; docs/design.md) are
answered at once whatever the data is doing. ``/apis`` answers the legacy ``APIGroupList``
with ``application/json`` for every Accept, including the aggregated-discovery v2 media type:
the aggregator then falls back to ``/apis/<group>/<version>`` (§8.6), which is how v1.20 to
current kube-apiservers all work.

The Prometheus endpoints (``.../prometheus``) are deliberately *not* listed as a resource: they
answer text, not objects, so listing them would make ``kubectl get prometheus`` (and any
"get every listable resource" tool) fail to decode them. RBAC does not need discovery: rules
name ``prometheus`` in group ``metrics.panopticon.io`` directly.
"""

from __future__ import annotations

import platform
from typing import Any

from apiserver.objects import GROUP, GROUP_VERSION, VERSION

RESOURCES: list[dict[str, Any]] = [
    {
        "name": "metricfamilies",
        "singularName": "metricfamily",
        "namespaced": False,
        "kind": "MetricFamily",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["mf"],
        "categories": ["panopticon"],
    },
    {
        "name": "objectmetrics",
        "singularName": "objectmetrics",
        "namespaced": True,
        "kind": "ObjectMetrics",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["om"],
        "categories": ["panopticon"],
    },
    {
        "name": "clusterobjectmetrics",
        "singularName": "clusterobjectmetrics",
        "namespaced": False,
        "kind": "ClusterObjectMetrics",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["com"],
        "categories": ["panopticon"],
    },
]

_VERSION_ENTRY = {"groupVersion": GROUP_VERSION, "version": VERSION}


def api_resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": RESOURCES,
    }


def api_group() -> dict[str, Any]:
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [_VERSION_ENTRY],
        "preferredVersion": _VERSION_ENTRY,
    }


def api_group_list() -> dict[str, Any]:
    group = api_group()
    del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}


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
