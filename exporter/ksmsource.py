"""A kube-state-metrics ``CustomResourceStateMetrics`` file as a source of MetricsConfigurations.

The file edge of ``exporter/ksmconvert.py``, shared by ``panopticon import ksm`` (which prints
the configurations) and ``serve --ksm-config`` (which serves them): read the file (one or more
YAML documents, ``-`` for stdin), convert every document, and check that each converted
configuration compiles. Every problem is one ``FILE:LINE: NAME: field.path: message`` line
naming the KSM field (``spec.resources[0].metrics[1].each.gauge.path``) and its own line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from exporter.compiler import CompileError, compile_config
from exporter.ksmconvert import InstalledKinds, convert, has_wildcard
from exporter.offline import Compiler
from exporter.sources import Document, FieldLocator, SourceError, load_file
from exporter.types import Plan, Problem, object_line
from kube.api import Lister

__all__ = ["crd_kinds", "load_ksm", "needs_crds", "with_ksm_configs"]

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

_METRIC = re.compile(r"^spec\.metrics\[(\d+)\]")


def load_ksm(paths: Sequence[str], *,
             installed: InstalledKinds | None = None) -> tuple[list[Document], list[str]]:
    """The converted MetricsConfigurations of every KSM file, and one line per problem.

    ``installed``: the cluster's CRD kinds (``crd_kinds``), for wildcard groupVersionKinds."""
    configs: list[Document] = []
    problems: list[str] = []
    locate = FieldLocator()
    for path in paths:
        try:
            documents = load_file(path)
        except SourceError as exc:
            problems.append(str(exc))
            continue
        for doc in documents:
            converted, lines = _convert_document(doc, locate, installed)
            configs.extend(converted)
            problems.extend(lines)
    return configs, problems


def needs_crds(paths: Sequence[str]) -> bool:
    """Whether a KSM file has a wildcard groupVersionKind (so ``crd_kinds`` is worth asking)."""
    for path in paths:
        try:
            documents = load_file(path)
        except SourceError:
            continue  # reported by load_ksm
        if any(has_wildcard(doc.data) for doc in documents):
            return True
    return False


async def crd_kinds(client: Lister) -> list[tuple[str, str, str]]:
    """(group, version, kind) of every version of every CustomResourceDefinition, as KSM's
    discovery reads them (``internal/discovery/discovery.go``: every ``spec.versions[].name``)."""
    items, _ = await client.list(CRDS)
    out: list[tuple[str, str, str]] = []
    for crd in items:
        spec = crd.get("spec") if isinstance(crd, dict) else None
        if not isinstance(spec, dict):
            continue
        group, names = spec.get("group"), spec.get("names")
        kind = names.get("kind") if isinstance(names, dict) else None
        for version in spec.get("versions") or []:
            name = version.get("name") if isinstance(version, dict) else None
            if isinstance(group, str) and isinstance(kind, str) and isinstance(name, str):
                out.append((group, name, kind))
    return sorted(out)


def with_ksm_configs(compiler: Compiler, paths: Sequence[str]) -> Compiler:
    """``serve --source DIR --ksm-config FILE``: compile the directory's configurations together
    with those converted from ``paths`` (re-read on every load, so an edit shows up with the next
    reload of the directory); conversion problems are reported as the compile problems are."""

    def compile_with_ksm(configs: Sequence[Document]) -> tuple[list[Plan], list[str]]:
        converted, problems = load_ksm(paths)
        plans, more = compiler([*configs, *converted])
        return plans, problems + more

    return compile_with_ksm


def _convert_document(doc: Document, locate: FieldLocator,
                      installed: InstalledKinds | None) -> tuple[list[Document], list[str]]:
    result = convert(doc.data, installed=installed)
    problems = [f"{locate(doc, problem.path)}: {object_line(name, problem)}"
                for name, problem in result.problems]
    configs: list[Document] = []
    for config in result.configs:
        name = config["metadata"]["name"]
        where = f"spec.resources[{result.resource_of(name)}]"
        try:
            compile_config(config)
        except CompileError as exc:
            for problem in exc.problems:
                moved = _ksm_problem(problem, where)
                problems.append(f"{locate(doc, moved.path)}: {object_line(name, moved)}")
            continue
        line = int(locate(doc, where).rsplit(":", 1)[1]) if doc.source != "-" else doc.line
        configs.append(Document(source=doc.source, index=doc.index, line=line, data=config))
    return configs, problems


def _ksm_problem(problem: Problem, where: str) -> Problem:
    """A compile problem of a converted configuration, at the KSM field it came from."""
    match = _METRIC.match(problem.path)
    path = f"{where}.metrics[{match.group(1)}]" if match else where
    if match and problem.path == f"{match.group(0)}.name":
        path += ".name"
    return Problem(path=path, message=f"converted {problem.path}: {problem.message}")
