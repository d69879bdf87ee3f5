"""kube-state-metrics ``CustomResourceStateMetrics`` -> MetricsConfigurations (``panopticon import ksm``).

KSM's Custom Resource State configuration (kubernetes/kube-state-metrics
``pkg/customresourcestate/config.go``, ``config_metrics_types.go``; semantics in
``registry_factory.go``; documented in ``docs/metrics/extend/customresourcestate-metrics.md``)
describes, per ``spec.resources[]`` entry (one group/version/kind), metric families whose series
come from paths. ``convert`` turns each resource into one MetricsConfiguration with
``spec.compatibility: KubeStateMetrics`` (no default labels, labels sorted by name, KSM's value
conversions: ``exporter/ksmvalues.py``), so rendering it gives KSM's exposition for the same
objects. The mapping, field by field, is docs/ksm.md; in short:

- ``groupVersionKind`` -> ``targetRef``; the labels ``customresource_group/version/kind``;
  ``metricNamePrefix`` (default ``kube_customresource``) -> ``spec.metricNamePrefix``;
- resource and metric ``commonLabels`` / ``labelsFromPath`` -> labels, in KSM's precedence
  (common labels, then ``*`` map copies, then single fields; the metric's over the resource's);
- ``each.gauge`` -> ``metricValue.valueFromPath`` (+ ``nilIsZero``), fanned out over ``path`` with
  ``field.type: Entries`` when the metric has per-element labels (``labelFromKey`` becomes a
  ``keyFromPath`` label); ``each.info`` -> value 1 (``field.type: Entries`` with ``labelFromKey``,
  else ``Elements``); ``each.stateSet`` -> ``states`` over ``list``;
- path segments: names -> ``.name``, ``"0"`` -> ``[0]``, ``"[k=v]"`` -> a filter;
- a wildcard ``version: "*"`` / ``kind: "*"`` -> one configuration per installed CRD kind it
  matches (``installed``, listed by ``exporter.ksmsource.crd_kinds``), all feeding the same
  families (``exporter.sharing``).

What has no equivalent is a ``Problem`` naming the KSM field (``spec.resources[0].metrics[1].each.type``).
Pure: the caller reads the file and prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.types import Problem

__all__ = ["DEFAULT_PREFIX", "Converted", "InstalledKinds", "convert", "has_wildcard"]

DEFAULT_PREFIX = "kube_customresource"  # KSM's GetMetricNamePrefix without metricNamePrefix
_RESERVED = "customresource"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"-?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}

_TOP = {"kind", "apiVersion", "spec", "metadata"}
_RESOURCE = {"groupVersionKind", "metricNamePrefix", "labelsFromPath", "commonLabels", "metrics",
             "errorLogV", "resourcePlural"}
_GVK = {"group", "version", "kind"}
_GENERATOR = {"name", "help", "each", "commonLabels", "labelsFromPath", "errorLogV"}
_EACH = {"type", "gauge", "info", "stateSet"}
_GAUGE = {"path", "labelsFromPath", "valueFrom", "labelFromKey", "nilIsZero", "valueType"}
_INFO = {"path", "labelsFromPath", "labelFromKey"}
_STATESET = {"path", "labelsFromPath", "list", "labelName", "valueFrom"}


@dataclass(slots=True)
class Converted:
    """The MetricsConfigurations of one KSM document, and the problems that blocked the others.

    ``names[i]`` is the configuration name resource ``i`` gets (also for problems)."""

    configs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, Problem]] = field(default_factory=list)  # (configuration name, problem)
    names: list[str] = field(default_factory=list)
    # configuration name -> resource index, for the configurations a wildcard expanded into
    expanded: dict[str, int] = field(default_factory=dict)

    def resource_of(self, name: str) -> int:
        """The ``spec.resources`` index a configuration came from."""
        return self.expanded[name] if name in self.expanded else self.names.index(name)


class _Unconvertible(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(path=path, message=message)


# (group, version, kind) of every installed CustomResourceDefinition version (``ksmsource.crd_kinds``)
InstalledKinds = Sequence[tuple[str, str, str]]


def convert(document: Mapping[str, Any], *, installed: InstalledKinds | None = None) -> Converted:
    """Convert one ``CustomResourceStateMetrics`` document (every resource it can).

    ``installed``: the cluster's CRD kinds, which a wildcard ``version: "*"`` / ``kind: "*"``
    expands over as KSM's discovery does (one configuration per matched group/version/kind,
    all feeding the same families); without it a wildcard is a problem asking for them."""
    result = Converted()
    try:
        _check_keys(document, _TOP, "")
        kind = document.get("kind")
        if kind is not None and kind != "CustomResourceStateMetrics":
            raise _Unconvertible("kind", f"expected 'CustomResourceStateMetrics' (got {kind!r})")
        spec = _mapping(document.get("spec"), "spec", required=True)
        _check_keys(spec, {"resources"}, "spec")
        resources = _sequence(spec.get("resources"), "spec.resources", required=True)
    except _Unconvertible as exc:
        result.problems.append(("", exc.problem))
        return result
    families: dict[str, str] = {}
    for index, resource in enumerate(resources):
        where = f"spec.resources[{index}]"
        name = _config_name(resource, index, result.names)
        result.names.append(name)
        try:
            expanded = _expand(resource, where=where, installed=installed)
            configs = [_resource(one, where=where, name=name if one is resource else
                                 _config_name(one, index, [*result.names, *result.expanded], version=True))
                       for one in expanded]
        except _Unconvertible as exc:
            result.problems.append((name, exc.problem))
            continue
        clash = _family_clash(configs[0], where=where, families=families)
        if clash is not None:
            result.problems.append((name, clash))
            continue
        for config in configs:  # the expansions of one wildcard feed the same families
            if config["metadata"]["name"] != name:
                result.expanded[config["metadata"]["name"]] = index
            result.configs.append(config)
    return result


def has_wildcard(document: Any) -> bool:
    """Whether a resource of the document has a ``"*"`` version or kind (needs ``installed``)."""
    spec = document.get("spec") if isinstance(document, Mapping) else None
    resources = spec.get("resources") if isinstance(spec, Mapping) else None
    return any(isinstance(r, Mapping) and isinstance(gvk := r.get("groupVersionKind"), Mapping)
               and "*" in (gvk.get("version"), gvk.get("kind")) for r in resources or [])


def _expand(resource: Any, *, where: str, installed: InstalledKinds | None) -> list[Any]:
    """``resource`` itself, or one copy per installed CRD kind its wildcard GVK matches (KSM's
    ``ResolveGVKToGVKPs``: the group is required, ``version``/``kind`` ``"*"`` match any, every
    version a CRD lists counts)."""
    gvk = resource.get("groupVersionKind") if isinstance(resource, Mapping) else None
    if not isinstance(gvk, Mapping):
        return [resource]
    version, kind = gvk.get("version"), gvk.get("kind")
    if version != "*" and kind != "*":
        return [resource]
    group = gvk.get("group", "")
    field_name = "version" if version == "*" else "kind"
    if not isinstance(group, str) or not group or "*" in group:
        raise _Unconvertible(f"{where}.groupVersionKind.group", (
            f"{group!r}: a wildcard version or kind needs a group (as in kube-state-metrics)"))
    if installed is None:
        raise _Unconvertible(f"{where}.groupVersionKind.{field_name}", (
            f"'*': a wildcard (every {field_name} KSM discovers from the installed CRDs) needs the "
            "cluster's CustomResourceDefinitions: pass --kubeconfig (or write one resource per "
            "group/version/kind)"))
    matched = sorted({(k, v) for g, v, k in installed
                      if g == group and version in ("*", v) and kind in ("*", k)})
    if not matched:
        raise _Unconvertible(f"{where}.groupVersionKind", (
            f"group {group!r} version {version!r} kind {kind!r} matches no installed "
            "CustomResourceDefinition"))
    return [{**resource, "groupVersionKind": {"group": group, "version": v, "kind": k}} for k, v in matched]


# --- one resource ------------------------------------------------------------------------------

def _resource(resource: Any, *, where: str, name: str) -> dict[str, Any]:
    resource = _mapping(resource, where, required=True)
    _check_keys(resource, _RESOURCE, where)
    gvk = _mapping(resource.get("groupVersionKind"), f"{where}.groupVersionKind", required=True)
    _check_keys(gvk, _GVK, f"{where}.groupVersionKind")
    group = _string(gvk.get("group", ""), f"{where}.groupVersionKind.group")
    version = _string(gvk.get("version"), f"{where}.groupVersionKind.version", required=True)
    kind = _string(gvk.get("kind"), f"{where}.groupVersionKind.kind", required=True)
    for field_name, value in (("group", group), ("version", version), ("kind", kind)):
        if "*" in value:
            raise _Unconvertible(f"{where}.groupVersionKind.{field_name}", (
                f"{value!r}: only a whole '*' version or kind is a wildcard (kube-state-metrics matches no "
                "other pattern); write one resource per group/version/kind"))
    prefix = resource.get("metricNamePrefix")
    if prefix is not None:
        prefix = _string(prefix, f"{where}.metricNamePrefix")
    _int(resource.get("errorLogV"), f"{where}.errorLogV")  # log verbosity: nothing to convert
    _string(resource.get("resourcePlural", ""), f"{where}.resourcePlural")  # discovery finds it
    base = _Labels.of(resource, where=where)
    base.common = {**base.common, f"{_RESERVED}_group": group, f"{_RESERVED}_version": version,
                   f"{_RESERVED}_kind": kind}
    metrics_in = _sequence(resource.get("metrics"), f"{where}.metrics", required=True)
    metrics = [_metric(generator, where=f"{where}.metrics[{index}]", base=base)
               for index, generator in enumerate(metrics_in)]
    spec: dict[str, Any] = {
        "compatibility": "KubeStateMetrics",
        "targetRef": {"apiVersion": f"{group}/{version}" if group else version, "kind": kind},
        "metricNamePrefix": DEFAULT_PREFIX if prefix is None else prefix,
        "commonLabels": base.labels(""),
        "metrics": metrics,
    }
    if prefix == "":  # bare names as fullName: kube-apiserver 1.20 refuses metricNamePrefix: ""
        del spec["metricNamePrefix"]
        for metric in metrics:
            metric["fullName"] = metric["name"]
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name}, "spec": spec}


@dataclass(slots=True)
class _Labels:
    """``commonLabels`` and ``labelsFromPath`` of one level (resource or metric)."""

    common: dict[str, str]
    paths: dict[str, list[str]]
    where: str

    @classmethod
    def of(cls, node: Mapping[str, Any], *, where: str) -> _Labels:
        common = _mapping(node.get("commonLabels"), f"{where}.commonLabels")
        paths = _mapping(node.get("labelsFromPath"), f"{where}.labelsFromPath")
        return cls(
            common={str(k): _string(v, f"{where}.commonLabels.{k}") for k, v in common.items()},
            paths={str(k): _path(v, f"{where}.labelsFromPath.{k}") for k, v in paths.items()},
            where=where,
        )

    def merged(self, other: _Labels) -> _Labels:
        """KSM's ``Labels.Merge``: the other level's keys override."""
        return _Labels(common={**self.common, **other.common}, paths={**self.paths, **other.paths},
                       where=other.where)

    def labels(self, element: str) -> list[dict[str, str]]:
        """KSM's ``BaseLabels`` order: common labels, ``*`` map copies (sorted), single fields."""
        out: list[dict[str, str]] = [{"key": key, "value": value} for key, value in self.common.items()
                                     if value != ""]
        out += _path_labels(self.paths, element=element, where=f"{self.where}.labelsFromPath")
        return out


def _path_labels(paths: Mapping[str, list[str]], *, element: str, where: str) -> list[dict[str, str]]:
    """``labelsFromPath`` entries as labels (KSM's ``addPathLabels`` order): keys starting or
    ending with ``*`` copy a map (sorted by key, first), then the single fields."""
    stars = sorted(key for key in paths if key.startswith("*") or key.endswith("*"))
    out: list[dict[str, str]] = []
    for star in stars:
        prefix = star[:-1] if star.endswith("*") else ""
        out.append({"key": prefix + "*", "valuePath": _join(element, paths[star], f"{where}.{star}")})
    for key, segments in paths.items():
        if key in stars:
            continue
        out.append({"key": _sanitize(key), "valuePath": _join(element, segments, f"{where}.{key}")})
    return out


def _metric(generator: Any, *, where: str, base: _Labels) -> dict[str, Any]:
    generator = _mapping(generator, where, required=True)
    _check_keys(generator, _GENERATOR, where)
    name = _string(generator.get("name"), f"{where}.name", required=True)
    help_text = _string(generator.get("help", ""), f"{where}.help")
    _int(generator.get("errorLogV"), f"{where}.errorLogV")
    own = _Labels.of(generator, where=where)
    each = _mapping(generator.get("each"), f"{where}.each", required=True)
    _check_keys(each, _EACH, f"{where}.each")
    kind = str(_string(each.get("type"), f"{where}.each.type", required=True)).lower()
    metric: dict[str, Any] = {"name": name, "help": help_text, "type": "gauge"}
    # the metric's own labels restate the resource's whenever it has any (KSM merges them per
    # metric; restating keeps the precedence exact), else the resource's are spec.commonLabels
    labels = base.merged(own).labels("") if (own.common or own.paths) else []
    if kind == "gauge":
        _gauge(_typed(each, "gauge", where), where=f"{where}.each.gauge", metric=metric, labels=labels)
    elif kind == "info":
        _info(_typed(each, "info", where), where=f"{where}.each.info", metric=metric, labels=labels)
    elif kind == "stateset":
        _stateset(_typed(each, "stateSet", where), where=f"{where}.each.stateSet", metric=metric,
                  labels=labels)
    else:
        raise _Unconvertible(f"{where}.each.type",
                             f"must be one of 'Gauge', 'Info' or 'StateSet' (got {kind!r})")
    return metric


def _typed(each: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    for other in ("gauge", "info", "stateSet"):
        if other != key and each.get(other) is not None:
            raise _Unconvertible(f"{where}.each.{other}",
                                 f"each.type is {key!r}: this field would be ignored")
    return _mapping(each.get(key), f"{where}.each.{key}", required=True)


def _gauge(gauge: Mapping[str, Any], *, where: str, metric: dict[str, Any],
           labels: list[dict[str, str]]) -> None:
    _check_keys(gauge, _GAUGE, where)
    path = _path(gauge.get("path", []), f"{where}.path")
    value_from = _path(gauge.get("valueFrom", []), f"{where}.valueFrom")
    key = _string(gauge.get("labelFromKey", ""), f"{where}.labelFromKey")
    own = _own_paths(gauge, where)
    nil_is_zero = gauge.get("nilIsZero", False)
    if not isinstance(nil_is_zero, bool):
        raise _Unconvertible(f"{where}.nilIsZero", f"must be a boolean (got {nil_is_zero!r})")
    value_type = _string(gauge.get("valueType", ""), f"{where}.valueType")
    if value_type not in ("", "quantity", "duration"):
        raise _Unconvertible(f"{where}.valueType", f"must be 'quantity' or 'duration' (got {value_type!r})")
    element = ""
    if key or own:  # per-element labels: walk the path as KSM does (lists, map entries, a value)
        if not path:
            raise _Unconvertible(f"{where}.path", "an empty path with labelFromKey or labelsFromPath "
                                 "(every top-level field of the object as an element) cannot be converted")
        element = _join("", path, f"{where}.path") + "[*]"
        metric["field"] = {"path": _join("", path, f"{where}.path"), "type": "Entries"}
        if key:
            labels = [*labels, {"key": _sanitize(key), "keyFromPath": element}]
        labels = labels + _path_labels(own, element=element, where=f"{where}.labelsFromPath")
        value_path = _join(element, value_from, f"{where}.valueFrom")
    else:
        value_path = _join("", path + value_from, f"{where}.path")
    if labels:
        metric["labels"] = labels
    if value_type == "duration":
        metric["params"] = [{"key": "value", "valuePath": value_path}]
        metric["metricValue"] = {"valueFromExpression": "toSecond(default(value, '0s'))" if nil_is_zero
                                 else "toSecond(value)"}
        return
    metric["metricValue"] = {"valueFromPath": value_path, **({"nilIsZero": True} if nil_is_zero else {})}


def _info(info: Mapping[str, Any], *, where: str, metric: dict[str, Any],
          labels: list[dict[str, str]]) -> None:
    _check_keys(info, _INFO, where)
    path = _path(info.get("path", []), f"{where}.path")
    key = _string(info.get("labelFromKey", ""), f"{where}.labelFromKey")
    own = _own_paths(info, where)
    if not own and not key:
        raise _Unconvertible(f"{where}.labelsFromPath", "an Info metric without labelsFromPath or "
                             "labelFromKey gives no series in kube-state-metrics")
    if path:
        element = _join("", path, f"{where}.path") + "[*]"
        metric["field"] = {"path": _join("", path, f"{where}.path"), "type": "Entries" if key else "Elements"}
        if key:
            labels = [*labels, {"key": _sanitize(key), "keyFromPath": element}]
    elif key:
        raise _Unconvertible(f"{where}.labelFromKey", "labelFromKey with an empty path (the object's "
                             "top-level fields as keys) cannot be converted")
    else:
        element = ""
    own_labels = _path_labels(own, element=element, where=f"{where}.labelsFromPath")
    metric["labels"] = labels + own_labels
    if key:  # a map entry always has its key label
        metric["metricValue"] = {"value": 1}
        return
    # KSM writes an info series only when one of its own labels is there
    metric["params"] = [{"key": f"l{i}", "valuePath": label["valuePath"]}
                        for i, label in enumerate(own_labels)]
    present = [f"(l{i} != 'nil' && len(l{i}) > 0)" if label["key"].endswith("*") else f"l{i} != 'nil'"
               for i, label in enumerate(own_labels)]
    metric["metricValue"] = {"valueFromExpression": f"{' || '.join(present)} ? 1"}


def _stateset(stateset: Mapping[str, Any], *, where: str, metric: dict[str, Any],
              labels: list[dict[str, str]]) -> None:
    _check_keys(stateset, _STATESET, where)
    path = _path(stateset.get("path", []), f"{where}.path")
    value_from = _path(stateset.get("valueFrom", []), f"{where}.valueFrom")
    label_name = _string(stateset.get("labelName"), f"{where}.labelName", required=True)
    states = [_string(s, f"{where}.list[{i}]") for i, s in
              enumerate(_sequence(stateset.get("list"), f"{where}.list", required=True))]
    own = _own_paths(stateset, where)
    if own and path:  # per-element labels: one state set per element of a list path
        element = _join("", path, f"{where}.path") + "[*]"
        metric["field"] = {"path": _join("", path, f"{where}.path"), "type": "Elements"}
        value_path = _join(element, value_from, f"{where}.valueFrom")
    else:
        element = ""
        value_path = _join("", path + value_from, f"{where}.path")
    labels = labels + _path_labels(own, element=element, where=f"{where}.labelsFromPath")
    if labels:
        metric["labels"] = labels
    metric["params"] = [{"key": "state", "valuePath": value_path}]
    seen: set[str] = set()
    values = []
    for index, state in enumerate(states):
        if state in seen:
            raise _Unconvertible(f"{where}.list[{index}]", f"duplicate state {state!r}: KSM would emit "
                                 "the same series twice")
        seen.add(state)
        literal = _quote(state, f"{where}.list[{index}]")
        values.append({"labelValue": state, "metricValue": {
            # no series when the value is missing (quietly) or not a string (an error), as KSM
            "valueFromExpression": f"state != 'nil' && startsWith(state, '') ? int(state == {literal})"}})
    metric["states"] = {"labelKey": _sanitize(label_name), "values": values}


def _own_paths(node: Mapping[str, Any], where: str) -> dict[str, list[str]]:
    paths = _mapping(node.get("labelsFromPath"), f"{where}.labelsFromPath")
    return {str(k): _path(v, f"{where}.labelsFromPath.{k}") for k, v in paths.items()}


# --- paths ---------------------------------------------------------------------------------------

def _join(element: str, segments: Sequence[str], where: str) -> str:
    """``element`` (a path ending in ``[*]``, or "" for the object) followed by KSM segments."""
    text = element + "".join(_segment(part, where) for part in segments)
    return text or "."


def _segment(part: str, where: str) -> str:
    if part.startswith("[") and part.endswith("]"):
        key, eq, value = part[1:-1].partition("=")
        if not eq:
            raise _Unconvertible(where, f"invalid list lookup: {part}")  # KSM's own compile error
        member = f"@.{key}" if _NAME.fullmatch(key) else f"@.{_quote(key, where)}"
        tests = [f"{member}=={_quote(value, where)}"]
        if _NUMBER.fullmatch(value):
            tests.append(f"{member}=={value}")
        if value in _GO_BOOLS:
            tests.append(f"{member}=={'true' if _GO_BOOLS[value] else 'false'}")
        return f"[?({' || '.join(tests)})]"
    if _INDEX.fullmatch(part):
        return f"[{part}]"
    if "=" in part:
        raise _Unconvertible(where, f"{part!r}: a 'key=value' test on an object field cannot be converted "
                             "(use the list lookup '[key=value]' or the field name)")
    if _NAME.fullmatch(part):
        return f".{part}"
    return "." + _quote(part, where)


def _quote(text: str, where: str) -> str:
    if "'" in text or "\\" in text:
        raise _Unconvertible(where, f"{text!r}: quotes and backslashes in path segments cannot be converted")
    return f"'{text}'"


def _sanitize(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)  # KSM's SanitizeLabelName


# --- checks ----------------------------------------------------------------------------------------

def _check_keys(node: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in node:
        if key not in allowed:
            raise _Unconvertible(f"{where}.{key}" if where else str(key),
                                 "unknown field (kube-state-metrics would ignore it)")


def _mapping(value: Any, where: str, *, required: bool = False) -> Mapping[str, Any]:
    if value is None:
        if required:
            raise _Unconvertible(where, "required field is missing")
        return {}
    if not isinstance(value, Mapping):
        raise _Unconvertible(where, f"must be an object (got {type(value).__name__})")
    return value


def _sequence(value: Any, where: str, *, required: bool = False) -> list[Any]:
    if value is None:
        if required:
            raise _Unconvertible(where, "required field is missing")
        return []
    if not isinstance(value, list):
        raise _Unconvertible(where, f"must be a list (got {type(value).__name__})")
    if required and not value:
        raise _Unconvertible(where, "must not be empty")
    return value


def _string(value: Any, where: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _Unconvertible(where, "required field is missing")
        return ""
    if isinstance(value, (bool, dict, list)):
        raise _Unconvertible(where, f"must be a string (got {value!r})")
    text = str(value)
    if required and not text:
        raise _Unconvertible(where, "must not be empty")
    return text


def _int(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Unconvertible(where, f"must be an integer (got {value!r})")


def _path(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Unconvertible(where, f"must be a list of path segments (got {value!r})")
    return [_string(part, f"{where}[{i}]") for i, part in enumerate(value)]


# --- names and families ----------------------------------------------------------------------------

def _config_name(resource: Any, index: int, taken: Sequence[str], *, version: bool = False) -> str:
    """``<group>-<kind>`` (``-<version>`` too for a wildcard's expansions), made unique."""
    gvk = resource.get("groupVersionKind") if isinstance(resource, Mapping) else None
    group = str(gvk.get("group") or "core") if isinstance(gvk, Mapping) else "core"
    kind = str(gvk.get("kind") or f"resource-{index}") if isinstance(gvk, Mapping) else f"resource-{index}"
    if version and isinstance(gvk, Mapping):
        kind = f"{kind}-{gvk.get('version')}"
    base = re.sub(r"[^a-z0-9-]+", "-", f"{group.replace('.', '-')}-{kind}".lower()).strip("-") or "resource"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _family_clash(config: Mapping[str, Any], *, where: str, families: dict[str, str]) -> Problem | None:
    """Two resources feeding one family: KSM prints it twice (or drops one); not convertible."""
    spec = config["spec"]
    mine: dict[str, int] = {}
    for index, metric in enumerate(spec["metrics"]):
        mine.setdefault(metric.get("fullName") or f"{spec['metricNamePrefix']}_{metric['name']}", index)
    for name, index in mine.items():
        if name in families:
            return Problem(path=f"{where}.metrics[{index}].name", message=(
                f"family {name!r} is also produced by {families[name]}: families fed by several resources "
                "are not supported (set a different metricNamePrefix)"))
    for name, index in mine.items():
        families[name] = f"{where}.metrics[{index}]"
    return None
