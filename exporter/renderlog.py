"""Log lines for dropped series that a production cluster can live with.

Rendering an object can drop series (``RenderErrors``): most often because an optional field
is simply absent (reason ``missing``), which is normal and happens for every object of the
kind. Every drop is counted in telemetry (``panopticon_series_errors_total``, by the caller);
this module decides what reaches the log: at most one line per (configuration, metric, reason),
naming the first object it happened to as ``Kind namespace/name`` (never by uid). A long-running
exporter logs that line when the key is first seen (``missing`` at INFO, other reasons at
WARNING); a batch run (``deferred=True``, ``panopticon render``) logs nothing until ``flush()``,
which writes one WARNING line per key with the count. Pure bookkeeping around a ``logging.Logger``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.types import RenderErrors

__all__ = ["RenderLog", "object_name"]


def object_name(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` (``Kind name`` for cluster-scoped objects)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or "(unnamed)"
    kind = obj.get("kind") or "object"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass
class _Seen:
    first: str
    detail: str
    count: int = 1
    summarized: int = 1


@dataclass
class RenderLog:
    """Remembers which (configuration, metric, reason) were logged, and how often they recur."""

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("exporter.render"))
    deferred: bool = False
    seen: dict[tuple[str, str, str], _Seen] = field(default_factory=dict)

    def report(self, configuration: str, obj: Mapping[str, Any], errors: RenderErrors) -> None:
        for metric, reason, detail in errors.items:
            key = (configuration, metric, reason)
            entry = self.seen.get(key)
            if entry is not None:
                entry.count += 1
                continue
            who = object_name(obj)
            self.seen[key] = _Seen(first=who, detail=detail, summarized=0 if self.deferred else 1)
            if self.deferred:
                continue
            if reason == "missing":
                self.logger.info("configuration %s, metric %s: series dropped for %s: %s (an absent field; "
                                 "later absences are only counted in panopticon_series_errors_total)",
                                 configuration, metric, who, detail)
            else:
                self.logger.warning("configuration %s, metric %s: series dropped for %s (%s): %s (later ones "
                                    "are only counted in panopticon_series_errors_total)",
                                    configuration, metric, who, reason, detail)

    def forget(self, configuration: str) -> None:
        """A configuration was replaced or removed: its problems may be logged again."""
        for key in [k for k in self.seen if k[0] == configuration]:
            del self.seen[key]

    def flush(self) -> None:
        """One summary line per key seen more than once since its last summary (with the count)."""
        for (configuration, metric, reason), entry in self.seen.items():
            if entry.count > entry.summarized:
                self.logger.warning("configuration %s, metric %s: %d series dropped (%s), first for %s: %s",
                                    configuration, metric, entry.count, reason, entry.first, entry.detail)
                entry.summarized = entry.count
