"""Every argument of every rendered Thanos container is a real flag of our image's release with a
valid value (``flags/thanos-v0.37.2.yaml``): the golden cases, and property-generated objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings

from tests.golden.thanos.thanos_flags import argument_problems, flag_table, thanos_containers
from tests.unit.thanos.strategies import thanos_objects
from thanos_operator.models import parse_thanos
from thanos_operator.render import render

CASES = Path(__file__).parent / "cases"
GOLDEN = sorted(p.name.removesuffix(".golden.yaml") for p in CASES.glob("*.golden.yaml"))


@pytest.mark.parametrize("case", GOLDEN)
def test_every_argument_of_every_golden_case_is_a_valid_flag(case: str) -> None:
    objects = list(yaml.safe_load_all((CASES / f"{case}.golden.yaml").read_text()))
    containers = thanos_containers(objects)
    assert containers, "no Thanos container found"
    checked = 0
    for where, container in containers:
        assert argument_problems(container["args"]) == [], where
        checked += len(container["args"]) - 1
    assert checked >= 5


@settings(max_examples=80, deadline=None)
@given(thanos_objects())
def test_every_argument_of_generated_objects_is_a_valid_flag(raw: dict[str, Any]) -> None:
    for where, container in thanos_containers(render(parse_thanos(raw))):
        assert argument_problems(container["args"]) == [], where


def test_the_checker_catches_unknown_flags_bad_values_and_repeats() -> None:
    assert flag_table()["receive"]["tsdb.retention"] == "duration"
    assert argument_problems(
        [
            "receive",
            "--tsdb.retention=one day",
            "--receive.replication-factor=-1",
            "--receive.hashrings-algorithm=random",
            "--tsdb.path=/a",
            "--tsdb.path=/b",
            "--store.sd-files=/x",
            "--label=x",
        ]
    ) == [
        "'--tsdb.retention=one day': --tsdb.retention is not a valid duration",
        "'--receive.replication-factor=-1': --receive.replication-factor is not a valid uint",
        "'--receive.hashrings-algorithm=random': --receive.hashrings-algorithm expects one of "
        "['hashmod', 'ketama']",
        "'--tsdb.path=/b': --tsdb.path given more than once",
        "'--store.sd-files=/x': thanos receive has no flag --store.sd-files",
        "'--label=x': --label is not a valid label",
    ]
    assert argument_problems(["compact", "--wait=yes"]) == [
        "'--wait=yes': --wait expects no value, true or false"
    ]
    assert argument_problems(["sidecar"]) == ["unknown subcommand ['sidecar']"]
    # Go time.Duration flags (kingpin DurationVar) have no d/w/y; model.Duration ones do.
    assert argument_problems(["rule", "--eval-interval=1d", "--tsdb.retention=2d"]) == [
        "'--eval-interval=1d': --eval-interval is not a valid go_duration"
    ]
    assert argument_problems(["rule", "--eval-interval=1.5m", "--grpc-grace-period=1d"]) == [
        "'--grpc-grace-period=1d': --grpc-grace-period is not a valid go_duration"
    ]


@settings(max_examples=40, deadline=None)
@given(thanos_objects())
def test_every_rendered_flag_is_known_to_the_escape_hatch_check(raw: dict[str, Any]) -> None:
    """names.MANAGED_FLAGS (what extraArgs may not override) lists every flag the renderer sets."""
    from thanos_operator import names

    for where, container in thanos_containers(render(parse_thanos(raw))):
        for arg in container["args"][1:]:
            flag = arg[2:].partition("=")[0]
            assert flag in names.MANAGED_FLAGS | names.REPEATABLE_RENDERED_FLAGS, (where, flag)
