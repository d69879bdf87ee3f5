"""Path filters (``[?(@.type=='Ready')]``) compiled to plain predicates.

A filter keeps the elements of an array (or the member values of an object) for which its
expression holds. The grammar and the meaning are jsonpath-ng's extended parser's, which follows
RFC 9535: ``==`` ``!=`` ``<`` ``>`` ``<=`` ``>=`` ``=~``, ``&&`` (binds tighter) and ``||``,
``!@.x`` and ``@.x`` (existence), parentheses, string, number, ``true``/``false``/``null``
literals. Comparisons: a member that is absent equals nothing (only ``!=`` holds); booleans and
``null`` only compare by identity (``true`` is not ``1``); only two numbers or two strings are
ordered, other pairs reduce ``<=``/``>=`` to equality and ``<``/``>`` to false.

``compile_filter`` turns jsonpath-ng's parsed ``Filter`` into one closure, evaluated without
jsonpath-ng's per-match objects; the common ``@.key == 'string'`` is a single dict lookup. A
filter it cannot translate (a ``$``-rooted operand, a query on the right side, arithmetic)
returns ``None`` and the path is evaluated by jsonpath-ng itself. A property test
(tests/unit/exporter/test_filters.py) checks both agree on random documents.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Equality", "Predicate", "compile_filter"]

Predicate = Callable[[Any], bool]

_ABSENT = object()

_ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "=": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
# RFC 9535: for values that are not both numbers or both strings, ordering reduces to equality
_EQUALITY_ONLY: dict[str, Callable[[bool], bool]] = {
    "==": bool, "=": bool, "!=": operator.not_,
    "<=": bool, ">=": bool, "<": lambda equal: False, ">": lambda equal: False,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: booleans by identity, containers by value, different types never equal."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, (list, dict)) or isinstance(right, (list, dict)):
        return False
    return bool(left == right)


def _compare(op: str, left: Any, right: Any) -> bool:
    if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
        return _ORDERED[op](left, right)
    return _EQUALITY_ONLY[op](_equal(left, right))


def compile_filter(node: Any) -> Predicate | None:
    """The predicate of a jsonpath-ng ``Filter`` (a conjunction of its expressions), or None.
    ``@``-relative operands may use field names and indices only."""
    parts = [_compile_node(expression) for expression in node.expressions]
    if any(part is None for part in parts):
        return None
    predicates = [part for part in parts if part is not None]
    if len(predicates) == 1:
        return predicates[0]
    return lambda element: all(predicate(element) for predicate in predicates)


def _compile_node(node: Any) -> Predicate | None:
    name = type(node).__name__
    if name in ("And", "Or"):
        parts = [_compile_node(operand) for operand in node.operands]
        if any(part is None for part in parts):
            return None
        predicates = [part for part in parts if part is not None]
        if name == "And":
            return lambda element: all(predicate(element) for predicate in predicates)
        return lambda element: any(predicate(element) for predicate in predicates)
    if name != "Expression":
        return None
    read = _operand(node.target)
    if read is None:
        return None
    op, literal = node.op, node.value
    if op == "!":
        return lambda element: read(element) is _ABSENT
    if op is None:
        return lambda element: read(element) is not _ABSENT
    if not isinstance(literal, (str, int, float, bool)) and literal is not None:
        return None  # a query operand on the right: jsonpath-ng evaluates it
    if op == "=~":
        if not isinstance(literal, str):
            return None
        pattern = re.compile(literal)
        return lambda element: isinstance(value := read(element), str) and pattern.search(value) is not None
    if op not in _ORDERED:
        return None
    if op in ("==", "=") and type(literal) is str:
        return _string_equality(node.target, literal, read)
    if literal is None:
        null_test = _EQUALITY_ONLY[op]

        def compare_null(element: Any) -> bool:
            value = read(element)
            return bool(op == "!=") if value is _ABSENT else null_test(value is None)

        return compare_null
    if isinstance(literal, bool):
        bool_test = _EQUALITY_ONLY[op]

        def compare_bool(element: Any) -> bool:
            value = read(element)
            return bool(op == "!=") if value is _ABSENT else bool_test(value is literal)

        return compare_bool

    def compare(element: Any) -> bool:
        value = read(element)
        if value is _ABSENT:
            return bool(op == "!=")
        if isinstance(value, bool):
            return _EQUALITY_ONLY[op](False)  # a boolean never equals a number or a string
        return _compare(op, value, literal)

    return compare


class Equality:
    """The fast path ``@.key == 'text'``: one dict lookup (a str equals only a str). The path
    accessor inlines ``key``/``literal`` into its loop instead of calling the predicate."""

    __slots__ = ("key", "literal")

    def __init__(self, key: str, literal: str) -> None:
        self.key, self.literal = key, literal

    def __call__(self, element: Any) -> bool:
        return type(element) is dict and element.get(self.key, _ABSENT) == self.literal


def _string_equality(target: Any, literal: str, read: Callable[[Any], Any]) -> Predicate:
    if type(target).__name__ == "Child" and type(target.left).__name__ == "This" \
            and type(target.right).__name__ == "Fields" and len(target.right.fields) == 1:
        return Equality(target.right.fields[0], literal)
    return lambda element: bool(read(element) == literal)


def _operand(target: Any) -> Callable[[Any], Any] | None:
    """A getter for an ``@``-relative operand (``@``, ``@.a.b``, ``@.a[0]``); _ABSENT if none."""
    if type(target).__name__ == "This":
        return lambda element: element
    chain: list[tuple[str, Any]] = []
    node = target
    while type(node).__name__ == "Child":
        right = node.right
        kind = type(right).__name__
        if kind == "Fields" and len(right.fields) == 1 and right.fields[0] != "*":
            chain.append(("key", right.fields[0]))
        elif kind == "Index" and len(right.indices) == 1:
            chain.append(("index", int(right.indices[0])))
        else:
            return None
        node = node.left
    if type(node).__name__ != "This":
        return None  # "$"-rooted or something else: jsonpath-ng evaluates it
    chain.reverse()
    steps = tuple(chain)

    def read(element: Any) -> Any:
        value = element
        for kind, key in steps:
            if kind == "key":
                if type(value) is not dict or key not in value:
                    return _ABSENT
                value = value[key]
            else:
                if type(value) is not list or not -len(value) <= key < len(value):
                    return _ABSENT
                value = value[key]
        return value

    return read
