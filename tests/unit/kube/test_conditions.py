"""Status condition helpers: transition times move only when status changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kube.conditions import get_condition, is_true, remove_condition, rfc3339, same_conditions, set_condition


def test_rfc3339_is_utc_with_z() -> None:
    moment = datetime(2026, 1, 2, 5, 4, 3, 999, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2026-01-02T03:04:03Z"


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    c1 = set_condition(None, type_="Ready", status="False", reason="CompileError", message="m",
                       observed_generation=1, now="T1")
    assert c1 == [{"type": "Ready", "status": "False", "reason": "CompileError", "message": "m",
                   "observedGeneration": 1, "lastTransitionTime": "T1"}]
    c2 = set_condition(c1, type_="Ready", status="False", reason="TargetNotFound", message="n",
                       observed_generation=2, now="T2")
    assert c2[0]["lastTransitionTime"] == "T1" and c2[0]["reason"] == "TargetNotFound"
    assert c2[0]["observedGeneration"] == 2
    c3 = set_condition(c2, type_="Ready", status="True", reason="Compiled", message="", now="T3")
    assert c3[0]["lastTransitionTime"] == "T3" and is_true(c3, "Ready")
    assert c1[0]["reason"] == "CompileError"  # inputs are not mutated


def test_other_conditions_kept_in_order_and_removed() -> None:
    conds = set_condition(None, type_="A", status="True", reason="r", message="", now="T")
    conds = set_condition(conds, type_="B", status="False", reason="r", message="", now="T")
    conds = set_condition(conds, type_="A", status="False", reason="x", message="", now="T2")
    assert [c["type"] for c in conds] == ["A", "B"]
    assert get_condition(conds, "B") is not None and get_condition(conds, "C") is None
    assert [c["type"] for c in remove_condition(conds, "A")] == ["B"]
    assert same_conditions(conds, list(reversed(conds)))
    assert not same_conditions(conds, remove_condition(conds, "A"))


def test_invalid_status_rejected() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        now = rfc3339(datetime.now(UTC))
        set_condition(None, type_="Ready", status="yes", reason="r", message="", now=now)
