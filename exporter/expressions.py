"""The govaluate expression language of ``valueFromExpression``: tokenizer, parser, evaluator.

Panopticon evaluates ``metricValue.valueFromExpression`` with gomodules/eval (a govaluate fork)
over the metric's ``params``. This module implements that language safely (no Python ``eval``):
a tokenizer that follows govaluate's lexer, a precedence-climbing parser producing a small AST,
and a compiler turning the AST into nested closures, so an expression is parsed once when its
configuration is compiled and rendering an object only calls closures. Syntax errors raise
``ExpressionError`` with a 1-based column.

Lexer (govaluate's): numbers are digits and dots (``3``, ``2.5``, ``.5``; no exponent) or hex
``0x1F``; strings are quoted with ``'`` or ``"`` and end at the next quote of either kind, a
backslash takes the next character literally; a string literal that is a date (RFC3339,
``2006-01-02``, ``2006-01-02 15:04:05`` ...) is the Unix time in seconds; names start with a
letter and hold letters, digits, ``_`` and backslash-escaped characters (``response\\-time``),
or are bracketed (``[any name]``, ``\\]`` inside); ``true``, ``false``, ``in``/``IN`` are words;
an operator is a maximal run of symbol characters (so ``1 +- 2`` is an invalid token).

Grammar, lowest precedence first, every binary operator left-associative (govaluate's planner
order, not C's): ``? : ??`` (one level: ``c ? a`` gives nil when ``c`` is false, ``x : y`` and
``x ?? y`` give ``x`` unless it is nil), ``||``, ``&&``, ``== != < > <= >= =~ !~ in``,
``& | ^``, ``<< >>``, ``+ -``, ``* / %``, ``**``, prefix ``- ! ~``, then calls ``f(a, b)``,
parentheses (``(a, b)`` is an array, for ``in``), literals and parameters.

Value semantics (docs/metrics-configuration.md lists where they differ from govaluate, and why):
- parameters keep their JSON types; a parameter whose path matched nothing is ``MISSING`` and
  behaves as the string ``'nil'`` (``int(topology != 'nil')``); booleans compare as the strings
  ``'true'``/``'false'`` against strings (``int(paused == 'true')``) and as booleans otherwise;
- ``==``/``!=`` compare numbers numerically, a number and a numeric string numerically, and
  anything else by value; ``< > <= >=`` need two numbers (numeric strings allowed) or two strings
  (lexicographic);
- ``+`` concatenates when either side is a non-numeric string (numbers printed as Go's ``%v``),
  otherwise adds; ``- * / % ** & | ^ << >> ~`` need numbers (numeric strings allowed); bitwise
  operators work on the int64 (shifts: uint64) value, as govaluate; division by zero follows
  IEEE (``+Inf``, ``NaN``);
- ``=~``/``!~`` need a string on the left and a regular expression (a string) on the right,
  searched anywhere in the string; a constant pattern is compiled with the expression;
- ``&& || ! ?`` need booleans (the strings ``'true'``/``'false'`` count as booleans);
  ``&&``, ``||``, ``?``, ``:`` and ``??`` do not evaluate the side they do not need.
Runtime failures raise ``EvaluationError``; the renderer drops the series and records it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from exporter.paths import MISSING
from exporter.values import format_value

__all__ = [
    "CompiledExpression",
    "EvaluationError",
    "ExpressionError",
    "FunctionSpec",
    "compile_expression",
    "go_format",
    "parse",
]


class ExpressionError(Exception):
    """A syntax or compile error; ``column`` is 1-based."""

    def __init__(self, message: str, *, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


class EvaluationError(ValueError):
    """An expression failed on one object's values (wrong types, missing parameter, bad input)."""

    def __init__(self, message: str, *, reason: str = "expression") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function callable from expressions: arity bounds and implementation."""

    name: str
    min_args: int
    max_args: int
    impl: Callable[..., Any]


# --- tokens ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num" | "str" | "ident" | "param" | "op" | "(" | ")" | "," | "end"
    text: str
    value: Any
    column: int


OPERATORS = frozenset({
    "**", "==", "!=", "<=", ">=", "=~", "!~", "&&", "||", "??", "<<", ">>",
    "<", ">", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "?", ":",
})
_NOT_SYMBOL = frozenset("()[],'\"")


def _is_symbol(char: str) -> bool:
    """govaluate's ``isNotAlphanumeric`` (minus the characters that are tokens on their own)."""
    return not (char.isalnum() or char.isspace() or char in _NOT_SYMBOL)


def _is_name_char(char: str) -> bool:
    return char.isalpha() or char.isdigit() or char in "_."


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    length = len(text)
    while pos < length:
        char = text[pos]
        column = pos + 1
        if char.isspace():
            pos += 1
            continue
        if char.isdigit() or char == ".":
            pos = _number(text, pos, tokens)
            continue
        if char == ",":
            tokens.append(Token(",", ",", ",", column))
            pos += 1
            continue
        if char == "[":
            name, end = _read_escaped(text, pos + 1, ends="]".__contains__)
            if end >= length:
                raise ExpressionError("unterminated [parameter] (unclosed parameter bracket)", column=column)
            if not name:
                raise ExpressionError("empty [parameter] name", column=column)
            tokens.append(Token("param", text[pos:end + 1], name, column))
            pos = end + 1
            continue
        if char.isalpha():
            name, end = _read_name(text, pos)
            tokens.append(_word(name, text[pos:end], column))
            pos = end
            continue
        if char in "'\"":
            value, end = _read_escaped(text, pos + 1, ends="'\"".__contains__)
            if end >= length:
                raise ExpressionError("unterminated string (unclosed string literal)", column=column)
            when = date_literal(value)
            if when is not None:
                tokens.append(Token("num", text[pos:end + 1], when, column))
            else:
                tokens.append(Token("str", text[pos:end + 1], value, column))
            pos = end + 1
            continue
        if char in "()":
            tokens.append(Token(char, char, char, column))
            pos += 1
            continue
        end = pos
        while end < length and _is_symbol(text[end]):
            end += 1
        symbol = text[pos:end]
        if symbol not in OPERATORS:
            raise ExpressionError(f"invalid token {symbol or char!r}", column=column)
        tokens.append(Token("op", symbol, symbol, column))
        pos = end
    tokens.append(Token("end", "", None, length + 1))
    return tokens


def _number(text: str, pos: int, tokens: list[Token]) -> int:
    column = pos + 1
    length = len(text)
    if text.startswith(("0x", "0X"), pos) and pos + 2 < length:
        end = pos + 2
        while end < length and (text[end].isalnum() or text[end] == "."):
            end += 1
        digits = text[pos + 2:end]
        try:
            value = float(int(digits, 16))
        except ValueError:
            raise ExpressionError(f"malformed hex number {text[pos:end]!r}", column=column) from None
        tokens.append(Token("num", text[pos:end], value, column))
        return end
    end = pos
    while end < length and (text[end].isdigit() or text[end] == "."):
        end += 1
    literal = text[pos:end]
    try:
        number = float(literal)
    except ValueError:
        raise ExpressionError(f"malformed number {literal!r}", column=column) from None
    tokens.append(Token("num", literal, number, column))
    return end


def _read_escaped(text: str, pos: int, *, ends: Callable[[str], bool]) -> tuple[str, int]:
    """Characters up to the first that ``ends`` the run (a backslash takes the next one literally):
    (value, end)."""
    chars: list[str] = []
    length = len(text)
    while pos < length:
        current = text[pos]
        if current == "\\" and pos + 1 < length:
            chars.append(text[pos + 1])
            pos += 2
            continue
        if ends(current):
            return "".join(chars), pos
        chars.append(current)
        pos += 1
    return "".join(chars), length


def _read_name(text: str, pos: int) -> tuple[str, int]:
    return _read_escaped(text, pos, ends=lambda c: not _is_name_char(c))


def _word(name: str, raw: str, column: int) -> Token:
    if name == "true":
        return Token("num", raw, True, column)
    if name == "false":
        return Token("num", raw, False, column)
    if name in ("in", "IN"):
        return Token("op", raw, "in", column)
    if "." in name:
        if name.endswith("."):
            raise ExpressionError(f"hanging accessor on token {name!r}", column=column)
        raise ExpressionError(f"{name!r}: field accessors are not supported (parameters are JSON "
                              "values; use a longer valuePath or [bracketed names])", column=column)
    return Token("ident", raw, name, column)


# govaluate's tryParseTime layouts (Go reference time) as (regex, strptime formats).
_DATE_LAYOUTS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\d{4}-\d{2}-\d{2}"), ("%Y-%m-%d",)),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"), ("%Y-%m-%d %H:%M",)),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?"), ("%Y-%m-%d %H:%M:%S",)),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}"), ("%Y-%m-%d %H:%M:%S%z",)),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"), ("%Y-%m-%dT%H:%M:%S%z",)),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}(Z|[+-]\d{4})"), ("%Y-%m-%dT%H%z",)),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(Z|[+-]\d{4})"), ("%Y-%m-%dT%H:%M%z",)),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{4})"), ("%Y-%m-%dT%H:%M:%S%z",)),
)


def date_literal(text: str) -> float | None:
    """govaluate turns a string literal that parses as a date into its Unix time (whole seconds,
    local time = UTC here); ``None`` when it is not a date."""
    if len(text) < 10 or not text[:4].isdigit():
        return None
    for pattern, formats in _DATE_LAYOUTS:
        if pattern.fullmatch(text) is None:
            continue
        candidate = re.sub(r"\.\d+", "", text).replace("Z", "+0000")
        for layout in formats:
            try:
                parsed = datetime.strptime(candidate, layout)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return float(math.floor(parsed.timestamp()))
    return None


# --- AST ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    column: int


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    column: int


@dataclass(frozen=True, slots=True)
class Array:
    items: tuple[Node, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Param | Unary | Binary | Array | Call

# Binding powers (higher binds tighter), govaluate's planner order.
_BINARY_POWER = {
    "?": 10, ":": 10, "??": 10,
    "||": 20,
    "&&": 30,
    "==": 40, "!=": 40, "<": 40, ">": 40, "<=": 40, ">=": 40, "=~": 40, "!~": 40, "in": 40,
    "&": 50, "|": 50, "^": 50,
    "<<": 60, ">>": 60,
    "+": 70, "-": 70,
    "*": 80, "/": 80, "%": 80,
    "**": 90,
}
_PREFIX = ("-", "!", "~")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", column=1)
        node = self.expression(0)
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected {token.text!r}", column=token.column)
        return node

    def expression(self, min_power: int) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            if token.kind in ("end", ")", ","):
                return left
            if token.kind != "op":
                raise ExpressionError(f"unexpected {token.text!r} (missing operator?)", column=token.column)
            power = _BINARY_POWER.get(token.value)
            if power is None:
                raise ExpressionError(f"unexpected {token.text!r}", column=token.column)
            if power <= min_power:
                return left
            self.advance()
            left = Binary(token.value, left, self.expression(power), token.column)

    def prefix(self) -> Node:
        token = self.advance()
        if token.kind in ("num", "str"):
            return Literal(token.value, token.column)
        if token.kind == "param":
            return Param(token.value, token.column)
        if token.kind == "ident":
            if self.peek().kind == "(":
                return self.call(token)
            return Param(token.value, token.column)
        if token.kind == "(":
            items = self.group(token)
            if not items:
                raise ExpressionError("expected a value, found ')'", column=token.column + 1)
            return items[0] if len(items) == 1 else Array(tuple(items), token.column)
        if token.kind == "op" and token.value in _PREFIX:
            return Unary(token.value, self.prefix(), token.column)
        found = "end of expression" if token.kind == "end" else repr(token.text)
        raise ExpressionError(f"expected a value, found {found}", column=token.column)

    def group(self, opening: Token, *, call: str = "") -> list[Node]:
        """The comma-separated expressions up to the matching ``)`` (``(`` already read)."""
        if self.peek().kind == ")":
            self.advance()
            return []
        items: list[Node] = []
        while True:
            items.append(self.expression(0))
            token = self.advance()
            if token.kind == ")":
                return items
            if token.kind != ",":
                found = "end of expression" if token.kind == "end" else repr(token.text)
                where = f" in call of {call}" if call else f" (opened at column {opening.column})"
                raise ExpressionError(f"expected ',' or ')'{where}, found {found}", column=token.column)

    def call(self, name: Token) -> Node:
        opening = self.advance()
        return Call(name.value, tuple(self.group(opening, call=name.value)), name.column)


def parse(text: str) -> Node:
    """Parse an expression into its AST (raises ``ExpressionError``)."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be a string", column=1)
    return _Parser(text).parse()


# --- value helpers -----------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _as_comparable(value: Any) -> Any:
    """MISSING and null become 'nil' in comparisons."""
    if value is MISSING or value is None:
        return "nil"
    return value


def _numeric(value: Any) -> float | None:
    if type(value) is float or type(value) is int:
        return float(value)
    if isinstance(value, str):
        try:
            return float(value) if "_" not in value else None
        except ValueError:
            return None
    return None


def _need_number(value: Any, op: str) -> float:
    number = _numeric(value)
    if number is None:
        raise EvaluationError(f"value {describe(value)} cannot be used with the operator {op!r}: "
                              "it needs a number", reason="missing" if value is MISSING else "expression")
    return number


def truth(value: Any, what: str = "condition") -> bool:
    if value is True or value is False:
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise EvaluationError(f"{what} needs a boolean, got {describe(value)}",
                          reason="missing" if value is MISSING else "expression")


def describe(value: Any) -> str:
    if value is MISSING:
        return "a missing value ('nil')"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def go_format(value: float) -> str:
    """A float as Go's ``fmt`` ``%v`` prints it: ``strconv.FormatFloat(f, 'g', -1, 64)``, the
    shortest digits, in exponent form below 1e-4 and from 1e6 (``1e+06``, ``1.5e+07``)."""
    if value != value or math.isinf(value):
        return format_value(value)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits = Decimal(repr(value)).normalize()
    sign, figures, exponent = digits.as_tuple()
    assert isinstance(exponent, int)
    exp10 = len(figures) + exponent - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = "".join(map(str, figures))
        body = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
        return f"{'-' if sign else ''}{body}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    return f"{digits:f}"


def _text(value: Any) -> str:
    if value is MISSING or value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if _is_number(value):
        return go_format(float(value))
    return str(value)


def equals(left: Any, right: Any) -> bool:
    if type(left) is str and type(right) is str:
        return left == right
    left = _as_comparable(left)
    right = _as_comparable(right)
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if _is_number(left) or _is_number(right):
        a, b = _numeric(left), _numeric(right)
        return a is not None and b is not None and a == b
    if isinstance(left, bool) and isinstance(right, str):
        return _text(left) == right
    if isinstance(right, bool) and isinstance(left, str):
        return left == _text(right)
    return bool(left == right)


def _order(op: str, left: Any, right: Any) -> bool:
    left = _as_comparable(left)
    right = _as_comparable(right)
    a: Any
    b: Any
    if _is_number(left) or _is_number(right):
        a, b = _numeric(left), _numeric(right)
        if a is None or b is None:
            raise EvaluationError(f"operator {op!r} cannot compare {describe(left)} and {describe(right)}")
    elif type(left) is str and type(right) is str:
        a, b = left, right
    else:
        raise EvaluationError(f"operator {op!r} cannot compare {describe(left)} and {describe(right)}")
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def _int64(value: float, op: str) -> int:
    if not math.isfinite(value):
        raise EvaluationError(f"operator {op!r} needs a finite number, got {describe(value)}")
    return int(value)


_U64 = (1 << 64) - 1


def _wrap64(value: int) -> float:
    """Back to a float64 from a Go int64 result."""
    value &= _U64
    return float(value - (1 << 64) if value >> 63 else value)


def _arith(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        if _is_number(left) and _is_number(right):
            return left + right
        if isinstance(left, str) or isinstance(right, str):
            a, b = _numeric(left), _numeric(right)
            if a is not None and b is not None and (_is_number(left) or _is_number(right)):
                return a + b
            return _text(left) + _text(right)
    a = _need_number(left, op)
    b = _need_number(right, op)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if op == "%":
        if b == 0 or math.isinf(a):
            return math.nan
        return math.fmod(a, b)
    if op == "**":
        try:
            return float(a**b)
        except (OverflowError, ZeroDivisionError):
            return math.inf
        except TypeError:  # negative base with a fractional exponent gives a complex number
            return math.nan
    x, y = _int64(a, op), _int64(b, op)
    if op == "&":
        return _wrap64(x & y)
    if op == "|":
        return _wrap64(x | y)
    if op == "^":
        return _wrap64(x ^ y)
    shift = y & _U64
    if op == "<<":
        return float(((x & _U64) << shift) & _U64) if shift < 64 else 0.0
    return float((x & _U64) >> shift) if shift < 64 else 0.0  # ">>"


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _pattern_of(value: Any, op: str) -> re.Pattern[str]:
    if isinstance(value, re.Pattern):
        return value
    if type(value) is not str:
        raise EvaluationError(f"value {describe(value)} cannot be used with the comparator {op!r}: "
                              "the pattern must be a string",
                              reason="missing" if value is MISSING else "expression")
    try:
        return _regex(value)
    except re.error as exc:
        raise EvaluationError(f"unable to compile regexp pattern {value!r}: {exc}") from None


def _matches(op: str, left: Any, right: Any) -> bool:
    if type(left) is not str:
        raise EvaluationError(f"value {describe(left)} cannot be used with the comparator {op!r}: "
                              "it needs a string", reason="missing" if left is MISSING else "expression")
    found = _pattern_of(right, op).search(left) is not None
    return found if op == "=~" else not found


def _member(left: Any, right: Any) -> bool:
    if not isinstance(right, list):
        raise EvaluationError(f"value {describe(right)} cannot be used with the comparator 'in': "
                              "it needs an array such as (1, 2, 3)",
                              reason="missing" if right is MISSING else "expression")
    return any(equals(left, item) for item in right)


def _is_nil(value: Any) -> bool:
    return value is MISSING or value is None


# --- compilation to closures -------------------------------------------------------------------

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A parsed and compiled expression; ``evaluate(params)`` may raise ``EvaluationError``."""

    text: str
    evaluate: Evaluator
    params: frozenset[str]
    # the whole expression is a ternary without an else (``c ? 1``): nil means "no sample"
    optional: bool = False


def compile_expression(
    text: str,
    *,
    params: Collection[str],
    functions: Mapping[str, FunctionSpec],
) -> CompiledExpression:
    """Parse and compile; unknown parameters/functions and wrong arity are ``ExpressionError``s."""
    tree = parse(text)
    used: set[str] = set()
    evaluator = _compile(tree, params=set(params), functions=functions, used=used)
    optional = isinstance(tree, Binary) and tree.op == "?"
    return CompiledExpression(text=text, evaluate=evaluator, params=frozenset(used), optional=optional)


def _compile(node: Node, *, params: set[str], functions: Mapping[str, FunctionSpec],
             used: set[str]) -> Evaluator:
    def sub(child: Node) -> Evaluator:
        return _compile(child, params=params, functions=functions, used=used)

    if isinstance(node, Literal):
        value = node.value
        return lambda env: value
    if isinstance(node, Param):
        if node.name not in params:
            known = ", ".join(sorted(params)) or "none declared"
            raise ExpressionError(f"unknown parameter {node.name!r} (params: {known})", column=node.column)
        used.add(node.name)
        name = node.name
        return lambda env: env.get(name, MISSING)
    if isinstance(node, Array):
        items = tuple(sub(item) for item in node.items)
        return lambda env: [item(env) for item in items]
    if isinstance(node, Unary):
        return _compile_unary(node, sub(node.operand))
    if isinstance(node, Call):
        return _compile_call(node, sub, functions)
    return _compile_binary(node, sub)


def _compile_unary(node: Unary, operand: Evaluator) -> Evaluator:
    if node.op == "!":
        return lambda env: not truth(operand(env), "operator '!'")
    if node.op == "~":
        def invert(env: Env) -> Any:
            return _wrap64(~_int64(_need_number(operand(env), "~"), "~"))

        return invert

    def negate(env: Env) -> Any:
        return -_need_number(operand(env), "-")

    return negate


def _compile_call(node: Call, sub: Callable[[Node], Evaluator],
                  functions: Mapping[str, FunctionSpec]) -> Evaluator:
    spec = functions.get(node.name)
    if spec is None:
        known = ", ".join(sorted(functions))
        raise ExpressionError(f"unknown function {node.name!r} (known: {known})", column=node.column)
    if not spec.min_args <= len(node.args) <= spec.max_args:
        want = (str(spec.min_args) if spec.min_args == spec.max_args
                else f"{spec.min_args} to {spec.max_args}")
        raise ExpressionError(f"{node.name}() takes {want} argument(s), got {len(node.args)}",
                              column=node.column)
    args = tuple(sub(arg) for arg in node.args)
    impl = spec.impl
    if not args:
        return lambda env: impl()
    if len(args) == 1:
        (only,) = args
        return lambda env: impl(only(env))
    if len(args) == 2:
        first, second = args
        return lambda env: impl(first(env), second(env))
    return lambda env: impl(*[arg(env) for arg in args])


def _compile_binary(node: Binary, sub: Callable[[Node], Evaluator]) -> Evaluator:
    left, right = sub(node.left), sub(node.right)
    op = node.op
    if op == "==":
        if isinstance(node.right, Literal) and type(node.right.value) is str:
            constant = node.right.value

            def equals_string(env: Env) -> bool:
                value = left(env)
                return value == constant if type(value) is str else equals(value, constant)

            return equals_string
        return lambda env: equals(left(env), right(env))
    if op == "!=":
        if isinstance(node.right, Literal) and type(node.right.value) is str:
            constant = node.right.value

            def differs_string(env: Env) -> bool:
                value = left(env)
                return value != constant if type(value) is str else not equals(value, constant)

            return differs_string
        return lambda env: not equals(left(env), right(env))
    if op in ("<", ">", "<=", ">="):
        return lambda env: _order(op, left(env), right(env))
    if op in ("=~", "!~"):
        if isinstance(node.right, Literal) and type(node.right.value) is str:
            try:
                pattern = _regex(node.right.value)
            except re.error as exc:
                raise ExpressionError(f"cannot compile regexp pattern {node.right.value!r}: {exc}",
                                      column=node.right.column) from None
            return lambda env: _matches(op, left(env), pattern)
        return lambda env: _matches(op, left(env), right(env))
    if op == "in":
        return lambda env: _member(left(env), right(env))
    if op == "&&":
        return lambda env: truth(left(env), "operator '&&'") and truth(right(env), "operator '&&'")
    if op == "||":
        return lambda env: truth(left(env), "operator '||'") or truth(right(env), "operator '||'")
    if op == "?":
        def ternary(env: Env) -> Any:
            return right(env) if truth(left(env), "operator '?'") else None

        return ternary
    if op in (":", "??"):
        def otherwise(env: Env) -> Any:
            value = left(env)
            return right(env) if _is_nil(value) else value

        return otherwise
    return lambda env: _arith(op, left(env), right(env))
