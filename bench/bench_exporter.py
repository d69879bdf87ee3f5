"""Exporter benchmark: render throughput, scrape assembly, cache hits, gzip, a prometheus_client
baseline and memory per stored series. Results and the command are recorded in bench/README.md.

    ~/.cache/panopticon/venv/bin/python bench/bench_exporter.py [--objects 100000] [--render 20000]

Everything runs in one process on one core (CPython is single-threaded here), except the memory
measurement, which runs in a fresh subprocess so that the RSS delta counts only the store.

1. Render: the Deployment configuration of Panopticon's launch post
   (``examples/configs/apps-deployment.yaml``) over realistic Deployments (labels, annotations,
   pod template, managedFields-like noise, two or three conditions): ``Plan.render`` alone, and
   ``MetricsStore.upsert`` (render + store bookkeeping).
2. Scrape: a 10-series-per-object Deployment configuration (``SCRAPE_CONFIG`` below: 8 scalar
   metrics, one with a DateTime, one expression, plus a 2-element condition fan-out) over
   ``--objects`` Deployments. Measured: assembling the full body after a change (cache miss),
   answering an unchanged store (cache hit), gzip of the body, and a namespace-filtered body.
3. Baseline: the idiomatic prometheus_client approach on the same objects: a custom Collector
   that keeps the objects and, at scrape time, walks them with jsonpath-ng (expressions parsed
   once) and yields ``GaugeMetricFamily``; the scrape is ``generate_latest(registry)``.
4. Memory: RSS growth per stored series while filling a store with ``--objects`` objects
   generated one at a time (objects are dropped after rendering, as with an informer).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.compiler import compile_config  # noqa: E402
from exporter.exposition import Exposition, GzipPrefix  # noqa: E402
from exporter.store import MetricsStore  # noqa: E402
from exporter.telemetry import Telemetry  # noqa: E402

SCRAPE_CONFIG = """
apiVersion: metrics.appscode.com/v1alpha1
kind: MetricsConfiguration
metadata: {name: bench-deployment}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment}
  metrics:
  - {name: spec_replicas, help: Desired replicas, type: gauge, metricValue: {valueFromPath: .spec.replicas}}
  - {name: status_replicas, help: Replicas, type: gauge, metricValue: {valueFromPath: .status.replicas}}
  - {name: status_ready_replicas, help: Ready replicas, type: gauge,
     metricValue: {valueFromPath: .status.readyReplicas}}
  - {name: status_available_replicas, help: Available replicas, type: gauge,
     metricValue: {valueFromPath: .status.availableReplicas}}
  - {name: status_updated_replicas, help: Updated replicas, type: gauge,
     metricValue: {valueFromPath: .status.updatedReplicas}}
  - {name: metadata_generation, help: Generation, type: gauge,
     metricValue: {valueFromPath: .metadata.generation}}
  - name: created
    help: Unix creation timestamp
    type: gauge
    field: {path: .metadata.creationTimestamp, type: DateTime}
    metricValue: {valueFromPath: .metadata.creationTimestamp}
  - name: spec_paused
    help: Whether the deployment is paused
    type: gauge
    params: [{key: paused, valuePath: .spec.paused}]
    metricValue: {valueFromExpression: "int(paused == 'true')"}
  - name: status_condition
    help: Status conditions
    type: gauge
    field: {path: .status.conditions, type: Array}
    labels:
    - {key: type, valuePath: ".status.conditions[*].type"}
    - {key: status, valuePath: ".status.conditions[*].status"}
    metricValue: {value: 1}
"""

# The baseline collector's view of SCRAPE_CONFIG: (family, help, jsonpath, kind).
BASELINE_SCALARS = [
    ("spec_replicas", "Desired replicas", "$.spec.replicas"),
    ("status_replicas", "Replicas", "$.status.replicas"),
    ("status_ready_replicas", "Ready replicas", "$.status.readyReplicas"),
    ("status_available_replicas", "Available replicas", "$.status.availableReplicas"),
    ("status_updated_replicas", "Updated replicas", "$.status.updatedReplicas"),
    ("metadata_generation", "Generation", "$.metadata.generation"),
]


def deployment(i: int) -> dict[str, Any]:
    """A Deployment shaped like a real LIST item (about 3 KB of JSON)."""
    ns = f"team-{i % 50}"
    name = f"app-{i}"
    replicas = 1 + i % 7
    conditions = [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
         "message": "Deployment has minimum availability.",
         "lastUpdateTime": "2025-03-01T10:00:00Z", "lastTransitionTime": "2025-03-01T10:00:00Z"},
        {"type": "Progressing", "status": "True" if i % 11 else "False", "reason": "NewReplicaSetAvailable",
         "message": f'ReplicaSet "{name}-5d8f9c7b4" has successfully progressed.',
         "lastUpdateTime": "2025-03-01T10:00:00Z", "lastTransitionTime": "2025-03-01T09:58:00Z"},
    ]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": ns, "uid": f"00000000-0000-4000-8000-{i:012d}",
            "resourceVersion": str(100000 + i), "generation": 1 + i % 5,
            "creationTimestamp": f"2025-0{1 + i % 9}-{10 + i % 18}T08:{i % 60:02d}:00Z",
            "labels": {"app": name, "team": ns, "app.kubernetes.io/part-of": "shop", "tier": "backend"},
            "annotations": {"deployment.kubernetes.io/revision": str(1 + i % 9),
                            "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 600 + "}"},
        },
        "spec": {
            "replicas": replicas, "paused": i % 13 == 0, "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%" if i % 2 else 1, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "backend"}},
                "spec": {
                    "containers": [{
                        "name": "main", "image": f"registry.example.com/{name}:1.{i % 40}.0",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                           "periodSeconds": 10},
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                },
            },
        },
        "status": {
            "observedGeneration": 1 + i % 5, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas - (i % 3 == 0), "availableReplicas": replicas - (i % 3 == 0),
            "conditions": conditions,
        },
    }


def timed(fn: Callable[[], Any], *, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def load_plan(path: Path | None = None, text: str | None = None) -> Any:
    data = yaml.safe_load(text if text is not None else path.read_text())  # type: ignore[union-attr]
    return compile_config(data)


# --------------------------------------------------------------------------- 1. render


def bench_render(n: int) -> dict[str, float]:
    plan = load_plan(ROOT / "examples" / "configs" / "apps-deployment.yaml")
    objs = [deployment(i) for i in range(n)]
    series = sum(chunk.count(b"\n") for o in objs[:1000] for chunk in plan.render(o)) / 1000
    render = plan.render
    # In the exporter, objects are transient (decoded from a watch event, rendered, dropped); here
    # they are kept in a list to time rendering alone. Freezing them keeps the cyclic GC from
    # re-scanning this bench-only heap on every collection, which would otherwise be measured.
    gc.collect()
    gc.freeze()
    best = min(timed(lambda: [render(o) for o in objs], repeat=3))
    upsert_times = []
    for _ in range(3):
        store = MetricsStore(telemetry=Telemetry(process_metrics=False))
        store.set_plan(plan)
        upsert = store.upsert
        started = time.perf_counter()
        for o in objs:
            upsert(plan.name, o)
        upsert_times.append(time.perf_counter() - started)
        del store
    upsert_s = min(upsert_times)
    gc.unfreeze()
    return {"objects": n, "series_per_object": series, "render_per_s": n / best,
            "upsert_per_s": n / upsert_s, "render_us": best / n * 1e6}


# --------------------------------------------------------------------------- 2./3. scrape + baseline


class JsonPathCollector:
    """The idiomatic prometheus_client exporter: keep objects, evaluate paths at scrape time."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        from jsonpath_ng import parse

        self.objects = objects
        self.scalars = [(f"apps_deployment_{name}", help_, parse(path))
                        for name, help_, path in BASELINE_SCALARS]
        self.created = parse("$.metadata.creationTimestamp")
        self.paused = parse("$.spec.paused")
        self.cond_type = parse("$.status.conditions[*].type")
        self.cond_status = parse("$.status.conditions[*].status")
        self.namespace = parse("$.metadata.namespace")
        self.name = parse("$.metadata.name")

    def collect(self) -> Iterator[Any]:
        from datetime import datetime

        from prometheus_client.core import GaugeMetricFamily

        labels = ["namespace", "deployment"]
        families = {name: GaugeMetricFamily(name, help_, labels=labels) for name, help_, _ in self.scalars}
        created = GaugeMetricFamily("apps_deployment_created", "Unix creation timestamp", labels=labels)
        paused = GaugeMetricFamily("apps_deployment_spec_paused", "Whether the deployment is paused",
                                   labels=labels)
        condition = GaugeMetricFamily("apps_deployment_status_condition", "Status conditions",
                                      labels=[*labels, "type", "status"])
        for obj in self.objects:
            key = [self.namespace.find(obj)[0].value, self.name.find(obj)[0].value]
            for name, _, path in self.scalars:
                found = path.find(obj)
                if found:
                    families[name].add_metric(key, float(found[0].value))
            ts = self.created.find(obj)
            if ts:
                stamp = datetime.fromisoformat(ts[0].value.replace("Z", "+00:00"))
                created.add_metric(key, stamp.timestamp())
            p = self.paused.find(obj)
            paused.add_metric(key, 1.0 if p and p[0].value is True else 0.0)
            for t, s in zip(self.cond_type.find(obj), self.cond_status.find(obj), strict=False):
                condition.add_metric([*key, t.value, s.value], 1.0)
        yield from families.values()
        yield created
        yield paused
        yield condition


def bench_scrape(n: int, baseline_n: int) -> dict[str, float]:
    plan = load_plan(text=SCRAPE_CONFIG)
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(plan)
    objs = [deployment(i) for i in range(n)]
    gc.collect()
    gc.freeze()  # as above: the list of objects is a bench artefact
    for o in objs:
        store.upsert(plan.name, o)
    exposition = Exposition(store)
    series = sum(f.series for f in store.families())

    def change_then_build() -> bytes:
        store.delete(plan.name, objs[0]["metadata"]["uid"])
        store.upsert(plan.name, objs[0])
        started, cpu = time.perf_counter(), time.process_time()
        body = exposition.body(fmt="text")
        miss.append(time.perf_counter() - started)
        miss_cpu.append(time.process_time() - cpu)
        return body

    miss: list[float] = []
    miss_cpu: list[float] = []
    for _ in range(7):
        body = change_then_build()
    hit = timed(lambda: exposition.body(fmt="text"), repeat=200)
    om_miss = []
    for _ in range(3):
        store.delete(plan.name, objs[0]["metadata"]["uid"])
        store.upsert(plan.name, objs[0])
        om_miss.append(min(timed(lambda: exposition.body(fmt="openmetrics"), repeat=1)))
    gzip_times = timed(lambda: GzipPrefix.of(body).finish(b""), repeat=3)
    cpu = time.process_time()
    GzipPrefix.of(body).finish(b"")
    gzip_cpu = time.process_time() - cpu
    gz = GzipPrefix.of(body).finish(b"")
    gz_hit = timed(lambda: exposition.body(fmt="text", gzip=True), repeat=50)[1:]
    ns_times = []
    for _ in range(3):
        store.delete(plan.name, objs[0]["metadata"]["uid"])
        store.upsert(plan.name, objs[0])
        ns_times.append(min(timed(lambda: exposition.body(fmt="text", namespace="team-7"), repeat=1)))

    result = {
        "objects": n, "series": series, "body_bytes": len(body),
        "miss_median_s": statistics.median(miss), "miss_max_s": max(miss),
        "miss_cpu_median_s": statistics.median(miss_cpu), "gzip_cpu_s": gzip_cpu,
        "om_miss_median_s": statistics.median(om_miss),
        "hit_median_s": statistics.median(hit), "hit_max_s": max(hit),
        "gzip_s": statistics.median(gzip_times), "gzip_bytes": len(gz),
        "gzip_hit_median_s": statistics.median(gz_hit),
        "namespace_miss_s": statistics.median(ns_times),
    }
    if baseline_n:
        base_objs = objs[:baseline_n]
        del store, exposition, body, objs  # free the big store before building the baseline's
        gc.collect()
        result.update(bench_baseline(plan, base_objs, hit_s=result["hit_median_s"]))
    return result


def bench_baseline(plan: Any, base_objs: list[dict[str, Any]], *, hit_s: float) -> dict[str, float]:
    """The prometheus_client way on ``base_objs``, and ours on exactly the same objects.

    Both sides are timed in wall and in CPU time (``process_time``): the CPU ratio is the one that
    does not depend on what else the machine is running.
    """
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(JsonPathCollector(base_objs))  # type: ignore[arg-type]
    started, cpu = time.perf_counter(), time.process_time()
    base_body = generate_latest(registry)
    base_s, base_cpu = time.perf_counter() - started, time.process_time() - cpu
    base_series = sum(1 for line in base_body.split(b"\n") if line and not line.startswith(b"#"))
    del base_body, registry
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(plan)
    for o in base_objs:
        store.upsert(plan.name, o)
    exposition = Exposition(store)
    walls, cpus = [], []
    for _ in range(5):
        store.delete(plan.name, base_objs[0]["metadata"]["uid"])
        store.upsert(plan.name, base_objs[0])
        started, cpu = time.perf_counter(), time.process_time()
        body = exposition.body(fmt="text")
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    ours_series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    return {
        "baseline_objects": len(base_objs), "baseline_series": base_series,
        "baseline_s": base_s, "baseline_cpu_s": base_cpu,
        "ours_same_objects_s": statistics.median(walls), "ours_same_objects_cpu_s": statistics.median(cpus),
        "ours_same_series": ours_series,
        "ratio_vs_baseline": base_s / statistics.median(walls),
        "ratio_cpu_vs_baseline": base_cpu / statistics.median(cpus),
        "ratio_cached_vs_baseline": base_s / hit_s,
    }


# --------------------------------------------------------------------------- 4. memory


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memory_child(n: int) -> dict[str, float]:
    plan = load_plan(text=SCRAPE_CONFIG)
    store = MetricsStore(telemetry=Telemetry(process_metrics=False))
    store.set_plan(plan)
    store.upsert(plan.name, deployment(0))  # warm up allocator and caches
    gc.collect()
    before = rss_bytes()
    for i in range(1, n + 1):
        store.upsert(plan.name, deployment(i))
    gc.collect()
    after = rss_bytes()
    series = sum(f.series for f in store.families())
    chunk_bytes = sum(len(c) for e in store.objects() for c in e.chunks)
    # Then one scrape: the joined blocks and the cached text body come on top.
    body = Exposition(store).body(fmt="text")
    gc.collect()
    after_scrape = rss_bytes()
    return {"objects": n, "series": series, "rss_delta_bytes": after - before,
            "bytes_per_series_after_scrape": (after_scrape - before) / series, "body_bytes": len(body),
            "bytes_per_series": (after - before) / series,
            "sample_text_bytes_per_series": chunk_bytes / series}


def bench_memory(n: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--memory-child", str(n)], capture_output=True,
                          text=True, check=True, timeout=1200)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000, help="objects for the scrape/memory benches")
    parser.add_argument("--render", type=int, default=20_000, help="objects for the render bench")
    parser.add_argument("--baseline-objects", type=int, default=0,
                        help="objects for the jsonpath-ng baseline (default: same as --objects)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: render,baseline,memory")
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child)))
        return
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, Any] = {}
    print(f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
          f"{platform.machine()} {platform.platform()}; load average {os.getloadavg()[0]:.1f}")
    if "render" not in skip:
        r = results["render"] = bench_render(args.render)
        print(f"render (apps-deployment, {r['series_per_object']:.1f} series/object): "
              f"{r['render_per_s']:,.0f} objects/s ({r['render_us']:.1f} us/object); "
              f"upsert (render+store): {r['upsert_per_s']:,.0f} objects/s")
    baseline_n = 0 if "baseline" in skip else (args.baseline_objects or args.objects)
    s = results["scrape"] = bench_scrape(args.objects, baseline_n)
    print(f"scrape ({s['objects']:,} objects, {s['series']:,} series, {s['body_bytes'] / 1e6:.1f} MB): "
          f"full body after a change {s['miss_median_s'] * 1e3:.1f} ms wall, "
          f"{s['miss_cpu_median_s'] * 1e3:.1f} ms CPU (max wall {s['miss_max_s'] * 1e3:.1f}); "
          f"OpenMetrics {s['om_miss_median_s'] * 1e3:.1f} ms; "
          f"unchanged store {s['hit_median_s'] * 1e6:.1f} us (max {s['hit_max_s'] * 1e6:.1f}); "
          f"namespace filter (1/50) {s['namespace_miss_s'] * 1e3:.1f} ms")
    print(f"gzip: {s['gzip_s'] * 1e3:.0f} ms wall, {s['gzip_cpu_s'] * 1e3:.0f} ms CPU once per change -> "
          f"{s['gzip_bytes'] / 1e6:.2f} MB ({s['body_bytes'] / s['gzip_bytes']:.1f}x); "
          f"cached gzip {s['gzip_hit_median_s'] * 1e6:.1f} us")
    if baseline_n:
        print(f"baseline (prometheus_client Collector + jsonpath-ng at scrape time, "
              f"{s['baseline_objects']:,} objects, {s['baseline_series']:,} series): "
              f"{s['baseline_s']:.2f} s wall, {s['baseline_cpu_s']:.2f} s CPU; ours on the same objects "
              f"({s['ours_same_series']:,} series) {s['ours_same_objects_s'] * 1e3:.1f} ms wall, "
              f"{s['ours_same_objects_cpu_s'] * 1e3:.1f} ms CPU -> {s['ratio_vs_baseline']:,.0f}x faster "
              f"(wall), {s['ratio_cpu_vs_baseline']:,.0f}x (CPU) after a change, "
              f"{s['ratio_cached_vs_baseline']:,.0f}x from cache")
    if "memory" not in skip:
        m = results["memory"] = bench_memory(args.objects)
        print(f"memory ({m['objects']:,} objects, {m['series']:,} series): "
              f"RSS +{m['rss_delta_bytes'] / 1e6:.1f} MB = {m['bytes_per_series']:.0f} bytes/series "
              f"(sample text itself: {m['sample_text_bytes_per_series']:.0f} bytes/series); after one scrape "
              f"(joined blocks + cached body): {m['bytes_per_series_after_scrape']:.0f} bytes/series")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
