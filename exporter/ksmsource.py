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
from exporter.ksmconvert import convert
from exporter.offline import Compiler
from exporter.sources import Document, FieldLocator, SourceError, load_file
from exporter.types import Plan, Problem, object_line

__all__ = ["load_ksm", "with_ksm_configs"]

_METRIC = re.compile(r"^spec\.metrics\[(\d+)\]")


def load_ksm(paths: Sequence[str]) -> tuple[list[Document], list[str]]:
    """The converted MetricsConfigurations of every KSM file, and one line per problem."""
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
            converted, lines = _convert_document(doc, locate)
            configs.extend(converted)
            problems.extend(lines)
    return configs, problems


def with_ksm_configs(compiler: Compiler, paths: Sequence[str]) -> Compiler:
    """``serve --source DIR --ksm-config FILE``: compile the directory's configurations together
    with those converted from ``paths`` (re-read on every load, so an edit shows up with the next
    reload of the directory); conversion problems are reported as the compile problems are."""

    def compile_with_ksm(configs: Sequence[Document]) -> tuple[list[Plan], list[str]]:
        converted, problems = load_ksm(paths)
        plans, more = compiler([*configs, *converted])
        return plans, problems + more

    return compile_with_ksm


def _convert_document(doc: Document, locate: FieldLocator) -> tuple[list[Document], list[str]]:
    result = convert(doc.data)
    problems = [f"{locate(doc, problem.path)}: {object_line(name, problem)}"
                for name, problem in result.problems]
    configs: list[Document] = []
    for config in result.configs:
        name = config["metadata"]["name"]
        where = f"spec.resources[{result.names.index(name)}]"
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
