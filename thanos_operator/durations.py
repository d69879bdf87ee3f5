"""Thanos' own grammars for durations and points in time, checked before anything is rendered.

Thanos parses ``--tsdb.retention`` and ``--retention.resolution-*`` as a Prometheus
``model.Duration`` (github.com/prometheus/common/model ``ParseDuration``): units in the fixed
order y, w, d, h, m, s, ms, each at most once, integers only, or the bare ``0``. ``--min-time`` /
``--max-time`` are a ``TimeOrDurationValue`` (thanos-io/thanos ``pkg/model/timeduration.go``): an
RFC 3339 time (Go's ``time.RFC3339``, fractional seconds allowed), or a duration as above
optionally preceded by ``-`` (relative to now). Anything else makes Thanos exit at start-up, so
the operator refuses it with the field path instead.

Some flags are not ``model.Duration`` but Go's ``time.Duration`` (kingpin's ``DurationVar``, parsed
by ``time.ParseDuration``): ``thanos rule --eval-interval`` and ``thanos query-frontend
--query-range.split-interval`` among those we render. That grammar has no ``d``, ``w`` or ``y``
(``1d`` makes Thanos exit) but allows fractions and any unit order (``1.5h``, ``90m``, ``300ms``);
``check_go_duration`` checks it (see tests/golden/thanos/flags/ for which flag uses which).
"""

from __future__ import annotations

import re
from datetime import datetime

_DURATION = re.compile(
    r"^(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?$"
)
_RFC3339 = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.[0-9]+)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_DAY_MS = 86_400_000
_MS = {"y": 365 * _DAY_MS, "w": 7 * _DAY_MS, "d": _DAY_MS, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def duration_ms(value: str) -> int | None:
    """Milliseconds of a ``model.Duration`` string, or ``None`` when Thanos would refuse it."""
    if value == "0":
        return 0
    match = _DURATION.match(value)
    if not value or match is None:
        return None
    return sum(int(amount) * _MS[unit] for unit, amount in match.groupdict().items() if amount is not None)


def check_duration(value: str) -> str:
    """Pydantic-style validator: the value unchanged, or ``ValueError`` with Thanos' grammar."""
    if duration_ms(value) is None:
        raise ValueError(
            f"{value!r} is not a Thanos duration: use integers with units in the order y, w, d, h, m, s, ms "
            "(e.g. 15d, 1w, 2h30m, 0)"
        )
    return value


_GO_DURATION = re.compile(r"^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$")


def is_go_duration(value: str) -> bool:
    """Go's ``time.ParseDuration``: ``0``, or signed decimal numbers each with a unit ns..h."""
    return value in ("0", "+0", "-0") or _GO_DURATION.match(value) is not None


def check_go_duration(value: str) -> str:
    """Validator for flags Thanos parses as Go ``time.Duration``: positive, units h, m, s, ms, us, ns."""
    if not is_go_duration(value) or value.startswith("-"):
        raise ValueError(
            f"{value!r} is not a Go duration (this Thanos flag has no d, w or y): use units h, m, s, ms "
            "(e.g. 24h, 90m, 1h30m, 30s)"
        )
    return value


def is_rfc3339(value: str) -> bool:
    match = _RFC3339.match(value)
    if match is None:
        return False
    zone = match["zone"].upper()
    try:
        datetime.fromisoformat(f"{match['date']}T{match['time']}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return False
    return True


def check_time_or_duration(value: str) -> str:
    """``--min-time``/``--max-time``: RFC 3339, or a duration relative to now (``-2w``, ``1d``)."""
    relative = value.removeprefix("-")
    if is_rfc3339(value) or (relative and duration_ms(relative) is not None):
        return value
    raise ValueError(
        f"{value!r} is neither an RFC 3339 time (2024-01-02T15:04:05Z) nor a duration relative to now "
        "(-2w, -36h, 0)"
    )
