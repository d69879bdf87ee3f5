"""Extension API server benchmark: throughput and p99 over TLS, with and without a warm SAR cache.

    ~/.cache/panopticon/venv/bin/python bench/bench_apiserver.py [--seconds 12] [--clients 50] \
        [--objects 1000] [--kubeconfig PATH] [--scenarios metrics|autoscaling|all]

Three processes on 127.0.0.1, so client and server do not share a GIL:
- the **server**: ``apiserver.server.build_app`` over a ``MetricsStore`` filled with ``--objects``
  Deployments rendered by ``examples/configs/apps-deployment.yaml`` (the real compiler), served
  with the reloading TLS context, the real authenticator (front-proxy certificate verification)
  and the real authorizer with its SubjectAccessReview cache, sending reviews through
  ``apiserver.reviews.KubeReviewer`` and ``kube.client.KubeClient``;
- the **SubjectAccessReview endpoint**: by default a fake kube-apiserver endpoint (plain HTTP,
  answers ``allowed: true``, counts reviews). With ``--kubeconfig`` the reviews go to a real
  kube-apiserver instead (e.g. ``scripts/test-cluster up DIR``); the bench then grants its users
  ``list`` on the group with kubectl first. Review counts come from the server's authorizer;
- the **load generator** (this process): ``--clients`` concurrent aiohttp clients, each a
  distinct identity (``X-Remote-User: bench-user-<i>``) behind a front-proxy client certificate
  over TLS with keep-alive, as the kube-aggregator connects.

Scenarios (``--scenarios metrics``, the default): the Prometheus path (``GET .../prometheus``,
gzip, as Prometheus asks) and ``kubectl get metricfamilies`` (list with the Table Accept header).
``--scenarios autoscaling``: the HPA's lookups (docs/autoscaling.md) - one Deployment's custom
metric (``custom.metrics.k8s.io/v1beta2/namespaces/NS/deployments.apps/NAME/<family>``), the
``*`` form over a namespace's 50 Deployments with a label selector on the objects, and an external
metric with a selector on series labels. Each with the authorizer's cache TTL at 10 s (warm: the
cache is primed with one request per identity first) and at 0 s (cold: every request sends a
SubjectAccessReview).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from apiserver.authconfig import AuthSettings
    from certs.reload import ReloadingServerTLS
    from exporter.store import MetricsStore

GV = "/apis/metrics.panopticon.io/v1alpha1"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
CM = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-7"
EM = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-7"
REPLICAS = "apps_deployment_kube_deployment_status_replicas"
SCENARIOS = {
    "metrics": {
        "prometheus": (f"{GV}/prometheus", {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "gzip"}),
        "get metricfamilies": (f"{GV}/metricfamilies?limit=500", {"Accept": TABLE}),
    },
    "autoscaling": {
        "custom object": (f"{CM}/deployments.apps/app-7/{REPLICAS}", {}),
        "custom * (50 objects)": (f"{CM}/deployments.apps/%2A/{REPLICAS}?labelSelector=tier%3Dweb", {}),
        "external": (f"{EM}/{REPLICAS}?labelSelector=deployment%3Dapp-7", {}),
    },
}


# ---------------------------------------------------------------------------------------- objects


def deployment(i: int) -> dict[str, Any]:
    ns = f"ns-{i % 20}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"app-{i}",
            "namespace": ns,
            "uid": f"uid-{i}",
            "resourceVersion": str(i + 1),
            "labels": {"app": f"app-{i}", "tier": "web"},
        },
        "spec": {
            "replicas": 3,
            "paused": False,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        },
        "status": {
            "replicas": 3,
            "readyReplicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"},
            ],
        },
    }


# ---------------------------------------------------------------------------------------- fake SAR


async def fake_sar(port: int) -> None:
    from aiohttp import web

    count = 0

    async def review(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        body = await request.json()
        body["status"] = {"allowed": True, "reason": "bench"}
        return web.json_response(body, status=201)

    async def counter(_request: web.Request) -> web.Response:
        return web.json_response({"count": count})

    app = web.Application()
    app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    app.router.add_get("/count", counter)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


# ---------------------------------------------------------------------------------------- server


def bench_store(objects: int) -> MetricsStore:
    """A store holding the apps-deployment example's families for ``objects`` Deployments."""
    from exporter.compiler import compile_config
    from exporter.store import MetricsStore

    store = MetricsStore()
    plan = compile_config(yaml.safe_load((ROOT / "examples/configs/apps-deployment.yaml").read_text()))
    store.set_plan(plan, objects=[deployment(i) for i in range(objects)])
    return store


def front_proxy_settings(pki: Path) -> AuthSettings:
    """Authentication that trusts the front proxy of ``make_pki`` (and the system roots)."""
    from apiserver.authconfig import AuthSettings, with_roots

    return with_roots(
        AuthSettings(
            requestheader_ca_pem=(pki / "front-proxy-ca.crt").read_bytes(),
            allowed_names=frozenset({"front-proxy-client"}),
        )
    )


def serving_tls(pki: Path, settings: AuthSettings) -> ReloadingServerTLS:
    """The serving certificate of ``make_pki``, asking clients for the certificates ``settings`` trusts."""
    from certs.reload import ReloadingServerTLS

    return ReloadingServerTLS(
        cert_file=pki / "serving.crt", key_file=pki / "serving.key", client_ca_pem=settings.tls_client_ca_pem
    )


async def serve(args: argparse.Namespace) -> None:
    import logging

    from aiohttp import web

    from apiserver.authn import Authenticator
    from apiserver.authz import Authorizer
    from apiserver.metric_lookup import StateMetrics
    from apiserver.metrics_apis import metrics_api_groups
    from apiserver.reviews import KubeReviewer
    from apiserver.server import build_app
    from apiserver.views import ApiViews, guess_resource
    from exporter.exposition import Exposition, parse_series
    from kube.client import KubeClient
    from kube.config import ClientConfig, load_config

    logging.basicConfig(level=logging.ERROR)
    pki = Path(args.pki)
    store = bench_store(args.objects)
    config = load_config(kubeconfig=args.kubeconfig) if args.kubeconfig else ClientConfig(server=args.sar_url)
    client = KubeClient(config)
    reviewer = KubeReviewer(client)
    settings = front_proxy_settings(pki)
    authorizer = Authorizer(reviewer, always_allow_paths=["/healthz", "/livez", "/readyz"], ttl=args.ttl)
    views = ApiViews(store)
    state = StateMetrics(store, views, parse_series=parse_series, namer=guess_resource)
    app = build_app(
        views=views,
        exposition=Exposition(store),
        parse_series=parse_series,
        authenticator=Authenticator(settings),
        authorizer=authorizer,
        groups=metrics_api_groups(state),
    )

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"reviews_sent": authorizer.reviews_sent})

    app.router.add_get("/bench-stats", stats)
    tls = serving_tls(pki, settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=tls.front, backlog=1024).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


# ---------------------------------------------------------------------------------------- driver


def make_pki(directory: Path) -> None:
    from certs.generate import new_ca, new_client_cert, new_serving_cert, write_pair

    serving_ca, proxy_ca = new_ca("bench-serving-ca"), new_ca("bench-front-proxy-ca")
    write_pair(directory, "serving-ca", serving_ca)
    write_pair(
        directory,
        "serving",
        new_serving_cert(serving_ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"]),
    )
    write_pair(directory, "front-proxy-ca", proxy_ca)
    write_pair(directory, "front-proxy", new_client_cert(proxy_ca, common_name="front-proxy-client"))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(*argv: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        raise RuntimeError(f"{argv[0]} did not start: {line!r}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)


async def load(
    url: str, path: str, headers: dict[str, str], *, pki: Path, clients: int, seconds: float
) -> dict[str, Any]:
    import ssl

    import aiohttp

    ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
    ctx.load_cert_chain(pki / "front-proxy.crt", pki / "front-proxy.key")
    connector = aiohttp.TCPConnector(ssl=ctx, limit=clients)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def one(i: int) -> None:
            nonlocal errors
            start = time.perf_counter()
            async with session.get(
                url + path,
                headers={**headers, "X-Remote-User": f"bench-user-{i}", "X-Remote-Group": "bench-readers"},
            ) as resp:
                await resp.read()
                if not resp.ok:  # any 4xx/5xx counts as an error
                    errors += 1
            latencies.append(time.perf_counter() - start)

        # One round first: opens the connections and, with a TTL, primes the decision cache.
        await asyncio.gather(*(one(i) for i in range(clients)))
        latencies.clear()
        stats_before = await _stats(session, url)
        deadline = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            while time.perf_counter() < deadline:
                await one(i)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
        stats_after = await _stats(session, url)
    latencies.sort()
    n = len(latencies)
    reviews = stats_after - stats_before
    return {
        "requests": n,
        "errors": errors,
        "rps": n / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))],
        "reviews": reviews,
        "reviews_per_1000": 1000 * reviews / n if n else 0.0,
    }


async def _stats(session: Any, url: str) -> int:
    async with session.get(
        url + "/bench-stats", headers={"X-Remote-User": "stats", "X-Remote-Group": "system:masters"}
    ) as resp:
        return int((await resp.json())["reviews_sent"])


def grant_rbac(kubeconfig: str) -> None:
    rbac = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "bench-readers"},
            "rules": [
                {
                    "apiGroups": ["metrics.panopticon.io"],
                    "resources": ["prometheus", "metricfamilies"],
                    "verbs": ["list"],
                },
                {
                    "apiGroups": ["custom.metrics.k8s.io", "external.metrics.k8s.io"],
                    "resources": ["*"],
                    "verbs": ["get", "list"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "bench-readers"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "bench-readers",
            },
            "subjects": [{"kind": "Group", "name": "bench-readers", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    ]
    subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        check=True,
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}),
        text=True,
        capture_output=True,
    )


def listener_overhead(objects: int = 20000, rounds: int = 4) -> tuple[float, float]:
    """CPU us per ``MetricsStore.upsert`` (apps-deployment plan) without / with ``ApiViews`` attached."""
    from apiserver.views import ApiViews
    from exporter.compiler import compile_config
    from exporter.store import MetricsStore

    plan = compile_config(yaml.safe_load((ROOT / "examples/configs/apps-deployment.yaml").read_text()))
    best = {False: float("inf"), True: float("inf")}
    for _round in range(rounds):
        for attached in (False, True):
            store = MetricsStore()
            store.set_plan(plan)
            views = ApiViews(store) if attached else None
            batch = [deployment(i) for i in range(objects)]
            started = time.process_time()
            for obj in batch:
                store.upsert(plan.name, obj)
            best[attached] = min(best[attached], (time.process_time() - started) / objects * 1e6)
            if views is not None:
                views.close()
    return best[False], best[True]


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode")
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--pki", required=True)
    s.add_argument("--objects", type=int, default=1000)
    s.add_argument("--ttl", type=float, default=10.0)
    s.add_argument("--sar-url", default="")
    s.add_argument("--kubeconfig", default="")
    f = sub.add_parser("fake-sar")
    f.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--kubeconfig", default="", help="send reviews to this real kube-apiserver")
    parser.add_argument("--overhead-only", action="store_true", help="only the store-listener overhead")
    parser.add_argument("--scenarios", choices=("metrics", "autoscaling", "all"), default="metrics")
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(serve(args))
        return
    if args.mode == "fake-sar":
        asyncio.run(fake_sar(args.port))
        return

    if args.overhead_only:
        bare, attached = listener_overhead()
        print(f"store.upsert CPU per object: {bare:.1f} us bare, {attached:.1f} us with ApiViews")
        return
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as tmp:
        pki = Path(tmp)
        make_pki(pki)
        sar: subprocess.Popen[str] | None = None
        sar_args: list[str]
        if args.kubeconfig:
            grant_rbac(args.kubeconfig)
            sar_args = ["--kubeconfig", args.kubeconfig]
            endpoint = f"real kube-apiserver ({args.kubeconfig})"
        else:
            sar_port = free_port()
            sar = spawn("fake-sar", "--port", str(sar_port))
            sar_args = ["--sar-url", f"http://127.0.0.1:{sar_port}"]
            endpoint = "fake SubjectAccessReview endpoint (plain HTTP, always allowed)"
        print(
            f"# {platform.python_version()} {platform.machine()}, {os.cpu_count()} cores; "
            f"{args.clients} clients "
            f"x {args.seconds:g}s per scenario; {args.objects} Deployments; reviews to the {endpoint}"
        )
        print(
            f"{'scenario':<22} {'SAR cache':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'requests':>9} {'SARs':>6} {'SARs/1000':>10}"
        )
        try:
            for cache, ttl in (("warm 10s", 10.0), ("cold 0s", 0.0)):
                port = free_port()
                server = spawn(
                    "serve",
                    "--port",
                    str(port),
                    "--pki",
                    str(pki),
                    "--objects",
                    str(args.objects),
                    "--ttl",
                    str(ttl),
                    *sar_args,
                )
                try:
                    chosen = ("metrics", "autoscaling") if args.scenarios == "all" else (args.scenarios,)
                    scenarios = {k: v for group in chosen for k, v in SCENARIOS[group].items()}
                    for name, (path, headers) in scenarios.items():
                        r = asyncio.run(
                            load(
                                f"https://127.0.0.1:{port}",
                                path,
                                headers,
                                pki=pki,
                                clients=args.clients,
                                seconds=args.seconds,
                            )
                        )
                        assert r["errors"] == 0, r
                        print(
                            f"{name:<22} {cache:<10} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} "
                            f"{r['p99_ms']:>8.1f} "
                            f"{r['requests']:>9} {r['reviews']:>6} {r['reviews_per_1000']:>10.1f}",
                            flush=True,
                        )
                finally:
                    stop(server)
        finally:
            if sar is not None:
                stop(sar)
    bare, attached = listener_overhead()
    print(
        f"# store.upsert CPU per object (apps-deployment plan, {20000} objects, min of 4): "
        f"{bare:.1f} us without the API views, {attached:.1f} us with them (+{attached - bare:.1f} us)"
    )


if __name__ == "__main__":
    main()
