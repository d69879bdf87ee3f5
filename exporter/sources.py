"""Local YAML/JSON files as a source of MetricsConfigurations and target objects.

This is the offline edge of the exporter (``panopticon render``, ``check`` and
``serve --source``): it reads files and directories (recursively, ``.yaml``/``.yml``/``.json``,
``-`` for stdin), splits multi-document YAML, expands ``kind: List`` (and any ``*List``) into
their items, and remembers where every document came from so a problem can name its file and
line. Malformed input never raises a traceback: it raises ``SourceError`` with a readable
message. Nothing here interprets a document beyond telling configs from objects.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

CONFIG_API_VERSION = "metrics.appscode.com/v1alpha1"
CONFIG_KIND = "MetricsConfiguration"
SUFFIXES = (".yaml", ".yml", ".json")


class SourceError(Exception):
    """A file that cannot be read or parsed; ``str()`` names the file (and line when known)."""

    def __init__(self, *, file: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Document:
    """One Kubernetes object read from a file: its data and where it came from."""

    source: str  # file path ("-" for stdin)
    index: int  # 0-based document index within the file
    line: int  # 1-based line where the document (or List item) starts
    data: dict[str, Any]

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return name if isinstance(name, str) else ""


def is_config(data: Mapping[str, Any]) -> bool:
    return data.get("apiVersion") == CONFIG_API_VERSION and data.get("kind") == CONFIG_KIND


def split_documents(docs: Sequence[Document]) -> tuple[list[Document], list[Document]]:
    """Partition documents into (MetricsConfigurations, everything else)."""
    configs = [d for d in docs if is_config(d.data)]
    objects = [d for d in docs if not is_config(d.data)]
    return configs, objects


def load_documents(paths: Sequence[str]) -> list[Document]:
    """Read every document from ``paths`` (files, directories, ``-``) in a stable order."""
    docs: list[Document] = []
    for path in paths:
        for file in _expand(path):
            docs.extend(load_text(_read(file), source=file))
    return docs


def load_file(file: str) -> list[Document]:
    """The documents of one file (``-`` for stdin); raises ``SourceError``."""
    return load_text(_read(file), source=file)


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[SourceError]]:
    """The files ``paths`` name (directories recursively), and an error per path that does not exist."""
    files: list[str] = []
    errors: list[SourceError] = []
    for path in paths:
        try:
            files.extend(_expand(path))
        except SourceError as exc:
            errors.append(exc)
    return files, errors


def load_text(text: str, *, source: str) -> list[Document]:
    """Parse YAML (a superset of JSON) text into documents, expanding ``List`` kinds."""
    docs: list[Document] = []
    loader = _Loader(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            value = loader.construct_document(node)
            docs.extend(_documents_of(value, node=node, source=source, index=index, line=line))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        raise SourceError(file=source, line=mark.line + 1 if mark else None,
                          message=f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SourceError(file=source, message=f"malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    return docs


def _documents_of(value: Any, *, node: yaml.Node, source: str, index: int, line: int) -> Iterator[Document]:
    if value is None:  # an empty document ("---" alone)
        return
    if not isinstance(value, dict):
        raise SourceError(file=source, line=line,
                          message=f"document {index} is a {type(value).__name__}, expected a mapping")
    kind = value.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in value:
        items = value.get("items") or []
        if not isinstance(items, list):
            raise SourceError(file=source, line=line, message=f"document {index}: {kind}.items is not a list")
        item_lines = _item_lines(node)
        for i, item in enumerate(items):
            item_line = item_lines[i] if i < len(item_lines) else line
            if not isinstance(item, dict):
                raise SourceError(file=source, line=item_line,
                                  message=f"document {index}: items[{i}] is not a mapping (an object)")
            yield Document(source=source, index=index, line=item_line, data=item)
        return
    yield Document(source=source, index=index, line=line, data=value)


def _item_lines(node: yaml.Node) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, val in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(val, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in val.value]
    return []


def field_lines(text: str) -> dict[int, dict[str, int]]:
    """Where each field is, for error messages: {document line: {field path: line}}.

    Keys are the start lines ``Document.line`` uses (a document, or an item of a ``List``);
    field paths are spelled like ``Problem.path`` (``spec.metrics[2].field.type``). Returns what
    it could map; text that does not parse gives an empty result (the loader reports it).
    """
    found: dict[int, dict[str, int]] = {}
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            for root in _item_nodes(node) or [node]:
                lines: dict[str, int] = {}
                _walk(root, "", lines)
                found[root.start_mark.line + 1] = lines
    except yaml.YAMLError:
        pass
    finally:
        loader.dispose()
    return found


class FieldLocator:
    """``locate(doc, "spec.metrics[2].field.type")`` -> ``FILE:LINE`` of that field, or of the
    nearest enclosing field that exists (a missing field), or of the document. Reads each file
    once more, lazily, only when a problem has to be reported."""

    _LAST_STEP = re.compile(r"(\.[^.\[]*|\[\d+\])$")

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
            shorter = self._LAST_STEP.sub("", path)
            if shorter == path:  # a top-level field ("spec") that is not there
                break
            path = shorter
        return doc.location


def _item_nodes(node: yaml.Node) -> list[yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return []
    kind = next((v.value for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "kind"
                 and isinstance(v, yaml.ScalarNode)), "")
    if not str(kind).endswith("List"):
        return []
    for key, val in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(val, yaml.SequenceNode):
            return list(val.value)
    return []


def _walk(node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, val in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            path = f"{prefix}.{name}" if prefix else str(name)
            lines[path] = key.start_mark.line + 1
            _walk(val, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{prefix}[{index}]"
            lines[path] = item.start_mark.line + 1
            _walk(item, path, lines)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (C-accelerated when available) that keeps nodes so we know line numbers."""


def _expand(path: str) -> list[str]:
    if path == "-":
        return ["-"]
    if os.path.isdir(path):
        found: list[str] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(root, f) for f in sorted(files)
                         if f.endswith(SUFFIXES) and not f.startswith("."))
        return found
    if not os.path.exists(path):
        raise SourceError(file=path, message="no such file or directory")
    return [path]


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        with open(file, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise SourceError(file=file, message=f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise SourceError(file=file, message=exc.strerror or str(exc)) from None
