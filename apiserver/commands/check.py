"""``panopticon check``: validate MetricsConfigurations and Thanos objects offline, with field paths.

Loads the ``-c`` files one by one (a malformed file is one problem; the other files are still
checked), validates and compiles every configuration (``exporter.compiler``: schema, paths,
expressions, names, label collisions, duplicate families and states; schema and compile
problems of one configuration are reported together), checks that no two configurations
produce the same family, given ``--schema`` CRDs or OpenAPI v2 documents checks every path
against the target kind's schema with a did-you-mean (``exporter.schemacheck``), and, given
``-f`` sample objects, renders them as a smoke test. Each problem is one line,
``FILE:LINE: metadata.name: field.path: message`` (LINE is the field's own line, or the nearest
enclosing one when the field is missing); exit code 1 when there is any problem, 0
with a one-line summary otherwise. Conversion errors met while rendering samples are printed
too; they fail the check, except values that are simply absent from a sample (reason
``missing``), which are normal for optional fields and only reported as notes. ``Thanos``
objects (``monitoring.paodin.io/v1alpha1``) are validated by ``thanos_operator.review``, the
same function the admission webhook uses, and printed in the same line format.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

import aiohttp

from exporter.compiler import CompiledPlan, Locate, compile_documents, format_problem
from exporter.offline import read_files
from exporter.schemacheck import SchemaIndex, fetch_live
from exporter.sources import CONFIG_KIND, Document, FieldLocator, split_documents
from exporter.types import RenderErrors
from kube.client import ApiError, KubeClient
from kube.config import ConfigError, load_config
from thanos_operator.review import is_thanos, review_thanos


def run(args: argparse.Namespace) -> int:
    live: SchemaIndex | None = None
    if getattr(args, "kubeconfig", None):
        try:
            live = asyncio.run(_live_schemas(args.kubeconfig))
        except (ConfigError, ApiError, OSError, aiohttp.ClientError) as exc:
            print(f"cannot read the cluster's schemas: {exc}", file=sys.stdout)
            return 1
    return check(config_paths=args.config, object_paths=args.filename,
                 schema_paths=getattr(args, "schema", None) or [], live_schemas=live, out=sys.stdout)


async def _live_schemas(kubeconfig: str) -> SchemaIndex:
    async with KubeClient(load_config(kubeconfig=kubeconfig), user_agent="panopticon-check") as api:
        return await fetch_live(api)


def check(*, config_paths: Sequence[str], object_paths: Sequence[str], out: TextIO,
          schema_paths: Sequence[str] = (), live_schemas: SchemaIndex | None = None) -> int:
    problems: list[str] = []
    notes: list[str] = []
    documents, read_problems = read_files(config_paths)
    problems.extend(read_problems)
    configs, others = split_documents(documents)
    locate = FieldLocator()
    thanos = [doc for doc in others if is_thanos(doc.data)]
    others = [doc for doc in others if not is_thanos(doc.data)]
    problems.extend(thanos_lines(thanos, locate=locate))
    for doc in others:
        if doc.data.get("kind") == CONFIG_KIND:
            problems.append(f"{doc.location}: {doc.name or '(unnamed)'}: apiVersion: "
                            f"must be metrics.appscode.com/v1alpha1 (got {doc.data.get('apiVersion')!r})")
        else:
            kind = doc.data.get("kind")
            notes.append(f"{doc.location}: note: {kind!r} is not a MetricsConfiguration; ignored")
    if not configs and not thanos and not problems:
        problems.append(f"{', '.join(config_paths)}: no MetricsConfiguration found")
    plans, compile_problems = compile_documents(configs, locate=locate)
    problems.extend(compile_problems)
    compiled = [plan for plan in plans if isinstance(plan, CompiledPlan)]
    if schema_paths or live_schemas is not None:
        problems.extend(_schema_problems(configs, schema_paths, locate=locate, notes=notes,
                                         index=live_schemas))

    series = 0
    rendered = 0
    if object_paths:
        objects, object_problems = read_files(object_paths)
        problems.extend(object_problems)
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
    families = len({header.name for plan in plans for header in plan.families})  # a shared one counts once
    summary = f"OK: {len(plans)} configuration(s), {families} metric families"
    if thanos:
        summary += f"; {len(thanos)} Thanos object(s)"
    if object_paths:
        summary += f"; {rendered} sample object(s) rendered into {series} series"
    print(summary, file=out)
    return 0


def thanos_lines(docs: Sequence[Document], *, locate: Locate) -> list[str]:
    """``FILE:LINE: NAME: field.path: message`` for every problem of every Thanos document."""
    lines: list[str] = []
    for doc in docs:
        review = review_thanos(doc.data)
        lines.extend(format_problem(source=locate(doc, p.path), name=review.name, problem=p)
                     for p in review.problems)
    return lines


def _schema_problems(configs: Sequence[Document], schema_paths: Sequence[str], *, locate: FieldLocator,
                     notes: list[str], index: SchemaIndex | None = None) -> list[str]:
    """Paths the target kind's schema cannot have (``--schema`` CRDs / OpenAPI v2 documents,
    and the connected cluster's schemas with ``--kubeconfig``)."""
    index = index if index is not None else SchemaIndex()
    docs, problems = read_files(schema_paths) if schema_paths else ([], [])
    for doc in docs:
        index.add_document(doc.data)
    for doc in configs:
        spec = doc.data.get("spec")
        target = spec.get("targetRef") if isinstance(spec, dict) else None
        target = target if isinstance(target, dict) else {}
        api_version, kind = str(target.get("apiVersion", "")), str(target.get("kind", ""))
        if index.schema_for(api_version, kind) is None:
            notes.append(f"{doc.location}: note: no --schema for {api_version} {kind}; "
                         "its paths are not checked")
            continue
        problems.extend(format_problem(source=locate(doc, p.path), name=doc.name, problem=p)
                        for p in index.check(doc.data))
    return problems


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
        if not plan.accepts(doc.data):  # spec.targetRef.selector / namespaces
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

