"""Admission webhook benchmark: p50/p99 latency of AdmissionReviews at N concurrent clients over TLS.

    ~/.cache/panopticon/venv/bin/python bench/bench_admission.py CONFIG_DIR [--clients 50] \
        [--seconds 10]

CONFIG_DIR is a directory of MetricsConfigurations (e.g. ``../shared/real_configs/configs``);
every configuration in it is a payload. Two processes on 127.0.0.1, so client and server do not
share a GIL:

- the **server** (this script with ``--serve``): ``apiserver.server.build_app`` with the admission
  webhooks mounted as ``serve`` mounts them (real authenticator, SAR authorizer with the webhook
  paths always allowed), over the reloading TLS context; its ``PlanIndex`` holds every
  configuration of CONFIG_DIR that compiles (so each review also checks family clashes against
  all of them, as in a cluster running those configurations); no target schemas (the schema
  lookup is cached per target; its cost is the kube-apiserver's);
- the **load generator** (this process): ``--clients`` concurrent aiohttp clients over TLS with
  keep-alive, as the kube-apiserver connects; each sends ``admission.k8s.io/v1`` reviews, CREATE
  and UPDATE (object + oldObject) alternately, cycling over the payloads.

Prints one JSON document: requests, throughput, latency p50/p90/p99/max, allowed/denied counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATH = "/validate/metrics.appscode.com/v1alpha1/metricsconfigurations"


def load_configs(directory: str) -> list[dict[str, Any]]:
    from exporter.sources import is_config, load_documents

    return [dict(doc.data) for doc in load_documents([directory]) if is_config(doc.data)]


async def serve(directory: str, port_file: Path, cert_dir: Path) -> None:
    from apiserver.admission import AdmissionWebhooks
    from apiserver.authconfig import AuthSettings, with_roots
    from apiserver.authn import Authenticator
    from apiserver.authz import Authorizer
    from apiserver.server import REQUEST_USER, HttpsServer, build_app
    from apiserver.views import ApiViews
    from certs.generate import self_signed_serving, write_pair
    from certs.reload import ReloadingServerTLS
    from exporter.compiler import CompileError, compile_config
    from exporter.exposition import Exposition, parse_series
    from exporter.store import MetricsStore

    plans = []
    for obj in load_configs(directory):
        with contextlib.suppress(CompileError):
            plans.append(compile_config(obj))
    ca, pair = self_signed_serving(hosts=("localhost",), ips=("127.0.0.1",))
    write_pair(cert_dir, "ca", ca)
    store = MetricsStore()
    webhooks = AdmissionWebhooks(plans=lambda: plans, user_of=lambda r: r.get(REQUEST_USER))
    app = build_app(views=ApiViews(store), exposition=Exposition(store), parse_series=parse_series,
                    authenticator=Authenticator(with_roots(AuthSettings())),
                    authorizer=Authorizer(None, always_allow_paths=["/healthz", *webhooks.paths]),
                    extra_routes=webhooks.routes())
    server = HttpsServer(app, ReloadingServerTLS(pair=pair, client_ca_pem=b""), host="127.0.0.1", port=0)
    await server.start()
    port_file.write_text(str(server.port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def cpu() -> None:  # SIGUSR1: append this process's CPU seconds so far
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with (cert_dir / "cpu").open("a") as fh:
            fh.write(f"{usage.ru_utime + usage.ru_stime}\n")

    loop.add_signal_handler(signal.SIGUSR1, cpu)
    await stop.wait()
    await server.stop()


def review(obj: dict[str, Any], i: int) -> bytes:
    update = i % 2 == 1
    request = {"uid": f"bench-{i}", "operation": "UPDATE" if update else "CREATE",
               "kind": {"group": "metrics.appscode.com", "version": "v1alpha1",
                        "kind": "MetricsConfiguration"},
               "resource": {"group": "metrics.appscode.com", "version": "v1alpha1",
                            "resource": "metricsconfigurations"},
               "name": obj["metadata"]["name"], "object": obj, "oldObject": obj if update else None,
               "userInfo": {"username": "bench"}, "dryRun": False}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": request}).encode()


async def load(port: int, ca_file: Path, payloads: list[bytes], *, clients: int, seconds: float,
               server_pid: int) -> dict[str, Any]:
    import aiohttp

    ctx = ssl.create_default_context(cafile=str(ca_file))
    latencies: list[float] = []
    verdicts = {"allowed": 0, "denied": 0, "errors": 0}
    url = f"https://127.0.0.1:{port}{PATH}"
    headers = {"Content-Type": "application/json"}
    deadline = 0.0
    counter = iter(range(10**9))

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            started = time.perf_counter()
            async with session.post(url, data=payloads[i % len(payloads)], headers=headers) as r:
                body = await r.read()
            latencies.append(time.perf_counter() - started)
            if r.status != 200:
                verdicts["errors"] += 1
            else:
                verdicts["allowed" if json.loads(body)["response"]["allowed"] else "denied"] += 1

    connector = aiohttp.TCPConnector(ssl=ctx, limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm-up: one review per connection (TLS handshakes); then the measured window.
        async def warm() -> None:
            async with session.post(url, data=payloads[0], headers=headers) as r:
                await r.read()

        await asyncio.gather(*(warm() for _ in range(clients)))  # every connection handshaken
        latencies.clear()
        os.kill(server_pid, signal.SIGUSR1)
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
        os.kill(server_pid, signal.SIGUSR1)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies), "seconds": round(elapsed, 2),
        "reviews_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0),
                       "mean": round(statistics.fmean(latencies) * 1000, 2)},
        **verdicts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", help="directory of MetricsConfigurations (the payloads)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        work = Path(args.serve)
        asyncio.run(serve(args.configs, work / "port", work))
        return 0
    configs = load_configs(args.configs)
    if not configs:
        print(f"no MetricsConfiguration under {args.configs}", file=sys.stderr)
        return 2
    payloads = [review(obj, i) for i, obj in enumerate(configs * 2)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, __file__, args.configs, "--serve", tmp], env=env)
        try:
            deadline = time.monotonic() + 60
            while not (work / "port").exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the bench server did not start")
                time.sleep(0.1)
            port = int((work / "port").read_text())
            result = asyncio.run(load(port, work / "ca.crt", payloads, clients=args.clients,
                                      seconds=args.seconds, server_pid=server.pid))
            deadline = time.monotonic() + 10
            while len((work / "cpu").read_text().split()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            before, after = (float(x) for x in (work / "cpu").read_text().split()[:2])
            result["server_cpu_ms_per_review"] = round((after - before) * 1000 / result["requests"], 2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(15)
    sizes = sorted(len(p) for p in payloads)
    print(json.dumps({
        "configs": len(configs), "clients": args.clients,
        "payload_bytes": {"median": sizes[len(sizes) // 2], "max": sizes[-1]},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        **result,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
