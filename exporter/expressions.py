"""The govaluate expression language of ``valueFromExpression``: tokenizer, parser, evaluator.

Panopticon evaluates ``metricValue.valueFromExpression`` with gomodules/eval (a govaluate fork)
over the metric's ``params``. This module implements that language safely (no Python ``eval``):
a tokenizer, a Pratt parser producing a small AST, and a compiler turning the AST into nested
closures, so an expression is parsed once when its configuration is compiled and rendering an
object only calls closures. Syntax errors raise ``ExpressionError`` with a 1-based column.

Grammar (lowest precedence first; all binary operators are left-associative except ``**``):
``c ? a : b`` (``: b`` optional, a false condition then gives nil), ``??``, ``||``, ``&&``,
``== != < > <= >=``, ``+ -``, ``* / %``, ``**``, unary ``- !``, then literals (numbers,
``'single'``/``"double"``-quoted strings, ``true``/``false``), parameters (``name`` or
``[any name]``), calls ``f(a, b)`` and parentheses.

Value semantics (documented in docs/metrics-configuration.md):
- parameters keep their JSON types; a parameter whose path matched nothing is ``MISSING`` and
  behaves as the string ``'nil'`` (``int(topology != 'nil')``); booleans compare as the strings
  ``'true'``/``'false'`` against strings (``int(paused == 'true')``) and as booleans otherwise;
- ``==``/``!=`` compare numbers numerically, a number and a numeric string numerically, and
  anything else by value; ``< > <= >=`` need two numbers (numeric strings allowed) or two strings
  (lexicographic);
- ``+`` concatenates when either side is a non-numeric string, otherwise adds; ``- * / % **``
  need numbers (numeric strings allowed); division by zero follows IEEE (``+Inf``, ``NaN``);
- ``&& || ! ?:`` need booleans (the strings ``'true'``/``'false'`` count as booleans).
Runtime failures raise ``EvaluationError``; the renderer drops the series and records it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.paths import MISSING
from exporter.values import format_value

__all__ = [
    "CompiledExpression",
    "EvaluationError",
    "ExpressionError",
    "FunctionSpec",
    "compile_expression",
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
    kind: str  # "num" | "str" | "ident" | "op" | "end"
    text: str
    value: Any
    column: int


_OPERATORS = (
    "**", "==", "!=", "<=", ">=", "&&", "||", "??",
    "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", "(", ")", ",",
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    length = len(text)
    while pos < length:
        char = text[pos]
        column = pos + 1
        if char in " \t\r\n":
            pos += 1
            continue
        if char.isdigit() or (char == "." and pos + 1 < length and text[pos + 1].isdigit()):
            end = pos
            while end < length and (text[end].isdigit() or text[end] == "."):
                end += 1
            if end < length and text[end] in "eE":
                exp_end = end + 1
                if exp_end < length and text[exp_end] in "+-":
                    exp_end += 1
                if exp_end < length and text[exp_end].isdigit():
                    end = exp_end
                    while end < length and text[end].isdigit():
                        end += 1
            literal = text[pos:end]
            try:
                number = float(literal)
            except ValueError:
                raise ExpressionError(f"malformed number {literal!r}", column=column) from None
            tokens.append(Token("num", literal, number, column))
            pos = end
            continue
        if char in "'\"":
            pos += 1
            chars: list[str] = []
            while True:
                if pos >= length:
                    raise ExpressionError("unterminated string", column=column)
                current = text[pos]
                if current == char:
                    pos += 1
                    break
                if current == "\\" and pos + 1 < length:
                    chars.append(_ESCAPES.get(text[pos + 1], text[pos + 1]))
                    pos += 2
                    continue
                chars.append(current)
                pos += 1
            tokens.append(Token("str", text[column - 1:pos], "".join(chars), column))
            continue
        if char.isalpha() or char == "_":
            end = pos + 1
            while end < length and (text[end].isalnum() or text[end] == "_"):
                end += 1
            tokens.append(Token("ident", text[pos:end], text[pos:end], column))
            pos = end
            continue
        if char == "[":
            end = text.find("]", pos + 1)
            if end < 0:
                raise ExpressionError("unterminated [parameter]", column=column)
            name = text[pos + 1:end]
            if not name:
                raise ExpressionError("empty [parameter] name", column=column)
            tokens.append(Token("param", text[pos:end + 1], name, column))
            pos = end + 1
            continue
        for operator in _OPERATORS:
            if text.startswith(operator, pos):
                tokens.append(Token("op", operator, operator, column))
                pos += len(operator)
                break
        else:
            raise ExpressionError(f"unexpected character {char!r}", column=column)
    tokens.append(Token("end", "", None, length + 1))
    return tokens


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
class Ternary:
    condition: Node
    then: Node
    otherwise: Node | None
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Param | Unary | Binary | Ternary | Call

# Binding powers (higher binds tighter).
_BINARY_POWER = {
    "??": 20,
    "||": 30,
    "&&": 40,
    "==": 50, "!=": 50, "<": 50, ">": 50, "<=": 50, ">=": 50,
    "+": 60, "-": 60,
    "*": 70, "/": 70, "%": 70,
    "**": 80,
}
_TERNARY_POWER = 10
_UNARY_POWER = 90


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

    def expect(self, text: str) -> Token:
        token = self.advance()
        if token.kind != "op" or token.text != text:
            found = "end of expression" if token.kind == "end" else repr(token.text)
            raise ExpressionError(f"expected {text!r}, found {found}", column=token.column)
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
            if token.kind == "end":
                return left
            if token.kind != "op":
                raise ExpressionError(f"unexpected {token.text!r} (missing operator?)", column=token.column)
            if token.text == "?":
                if min_power >= _TERNARY_POWER:
                    return left
                self.advance()
                then = self.expression(0)
                otherwise: Node | None = None
                if self.peek().kind == "op" and self.peek().text == ":":
                    self.advance()
                    otherwise = self.expression(_TERNARY_POWER - 1)  # right-associative
                left = Ternary(left, then, otherwise, token.column)
                continue
            power = _BINARY_POWER.get(token.text)
            if power is None:
                if token.text in (")", ",", ":"):
                    return left
                raise ExpressionError(f"unexpected {token.text!r}", column=token.column)
            if power <= min_power:
                return left
            self.advance()
            right = self.expression(power - 1 if token.text == "**" else power)  # ** is right-assoc
            left = Binary(token.text, left, right, token.column)

    def prefix(self) -> Node:
        token = self.advance()
        if token.kind == "num":
            return Literal(token.value, token.column)
        if token.kind == "str":
            return Literal(token.value, token.column)
        if token.kind == "param":
            return Param(token.value, token.column)
        if token.kind == "ident":
            if token.text == "true":
                return Literal(True, token.column)
            if token.text == "false":
                return Literal(False, token.column)
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(token)
            return Param(token.text, token.column)
        if token.kind == "op":
            if token.text == "(":
                node = self.expression(0)
                self.expect(")")
                return node
            if token.text in ("-", "!"):
                return Unary(token.text, self.expression(_UNARY_POWER), token.column)
        found = "end of expression" if token.kind == "end" else repr(token.text)
        raise ExpressionError(f"expected a value, found {found}", column=token.column)

    def call(self, name: Token) -> Node:
        self.expect("(")
        args: list[Node] = []
        if self.peek().kind == "op" and self.peek().text == ")":
            self.advance()
            return Call(name.text, (), name.column)
        while True:
            args.append(self.expression(0))
            token = self.advance()
            if token.kind == "op" and token.text == ")":
                return Call(name.text, tuple(args), name.column)
            if not (token.kind == "op" and token.text == ","):
                found = "end of expression" if token.kind == "end" else repr(token.text)
                raise ExpressionError(f"expected ',' or ')' in call of {name.text}, found {found}",
                                      column=token.column)


def parse(text: str) -> Node:
    """Parse an expression into its AST (raises ``ExpressionError``)."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be a string", column=1)
    return _Parser(text).parse()


# --- value helpers -----------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return (type(value) is float or type(value) is int)


def _as_comparable(value: Any) -> Any:
    """Booleans become 'true'/'false' when compared with strings; MISSING and null become 'nil'."""
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
        raise EvaluationError(f"operator {op!r} needs a number, got {describe(value)}",
                              reason="missing" if value is MISSING else "expression")
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


def _text(value: Any) -> str:
    if value is MISSING or value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if _is_number(value):
        return format_value(float(value))
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
    elif isinstance(left, str) and isinstance(right, str):
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
    try:  # "**"
        return float(a**b)
    except (OverflowError, ZeroDivisionError):
        return math.inf
    except TypeError:  # negative base with a fractional exponent gives a complex number
        return math.nan


# --- compilation to closures -------------------------------------------------------------------

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A parsed and compiled expression; ``evaluate(params)`` may raise ``EvaluationError``."""

    text: str
    evaluate: Evaluator
    params: frozenset[str]


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
    return CompiledExpression(text=text, evaluate=evaluator, params=frozenset(used))


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
    if isinstance(node, Unary):
        operand = sub(node.operand)
        if node.op == "!":
            return lambda env: not truth(operand(env), "operator '!'")

        def negate(env: Env) -> Any:
            return -_need_number(operand(env), "-")

        return negate
    if isinstance(node, Ternary):
        condition, then = sub(node.condition), sub(node.then)
        otherwise = sub(node.otherwise) if node.otherwise is not None else None

        def ternary(env: Env) -> Any:
            if truth(condition(env), "operator '?'"):
                return then(env)
            return otherwise(env) if otherwise is not None else None

        return ternary
    if isinstance(node, Call):
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
        if len(args) == 1:
            (only,) = args
            return lambda env: impl(only(env))
        if len(args) == 2:
            first, second = args
            return lambda env: impl(first(env), second(env))
        if len(args) == 3:
            first, second, third = args
            return lambda env: impl(first(env), second(env), third(env))
        return lambda env: impl(*[arg(env) for arg in args])
    return _compile_binary(node, sub)


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
    if op == "&&":
        return lambda env: truth(left(env), "operator '&&'") and truth(right(env), "operator '&&'")
    if op == "||":
        return lambda env: truth(left(env), "operator '||'") or truth(right(env), "operator '||'")
    if op == "??":
        def coalesce(env: Env) -> Any:
            value = left(env)
            return right(env) if value is MISSING or value is None else value

        return coalesce
    return lambda env: _arith(op, left(env), right(env))
