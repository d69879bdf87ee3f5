"""Render throughput of the compiled plans of the three real configurations (one core).

Objects are the realistic ones of tests/golden/<case>/objects.yaml, copied N times with unique
names and 50 namespaces. Reports the best of three passes over the same objects, wall and CPU
(``time.process_time``) per object, and the series each object yields. Complements
bench_exporter.py, which measures the Deployment configuration together with the store.

    ~/.cache/panopticon/venv/bin/python bench/bench_render_configs.py [--objects 20000]
"""

from __future__ import annotations

import argparse
import copy
import gc
import time
from pathlib import Path
from typing import Any

from exporter.compiler import compile_config
from exporter.sources import load_documents

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
CASES = {"deployment": "apps-deployment", "mongodb": "kubedb-com-mongodb",
         "backupsession": "kubestash BackupSession"}


def golden_case(case: str, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A golden case's configuration and ``count`` copies of its objects (unique names, 50 namespaces)."""
    (config,) = load_documents([str(GOLDEN / case / "config.yaml")])
    base = [doc.data for doc in load_documents([str(GOLDEN / case / "objects.yaml")])]
    objects = []
    for i in range(count):
        obj = copy.deepcopy(base[i % len(base)])
        obj["metadata"]["name"] = f"obj-{i}"
        obj["metadata"]["namespace"] = f"ns-{i % 50}"
        objects.append(obj)
    return config.data, objects


def bench(case: str, count: int) -> None:
    config, objects = golden_case(case, count)
    plan = compile_config(config)
    gc.freeze()  # the exporter's objects are transient; keep the GC off this long-lived list
    render = plan.render
    series = sum(b"".join(render(obj)).count(b"\n") for obj in objects)
    best_wall = best_cpu = float("inf")
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for obj in objects:
            render(obj)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    print(f"| {CASES[case]} | {series / count:.1f} | {count / best_wall:,.0f} | "
          f"{best_wall / count * 1e6:.1f} | {best_cpu / count * 1e6:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20000)
    args = parser.parse_args()
    print("| configuration | series/object | objects/s (wall) | us/object (wall) | us/object (CPU) |")
    print("|---|---|---|---|---|")
    for case in CASES:
        bench(case, args.objects)


if __name__ == "__main__":
    main()
