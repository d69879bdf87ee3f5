"""The no-cluster source: a directory of MetricsConfigurations and objects feeding the store.

``panopticon serve --source DIR`` reads every YAML/JSON file under DIR (``exporter.sources``),
compiles the configurations (``exporter.compiler``), matches objects to configurations by
``apiVersion``/``kind`` and fills the ``MetricsStore``. Then it polls the directory once a second
(a scan of path, mtime and size of every file: cheap for the tens of files this mode is for,
portable, and immune to editors that replace files instead of writing them) and reloads when
anything changed.

A reload is all-or-nothing: if any file is malformed or any configuration does not compile, the
store keeps the last good state and the problems are logged (each with its file and field path).
Loading is the pure-ish ``load_directory`` (files in, ``Snapshot`` out); ``apply_snapshot`` is the
only step that touches the store, and it runs on the event loop without awaiting, so a scrape
never sees half a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.compiler import compile_documents
from exporter.sources import SUFFIXES, Document, SourceError, load_documents, split_documents
from exporter.store import MetricsStore
from exporter.types import Plan

log = logging.getLogger(__name__)


class LoadError(Exception):
    """The directory cannot be loaded; ``problems`` are one readable line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# (configs) -> (plans, problems); problems are readable lines naming the file and field path.
Compiler = Callable[[Sequence[Document]], tuple[list[Plan], list[str]]]


@dataclass(frozen=True)
class Snapshot:
    """Everything one load produced: plans and, per plan name, the objects it targets."""

    plans: list[Plan]
    objects: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    unmatched: int = 0  # objects no configuration targets

    @property
    def object_count(self) -> int:
        return sum(len(objs) for objs in self.objects.values())


default_compiler: Compiler = compile_documents


def compile_paths(paths: Sequence[str], *, compiler: Compiler = default_compiler
                  ) -> tuple[list[Plan], list[Document]]:
    """Read ``paths``, compile the configurations; return (plans, the other documents)."""
    docs = read_documents(paths)
    configs, objects = split_documents(docs)
    plans, problems = compiler(configs)
    if problems:
        raise LoadError(problems)
    return plans, objects


def read_documents(paths: Sequence[str]) -> list[Document]:
    try:
        return load_documents(paths)
    except SourceError as exc:
        raise LoadError([str(exc)]) from None


def match_objects(plans: Sequence[Plan], objects: Sequence[Document]) -> Snapshot:
    """Give every plan the objects of its target ``apiVersion``/``kind``."""
    by_target: dict[tuple[str, str], list[Plan]] = {}
    for plan in plans:
        by_target.setdefault((plan.target.api_version, plan.target.kind), []).append(plan)
    matched: dict[str, list[Mapping[str, Any]]] = {plan.name: [] for plan in plans}
    unmatched = 0
    for doc in objects:
        targets = by_target.get((str(doc.data.get("apiVersion", "")), str(doc.data.get("kind", ""))))
        if not targets:
            unmatched += 1
            continue
        for plan in targets:
            matched[plan.name].append(doc.data)
    return Snapshot(plans=list(plans), objects=matched, unmatched=unmatched)


def load_directory(paths: Sequence[str], *, compiler: Compiler = default_compiler) -> Snapshot:
    """Read and compile ``paths`` (configurations and objects mixed); raise ``LoadError``."""
    plans, objects = compile_paths(paths, compiler=compiler)
    return match_objects(plans, objects)


def apply_snapshot(store: MetricsStore, snapshot: Snapshot) -> None:
    """Make the store hold exactly the snapshot's plans and objects (one synchronous step)."""
    wanted = {plan.name for plan in snapshot.plans}
    for plan in store.plans():
        if plan.name not in wanted:
            store.remove_plan(plan.name)
    # A family may move between configurations in one edit: drop the old owner first (it is
    # re-installed below from the snapshot, which has no duplicates).
    owner = {h.name: p.name for p in store.plans() for h in p.families}
    for plan in snapshot.plans:
        for h in plan.families:
            previous = owner.get(h.name)
            if previous is not None and previous != plan.name:
                store.remove_plan(previous)
    for plan in snapshot.plans:
        store.set_plan(plan, objects=snapshot.objects.get(plan.name, []))


def describe(store: MetricsStore) -> str:
    stats = list(store.stats())
    objects = sum(s[1] for s in stats)
    series = sum(s[2] for s in stats)
    return f"{len(stats)} configurations, {objects} objects, {series} series"


def directory_signature(paths: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every file a load would read, in a stable order."""
    found: list[tuple[str, int, int]] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(SUFFIXES) and not name.startswith("."):
                        found.append(_stat(os.path.join(root, name)))
        else:
            found.append(_stat(path))
    return tuple(found)


def _stat(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_mtime_ns, st.st_size)


class OfflineSource:
    """Keeps a store in sync with a directory; ``start`` loads, ``run`` polls and reloads."""

    def __init__(self, paths: Sequence[str], store: MetricsStore, *, compiler: Compiler = default_compiler,
                 poll_interval: float = 1.0) -> None:
        self.paths = list(paths)
        self.store = store
        self.compiler = compiler
        self.poll_interval = poll_interval
        self.loaded = False
        self.last_problems: list[str] = []
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._task: asyncio.Task[None] | None = None

    def reload(self) -> bool:
        """Load now; on success replace the store's content, on failure keep it. True on success."""
        try:
            self._load()
        except LoadError as exc:
            kept = "keeping the last good state" if self.loaded else "nothing loaded"
            log.error("cannot load %s (%s):\n  %s", ", ".join(self.paths), kept, "\n  ".join(exc.problems))
            return False
        return True

    def _load(self) -> None:
        signature = directory_signature(self.paths)
        telemetry = self.store.telemetry
        try:
            snapshot = load_directory(self.paths, compiler=self.compiler)
        except LoadError as exc:
            self._signature = signature
            self.last_problems = exc.problems
            telemetry.source_reloads.labels("failure").inc()
            raise
        apply_snapshot(self.store, snapshot)
        self._signature = signature
        self.last_problems = []
        self.loaded = True
        telemetry.source_reloads.labels("success").inc()
        telemetry.source_last_success.set(time.time())
        extra = f" ({snapshot.unmatched} objects match no configuration)" if snapshot.unmatched else ""
        log.info("loaded %s from %s%s", describe(self.store), ", ".join(self.paths), extra)

    def changed(self) -> bool:
        return directory_signature(self.paths) != self._signature

    async def start(self) -> None:
        """Initial load (raises ``LoadError`` so the command can exit 1), then start polling."""
        self._load()
        self._task = asyncio.create_task(self._poll(), name="offline-source-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                if self.changed():
                    # Let an editor finish writing (several files, or write-then-rename).
                    await asyncio.sleep(min(0.2, self.poll_interval))
                    self.reload()
            except Exception:  # keep polling whatever happened; the store keeps its state
                log.exception("offline source: reload failed unexpectedly")
