"""Small value types shared by the compiler, the store, the exposition and the API server.

They are the contract between ``exporter`` and its users (``apiserver``, ``kube`` wiring): a
compiled ``Plan`` announces its families as ``FamilyHeader``s and renders an object into one
chunk of sample lines per family, aligned by index with ``Plan.families``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TargetRef:
    """The resource kind a configuration targets (``spec.targetRef``), split for discovery."""

    api_version: str  # "apps/v1", "v1", "kubedb.com/v1"
    kind: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class FamilyHeader:
    """One exported metric family: its name, HELP text, TYPE and where it comes from."""

    name: str
    help: str
    type: str  # always "gauge" for Panopticon configs
    configuration: str  # MetricsConfiguration name
    target: TargetRef
    # An aggregate (``metrics[].aggregate``, exporter/aggregates.py): each object's chunk is its
    # contribution to the groups, and the store exposes the groups instead of the chunks.
    aggregate: bool = False
    # Every label key its series may carry (names, and ``label_app_*``-style patterns for keys
    # copied from objects), computed at compile time; two configurations may feed one family
    # only when these agree (exporter/sharing.py). None: unknown (the family cannot be shared).
    label_keys: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """One parsed sample, for the API server's ObjectMetrics view (never on the scrape path)."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem, with the exact field path it concerns."""

    path: str  # e.g. "spec.metrics[2].metricValue.valueFromExpression"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def object_line(name: str, problem: Problem) -> str:
    """``NAME: field.path: message``: one problem of one object, without a file location.

    ``panopticon check`` prints it after ``FILE:LINE: ``; the admission webhook sends it as is.
    """
    return f"{name or '(unnamed)'}: {problem.path}: {problem.message}"


@dataclass(slots=True)
class RenderErrors:
    """Per-render error report: (metric name, reason, detail) for each dropped series."""

    items: list[tuple[str, str, str]] = field(default_factory=list)


class Plan(Protocol):
    """A compiled MetricsConfiguration."""

    name: str
    target: TargetRef
    families: tuple[FamilyHeader, ...]

    def render(self, obj: Mapping[str, Any], errors: RenderErrors | None = None) -> tuple[bytes, ...]:
        """Sample lines (``name{labels} value\\n`` ...) per family, aligned with ``families``."""
        ...
