"""An aggregate family's cost per event at 10,000 and 100,000 objects (same run), plus the
configuration-language ratios of ``bench_language.py`` (filter and map fan-out vs a plain path).

    python bench/bench_aggregates.py [--sizes 10000,100000] [--events 1000] [--rounds 20]

For each size a store holds that many Pods under one configuration with two aggregate families
(``count by (namespace, phase)`` and ``sum by (label_team)`` of a value) and one per-object
family. Then ``--events`` events are applied through ``MetricsStore.upsert`` / ``delete``: three
in four update a random Pod with a new resourceVersion, phase, team and value (moving it between
groups), one in four delete a Pod and add it back. The figure is CPU time
(``time.process_time``) per event of the best batch of ``--events``; the sizes' batches
alternate, so the machine's load changes hit both alike; the objects are built before the clock
starts. O(1) per event means the figure does not grow with the number of objects. After
the events the groups are checked against a recount of the final objects, and one scrape
(``Exposition.body``) is timed.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_language

from exporter.compiler import compile_config
from exporter.exposition import Exposition
from exporter.store import MetricsStore
from exporter.telemetry import Telemetry

PHASES = ("Pending", "Running", "Succeeded", "Failed")
TEAMS = ("a", "b", "c", "d")
CONFIG = {
    "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
    "metadata": {"name": "bench-aggregates"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "Pod"},
        "labelsAllowlist": ["team"],
        "metrics": [
            {"name": "by_phase", "help": "h", "type": "gauge",
             "labels": [{"key": "phase", "valuePath": ".status.phase"}],
             "aggregate": {"op": "count", "by": ["namespace", "phase"]}},
            {"name": "cpu_by_team", "help": "h", "type": "gauge",
             "metricValue": {"valueFromPath": ".spec.cpu"},
             "aggregate": {"op": "sum", "by": ["label_team"]}},
            {"name": "priority", "help": "h", "type": "gauge",
             "metricValue": {"valueFromPath": ".spec.priority"}},
        ],
    },
}


def pod(i: int, rv: int, rng: random.Random) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": f"ns{i % 50}", "uid": f"u{i}",
                         "resourceVersion": str(rv), "labels": {"team": rng.choice(TEAMS)}},
            "spec": {"priority": i % 7, "cpu": rng.choice((0.25, 0.5, 1, 2))},
            "status": {"phase": rng.choice(PHASES)}}


class Sized:
    """One store of ``size`` Pods, the bench's copy of its objects, and a random event source."""

    def __init__(self, size: int, *, seed: int) -> None:
        self.size, self.rng, self.rv = size, random.Random(seed), 2
        self.store = MetricsStore(telemetry=Telemetry(process_metrics=False))
        self.plan = compile_config(CONFIG)
        objects = [pod(i, 1, self.rng) for i in range(size)]
        # Of each object the bench keeps only (uid, namespace, phase): the exporter keeps no objects,
        # and a bench-side copy of 100,000 of them would only make the cyclic GC scan more.
        self.current = {i: _brief(obj) for i, obj in enumerate(objects)}
        started = time.process_time()
        self.store.set_plan(self.plan, objects=objects)
        self.fill = time.process_time() - started
        del objects
        self.exposition = Exposition(self.store)
        self.exposition.body(fmt="text")

    def batch(self, events: int) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for _ in range(events):
            i = self.rng.randrange(self.size)
            new = pod(i, self.rv, self.rng)
            self.rv += 1
            if self.rng.random() < 0.25:
                out.append(("delete", self.current[i][0]))
            out.append(("upsert", new))
            self.current[i] = _brief(new)
        return out

    def apply(self, batch: list[tuple[str, Any]]) -> float:
        """CPU seconds for the batch."""
        store, name = self.store, self.plan.name
        start = time.process_time()
        for kind, obj in batch:
            if kind == "delete":
                store.delete(name, obj)
            else:
                store.upsert(name, obj)
        return time.process_time() - start


def measure(sizes: list[int], *, events: int, rounds: int) -> dict[int, tuple[float, float, float]]:
    """Per size: (CPU us per event, best batch; fill CPU seconds; scrape ms after the events).

    The sizes' batches alternate (10k, 100k, 10k, ...), so a change in the machine's load hits
    both alike; the best batch of each is the figure."""
    stores = {size: Sized(size, seed=size) for size in sizes}
    gc.collect()
    best = dict.fromkeys(sizes, float("inf"))
    for _ in range(rounds):
        for size, sized in stores.items():
            batch = sized.batch(events)
            best[size] = min(best[size], sized.apply(batch) / events)
    out = {}
    for size, sized in stores.items():
        start = time.perf_counter()
        body = sized.exposition.body(fmt="text")
        scrape = time.perf_counter() - start
        _check(body, list(sized.current.values()))
        out[size] = (best[size] * 1e6, sized.fill, scrape * 1e3)
    return out


def _brief(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["metadata"]["uid"], obj["metadata"]["namespace"], obj["status"]["phase"]


def _check(body: bytes, objects: list[tuple[str, str, str]]) -> None:
    """The groups equal a recount of the final objects (so the timed path did the real work)."""
    by_phase = Counter((namespace, phase) for _, namespace, phase in objects)
    for (namespace, phase), count in by_phase.items():
        line = f'core_pod_by_phase{{namespace="{namespace}",phase="{phase}"}} {count}\n'.encode()
        assert line in body, line
    groups = sum(1 for line in body.split(b"\n") if line.startswith(b"core_pod_by_phase{"))
    assert groups == len(by_phase)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--events", type=int, default=1000, help="events per batch")
    parser.add_argument("--rounds", type=int, default=20, help="batches per size (alternating)")
    parser.add_argument("--language-objects", type=int, default=20000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = measure(sizes, events=args.events, rounds=args.rounds)
    for size, (per_event, fill, scrape) in results.items():
        print(f"{size:>7} objects: {per_event:6.2f} us/event (best of {args.rounds} batches of {args.events} "
              f"events); fill {fill:.2f} s CPU; scrape after the events {scrape:.1f} ms", flush=True)
    first, last = sizes[0], sizes[-1]
    print(f"us/event at {last} / at {first} objects: {results[last][0] / results[first][0]:.2f}x")
    print("configuration language (bench_language.py), same run:")
    bench_language.report(bench_language.measure(objects=args.language_objects, repeat=5))


if __name__ == "__main__":
    main()
