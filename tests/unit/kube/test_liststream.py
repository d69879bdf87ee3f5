"""ListSplitter: items of a LIST body decoded as the bytes arrive, whatever the chunking."""

from __future__ import annotations

import orjson
import pytest

from kube.liststream import ListSplitter


def split(body: bytes, chunk: int) -> tuple[list[dict], dict, list[int]]:
    splitter = ListSplitter()
    items: list[dict] = []
    arrived: list[int] = []  # items available after each chunk
    for start in range(0, len(body), chunk):
        items += splitter.feed(body[start:start + chunk])
        arrived.append(len(items))
    rest, envelope = splitter.close()
    return items + rest, envelope, arrived


def unstructured(i: int) -> dict:
    # managedFields / ownerReferences entries start with the same key as the items themselves
    ref = {"apiVersion": "v1", "kind": "X", "name": f"o{i}", "uid": "u"}
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": f"w{i}", "namespace": "ns", "uid": f"uid-{i}", "resourceVersion": str(i),
                         "managedFields": [{"apiVersion": "example.com/v1", "manager": "a"},
                                           {"apiVersion": "example.com/v1", "manager": "b"}],
                         "ownerReferences": [ref, ref],
                         "annotations": {"tricky": '},{"apiVersion":"x"} ]} {"items":['}},
            "spec": {"list": [{"a": 1}, {"b": [{}, {}]}], "empty": {}}}


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 1 << 20])
def test_unstructured_list_items_then_envelope(chunk: int) -> None:
    items = [unstructured(i) for i in range(30)]
    body = orjson.dumps({"apiVersion": "example.com/v1", "items": items, "kind": "WidgetList",
                         "metadata": {"resourceVersion": "77", "continue": "tok"}})
    got, envelope, arrived = split(body, chunk)
    assert got == items
    assert envelope == {"apiVersion": "example.com/v1", "kind": "WidgetList",
                        "metadata": {"resourceVersion": "77", "continue": "tok"}}
    if chunk < len(body) // 4:
        assert arrived[len(arrived) // 2] > 0  # items came out before the body was complete


@pytest.mark.parametrize("chunk", [1, 13, 4096])
def test_typed_list_envelope_first(chunk: int) -> None:
    items = [{"metadata": {"name": f"c{i}", "uid": str(i)}, "data": {"k": "v" * i}} for i in range(20)]
    body = orjson.dumps({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"},
                         "items": items})
    got, envelope, _ = split(body, chunk)
    assert got == items
    assert envelope == {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"}}


@pytest.mark.parametrize("body, items, envelope", [
    (b'{"kind":"L","items":[],"metadata":{"resourceVersion":"1"}}', [],
     {"kind": "L", "metadata": {"resourceVersion": "1"}}),
    (b'{"kind":"L","items":null}', [], {"kind": "L"}),
    (b'{\n  "kind": "L",\n  "items": [\n    {"a": 1},\n    {"a": 2}\n  ]\n}', [{"a": 1}, {"a": 2}],
     {"kind": "L"}),
    (b'{"metadata":{"resourceVersion":"3"}}', [], {"metadata": {"resourceVersion": "3"}}),
    (b'{"items":[1,2]}', [1, 2], {}),
])
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_other_layouts_fall_back_to_one_decode(body: bytes, items: list, envelope: dict, chunk: int) -> None:
    got, env, _ = split(body, chunk)
    assert (got, env) == (items, envelope)


def test_a_truncated_body_is_an_error() -> None:
    body = orjson.dumps({"apiVersion": "v", "items": [unstructured(1), unstructured(2)], "kind": "L"})
    splitter = ListSplitter()
    splitter.feed(body[: len(body) - 30])
    with pytest.raises(orjson.JSONDecodeError):
        splitter.close()
