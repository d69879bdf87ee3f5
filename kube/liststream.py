"""Incremental parsing of a Kubernetes LIST body: each item is decoded as soon as its bytes arrive.

A LIST answer is one JSON object, ``{"kind":..,"apiVersion":..,"metadata":{..},"items":[..]}``
(typed lists; unstructured ones, i.e. custom resources, sort their keys, so ``metadata`` comes
after ``items``). Decoding it whole means holding the complete body *and* every decoded object
at once, and starting to use the first object only after the last byte arrived. ``ListSplitter``
instead cuts the ``items`` array into one byte range per item while the body streams in and
decodes each range with orjson (C), so a consumer can render and drop every object right away.

How the ranges are found without a Python-level scanner: kube-apiserver writes compact JSON
(Go's encoder, no whitespace), and every item of one list starts with the same first key
(``{"apiVersion":`` for unstructured items, ``{"metadata":`` for typed ones). So a boundary
between two items can only be at ``},`` followed by that lead; ``bytes.find`` (C) finds the
candidates, and a candidate is accepted when the bytes from the item's start to it decode as
one JSON value. That check is exact, not heuristic: a range that starts at an item's opening
``{`` decodes as a single value only if it ends at that item's closing ``}`` (a prefix ending
inside a string or a nested value does not decode). A nested array whose objects start with the
same key (``managedFields``, ``ownerReferences``) only costs a failed attempt.

Anything unexpected (whitespace between items, no ``items`` key near the start, ``"items":null``)
switches to the fallback: the rest of the body is buffered and decoded in one piece at the end,
with the same result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

JsonObject = dict[str, Any]

_ITEMS_KEY = b'"items":'
_HEAD_LIMIT = 1 << 16  # the envelope before "items" is a few hundred bytes; give up after 64 KiB


class ListSplitter:
    """Feed body chunks, get decoded items; ``close()`` returns the list's envelope (no items).

    ``items`` counts the items returned so far. The envelope's ``metadata`` carries
    ``resourceVersion`` and ``continue``.
    """

    __slots__ = ("_buf", "_fallback_prefix", "_head", "_lead", "_state", "items")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "head"  # head -> items -> tail | fallback
        self._lead = b""
        self._head: JsonObject = {}
        self._fallback_prefix = b""
        self.items = 0

    def feed(self, chunk: bytes) -> Iterator[JsonObject]:
        """The items completed by ``chunk`` (possibly none), decoded one at a time as they are taken.

        Consume the iterator completely before the next ``feed``. One at a time on purpose:
        decoding a whole chunk's items at once would keep thousands of objects alive together,
        and the allocator keeps that memory after they are freed, mixed with the long-lived
        entries created meanwhile.
        """
        self._buf += chunk
        if self._state == "head" and not self._parse_head():
            return iter(())
        if self._state != "items":
            return iter(())
        return self._split()

    def close(self) -> tuple[list[JsonObject], JsonObject]:
        """(the remaining items, the envelope without ``items``) once the body is complete."""
        buf, self._buf = self._buf, bytearray()
        if self._state == "head":
            whole = orjson.loads(bytes(buf)) if buf.strip() else {}
            return self._finish(whole, {})
        # "items" (the last item and the tail are left) or "fallback": one decode of the rest.
        rest = orjson.loads(self._fallback_prefix + bytes(buf))
        return self._finish(rest, self._head)

    # ---- internals -----------------------------------------------------------------------------

    def _finish(self, decoded: Any, head: JsonObject) -> tuple[list[JsonObject], JsonObject]:
        if not isinstance(decoded, dict):
            raise ValueError(f"a LIST answer must be a JSON object, not {type(decoded).__name__}")
        items = decoded.pop("items", None) or []
        if not isinstance(items, list):
            raise ValueError("a LIST answer's items must be an array")
        envelope = {**head, **decoded}
        self.items += len(items)
        return items, envelope

    def _parse_head(self) -> bool:
        buf = self._buf
        at = buf.find(_ITEMS_KEY)
        if at < 0:
            if len(buf) > _HEAD_LIMIT:
                self._to_fallback(b"")
            return False
        start = at + len(_ITEMS_KEY)
        if len(buf) <= start:
            return False
        head_bytes = bytes(buf[:at])
        try:
            head = orjson.loads(head_bytes + b'"items":null}')
        except orjson.JSONDecodeError:
            head = None
        if not isinstance(head, dict) or buf[start:start + 1] != b"[":
            self._to_fallback(b"")  # not the layout we know (whitespace, "items":null, ...)
            return False
        head.pop("items", None)
        self._head = head
        del buf[: start + 1]
        self._state = "items"
        self._fallback_prefix = b'{"items":['  # what close() puts before the rest
        return True

    def _to_fallback(self, prefix: bytes) -> None:
        self._state = "fallback"
        self._fallback_prefix = prefix

    def _split(self) -> Iterator[JsonObject]:
        buf = self._buf
        if not self._lead:
            if len(buf) < 2:
                return
            if buf[0:1] == b"]":
                self._to_fallback(b'{"items":[')  # empty: "]" and the tail are left for close()
                return
            colon = buf.find(b'":')
            if buf[0:2] != b'{"' or colon < 0:
                if colon < 0 and len(buf) < 256:
                    return  # the first key has not fully arrived yet
                self._to_fallback(b'{"items":[')
                return
            self._lead = b"}," + bytes(buf[: colon + 2])
        lead = self._lead
        loads = orjson.loads
        start = 0
        search = 0
        view = memoryview(buf)
        try:
            while True:
                cut = buf.find(lead, search)
                if cut < 0:
                    break
                try:
                    obj = loads(view[start:cut + 1])
                except orjson.JSONDecodeError:
                    search = cut + 1  # a nested object with the same first key: look further
                    continue
                self.items += 1
                start = search = cut + 2
                yield obj
                del obj
        finally:
            view.release()
            if start:
                del buf[:start]
