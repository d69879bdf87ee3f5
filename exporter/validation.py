"""One object in, its problems and notes out: what ``panopticon check`` and the admission webhook say.

``review_config`` is the single place that decides what is wrong with one MetricsConfiguration:
every compile problem (schema, paths, expressions, names, collisions; ``exporter.compiler``) is a
**problem**; notes that do not make the configuration wrong are **warnings**: a path the
target's schema cannot have (``exporter.schemacheck``, when the schema is known) and a family
another configuration already produces (``others``; in ``check`` every file is checked together
and a clash is a problem there, see ``apiserver/commands/check.py``).

Every line has one shape, ``NAME: field.path: message`` (``object_line``); ``check`` prefixes it
with ``FILE:LINE: `` (``exporter.compiler.format_problem``), the webhook sends it as is. Pure: no
I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.compiler import CompiledPlan, CompileError, compile_config, find_conflicts
from exporter.schemacheck import SchemaIndex
from exporter.sources import CONFIG_API_VERSION, CONFIG_KIND
from exporter.types import Plan, Problem, object_line

__all__ = ["ConfigReview", "FamilyIndex", "object_line", "review_config"]


@dataclass(frozen=True, slots=True)
class ConfigReview:
    """The verdict on one configuration; ``plan`` is set when it compiled."""

    name: str
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    plan: CompiledPlan | None

    @property
    def problem_lines(self) -> list[str]:
        return [object_line(self.name, p) for p in self.problems]

    @property
    def warning_lines(self) -> list[str]:
        return [object_line(self.name, p) for p in self.warnings]


def _name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


class FamilyIndex:
    """Which compiled configuration produces each family: built once per set of plans."""

    def __init__(self, plans: Sequence[Plan]) -> None:
        self.owners: dict[str, CompiledPlan] = {}
        for plan in plans:
            if isinstance(plan, CompiledPlan):
                for header in plan.families:
                    self.owners.setdefault(header.name, plan)

    def clashes(self, plan: CompiledPlan) -> list[Problem]:
        """Families of ``plan`` another configuration already produces (``find_conflicts``' lines)."""
        rivals = {id(o): o for h in plan.families if (o := self.owners.get(h.name)) is not None
                  and o.name != plan.name}
        if not rivals:
            return []
        return [problem for owner, problem in find_conflicts([*rivals.values(), plan]) if owner == plan.name]


def review_config(
    obj: Mapping[str, Any],
    *,
    others: Sequence[Plan] | FamilyIndex = (),
    schemas: SchemaIndex | None = None,
) -> ConfigReview:
    """Problems and warnings of one MetricsConfiguration object.

    ``others``: the plans of the other configurations, or their ``FamilyIndex`` (a plan with
    this object's name is the previous version of it and ignored); ``schemas``: an index holding
    the target's schema, if known (``check --schema`` reports the same lines as problems).
    """
    name = _name_of(obj)
    if obj.get("apiVersion") != CONFIG_API_VERSION or obj.get("kind") != CONFIG_KIND:
        wrong = Problem(path="apiVersion", message=f"must be {CONFIG_API_VERSION} {CONFIG_KIND} (got "
                        f"{obj.get('apiVersion')!r} {obj.get('kind')!r})")
        return ConfigReview(name=name, problems=(wrong,), warnings=(), plan=None)
    try:
        plan = compile_config(obj)
    except CompileError as exc:
        return ConfigReview(name=exc.name or name, problems=tuple(exc.problems), warnings=(), plan=None)
    warnings: list[Problem] = []
    if schemas is not None:
        warnings += schemas.check(obj)
    index = others if isinstance(others, FamilyIndex) else FamilyIndex(others)
    warnings += index.clashes(plan)
    return ConfigReview(name=plan.name, problems=(), warnings=tuple(warnings), plan=plan)
