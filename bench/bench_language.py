"""Cost per object of a filter path and a map fan-out against a plain path (same run).

    python bench/bench_language.py [--objects 20000] [--repeat 5]

Three one-metric configurations over the same Pods: a plain ``valueFromPath`` (``.spec.priority``),
a filter (``.status.conditions[?(@.type=='Ready')].status`` through ``int(s == 'True')``, the
expression costs the same as a plain ``int(s == 'True')`` over a plain path, which is measured
too), and a map fan-out over ``.status.capacity`` (3 entries) with the key as a label against
the same data as an array of ``{name, value}`` fanned out with ``[*]`` and against three plain
paths to the same three values (same values to convert). Figures:
the best of ``--repeat`` runs of ``Plan.render`` over every object, in microseconds per object,
CPU time (``time.process_time``), and the ratios to the plain paths.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from exporter.compiler import compile_config


def pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": f"ns{i % 50}", "labels": {"app": "web"}},
            "spec": {"priority": i % 7},
            "status": {"phase": "Running",
                       "conditions": [{"type": t, "status": "True"} for t in
                                      ("Initialized", "PodScheduled", "ContainersReady", "Ready")],
                       "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "resources": [{"name": "cpu", "value": "4"}, {"name": "memory", "value": "8Gi"},
                                     {"name": "pods", "value": "110"}]}}


def config(metric: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    metrics = metric if isinstance(metric, list) else [metric]
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": "b"},
            "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"},
                     "metrics": [{"name": f"m{i}", "help": "h", "type": "gauge", **m}
                                 for i, m in enumerate(metrics)]}}


CASES: dict[str, dict[str, Any] | list[dict[str, Any]]] = {
    "plain path": {"metricValue": {"valueFromPath": ".spec.priority"}},
    "plain path + expression": {"params": [{"key": "s", "valuePath": ".status.phase"}],
                                "metricValue": {"valueFromExpression": "int(s == 'Running')"}},
    "filter path + expression": {"params": [{"key": "s",
                                             "valuePath": ".status.conditions[?(@.type=='Ready')].status"}],
                                 "metricValue": {"valueFromExpression": "int(s == 'True')"}},
    "array fan-out (3 elements)": {"labels": [{"key": "resource", "valuePath": ".status.resources[*].name"}],
                                   "metricValue": {"valueFromPath": ".status.resources[*].value"}},
    "map fan-out (3 keys)": {"labels": [{"key": "resource", "keyFromPath": ".status.capacity[*]"}],
                             "metricValue": {"valueFromPath": ".status.capacity[*]"}},
    # the same three values through three plain paths (one metric each, a constant label)
    "3 plain paths to the map": [
        {"labels": [{"key": "resource", "value": key}],
         "metricValue": {"valueFromPath": f".status.capacity.{key}"}} for key in ("cpu", "memory", "pods")],
}


def measure(*, objects: int, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` CPU microseconds per object of every case."""
    pods = [pod(i) for i in range(objects)]
    results: dict[str, float] = {}
    for name, metric in CASES.items():
        plan = compile_config(config(metric))
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            for obj in pods:
                plan.render(obj)
            best = min(best, time.process_time() - start)
        results[name] = best / objects * 1e6
    return results


def report(results: dict[str, float]) -> None:
    for name, us in results.items():
        print(f"{name:32s} {us:6.2f} us/object")
    ratio = results["filter path + expression"] / results["plain path + expression"]
    print(f"filter / plain path (both + expression) {ratio:.2f}x")
    print(f"map fan-out / the same data as an array fan-out "
          f"{results['map fan-out (3 keys)'] / results['array fan-out (3 elements)']:.2f}x")
    print(f"map fan-out / the same values through 3 plain paths "
          f"{results['map fan-out (3 keys)'] / results['3 plain paths to the map']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report(measure(objects=args.objects, repeat=args.repeat))


if __name__ == "__main__":
    main()
