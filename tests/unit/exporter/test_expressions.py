"""The govaluate expression language: parsing, precedence, operators, semantics, errors, fuzz."""

from __future__ import annotations

import contextlib
import math
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
