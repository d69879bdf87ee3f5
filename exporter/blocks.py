"""Where the store's sample text lives: one joined ``bytes`` per family per block of objects.

The store (``exporter.store``) keeps each object's identity in an ``ObjectEntry``; its rendered
chunks (one per family) are kept exactly once, inside the ``Block`` the entry belongs to: per
family, the block holds the concatenation of its objects' chunks and the length of each. So the
text of a block is ready to be written to a scrape as is (no per-scrape join of thousands of
small chunks, no second copy of the text in a joined cache), and an entry costs no ``bytes``
objects of its own.

- Appending (the initial sync) keeps the new objects' chunks on their entries (``held``) until
  the block is full or read; then they are joined into the block's text in one go (``flush``),
  so filling a block costs one copy per family rather than one per object.
- Replacing or removing an object that is in the text splices it: one copy of that block's text
  per changed family (a few tens of KB), nothing else is touched, so a scrape under churn
  rebuilds only what changed.
- An entry that leaves its block (replaced, removed, or its whole plan state dropped) takes its
  chunks with it (``held``): a listener that kept the entry (the API server's event log) still
  reads the exact state of that change, and no old block text is pinned by it.

Reading one live entry's chunks (``ObjectEntry.chunks``) costs a search of its block (a few
microseconds); the scrape path never does it.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate


@dataclass(slots=True, eq=False)
class ObjectEntry:
    """What the store keeps for one object: identity; its chunks live in its ``Block``."""

    configuration: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    uid: str
    resource_version: str
    held: tuple[bytes, ...] | None  # its chunks while they are not (or no longer) in a block's text
    revision: int  # store generation at the last change of its chunks
    # The object's ``metadata.labels`` (label selectors on target objects, e.g. the custom
    # metrics API's ``labelSelector``; a shared empty mapping when it has none) and when it was
    # last rendered (Unix time).
    labels: Mapping[str, str] = field(default_factory=dict)
    rendered: float = 0.0
    block: Block | None = None

    @property
    def chunks(self) -> tuple[bytes, ...]:
        """One chunk of sample lines per family of the plan (``b""`` when a family has no series)."""
        held = self.held
        if held is not None:
            return held
        assert self.block is not None
        return self.block.chunks_of(self)

    @property
    def series(self) -> int:
        return sum(chunk.count(b"\n") for chunk in self.chunks)


class Block:
    """A run of objects in arrival order; per family their chunks, joined (see the module docstring)."""

    __slots__ = ("_by_namespace", "_derived", "_ends", "entries", "flushed", "lens", "text")

    def __init__(self, families: int) -> None:
        self.entries: list[ObjectEntry] = []
        # per family, the chunk length of each flushed position (unsigned 32-bit: 4 bytes an object
        # instead of a list slot + int); entries[flushed:] still hold their chunks
        self.lens: list[array[int]] = [array("I") for _ in range(families)]
        self.text: list[bytes] = [b""] * families  # per family: the chunks of entries[:flushed]
        self.flushed = 0
        self._ends: list[array[int] | None] = [None] * families  # cumulative lens, built on demand
        self._by_namespace: dict[str, list[int]] | None = None  # positions, built on demand
        self._derived = False  # _ends or _by_namespace may hold something built on demand

    def ends(self, index: int) -> array[int]:
        """End offset of every entry's chunk of family ``index`` (cached until the lengths change)."""
        ends = self._ends[index]
        if ends is None:
            ends = self._ends[index] = array("I", accumulate(self.lens[index]))
            self._derived = True
        return ends

    def _changed(self) -> None:
        if self._derived:  # nothing to forget while a block is being filled (the initial sync)
            self._ends = [None] * len(self._ends)
            self._by_namespace = None
            self._derived = False

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, entry: ObjectEntry) -> None:
        """Add ``entry`` (its chunks in ``entry.held``) at the end."""
        assert entry.held is not None
        entry.block = self
        self.entries.append(entry)  # its lengths are taken when it is flushed (ends stay valid)
        if self._by_namespace is not None:
            self._by_namespace = None

    def flush(self) -> None:
        """Join the held chunks of appended entries into the text."""
        pending = self.entries[self.flushed:]
        if not pending:
            return
        text = self.text
        for i in range(len(text)):
            parts = [entry.held[i] for entry in pending]  # type: ignore[index]
            self.lens[i].extend(map(len, parts))
            text[i] = b"".join([text[i], *parts])
        for entry in pending:
            entry.held = None
        self.flushed = len(self.entries)
        self._changed()

    def counts(self, index: int) -> tuple[int, int]:
        """(entries with a non-empty chunk, sample lines) of family ``index``."""
        if self.flushed < len(self.entries):
            self.flush()
        lens = self.lens[index]
        return len(lens) - lens.count(0), self.text[index].count(b"\n")

    def family_text(self, index: int) -> bytes:
        if self.flushed < len(self.entries):
            self.flush()
        return self.text[index]

    def chunks_of(self, entry: ObjectEntry) -> tuple[bytes, ...]:
        position = self.entries.index(entry)
        if position >= self.flushed:
            assert entry.held is not None
            return entry.held
        out = []
        for i, text in enumerate(self.text):
            end = self.ends(i)[position]
            out.append(text[end - self.lens[i][position]:end])
        return tuple(out)

    def replace(self, old: ObjectEntry, new: ObjectEntry) -> tuple[bytes, ...]:
        """Put ``new`` (chunks in ``new.held``) in ``old``'s place; returns ``old``'s chunks."""
        position = self.entries.index(old)
        before = self.chunks_of(old)
        after = new.held
        assert after is not None
        self.entries[position] = new
        new.block = self
        if new.namespace != old.namespace:
            self._by_namespace = None
        if position < self.flushed:
            for i, (was, now) in enumerate(zip(before, after, strict=True)):
                if was != now:
                    self._splice(i, position, len(was), now)
            new.held = None
        old.held, old.block = before, None
        return before

    def remove(self, entry: ObjectEntry) -> tuple[bytes, ...]:
        """Take ``entry`` out; returns its chunks (which it keeps)."""
        position = self.entries.index(entry)
        chunks = self.chunks_of(entry)
        if position < self.flushed:
            for i, chunk in enumerate(chunks):
                if chunk:
                    self._splice(i, position, len(chunk), b"")
            self.flushed -= 1
            for lens in self.lens:
                del lens[position]
        del self.entries[position]
        self._changed()
        entry.held, entry.block = chunks, None
        return chunks

    def _splice(self, index: int, position: int, old_length: int, chunk: bytes) -> None:
        start = self.ends(index)[position] - old_length
        text = memoryview(self.text[index])
        self.text[index] = b"".join((text[:start], chunk, text[start + old_length:]))
        text.release()
        self.lens[index][position] = len(chunk)
        self._ends[index] = None

    def positions(self, namespace: str) -> list[int]:
        """Positions of the entries in ``namespace`` (an index per block, rebuilt after changes)."""
        index = self._by_namespace
        if index is None:
            index = self._by_namespace = {}
            self._derived = True
            for p, entry in enumerate(self.entries):
                index.setdefault(entry.namespace, []).append(p)
        return index.get(namespace, [])

    def select(self, index: int, positions: list[int]) -> list[bytes]:
        """The non-empty chunks of family ``index`` of the entries at ``positions``."""
        if self.flushed < len(self.entries):
            self.flush()
        lens = self.lens[index]
        ends = self.ends(index)
        text = self.text[index]
        return [text[ends[p] - lens[p]:ends[p]] for p in positions if lens[p]]

    def all_chunks(self) -> list[tuple[bytes, ...]]:
        """Every entry's chunks, aligned with ``entries`` (one pass, not one search per entry)."""
        if self.flushed < len(self.entries):
            self.flush()
        if not self.text:
            return [() for _ in self.entries]
        columns = []
        for text, lens in zip(self.text, self.lens, strict=True):
            ends = list(accumulate(lens))
            columns.append([text[end - length:end] for end, length in zip(ends, lens, strict=True)])
        return list(zip(*columns, strict=True))

    def detach_all(self) -> None:
        """Every entry takes its chunks (the block is being dropped; listeners may keep entries)."""
        for entry, chunks in zip(self.entries, self.all_chunks(), strict=True):
            entry.held, entry.block = chunks, None
        self.entries, self.flushed = [], 0
        self.lens = [array("I") for _ in self.text]
        self._changed()
        self.text = [b""] * len(self.text)
