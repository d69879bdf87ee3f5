"""``panopticon render``: print the exposition that configurations produce for local objects.

Reads configurations (``-c``) and objects (``-f``) from files, directories or stdin, compiles,
fills an in-memory store and prints the same bytes ``/metrics`` would serve. One bad file or
configuration never hides the others: everything that loads is rendered and printed, and each
problem (unreadable file, malformed YAML, a configuration that does not compile, with the
field's own line) is one ``error:`` line on stderr, with exit code 1, never a traceback.
Dropped series are logged once per (configuration, metric, reason) with their count
(``exporter.renderlog``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from exporter.exposition import Exposition
from exporter.offline import apply_snapshot, load_configs, match_objects, read_files
from exporter.renderlog import RenderLog
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    plans, stray, problems = load_configs(args.config)
    # Every document from -f is an object (even a MetricsConfiguration: it is only compiled
    # when passed with -c).
    objects, object_problems = read_files(args.filename)
    problems.extend(object_problems)
    snapshot = match_objects(plans, objects)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if stray:
        print(f"warning: {len(stray)} documents in -c files are not MetricsConfigurations; ignored",
              file=sys.stderr)
    if snapshot.unmatched:
        print(f"warning: {snapshot.unmatched} objects match no configuration's targetRef", file=sys.stderr)
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.render_log = RenderLog(deferred=True)
    apply_snapshot(store, snapshot)
    store.render_log.flush()
    body = Exposition(store).body(fmt=args.format, namespace=args.namespace or None)
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 1 if problems else 0
