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
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
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
