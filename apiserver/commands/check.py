"""``panopticon check``: validate MetricsConfigurations offline, every problem with its field path.

Loads the ``-c`` files (``exporter.sources``), validates and compiles every configuration
(``exporter.compiler``: schema, paths, expressions, names, label collisions, duplicate families
and states), checks that no two configurations produce the same family, and, given ``-f``
sample objects, renders them as a smoke test. Each problem is one line,
``FILE:LINE: metadata.name: field.path: message`` (LINE is the field's own line, or the nearest
enclosing one when the field is missing); exit code 1 when there is any problem, 0
with a one-line summary otherwise. Conversion errors met while rendering samples are printed
too; they fail the check, except values that are simply absent from a sample (reason
``missing``), which are normal for optional fields and only reported as notes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import TextIO

from exporter.compiler import CompiledPlan, CompileError, compile_config, find_conflicts, format_problem
from exporter.sources import CONFIG_KIND, Document, SourceError, field_lines, load_documents, split_documents
from exporter.types import Problem, RenderErrors

_LAST_STEP = re.compile(r"(\.[^.\[]*|\[\d+\])$")


def run(args: argparse.Namespace) -> int:
    return check(config_paths=args.config, object_paths=args.filename, out=sys.stdout)


def check(*, config_paths: Sequence[str], object_paths: Sequence[str], out: TextIO) -> int:
    problems: list[str] = []
    notes: list[str] = []
    try:
        documents = load_documents(config_paths)
    except SourceError as exc:
        print(str(exc), file=out)
        return 1
    configs, others = split_documents(documents)
    for doc in others:
        if doc.data.get("kind") == CONFIG_KIND:
            problems.append(f"{doc.location}: {doc.name or '(unnamed)'}: apiVersion: "
                            f"must be metrics.appscode.com/v1alpha1 (got {doc.data.get('apiVersion')!r})")
        else:
            kind = doc.data.get("kind")
            notes.append(f"{doc.location}: note: {kind!r} is not a MetricsConfiguration; ignored")
    if not configs and not problems:
        problems.append(f"{', '.join(config_paths)}: no MetricsConfiguration found")
    locate = _Locator()
    plans: list[CompiledPlan] = []
    defined_at: dict[str, Document] = {}
    for doc in configs:
        try:
            plan = compile_config(doc.data)
        except CompileError as exc:
            problems.extend(format_problem(source=locate(doc, p.path), name=exc.name or doc.name, problem=p)
                            for p in exc.problems)
            continue
        if plan.name in defined_at:
            twice = Problem(path="metadata.name", message=f"configuration {plan.name!r} is also defined "
                            f"at {defined_at[plan.name].location}")
            problems.append(format_problem(source=locate(doc, twice.path), name=plan.name, problem=twice))
            continue
        defined_at[plan.name] = doc
        plans.append(plan)
    for name, problem in find_conflicts(plans):
        where = locate(defined_at[name], problem.path)
        problems.append(format_problem(source=where, name=name, problem=problem))

    series = 0
    rendered = 0
    if object_paths:
        try:
            objects = load_documents(object_paths)
        except SourceError as exc:
            problems.append(str(exc))
            objects = []
        targets = {(plan.target.api_version, plan.target.kind) for plan in plans}
        unmatched = sum((doc.data.get("apiVersion"), doc.data.get("kind")) not in targets for doc in objects)
        if unmatched:
            notes.append(f"note: {unmatched} sample object(s) match no configuration's targetRef")
        for doc in objects:
            count, errors = _render_sample(doc, plans)
            rendered += count > 0
            series += count
            for line, fatal in errors:
                (problems if fatal else notes).append(line)

    for line in notes:
        print(line, file=out)
    for line in problems:
        print(line, file=out)
    if problems:
        print(f"{len(problems)} problem(s) found", file=out)
        return 1
    families = sum(len(plan.families) for plan in plans)
    summary = f"OK: {len(plans)} configuration(s), {families} metric families"
    if object_paths:
        summary += f"; {rendered} sample object(s) rendered into {series} series"
    print(summary, file=out)
    return 0


def _render_sample(doc: Document, plans: Sequence[CompiledPlan]) -> tuple[int, list[tuple[str, bool]]]:
    """Render one sample object with every plan targeting it: (series count, error lines)."""
    api_version, kind = doc.data.get("apiVersion"), doc.data.get("kind")
    meta = doc.data.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    who = f"{kind} {namespace + '/' if namespace else ''}{doc.name}"
    count = 0
    lines: list[tuple[str, bool]] = []
    for plan in plans:
        if (plan.target.api_version, plan.target.kind) != (api_version, kind):
            continue
        errors = RenderErrors()
        chunks = plan.render(doc.data, errors)
        count += sum(chunk.count(b"\n") for chunk in chunks)
        for metric, reason, detail in errors.items:
            fatal = reason != "missing"
            label = "error" if fatal else "note"
            where = f"{doc.location}: {who}: {plan.name}: metric {metric!r}"
            lines.append((f"{where}: {label} ({reason}): {detail}", fatal))
    return count, lines


class _Locator:
    """``FILE:LINE`` of a field path inside a document (the nearest enclosing field that exists)."""

    def __init__(self) -> None:
        self._files: dict[str, dict[int, dict[str, int]]] = {}

    def __call__(self, doc: Document, path: str) -> str:
        if doc.source == "-":
            return doc.location
        if doc.source not in self._files:
            try:
                with open(doc.source, encoding="utf-8") as fh:
                    self._files[doc.source] = field_lines(fh.read())
            except (OSError, UnicodeDecodeError):
                self._files[doc.source] = {}
        lines = self._files[doc.source].get(doc.line, {})
        while path:
            if path in lines:
                return f"{doc.source}:{lines[path]}"
            path = _LAST_STEP.sub("", path)
        return doc.location
