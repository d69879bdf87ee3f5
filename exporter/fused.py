"""One generated Python function per compiled plan: the per-object render with its loops unrolled.

``CompiledPlan.render`` is the exporter's hot path (the initial sync renders every object once,
bench/README.md "Fourth pass"). The generic renderer (``compiler._FamilyRenderer``) walks
tuples of rules for every object: per family a method call, a label loop, a series loop that
unpacks each rule and branches on whether it is a constant, a path value or an expression, and
a list join. All of that is known when the configuration is compiled. ``fuse`` writes it out
once as the source of one function (the shape ``dataclasses`` and ``attrs`` use for their
generated ``__init__``): the default labels, then each family's labels, expression params and
series in definition order, with every constant (``name{`` prefixes, state fragments, literal
labels, constant values) inlined as a literal and every per-object reader (compiled paths,
value conversions, compiled expressions) bound as a global of the function. What the rules
compute is unchanged: the same readers run on the same inputs in the same order, so the text and
the ``RenderErrors`` are the generic renderer's, byte for byte (a differential property test
holds the two together, tests/unit/exporter/test_fused.py).

What is fused: families without fan-out (one context, the object) whose labels read the object
itself, and the default labels when there are no ``commonLabels`` and no object-label
allowlists. Anything else (fan-outs, aggregates, ``commonLabels``) is called through its own
``render`` from the generated function, and ``compatibility: KubeStateMetrics`` plans are not
fused at all. The generated source is kept on the function (``__source__``) for debugging.

Only literals produced by ``repr`` of ``str`` and names chosen here reach the source: no text
from a configuration is ever evaluated as code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.expressions import EvaluationError
from exporter.naming import escape_label_value
from exporter.paths import MISSING
from exporter.types import RenderErrors
from exporter.values import ValueConversionError, format_value, label_value_of

Context = tuple[Any, ...]
Render = Callable[[Any, RenderErrors | None], tuple[bytes, ...]]
FamilyRender = Callable[[Any, str, RenderErrors | None], str]


@dataclass(frozen=True, slots=True)
class FusedLabel:
    """One label of a fused family: a literal fragment, or a reader of the object."""

    literal: str | None  # ',key="value"' as rendered at compile time
    key_open: str  # ',key="'
    get: Callable[[Any], Any] | None  # reads the raw value from the object


@dataclass(frozen=True, slots=True)
class FusedSeries:
    """One series of a fused family: its state fragment and exactly one way to get its value."""

    state_fragment: str  # ',phase="Ready"' or ''
    constant: str | None  # pre-formatted value
    compute: Callable[[Context], Any] | None  # metricValue.valueFromPath (and the like)
    from_env: Callable[[dict[str, Any]], Any] | None  # valueFromExpression over the family's env


@dataclass(frozen=True, slots=True)
class FusedFamily:
    """What ``fuse`` needs of one family without fan-out (``_FamilyRenderer.fusable``)."""

    metric: str  # metrics[].name, for RenderErrors
    name_open: str  # 'family{'
    name_bare: str  # 'family '
    labels: tuple[FusedLabel, ...]
    env_readers: tuple[tuple[str, Callable[[Context], Any]], ...]
    series: tuple[FusedSeries, ...]


class _Source:
    """Lines of the generated function and the globals they name."""

    def __init__(self, no_sample: type[Exception]) -> None:
        self.lines: list[str] = []
        self.bindings: dict[str, Any] = {
            "_MISSING": MISSING, "_esc": escape_label_value, "_label_value_of": label_value_of,
            "_fmt": format_value, "_NoSample": no_sample, "_Failed": (ValueConversionError, EvaluationError),
        }

    def bind(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.bindings)}"
        self.bindings[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def fuse(*, kind_key_open: str, parts: Sequence[FusedFamily | FamilyRender],
         head: Callable[[Any], str] | None, no_sample: type[Exception]) -> Render:
    """The plan's render as one function. ``parts``: per family, a ``FusedFamily`` to inline or
    the family's own render to call; ``head``: the plan's default-labels function when they
    cannot be inlined (``commonLabels``, object labels), else None; ``no_sample``: the
    exception that drops a series quietly (``compiler.NoSample``)."""
    src = _Source(no_sample)
    src.add(0, "def render(obj, errors):")
    if head is None:
        _inline_head(src, kind_key_open)
    else:
        src.add(1, f"head = {src.bind('head', head)}(obj)")
    src.add(1, "ctx = (obj,)")
    results: list[str] = []
    for index, part in enumerate(parts):
        if isinstance(part, FusedFamily):
            _family(src, index, part)
        else:
            src.add(1, f"f{index} = {src.bind('render', part)}(obj, head, errors)")
        results.append(f'f{index}.encode("utf-8", "replace")')
    # "replace": a lone surrogate (possible from YAML escapes) must not break the render
    src.add(1, f"return ({', '.join(results)}{',' if len(results) == 1 else ''})")
    source = "\n".join(src.lines) + "\n"
    namespace = dict(src.bindings)
    exec(compile(source, "<fused render>", "exec"), namespace)  # our own source, literals by repr()
    render: Render = namespace["render"]
    render.__source__ = source  # type: ignore[attr-defined]
    return render


def _inline_head(src: _Source, kind_key_open: str) -> None:
    """``CompiledPlan._head`` without commonLabels and object labels: namespace, then name."""
    src.add(1, 'head = ""')
    src.add(1, 'meta = obj.get("metadata")')
    src.add(1, "if isinstance(meta, dict):")
    src.add(2, 'namespace = meta.get("namespace")')
    src.add(2, "if isinstance(namespace, str) and namespace:")
    src.add(3, """head = ',namespace="' + _esc(namespace) + '"'""")
    src.add(2, 'name = meta.get("name")')
    src.add(2, "if isinstance(name, str) and name:")
    src.add(3, f"head += {kind_key_open!r} + _esc(name) + '\"'")


def _family(src: _Source, index: int, family: FusedFamily) -> None:
    """One family: labels, env, prefix, then its series into ``f<index>``."""
    labels = "head"
    if family.labels:
        src.add(1, "labels = head")
        for label in family.labels:
            if label.literal is not None:
                src.add(1, f"labels += {label.literal!r}")
                continue
            get = src.bind("get", label.get)
            src.add(1, f"raw = {get}(obj)")
            src.add(1, "if type(raw) is str:")
            src.add(2, f"labels += {label.key_open!r} + _esc(raw) + '\"'")
            src.add(1, "elif raw is not _MISSING and raw is not None:")
            src.add(2, f"labels += {label.key_open!r} + _esc(_label_value_of(raw)) + '\"'")
        labels = "labels"
    if family.env_readers or any(series.from_env is not None for series in family.series):
        entries: list[str] = []  # an expression without params still gets its (empty) env
        for param, read in family.env_readers:
            src.add(1, f"raw = {src.bind('read', read)}(ctx)")
            variable = f"p{len(entries)}"
            src.add(1, f"{variable} = _MISSING if raw is None else raw")
            entries.append(f"{param!r}: {variable}")
        src.add(1, f"env = {{{', '.join(entries)}}}")
    # a line is name{labels[1:] + state fragment} value, or name value without any label
    src.add(1, f"prefix = {family.name_open!r} + {labels}[1:] if {labels} else ''")
    texts: list[str] = []
    for number, series in enumerate(family.series):
        text = f"t{number}"
        texts.append(text)
        fragment = series.state_fragment
        with_prefix = fragment + "} "
        without = (family.name_open + fragment[1:] + "} ") if fragment else family.name_bare
        if series.constant is not None:
            line = series.constant + "\n"
            src.add(1, f"{text} = prefix + {with_prefix + line!r} if prefix else {without + line!r}")
            continue
        if series.from_env is not None:
            call = f"{src.bind('expr', series.from_env)}(env)"
        else:
            call = f"{src.bind('value', series.compute)}(ctx)"
        src.add(1, "try:")
        src.add(2, f"value = _fmt({call})")
        src.add(1, "except _NoSample:")
        src.add(2, f"{text} = ''")
        src.add(1, "except _Failed as exc:")
        src.add(2, "if errors is not None:")
        src.add(3, f"errors.items.append(({family.metric!r}, exc.reason, str(exc)))")
        src.add(2, f"{text} = ''")
        src.add(1, "else:")
        src.add(2, f"{text} = prefix + {with_prefix!r} + value + '\\n' if prefix "
                   f"else {without!r} + value + '\\n'")
    if not texts:
        src.add(1, f"f{index} = ''")
    elif len(texts) == 1:
        src.add(1, f"f{index} = {texts[0]}")
    else:
        src.add(1, f"f{index} = ''.join(({', '.join(texts)}))")
