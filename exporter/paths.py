"""Panopticon paths (``.spec.replicas``, ``.status.conditions[*].type``, ``.``), compiled once.

Panopticon writes paths jsonpath-style with a leading dot and no braces. Their meaning is
defined here as jsonpath-ng's: every path is parsed by jsonpath-ng at compile time (so a path
jsonpath-ng rejects is a compile problem with its message), then, when the parsed path is only
a chain of single field names, array indices and ``[*]``/``.*`` wildcards, it is turned into a
list of ``Step``s that a hand-written accessor walks without jsonpath-ng's per-match objects.
Anything else (unions, slices, ``..``) is evaluated by jsonpath-ng itself. A property
test (tests/unit/exporter/test_paths.py) checks that the accessor returns exactly what
jsonpath-ng returns, values and order, on random documents.

Filters (``.status.conditions[?(@.type=='Ready')].status``) are an extension: a path the base
grammar rejects is parsed by jsonpath-ng's extended parser, whose meaning (RFC 9535 comparisons)
is the reference; the filter becomes a ``Step("filter")`` whose predicate is compiled here
(exporter/filters.py), with a fast path for the common single equality against a string.

The compiler uses ``CompiledPath.first`` for scalar paths and ``CompiledPath.segments`` to fan
out over ``[*]`` (see exporter/compiler.py and docs/metrics-configuration.md).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import jsonpath_ng._ply.lex
import jsonpath_ng.exceptions
import jsonpath_ng.lexer
from jsonpath_ng import jsonpath as jp
from jsonpath_ng.ext.parser import parse as ext_parse
from jsonpath_ng.lexer import JsonPathLexer
from jsonpath_ng.parser import JsonPathParser
from jsonpath_ng.parser import parse as jsonpath_parse

from exporter.filters import Equality, Predicate, compile_filter

__all__ = ["MISSING", "CompiledPath", "PathError", "Step", "accessor", "compile_path", "elements_of"]


class _Missing:
    """The result of a path that matched nothing (distinct from a JSON ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class PathError(ValueError):
    """A path that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Step:
    """One accessor step: a field name, an array index, or a wildcard over children."""

    kind: str  # "key" | "index" | "all" | "filter"
    key: str | int = ""
    predicate: Predicate | None = None  # kind "filter": which children are kept


Getter = Callable[[Any], Any]


def filtered(value: Any, predicate: Predicate) -> list[Any]:
    """Children a filter keeps: the array elements (or object member values) it accepts."""
    if isinstance(value, list):
        return [element for element in value if predicate(element)]
    if isinstance(value, dict):
        return [element for element in value.values() if predicate(element)]
    return []


def elements_of(value: Any) -> Iterator[Any]:
    """Children a wildcard selects: array elements, object member values, nothing for scalars."""
    if isinstance(value, list):
        return iter(value)
    if isinstance(value, dict):
        return iter(value.values())
    return iter(())


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """A compiled path: ``first(obj)`` (value or ``MISSING``) and ``find_all(obj)`` (all matches)."""

    text: str
    steps: tuple[Step, ...] | None  # None: evaluated by jsonpath-ng
    first: Getter
    find_all: Callable[[Any], list[Any]]

    @property
    def is_simple(self) -> bool:
        return self.steps is not None

    @property
    def segments(self) -> tuple[tuple[Step, ...], ...]:
        """The steps split at each wildcard: ``.a[*].b[*].c`` -> ``((a,), (b,), (c,))``."""
        if self.steps is None:
            return ((),)
        parts: list[tuple[Step, ...]] = []
        current: list[Step] = []
        for step in self.steps:
            if step.kind == "all":
                parts.append(tuple(current))
                current = []
            else:
                current.append(step)
        parts.append(tuple(current))
        return tuple(parts)

    @property
    def wildcards(self) -> int:
        return len(self.segments) - 1


def to_jsonpath(text: str) -> str:
    """Panopticon spelling -> jsonpath-ng spelling (``.a.b`` -> ``$.a.b``, ``.`` -> ``$``)."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):  # kubectl-style braces are tolerated
        body = body[1:-1].strip()
    if not body:
        raise PathError("empty path")
    if body == ".":
        return "$"
    if body.startswith("$"):
        return body
    if body.startswith((".", "[")):
        return "$" + body
    return "$." + body


class _ReusedLexer(JsonPathLexer):
    """jsonpath-ng's lexer, with its PLY lexer built once and cloned per path.

    ``jsonpath_ng.parse`` builds a new PLY parser and lexer for every call (about 4 ms per path,
    most of a configuration's compile time, and the admission webhook compiles on the request
    path). The tokens are the same; only the construction is shared.
    """

    _template: Any = None

    def tokenize(self, string: str) -> Iterator[Any]:
        if _ReusedLexer._template is None:
            _ReusedLexer._template = jsonpath_ng._ply.lex.lex(  # type: ignore[no-untyped-call]
                module=self, debug=False, optimize=True, lextab=self._ply_table_module,
                errorlog=jsonpath_ng.lexer.logger)
        lexer = _ReusedLexer._template.clone()
        lexer.latest_newline = 0
        lexer.string_value = None
        lexer.input(string)
        while True:
            token = lexer.token()
            if token is None:
                break
            token.col = token.lexpos - lexer.latest_newline
            yield token


_PARSER = JsonPathParser(lexer_class=_ReusedLexer)  # one event loop: never used concurrently


@functools.lru_cache(maxsize=8192)
def compile_path(text: str) -> CompiledPath:
    """Parse ``text`` (raises ``PathError``) and build its accessor.

    Cached by text (a ``CompiledPath`` is immutable), so recompiling a configuration (a status
    resync, an admission review of an object the exporter already compiled) parses nothing.
    """
    expression = to_jsonpath(text)
    try:
        parsed = _PARSER.parse(expression)
    except (jsonpath_ng.exceptions.JsonPathLexerError, jsonpath_ng.exceptions.JsonPathParserError) as exc:
        if "[?" not in expression:
            raise PathError(f"cannot parse path {text!r}: {exc}") from None
        parsed = _parse_extended(text, expression)
    except Exception as exc:  # jsonpath-ng's PLY grammar raises assorted errors on odd input
        if "[?" not in expression:
            raise PathError(f"cannot parse path: {exc}") from None
        parsed = _parse_extended(text, expression)
    steps = _steps_of(parsed)
    if steps is None:
        return CompiledPath(text=text, steps=None, first=_reference_first(parsed),
                            find_all=_reference_find_all(parsed))
    return CompiledPath(text=text, steps=steps, first=_first_getter(steps), find_all=_find_all(steps))


def _parse_extended(text: str, expression: str) -> Any:
    """A path with a filter: jsonpath-ng's extended parser (the filter grammar's reference)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notes are not the user's problem
            return ext_parse(expression)
    except Exception as exc:  # PLY errors, lexer errors: all a malformed path
        raise PathError(f"cannot parse path {text!r}: {exc}") from None


def accessor(steps: tuple[Step, ...]) -> Getter:
    """The ``first`` getter of a wildcard-free step chain (used for fan-out element tails)."""
    if any(step.kind == "all" for step in steps):
        raise ValueError("accessor() takes wildcard-free steps")
    return _first_getter(steps)


def reference_find_all(text: str, obj: Any) -> list[Any]:
    """jsonpath-ng's own answer for a Panopticon path (the semantics the accessor must match);
    a path with a filter is jsonpath-ng's extended parser's."""
    expression = to_jsonpath(text)
    if "[?" in expression:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [match.value for match in ext_parse(expression).find(obj)]
    return [match.value for match in jsonpath_parse(expression).find(obj)]


def _steps_of(node: Any) -> tuple[Step, ...] | None:
    """The Step chain of a parsed path, or None when it needs jsonpath-ng."""
    steps: list[Step] = []
    while True:
        if isinstance(node, jp.Root):
            return tuple(reversed(steps))
        if not isinstance(node, jp.Child):
            return None
        right = node.right
        if isinstance(right, jp.Fields) and len(right.fields) == 1 and right.fields[0] != "*":
            steps.append(Step("key", right.fields[0]))
        elif isinstance(right, jp.Index) and len(right.indices) == 1:
            steps.append(Step("index", int(right.indices[0])))
        elif isinstance(right, jp.Wildcard) or (isinstance(right, jp.Fields) and right.fields == ("*",)):
            steps.append(Step("all"))
        elif type(right).__name__ == "Filter" and (predicate := compile_filter(right)):
            steps.append(Step("filter", predicate=predicate))
        else:
            return None
        node = node.left


def _reference_first(parsed: Any) -> Getter:
    def first(obj: Any) -> Any:
        matches = parsed.find(obj)
        return matches[0].value if matches else MISSING

    return first


def _reference_find_all(parsed: Any) -> Callable[[Any], list[Any]]:
    def find_all(obj: Any) -> list[Any]:
        return [match.value for match in parsed.find(obj)]

    return find_all


def _apply(step: Step, value: Any) -> Any:
    """One non-wildcard step on one value: the child, or MISSING."""
    if step.kind == "key":
        if isinstance(value, dict):
            return value.get(step.key, MISSING)
        return MISSING
    if isinstance(value, list):
        index = step.key
        assert isinstance(index, int)
        if -len(value) <= index < len(value):
            return value[index]
    return MISSING


def _find_all(steps: tuple[Step, ...]) -> Callable[[Any], list[Any]]:
    def find_all(obj: Any) -> list[Any]:
        current = [obj]
        for step in steps:
            following: list[Any] = []
            if step.kind == "all":
                for value in current:
                    following.extend(elements_of(value))
            elif step.kind == "filter":
                assert step.predicate is not None
                for value in current:
                    following.extend(filtered(value, step.predicate))
            else:
                for value in current:
                    child = _apply(step, value)
                    if child is not MISSING:
                        following.append(child)
            current = following
            if not current:
                break
        return current

    return find_all


def _first_getter(steps: tuple[Step, ...]) -> Getter:
    """The hot path: specialised closures for the common all-field-name paths."""
    filters = [i for i, step in enumerate(steps) if step.kind == "filter"]
    if len(filters) == 1 and all(step.kind != "all" for step in steps):
        return _filter_getter(steps, filters[0])
    if any(step.kind in ("all", "filter") for step in steps):
        find_all = _find_all(steps)

        def first_match(obj: Any) -> Any:
            matches = find_all(obj)
            return matches[0] if matches else MISSING

        return first_match
    if all(step.kind == "key" for step in steps):
        keys = [str(step.key) for step in steps]
        return _key_getter(keys)

    def walk(obj: Any) -> Any:
        value = obj
        for step in steps:
            value = _apply(step, value)
            if value is MISSING:
                return MISSING
        return value

    return walk


def _filter_getter(steps: tuple[Step, ...], at: int) -> Getter:
    """``.a.b[?(...)].c``: walk to the array, take the first accepted element whose tail matches
    (jsonpath-ng's first match, without building the match list)."""
    head, tail = _first_getter(steps[:at]), _first_getter(steps[at + 1:])
    predicate = steps[at].predicate
    assert predicate is not None

    if isinstance(predicate, Equality):
        key, literal = predicate.key, predicate.literal

        def first_equal(obj: Any) -> Any:
            for element in _children(head(obj)):
                if type(element) is dict and element.get(key) == literal:
                    value = tail(element)
                    if value is not MISSING:
                        return value
            return MISSING

        return first_equal

    def first_filtered(obj: Any) -> Any:
        for element in _children(head(obj)):
            if predicate(element):
                value = tail(element)
                if value is not MISSING:
                    return value
        return MISSING

    return first_filtered


def _children(container: Any) -> Iterable[Any]:
    """The elements a filter looks at: a list's items, a map's values, nothing otherwise."""
    if type(container) is list:
        return container
    if type(container) is dict:
        return container.values()
    return ()


def _key_getter(keys: list[str]) -> Getter:
    # Subscripting a non-dict with a str raises TypeError (list, str, int, None): the same "no
    # match" jsonpath-ng gives, since it only looks fields up on mappings. The isinstance check
    # on the last hop keeps a str subclass key lookup on a str from ever succeeding.
    if not keys:
        return lambda obj: obj
    if len(keys) == 1:
        (k0,) = keys

        def get1(obj: Any) -> Any:
            try:
                return obj[k0] if isinstance(obj, dict) else MISSING
            except KeyError:
                return MISSING

        return get1
    if len(keys) == 2:
        k0, k1 = keys

        def get2(obj: Any) -> Any:
            try:
                return obj[k0][k1] if isinstance(obj, dict) else MISSING
            except (KeyError, TypeError):
                return MISSING

        return get2
    if len(keys) == 3:
        k0, k1, k2 = keys

        def get3(obj: Any) -> Any:
            try:
                return obj[k0][k1][k2] if isinstance(obj, dict) else MISSING
            except (KeyError, TypeError):
                return MISSING

        return get3

    if len(keys) == 4:
        k0, k1, k2, k3 = keys

        def get4(obj: Any) -> Any:
            try:
                return obj[k0][k1][k2][k3] if isinstance(obj, dict) else MISSING
            except (KeyError, TypeError):
                return MISSING

        return get4

    def get_n(obj: Any) -> Any:
        value = obj
        for key in keys:
            if not isinstance(value, dict):
                return MISSING
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        return value

    return get_n
