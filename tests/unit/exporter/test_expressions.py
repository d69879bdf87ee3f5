"""The govaluate expression language: parsing, precedence, operators, semantics, errors, fuzz."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.expressions import (
    EvaluationError,
    ExpressionError,
    FunctionSpec,
    compile_expression,
    parse,
)
from exporter.functions import FUNCTIONS
from exporter.paths import MISSING

PARAMS = ("a", "b", "s", "t", "flag", "missing", "obj", "name with space")


def ev(text: str, **env: Any) -> Any:
    return compile_expression(text, params=PARAMS, functions=FUNCTIONS).evaluate(env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 * 3 % 4", 2),
        ("7 % 3", 1),
        ("-7 % 3", -1),  # Go math.Mod: sign of the dividend
        ("2 ** 3 ** 2", 64),  # left-associative, as govaluate
        ("-2 + 5", 3),
        ("- (2 + 3)", -5),
        ("1 / 4", 0.25),
        ("1.5 + .5", 2),
        ("1 < 2 && 2 < 3", True),
        ("1 < 2 && 2 > 3", False),
        ("1 > 2 || 2 < 3", True),
        ("true || false && false", True),  # && binds tighter than ||
        ("!true || true", True),
        ("!(1 == 1)", False),
        ("1 == 1 ? 'yes' : 'no'", "yes"),
        ("1 == 2 ? 'yes' : 'no'", "no"),
        ("false ? 1 : true ? 2 : 3", 2),  # (((false ? 1) : true) ? 2) : 3, as govaluate
        ("1 + 1 == 2 ? 10 : 20", 10),
        ("1 <= 1", True),
        ("2 >= 3", False),
        ("1 != 2", True),
        ("'ab' + 'cd'", "abcd"),
        ("\"double\" + 'single'", "doublesingle"),
        ("'it\\'s'", "it's"),
        ("'a' < 'b'", True),
        ("'10' < '9'", True),  # two strings compare lexicographically
        ("missing ?? 5", 5),
        ("3 ?? 5", 3),
        ("1 == 2 ? 1", None),  # no else branch: nil
    ],
)
def test_operators_and_precedence(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_parameters_and_panopticon_semantics() -> None:
    # a parameter whose path matched nothing is the string 'nil'
    assert ev("int(missing != 'nil')", missing=MISSING) == 0
    assert ev("int(t != 'nil')", t={"shard": {}}) == 1
    assert ev("missing == 'nil'") is True  # an unbound param is missing too
    # booleans compare as 'true'/'false' against strings, as booleans against booleans
    assert ev("int(flag == 'true')", flag=True) == 1
    assert ev("int(flag == 'true')", flag=False) == 0
    assert ev("flag == true", flag=True) is True
    assert ev("flag && true", flag="true") is True
    # numbers and numeric strings compare numerically
    assert ev("a == 3", a="3") is True
    assert ev("a == '3.0'", a=3) is True
    assert ev("a > 2", a="3") is True
    assert ev("a == 'x'", a=3) is False
    # + concatenates with a non-numeric string, adds numbers (numeric strings too when mixed)
    assert ev("s + a", s="n", a=1) == "n1"
    assert ev("a + b", a=1, b=2.5) == 3.5
    assert ev("a + 1", a="2") == 3
    assert ev("a * b", a="2", b="4") == 8
    assert ev("[name with space] + 1", **{"name with space": 1}) == 2


def test_division_and_modulo_by_zero_follow_ieee() -> None:
    assert ev("1 / 0") == math.inf
    assert ev("-1 / 0") == -math.inf
    assert math.isnan(ev("0 / 0"))
    assert math.isnan(ev("1 % 0"))


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("a - 1", {"a": "x"}, "needs a number"),
        ("a && true", {"a": 1}, "needs a boolean"),
        ("!a", {"a": "maybe"}, "needs a boolean"),
        ("a ? 1 : 2", {"a": 3}, "needs a boolean"),
        ("a < 1", {"a": "x"}, "cannot compare"),
        ("a < 'x'", {"a": True}, "cannot compare"),
        ("-a", {"a": "x"}, "needs a number"),
        ("int(a)", {"a": "x"}, r"int\(\) needs"),
    ],
)
def test_runtime_type_errors(text: str, env: dict[str, Any], fragment: str) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        ev(text, **env)


def test_missing_values_are_reported_as_missing() -> None:
    with pytest.raises(EvaluationError) as info:
        ev("a - 1", a=MISSING)
    assert info.value.reason == "missing"


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "empty expression"),
        ("1 +", 4, "expected a value"),
        ("(1 + 2", 7, "expected ',' or ')'"),
        ("1 2", 3, "missing operator"),
        ("1 + )", 5, "expected a value"),
        ("'abc", 1, "unterminated string"),
        ("a # b", 3, "invalid token '#'"),
        ("f(1", 4, "expected ',' or ')'"),
        ("1.2.3", 1, "malformed number"),
        ("[abc", 1, "unterminated [parameter]"),
        ("a )", 3, "unexpected ')'"),
    ],
)
def test_syntax_errors_have_positions(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.column == column
    assert fragment in info.value.message
    assert str(info.value).startswith(f"column {column}: ")


def test_compile_errors_unknown_param_function_and_arity() -> None:
    with pytest.raises(ExpressionError, match="unknown parameter 'zz'") as info:
        compile_expression("1 + zz", params=["a"], functions=FUNCTIONS)
    assert info.value.column == 5
    with pytest.raises(ExpressionError, match="unknown function 'nope'"):
        compile_expression("nope(a)", params=["a"], functions=FUNCTIONS)
    with pytest.raises(ExpressionError, match=r"int\(\) takes 1 argument"):
        compile_expression("int(a, a)", params=["a"], functions=FUNCTIONS)
    with pytest.raises(ExpressionError, match=r"percentage\(\) takes 1 to 3"):
        compile_expression("percentage()", params=["a"], functions=FUNCTIONS)


def test_compiled_expression_reports_the_params_it_uses() -> None:
    compiled = compile_expression("int(a == 'x') + b", params=["a", "b", "c"], functions=FUNCTIONS)
    assert compiled.params == {"a", "b"}


def test_functions_can_be_extended() -> None:
    double = FunctionSpec("double", 1, 1, lambda v: v * 2)
    compiled = compile_expression("double(a) + 1", params=["a"], functions={"double": double})
    assert compiled.evaluate({"a": 4}) == 9


# --- fuzz: the parser raises only its own error type -------------------------------------------

ALPHABET = "ab 01.9+-*/%()!=<>&|?:,'\"[]_et"


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=25) | st.text(max_size=15))
def test_parser_never_raises_anything_but_expression_error(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        compile_expression(text, params=["a", "b", "e", "t"], functions=FUNCTIONS)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet=ALPHABET, max_size=20),
    a=st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.booleans(), st.just(MISSING)),
)
def test_evaluation_raises_only_evaluation_error(text: str, a: Any) -> None:
    try:
        compiled = compile_expression(text, params=["a", "b"], functions=FUNCTIONS)
    except ExpressionError:
        return
    with contextlib.suppress(EvaluationError):
        compiled.evaluate({"a": a, "b": "x"})


# --- the whole govaluate language (hand-written cases, one per rule) ---------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100 & 50", 32), ("100 | 50", 118), ("100 ^ 50", 86), ("2 << 1", 4), ("2 >> 1", 1), ("~10", -11),
        ("50 << 1 & 90", 64),  # shift binds tighter than &
        ("90 + 50 << 1 * 5", 4480),  # + and * tighter than <<
        ("1 + 2 == 3 & 3", True),  # comparators bind looser than bitwise: (1 + 2) == (3 & 3)
        ("0x10 + 0xFF", 271), ("0xabcdef", 11259375),
        ("'foobar' =~ 'oba'", True), ("'foobar' !~ '^oba'", True), ("s =~ '[0-9]+'", True),
        ("1 in (1, 2, 3)", True), ("'b' IN ('a', 'b')", True), ("4 in (1, 2)", False),
        ("!(1 in (1, 2))", False),
        ("[name with space] + 1", 8), ("name\\ with\\ space * 2", 14),
        ("true ?? true ? 100 + 200 : 400", 300),  # one ternary level, left to right
        ("true ? 1 : 5 > 10", 1),
        ("missing ?? 'dflt'", "dflt"),
        ("'2014-01-02' > '2014-01-01 23:59:59'", True),  # date literals compare as Unix times
        ("'2024-01-01T00:00:00Z' + 0", 1704067200),
        ("'a' + 1000000", "a1e+06"), ("'a' + 2.5", "a2.5"),  # Go's %v
        ("\"it\\'s\"", "it's"), ("'a\\nb'", "anb"),  # a backslash takes the next character literally
        ("-2 ** 2", 4),  # prefix binds tighter than **
    ],
)
def test_govaluate_rules(text: str, expected: Any) -> None:
    got = ev(text, s="abc123", **{"name with space": 7})
    assert got == expected, (text, got)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1 +- 2", "invalid token '+-'"), ("1 = 1", "invalid token '='"), ("1e3", "missing operator"),
        ("0x", "missing operator"), ("0x12g1", "malformed hex"), ("127.0.0.1", "malformed number"),
        ("a.b", "field accessors are not supported"), ("a.", "hanging accessor"),
        ("s =~ '[abc'", "cannot compile regexp"), ("[a", "unclosed parameter bracket"),
        ("'abc", "unclosed string literal"), ("()", "expected a value"),
    ],
)
def test_govaluate_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        compile_expression(text, params=PARAMS, functions=FUNCTIONS)


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("a & true", {"a": 1}, "needs a number"), ("a =~ 'x'", {"a": 1}, "needs a string"),
        ("s =~ a", {"s": "x", "a": "[x"}, "unable to compile regexp"), ("1 in a", {"a": 2}, "needs an array"),
        ("a ? 1", {"a": 10}, "needs a boolean"),
    ],
)
def test_govaluate_eval_errors(text: str, env: dict[str, Any], fragment: str) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        ev(text, **env)


def test_short_circuits() -> None:
    def fail() -> Any:
        raise EvaluationError("evaluated")

    functions = {**FUNCTIONS, "fail": FunctionSpec("fail", 0, 0, fail)}
    for text in ("true || fail()", "false && fail()", "true ? 1 : fail()", "'x' ?? fail()", "false ? fail()"):
        compile_expression(text, params=[], functions=functions).evaluate({})
