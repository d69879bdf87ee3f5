"""Local YAML/JSON sources: multi-document files, List expansion, directories, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from exporter.sources import (
    FieldLocator,
    SourceError,
    field_lines,
    load_documents,
    load_file,
    load_text,
    split_documents,
)

MULTI = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
---
---
apiVersion: metrics.appscode.com/v1alpha1
kind: MetricsConfiguration
metadata: {name: cfg}
"""


def test_multi_document_and_list_expansion() -> None:
    docs = load_text(MULTI, source="m.yaml")
    assert [d.name for d in docs] == ["a", "b", "cfg"]
    assert [d.line for d in docs] == [4, 7, 12]
    assert docs[0].location == "m.yaml:4"
    configs, objects = split_documents(docs)
    assert [d.name for d in configs] == ["cfg"]
    assert [d.name for d in objects] == ["a", "b"]


def test_typed_list_kind_is_expanded() -> None:
    docs = load_text('{"kind": "DeploymentList", "items": [{"kind": "Deployment"}]}', source="x.json")
    assert [d.data["kind"] for d in docs] == ["Deployment"]


def test_directories_are_read_recursively_in_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.yml").write_text("kind: Two\n")
    (tmp_path / "a.json").write_text('{"kind": "One"}')
    (tmp_path / "notes.txt").write_text("kind: Ignored\n")
    (tmp_path / ".hidden.yaml").write_text("kind: Hidden\n")
    docs = load_documents([str(tmp_path)])
    assert [d.data["kind"] for d in docs] == ["One", "Two"]
    assert docs[1].source.endswith("two.yml")


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("kind: FromStdin\n"))
    assert [d.source for d in load_documents(["-"])] == ["-"]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: b\n  c: [d\n", 2, "malformed YAML"),
        ("kind: X\nitems: [1, 2\n", 3, "malformed YAML"),
        ("- 1\n- 2\n", 1, "expected a mapping"),
        ("kind: List\nitems:\n- 3\n", 3, "items[0] is not a mapping"),
    ],
)
def test_malformed_input_names_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(SourceError) as info:
        load_text(text, source="bad.yaml")
    assert info.value.file == "bad.yaml"
    assert info.value.line == line
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"bad.yaml:{line}: ")


def test_missing_file() -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_documents(["/nonexistent/file.yaml"])


def test_field_lines_map_field_paths_to_their_lines() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- kind: A
  spec:
    metrics:
    - name: x
      field:
        type: Float
---
kind: B
metadata:
  name: b
"""
    docs = load_text(text, source="f.yaml")
    lines = field_lines(text)
    assert sorted(lines) == [d.line for d in docs] == [4, 11]
    assert lines[4]["spec.metrics[0].field.type"] == 9
    assert lines[4]["spec.metrics[0]"] == 7
    assert lines[11]["metadata.name"] == 13
    assert field_lines("a: [") == {}


def test_locator_of_a_missing_top_level_field_is_the_document(tmp_path: Path) -> None:
    """``spec`` absent: the nearest enclosing field is the document itself (this used to loop)."""
    file = tmp_path / "c.yaml"
    file.write_text("# a comment\nkind: MetricsConfiguration\nmetadata: {name: x}\n")
    doc = load_file(str(file))[0]
    assert FieldLocator()(doc, "spec") == doc.location
    assert FieldLocator()(doc, "spec.metrics[0].name") == doc.location
