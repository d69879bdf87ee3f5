"""What the live exporter knows about one MetricsConfiguration (pure data, no I/O).

``ConfigState`` is the controller's record per configuration name: the last object seen (or
``None`` once deleted), the compiled plan and the spec it came from, how discovery resolved
its target, why it exports nothing (``error_reason``), the live binding and the one being
synced, the outcome of the typo check of its paths (``PathCheck``), and what status was last
written. The reasons of the ``Ready`` and ``PathsValid`` conditions are named here, beside
``kube.discovery``'s ``TargetNotFound`` and ``VersionFallback``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from exporter.types import Plan
from kube.discovery import ResolvedResource

if TYPE_CHECKING:
    from exporter.cluster.binding import Binding
    from exporter.compiler import GlobalLabels

# Reasons of the Ready condition.
COMPILED = "Compiled"
COMPILE_ERROR = "CompileError"
SYNCING = "Syncing"
LIST_ERROR = "ListError"

# The PathsValid condition: every path of the configuration is one the target's schema can have.
# A typo is a warning: the configuration keeps serving whatever its paths find.
PATHS_VALID = "PathsValid"
SCHEMA_MATCHED = "SchemaMatched"  # True
UNKNOWN_PATH = "UnknownPath"  # False, with a did-you-mean per path
SCHEMA_UNAVAILABLE = "SchemaUnavailable"  # Unknown: no schema for the kind, or it could not be read


@dataclass(frozen=True, slots=True)
class PathCheck:
    """The typo check of one configuration's paths against its target's schema."""

    key: tuple[Any, ...]  # what it was computed from (spec, resolved kind, schema cache generation)
    source: str  # where the schema came from, e.g. "CustomResourceDefinition widgets.example.com"
    checked: int = 0  # paths checked
    problems: tuple[str, ...] = ()  # "field.path: message" per path the schema cannot have
    unavailable: str = ""  # why there is no schema (then nothing was checked)


class Compiler(Protocol):
    def __call__(self, config: Mapping[str, Any]) -> Plan: ...


def default_compiler(config: Mapping[str, Any]) -> Plan:
    from exporter.compiler import compile_config

    return compile_config(config)


def compiler_with(metric_labels: GlobalLabels | None) -> Compiler:
    """``default_compiler`` with the global ``--metric-labels-allowlist`` flags (when given)."""
    if metric_labels is None:
        return default_compiler

    def compile_with_flags(config: Mapping[str, Any]) -> Plan:
        from exporter.compiler import compile_config

        return compile_config(config, metric_labels=metric_labels)

    return compile_with_flags


def compile_message(err: Exception) -> str:
    problems = getattr(err, "problems", None)
    if problems:
        return "; ".join(str(p) for p in problems)
    return f"{type(err).__name__}: {err}"


@dataclass
class ConfigState:
    name: str
    raw: dict[str, Any] | None = None
    spec_key: bytes = b""
    plan: Plan | None = None
    resolution_reason: str = ""
    resolution_message: str = ""
    resource: ResolvedResource | None = None
    error_reason: str = ""  # COMPILE_ERROR or TARGET_NOT_FOUND (nothing exported)
    error_message: str = ""
    binding: Binding | None = None  # the live one
    next_binding: Binding | None = None  # being synced, replaces ``binding`` on activation
    path_check: PathCheck | None = None  # None: not checked (not compiled, or not resolved)
    written: dict[str, Any] | None = None
    written_at: float | None = None  # loop time of the last write attempt
    conditions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def generation(self) -> int | None:
        meta = (self.raw or {}).get("metadata") or {}
        gen = meta.get("generation")
        return int(gen) if isinstance(gen, int) else None

    @property
    def active(self) -> bool:
        """Should be exporting (compiled, resolved, no clash)."""
        return self.plan is not None and self.resource is not None and not self.error_reason
