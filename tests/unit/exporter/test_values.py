"""Value conversions: numbers, booleans, quantities, timestamps, durations, percentages, format."""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Any

import pytest

from exporter.values import (
    MAX_EXPONENT,
    ValueConversionError,
    datetime_to_float,
    exact_decimal,
    format_value,
    label_value_of,
    parse_duration,
    parse_quantity,
    parse_rfc3339,
    parse_size,
    to_float,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250m", Fraction(1, 4)),
        ("1", Fraction(1)),
        ("1Gi", Fraction(2**30)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("512Mi", Fraction(512 * 2**20)),
        ("1Ki", Fraction(1024)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("2e-3", Fraction(2, 1000)),
        ("1.5k", Fraction(1500)),
        ("1M", Fraction(10**6)),
        ("1E", Fraction(10**18)),  # exa, not an exponent
        ("100n", Fraction(100, 10**9)),
        ("5u", Fraction(5, 10**6)),
        ("-1.5", Fraction(-3, 2)),
        ("+2", Fraction(2)),
        (".5", Fraction(1, 2)),
        ("0.1", Fraction(1, 10)),  # exact, not the float 0.1
    ],
)
def test_quantities_are_exact(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("bad", ["", "abc", "1Z", "1 Gi", "Gi", "1.2.3", "1KiB", "--1"])
def test_bad_quantities(bad: str) -> None:
    with pytest.raises(ValueConversionError):
        parse_quantity(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:20:30Z", 1709288430.0),
        ("2024-03-01T10:20:30.5Z", 1709288430.5),
        ("2024-03-01T12:20:30+02:00", 1709288430.0),
        ("2024-03-01T10:20:30.123456789Z", 1709288430.123456),
        ("1970-01-01T00:00:00Z", 0.0),
    ],
)
def test_rfc3339(text: str, expected: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(expected, abs=1e-6)
    assert datetime_to_float(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bad", ["2024-03-01", "2024-03-01T10:20:30", "yesterday", "2024-13-01T00:00:00Z"])
def test_bad_timestamps(bad: str) -> None:
    with pytest.raises(ValueConversionError) as info:
        parse_rfc3339(bad)
    assert info.value.reason == "datetime"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h2m3.5s", 3723.5),
        ("150ms", 0.15),
        ("1m32.5s", 92.5),
        ("2h3m4.25s", 7384.25),
        ("-1m", -60.0),
        ("0", 0.0),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("3ns", 3e-9),
        ("1.5h", 5400.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "1", "1d", "h", "1h 2m", "-"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueConversionError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        (True, 1.0),
        (False, 0.0),
        ("42", 42.0),
        ("1e3", 1000.0),
        ("true", 1.0),
        ("False", 0.0),
        ("250m", 0.25),
        ("1Gi", 2.0**30),
        ("25%", 0.25),
        ("2024-03-01T10:20:30Z", 1709288430.0),
        ("NaN", math.nan),
        ("+Inf", math.inf),
    ],
)
def test_to_float(value: Any, expected: float) -> None:
    result = to_float(value)
    assert (math.isnan(result) and math.isnan(expected)) or result == expected


@pytest.mark.parametrize("bad", [None, {"a": 1}, [1], "abc", "1_000", ""])
def test_to_float_failures(bad: Any) -> None:
    with pytest.raises(ValueConversionError):
        to_float(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.0, "0"),
        (-3.0, "-3"),
        (0.25, "0.25"),
        (1709288430.0, "1709288430"),
        (6.95, "6.95"),
        (1e20, "1e+20"),
        (2.0**60, "1.152921504606847e+18"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text
    parsed = float(text.replace("Inf", "inf"))
    assert (math.isnan(parsed) and math.isnan(value)) or parsed == value  # round-trips exactly


@pytest.mark.parametrize(
    ("value", "text"),
    [("x", "x"), (3, "3"), (2.5, "2.5"), (True, "true"), (False, "false"), (None, None),
     ({"b": 1, "a": [2]}, '{"a":[2],"b":1}')],
)
def test_label_values(value: Any, text: str | None) -> None:
    assert label_value_of(value) == text


HOSTILE = ["1e100000000", "1E+99999999", "9" * 5000, "1e" + "9" * 50, "1" * 2000 + "Mi"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_quantities_fail_fast_as_conversion_errors(text: str) -> None:
    """An object's text cannot make a render build huge exact numbers (Fraction("1e10000000")
    took 12 s) or escape as int()'s digit-limit ValueError: a conversion error, at once."""
    started = time.process_time()
    with pytest.raises(ValueConversionError):
        parse_quantity(text)
    with pytest.raises(ValueConversionError):
        to_float(text + "%")  # the percentage form goes through the same bounds
    with pytest.raises(ValueConversionError):
        parse_size(text + " MiB")
    assert time.process_time() - started < 0.5


def test_quantities_within_the_bounds_keep_their_exact_value() -> None:
    assert parse_quantity(f"1e{MAX_EXPONENT}") == 10**MAX_EXPONENT
    assert parse_quantity(f"25e-{MAX_EXPONENT}") == Fraction(25, 10**MAX_EXPONENT)
    assert to_float("2.5e2%") == 2.5
    assert exact_decimal("1/4") == Fraction(1, 4)
    with pytest.raises(ValueError):
        exact_decimal(f"1e{MAX_EXPONENT + 1}")
