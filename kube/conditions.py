"""Pure helpers for ``status.conditions`` (``metav1.Condition``).

A condition is ``{type, status, reason, message, observedGeneration, lastTransitionTime}``.
``set_condition`` returns a new list where the condition of that type is replaced; its
``lastTransitionTime`` changes only when ``status`` changes, as the Kubernetes API conventions
require, so re-writing the same state is a no-op and a writer can skip the request
(``same_conditions``). No I/O, no clock: callers pass ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

Condition = dict[str, Any]


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format (UTC, seconds, trailing ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    observed_generation: int | None = None,
    now: str,
) -> list[Condition]:
    """``conditions`` with the ``type_`` condition set (appended when new), order kept."""
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    new: Condition = {"type": type_, "status": status, "reason": reason, "message": message}
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    out: list[Condition] = []
    replaced = False
    for cond in conditions or ():
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        keep_time = cond.get("status") == status and cond.get("lastTransitionTime")
        new["lastTransitionTime"] = keep_time or now
        out.append(new)
        replaced = True
    if not replaced:
        new["lastTransitionTime"] = now
        out.append(new)
    return out


def remove_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> list[Condition]:
    return [dict(c) for c in conditions or () if c.get("type") != type_]


def same_conditions(a: Sequence[Mapping[str, Any]] | None, b: Sequence[Mapping[str, Any]] | None) -> bool:
    """Equal as sets keyed by type (field order and list order do not matter)."""
    def by_type(conds: Sequence[Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
        return {str(c.get("type")): dict(c) for c in conds or ()}

    return by_type(a) == by_type(b)


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    cond = get_condition(conditions, type_)
    return cond is not None and cond.get("status") == "True"
