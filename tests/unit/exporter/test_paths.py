"""Panopticon paths: the fast accessor must agree with jsonpath-ng, values and order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.paths import MISSING, PathError, compile_path, reference_find_all

DEPLOYMENT = {
    "metadata": {"name": "web", "labels": {"app": "web", "app.kubernetes.io/name": "shop"}},
    "spec": {"replicas": 3, "paused": False},
    "status": {"conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing"}]},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.replicas", [3]),
        ("spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        (".spec.paused", [False]),
        (".status.conditions[*].type", ["Available", "Progressing"]),
        (".status.conditions[*].status", ["True"]),
        (".status.conditions[1].type", ["Progressing"]),
        (".status.conditions[-1].type", ["Progressing"]),
        (".status.conditions[5].type", []),
        (".metadata.labels.app", ["web"]),
        (".metadata.labels.'app.kubernetes.io/name'", ["shop"]),
        (".metadata.labels.*", ["web", "shop"]),
        (".spec.missing", []),
        (".spec.replicas.deeper", []),
        (".", [DEPLOYMENT]),
    ],
)
def test_known_paths(path: str, expected: list[Any]) -> None:
    compiled = compile_path(path)
    assert compiled.find_all(DEPLOYMENT) == expected
    assert compiled.first(DEPLOYMENT) == (expected[0] if expected else MISSING)
    assert reference_find_all(path, DEPLOYMENT) == expected


def test_simple_paths_use_the_accessor_and_others_fall_back() -> None:
    assert compile_path(".status.conditions[*].type").is_simple
    assert compile_path(".metadata.labels.'a.b'").is_simple
    assert not compile_path(".status.conditions[0:1].type").is_simple
    assert compile_path(".status.conditions[0:1].type").find_all(DEPLOYMENT) == ["Available"]


def test_segments_split_at_wildcards() -> None:
    path = compile_path(".a[*].b[*].c")
    assert path.wildcards == 2
    assert [[s.key for s in seg] for seg in path.segments] == [["a"], ["b"], ["c"]]


@pytest.mark.parametrize("bad", ["", ".spec.[", ".spec..", ".a[", "{}", ".where"])
def test_unparsable_paths_raise_path_error(bad: str) -> None:
    with pytest.raises(PathError):
        compile_path(bad)


# --- property: accessor == jsonpath-ng ----------------------------------------------------------

KEYS = ["a", "b", "c", "spec", "x-y", "0"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                    st.text(max_size=3))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    ),
    max_leaves=25,
)
steps = st.one_of(
    st.sampled_from(KEYS).map(lambda k: f".{k}" if k.isidentifier() else f".'{k}'"),
    st.integers(-3, 3).map(lambda i: f"[{i}]"),
    st.just("[*]"),
    st.just(".*"),
)
paths = st.lists(steps, min_size=0, max_size=5).map(lambda parts: "".join(parts) or ".")


@settings(max_examples=600, deadline=None)
@given(doc=documents, path=paths)
def test_accessor_matches_jsonpath_ng(doc: Any, path: str) -> None:
    compiled = compile_path(path)
    assert compiled.is_simple
    expected = reference_find_all(path, doc)
    got = compiled.find_all(doc)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]
    assert compiled.first(doc) == (expected[0] if expected else MISSING) or (
        expected and compiled.first(doc) is expected[0]
    )
