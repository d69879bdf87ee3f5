"""Runtime family allow/deny lists (``--metric-allowlist`` / ``--metric-denylist``), as
kube-state-metrics' flags of the same names.

Each flag is a comma-separated list of regular expressions matched against the whole family
name (``kube_widget_.*``); the lists are exclusive, as in KSM. A filtered-out family is removed
from the compiled plan (``FamilyFilter.apply``), so it is never rendered, stored or exposed
(configuration conflicts are still checked on the unfiltered names). The decision is taken once per plan, at
compile time; a scrape does not look at the lists.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from exporter.types import Plan

__all__ = ["FamilyFilter", "FamilyFilterError"]


class ConfigCompiler(Protocol):
    """The live controller's compiler (exporter.cluster.state.Compiler)."""

    def __call__(self, config: Mapping[str, Any]) -> Plan: ...


class FamilyFilterError(ValueError):
    """Flags that cannot be used (both lists, or a pattern that does not compile)."""


@dataclass(frozen=True, slots=True)
class FamilyFilter:
    allow: re.Pattern[str] | None
    deny: re.Pattern[str] | None

    @classmethod
    def parse(cls, *, allow: str = "", deny: str = "") -> FamilyFilter | None:
        """The filter of the two flags (None when both are empty)."""
        allow_list, deny_list = _patterns(allow), _patterns(deny)
        if allow_list and deny_list:
            raise FamilyFilterError("--metric-allowlist and --metric-denylist are mutually exclusive")
        if not allow_list and not deny_list:
            return None
        return cls(allow=_compile(allow_list, "--metric-allowlist"),
                   deny=_compile(deny_list, "--metric-denylist"))

    def keeps(self, family: str) -> bool:
        if self.allow is not None:
            return self.allow.fullmatch(family) is not None
        return self.deny is None or self.deny.fullmatch(family) is None

    def apply(self, plan: Plan) -> Plan:
        """The plan without the families the lists filter out (a CompiledPlan stays one)."""
        keep = [i for i, header in enumerate(plan.families) if self.keeps(header.name)]
        if len(keep) == len(plan.families):
            return plan
        if not dataclasses.is_dataclass(plan) or not hasattr(plan, "_renderers"):
            raise TypeError(f"cannot filter the families of {type(plan).__name__}")
        fields: dict[str, Any] = {
            "families": tuple(plan.families[i] for i in keep),
            "family_paths": tuple(plan.family_paths[i] for i in keep),
            "_renderers": tuple(plan._renderers[i] for i in keep),
        }
        return dataclasses.replace(plan, **fields)

    def documents_compiler(self, compiler: Callable[[Sequence[Any]], tuple[list[Plan], list[str]]]
                           ) -> Callable[[Sequence[Any]], tuple[list[Plan], list[str]]]:
        """Wrap an offline compiler (documents -> plans, problems)."""
        def compile_filtered(documents: Sequence[Any]) -> tuple[list[Plan], list[str]]:
            plans, problems = compiler(documents)
            return [self.apply(plan) for plan in plans], problems

        return compile_filtered

    def config_compiler(self, compiler: ConfigCompiler) -> ConfigCompiler:
        """Wrap the live controller's compiler (one configuration -> plan)."""
        def compile_filtered(config: Mapping[str, Any]) -> Plan:
            return self.apply(compiler(config))

        return compile_filtered


def _patterns(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _compile(patterns: Sequence[str], flag: str) -> re.Pattern[str] | None:
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns))
    except re.error as exc:
        raise FamilyFilterError(f"{flag}: cannot compile {','.join(patterns)!r}: {exc}") from None
