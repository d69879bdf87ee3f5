"""Check rendered Thanos command lines against the flag table of our default image's release.

``flags/thanos-v0.37.2.yaml`` lists, per subcommand, each flag's type (see its header). Every
argument of a Thanos container must name a flag of its subcommand, appear at most once unless
repeatable, and carry a value of the flag's type, parsed with the same grammars the operator
validates its input with (``thanos_operator.durations``, ``thanos_operator.addresses``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from thanos_operator.addresses import address_problem
from thanos_operator.durations import check_time_or_duration, duration_ms, is_go_duration
from thanos_operator.names import DEFAULT_THANOS_IMAGE

TABLE = Path(__file__).parent / "flags" / f"thanos-{DEFAULT_THANOS_IMAGE.rsplit(':', 1)[1]}.yaml"
_LABEL = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*=".*"$')
_BYTES = re.compile(r"^[0-9]+(B|KB|MB|GB|TB|PB|EB|KiB|MiB|GiB|TiB)?$")
THANOS_SUBCOMMANDS = ("query", "receive", "store", "compact", "query-frontend", "rule")


@cache
def flag_table() -> dict[str, dict[str, str]]:
    raw: dict[str, Any] = yaml.safe_load(TABLE.read_text())
    common = raw["common"]
    return {sub: {**common, **flags} for sub, flags in raw["subcommands"].items()}


def _value_problem(kind: str, value: str | None) -> str | None:
    if kind == "bool":
        return None if value in (None, "true", "false") else "expects no value, true or false"
    if value is None:
        return "needs a value"
    if "&" in kind:  # valid as every one of the types
        return next((p for p in (_value_problem(k, value) for k in kind.split("&")) if p), None)
    if kind.startswith("enum:"):
        allowed = kind.removeprefix("enum:").split("|")
        return None if value in allowed else f"expects one of {allowed}"
    checks: dict[str, Callable[[str], bool]] = {
        "duration": lambda v: duration_ms(v) is not None,
        "go_duration": is_go_duration,
        "time_or_duration": _is_time_or_duration,
        "address": lambda v: address_problem(v) is None and not v.startswith("dns"),
        "endpoint": lambda v: address_problem(v) is None,
        "uint": lambda v: v.isdigit(),
        "int": lambda v: v.lstrip("-").isdigit(),
        "label": lambda v: _LABEL.match(v) is not None,
        "bytes": lambda v: _BYTES.match(v) is not None,
        "path": lambda v: bool(v) and '"' not in v,
        "string": lambda v: bool(v),
    }
    return None if checks[kind](value) else f"is not a valid {kind}"


def _is_time_or_duration(value: str) -> bool:
    try:
        check_time_or_duration(value)
    except ValueError:
        return False
    return True


def argument_problems(args: list[str]) -> list[str]:
    """Problems of one Thanos container's ``args`` (``[subcommand, --flag[=value], ...]``)."""
    if not args or args[0] not in flag_table():
        return [f"unknown subcommand {args[:1]}"]
    table = flag_table()[args[0]]
    problems = []
    seen: Counter[str] = Counter()
    for arg in args[1:]:
        if not arg.startswith("--"):
            problems.append(f"{arg!r}: not a --flag")
            continue
        name, sep, value = arg[2:].partition("=")
        kind = table.get(name) or table.get(name.removeprefix("no-"))
        if kind is None:
            problems.append(f"{arg!r}: thanos {args[0]} has no flag --{name}")
            continue
        repeatable = kind.endswith("*")
        seen[name] += 1
        if seen[name] > 1 and not repeatable:
            problems.append(f"{arg!r}: --{name} given more than once")
        problem = _value_problem(kind.removesuffix("*"), value if sep else None)
        if problem is not None:
            problems.append(f"{arg!r}: --{name} {problem}")
    return problems


def thanos_containers(objects: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            if container.get("args") and container["args"][0] in THANOS_SUBCOMMANDS:
                found.append((f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}", container))
    return found
