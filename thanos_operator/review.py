"""One ``Thanos`` object in, its problems out: what ``panopticon check`` and the admission webhook say.

The validation itself is the models' (``thanos_operator.models.parse_thanos``: schema, durations,
derived names, replicationFactor against every hashring, object storage where a component needs
it, tenant routing); this module only turns its ``field.path: message`` strings into
``exporter.types.Problem``s so that both tools print them in the one shape
``NAME: field.path: message`` (``exporter.types.object_line``). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.types import Problem, object_line
from thanos_operator.models import API_GROUP, API_VERSION, KIND, ThanosValidationError, parse_thanos

__all__ = ["THANOS_API_VERSION", "ThanosReview", "is_thanos", "review_thanos"]

THANOS_API_VERSION = f"{API_GROUP}/{API_VERSION}"


def is_thanos(data: Mapping[str, Any]) -> bool:
    return data.get("apiVersion") == THANOS_API_VERSION and data.get("kind") == KIND


@dataclass(frozen=True, slots=True)
class ThanosReview:
    name: str
    problems: tuple[Problem, ...]

    @property
    def problem_lines(self) -> list[str]:
        return [object_line(self.name, p) for p in self.problems]


def _problem(text: str) -> Problem:
    """``"spec.x[0].y: message"`` -> Problem; a message without a field path concerns the object."""
    head, sep, rest = text.partition(": ")
    if sep and head and " " not in head:
        return Problem(path=head, message=rest)
    return Problem(path="(document)", message=text)


def review_thanos(obj: Mapping[str, Any]) -> ThanosReview:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    name = name if isinstance(name, str) else ""
    try:
        parse_thanos(dict(obj))
    except ThanosValidationError as exc:
        return ThanosReview(name=name, problems=tuple(_problem(p) for p in exc.problems))
    return ThanosReview(name=name, problems=())
