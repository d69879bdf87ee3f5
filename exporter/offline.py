"""The no-cluster source: a directory of MetricsConfigurations and objects feeding the store.

``panopticon serve --source DIR`` reads every YAML/JSON file under DIR (``exporter.sources``),
compiles the configurations (``exporter.compiler``), matches objects to configurations by
``apiVersion``/``kind`` and fills the ``MetricsStore``. Then it polls the directory once a second
(a scan of path, mtime and size of every file: cheap for the tens of files this mode is for,
portable, and immune to editors that replace files instead of writing them) and reloads when
anything changed.

One bad file never blocks the others: every file is read on its own and every configuration
compiled on its own, so a malformed file or a configuration that does not compile is reported
(one line per problem, with its file, the field's own line and path) and the rest is served. A
file that was good and turns bad keeps its last good content, and a configuration that stops
compiling keeps its last good plan, until they are fixed; a file that changed is re-read, the
others are reused from the cache (per-file reload). Loading is the pure-ish ``load_directory``
(files in, ``Snapshot`` out, with its ``problems``); ``apply_snapshot`` is the only step that
touches the store, and it runs on the event loop without awaiting, so a scrape never sees half
a reload.
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

from exporter.compiler import GlobalLabels, compile_documents
from exporter.sources import (
    SUFFIXES,
    Document,
    FieldLocator,
    SourceError,
    expand_paths,
    load_file,
    split_documents,
)
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
    problems: list[str] = field(default_factory=list)  # one readable line each (bad files, configs)

    @property
    def object_count(self) -> int:
        return sum(len(objs) for objs in self.objects.values())


def _compile_with_lines(configs: Sequence[Document]) -> tuple[list[Plan], list[str]]:
    """``compile_documents`` naming each field's own line, as ``panopticon check`` does."""
    return compile_documents(configs, locate=FieldLocator())


default_compiler: Compiler = _compile_with_lines


def compiler_with(metric_labels: GlobalLabels | None) -> Compiler:
    """``default_compiler`` with the global ``--metric-labels-allowlist`` flags (when given)."""
    if metric_labels is None:
        return default_compiler

    def compile_with_flags(configs: Sequence[Document]) -> tuple[list[Plan], list[str]]:
        return compile_documents(configs, locate=FieldLocator(), metric_labels=metric_labels)

    return compile_with_flags

# file -> (mtime_ns, size, its documents at the last successful read)
FileCache = dict[str, tuple[int, int, list[Document]]]


def read_files(paths: Sequence[str], *, cache: FileCache | None = None) -> tuple[list[Document], list[str]]:
    """Read every file under ``paths`` on its own: (documents, one problem line per bad file).

    With a ``cache``, an unchanged file is not re-read, and a file that cannot be read now but
    was read before keeps its last good documents (the problem line says so)."""
    files, missing = expand_paths(paths)
    problems = [str(exc) for exc in missing]
    docs: list[Document] = []
    for file in files:
        mtime, size = _stat(file)[1:] if file != "-" else (-1, -1)
        cached = cache.get(file) if cache is not None else None
        if cached is not None and cached[:2] == (mtime, size) and mtime >= 0:
            docs.extend(cached[2])
            continue
        try:
            found = load_file(file)
        except SourceError as exc:
            if cached is not None:
                problems.append(f"{exc} (keeping its last good content)")
                docs.extend(cached[2])
            else:
                problems.append(str(exc))
            continue
        if cache is not None:
            cache[file] = (mtime, size, found)
        docs.extend(found)
    return docs, problems


def load_configs(paths: Sequence[str], *, compiler: Compiler = default_compiler,
                 cache: FileCache | None = None,
                 previous: Mapping[str, Plan] | None = None) -> tuple[list[Plan], list[Document], list[str]]:
    """Read ``paths`` and compile every configuration on its own: (plans, other documents, problems).

    ``previous`` (name -> plan) are the plans served before: a configuration that no longer
    compiles keeps its previous plan while the problem is reported."""
    docs, problems = read_files(paths, cache=cache)
    configs, objects = split_documents(docs)
    plans, compile_problems = compiler(configs)
    problems.extend(compile_problems)
    if previous:
        compiled = {plan.name for plan in plans}
        kept = [previous[doc.name] for doc in configs
                if doc.name and doc.name not in compiled and doc.name in previous]
        if kept:
            problems.extend(f"configuration {plan.name!r}: keeping its last good version" for plan in kept)
            taken = {h.name for plan in plans for h in plan.families}
            plans.extend(plan for plan in kept if not taken.intersection(h.name for h in plan.families))
    return plans, objects, problems


def compile_paths(paths: Sequence[str], *, compiler: Compiler = default_compiler
                  ) -> tuple[list[Plan], list[Document]]:
    """All-or-nothing variant of ``load_configs``: raise ``LoadError`` on any problem."""
    plans, objects, problems = load_configs(paths, compiler=compiler)
    if problems:
        raise LoadError(problems)
    return plans, objects


def read_documents(paths: Sequence[str]) -> list[Document]:
    """All-or-nothing variant of ``read_files``: raise ``LoadError`` on any problem."""
    docs, problems = read_files(paths)
    if problems:
        raise LoadError(problems)
    return docs


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
            accepts = getattr(plan, "accepts", None)  # spec.targetRef.selector/namespaces
            if accepts is None or accepts(doc.data):
                matched[plan.name].append(doc.data)
    return Snapshot(plans=list(plans), objects=matched, unmatched=unmatched)


def load_directory(paths: Sequence[str], *, compiler: Compiler = default_compiler,
                   cache: FileCache | None = None, previous: Mapping[str, Plan] | None = None) -> Snapshot:
    """Read and compile ``paths`` (configurations and objects mixed), isolating bad files and
    configurations: their problems are in ``Snapshot.problems``, everything good is loaded."""
    plans, objects, problems = load_configs(paths, compiler=compiler, cache=cache, previous=previous)
    snapshot = match_objects(plans, objects)
    return Snapshot(plans=snapshot.plans, objects=snapshot.objects, unmatched=snapshot.unmatched,
                    problems=problems)


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
        self._files: FileCache = {}
        self._task: asyncio.Task[None] | None = None

    def reload(self) -> bool:
        """Load now; serve everything good, report the rest. True when nothing was wrong."""
        try:
            self._load()
        except LoadError as exc:
            kept = "keeping the last good state" if self.loaded else "nothing loaded"
            log.error("cannot load %s (%s):\n  %s", ", ".join(self.paths), kept, "\n  ".join(exc.problems))
            return False
        return not self.last_problems

    def _load(self) -> None:
        signature = directory_signature(self.paths)
        telemetry = self.store.telemetry
        previous = {plan.name: plan for plan in self.store.plans()}
        snapshot = load_directory(self.paths, compiler=self.compiler, cache=self._files, previous=previous)
        self._signature = signature
        if not snapshot.plans and snapshot.problems and not self.loaded:
            self.last_problems = snapshot.problems
            telemetry.source_reloads.labels("failure").inc()
            telemetry.source_problems.set(len(snapshot.problems))
            raise LoadError(snapshot.problems)
        apply_snapshot(self.store, snapshot)
        self.last_problems = snapshot.problems
        self.loaded = True
        telemetry.source_problems.set(len(snapshot.problems))
        telemetry.source_reloads.labels("partial" if snapshot.problems else "success").inc()
        telemetry.source_last_success.set(time.time())
        extra = f" ({snapshot.unmatched} objects match no configuration)" if snapshot.unmatched else ""
        log.info("loaded %s from %s%s", describe(self.store), ", ".join(self.paths), extra)
        if snapshot.problems:
            log.error("%d problem(s) in %s (everything else is served):\n  %s", len(snapshot.problems),
                      ", ".join(self.paths), "\n  ".join(snapshot.problems))

    def changed(self) -> bool:
        return directory_signature(self.paths) != self._signature

    async def start(self) -> None:
        """Initial load (raises ``LoadError`` when nothing at all could be loaded, so the command
        can exit 1), then start polling."""
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
