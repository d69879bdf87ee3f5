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

from apiserver.commands.check import thanos_lines
from exporter.exposition import Exposition
from exporter.familyfilter import FamilyFilter, FamilyFilterError
from exporter.metriclabels import MetricLabelsAllowlist, MetricLabelsError
from exporter.offline import apply_snapshot, compiler_with, load_configs, match_objects, read_files
from exporter.renderlog import RenderLog
from exporter.sources import FieldLocator
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry
from thanos_operator import offline as thanos_offline
from thanos_operator.review import is_thanos


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    thanos_exit = _render_thanos(args.config)
    if thanos_exit is not None:
        return thanos_exit
    try:
        families = FamilyFilter.parse(allow=getattr(args, "metric_allowlist", ""),
                                      deny=getattr(args, "metric_denylist", ""))
    except FamilyFilterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        labels = MetricLabelsAllowlist.parse(labels=getattr(args, "metric_labels_allowlist", ""),
                                             annotations=getattr(args, "metric_annotations_allowlist", ""))
    except MetricLabelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    compiler = compiler_with(labels)
    compiler = families.documents_compiler(compiler) if families is not None else compiler
    plans, stray, problems = load_configs(args.config, compiler=compiler)
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


def _render_thanos(paths: list[str]) -> int | None:
    """``Thanos`` objects in the -c files: print the objects the operator would apply, as YAML
    (``thanos_operator.offline``), or their problems as ``panopticon check`` does; ``None`` when
    there are none (the MetricsConfiguration path)."""
    documents, _ = read_files(paths)  # unreadable files are reported by the MetricsConfiguration path
    thanos_docs = [d for d in documents if is_thanos(d.data)]
    if not thanos_docs:
        return None
    if len(thanos_docs) != len(documents):
        print(f"warning: {len(documents) - len(thanos_docs)} non-Thanos documents ignored", file=sys.stderr)
    problems = thanos_lines(thanos_docs, locate=FieldLocator())
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    sys.stdout.write(thanos_offline.render_yaml([d.data for d in thanos_docs]))
    return 0
