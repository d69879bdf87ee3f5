"""List and watch query parameters, validated the way the kube-apiserver validates them. Pure.

- integers (``limit``, ``timeoutSeconds``) are int64: anything that does not parse as one
  (``1e3``, ``9223372036854775808``) is a 400, like the kube-apiserver's query decoder; negative
  values are accepted (``limit=-1`` is "no limit", ``timeoutSeconds=-1`` ends a watch at once);
- ``resourceVersion`` is an opaque string for clients, but ours are int64 counters: a value that
  is not one is a 400 wherever it is interpreted;
- ``resourceVersionMatch`` follows ``ValidateListOptions``: an unsupported value, a match without
  ``resourceVersion``, with ``continue``, or ``Exact`` with ``resourceVersion=0`` are 422 Invalid;
- continue tokens are ``base64(json({"rv": int64, "after": [namespace, name]}))``; a token that
  does not decode to exactly that (a tampered ``rv: 1e30``, a float, a string) is a 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from apiserver.status import StatusError, bad_request

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INCLUDE_OBJECT = ("Metadata", "Object", "None")
RV_MATCHES = ("Exact", "NotOlderThan")


def invalid(message: str) -> StatusError:
    """A 422 the way the kube-apiserver words ListOptions validation errors."""
    return StatusError(422, f'ListOptions.meta.k8s.io "" is invalid: {message}', reason="Invalid")


def parse_int64(raw: str, *, name: str) -> int:
    """Decimal int64 as Go's ``strconv.ParseInt(raw, 10, 64)``; a 400 otherwise."""
    text = raw[1:] if raw[:1] in "+-" else raw
    if not text.isdigit() or not text.isascii():
        raise bad_request(f"{name}: invalid value {raw!r}: must be an integer")
    value = int(raw)
    if not INT64_MIN <= value <= INT64_MAX:
        raise bad_request(f"{name}: invalid value {raw!r}: value out of range")
    return value


def parse_resource_version(raw: str) -> int:
    """A resourceVersion this server issued (non-negative int64); a 400 otherwise."""
    value = parse_int64(raw, name="resourceVersion")
    if value < 0:
        raise bad_request(f"resourceVersion: invalid value {raw!r}: must not be negative")
    return value


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


@dataclass(frozen=True, slots=True)
class Query:
    """Validated list/watch query parameters (``Query.parse`` raises a Status on bad input)."""

    labels: LabelSelector
    fields: FieldSelector
    include_object: str
    limit: int | None
    continue_token: str
    resource_version: str
    rv_match: str
    watch: bool
    timeout_seconds: int | None
    bookmarks: bool
    send_initial_events: bool | None

    @classmethod
    def parse(cls, params: Mapping[str, str], *, single: bool = False) -> Query:
        """Validate ``params``; ``single`` for a GET of one object (ListOptions rules do not apply)."""
        try:
            labels = parse_label_selector(params.get("labelSelector"))
            fields = parse_field_selector(params.get("fieldSelector"))
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        include_object = params.get("includeObject") or "Metadata"
        if include_object not in INCLUDE_OBJECT:
            raise bad_request(
                f'includeObject: Unsupported value: "{include_object}": supported values: '
                '"Metadata", "Object", "None"'
            )
        limit = _optional_int(params, "limit")
        timeout = _optional_int(params, "timeoutSeconds")
        send_initial = params.get("sendInitialEvents")
        query = cls(
            labels=labels,
            fields=fields,
            include_object=include_object,
            limit=limit if limit is not None and limit > 0 else None,
            continue_token=params.get("continue") or "",
            resource_version=params.get("resourceVersion") or "",
            rv_match=params.get("resourceVersionMatch") or "",
            watch=_truthy(params.get("watch")),
            timeout_seconds=timeout,
            bookmarks=_truthy(params.get("allowWatchBookmarks")),
            send_initial_events=None if send_initial is None else _truthy(send_initial),
        )
        if query.resource_version:
            parse_resource_version(query.resource_version)
        if not query.watch and not single:
            query.validate_list()
        return query

    def validate_list(self) -> None:
        """``ValidateListOptions`` for a list (watches are validated by ``apiserver.watch``)."""
        match = self.rv_match
        if match:
            if not self.resource_version:
                raise invalid(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                    "resourceVersion is provided"
                )
            if self.continue_token:
                raise invalid(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when "
                    "continue is provided"
                )
            if match not in RV_MATCHES:
                raise invalid(
                    f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                    '"Exact", "NotOlderThan", ""'
                )
            if match == "Exact" and self.resource_version == "0":
                raise invalid(
                    'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden '
                    'for resourceVersion "0"'
                )
        if self.send_initial_events is not None:
            raise invalid("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")


def _optional_int(params: Mapping[str, str], key: str) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    return parse_int64(raw, name=key)


# ---------------------------------------------------------------------- continue tokens


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "after": list(after)})).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """(list RV, last key) of a token this server issued; a 400 for anything else."""
    malformed = bad_request("continue key is not valid: the token is malformed")
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise malformed from None
    if not isinstance(data, dict):
        raise malformed
    rv, after = data.get("rv"), data.get("after")
    # bool is an int subclass; floats (1e30) and big integers never come from encode_continue.
    if type(rv) is not int or not 0 <= rv <= INT64_MAX:
        raise malformed
    if not isinstance(after, list) or len(after) != 2 or not all(isinstance(p, str) for p in after):
        raise malformed
    return rv, (after[0], after[1])
