"""The fused render (exporter/fused.py) against the rule-walking one, in one process.

For each configuration: ``CompiledPlan.render`` (the generated function) and
``CompiledPlan.render_generic`` (the reference it is tested against) over the same objects,
interleaved ``--rounds`` times so both see the same machine; prints the minimum and the median
per object of each, and their ratio. Both render the same bytes (asserted on every object first).

Configurations: ``bench_informer.WIDGET_CONFIG`` over Widgets shaped like the ones
``bench_sync.py`` creates (as kube-apiserver returns them: managedFields, uid, ...), and the
three real configurations over their golden objects (as ``bench_render_configs.py``).

    ~/.cache/panopticon/venv/bin/python bench/bench_fused.py [--objects 5000] [--rounds 21]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_informer import WIDGET_CONFIG  # noqa: E402
from bench.bench_render_configs import CASES, golden_case  # noqa: E402
from exporter.compiler import CompiledPlan, compile_config  # noqa: E402


def widget(i: int) -> dict[str, Any]:
    when = f"2026-12-01T17:{(i // 600) % 60:02d}:{(i // 10) % 60:02d}Z"
    return {"apiVersion": "bench.panopticon.io/v1", "kind": "Widget", "metadata": {
        "creationTimestamp": when, "generation": 1,
        "managedFields": [{"apiVersion": "bench.panopticon.io/v1", "fieldsType": "FieldsV1", "fieldsV1": {
            "f:spec": {".": {}, "f:color": {}, "f:replicas": {}}, "f:status": {".": {}, "f:phase": {}}},
            "manager": "panopticon", "operation": "Update", "time": when}],
        "name": f"w-{i}", "namespace": f"bench-{i % 10}", "resourceVersion": str(1000 + i),
        "uid": f"00000000-0000-0000-0000-{i:012d}"},
        "spec": {"color": f"c{i % 9}", "replicas": i % 5},
        "status": {"phase": ("Pending", "Running", "Failed")[i % 3]}}


def compare(name: str, plan: CompiledPlan, objects: list[dict[str, Any]], rounds: int) -> None:
    for obj in objects:
        assert plan.render(obj) == plan.render_generic(obj), obj["metadata"]["name"]
    times: dict[str, list[float]] = {"generic": [], "fused": []}
    for _ in range(rounds):
        for label, render in (("generic", plan.render_generic), ("fused", plan.render)):
            started = time.perf_counter()
            for obj in objects:
                render(obj)
            times[label].append((time.perf_counter() - started) * 1e6 / len(objects))
    generic, fused = times["generic"], times["fused"]
    print(f"| {name} | {min(generic):.2f} / {statistics.median(generic):.2f} | "
          f"{min(fused):.2f} / {statistics.median(fused):.2f} | {min(generic) / min(fused):.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    cases = [("Widget (bench_sync)", WIDGET_CONFIG, [widget(i) for i in range(args.objects)])]
    cases += [(title, *golden_case(case, args.objects)) for case, title in CASES.items()]
    gc.collect()
    gc.freeze()  # the objects are kept for the whole run: keep the cyclic GC off them
    gc.disable()
    print("| configuration | generic us/object (min / median) | fused us/object (min / median) "
          "| ratio (min) |")
    print("|---|---|---|---|")
    for name, config, objects in cases:
        compare(name, compile_config(config), objects, args.rounds)


if __name__ == "__main__":
    main()
