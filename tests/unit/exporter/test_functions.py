"""Expression functions: scalar helpers and the workload resource functions for every kind."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.expressions import EvaluationError, compile_expression
from exporter.functions import FUNCTIONS
from exporter.paths import MISSING


def call(text: str, **env: Any) -> Any:
    return compile_expression(text, params=list(env) or ["x"], functions=FUNCTIONS).evaluate(env)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("int(x)", {"x": True}, 1),
        ("int(x)", {"x": False}, 0),
        ("int(x)", {"x": 3.9}, 3),
        ("int(x)", {"x": -3.9}, -3),
        ("int(x)", {"x": "7"}, 7),
        ("toInt(x == 'a')", {"x": "a"}, 1),
        ("percentage(x, r, false)", {"x": "25%", "r": 3}, 0),
        ("percentage(x, r, true)", {"x": "25%", "r": 3}, 1),
        ("percentage(x, r)", {"x": "25%", "r": 10}, 2),
        ("percentage(x, r, true)", {"x": "30%", "r": 10}, 3),
        ("percentage(x, r, true)", {"x": "12.5%", "r": 10}, 2),
        ("percentage(x, r, false)", {"x": 2, "r": 10}, 2),
        ("percentage(x, r, true)", {"x": "50%", "r": "5"}, 3),
        ("cpu_cores(x)", {"x": "150m"}, 0.15),
        ("cpu_cores(x)", {"x": "2"}, 2),
        ("cpu_cores(x)", {"x": "1.0001"}, 1.001),  # rounded up to millicores
        ("cpu_cores(x)", {"x": 0.1}, 0.1),  # a YAML number is its decimal, not the binary float
        ("total_resource_requests(o, 'cpu')",
         {"o": {"kind": "Pod", "spec": {"containers": [{"resources": {"requests": {"cpu": 0.1}}}]}}}, 0.1),
        ("bytes(x)", {"x": "1Ki"}, 1024),
        ("bytes(x)", {"x": "1.5Gi"}, 1610612736),
        ("bytes(x)", {"x": "100m"}, 1),  # rounded up to whole bytes
        ("bytes(x)", {"x": "12.222 MiB"}, 12815696),  # KubeStash's human sizes (rounded up)
        ("bytes(x)", {"x": "1.5 GB"}, 1500000000),
        ("bytes(x)", {"x": "512 B"}, 512),
        ("bytes(x)", {"x": "2KiB"}, 2048),
        ("toSecond(x)", {"x": "-9223372036854775808ns"}, -9223372036.854775808),  # int64 minimum
        ("toSecond(x)", {"x": "1.0000000001s"}, 1.0),  # fractions below 1ns are dropped, as Go
        ("unix(x)", {"x": "2024-03-01T10:20:30Z"}, 1709288430),
        ("toUnix(x)", {"x": "1970-01-01T00:01:00Z"}, 60),
        ("toSecond(x)", {"x": "1h2m3.5s"}, 3723.5),
        ("toSecond(x)", {"x": "150ms"}, 0.15),
    ],
)
def test_scalar_functions(text: str, env: dict[str, Any], expected: float) -> None:
    assert call(text, **env) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "env", "reason"),
    [
        ("percentage(x, r)", {"x": MISSING, "r": 3}, "missing"),
        ("percentage(x, r)", {"x": "25%", "r": MISSING}, "missing"),
        ("percentage(x, r)", {"x": "a%", "r": 3}, "expression"),
        ("cpu_cores(x)", {"x": "lots"}, "expression"),
        ("bytes(x)", {"x": MISSING}, "missing"),
        ("unix(x)", {"x": "yesterday"}, "expression"),
        ("toSecond(x)", {"x": MISSING}, "missing"),
        ("toSecond(x)", {"x": "1 day"}, "expression"),
        ("toSecond(x)", {"x": "9223372036854775808ns"}, "expression"),  # past int64 nanoseconds
        ("toSecond(x)", {"x": "3000000h"}, "expression"),
        ("percentage(x, r, false)", {"x": "2", "r": 10}, "expression"),  # a string must be "N%"
        ("bytes(x)", {"x": "12 parsecs"}, "expression"),
        ("int(x)", {"x": {"a": 1}}, "expression"),
    ],
)
def test_scalar_function_errors(text: str, env: dict[str, Any], reason: str) -> None:
    with pytest.raises(EvaluationError) as info:
        call(text, **env)
    assert info.value.reason == reason
