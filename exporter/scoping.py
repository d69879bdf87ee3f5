"""Target scoping of one configuration: ``spec.targetRef.selector`` (a Kubernetes label selector)
and ``spec.targetRef.namespaces`` / ``excludeNamespaces``.

``compile_scope`` validates them (problems with field paths) and returns a ``Scope``: the
selector in the API's string form (``app=web,tier in (a,b),!canary``), sent by the live
controller as the list/watch ``labelSelector`` so unselected objects are never received, and
``accepts(obj)``, the same rule applied in Python for offline rendering and for the namespaces
(a namespaced watch per listed namespace; excluded namespaces are filtered on every event).
Label-selector syntax and meaning are Kubernetes' (apimachinery ``LabelSelectorAsSelector``):
``matchLabels`` entries and ``matchExpressions`` are ANDed; operators ``In``, ``NotIn``
(also true when the label is absent), ``Exists``, ``DoesNotExist``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.types import Problem

__all__ = ["Scope", "compile_scope"]

# apimachinery's qualified name (optional DNS prefix) and label value
_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                   r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

Test = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which objects of the target kind a configuration reads."""

    selector: str  # labelSelector for list/watch; "" selects everything
    namespaces: tuple[str, ...]  # watch only these (empty: every namespace)
    exclude_namespaces: frozenset[str]
    _tests: tuple[Test, ...]

    def accepts(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        namespace = meta.get("namespace") or ""
        if namespace:
            if self.namespaces and namespace not in self.namespaces:
                return False
            if namespace in self.exclude_namespaces:
                return False
        if not self._tests:
            return True
        labels = meta.get("labels")
        labels = labels if isinstance(labels, Mapping) else {}
        return all(test(labels) for test in self._tests)

    def namespace_ok(self, namespace: str) -> bool:
        """The namespace part of ``accepts`` (cluster-scoped objects, ``""``, always pass)."""
        if not namespace:
            return True
        if self.namespaces and namespace not in self.namespaces:
            return False
        return namespace not in self.exclude_namespaces


def compile_scope(*, selector: Mapping[str, Any] | None, namespaces: Sequence[str],
                  exclude_namespaces: Sequence[str], problems: list[Problem]) -> Scope | None:
    """The scope of ``spec.targetRef`` (None when nothing is scoped)."""
    if not selector and not namespaces and not exclude_namespaces:
        return None
    where = "spec.targetRef"
    for field, names in (("namespaces", namespaces), ("excludeNamespaces", exclude_namespaces)):
        for index, name in enumerate(names):
            if not _NAMESPACE.match(name):
                problems.append(Problem(path=f"{where}.{field}[{index}]",
                                        message=f"{name!r} is not a namespace name (RFC 1123 label)"))
    overlap = sorted(set(namespaces) & set(exclude_namespaces))
    if overlap:
        problems.append(Problem(path=f"{where}.excludeNamespaces",
                                message=f"{', '.join(overlap)} both included and excluded"))
    parts: list[str] = []
    tests: list[Test] = []
    selector = selector or {}
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        path = f"{where}.selector.matchLabels.{key}"
        if _check(key, [value], path=path, problems=problems):
            parts.append(f"{key}={value}")
            tests.append(_test("=", key, frozenset([value])))
    for index, expression in enumerate(selector.get("matchExpressions") or ()):
        path = f"{where}.selector.matchExpressions[{index}]"
        key, operator, values = expression.get("key", ""), expression.get("operator", ""), \
            list(expression.get("values") or ())
        if operator not in _OPERATORS:
            problems.append(Problem(path=f"{path}.operator",
                                    message=f"must be one of {', '.join(_OPERATORS)} (got {operator!r})"))
            continue
        if operator in ("In", "NotIn") and not values:
            problems.append(Problem(path=f"{path}.values", message=f"{operator} needs at least one value"))
            continue
        if operator in ("Exists", "DoesNotExist") and values:
            problems.append(Problem(path=f"{path}.values", message=f"{operator} takes no values"))
            continue
        if not _check(key, values, path=path, problems=problems):
            continue
        chosen = frozenset(values)
        listed = ",".join(sorted(chosen))
        parts.append({"In": f"{key} in ({listed})", "NotIn": f"{key} notin ({listed})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[operator])
        tests.append(_test(operator, key, chosen))
    return Scope(selector=",".join(parts), namespaces=tuple(sorted(set(namespaces))),
                 exclude_namespaces=frozenset(exclude_namespaces), _tests=tuple(tests))


def _test(operator: str, key: str, values: frozenset[str]) -> Test:
    if operator in ("=", "In"):
        return lambda labels: labels.get(key) in values
    if operator == "NotIn":
        return lambda labels: labels.get(key) not in values
    if operator == "Exists":
        return lambda labels: key in labels
    return lambda labels: key not in labels


def _check(key: str, values: Sequence[Any], *, path: str, problems: list[Problem]) -> bool:
    ok = True
    if not isinstance(key, str) or not _NAME.match(key):
        problems.append(Problem(path=f"{path}.key" if not path.endswith(str(key)) else path,
                                message=f"{key!r} is not a valid label key"))
        ok = False
    for value in values:
        if not isinstance(value, str) or not _VALUE.match(value):
            problems.append(Problem(path=path if path.endswith(str(key)) else f"{path}.values",
                                    message=f"{value!r} is not a valid label value"))
            ok = False
    return ok
