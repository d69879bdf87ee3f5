"""What the live exporter knows about one MetricsConfiguration (pure data, no I/O).

``ConfigState`` is the controller's record per configuration name: the last object seen (or
``None`` once deleted), the compiled plan and the spec it came from, how discovery resolved
its target, why it exports nothing (``error_reason``), the live binding and the one being
synced, and what status was last written. The reasons of the ``Ready`` condition are named
here, beside ``kube.discovery``'s ``TargetNotFound`` and ``VersionFallback``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from exporter.types import Plan
from kube.discovery import ResolvedResource

if TYPE_CHECKING:
    from exporter.cluster.binding import Binding

# Reasons of the Ready condition.
COMPILED = "Compiled"
COMPILE_ERROR = "CompileError"
SYNCING = "Syncing"
LIST_ERROR = "ListError"


class Compiler(Protocol):
    def __call__(self, config: Mapping[str, Any]) -> Plan: ...


def default_compiler(config: Mapping[str, Any]) -> Plan:
    from exporter.compiler import compile_config

    return compile_config(config)


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
