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
import sys
from collections.abc import Sequence
from typing import TextIO

from exporter.compiler import CompiledPlan, compile_documents
from exporter.sources import CONFIG_KIND, Document, FieldLocator, SourceError, load_documents, split_documents
from exporter.types import RenderErrors
from thanos_operator import offline as thanos_offline


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
    thanos_docs = [doc for doc in others if thanos_offline.is_thanos(doc.data)]  # the operator's kind
    others = [doc for doc in others if not thanos_offline.is_thanos(doc.data)]
    problems.extend(thanos_offline.check_documents(thanos_docs, locate=FieldLocator()))
    for doc in others:
        if doc.data.get("kind") == CONFIG_KIND:
            problems.append(f"{doc.location}: {doc.name or '(unnamed)'}: apiVersion: "
                            f"must be metrics.appscode.com/v1alpha1 (got {doc.data.get('apiVersion')!r})")
        else:
            kind = doc.data.get("kind")
            notes.append(f"{doc.location}: note: {kind!r} is not a MetricsConfiguration; ignored")
    if not configs and not problems and not thanos_docs:
        problems.append(f"{', '.join(config_paths)}: no MetricsConfiguration found")
    plans, compile_problems = compile_documents(configs, locate=FieldLocator())
    problems.extend(compile_problems)
    compiled = [plan for plan in plans if isinstance(plan, CompiledPlan)]

    series = 0
    rendered = 0
    if object_paths:
        try:
            objects = load_documents(object_paths)
        except SourceError as exc:
            problems.append(str(exc))
            objects = []
        targets = {(plan.target.api_version, plan.target.kind) for plan in compiled}
        unmatched = sum((doc.data.get("apiVersion"), doc.data.get("kind")) not in targets for doc in objects)
        if unmatched:
            notes.append(f"note: {unmatched} sample object(s) match no configuration's targetRef")
        for doc in objects:
            count, errors = _render_sample(doc, compiled)
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
    if thanos_docs:
        summary += f"; {len(thanos_docs)} Thanos object(s) valid"
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

