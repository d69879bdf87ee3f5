"""``panopticon render``: print the exposition that configurations produce for local objects.

Reads configurations (``-c``) and objects (``-f``) from files, directories or stdin, compiles,
fills an in-memory store and prints the same bytes ``/metrics`` would serve. Anything the user
can fix (unreadable file, malformed YAML, a configuration that does not compile) is printed as
one line per problem on stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from exporter.exposition import Exposition
from exporter.offline import LoadError, apply_snapshot, compile_paths, match_objects, read_documents
from exporter.sources import FieldLocator, SourceError, load_documents
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from thanos_operator import offline as thanos_offline


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    thanos_exit = _render_thanos(args.config)
    if thanos_exit is not None:
        return thanos_exit
    try:
        plans, stray = compile_paths(args.config)
        # Every document from -f is an object (even a MetricsConfiguration: it is only compiled
        # when passed with -c).
        snapshot = match_objects(plans, read_documents(args.filename))
    except LoadError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    if stray:
        print(f"warning: {len(stray)} documents in -c files are not MetricsConfigurations; ignored",
              file=sys.stderr)
    if snapshot.unmatched:
        print(f"warning: {snapshot.unmatched} objects match no configuration's targetRef", file=sys.stderr)
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    apply_snapshot(store, snapshot)
    body = Exposition(store).body(fmt=args.format, namespace=args.namespace or None)
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 0


def _render_thanos(paths: list[str]) -> int | None:
    """``Thanos`` objects in the -c files: print the objects the operator would apply, as YAML
    (``thanos_operator.offline``); ``None`` when there are none (the MetricsConfiguration path)."""
    try:
        documents = load_documents(paths)
    except SourceError:
        return None  # reported by the MetricsConfiguration path with its own message
    thanos_docs = [d for d in documents if thanos_offline.is_thanos(d.data)]
    if not thanos_docs:
        return None
    if len(thanos_docs) != len(documents):
        print(f"warning: {len(documents) - len(thanos_docs)} non-Thanos documents ignored", file=sys.stderr)
    problems = thanos_offline.render_documents(thanos_docs, out=sys.stdout, locate=FieldLocator())
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0
