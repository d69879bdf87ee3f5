"""MetricsConfiguration -> ``CompiledPlan``: everything decided once, so rendering only runs closures.

``compile_config`` validates a configuration (a dict or a parsed model) and collects every
problem it finds (schema, paths, expressions, names, label collisions, duplicate families and
states, fan-outs that would emit one label set twice) into one ``CompileError``. The resulting
plan implements ``exporter.types.Plan``: ``render(obj)`` returns, per family, the sample lines
``name{labels} value\\n`` for one target object. This is the exporter's hot path: label keys are
escaped, ``name{`` prefixes and literal label fragments are built and paths/expressions are
compiled here, and a value that cannot be converted only drops its series (recorded in
``RenderErrors``), it never raises.

Semantics (Panopticon's, docs/design.md "MetricsConfiguration compatibility"; details in
docs/metrics-configuration.md):
- labels, in order: ``namespace`` (when the object has one), ``<lowercase kind>`` = object name,
  ``commonLabels``, the metric's ``labels``, the ``states`` label; a label's ``value`` wins over
  its ``valuePath``; a ``valuePath`` that resolves to nothing (or null) omits the label;
- ``states`` win over ``metricValue``; within a ``MetricValue``: value > valueFromPath >
  valueFromExpression;
- ``[*]`` in any path of a metric (or ``field.type: Array``) fans out: one series per element,
  values taken from the same element; nested wildcards fan out over the product.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from exporter.aggregates import AggregateRenderer, compile_by
from exporter.expressions import CompiledExpression, Env, EvaluationError, ExpressionError, compile_expression
from exporter.functions import FUNCTIONS
from exporter.fused import FusedFamily, FusedLabel, FusedSeries, fuse
from exporter.ksmvalues import format_sample as ksm_format_sample
from exporter.ksmvalues import label_text as ksm_label_text
from exporter.ksmvalues import to_float as ksm_to_float
from exporter.models import Label, Metric, MetricsConfiguration, MetricValue, parse_config
from exporter.naming import (
    default_label_keys,
    escape_label_value,
    family_name,
    label_name_problem,
    metric_name_problem,
)
from exporter.objectlabels import (
    ObjectLabelRenderer,
    collision_source,
    compile_allowlists,
    label_could_collide,
    object_label_getter,
    sanitize,
)
from exporter.paths import MISSING, CompiledPath, PathError, Step, accessor, compile_path, elements_of
from exporter.resources import OBJECT_TOTAL_FUNCTIONS, begin_object, end_object
from exporter.scoping import Scope, compile_scope
from exporter.sharing import disagreement
from exporter.sources import Document
from exporter.types import FamilyHeader, Plan, Problem, RenderErrors, TargetRef, object_line
from exporter.values import ValueConversionError, datetime_to_float, format_value, label_value_of, to_float

__all__ = [
    "CompileError",
    "CompiledPlan",
    "compile_config",
    "compile_documents",
    "find_conflicts",
    "format_problem",
]


class NoSample(Exception):
    """A value that is deliberately absent (``c ? 1`` with ``c`` false): the series is dropped
    quietly, not recorded as an error."""


class CompileError(Exception):
    """A configuration that cannot be compiled; ``problems`` lists all of them."""

    def __init__(self, problems: Sequence[Problem], *, name: str = "") -> None:
        self.problems = list(problems)
        self.name = name
        super().__init__("; ".join(str(p) for p in self.problems))


# A context is the tuple of values a fan-out has walked into: (object, element, sub-element, ...).
Context = tuple[Any, ...]
ValueFn = Callable[[Context], float]


class _ContextPath:
    """A path bound to a fan-out level: ``get(ctx[level])`` reads the value of one element."""

    __slots__ = ("get", "level")

    def __init__(self, level: int, get: Callable[[Any], Any]) -> None:
        self.level = level
        self.get = get

    def __call__(self, ctx: Context) -> Any:
        return self.get(ctx[self.level])

    def reader(self) -> Callable[[Context], Any]:
        """A plain closure doing what ``__call__`` does, without the method-call overhead."""
        get, level = self.get, self.level
        if level == 0:
            return lambda ctx: get(ctx[0])
        return lambda ctx: get(ctx[level])


@dataclass(frozen=True, slots=True)
class _LabelRule:
    literal: str | None  # pre-rendered ',key="value"' for a constant label
    key_open: str  # ',key="'
    path: _ContextPath | None
    level: int
    key: bool = False  # keyFromPath: reads a map key / array index
    spread: str | None = None  # compatibility KubeStateMetrics, key "<prefix>*": the map's entries


@dataclass(frozen=True, slots=True)
class _SeriesRule:
    """One series shape of a family: its state label (if any) and its value."""

    state_fragment: str  # ',phase="Ready"' or ''
    constant: str | None  # pre-formatted value for metricValue.value
    value: ValueFn | None
    # valueFromExpression: (its params' readers, the value from their env), so a family whose
    # series share params (states) reads each param once per object
    expression: tuple[tuple[tuple[str, Callable[[Context], Any]], ...], Callable[[Env], float]] | None = None


def _no_value(_: Any) -> Any:
    return MISSING


class _Renderer(Protocol):
    """Renders one family for one object (``_FamilyRenderer``, ``aggregates.AggregateRenderer``)."""

    metric: str

    def render(self, obj: Any, head: str, errors: RenderErrors | None) -> str: ...


class _FamilyRenderer:
    """Renders one family for one object: the per-object hot loop, kept free of allocations
    that compile time could do (label fragments, ``name{`` prefixes, formatted constants)."""

    __slots__ = ("_env_readers", "_keyed", "_labels", "_levels", "_series", "_single", "_walk", "fan_out",
                 "metric", "name_bare", "name_open")

    def __init__(self, *, metric: str, full_name: str, labels: Sequence[_LabelRule],
                 rules: Sequence[_SeriesRule], levels: Sequence[Callable[[Any], Any]],
                 keyed: bool = False, walk: str | None = None) -> None:
        self.metric = metric  # metrics[].name, for RenderErrors
        self.name_open = full_name + "{"
        self.name_bare = full_name + " "
        # (literal fragment or None, ',key="', level, getter) in definition order
        self._labels: tuple[tuple[str | None, str, int, Callable[[Any], Any]], ...] = tuple(
            (rule.literal, rule.key_open, rule.path.level if rule.path else 0,
             rule.path.get if rule.path else _no_value)
            for rule in labels
        )
        self._series: tuple[tuple[str, str | None, ValueFn], ...] = tuple(
            (rule.state_fragment, rule.constant, rule.value or _no_value) for rule in rules
        )
        # render_single: the params of the expression series, read once per object into one env
        readers: dict[str, Callable[[Context], Any]] = {}
        for rule in rules:
            if rule.expression is not None:
                readers.update(rule.expression[0])
        self._env_readers = tuple(readers.items())
        self._single: tuple[tuple[str, str | None, ValueFn, Callable[[Env], float] | None], ...] = tuple(
            (rule.state_fragment, rule.constant, rule.value or _no_value,
             rule.expression[1] if rule.expression is not None else None) for rule in rules
        )
        self._levels = tuple(levels)  # getters of each fan-out level's array
        self.fan_out = bool(levels)
        self._keyed = keyed  # a label reads a map key: contexts carry the keys after the elements
        self._walk = walk  # field.type Entries / Elements: kube-state-metrics' walk of each.path

    def fusable(self) -> FusedFamily | None:
        """This family as ``exporter.fused`` inlines it: no fan-out, labels read the object."""
        if self.fan_out or any(level != 0 for _, _, level, _ in self._labels):
            return None
        return FusedFamily(
            metric=self.metric, name_open=self.name_open, name_bare=self.name_bare,
            labels=tuple(FusedLabel(literal=literal, key_open=key_open,
                                    get=None if literal is not None else get)
                         for literal, key_open, _, get in self._labels),
            env_readers=self._env_readers,
            series=tuple(FusedSeries(state_fragment=fragment, constant=constant,
                                     compute=compute if constant is None and from_env is None else None,
                                     from_env=from_env if constant is None else None)
                         for fragment, constant, compute, from_env in self._single))

    def render(self, obj: Any, head: str, errors: RenderErrors | None) -> str:
        if not self.fan_out:
            return self.render_single(obj, head, errors)
        seen: set[str] = set()
        return "".join([self._render_context(ctx, head, errors, seen) for ctx in self._contexts(obj)])

    def render_single(self, obj: Any, head: str, errors: RenderErrors | None) -> str:
        """``render`` of a family without fan-out: the one context ``(obj,)``, no seen-set (the
        per-object cost of the initial sync, bench/README.md). Same text, same errors."""
        ctx = (obj,)
        return self._series_lines(ctx, self._labels_of(ctx, head) if self._labels else head, errors)

    def _series_lines(self, ctx: Context, labels: str, errors: RenderErrors | None) -> str:
        """The sample lines of one context with its ``labels``: each series' value (the
        expression params read once into one env), no generator, one label prefix."""
        env: dict[str, Any] = {}
        for param, read in self._env_readers:
            raw = read(ctx)
            env[param] = MISSING if raw is None else raw
        # a line is name{labels[1:] + state fragment} value, or name value without any label
        prefix = self.name_open + labels[1:] if labels else ""
        lines: list[str] = []
        for state_fragment, constant, compute, from_env in self._single:
            if constant is None:
                try:
                    value = format_value(compute(ctx) if from_env is None else from_env(env))
                except NoSample:
                    continue
                except (ValueConversionError, EvaluationError) as exc:
                    if errors is not None:
                        errors.items.append((self.metric, exc.reason, str(exc)))
                    continue
            else:
                value = constant
            if prefix:
                lines.append(f"{prefix}{state_fragment}}} {value}\n")
            elif state_fragment:
                lines.append(f"{self.name_open}{state_fragment[1:]}}} {value}\n")
            else:
                lines.append(f"{self.name_bare}{value}\n")
        if len(lines) == 1:
            return lines[0]
        return "".join(lines)

    def _contexts(self, obj: Any) -> list[Context]:
        if self._walk is not None:
            return _walk_contexts(obj, self._levels[0](obj), entries=self._walk == "Entries")
        if self._keyed:
            return self._keyed_contexts(obj)
        contexts: list[Context] = [(obj,)]
        for getter in self._levels:
            contexts = [(*ctx, element) for ctx in contexts for element in elements_of(getter(ctx[-1]))]
            if not contexts:
                break
        return contexts

    def _keyed_contexts(self, obj: Any) -> list[Context]:
        """(object, element 1, ..., element n, key 1, ..., key n): the keys (map keys, array
        indices) sit after the elements, so every other reader keeps its level."""
        if len(self._levels) == 1:  # the common map: one level, no intermediate tuples
            container = self._levels[0](obj)
            if isinstance(container, dict):
                return [(obj, element, key) for key, element in container.items()]
            if isinstance(container, list):
                return [(obj, element, index) for index, element in enumerate(container)]
            return []
        walked: list[tuple[Context, tuple[Any, ...]]] = [((obj,), ())]
        for getter in self._levels:
            following: list[tuple[Context, tuple[Any, ...]]] = []
            for ctx, keys in walked:
                container = getter(ctx[-1])
                if isinstance(container, dict):
                    pairs: Iterable[tuple[Any, Any]] = container.items()
                elif isinstance(container, list):
                    pairs = enumerate(container)
                else:
                    continue
                following.extend(((*ctx, element), (*keys, key)) for key, element in pairs)
            walked = following
            if not walked:
                break
        return [ctx + keys for ctx, keys in walked]

    def _labels_of(self, ctx: Context, head: str) -> str:
        """``head`` and this family's labels for one context, as ``,k="v"`` fragments."""
        fragments = [head]
        for literal, key_open, level, get in self._labels:
            if literal is not None:
                fragments.append(literal)
                continue
            raw = get(ctx[level])
            if type(raw) is not str:
                if raw is MISSING or raw is None:
                    continue
                raw = label_value_of(raw)
            fragments.append(f'{key_open}{escape_label_value(raw)}"')
        return "".join(fragments)

    def _render_context(self, ctx: Context, head: str, errors: RenderErrors | None,
                        seen: set[str] | None) -> str:
        labels = self._labels_of(ctx, head) if self._labels else head
        if seen is not None:
            if labels in seen:
                if errors is not None:
                    errors.items.append((self.metric, "duplicate",
                                         f"another element already produced {{{labels[1:]}}}"))
                return ""
            seen.add(labels)
        return self._series_lines(ctx, labels, errors)

    def _computed(
        self, ctx: tuple[Any, ...], errors: RenderErrors | None
    ) -> Iterator[tuple[str, str | None, float]]:
        """(state fragment, constant text or None, value) of each series of one context: a
        series without a sample is skipped quietly, one that fails is recorded in ``errors``."""
        for state_fragment, constant, compute in self._series:
            if constant is not None:
                yield state_fragment, constant, float(constant)
                continue
            try:
                value = compute(ctx)
            except NoSample:
                continue
            except (ValueConversionError, EvaluationError) as exc:
                if errors is not None:
                    errors.items.append((self.metric, exc.reason, str(exc)))
                continue
            yield state_fragment, None, value

    def samples(self, obj: Any, errors: RenderErrors | None, *, keep: Sequence[bool],
                keep_state: bool) -> list[tuple[str, float]]:
        """Every series ``render`` would emit, as (the fragments of the ``keep`` labels, value):
        what an aggregate groups (exporter/aggregates.py). Same contexts, same drops."""
        contexts = self._contexts(obj) if self.fan_out else [(obj,)]
        seen: set[str] | None = set() if self.fan_out else None
        out: list[tuple[str, float]] = []
        for ctx in contexts:
            full: list[str] = []
            kept: list[str] = []
            for (literal, key_open, level, get), wanted in zip(self._labels, keep, strict=True):
                if literal is not None:
                    fragment = literal
                else:
                    raw = get(ctx[level])
                    if type(raw) is not str:
                        if raw is MISSING or raw is None:
                            continue
                        raw = label_value_of(raw)
                    fragment = f'{key_open}{escape_label_value(raw)}"'
                full.append(fragment)
                if wanted:
                    kept.append(fragment)
            if seen is not None:
                labels = "".join(full)
                if labels in seen:
                    if errors is not None:
                        errors.items.append((self.metric, "duplicate",
                                             f"another element already produced {{{labels[1:]}}}"))
                    continue
                seen.add(labels)
            group = "".join(kept)
            for state_fragment, _constant, value in self._computed(ctx, errors):
                out.append((group + state_fragment if keep_state else group, value))
        return out


def _walk_contexts(obj: Any, container: Any, *, entries: bool) -> list[Context]:
    """``field.type: Entries`` / ``Elements``, kube-state-metrics' walk of ``each.path``
    (``registry_factory.go``, the gauge's and the info's ``Values``): a list gives its elements;
    a map its entries with their keys (Entries) or itself (Elements); a missing or null value one
    absent element (Entries: KSM's ``nilIsZero`` applies to it) or nothing (Elements); any other
    value itself. Contexts are ``(object, element, key)``; the key is None but for map entries."""
    if isinstance(container, list):
        return [(obj, element, None) for element in container]
    if isinstance(container, dict) and entries:
        return [(obj, element, key) for key, element in container.items()]
    if container is MISSING or container is None:
        return [(obj, MISSING, None)] if entries else []
    return [(obj, container, None)]


class _KsmFamilyRenderer(_FamilyRenderer):
    """One metric of a ``compatibility: KubeStateMetrics`` configuration: labels are a map (a later
    definition of a key overrides an earlier one, an absent value overrides nothing, ``<prefix>*``
    keys copy a map's entries), written sorted by name; the object's series are sorted by their
    labels and values are written as KSM writes them (``exporter/ksmvalues.py``)."""

    __slots__ = ("_ksm_labels",)

    def __init__(self, *, labels: Sequence[_LabelRule], **kwargs: Any) -> None:
        super().__init__(labels=labels, **kwargs)
        self._ksm_labels: tuple[tuple[str | None, str, int, Callable[[Any], Any], str | None], ...] = tuple(
            (rule.literal, rule.key_open, rule.path.level if rule.path else 0,
             rule.path.get if rule.path else _no_value, rule.spread)
            for rule in labels
        )

    def render_sorted(self, obj: Any, head: Sequence[str], errors: RenderErrors | None) -> str:
        contexts = self._contexts(obj) if self.fan_out else [(obj,)]
        seen: set[str] = set()
        lines: list[tuple[tuple[tuple[str, str], ...], str]] = []
        for ctx in contexts:
            element: list[str] = []
            for literal, key_open, level, get, spread in self._ksm_labels:
                if literal is not None:
                    element.append(literal)
                    continue
                raw = get(ctx[level])
                if spread is not None:
                    element.extend(spread_fragments(spread, raw))
                elif raw is not MISSING and raw is not None:
                    element.append(f'{key_open}{escape_label_value(ksm_label_text(raw))}"')
            for state_fragment, constant, number in self._computed(ctx, errors):
                value = constant if constant is not None else ksm_format_sample(number)
                pairs = _label_map([*head, state_fragment, *element] if state_fragment else [*head, *element])
                labels = "".join(fragment for _, fragment in pairs)
                if labels in seen:
                    if errors is not None:
                        errors.items.append((self.metric, "duplicate",
                                             f"another element already produced {{{labels[1:]}}}"))
                    continue
                seen.add(labels)
                line = f"{self.name_open}{labels[1:]}}} {value}\n" if labels else f"{self.name_bare}{value}\n"
                lines.append((pairs, line))
        lines.sort(key=lambda item: item[0])  # KSM sorts an object's series by their labels
        return "".join(line for _, line in lines)


def _label_map(fragments: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``,k="v"`` fragments -> (key, fragment) pairs sorted by key; a later key overrides."""
    chosen: dict[str, str] = {}
    for fragment in fragments:
        chosen[fragment[1:fragment.index("=")]] = fragment
    return tuple((key, chosen[key]) for key in sorted(chosen))


def spread_fragments(prefix: str, value: Any) -> list[str]:
    """A ``<prefix>*`` label: every entry of a map as ``,<sanitized prefix+key>="<%v value>"``
    (KSM's ``addPathLabels``; the map's keys in sorted order, so a collision is decided alike)."""
    if not isinstance(value, dict):
        return []
    return [f',{sanitize(prefix + str(key))}="{escape_label_value(ksm_label_text(value[key]))}"'
            for key in sorted(value, key=str)]


class _KsmFamily:
    """A family of a ``compatibility: KubeStateMetrics`` configuration: one or more metrics with
    the same name (KSM allows that; here they form one family with the first one's HELP)."""

    __slots__ = ("parts",)

    def __init__(self, first: _KsmFamilyRenderer) -> None:
        self.parts: list[_KsmFamilyRenderer] = [first]

    def render_sorted(self, obj: Any, head: Sequence[str], errors: RenderErrors | None) -> str:
        if len(self.parts) == 1:
            return self.parts[0].render_sorted(obj, head, errors)
        return "".join(part.render_sorted(obj, head, errors) for part in self.parts)


@dataclass(slots=True)
class CompiledPlan:
    """A compiled MetricsConfiguration (implements ``exporter.types.Plan``)."""

    name: str
    target: TargetRef
    families: tuple[FamilyHeader, ...]
    family_paths: tuple[str, ...]  # "spec.metrics[i]" of each family, for problems
    _kind_key_open: str
    _common: tuple[_LabelRule, ...]
    _renderers: tuple[_Renderer, ...]
    _object_labels: ObjectLabelRenderer | None = None
    scope: Scope | None = None  # spec.targetRef.selector / namespaces / excludeNamespaces
    _ksm: tuple[_KsmFamily, ...] | None = None  # spec.compatibility: KubeStateMetrics
    # an expression calls a resource total: each object's totals are computed once per render
    _memo_totals: bool = False
    # each renderer's render, bound once (a family without fan-out: its render_single)
    _calls: tuple[Callable[[Any, str, RenderErrors | None], str], ...] = field(init=False, default=())
    # the same render generated as one function (exporter/fused.py); None for KSM plans
    _fused: Callable[[Any, RenderErrors | None], tuple[bytes, ...]] | None = field(init=False, default=None)
    _render_fn: Callable[[Any, RenderErrors | None], tuple[bytes, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self._calls = tuple(
            renderer.render_single if isinstance(renderer, _FamilyRenderer) and not renderer.fan_out
            else renderer.render for renderer in self._renderers)
        if self._ksm is None:
            parts = [(renderer.fusable() if isinstance(renderer, _FamilyRenderer) else None) or call
                     for renderer, call in zip(self._renderers, self._calls, strict=True)]
            self._fused = fuse(
                kind_key_open=self._kind_key_open, parts=parts, no_sample=NoSample,
                head=self._head if self._common or self._object_labels is not None else None)
        self._render_fn = self._fused if self._fused is not None else self._walk_rules

    def accepts(self, obj: Mapping[str, Any]) -> bool:
        """Whether the configuration reads this object of its kind (its scope; offline use)."""
        return self.scope is None or self.scope.accepts(obj)

    def render(self, obj: Mapping[str, Any], errors: RenderErrors | None = None) -> tuple[bytes, ...]:
        """Sample lines per family, aligned with ``families``; never raises for bad values."""
        if self._memo_totals:
            return self._with_totals_memo(self._render_fn, obj, errors)
        return self._render_fn(obj, errors)

    def render_generic(self, obj: Mapping[str, Any], errors: RenderErrors | None = None) -> tuple[bytes, ...]:
        """``render`` by the rule-walking renderers: the reference the fused function is held to
        (tests/unit/exporter/test_fused.py), and the only render of KSM plans."""
        if self._memo_totals:
            return self._with_totals_memo(self._walk_rules, obj, errors)
        return self._walk_rules(obj, errors)

    @staticmethod
    def _with_totals_memo(render: Callable[[Any, RenderErrors | None], tuple[bytes, ...]],
                          obj: Mapping[str, Any], errors: RenderErrors | None) -> tuple[bytes, ...]:
        """``render(obj, errors)`` with ``obj``'s resource totals computed once (exporter.resources)."""
        begin_object(obj)
        try:
            return render(obj, errors)
        finally:
            end_object()

    def _walk_rules(self, obj: Mapping[str, Any], errors: RenderErrors | None) -> tuple[bytes, ...]:
        if self._ksm is not None:
            fragments = self._ksm_head(obj)
            return tuple([family.render_sorted(obj, fragments, errors).encode("utf-8", "replace")
                          for family in self._ksm])
        head = self._head(obj)
        # "replace": a lone surrogate (possible from YAML escapes) must not break the render
        return tuple([render(obj, head, errors).encode("utf-8", "replace") for render in self._calls])

    def _head(self, obj: Mapping[str, Any]) -> str:
        """Default labels then commonLabels, as ',k="v"' fragments (commonLabels never fan out)."""
        meta = obj.get("metadata")
        parts: list[str] = []
        if isinstance(meta, dict):
            namespace = meta.get("namespace")
            if isinstance(namespace, str) and namespace:
                parts.append(f',namespace="{escape_label_value(namespace)}"')
            name = meta.get("name")
            if isinstance(name, str) and name:
                parts.append(f'{self._kind_key_open}{escape_label_value(name)}"')
        ctx: Context = (obj,)
        for rule in self._common:
            if rule.literal is not None:
                parts.append(rule.literal)
                continue
            assert rule.path is not None
            raw = rule.path(ctx)
            text = None if raw is MISSING else label_value_of(raw)
            if text is not None:
                parts.append(rule.key_open + escape_label_value(text) + '"')
        if self._object_labels is not None and isinstance(meta, dict):
            parts.append(self._object_labels(meta))
        return "".join(parts)

    def _ksm_head(self, obj: Mapping[str, Any]) -> list[str]:
        """commonLabels as fragments, in definition order (no default labels in this mode)."""
        parts: list[str] = []
        ctx: Context = (obj,)
        for rule in self._common:
            if rule.literal is not None:
                parts.append(rule.literal)
                continue
            assert rule.path is not None
            raw = rule.path(ctx)
            if rule.spread is not None:
                parts.extend(spread_fragments(rule.spread, raw))
            elif raw is not MISSING and raw is not None:
                parts.append(f'{rule.key_open}{escape_label_value(ksm_label_text(raw))}"')
        return parts


# --- compilation ---------------------------------------------------------------------------------

class _Collector:
    """Collects problems while compiling, so one run reports all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.allowlists: tuple[Any, ...] = ()  # spec.labelsAllowlist/annotationsAllowlist, compiled
        self.ksm = False  # spec.compatibility: KubeStateMetrics

    def collides_with_allowlist(self, key: str, where: str) -> bool:
        entry = label_could_collide(key, self.allowlists)
        if entry is None:
            return False
        self.add(where, f"label {key!r} collides with the labels {entry!r} of "
                 f"{collision_source(key, self.allowlists)}")
        return True

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message))

    def path(self, text: str, where: str) -> CompiledPath | None:
        try:
            return compile_path(text)
        except PathError as exc:
            self.add(where, str(exc))
            return None


class GlobalLabels(Protocol):
    """The global ``--metric-labels-allowlist`` / ``--metric-annotations-allowlist``
    (``exporter.metriclabels.MetricLabelsAllowlist``)."""

    def for_target(self, target: TargetRef) -> tuple[tuple[str, ...], tuple[str, ...]]: ...


def compile_config(config: MetricsConfiguration | Mapping[str, Any], *,
                   metric_labels: GlobalLabels | None = None) -> CompiledPlan:
    """Compile a MetricsConfiguration; raises ``CompileError`` with every problem found.

    ``metric_labels``: the global allow-list flags, whose keys for this target are added to
    ``spec.labelsAllowlist`` / ``annotationsAllowlist``."""
    if isinstance(config, MetricsConfiguration):
        model = config
    else:
        parsed, problems = parse_config(config)
        if parsed is None:
            meta = config.get("metadata") if isinstance(config, Mapping) else None
            name = meta.get("name", "") if isinstance(meta, Mapping) else ""
            problems = problems + _problems_of_valid_metrics(config, problems)
            raise CompileError(problems, name=name if isinstance(name, str) else "")
        model = parsed
    collector = _Collector()
    spec = model.spec
    target = TargetRef(api_version=spec.targetRef.apiVersion, kind=spec.targetRef.kind)
    collector.ksm = spec.compatibility == "KubeStateMetrics"
    kind_key = default_label_keys(target)[1]
    reserved = () if collector.ksm else default_label_keys(target)  # KSM has no default labels
    # The global allow-list flags are kube-state-metrics' for its built-in resources; its
    # custom-resource configurations never take them (nor do ours in its compatibility mode).
    flag_labels, flag_annotations = (
        metric_labels.for_target(target) if metric_labels and not collector.ksm else ((), ())
    )
    if collector.ksm and (spec.labelsAllowlist or spec.annotationsAllowlist):
        collector.add("spec.labelsAllowlist" if spec.labelsAllowlist else "spec.annotationsAllowlist",
                      "not available with spec.compatibility: KubeStateMetrics (copy the map with a "
                      "label {key: 'label_*', valuePath: .metadata.labels} instead)")
    object_labels, allowlists = compile_allowlists(labels=spec.labelsAllowlist,
                                                   annotations=spec.annotationsAllowlist,
                                                   problems=collector.problems, flag_labels=flag_labels,
                                                   flag_annotations=flag_annotations)
    collector.allowlists = allowlists
    selector = spec.targetRef.selector
    scope = compile_scope(selector=selector.model_dump() if selector is not None else None,
                          namespaces=spec.targetRef.namespaces,
                          exclude_namespaces=spec.targetRef.excludeNamespaces, problems=collector.problems)

    common_keys: dict[str, str] = {}
    common = tuple(
        rule for index, label in enumerate(spec.commonLabels)
        if (rule := _label_rule(label, where=f"spec.commonLabels[{index}]", reserved=reserved,
                                taken=common_keys, collector=collector, fan_out=None)) is not None
    )

    # every family's label keys start with these (the allow-lists' as name patterns)
    base_keys = _label_keys(spec.commonLabels, ksm=collector.ksm) | frozenset(
        pattern for allowlist in allowlists for pattern in allowlist.patterns)
    if not collector.ksm:
        base_keys |= frozenset(default_label_keys(target))
    families: list[FamilyHeader] = []
    renderers: list[_Renderer] = []
    ksm_families: list[_KsmFamily] = []
    family_paths: list[str] = []
    names_seen: dict[str, int] = {}
    full_names_seen: dict[str, int] = {}
    for index, metric in enumerate(spec.metrics):
        where = f"spec.metrics[{index}]"
        full_name, name_field = _chosen_name(metric, prefix=spec.metricNamePrefix, target=target, where=where)
        problem = metric_name_problem(full_name)
        if problem is not None:
            collector.add(name_field, f"family name {problem}")
        if metric.name in names_seen and not collector.ksm:
            collector.add(f"{where}.name", f"duplicate metric {metric.name!r} "
                          f"(also spec.metrics[{names_seen[metric.name]}]): "
                          "one family would be emitted twice")
            continue
        renderer: _Renderer | None
        if full_name in full_names_seen and collector.ksm:  # KSM: several metrics, one family
            renderer = _compile_metric(metric, where=where, full_name=full_name, reserved=reserved,
                                       common_keys=common_keys, collector=collector)
            names_seen[metric.name] = index
            if isinstance(renderer, _KsmFamilyRenderer):
                position = next(i for i, f in enumerate(families) if f.name == full_name)
                ksm_families[position].parts.append(renderer)
                keys = _metric_label_keys(metric, ksm=True) | (families[position].label_keys or frozenset())
                families[position] = replace(families[position], label_keys=keys)
            continue
        if full_name in full_names_seen:
            collector.add(name_field, f"family {full_name!r} is also the name of "
                          f"spec.metrics[{full_names_seen[full_name]}]: one family would be emitted twice")
            continue
        names_seen[metric.name] = index
        full_names_seen[full_name] = index
        if metric.aggregate is not None and collector.ksm:
            collector.add(f"{where}.aggregate", "not available with spec.compatibility: KubeStateMetrics "
                          "(kube-state-metrics has no aggregates)")
            continue
        if metric.aggregate is not None and metric.aggregate.op == "count" and metric.states is None \
                and metric.metricValue is None:
            metric = metric.model_copy(update={"metricValue": MetricValue(value=1.0)})  # count: any value
        renderer = _compile_metric(metric, where=where, full_name=full_name,
                                   reserved=reserved, common_keys=common_keys, collector=collector)
        if renderer is not None and metric.aggregate is not None:
            renderer = _aggregate_renderer(metric, renderer, where=where, full_name=full_name,
                                           kind_key=kind_key, collector=collector,
                                           common=tuple(zip(spec.commonLabels, common, strict=False)))
        if renderer is not None:
            renderers.append(renderer)
            if isinstance(renderer, _KsmFamilyRenderer):
                ksm_families.append(_KsmFamily(renderer))
            keys = (frozenset(metric.aggregate.by) if metric.aggregate is not None
                    else base_keys | _metric_label_keys(metric, ksm=collector.ksm))
            families.append(FamilyHeader(name=full_name, help=metric.help, type=metric.type,
                                         configuration=model.metadata.name, target=target,
                                         aggregate=metric.aggregate is not None, label_keys=keys))
            family_paths.append(where)

    if collector.problems:
        raise CompileError(collector.problems, name=model.metadata.name)
    return CompiledPlan(
        name=model.metadata.name,
        target=target,
        families=tuple(families),
        family_paths=tuple(family_paths),
        _kind_key_open=f',{kind_key}="',
        _common=common,
        _renderers=tuple(renderers),
        _object_labels=object_labels,
        scope=scope,
        _ksm=tuple(ksm_families) if collector.ksm else None,
        _memo_totals=any(name in text for text in _expression_texts(model)
                         for name in OBJECT_TOTAL_FUNCTIONS),
    )


def _expression_texts(model: MetricsConfiguration) -> Iterator[str]:
    """Every ``valueFromExpression`` of a configuration (metrics and their states)."""
    for metric in model.spec.metrics:
        states = metric.states.values if metric.states is not None else []
        for value in [metric.metricValue, *(state.metricValue for state in states)]:
            if value is not None and value.valueFromExpression:
                yield value.valueFromExpression


def _aggregate_renderer(metric: Metric, inner: _Renderer, *, where: str, full_name: str, kind_key: str,
                        common: Sequence[tuple[Label, _LabelRule]],
                        collector: _Collector) -> AggregateRenderer | None:
    """``metrics[].aggregate``: the metric's per-object renderer, grouped by ``by``."""
    assert metric.aggregate is not None and isinstance(inner, _FamilyRenderer)
    allowlists = collector.allowlists
    by = compile_by(metric.aggregate.by, where=f"{where}.aggregate", kind_key=kind_key,
                    common=(label.key for label, _ in common), labels=(label.key for label in metric.labels),
                    state=metric.states.labelKey if metric.states is not None else None,
                    object_label=lambda name: label_could_collide(name, allowlists) is not None,
                    problems=collector.problems)
    if any(p.path.startswith(f"{where}.aggregate") for p in collector.problems):
        return None
    keep = tuple(label.key in by.labels for label in metric.labels)
    kept_common = tuple(rule for label, rule in common if label.key in by.common)
    getters = tuple((f',{name}="', object_label_getter(name, allowlists)) for name in by.object_labels)
    with_namespace, with_name, keep_state = by.namespace, by.name, by.state
    name_open = f',{kind_key}="'

    def head(obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        parts: list[str] = []
        if with_namespace:
            namespace = meta.get("namespace")
            if isinstance(namespace, str) and namespace:
                parts.append(f',namespace="{escape_label_value(namespace)}"')
        if with_name:
            name = meta.get("name")
            if isinstance(name, str) and name:
                parts.append(f'{name_open}{escape_label_value(name)}"')
        for rule in kept_common:
            if rule.literal is not None:
                parts.append(rule.literal)
                continue
            assert rule.path is not None
            raw = rule.path((obj,))
            if raw is not MISSING and (text := label_value_of(raw)) is not None:
                parts.append(rule.key_open + escape_label_value(text) + '"')
        for key_open, get in getters:
            value = get(meta)
            if value is not None:
                parts.append(f'{key_open}{escape_label_value(value)}"')
        return "".join(parts)

    def samples(obj: Any, errors: Any) -> list[tuple[str, float]]:
        return inner.samples(obj, errors, keep=keep, keep_state=keep_state)

    return AggregateRenderer(metric=metric.name, full_name=full_name, count=metric.aggregate.op == "count",
                             head=head, samples=samples, fan_out=inner.fan_out)


def _label_keys(labels: Iterable[Label], *, ksm: bool) -> frozenset[str]:
    """The keys ``labels`` give a series; a compatibility ``<prefix>*`` label as the pattern
    ``<sanitized prefix>*`` (the map's keys are only known per object)."""
    return frozenset(sanitize(label.key[:-1]) + "*" if ksm and label.key.endswith("*") else label.key
                     for label in labels)


def _metric_label_keys(metric: Metric, *, ksm: bool) -> frozenset[str]:
    """A metric's own label keys: its labels and its states label (exporter/sharing.py)."""
    keys = _label_keys(metric.labels, ksm=ksm)
    return keys | {metric.states.labelKey} if metric.states is not None else keys


def _chosen_name(metric: Metric, *, prefix: str | None, target: TargetRef,
                 where: str) -> tuple[str, str]:
    """The family name and the field it comes from: ``fullName`` > ``metricNamePrefix`` + name >
    Panopticon's ``<group>_<kind>_<name>``."""
    if metric.fullName is not None:
        return metric.fullName, f"{where}.fullName"
    if prefix is not None:
        return (f"{prefix}_{metric.name}" if prefix else metric.name), f"{where}.name"
    return family_name(target, metric.name), f"{where}.name"


_METRIC_INDEX = re.compile(r"^spec\.metrics\[(\d+)\]")


def _problems_of_valid_metrics(config: Mapping[str, Any], schema: Sequence[Problem]) -> list[Problem]:
    """Compile problems of the metrics that passed schema validation, so one run reports both
    (a metric with a missing ``states.labelKey`` and another with a broken expression: two lines).

    The schema-valid metrics are compiled in a copy of the configuration whose invalid parts are
    left out (invalid metrics) or replaced by a neutral stand-in (metadata, targetRef,
    commonLabels); their problems are mapped back to the original metric indices."""
    spec = config.get("spec") if isinstance(config, Mapping) else None
    metrics = spec.get("metrics") if isinstance(spec, Mapping) else None
    if not isinstance(metrics, list):
        return []
    bad_metrics = {int(m.group(1)) for p in schema if (m := _METRIC_INDEX.match(p.path))}
    keep = [i for i in range(len(metrics)) if i not in bad_metrics]
    if not keep:
        return []
    paths = [p.path for p in schema]
    repaired_spec = dict(spec)  # type: ignore[arg-type]
    repaired_spec["metrics"] = [metrics[i] for i in keep]
    if any(p.startswith("spec.targetRef") for p in paths):
        repaired_spec["targetRef"] = {"apiVersion": "v1", "kind": "SchemaError"}
    if any(p.startswith("spec.commonLabels") for p in paths):
        repaired_spec["commonLabels"] = []
    repaired = {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
                "metadata": {"name": "schema-error"}, "spec": repaired_spec}
    if any(p.startswith("spec.") and not p.startswith(("spec.metrics", "spec.targetRef", "spec.commonLabels"))
           for p in paths):
        return []  # an unknown spec field: nothing more can be said safely
    model, still = parse_config(repaired)
    if model is None or still:
        return []
    try:
        compile_config(model)
    except CompileError as exc:
        def original(match: re.Match[str]) -> str:
            return f"spec.metrics[{keep[int(match.group(1))]}]"

        return [Problem(path=_METRIC_INDEX.sub(original, p.path), message=p.message) for p in exc.problems]
    return []


@dataclass(slots=True)
class _FanOut:
    """The fan-out domain of one metric: the wildcard prefixes every [*] path must share."""

    segments: tuple[tuple[Step, ...], ...] = ()  # prefixes before each wildcard
    source: str = ""  # where the deepest domain came from (for messages)

    @property
    def depth(self) -> int:
        return len(self.segments)


def _domain_of(path: CompiledPath, *, array_field: bool) -> tuple[tuple[Step, ...], ...]:
    segments = path.segments
    if array_field and segments[-1]:
        return segments  # ".a.b" typed Array: fan out over its elements
    return segments[:-1]


def _bind(path: CompiledPath, *, fan_out: _FanOut | None, where: str,
          collector: _Collector) -> _ContextPath | None:
    """Bind a path to the fan-out level its wildcards reach (checking they share the domain)."""
    if not path.is_simple or path.wildcards == 0:
        return _ContextPath(0, path.first)
    if fan_out is None:
        collector.add(where, f"{path.text!r}: [*] is not allowed here (commonLabels cannot fan out)")
        return None
    own = path.segments
    level = len(own) - 1
    if tuple(own[:level]) != fan_out.segments[:level]:
        collector.add(where, f"{path.text!r} does not walk the same array as {fan_out.source!r}: "
                      "all [*] paths of one metric must share their array prefixes")
        return None
    return _ContextPath(level, accessor(own[level]))


def _label_rule(label: Label, *, where: str, reserved: Iterable[str], taken: dict[str, str],
                collector: _Collector, fan_out: _FanOut | None) -> _LabelRule | None:
    key = label.key
    if collector.ksm:
        return _ksm_label_rule(label, where=where, collector=collector, fan_out=fan_out)
    problem = label_name_problem(key)
    if problem is not None:
        collector.add(f"{where}.key", problem)
        return None
    if key in reserved:
        collector.add(f"{where}.key", f"label {key!r} collides with a default label "
                      f"({' and '.join(repr(r) for r in reserved)} are added to every series)")
        return None
    if key in taken:
        collector.add(f"{where}.key", f"label {key!r} is already defined at {taken[key]}")
        return None
    if collector.collides_with_allowlist(key, f"{where}.key"):
        return None
    taken[key] = where
    key_open = f',{key}="'
    if label.value:  # Panopticon: a non-empty value wins over valuePath
        return _LabelRule(literal=f'{key_open}{escape_label_value(label.value)}"', key_open=key_open,
                          path=None, level=0)
    if label.keyFromPath is not None:
        return _key_label_rule(label, where=where, key_open=key_open, collector=collector, fan_out=fan_out)
    if not label.valuePath:
        collector.add(where, "a label needs value or valuePath")
        return None
    path = collector.path(label.valuePath, f"{where}.valuePath")
    if path is None:
        return None
    bound = _bind(path, fan_out=fan_out, where=f"{where}.valuePath", collector=collector)
    if bound is None:
        return None
    return _LabelRule(literal=None, key_open=key_open, path=bound, level=bound.level)


def _ksm_label_rule(label: Label, *, where: str, collector: _Collector,
                    fan_out: _FanOut | None) -> _LabelRule | None:
    """A label of a ``compatibility: KubeStateMetrics`` configuration: keys may repeat (the later
    one overrides), and ``<prefix>*`` with a ``valuePath`` copies that map's entries."""
    key = label.key
    spread = key[:-1] if key.endswith("*") else None
    if spread is None:
        problem = label_name_problem(key)
        if problem is not None:
            collector.add(f"{where}.key", problem)
            return None
    key_open = f',{key}="'
    if spread is None and label.value:
        return _LabelRule(literal=f'{key_open}{escape_label_value(label.value)}"', key_open=key_open,
                          path=None, level=0)
    if spread is None and label.keyFromPath is not None:
        return _key_label_rule(label, where=where, key_open=key_open, collector=collector, fan_out=fan_out)
    if not label.valuePath:
        collector.add(where, "a label needs valuePath" if spread is not None else
                      "a label needs value or valuePath")
        return None
    path = collector.path(label.valuePath, f"{where}.valuePath")
    if path is None:
        return None
    bound = _bind(path, fan_out=fan_out, where=f"{where}.valuePath", collector=collector)
    if bound is None:
        return None
    return _LabelRule(literal=None, key_open=key_open, path=bound, level=bound.level, spread=spread)


def _key_label_rule(label: Label, *, where: str, key_open: str, collector: _Collector,
                    fan_out: _FanOut | None) -> _LabelRule | None:
    """``keyFromPath: .status.capacity[*]``: the key of the element the last ``[*]`` walks."""
    assert label.keyFromPath is not None
    if label.valuePath:
        collector.add(where, "a label takes valuePath or keyFromPath, not both")
        return None
    path = collector.path(label.keyFromPath, f"{where}.keyFromPath")
    if path is None:
        return None
    if not path.is_simple or path.wildcards == 0 or path.segments[-1]:
        collector.add(f"{where}.keyFromPath", f"{label.keyFromPath!r}: keyFromPath must end with [*] "
                      "(or .*), the map or array whose keys become the label")
        return None
    if fan_out is None:
        collector.add(f"{where}.keyFromPath", "keyFromPath is not allowed here (commonLabels cannot fan out)")
        return None
    level = path.wildcards
    if tuple(path.segments[:level]) != fan_out.segments[:level]:
        collector.add(f"{where}.keyFromPath", f"{label.keyFromPath!r} does not walk the same map or array "
                      f"as {fan_out.source!r}: all [*] paths of one metric must share their prefixes")
        return None
    # the key of level k sits at ctx[depth + k] (see _FamilyRenderer._keyed_contexts)
    return _LabelRule(literal=None, key_open=key_open,
                      path=_ContextPath(fan_out.depth + level, _identity), level=level, key=True)


def _identity(value: Any) -> Any:
    return value


def _compile_metric(metric: Metric, *, where: str, full_name: str, reserved: tuple[str, ...],
                    common_keys: Mapping[str, str], collector: _Collector) -> _FamilyRenderer | None:
    before = len(collector.problems)
    fan_out = _fan_out_of(metric, where=where, collector=collector)

    taken = dict(common_keys)
    labels = tuple(
        rule for index, label in enumerate(metric.labels)
        if (rule := _label_rule(label, where=f"{where}.labels[{index}]", reserved=reserved, taken=taken,
                                collector=collector, fan_out=fan_out)) is not None
    )
    params = _params_of(metric, where=where, fan_out=fan_out, collector=collector)
    value_type = metric.field.type if metric.field is not None else None

    rules: list[_SeriesRule] = []
    if metric.states is not None:
        state_key = metric.states.labelKey
        problem = label_name_problem(state_key)
        if problem is not None:
            collector.add(f"{where}.states.labelKey", problem)
        elif state_key in reserved:
            collector.add(f"{where}.states.labelKey", f"label {state_key!r} collides with a default label")
        elif state_key in taken and not collector.ksm:
            collector.add(f"{where}.states.labelKey",
                          f"label {state_key!r} is already defined at {taken[state_key]}")
        else:
            collector.collides_with_allowlist(state_key, f"{where}.states.labelKey")
        seen_states: dict[str, int] = {}
        for index, state in enumerate(metric.states.values):
            state_where = f"{where}.states.values[{index}]"
            if state.labelValue in seen_states:
                collector.add(f"{state_where}.labelValue",
                              f"duplicate state {state.labelValue!r} "
                              f"(also values[{seen_states[state.labelValue]}]): "
                              "both would emit the same label set")
                continue
            seen_states[state.labelValue] = index
            fragment = f',{state_key}="{escape_label_value(state.labelValue)}"'
            series = _series_rule(state.metricValue, where=f"{state_where}.metricValue", fragment=fragment,
                                  params=params, value_type=value_type, fan_out=fan_out, collector=collector)
            if series is not None:
                rules.append(series)
    elif metric.metricValue is not None:
        series = _series_rule(metric.metricValue, where=f"{where}.metricValue", fragment="", params=params,
                              value_type=value_type, fan_out=fan_out, collector=collector)
        if series is not None:
            rules.append(series)
    else:
        collector.add(where, "a metric needs states or metricValue")

    if fan_out is not None and fan_out.depth and not any(rule.level == fan_out.depth for rule in labels):
        collector.add(where, f"fan-out over {fan_out.source!r} has no label taken from its elements "
                      f"(a labels[].valuePath with {fan_out.depth} [*]): every element would emit the "
                      "same label set")
    walk = value_type if value_type in ("Entries", "Elements") else None
    if walk is not None and fan_out.depth != 1:
        collector.add(f"{where}.field.path", f"field.type {walk} walks one map or list: its path "
                      "takes no [*] (the other paths address the element as <field.path>[*])")
    if len(collector.problems) > before:
        return None
    depth = fan_out.depth if fan_out is not None else 0
    levels = tuple(accessor(fan_out.segments[i]) for i in range(depth)) if fan_out is not None else ()
    kind = _KsmFamilyRenderer if collector.ksm else _FamilyRenderer
    return kind(metric=metric.name, full_name=full_name, labels=labels, rules=rules, levels=levels,
                keyed=any(rule.key for rule in labels), walk=walk)


def _fan_out_of(metric: Metric, *, where: str, collector: _Collector) -> _FanOut:
    """The deepest wildcard domain among the metric's paths (``field.type: Array`` included)."""
    candidates: list[tuple[tuple[tuple[Step, ...], ...], str]] = []
    if metric.field is not None:
        path = collector.path(metric.field.path, f"{where}.field.path")
        if path is not None and path.is_simple:
            walked = metric.field.type in ("Array", "Entries", "Elements")
            candidates.append((_domain_of(path, array_field=walked), metric.field.path))
    texts = [label.valuePath for label in metric.labels if not label.value and label.valuePath]
    texts += [label.keyFromPath for label in metric.labels if not label.value and label.keyFromPath]
    texts += [param.valuePath for param in metric.params if not param.value and param.valuePath]
    values = [metric.metricValue] if metric.states is None and metric.metricValue is not None else []
    if metric.states is not None:
        values = [state.metricValue for state in metric.states.values]
    texts += [v.valueFromPath for v in values if v.value is None and v.valueFromPath]
    for text in texts:
        try:
            path = compile_path(text)
        except PathError:
            continue  # reported where the path is bound
        if path.is_simple and path.wildcards:
            candidates.append((_domain_of(path, array_field=False), text))
    if not candidates:
        return _FanOut()
    segments, source = max(candidates, key=lambda c: len(c[0]))
    return _FanOut(segments=segments, source=source)


def _params_of(metric: Metric, *, where: str, fan_out: _FanOut,
               collector: _Collector) -> dict[str, Callable[[Context], Any]]:
    params: dict[str, Callable[[Context], Any]] = {}
    for index, param in enumerate(metric.params):
        param_where = f"{where}.params[{index}]"
        if param.key in params:
            collector.add(f"{param_where}.key", f"duplicate param {param.key!r}")
            continue
        if param.value:  # a non-empty value wins over valuePath
            constant = param.value
            params[param.key] = lambda ctx, constant=constant: constant  # type: ignore[misc]
            continue
        if not param.valuePath:
            collector.add(param_where, "a param needs value or valuePath")
            continue
        path = collector.path(param.valuePath, f"{param_where}.valuePath")
        if path is None:
            continue
        bound = _bind(path, fan_out=fan_out, where=f"{param_where}.valuePath", collector=collector)
        if bound is not None:
            params[param.key] = bound.reader()
    return params


def _series_rule(value: MetricValue, *, where: str, fragment: str,
                 params: Mapping[str, Callable[[Context], Any]], value_type: str | None,
                 fan_out: _FanOut, collector: _Collector) -> _SeriesRule | None:
    if value.value is not None:
        formatted = (ksm_format_sample if collector.ksm else format_value)(float(value.value))
        return _SeriesRule(state_fragment=fragment, constant=formatted, value=None)
    if value.valueFromPath:
        path = collector.path(value.valueFromPath, f"{where}.valueFromPath")
        if path is None:
            return None
        bound = _bind(path, fan_out=fan_out, where=f"{where}.valueFromPath", collector=collector)
        if bound is None:
            return None
        return _SeriesRule(state_fragment=fragment, constant=None,
                           value=_path_value(bound, datetime=value_type == "DateTime",
                                             text=value.valueFromPath, ksm=collector.ksm,
                                             nil_is_zero=bool(value.nilIsZero)))
    if value.valueFromExpression:
        try:
            expression = compile_expression(value.valueFromExpression, params=params.keys(),
                                            functions=FUNCTIONS)
        except ExpressionError as exc:
            collector.add(f"{where}.valueFromExpression", str(exc))
            return None
        return _SeriesRule(state_fragment=fragment, constant=None,
                           value=_expression_value(expression, params),
                           expression=_expression_from_env(expression, params))
    collector.add(where, "metricValue needs one of value, valueFromPath, valueFromExpression")
    return None


def _path_value(path: _ContextPath, *, datetime: bool, text: str, ksm: bool = False,
                nil_is_zero: bool = False) -> ValueFn:
    convert = datetime_to_float if datetime else ksm_to_float if ksm else to_float
    get, level = path.get, path.level  # not path(ctx): a Python-level __call__ costs a frame

    def read(ctx: Context) -> float:
        raw = get(ctx[level])
        if raw is MISSING or raw is None:
            if nil_is_zero:
                return 0.0
            raise ValueConversionError(f"valueFromPath {text!r} matched nothing", reason="missing")
        return convert(raw)

    return read


def _expression_value(expression: CompiledExpression,
                      params: Mapping[str, Callable[[Context], Any]]) -> ValueFn:
    used = tuple((name, params[name]) for name in sorted(expression.params))
    evaluate, optional = expression.evaluate, expression.optional

    if len(used) == 1:
        ((only_name, only_get),) = used

        def evaluate_one(ctx: Context) -> float:
            raw = only_get(ctx)
            result = evaluate({only_name: MISSING if raw is None else raw})
            if optional and result is None:
                raise NoSample
            return _result_to_float(result, expression.text)

        return evaluate_one

    def evaluate_many(ctx: Context) -> float:
        env = {}
        for name, get in used:
            raw = get(ctx)
            env[name] = MISSING if raw is None else raw
        result = evaluate(env)
        if optional and result is None:
            raise NoSample
        return _result_to_float(result, expression.text)

    return evaluate_many


def _expression_from_env(
    expression: CompiledExpression, params: Mapping[str, Callable[[Context], Any]]
) -> tuple[tuple[tuple[str, Callable[[Context], Any]], ...], Callable[[Env], float]]:
    """``_expression_value`` split in two: the readers of its params, and the value from the
    env they give (``{name: value, MISSING for null}``, as ``_expression_value`` builds it)."""
    used = tuple((name, params[name]) for name in sorted(expression.params))
    evaluate, optional, text = expression.evaluate, expression.optional, expression.text

    def from_env(env: Env) -> float:
        result = evaluate(env)
        if type(result) is int or type(result) is float:  # _result_to_float's first case, inline
            return float(result)
        if optional and result is None:
            raise NoSample
        return _result_to_float(result, text)

    return used, from_env


def _result_to_float(result: Any, text: str) -> float:
    if type(result) is int or type(result) is float:
        return float(result)
    if result is MISSING or result is None:
        raise EvaluationError(f"expression {text!r} gave nil", reason="expression")
    try:
        return to_float(result)
    except ValueConversionError as exc:
        raise EvaluationError(f"expression {text!r} gave {result!r}: {exc}", reason="expression") from None


# --- conflicts between plans -------------------------------------------------------------------

def find_conflicts(plans: Sequence[CompiledPlan]) -> list[tuple[str, Problem]]:
    """Families more than one configuration produces and that disagree (``exporter.sharing``):
    (configuration name, problem) pairs. Agreeing families are shared, not a conflict."""
    owners: dict[str, tuple[FamilyHeader, str]] = {}
    found: list[tuple[str, Problem]] = []
    for plan in plans:
        for header, where in zip(plan.families, plan.family_paths, strict=True):
            owner = owners.get(header.name)
            if owner is None:
                owners[header.name] = (header, where)
                continue
            why = disagreement(owner[0], header)
            if why is None:
                continue
            found.append((plan.name, Problem(
                path=f"{where}.name",
                message=f"family {header.name!r} is also produced by configuration "
                        f"{owner[0].configuration!r} ({owner[1]}) and cannot be shared: {why}",
            )))
    return found


def format_problem(*, source: str, name: str, problem: Problem) -> str:
    """The one-line form every tool prints: ``FILE: metadata.name: field.path: message``."""
    return f"{source}: {object_line(name, problem)}"


Locate = Callable[[Document, str], str]


def document_location(doc: Document, path: str) -> str:
    """The default ``Locate``: the document's own ``FILE:LINE`` (pure; no file is re-read)."""
    return doc.location


def compile_documents(configs: Sequence[Document], *, metric_labels: GlobalLabels | None = None,
                      locate: Locate = document_location) -> tuple[list[Plan], list[str]]:
    """Compile configuration documents and check conflicts between them.

    Returns the plans that compiled and one readable line per problem (compile problems,
    configurations defined twice, families produced twice), each
    ``FILE:LINE: NAME: field.path: message`` with ``FILE:LINE`` from ``locate(doc, path)``
    (``exporter.sources.FieldLocator`` gives the field's own line). A caller that wants
    all-or-nothing treats any line as failure.
    """
    plans: list[CompiledPlan] = []
    defined_at: dict[str, Document] = {}
    problems: list[str] = []
    for doc in configs:
        try:
            plan = compile_config(doc.data, metric_labels=metric_labels)
        except CompileError as exc:
            problems.extend(format_problem(source=locate(doc, p.path), name=exc.name or doc.name, problem=p)
                            for p in exc.problems)
            continue
        if plan.name in defined_at:
            twice = Problem(path="metadata.name", message=f"configuration {plan.name!r} is also defined "
                            f"at {defined_at[plan.name].location}")
            problems.append(format_problem(source=locate(doc, twice.path), name=plan.name, problem=twice))
            continue
        defined_at[plan.name] = doc
        plans.append(plan)
    for name, problem in find_conflicts(plans):
        where = locate(defined_at[name], problem.path)
        problems.append(format_problem(source=where, name=name, problem=problem))
    return list(plans), problems

