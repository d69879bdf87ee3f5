"""Aggregates (``metrics[].aggregate: {op: count | sum, by: [...]}``): one series per group of
label values instead of one per object, kept up to date on every event without rescans.

The meaning is PromQL's ``count by (...)`` / ``sum by (...)`` over the series the metric would
emit per object: the metric is rendered per object exactly as without ``aggregate`` (its paths,
fan-out, states, dropped series), then its series are grouped by the ``by`` labels, a subset of
``namespace``, the object's name (the kind label: groups per object, e.g. the elements of a list
counted by status), the ``commonLabels``, the metric's ``labels``, its ``states.labelKey`` and the
labels the allow-lists copy; ``count`` gives the number of series of each group, ``sum`` their sum.

Two halves, both decided once at compile time:

- ``AggregateRenderer`` (compiler side, per event): renders one object into its *contribution*,
  sample lines ``name{by labels} value`` (``count``: one per group it touches, with its number
  of series; ``sum``: one per series, so no partial sum is rounded), which the store keeps as
  that object's chunk of the family, exactly where a per-object family keeps its sample lines.
  The per-object views (``ObjectMetrics``) therefore show each object's share.
- ``FamilyAggregate`` (store side): the groups of one family, over all objects and per
  namespace. On every add, update and delete the store hands it the object's old and new
  contribution (``exporter.store``: it has both at hand when it splices a block): the old lines
  are subtracted and the new ones added, O(lines of that object), independent of how many
  objects there are. A group disappears when no object contributes to it any more. Sums are
  exact (integers in units of 2**-1074, the smallest double; NaN and infinities counted apart),
  so the result never depends on the order of events and always equals a recount.

A scrape reads the groups' text, cached per namespace until the groups change; group lines are
sorted by their label text. A namespace-filtered scrape (``/namespaces/{ns}/prometheus``,
``render -n``) gives the aggregate over that namespace's objects only, with the same labels:
when ``namespace`` is among ``by`` those are exactly the full scrape's lines of that namespace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from exporter.naming import label_name_problem
from exporter.types import Problem
from exporter.values import format_value

__all__ = ["AggregateRenderer", "ByLabels", "FamilyAggregate", "compile_by"]

# (object, errors) -> [(group fragments ',k="v",...', value), ...]: one per series of the object
Samples = Callable[[Any, Any], list[tuple[str, float]]]


class ByLabels:
    """Which labels of a metric ``aggregate.by`` keeps (compiled by ``compile_by``)."""

    __slots__ = ("common", "labels", "name", "namespace", "object_labels", "state")

    def __init__(self, *, namespace: bool, name: bool, common: frozenset[str], labels: frozenset[str],
                 state: bool, object_labels: tuple[str, ...]) -> None:
        self.namespace = namespace
        self.name = name  # the object's name (the kind label): per-object counts of list elements
        self.common = common  # commonLabels keys kept
        self.labels = labels  # metrics[].labels keys kept
        self.state = state  # the states label is kept
        self.object_labels = object_labels  # label_* / annotation_* names kept, in exposition order


def compile_by(by: Sequence[str], *, where: str, kind_key: str, common: Iterable[str], labels: Iterable[str],
               state: str | None, object_label: Callable[[str], bool], problems: list[Problem]) -> ByLabels:
    """Check ``aggregate.by`` against the labels the metric has (problems at ``where.by[i]``)."""
    common_keys, label_keys = set(common), set(labels)
    seen: dict[str, int] = {}
    kept_common: set[str] = set()
    kept_labels: set[str] = set()
    kept_object: list[str] = []
    namespace = keep_name = keep_state = False
    for index, name in enumerate(by):
        at = f"{where}.by[{index}]"
        problem = label_name_problem(name)
        if problem is not None:
            problems.append(Problem(path=at, message=problem))
            continue
        if name in seen:
            problems.append(Problem(path=at, message=f"{name!r} is listed twice (also by[{seen[name]}])"))
            continue
        seen[name] = index
        if name == "namespace":
            namespace = True
        elif name == kind_key:
            keep_name = True
        elif name in common_keys:
            kept_common.add(name)
        elif name in label_keys:
            kept_labels.add(name)
        elif state is not None and name == state:
            keep_state = True
        elif object_label(name):
            kept_object.append(name)
        else:
            problems.append(Problem(path=at, message=(
                f"{name!r} is not a label of this metric (by takes namespace, the kind label (the "
                "object's name), commonLabels keys, the metric's labels keys, its states.labelKey, or "
                "a label_*/annotation_* name the allow-lists produce)")))
    ordered = tuple(sorted(n for n in kept_object if n.startswith("label_"))) + tuple(
        sorted(n for n in kept_object if not n.startswith("label_")))
    return ByLabels(namespace=namespace, name=keep_name, common=frozenset(kept_common),
                    labels=frozenset(kept_labels), state=keep_state, object_labels=ordered)


class AggregateRenderer:
    """One object's contribution to an aggregate family: a line ``name{group} value`` per group.

    ``samples`` (the metric's compiled per-object renderer, projected on the ``by`` labels)
    gives every series as its group fragments and value; ``count`` writes how many fall in each
    group, ``sum`` their sum. Same interface as the compiler's per-family renderers."""

    __slots__ = ("_count", "_head", "_samples", "fan_out", "metric", "name_bare", "name_open")

    def __init__(self, *, metric: str, full_name: str, count: bool, head: Callable[[Mapping[str, Any]], str],
                 samples: Samples, fan_out: bool) -> None:
        self.metric = metric
        self.name_open = full_name + "{"
        self.name_bare = full_name + " "
        self.fan_out = fan_out
        self._count = count
        self._head = head  # the by-labels among namespace, commonLabels and object labels
        self._samples = samples

    def render(self, obj: Any, head: str, errors: Any) -> str:
        samples = self._samples(obj, errors)
        if not samples:
            return ""
        base = self._head(obj)
        groups: dict[str, list[float]] = {}
        for fragments, value in samples:
            groups.setdefault(base + fragments if fragments else base, []).append(value)
        lines = []
        for key, values in groups.items():
            start = f"{self.name_open}{key[1:]}}} " if key else self.name_bare
            if self._count:
                lines.append(f"{start}{len(values)}\n")
            else:  # one line per series: a partial sum would be rounded, the store's sum is exact
                lines.extend(f"{start}{format_value(value)}\n" for value in values)
        return "".join(lines)


# --------------------------------------------------------------------------- store side


# Every finite double is an integer multiple of 2**-1074: sums kept as that integer are exact, and
# Python's int / int is correctly rounded, so the sum is read back as the nearest double.
_EXPONENT = 1074
_SCALE = 1 << _EXPONENT


class _Group:
    """One group: how many lines contribute, and the exact sum of their values."""

    __slots__ = ("exact", "nan", "neg_inf", "objects", "pos_inf")

    def __init__(self) -> None:
        self.objects = 0
        self.exact = 0  # the sum of the finite values, in units of 2**-1074
        self.nan = self.pos_inf = self.neg_inf = 0

    def add(self, value: float, sign: int) -> None:
        self.objects += sign
        if value != value:
            self.nan += sign
        elif value == math.inf:
            self.pos_inf += sign
        elif value == -math.inf:
            self.neg_inf += sign
        elif value:
            numerator, denominator = value.as_integer_ratio()  # denominator: a power of two
            units = numerator << (_EXPONENT - denominator.bit_length() + 1)
            self.exact += units if sign > 0 else -units

    def value(self) -> float:
        if self.nan or (self.pos_inf and self.neg_inf):
            return math.nan
        if self.pos_inf:
            return math.inf
        if self.neg_inf:
            return -math.inf
        return self.exact / _SCALE


class FamilyAggregate:
    """The groups of one aggregate family, over all objects and per namespace (see the module
    docstring). Owned by the store, on its event loop."""

    __slots__ = ("_by_namespace", "_groups", "_texts")

    def __init__(self) -> None:
        self._groups: dict[bytes, _Group] = {}
        self._by_namespace: dict[str, dict[bytes, _Group]] = {}
        self._texts: dict[str | None, bytes] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def change(self, *, namespace: str, chunk: bytes, sign: int) -> None:
        """Add (``sign=1``) or subtract (``-1``) one object's contribution ``chunk``."""
        if not chunk:
            return
        scoped = self._by_namespace.get(namespace)
        if scoped is None:
            scoped = self._by_namespace[namespace] = {}
        for line in chunk.split(b"\n"):
            if not line:
                continue
            key, _, text = line.rpartition(b" ")
            value = float(text)
            for groups in (self._groups, scoped):
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group()
                group.add(value, sign)
                if not group.objects:
                    del groups[key]
        if not scoped:
            del self._by_namespace[namespace]
        self._texts.pop(None, None)
        self._texts.pop(namespace, None)

    def text(self, namespace: str | None = None) -> bytes:
        """The family's sample lines (of one namespace's objects), sorted by labels; cached."""
        cached = self._texts.get(namespace)
        if cached is None:
            groups = self._groups if namespace is None else self._by_namespace.get(namespace, {})
            cached = self._texts[namespace] = b"".join(
                [key + b" " + format_value(groups[key].value()).encode() + b"\n" for key in sorted(groups)])
        return cached

    def values(self, namespace: str | None = None) -> dict[bytes, float]:
        """``{b'name{labels}': value}`` (tests and debugging)."""
        groups = self._groups if namespace is None else self._by_namespace.get(namespace, {})
        return {key: group.value() for key, group in groups.items()}
