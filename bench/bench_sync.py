"""Initial sync, memory and scrapes under churn, each as a ratio to the raw LIST measured beside it.

    python bench/bench_sync.py [--sizes 10000,50000] [--runs 3] [--churn-seconds 40] [--rate 200]
                               [--kubeconfig K] [--out FILE]

Against the real kube-apiserver v1.20.2 (``tests/e2e/cluster.py``; a fresh cluster unless
``--kubeconfig``) with the Widget CRD and ``bench_informer.WIDGET_CONFIG`` (the same six series
per object as kube-state-metrics' Custom Resource State anchor), for each size:

- *raw LIST*: the request the informer makes (``GET .../widgets?resourceVersion=0``, same
  headers), timed with a plain HTTP client (``http.client``) from sending to the last byte; runs
  alternate with the syncs, so every ratio compares neighbours.
- *sync*: ``panopticon serve --controllers=exporter --config=...`` from ``Popen`` to a
  ``/metrics`` holding every expected series (interpreter start and imports included); peak RSS
  (``VmHWM``) at that moment, RSS after the first scrape and after a few more (steady).
- *the floor's parts*: the CPU of a fresh interpreter and of importing ``serve``'s modules
  (``start_floor``), the sync's time beyond the raw LIST against the 0.3x of it that 1.3x
  allows, and the exporter's CPU per object once its imports are done.
- *bytes per series*: (RSS after the first scrape - RSS of the same process serving an empty
  store) / series, and the slope between sizes.
- *churn* (largest size): a writer process PATCHes ``spec.replicas`` of random Widgets at
  ``--rate``/s while /metrics is scraped every 0.2 s in turn as text, OpenMetrics, text+gzip and
  OpenMetrics+gzip; every body is checked for completeness (6 series per Widget) and afterwards
  with ``promtool check metrics``. Beside each latency: the exporter's own CPU per scrape (its
  event loop's thread, minus what the watch events cost in a window without scrapes), so the
  exporter's share can be told from the client's and from waiting for a CPU.

The project is byte-compiled first, as the container image is (``--no-compile``: not).

Prints one JSON object per measurement and a summary; bench/README.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_informer import (  # noqa: E402
    WIDGET_CONFIG,
    cluster,
    cpu_seconds,
    create_all,
    free_port,
    proc_status,
    widget_crd,
)
from kube.client import KubeClient, build_ssl_context  # noqa: E402
from kube.config import load_config  # noqa: E402
from kube.paths import resource_path  # noqa: E402
from tests.expo_checks import _om_help_to_text as om_to_text  # noqa: E402

GROUP = "bench.panopticon.io"
FAMILY = b"bench_panopticon_io_widget_"
SERIES_PER_OBJECT = 6
NAMESPACES = 10
LIST_PATH = resource_path(group=GROUP, version="v1", resource="widgets")
# What the informer's client (aiohttp) sends. kube-apiserver then gzips a large answer (level 1,
# after encoding all of it), and bytes start to flow while it compresses; client-go asks for gzip
# the same way. IDENTITY_HEADERS: the same LIST uncompressed, reported beside it.
INFORMER_HEADERS = {"Accept": "application/json", "User-Agent": "panopticon",
                    "Accept-Encoding": "gzip, deflate"}
IDENTITY_HEADERS = {**INFORMER_HEADERS, "Accept-Encoding": "identity"}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


# ---- cluster content ---------------------------------------------------------------------------

def raw_list(kubeconfig: str, *, path: str = LIST_PATH,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The informer's first LIST, by a plain HTTP client: seconds to the first and the last byte."""
    config = load_config(kubeconfig=kubeconfig)
    url = urlsplit(config.server)
    ctx = build_ssl_context(config)
    hdrs = dict(headers or INFORMER_HEADERS)
    if config.token:
        hdrs["Authorization"] = f"Bearer {config.token}"
    conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, context=ctx, timeout=120)
    try:
        conn.connect()
        start = time.perf_counter()
        conn.request("GET", path + "?" + urlencode({"resourceVersion": "0"}), headers=hdrs)
        resp = conn.getresponse()
        first = resp.read(1)
        ttfb = time.perf_counter() - start
        rest = resp.read()
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    assert resp.status == 200, resp.status
    body = first + rest
    if resp.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return {"seconds": round(seconds, 3), "first_byte_seconds": round(ttfb, 3),
            "wire_bytes": len(first) + len(rest), "json_bytes": len(body),
            "content_encoding": resp.getheader("Content-Encoding") or "identity", "_body": body}


def widget_names(kubeconfig: str) -> set[tuple[str, str]]:
    import orjson

    body = raw_list(kubeconfig)["_body"]
    return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in orjson.loads(body)["items"]}


def ensure_crds(kubeconfig: str) -> None:
    """The Widget CRD and the empty one of the baseline (``empty_crd``), established."""
    crd_file = Path(tempfile.mkstemp(suffix=".json")[1])
    crds = [widget_crd(GROUP), empty_crd()]
    crd_file.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": crds}))
    kubectl = ["kubectl", f"--kubeconfig={kubeconfig}"]
    subprocess.run([*kubectl, "apply", "-f", str(crd_file)], check=True, capture_output=True)
    for plural in ("widgets", EMPTY_KIND[0]):
        subprocess.run([*kubectl, "wait", "--for=condition=Established", f"crd/{plural}.{GROUP}",
                        "--timeout=60s"], check=True, capture_output=True)
    crd_file.unlink()


def ensure_widgets(kubeconfig: str, count: int) -> dict[str, Any]:
    """The CRDs, NAMESPACES namespaces and Widgets w-0 .. w-(count-1) (only the missing are created)."""
    ensure_crds(kubeconfig)
    namespaces = [f"bench-{i}" for i in range(NAMESPACES)]
    asyncio.run(create_all(kubeconfig, [("/api/v1/namespaces", {"metadata": {"name": n}})
                                        for n in namespaces]))
    have = widget_names(kubeconfig)
    phases = ("Pending", "Running", "Failed")
    items = []
    for i in range(count):
        ns = namespaces[i % NAMESPACES]
        if (ns, f"w-{i}") in have:
            continue
        items.append((resource_path(group=GROUP, version="v1", resource="widgets", namespace=ns), {
            "apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": f"w-{i}", "namespace": ns},
            "spec": {"replicas": i % 5, "color": f"c{i % 9}"}, "status": {"phase": phases[i % 3]}}))
    created = asyncio.run(create_all(kubeconfig, items)) if items else 0.0
    total = len(widget_names(kubeconfig))
    assert total >= count, (total, count)
    return {"created": len(items), "create_seconds": round(created, 1), "widgets": total}


# ---- the exporter process ----------------------------------------------------------------------

def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return int(resp.status), resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return int(err.code), b"", {}
    except OSError:
        return 0, b"", {}


def series_of(body: bytes) -> int:
    """Sample lines of the Widget families (the informer's own telemetry is not counted)."""
    return body.count(b"\n" + FAMILY) + body.startswith(FAMILY)


PACKAGES = ("apiserver", "certs", "exporter", "kube", "thanos_operator")


def compile_bytecode() -> None:
    """Byte-compile the project as the container image does (Containerfile: ``compileall``).

    The sandbox sets PYTHONDONTWRITEBYTECODE, so without this every ``serve`` would compile
    its ~100 modules from source at start-up (~2 s of CPU), which a deployed process never does.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(ROOT / p) for p in PACKAGES)],
                   check=True)


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of a process's main thread (the event loop), ns-precise (``schedstat``)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


POLL_SECONDS = 0.02


class Serve:
    """One ``panopticon serve`` subprocess exporting the Widgets."""

    def __init__(self, kubeconfig: str, config: dict[str, Any], tmp: Path) -> None:
        config_file = tmp / f"config-{time.monotonic_ns()}.json"
        config_file.write_text(json.dumps(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "apiserver.cli", "serve", f"--kubeconfig={kubeconfig}",
                        "--controllers=exporter", f"--config={config_file}",
                        f"--metrics-address=127.0.0.1:{self.port}", "--log-level=warning"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        start = time.perf_counter()
        self.proc = subprocess.Popen(self.command, cwd=ROOT)
        return start

    def wait_complete(self, expected: int, start: float, timeout: float = 300) -> tuple[float, bytes]:
        assert self.proc is not None
        while http_get(self.url + "/readyz")[0] != 200:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited with {self.proc.returncode}")
            if time.perf_counter() - start > timeout:
                raise SystemExit("serve did not become ready")
            # Every poll costs the syncing process ~1 ms of its CPU (a connection and a request):
            # at 5 ms it took ~7% of it (py-spy). 20 ms: at most 20 ms late, ~2% of its CPU.
            time.sleep(POLL_SECONDS)
        while True:
            status, body, _ = http_get(self.url + "/metrics")
            if status == 200 and series_of(body) == expected:
                return time.perf_counter() - start, body
            time.sleep(0.005)

    def status(self) -> dict[str, int]:
        assert self.proc is not None
        return proc_status(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


EMPTY_KIND = ("gadgets", "Gadget")  # a second Widget-like CRD that never has objects


def empty_crd() -> dict[str, Any]:
    crd = widget_crd(GROUP)
    plural, kind = EMPTY_KIND
    crd["metadata"]["name"] = f"{plural}.{GROUP}"
    crd["spec"]["names"] = {"plural": plural, "singular": kind.lower(), "kind": kind,
                            "listKind": f"{kind}List"}
    return crd


def empty_config() -> dict[str, Any]:
    """The Widget configuration aimed at a kind without objects: the process's baseline RSS.

    A CRD like the Widget's (so the same early LIST, the same schema check of a CRD, not
    /openapi/v2: that costs ~4 MiB of RSS, more than 10,000 Widgets' series), never populated.
    """
    config = json.loads(json.dumps(WIDGET_CONFIG))
    config["spec"]["targetRef"]["kind"] = EMPTY_KIND[1]
    config["metadata"]["name"] = "bench-empty"
    return config


def sync_once(kubeconfig: str, objects: int, tmp: Path, *, scrapes: int = 5) -> dict[str, Any]:
    serve = Serve(kubeconfig, WIDGET_CONFIG, tmp)
    start = serve.start()
    try:
        seconds, body = serve.wait_complete(SERIES_PER_OBJECT * objects, start)
        at_complete = serve.status()  # the complete /metrics was the first scrape
        assert serve.proc is not None
        cpu = cpu_seconds(serve.proc.pid)
        for _ in range(scrapes):
            status, body, _ = http_get(serve.url + "/metrics")
            assert status == 200 and series_of(body) == SERIES_PER_OBJECT * objects
        time.sleep(1.0)
        steady = serve.status()
        return {"sync_seconds": round(seconds, 3), "serve_cpu_seconds_to_complete": round(cpu, 2),
                "peak_rss_mib_at_complete": at_complete["VmHWM"],
                "rss_mib_after_first_scrape": at_complete["VmRSS"], "rss_mib_steady": steady["VmRSS"],
                "peak_rss_mib": steady["VmHWM"], "body_bytes": len(body)}
    finally:
        serve.stop()


def baseline_rss(kubeconfig: str, tmp: Path) -> int:
    serve = Serve(kubeconfig, empty_config(), tmp)
    start = serve.start()
    try:
        serve.wait_complete(0, start)
        for _ in range(3):
            http_get(serve.url + "/metrics")
        time.sleep(0.5)
        return serve.status()["VmRSS"]
    finally:
        serve.stop()


# ---- churn ---------------------------------------------------------------------------------------

async def write_churn(kubeconfig: str, *, objects: int, rate: float, seconds: float) -> dict[str, Any]:
    """PATCH spec.replicas of random Widgets at ``rate``/s for ``seconds`` (the writer process)."""
    rng = random.Random(16)
    done = failed = 0
    async with KubeClient(load_config(kubeconfig=kubeconfig), timeout=30) as client:
        gate = asyncio.Semaphore(64)
        tasks: set[asyncio.Task[None]] = set()

        async def one(i: int, replicas: int) -> None:
            nonlocal done, failed
            async with gate:
                path = resource_path(group=GROUP, version="v1", resource="widgets",
                                     namespace=f"bench-{i % NAMESPACES}", name=f"w-{i}")
                try:
                    await client.patch(path, {"spec": {"replicas": replicas}})
                    done += 1
                except Exception:
                    failed += 1

        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while (now := loop.time()) - start < seconds:
            due = int((now - start) * rate)
            while n < due:
                task = loop.create_task(one(rng.randrange(objects), rng.randrange(100, 10_000)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    return {"patches": done, "failed": failed, "achieved_rate": round(done / elapsed, 1)}


VARIANTS = {
    "text": {},
    "openmetrics": {"Accept": "application/openmetrics-text; version=1.0.0"},
    "text+gzip": {"Accept-Encoding": "gzip"},
    "openmetrics+gzip": {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def churn(kubeconfig: str, objects: int, tmp: Path, *, rate: float, seconds: float,
          interval: float = 0.2) -> dict[str, Any]:
    serve = Serve(kubeconfig, WIDGET_CONFIG, tmp)
    start = serve.start()
    expected = SERIES_PER_OBJECT * objects
    bodies = tmp / "bodies"
    bodies.mkdir(exist_ok=True)
    try:
        serve.wait_complete(expected, start)
        writer = subprocess.Popen([sys.executable, __file__, "churn-writer", f"--kubeconfig={kubeconfig}",
                                   f"--objects={objects}", f"--rate={rate}", f"--churn-seconds={seconds}"],
                                  stdout=subprocess.PIPE, cwd=ROOT)
        time.sleep(2.0)  # let the rate settle
        assert serve.proc is not None
        pid = serve.proc.pid
        events_from = (time.perf_counter(), main_thread_cpu(pid))
        time.sleep(2.0)  # the exporter's CPU for the watch events alone (no scrapes)
        events_cpu_rate = (main_thread_cpu(pid) - events_from[1]) / (time.perf_counter() - events_from[0])
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        scrape_cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        incomplete: list[str] = []
        saved: list[Path] = []
        names = list(VARIANTS)
        i = 0
        load_start = loadavg()
        end = time.perf_counter() + seconds - 4.0
        while time.perf_counter() < end:
            variant = names[i % len(names)]
            t0, cpu0 = time.perf_counter(), main_thread_cpu(pid)
            status, body, headers = http_get(serve.url + "/metrics", VARIANTS[variant])
            elapsed = time.perf_counter() - t0
            scrape_cpu[variant].append(main_thread_cpu(pid) - cpu0 - events_cpu_rate * elapsed)
            times[variant].append(elapsed)
            if headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if status != 200 or series_of(body) != expected or (
                    variant.startswith("openmetrics") and not body.endswith(b"# EOF\n")):
                incomplete.append(f"{variant} #{i}: status {status}, {series_of(body)} series")
            path = bodies / f"{i:04d}-{variant.replace('+', '-')}.txt"
            path.write_bytes(body)
            saved.append(path)
            i += 1
            time.sleep(max(0.0, interval - elapsed))
        load_end = loadavg()
        out, _ = writer.communicate(timeout=120)
        written = json.loads(out.decode().strip().splitlines()[-1])
        rss = serve.status()
    finally:
        serve.stop()
    promtool_failures = []
    for path in saved:
        if "openmetrics" in path.name:
            # promtool reads the text format: the translation the tests use (tests/expo_checks.py:
            # no "# EOF", counters announced with _total, no _created samples)
            path.write_bytes(om_to_text(path.read_bytes()))
        with path.open("rb") as fh:
            result = subprocess.run(["promtool", "check", "metrics"], stdin=fh, capture_output=True)
        if result.returncode != 0:  # 1: does not parse, 3: lint findings
            output = (result.stdout + result.stderr).decode()[:300]
            promtool_failures.append(f"{path.name}: exit {result.returncode}: {output}")
        path.unlink()
    summary = {}
    for variant, values in times.items():
        if values:
            summary[variant] = {"scrapes": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
                                "p99_ms": round(percentile(values, 0.99) * 1000, 1),
                                "max_ms": round(max(values) * 1000, 1),
                                "exporter_cpu_ms_per_scrape_p50": round(
                                    statistics.median(scrape_cpu[variant]) * 1000, 1)}
    return {"benchmark": f"scrapes under churn, {objects} Widgets", "writer": written, "scrapes": summary,
            "incomplete": incomplete, "promtool_failures": promtool_failures, "promtool_checked": len(saved),
            "rss_mib_end": rss["VmRSS"], "peak_rss_mib": rss["VmHWM"],
            "exporter_cpu_share_for_events": round(events_cpu_rate, 3),
            "loadavg_start": load_start, "loadavg_end": load_end}


# ---- main ----------------------------------------------------------------------------------------

def start_floor(runs: int = 3) -> dict[str, float]:
    """CPU seconds a fresh interpreter spends before ``serve`` can consume anything: starting up,
    and importing ``apiserver.commands.serve`` (aiohttp, pydantic and the models, the compiler,
    the store). Best of ``runs``. One GIL: this and the consumption of the LIST add up on one
    core, so once they exceed the LIST no overlap can hide them."""
    def cpu(code: str) -> float:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             check=True)
        return float(out.stdout)

    interpreter = min(cpu("import time; print(time.process_time())") for _ in range(runs))
    imports = min(cpu("import time; c = time.process_time(); import apiserver.commands.serve; "
                      "print(time.process_time() - c)") for _ in range(runs))
    return {"interpreter_cpu_seconds": round(interpreter, 3), "serve_imports_cpu_seconds": round(imports, 3)}


def measure_size(kubeconfig: str, objects: int, tmp: Path, runs: int) -> dict[str, Any]:
    setup = ensure_widgets(kubeconfig, objects)
    assert setup["widgets"] == objects, f"{setup['widgets']} Widgets in the cluster, want exactly {objects}"
    raw_list(kubeconfig)  # warm the watch cache's encoding path once
    lists: list[dict[str, Any]] = []
    identity: list[dict[str, Any]] = []
    syncs: list[dict[str, Any]] = []
    for _ in range(runs):
        lists.append(raw_list(kubeconfig))
        identity.append(raw_list(kubeconfig, headers=IDENTITY_HEADERS))
        syncs.append(sync_once(kubeconfig, objects, tmp))
    lists.append(raw_list(kubeconfig))
    list_s = statistics.median(x["seconds"] for x in lists)
    sync_s = statistics.median(x["sync_seconds"] for x in syncs)
    result = {
        "benchmark": f"initial sync, {objects} Widgets", "objects": objects,
        "series": SERIES_PER_OBJECT * objects,
        "raw_list_seconds": [x["seconds"] for x in lists],
        "raw_list_first_byte_seconds": [x["first_byte_seconds"] for x in lists],
        "raw_list_json_bytes": lists[0]["json_bytes"], "raw_list_wire_bytes": lists[0]["wire_bytes"],
        "raw_list_identity_seconds": [x["seconds"] for x in identity],
        "sync_over_identity_list": round(sync_s / statistics.median(x["seconds"] for x in identity), 2),
        "sync_seconds": [x["sync_seconds"] for x in syncs],
        "serve_cpu_seconds_to_complete": [x["serve_cpu_seconds_to_complete"] for x in syncs],
        "sync_over_list": round(sync_s / list_s, 2),
        "sync_over_list_per_run": [round(s["sync_seconds"] / ((a["seconds"] + b["seconds"]) / 2), 2)
                                   for s, a, b in zip(syncs, lists, lists[1:], strict=False)],
        "peak_rss_mib": max(x["peak_rss_mib"] for x in syncs),
        "rss_mib_after_first_scrape": statistics.median(x["rss_mib_after_first_scrape"] for x in syncs),
        "rss_mib_steady": statistics.median(x["rss_mib_steady"] for x in syncs),
        "body_bytes": syncs[0]["body_bytes"],
        "loadavg": loadavg(),
    }
    # What the sync spends beyond its floor, and what 1.3x would leave for it: after the raw
    # LIST's last byte only the consumption of what arrived is left, so the start-up (hidden
    # behind the server's encoding when it is shorter than the LIST) and the consumption of
    # the objects (which cannot start before the first byte, at ~90% of the LIST) must fit.
    floor = start_floor()
    cpu = statistics.median(x["serve_cpu_seconds_to_complete"] for x in syncs)
    first_byte = statistics.median(x["first_byte_seconds"] for x in lists)
    result.update({
        **floor,
        "sync_minus_list_seconds": round(sync_s - list_s, 3),
        "allowed_by_1_3x_seconds": round(0.3 * list_s, 3),
        "list_streaming_seconds": round(list_s - first_byte, 3),
        "serve_cpu_after_imports_us_per_object": round(
            (cpu - floor["interpreter_cpu_seconds"] - floor["serve_imports_cpu_seconds"]) * 1e6 / objects, 1),
    })
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="all",
                        choices=["all", "list", "sync", "churn", "churn-writer"])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--objects", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--churn-seconds", type=float, default=40.0)
    parser.add_argument("--kubeconfig", help="use this running cluster instead of starting one")
    parser.add_argument("--out", help="also append the JSON results to this file")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile the project first (see compile_bytecode)")
    args = parser.parse_args()
    os.environ.pop("KUBECONFIG", None)
    if args.mode == "churn-writer":
        print(json.dumps(asyncio.run(write_churn(args.kubeconfig, objects=args.objects, rate=args.rate,
                                                 seconds=args.churn_seconds))), flush=True)
        return

    def emit(result: dict[str, Any]) -> None:
        result = {k: v for k, v in result.items() if not k.startswith("_")}
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(line + "\n")

    sizes = [int(s) for s in args.sizes.split(",")]
    if args.no_compile:
        emit({"note": "project not byte-compiled: every serve compiles its modules from source"})
    else:
        compile_bytecode()
    with cluster(args.kubeconfig) as kubeconfig, tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp_dir:
        tmp = Path(tmp_dir)
        if args.mode == "list":
            for size in sizes:
                ensure_widgets(kubeconfig, size)
                for headers in (INFORMER_HEADERS, IDENTITY_HEADERS):
                    for _ in range(3):
                        emit({"objects": size, **raw_list(kubeconfig, headers=headers), "loadavg": loadavg()})
            return
        results: dict[int, dict[str, Any]] = {}
        if args.mode in ("all", "sync"):
            ensure_crds(kubeconfig)
            base = baseline_rss(kubeconfig, tmp)
            emit({"benchmark": "baseline RSS (empty store)", "rss_mib": base, "loadavg": loadavg()})
            for size in sizes:
                result = measure_size(kubeconfig, size, tmp, args.runs)
                result["bytes_per_series_incl_body"] = round(
                    (result["rss_mib_after_first_scrape"] - base) * 2**20 / result["series"], 1)
                result["bytes_per_series_steady"] = round(
                    (result["rss_mib_steady"] - base) * 2**20 / result["series"], 1)
                results[size] = result
                emit(result)
            if len(results) >= 2:
                small, large = results[min(results)], results[max(results)]
                emit({"benchmark": f"growth {min(results)} -> {max(results)}",
                      "objects_x": max(results) / min(results),
                      "sync_x": round(statistics.median(large["sync_seconds"])
                                      / statistics.median(small["sync_seconds"]), 2),
                      "raw_list_x": round(statistics.median(large["raw_list_seconds"])
                                          / statistics.median(small["raw_list_seconds"]), 2),
                      "peak_rss_x": round(large["peak_rss_mib"] / small["peak_rss_mib"], 2),
                      "bytes_per_series_slope": round(
                          (large["rss_mib_after_first_scrape"] - small["rss_mib_after_first_scrape"]) * 2**20
                          / (large["series"] - small["series"]), 1)})
        if args.mode in ("all", "churn"):
            size = max(sizes) if args.mode == "all" else args.objects
            ensure_widgets(kubeconfig, size)
            emit(churn(kubeconfig, size, tmp, rate=args.rate, seconds=args.churn_seconds))


if __name__ == "__main__":
    main()
