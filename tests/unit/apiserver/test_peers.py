"""apiserver.peers: the pure merging of shard answers and the EndpointSlice peer list."""

from __future__ import annotations

import pytest

from apiserver.peers import (
    Peer,
    _shard_of,
    decode_continue,
    merge_exposition,
    merge_lists,
    page,
    peers_of_slices,
)
from apiserver.status import StatusError

A = b"""# HELP a_total Things.
# TYPE a_total counter
a_total{namespace="x"} 1
# HELP b Gauge b.
# TYPE b gauge
b{namespace="x"} 2
"""
B = b"""# HELP a_total Things.
# TYPE a_total counter
a_total{namespace="y"} 3
# HELP c Only in shard 1.
# TYPE c gauge
c 4
"""


def test_families_merge_by_name_with_one_header() -> None:
    merged = merge_exposition([A, B]).decode()
    assert merged.count("# HELP a_total") == 1 and merged.count("# TYPE a_total") == 1
    lines = merged.splitlines()
    assert lines[:4] == ['# HELP a_total Things.', '# TYPE a_total counter',
                         'a_total{namespace="x"} 1', 'a_total{namespace="y"} 3']
    assert lines[4:] == ['# HELP b Gauge b.', '# TYPE b gauge', 'b{namespace="x"} 2',
                         '# HELP c Only in shard 1.', '# TYPE c gauge', 'c 4']


def test_openmetrics_eof_once_at_the_end() -> None:
    merged = merge_exposition([A + b"# EOF\n", B + b"# EOF\n"])
    assert merged.endswith(b"c 4\n# EOF\n") and merged.count(b"# EOF") == 1


def test_one_shard_is_unchanged() -> None:
    assert merge_exposition([A]) == A


def _item(ns: str, name: str) -> dict[str, object]:
    return {"metadata": {"namespace": ns, "name": name}}


def test_lists_are_unioned_and_sorted_by_key() -> None:
    first = {"kind": "ObjectMetricsList", "metadata": {"resourceVersion": "7"},
             "items": [_item("a", "2"), _item("b", "1")]}
    second = {"kind": "ObjectMetricsList", "metadata": {"resourceVersion": "3"},
              "items": [_item("a", "1"), _item("c", "0")]}
    merged = merge_lists([first, second], families=False)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in merged["items"]] == [
        ("a", "1"), ("a", "2"), ("b", "1"), ("c", "0")]
    assert merged["metadata"] == {"resourceVersion": "7"}  # ours


def test_tables_union_rows_and_families_sum_counts() -> None:
    columns = [{"name": "Name"}, {"name": "Series"}, {"name": "Objects"}, {"name": "Updated"}]

    def row(series: int, updated: str) -> dict[str, object]:
        return {"cells": ["f", series, 1, updated], "object": {"metadata": {"name": "f", "namespace": ""}}}

    one = {"kind": "Table", "columnDefinitions": columns, "rows": [row(2, "2026-01-01T00:00:00Z")]}
    two = {"kind": "Table", "columnDefinitions": columns, "rows": [row(5, "2026-02-01T00:00:00Z")]}
    merged = merge_lists([one, two], families=True)
    assert merged["rows"][0]["cells"] == ["f", 7, 2, "2026-02-01T00:00:00Z"]
    families = merge_lists([{"kind": "MetricFamilyList", "items": [
        {"metadata": {"name": "f"}, "series": 2, "objects": 1, "lastUpdateTime": "a"}]},
        {"kind": "MetricFamilyList", "items": [
            {"metadata": {"name": "f"}, "series": 3, "objects": 2, "lastUpdateTime": "b"}]}], families=True)
    assert families["items"][0]["series"] == 5 and families["items"][0]["objects"] == 3


def test_paging_the_union_with_a_stateless_token() -> None:
    body = {"kind": "ObjectMetricsList", "metadata": {}, "items": [_item("a", str(i)) for i in range(5)]}
    first = page(body, limit=2, after=None)
    assert [i["metadata"]["name"] for i in first["items"]] == ["0", "1"]
    assert first["metadata"]["remainingItemCount"] == 3
    after = decode_continue(first["metadata"]["continue"])
    rest = page(body, limit=10, after=after)
    assert [i["metadata"]["name"] for i in rest["items"]] == ["2", "3", "4"]
    assert "continue" not in rest["metadata"]
    with pytest.raises(StatusError):
        decode_continue("not-a-token")


def test_ready_endpoints_except_ourselves() -> None:
    slices = [
        {"ports": [{"name": "https", "port": 8443}], "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "targetRef": {"name": "p-0"}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}, "targetRef": {"name": "p-1"}},
            {"addresses": ["10.0.0.3"], "targetRef": {"name": "p-2"}},
        ]},
        {"ports": [{"name": "metrics", "port": 8080}], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]
    assert peers_of_slices(slices, port_name="https", own="p-0") == [Peer("p-2", "10.0.0.3", 8443)]


def test_shard_header() -> None:
    assert _shard_of("1/3", 3) == 1
    assert _shard_of("3/3", 3) is None
    assert _shard_of("1/2", 3) is None
    assert _shard_of("", 3) is None
