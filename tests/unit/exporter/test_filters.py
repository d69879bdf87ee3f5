"""Path filters (``[?(@.type=='Ready')]``): compiled predicates agree with jsonpath-ng's extended
parser (the reference, RFC 9535 comparisons) on random documents, values and order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.paths import MISSING, PathError, compile_path, reference_find_all

POD: dict[str, Any] = {
    "status": {
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "PodScheduled", "status": "True", "count": 3},
        ],
        "containerStatuses": [
            {"name": "app", "restartCount": 4, "ready": True},
            {"name": "sidecar", "restartCount": 0, "ready": False},
        ],
    },
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".status.conditions[?(@.type=='Ready')].status", ["False"]),
        ('.status.conditions[?(@.type=="Ready")].reason', ["ContainersNotReady"]),
        (".status.conditions[?(@.type!='Ready')].type", ["Initialized", "PodScheduled"]),
        (".status.conditions[?(@.type=='Missing')].status", []),
        (".status.conditions[?(@.count >= 3)].type", ["PodScheduled"]),
        (".status.conditions[?(@.count < 3)].type", []),
        (".status.conditions[?(@.reason)].type", ["Ready"]),
        (".status.conditions[?(!@.reason)].type", ["Initialized", "PodScheduled"]),
        (".status.conditions[?(@.status=='True' && @.type!='Initialized')].type", ["PodScheduled"]),
        (".status.conditions[?(@.type=='Ready' || @.count==3)].type", ["Ready", "PodScheduled"]),
        (".status.containerStatuses[?(@.ready==true)].name", ["app"]),
        (".status.containerStatuses[?(@.restartCount > 0)].restartCount", [4]),
        (".status.containerStatuses[?(@.name=='sidecar')]", [POD["status"]["containerStatuses"][1]]),
    ],
)
def test_known_filters(path: str, expected: list[Any]) -> None:
    compiled = compile_path(path)
    assert compiled.is_simple, "a filter of these forms is compiled, not left to jsonpath-ng"
    assert compiled.find_all(POD) == expected
    assert compiled.first(POD) == (expected[0] if expected else MISSING)
    assert reference_find_all(path, POD) == expected


def test_a_filter_is_not_a_fan_out() -> None:
    path = compile_path(".status.conditions[?(@.type=='Ready')].status")
    assert path.wildcards == 0
    nested = compile_path(".spec.containers[*].env[?(@.name=='A')].value")
    assert nested.wildcards == 1


def test_malformed_filter_is_a_path_error() -> None:
    with pytest.raises(PathError, match="cannot parse path"):
        compile_path(".status.conditions[?(@.type=='Ready'].status")


_FIELDS = ["type", "status", "n"]
_LITERALS = st.one_of(
    st.sampled_from(["'Ready'", "'True'", "'a'", "''", "'3'"]),
    st.sampled_from(["0", "1", "3", "2.5", "-1"]),
    st.sampled_from(["true", "false", "null"]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 4), st.sampled_from([2.5, 3.0]),
                     st.sampled_from(["Ready", "True", "a", "", "3"]))
_ELEMENT = st.one_of(
    st.dictionaries(st.sampled_from(_FIELDS), _SCALARS, max_size=3),
    _SCALARS,
    st.lists(_SCALARS, max_size=2),
)


@st.composite
def _comparison(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from(_FIELDS))
    kind = draw(st.sampled_from(["cmp", "cmp", "cmp", "exists", "not"]))
    if kind == "exists":
        return f"@.{field}"
    if kind == "not":
        return f"!@.{field}"
    op = draw(st.sampled_from(["==", "!=", "<", ">", "<=", ">="]))
    return f"@.{field} {op} {draw(_LITERALS)}"


@st.composite
def _filter(draw: st.DrawFn) -> str:
    terms = draw(st.lists(_comparison(), min_size=1, max_size=3))
    joiners = draw(st.lists(st.sampled_from([" && ", " || "]), min_size=len(terms) - 1,
                            max_size=len(terms) - 1))
    text = terms[0]
    for joiner, term in zip(joiners, terms[1:], strict=True):
        text += joiner + term
    return text


@settings(max_examples=400, deadline=None)
@given(filter_text=_filter(), items=st.lists(_ELEMENT, max_size=5),
       tail=st.sampled_from(["", ".type", ".n"]), as_object=st.booleans())
def test_filters_equal_jsonpath_ng_extended(filter_text: str, items: list[Any], tail: str,
                                            as_object: bool) -> None:
    container: Any = {f"k{i}": item for i, item in enumerate(items)} if as_object else items
    document = {"status": {"conditions": container}}
    path = f".status.conditions[?({filter_text})]{tail}"
    compiled = compile_path(path)
    expected = reference_find_all(path, document)
    assert compiled.find_all(document) == expected
    assert compiled.first(document) == (expected[0] if expected else MISSING)
