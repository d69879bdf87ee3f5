"""``labelSelector`` and ``fieldSelector`` query parameters: parsing and matching. Pure.

Label selectors use the Kubernetes grammar (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x)``, ``a``, ``!a``, comma = AND). Field selectors support only ``metadata.name`` and
``metadata.namespace`` with ``=``, ``==`` and ``!=`` (what ``kubectl get NAME -w`` and ``-A``
need); any other field is a 400, as the generic apiserver answers (docs/design.md, statement 17).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    """The selector does not parse (-> 400 BadRequest with this message)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # "!=", "notin"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parenthesis in label selector {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise SelectorError(f"unbalanced parenthesis in label selector {text!r}")
    parts.append(text[start:])
    return parts


def _check_key(key: str, selector: str) -> str:
    if not _KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        raise SelectorError(f"invalid label key {key!r} in label selector {selector!r}")
    return key


def _check_value(value: str, selector: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(f"invalid label value {value!r} in label selector {selector!r}")
    return value


_SET_OP = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector()
    reqs: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"empty requirement in label selector {text!r}")
        set_op = _SET_OP.match(part)
        if set_op:
            values = [v.strip() for v in set_op["values"].split(",")]
            reqs.append(
                Requirement(
                    _check_key(set_op["key"], text),
                    set_op["op"],
                    frozenset(_check_value(v, text) for v in values),
                )
            )
            continue
        for op in ("!=", "==", "="):
            if op in part:
                key, _, value = part.partition(op)
                reqs.append(
                    Requirement(
                        _check_key(key.strip(), text),
                        "!=" if op == "!=" else "=",
                        frozenset({_check_value(value.strip(), text)}),
                    )
                )
                break
        else:
            if part.startswith("!"):
                reqs.append(Requirement(_check_key(part[1:].strip(), text), "!"))
            else:
                reqs.append(Requirement(_check_key(part, text), "exists"))
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[tuple[str, bool, str], ...] = ()  # (field, equal?, value)

    def matches(self, *, name: str, namespace: str) -> bool:
        values = {"metadata.name": name, "metadata.namespace": namespace}
        return all((values[f] == v) == eq for f, eq, v in self.requirements)

    def equal_value(self, field_name: str) -> str | None:
        """The value an ``=`` requirement pins ``field_name`` to (lets lookups skip a scan)."""
        for f, eq, v in self.requirements:
            if f == field_name and eq:
                return v
        return None


_FIELD_OPERATORS = ("!=", "==", "=")
_ESCAPABLE = "\\,="


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except where a backslash escapes it (escapes are kept for ``_unescape``)."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _split_term(term: str) -> tuple[str, str, str] | None:
    """``field<op>value`` at the first unescaped operator, as the kube-apiserver's ``splitTerm``."""
    i, escaped = 0, False
    while i < len(term):
        ch = term[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            for op in _FIELD_OPERATORS:
                if term.startswith(op, i):
                    return term[:i], op, term[i + len(op) :]
        i += 1
    return None


def _unescape(value: str, selector: str) -> str:
    """Backslash escapes ``\\``, ``,`` and ``=``; an unescaped ``,``/``=`` or another escape is an error."""
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in _ESCAPABLE:
                raise SelectorError(f"invalid field selector {selector!r}: invalid escape sequence \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector {selector!r}: unescaped {ch!r} in value {value!r}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError(f"invalid field selector {selector!r}: trailing backslash in value {value!r}")
    return "".join(out)


def parse_field_selector(text: str | None) -> FieldSelector:
    """The kube-apiserver's field selector grammar (escapes included) over ``FIELDS``."""
    if not text or not text.strip():
        return FieldSelector()
    reqs: list[tuple[str, bool, str]] = []
    for raw in _split_unescaped(text, ","):
        part = raw.strip()
        term = _split_term(part)
        if term is None:
            raise SelectorError(f"invalid field selector requirement {part!r}: expected field=value")
        field_name, op, value = term
        field_name = field_name.strip()
        if field_name not in FIELDS:
            raise SelectorError(
                f'"{field_name}" is not a known field selector: only "metadata.name", "metadata.namespace"'
            )
        reqs.append((field_name, op != "!=", _unescape(value.strip(), text)))
    return FieldSelector(tuple(reqs))
