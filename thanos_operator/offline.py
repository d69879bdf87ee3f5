"""``panopticon render`` / ``panopticon check`` for ``Thanos`` files, with no cluster.

``check``: every ``Thanos`` document is validated exactly as the operator validates it, and
each problem is printed as ``FILE:LINE: NAME: field.path: message`` (the line of the field, or of
its nearest enclosing field when the field is missing). ``render``: the objects the operator
would apply (the pure renderer, static hashring membership since no Endpoints exist offline),
as a YAML stream. The CLI commands dispatch here by kind; MetricsConfigurations keep their own
path (``apiserver.commands``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import yaml

from thanos_operator.group import API_GROUP, API_VERSION, KIND
from thanos_operator.models import ThanosValidationError, parse_thanos
from thanos_operator.render import render

API_VERSION_FULL = f"{API_GROUP}/{API_VERSION}"


# (document, field path) -> "FILE:LINE" (``exporter.sources.FieldLocator``); documents are
# ``exporter.sources.Document`` (``data``, ``name``, ``location``).
Locate = Callable[[Any, str], str]


def is_thanos(data: Mapping[str, Any]) -> bool:
    return data.get("apiVersion") == API_VERSION_FULL and data.get("kind") == KIND


def problems_of(doc: Any, *, locate: Locate) -> list[str]:
    """``FILE:LINE: NAME: field.path: message`` for every problem of one ``Thanos`` document."""
    try:
        parse_thanos(doc.data)
    except ThanosValidationError as exc:
        lines = []
        for problem in exc.problems:
            path, sep, _ = problem.partition(": ")
            where = locate(doc, path) if sep else doc.location
            lines.append(f"{where}: {doc.name or '(unnamed)'}: {problem}")
        return lines
    return []


def check_documents(docs: Sequence[Any], *, locate: Locate) -> list[str]:
    return [line for doc in docs for line in problems_of(doc, locate=locate)]


def render_documents(docs: Sequence[Any], *, out: TextIO, locate: Locate) -> list[str]:
    """Write the desired objects of every valid document to ``out``; return the problems."""
    problems = check_documents(docs, locate=locate)
    if problems:
        return problems
    objects = [obj for doc in docs for obj in render(parse_thanos(doc.data))]
    out.write(yaml.safe_dump_all(objects, sort_keys=False, width=120))
    return []
