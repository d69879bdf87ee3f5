"""Benchmarks of the live exporter's informer path (issue 3, criterion 5).

    python bench/bench_informer.py stream [--stream-file F | --synthesize --events 100000]
        A recorded NDJSON watch stream of ConfigMap events (default: bench/data/watch-configmaps-
        k8s-1.20.ndjson.gz, 20,000 events recorded from the real kube-apiserver v1.20.2 with
        `record`: 1,000 ConfigMaps created then each patched 19 times) fed through the real path:
        LineSplitter -> orjson -> Informer event handling -> Plan.render -> store, for a 3-metric
        configuration; the recording is replayed --repeat times (default 5, later copies as
        MODIFIED with higher resourceVersions). In the same run: orjson decoding alone, and
        decoding through kubernetes_asyncio model objects (Watch.unmarshal_event -> V1ConfigMap).
    python bench/bench_informer.py record --stream-file OUT [--kubeconfig K]
        Record such a stream from a real kube-apiserver (a fresh test cluster when no kubeconfig).
    python bench/bench_informer.py sync [--objects 10000]
        A real kube-apiserver (tests/e2e/cluster.py) with 10,000 ConfigMaps: time from starting
        `panopticon serve` to a complete /metrics, and the process's peak RSS.
    python bench/bench_informer.py e2e [--objects 10000 --namespaces 10]
        10,000 custom objects in 10 namespaces, ~6 series each: time to a complete /metrics,
        scrape p50 over 20 scrapes, body size, RSS. Compare: kube-state-metrics v2.15 CRS
        5.7 s sync, 59 ms scrape p50, 182 MB RSS.
    --record FILE: also write the stream to FILE; --kubeconfig: use a running cluster instead.

Results go to stdout as one JSON object per run; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.compiler import compile_config  # noqa: E402
from exporter.store import MetricsStore  # noqa: E402
from kube.client import KubeClient, LineSplitter  # noqa: E402
from kube.config import load_config  # noqa: E402
from kube.informer import Informer, WatchTarget  # noqa: E402
from kube.paths import resource_path  # noqa: E402

CONFIGMAP_CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "core-configmap"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "ConfigMap"},
        "metrics": [
            {"name": "created", "help": "Unix creation timestamp.", "type": "gauge",
             "field": {"path": ".metadata.creationTimestamp", "type": "DateTime"},
             "metricValue": {"valueFromPath": ".metadata.creationTimestamp"}},
            {"name": "info", "help": "ConfigMap information.", "type": "gauge",
             "labels": [{"key": "app", "valuePath": ".metadata.labels.app"},
                        {"key": "tier", "valuePath": ".metadata.labels.tier"}],
             "metricValue": {"value": 1}},
            {"name": "owned", "help": "Whether the ConfigMap names an owner.", "type": "gauge",
             "params": [{"key": "owner", "valuePath": ".metadata.annotations.owner"}],
             "metricValue": {"valueFromExpression": "int(owner != 'nil')"}},
        ],
    },
}


def configmap(i: int, *, rv: int, namespace: str = "bench") -> dict[str, Any]:
    """A ConfigMap as the API server returns it (1.20: with managedFields)."""
    return {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {
            "name": f"cm-{i}", "namespace": namespace, "uid": f"{i:08x}-1f2e-4a5b-8c9d-000000000000",
            "resourceVersion": str(rv), "creationTimestamp": "2026-11-22T03:00:00Z",
            "labels": {"app": f"app-{i % 50}", "tier": "backend"},
            "annotations": {"owner": f"team-{i % 7}"} if i % 2 else {},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                               "apiVersion": "v1", "time": "2026-11-22T03:00:00Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:data": {".": {}, "f:key": {}, "f:other": {}},
                                            "f:metadata": {"f:labels": {
                                                ".": {}, "f:app": {}, "f:tier": {}}}}}],
        },
        "data": {"key": f"value-{rv}", "other": "x" * 64},
    }


def synthesize_stream(events: int, *, objects: int = 2000) -> bytes:
    lines = []
    for n in range(events):
        i = n % objects
        kind = "ADDED" if n < objects else "MODIFIED"
        lines.append(orjson.dumps({"type": kind, "object": configmap(i, rv=1000 + n)}))
    return b"\n".join(lines) + b"\n"


RECORDED = ROOT / "bench" / "data" / "watch-configmaps-k8s-1.20.ndjson.gz"


def replayed(path: Path, *, repeat: int) -> bytes:
    """The recording, ``repeat`` times; later copies become MODIFIED events with newer versions."""
    import gzip

    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    events = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    top = max(int(e["object"]["metadata"]["resourceVersion"]) for e in events)
    out = []
    for copy in range(repeat):
        for e in events:
            if copy:
                e = {"type": "MODIFIED", "object": e["object"]}
                meta = dict(e["object"]["metadata"])
                meta["resourceVersion"] = str(int(meta["resourceVersion"]) + copy * top)
                e["object"] = {**e["object"], "metadata": meta}
            out.append(orjson.dumps(e))
    return b"\n".join(out) + b"\n"


class RecordedWatch:
    """A ``kube.api.ListWatcher`` whose watch replays a recorded NDJSON body in 64 KiB chunks."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.done = asyncio.Event()

    async def list(self, path: str, *, params: Mapping[str, Any] | None = None,
                   limit: int = 500) -> tuple[list[dict[str, Any]], str]:
        return [], "1"

    async def watch(self, path: str, *, params: Mapping[str, Any] | None = None, resource_version: str,
                    timeout_seconds: int = 300,
                    allow_bookmarks: bool = True) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        if self.done.is_set():
            await asyncio.sleep(3600)
        splitter = LineSplitter()
        body = self.body
        for start in range(0, len(body), 65536):
            for line in splitter.feed(body[start:start + 65536]):
                event = orjson.loads(line)
                yield event["type"], event["object"]
        self.done.set()


async def run_stream(body: bytes, events: int) -> dict[str, Any]:
    plan = compile_config(CONFIGMAP_CONFIG)
    store = MetricsStore()
    store.set_plan(plan)
    handled = 0

    def handler(event_type: str, obj: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1
        if event_type == "DELETED":
            store.delete(plan.name, obj["metadata"]["uid"])
        else:
            store.upsert(plan.name, obj)

    client = RecordedWatch(body)
    informer = Informer(client, WatchTarget(group="", version="v1", resource="configmaps"))
    informer.add_handler(handler)
    start, cpu_start = time.perf_counter(), time.process_time()
    informer.start()
    await client.done.wait()
    pipeline = time.perf_counter() - start
    pipeline_cpu = time.process_time() - cpu_start
    await informer.stop()
    assert handled == events, (handled, events)
    series = sum(s for _, _, s in store.stats())

    lines = body.splitlines()
    start = time.process_time()
    for line in lines:
        orjson.loads(line)
    decode_only = time.process_time() - start

    from kubernetes_asyncio.client import ApiClient
    from kubernetes_asyncio.watch import Watch

    async with ApiClient() as api:
        watch = Watch(return_type="V1ConfigMap")
        await watch._api_client.close()
        watch._api_client = api
        sample = lines[: min(len(lines), 20000)]
        start = time.process_time()
        for line in sample:
            watch.unmarshal_event(line, "V1ConfigMap")
        models = (time.process_time() - start) * len(lines) / len(sample)
    return {
        "benchmark": "watch stream, 3-metric config",
        "events": events,
        "stream_bytes": len(body),
        # wall clock (depends on what else the machine runs) and per CPU-second of this process
        "pipeline_events_per_s": round(events / pipeline),
        "pipeline_events_per_cpu_s": round(events / pipeline_cpu),
        "orjson_decode_only_events_per_cpu_s": round(events / decode_only),
        "kubernetes_asyncio_models_decode_only_events_per_cpu_s": round(events / models),
        "store_series": series,
    }


# ---- real cluster ---------------------------------------------------------------------------------

@contextmanager
def cluster(kubeconfig: str | None) -> Iterator[str]:
    if kubeconfig:
        yield kubeconfig
        return
    from tests.e2e.cluster import KubeCluster

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        kc = KubeCluster.start(Path(tmp), watch_cache_size=1000)
        try:
            yield str(kc.kubeconfig)
        finally:
            kc.stop()


async def create_all(kubeconfig: str, paths_objects: list[tuple[str, dict[str, Any]]], *,
                     concurrency: int = 48) -> float:
    start = time.perf_counter()
    async with KubeClient(load_config(kubeconfig=kubeconfig), timeout=60) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(path: str, obj: dict[str, Any]) -> None:
            async with gate:
                for attempt in range(5):
                    try:
                        await client.create(path, obj)
                        return
                    except Exception as err:  # 409 on a re-run, 429/5xx under load
                        if getattr(err, "status", 0) == 409:
                            return
                        await asyncio.sleep(0.2 * (attempt + 1))

        await asyncio.gather(*(one(p, o) for p, o in paths_objects))
    return time.perf_counter() - start


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) // 1024  # MiB
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), b""
    except OSError:
        return 0, b""


def measure_serve(kubeconfig: str, config: dict[str, Any], *, family: str, expected_lines: int,
                  scrapes: int) -> dict[str, Any]:
    """Start `panopticon serve`, time it to a complete /metrics, then scrape and measure."""
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "apiserver.cli", "serve", f"--kubeconfig={kubeconfig}",
                   "--controllers=exporter", f"--config={config_file}", f"--metrics-address=127.0.0.1:{port}",
                   "--log-level=warning"]
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT)
        try:
            while http_get(url + "/readyz")[0] != 200:
                if proc.poll() is not None:
                    raise SystemExit(f"serve exited with {proc.returncode}")
                time.sleep(0.02)
            status, body = http_get(url + "/metrics")
            synced = time.perf_counter() - start
            synced_cpu = cpu_seconds(proc.pid)
            # count only the benchmark's objects (the API server keeps a ConfigMap of its own)
            lines = sum(1 for line in body.splitlines()
                        if line.startswith(family.encode()) and b'namespace="bench' in line)
            assert lines == expected_lines, (lines, expected_lines)
            after_sync = proc_status(proc.pid)
            times = []
            for _ in range(scrapes):
                t0 = time.perf_counter()
                status, body = http_get(url + "/metrics")
                times.append(time.perf_counter() - t0)
                assert status == 200
            final = proc_status(proc.pid)
            return {
                "seconds_to_complete_metrics": round(synced, 3),
                "serve_cpu_seconds_to_complete": round(synced_cpu, 2),
                "scrape_p50_ms": round(statistics.median(times) * 1000, 2),
                "scrape_max_ms": round(max(times) * 1000, 2),
                "body_bytes": len(body),
                "series": lines,
                "rss_mib_after_sync": after_sync["VmRSS"],
                "rss_mib_after_scrapes": final["VmRSS"],
                "peak_rss_mib": final["VmHWM"],
            }
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def run_sync(kubeconfig: str, objects: int, scrapes: int) -> dict[str, Any]:
    items = [(resource_path(group="", version="v1", resource="configmaps", namespace="bench"),
              {k: v for k, v in configmap(i, rv=0).items() if k != "metadata"}
              | {"metadata": {"name": f"cm-{i}", "namespace": "bench",
                              "labels": {"app": f"app-{i % 50}", "tier": "backend"},
                              "annotations": {"owner": "t"} if i % 2 else {}}})
             for i in range(objects)]
    asyncio.run(create_all(kubeconfig, [("/api/v1/namespaces", {"metadata": {"name": "bench"}})]))
    created = asyncio.run(create_all(kubeconfig, items))
    result = measure_serve(kubeconfig, CONFIGMAP_CONFIG, family="core_configmap_", expected_lines=3 * objects,
                           scrapes=scrapes)
    name = f"initial sync of {objects} ConfigMaps"
    return {"benchmark": name, "create_seconds": round(created, 1), **result}


async def record_stream(kubeconfig: str, out: Path, *, objects: int, rounds: int) -> int:
    """Watch ConfigMaps of namespace "record" on the real server while creating ``objects`` and
    updating each ``rounds`` times; write the watch body (one event per line) to ``out``."""
    ns = "record"
    await create_all(kubeconfig, [("/api/v1/namespaces", {"metadata": {"name": ns}})])
    path = resource_path(group="", version="v1", resource="configmaps", namespace=ns)
    async with KubeClient(load_config(kubeconfig=kubeconfig), timeout=60) as client:
        _, rv = await client.list(path)
        expected = objects * (1 + rounds)
        lines: list[bytes] = []

        async def watch() -> None:
            async for event_type, obj in client.watch(path, resource_version=rv, timeout_seconds=600,
                                                      allow_bookmarks=False):
                lines.append(orjson.dumps({"type": event_type, "object": obj}))
                if len(lines) >= expected:
                    return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)

        def body(i: int, r: int) -> dict[str, Any]:
            meta = {"name": f"cm-{i}", "namespace": ns, "labels": {"app": f"app-{i % 50}", "tier": "backend"},
                    "annotations": {"owner": f"team-{i % 7}"} if i % 2 else {}}
            return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                    "data": {"key": f"value-{r}", "other": "x" * 64}}

        await create_all(kubeconfig, [(path, body(i, 0)) for i in range(objects)])
        gate = asyncio.Semaphore(48)

        async def update(i: int, r: int) -> None:
            async with gate:
                await client.patch(f"{path}/cm-{i}", {"data": {"key": f"value-{r}"}})

        for r in range(1, rounds + 1):
            await asyncio.gather(*(update(i, r) for i in range(objects)))
        await asyncio.wait_for(watcher, 120)
    out.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def widget_crd(group: str) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                               "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}]}}


WIDGET_CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
    "metadata": {"name": "bench-widgets"},
    "spec": {"targetRef": {"apiVersion": "bench.panopticon.io/v1", "kind": "Widget"}, "metrics": [
        {"name": "replicas", "help": "Desired replicas.", "type": "gauge",
         "field": {"path": ".spec.replicas", "type": "Integer"},
         "metricValue": {"valueFromPath": ".spec.replicas"}},
        {"name": "created", "help": "Creation time.", "type": "gauge",
         "field": {"path": ".metadata.creationTimestamp", "type": "DateTime"},
         "metricValue": {"valueFromPath": ".metadata.creationTimestamp"}},
        {"name": "info", "help": "Info.", "type": "gauge",
         "labels": [{"key": "color", "valuePath": ".spec.color"}], "metricValue": {"value": 1}},
        {"name": "status_phase", "help": "Phase.", "type": "gauge",
         "params": [{"key": "phase", "valuePath": ".status.phase"}],
         "states": {"labelKey": "phase", "values": [
             {"labelValue": p, "metricValue": {"valueFromExpression": f"int(phase == '{p}')"}}
             for p in ("Pending", "Running", "Failed")]}},
    ]},
}


def run_e2e(kubeconfig: str, objects: int, namespaces: int, scrapes: int) -> dict[str, Any]:
    import subprocess as sp

    group = "bench.panopticon.io"
    crd_file = Path(tempfile.mkstemp(suffix=".json")[1])
    crd_file.write_text(json.dumps(widget_crd(group)))
    sp.run(["kubectl", f"--kubeconfig={kubeconfig}", "apply", "-f", str(crd_file)],
           check=True, capture_output=True)
    sp.run(["kubectl", f"--kubeconfig={kubeconfig}", "wait", "--for=condition=Established",
            f"crd/widgets.{group}", "--timeout=60s"], check=True, capture_output=True)
    ns_names = [f"bench-{i}" for i in range(namespaces)]
    asyncio.run(create_all(kubeconfig, [("/api/v1/namespaces", {"metadata": {"name": n}}) for n in ns_names]))
    phases = ("Pending", "Running", "Failed")
    items = []
    for i in range(objects):
        ns = ns_names[i % namespaces]
        items.append((resource_path(group=group, version="v1", resource="widgets", namespace=ns), {
            "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": f"w-{i}", "namespace": ns},
            "spec": {"replicas": i % 5, "color": f"c{i % 9}"}, "status": {"phase": phases[i % 3]}}))
    created = asyncio.run(create_all(kubeconfig, items))
    result = measure_serve(kubeconfig, WIDGET_CONFIG, family="bench_panopticon_io_widget_",
                           expected_lines=6 * objects, scrapes=scrapes)
    return {"benchmark": f"end to end, {objects} custom objects in {namespaces} namespaces",
            "create_seconds": round(created, 1), **result,
            "kube_state_metrics_v2_15": {"seconds_to_sync": 5.7, "scrape_p50_ms": 59, "rss_mib": 182}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["stream", "record", "sync", "e2e", "all"])
    parser.add_argument("--record-objects", type=int, default=1000)
    parser.add_argument("--record-rounds", type=int, default=19)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--kubeconfig", help="use this running cluster instead of starting one")
    parser.add_argument("--stream-file", default=str(RECORDED),
                        help="recorded NDJSON watch body (.gz allowed) to replay / to write with record")
    parser.add_argument("--synthesize", action="store_true", help="synthesize --events events instead")
    parser.add_argument("--repeat", type=int, default=5, help="replay the recording this many times")
    args = parser.parse_args()
    os.environ.pop("KUBECONFIG", None)
    if args.mode == "record":
        if not args.stream_file:
            raise SystemExit("record needs --stream-file FILE to write")
        with cluster(args.kubeconfig) as kubeconfig:
            n = asyncio.run(record_stream(kubeconfig, Path(args.stream_file), objects=args.record_objects,
                                          rounds=args.record_rounds))
        print(json.dumps({"recorded_events": n, "file": args.stream_file}))
        return
    if args.mode in ("stream", "all"):
        if args.synthesize:
            body, events = synthesize_stream(args.events), args.events
        else:
            body = replayed(Path(args.stream_file), repeat=args.repeat)
            events = body.count(b"\n")
        result = asyncio.run(run_stream(body, events))
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result), flush=True)
    if args.mode in ("sync", "e2e", "all"):
        with cluster(args.kubeconfig) as kubeconfig:
            if args.mode in ("sync", "all"):
                result = run_sync(kubeconfig, args.objects, args.scrapes)
                result["load_average_1m"] = round(os.getloadavg()[0], 2)
                print(json.dumps(result), flush=True)
            if args.mode in ("e2e", "all"):
                result = run_e2e(kubeconfig, args.objects, args.namespaces, args.scrapes)
                result["load_average_1m"] = round(os.getloadavg()[0], 2)
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
