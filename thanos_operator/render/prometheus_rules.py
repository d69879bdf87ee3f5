"""PrometheusRule objects -> the rule files Thanos Rule reads, packed into ConfigMaps.

prometheus-operator's ``PrometheusRule`` (``monitoring.coreos.com/v1``) holds a Prometheus rule
file in ``spec.groups``. As prometheus-operator does for ThanosRuler, each selected object
becomes one file (key ``<namespace>.<name>.yaml``; a namespace has no dots, so keys never
collide) and the files are packed into as few ConfigMaps as fit ``MAX_CONFIG_MAP_DATA`` each
(prometheus-operator uses half the 1 MiB object limit as well), named
``<t>-ruler-rulefiles-<i>``. The reconciler lists the objects (``RenderContext.prometheus_rules``);
``render.ruler`` mounts the ConfigMaps next to the user's own rule ConfigMaps.

Only the fields the Prometheus rule-file grammar of our Thanos release knows are kept (Thanos
parses rule files strictly, so one unknown field would stop the ruler): groups ``name``,
``interval``, ``limit``, ``partial_response_strategy`` (Thanos' own), ``rules``; rules
``record``, ``alert``, ``expr``, ``for``, ``keep_firing_for``, ``labels``, ``annotations``.
Everything is pure and deterministic (sorted keys and objects), so a steady state renders the
same bytes and costs no writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

JsonObject = dict[str, Any]

MAX_CONFIG_MAP_DATA = 512 * 1024
GROUP_FIELDS = ("name", "interval", "limit", "partial_response_strategy", "rules")
RULE_FIELDS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
_MAX_KEY = 253  # a ConfigMap data key


def rule_file_key(namespace: str, name: str) -> str:
    key = f"{namespace}.{name}.yaml"
    if len(key) <= _MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{key[: _MAX_KEY - len(digest) - 6]}-{digest}.yaml"


def _kept(obj: Mapping[str, Any], fields: tuple[str, ...]) -> JsonObject:
    return {f: obj[f] for f in fields if obj.get(f) is not None}


def rule_file(spec: Mapping[str, Any]) -> str:
    """A PrometheusRule's ``spec`` as a Prometheus rule file (``groups:`` only, known fields only)."""
    groups = []
    for group in spec.get("groups") or []:
        kept = _kept(group, GROUP_FIELDS)
        kept["rules"] = [_kept(rule, RULE_FIELDS) for rule in group.get("rules") or []]
        groups.append(kept)
    text: str = yaml.safe_dump({"groups": groups}, sort_keys=True, default_flow_style=False, width=1 << 20)
    return text


def rule_files(rules: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, str]:
    """(namespace, name) -> spec of each selected PrometheusRule  ->  file name -> content."""
    return {rule_file_key(ns, name): rule_file(spec) for (ns, name), spec in sorted(rules.items())}


def pack(files: Mapping[str, str], *, limit: int = MAX_CONFIG_MAP_DATA) -> list[dict[str, str]]:
    """Files in key order, a new ConfigMap whenever the next file would cross ``limit`` bytes.

    A single file larger than ``limit`` gets a ConfigMap of its own (the API server refuses it
    beyond 1 MiB, which surfaces as an ApplyRejected status).
    """
    shards: list[dict[str, str]] = []
    size = 0
    for key, content in sorted(files.items()):
        entry = len(key.encode()) + len(content.encode())
        if not shards or (size + entry > limit and shards[-1]):
            shards.append({})
            size = 0
        shards[-1][key] = content
        size += entry
    return shards
