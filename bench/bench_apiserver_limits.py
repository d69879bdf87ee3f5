"""Extension API server under abusive clients: memory per connection, timeouts, probe latency.

    ~/.cache/panopticon/venv/bin/python bench/bench_apiserver_limits.py \
        [--idle 1500] [--slowloris 100] [--stalled 80] [--lists 5] [--objects 10000] \
        [--idle-timeout 20] [--header-timeout 10] [--write-timeout 15]

Two processes on 127.0.0.1 (no shared GIL): the **server** (``apiserver.server.HttpsServer`` with
``build_app`` over a ``MetricsStore`` of ``--objects`` Deployments rendered by
``examples/configs/apps-deployment.yaml``, the real front-proxy authenticator and authorizer;
the clients are ``system:masters`` behind the front-proxy certificate, so no reviews are sent)
and this **load generator**. Server RSS is read from ``/proc/<pid>/status``; ``/livez`` is
probed every 20 ms on its own connection during each phase (p99 reported).

Phases (each bounded; idle and header timeouts are ``serve``'s defaults, 90 s and 32 s; the
write timeout is shortened from 60 s to 15 s; the run takes about 5 minutes):

1. ``--idle`` TLS connections that complete the handshake and send nothing, plus
   ``--slowloris`` that send a request line and then one header byte every 2 s: RSS growth,
   per-connection cost, time until the server closed them, RSS 60 s after they are gone;
2. ``--stalled`` authenticated clients that request ``/prometheus`` and never read: RSS growth,
   time until the server closed them (write timeout);
3. ``--lists`` concurrent full ``objectmetrics`` lists: body size, list time, ``/livez`` p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_apiserver import (  # noqa: E402
    bench_store,
    free_port,
    front_proxy_settings,
    make_pki,
    serving_tls,
    stop,
)

GV = "/apis/metrics.panopticon.io/v1alpha1"
MASTERS = "X-Remote-User: bench\r\nX-Remote-Group: system:masters\r\n"


# ---------------------------------------------------------------------------------------- server


async def serve(args: argparse.Namespace) -> None:
    import logging

    from aiohttp import web

    from apiserver.authn import Authenticator
    from apiserver.authz import Authorizer
    from apiserver.connections import ServingLimits
    from apiserver.server import HttpsServer, build_app
    from apiserver.views import ApiViews
    from exporter.exposition import Exposition, parse_series

    logging.basicConfig(level=logging.WARNING)
    pki = Path(args.pki)
    import gc

    # As `panopticon serve` does: the interpreter's start-up objects go to the permanent
    # generation once everything is imported, before the store fills (commands/serve.py).
    gc.collect()
    gc.freeze()
    store = bench_store(args.objects)
    settings = front_proxy_settings(pki)
    limits = ServingLimits(
        idle_timeout=args.idle_timeout, header_timeout=args.header_timeout, write_timeout=args.write_timeout
    )
    exposition = Exposition(store)
    app = build_app(
        views=ApiViews(store),
        exposition=exposition,
        parse_series=parse_series,
        authenticator=Authenticator(settings),
        authorizer=Authorizer(None, always_allow_paths=["/healthz", "/livez", "/readyz"]),
        limits=limits,
    )
    gaps: list[float] = []
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info.get("generation") == 2:
            gc_pauses.append(1000 * (time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)

    async def ticker() -> None:
        """Event-loop lag inside the server: how late a 5 ms timer fires."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            gaps.append(1000 * (time.perf_counter() - started - 0.005))

    async def lag(_request: web.Request) -> web.Response:
        values = sorted(gaps)
        gaps.clear()
        full_gc = {"gc2": len(gc_pauses), "gc2_max": max(gc_pauses, default=0.0)}
        gc_pauses.clear()
        n = len(values)
        return web.json_response(
            {"ticks": n, "p50": values[n // 2], "p99": values[min(n - 1, int(n * 0.99))], "max": values[-1]}
            | full_gc if n else {"ticks": 0} | full_gc
        )

    app.router.add_get("/bench-lag", lag)
    if os.environ.get("BENCH_SLOW_MS"):  # name the callbacks that hold the loop (asyncio debug mode)
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = float(os.environ["BENCH_SLOW_MS"]) / 1000
    tick = asyncio.create_task(ticker())
    tls = serving_tls(pki, settings)
    server = HttpsServer(app, tls, host="127.0.0.1", port=args.port, limits=limits)
    await server.start()
    from exporter.exposition import negotiate

    size = len(exposition.body(fmt=negotiate(None)))
    print(f"READY {size}", flush=True)
    await asyncio.Event().wait()
    tick.cancel()


def spawn_server(*argv: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(line[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# ---------------------------------------------------------------------------------------- clients


def client_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
    ctx.load_cert_chain(pki / "front-proxy.crt", pki / "front-proxy.key")
    return ctx


async def probe_loop(
    port: int, pki: Path, interval: float, stop: asyncio.Event, *, ready: Callable[[], None] = lambda: None
) -> list[tuple[float, float]]:
    """GET /livez every ``interval`` s on one keep-alive connection until ``stop``.

    Returns (wall-clock start, latency ms or -1 for a failure) per probe; ``ready`` is called
    once the first probe has been answered (the connection is up).
    """
    import aiohttp

    probes: list[tuple[float, float]] = []
    connector = aiohttp.TCPConnector(ssl=client_context(pki), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stop.is_set():
            at, started = time.time(), time.perf_counter()
            try:
                async with session.get(
                    f"https://127.0.0.1:{port}/livez", timeout=aiohttp.ClientTimeout(total=5)
                ) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            probes.append((at, 1000 * (time.perf_counter() - started) if ok else -1.0))
            if len(probes) == 1:
                ready()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    return probes


def probe_main(args: argparse.Namespace) -> None:
    """``probe`` mode: a process of its own (no GIL or loop shared with the load), until SIGTERM."""
    import json
    import signal

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        probes = await probe_loop(
            args.port, Path(args.pki), 0.02, stop, ready=lambda: print("READY 0", flush=True)
        )
        print(json.dumps(probes), flush=True)

    asyncio.run(run())


def probe_stats(probes: list[tuple[float, float]]) -> dict[str, float]:
    values = sorted(v for _, v in probes if v >= 0)
    n = len(values)
    return {
        "probes": len(probes),
        "failures": len(probes) - n,
        "p50": statistics.median(values) if values else 0.0,
        "p99": values[min(n - 1, int(n * 0.99))] if values else 0.0,
        "max": values[-1] if values else 0.0,
    }


class Prober:
    """/livez latency from a separate process: ``start()`` (returns once probes are being
    answered), then ``stop()`` -> p50/p99/max (ms); ``window(a, b)`` for probes started in [a, b)."""

    def __init__(self, port: int, pki: Path) -> None:
        self.port, self.pki = port, pki
        self._proc: subprocess.Popen[str] | None = None
        self.probes: list[tuple[float, float]] = []

    def start(self) -> None:
        self._proc, _ = spawn_server("probe", "--port", str(self.port), "--pki", str(self.pki))

    async def stop(self) -> dict[str, float]:
        import json
        import signal

        assert self._proc is not None and self._proc.stdout is not None
        self._proc.send_signal(signal.SIGTERM)
        out = await asyncio.to_thread(self._proc.stdout.read)
        self._proc.wait(10)
        self.probes = [(at, ms) for at, ms in json.loads(out.strip().splitlines()[-1])]
        return probe_stats(self.probes)

    def window(self, start: float, end: float) -> dict[str, float]:
        return probe_stats([p for p in self.probes if start <= p[0] < end])


async def open_tls(port: int, ctx: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")


async def closed_after(reader: asyncio.StreamReader, opened: float, limit: float) -> float | None:
    """Seconds from ``opened`` until the server closed the connection, ``None`` if open at ``limit``."""
    try:
        async with asyncio.timeout(max(0.0, opened + limit - time.monotonic())):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    return time.monotonic() - opened


async def timed(factory: Any, limit: float) -> tuple[asyncio.StreamWriter, asyncio.Task[float | None]]:
    """Open a connection and start watching at once for the server closing it."""
    reader, writer = await factory
    opened = time.monotonic()
    return writer, asyncio.create_task(closed_after(reader, opened, limit))


async def slowloris(port: int, ctx: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await open_tls(port, ctx)
    writer.write(f"GET {GV}/metricfamilies HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".encode())
    await writer.drain()

    async def drip() -> None:
        try:
            while not writer.is_closing():
                await asyncio.sleep(2.0)
                writer.write(b"a")
                await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError, RuntimeError):
            pass

    asyncio.get_running_loop().create_task(drip())
    return reader, writer


async def phase_connections(
    args: argparse.Namespace, pid: int, port: int, ctx: ssl.SSLContext, pki: Path
) -> None:
    opening, holding = Prober(port, pki), Prober(port, pki)
    await asyncio.sleep(1.0)
    base = rss_mib(pid)
    opening.start()
    started = time.monotonic()
    limit = args.idle_timeout + 60
    conns: list[tuple[asyncio.StreamWriter, asyncio.Task[float | None]]] = []
    for i in range(0, args.idle, 50):
        batch = min(50, args.idle - i)
        conns += await asyncio.gather(*(timed(open_tls(port, ctx), limit) for _ in range(batch)))
    loris = await asyncio.gather(*(timed(slowloris(port, ctx), limit) for _ in range(args.slowloris)))
    opened = time.monotonic() - started
    during_open = await opening.stop()
    holding.start()
    await asyncio.sleep(3.0)
    peak = rss_mib(pid)
    still_open = sum(1 for _w, task in [*conns, *loris] if not task.done())
    per_conn = (peak - base) * 1024 / max(1, still_open)
    closed = await asyncio.gather(*(task for _w, task in [*conns, *loris]))
    idle_closed, loris_closed = closed[: len(conns)], closed[len(conns) :]
    during_hold = await holding.stop()
    for w, _task in [*conns, *loris]:
        w.close()
    gone = rss_mib(pid)
    await asyncio.sleep(60.0)
    after = rss_mib(pid)

    def span(values: list[float | None]) -> str:
        done = [v for v in values if v is not None]
        still = len(values) - len(done)
        text = f"{min(done):.1f}-{max(done):.1f} s" if done else "none"
        return text + (f", {still} NOT closed" if still else "")

    def probe(p: dict[str, float]) -> str:
        return (f"{p['probes']:.0f} probes, p50 {p['p50']:.1f} ms, p99 {p['p99']:.1f} ms, "
                f"max {p['max']:.1f} ms, failures {p['failures']:.0f}")

    print(f"## {args.idle} idle TLS connections + {args.slowloris} slowloris (opened in {opened:.1f} s)")
    print(f"RSS before {base:.1f} MiB, with {still_open} open {peak:.1f} MiB (+{peak - base:.1f} MiB), "
          f"{per_conn:.1f} KiB per connection")
    print(f"closed by the server, seconds after each connected: idle {span(idle_closed)} "
          f"(idle timeout {args.idle_timeout:g} s); slowloris {span(loris_closed)} "
          f"(header timeout {args.header_timeout:g} s)")
    print(f"RSS when all were closed {gone:.1f} MiB; 60 s later {after:.1f} MiB (+{after - base:.1f} MiB)")
    print(f"/livez while the connections were opened (TLS handshakes): {probe(during_open)}")
    print(f"/livez while they were held open until closed: {probe(during_hold)}")


def stalled_client(port: int, pki: Path) -> socket.socket:
    """A blocking TLS socket that asks for /prometheus and will never read (tiny receive buffer)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    tls = client_context(pki).wrap_socket(raw, server_hostname="localhost")
    tls.sendall(f"GET {GV}/prometheus HTTP/1.1\r\nHost: localhost\r\n{MASTERS}\r\n".encode())
    return tls


def wait_closed(sock: socket.socket, deadline: float) -> float | None:
    """Drain the socket until EOF/reset; seconds spent, ``None`` when still open at ``deadline``."""
    started = time.monotonic()
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            return time.monotonic() - started
    return None


async def phase_stalled(args: argparse.Namespace, pid: int, port: int, pki: Path, size: int) -> None:
    warm = await asyncio.to_thread(stalled_client, port, pki)  # one full read: the body is built and cached
    await asyncio.to_thread(wait_closed, warm, time.monotonic() + 3)
    warm.close()
    await asyncio.sleep(1.0)
    base = rss_mib(pid)
    started = time.monotonic()
    socks = [await asyncio.to_thread(stalled_client, port, pki) for _ in range(args.stalled)]
    await asyncio.sleep(3.0)
    peak = rss_mib(pid)
    # A client that reads now sees what the server kept for it: the connection is cut at the
    # write timeout, so it gets (much) less than the whole body.
    await asyncio.sleep(max(0.0, args.write_timeout + 3 - (time.monotonic() - started)))
    deadline = time.monotonic() + 10
    closed = [await asyncio.to_thread(wait_closed, s, deadline) for s in socks]
    for s in socks:
        s.close()
    await asyncio.sleep(2.0)
    after = rss_mib(pid)
    done = sum(1 for c in closed if c is not None)
    print(f"## {args.stalled} clients that never read /prometheus ({size / 1e6:.1f} MB body)")
    print(f"RSS before {base:.1f} MiB, all stalled {peak:.1f} MiB (+{peak - base:.1f} MiB); "
          f"closed by the server at the write timeout ({args.write_timeout:g} s): {done}/{args.stalled}; "
          f"RSS after {after:.1f} MiB")


async def phase_lists(args: argparse.Namespace, port: int, ctx: ssl.SSLContext, pki: Path) -> None:
    """Cold: the first ``--lists`` concurrent lists of a fresh server (every item converted and
    encoded); warm: rounds of ``--lists`` concurrent lists for ``--list-seconds`` (encoded items
    reused). ``/livez`` latency is reported for each window."""
    import aiohttp

    prober = Prober(port, pki)
    connector = aiohttp.TCPConnector(ssl=ctx, limit=args.lists)
    headers = {"X-Remote-User": "bench", "X-Remote-Group": "system:masters"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> tuple[int, float]:
            started = time.perf_counter()
            async with session.get(f"https://127.0.0.1:{port}{GV}/objectmetrics", headers=headers) as resp:
                body = await resp.read()
                assert resp.status == 200, resp.status
            return len(body), time.perf_counter() - started

        async def round_of_lists() -> list[tuple[int, float]]:
            return list(await asyncio.gather(*(one() for _ in range(args.lists))))

        prober.start()
        await server_lag(session, port)  # reset
        cold_start = time.time()
        cold = await round_of_lists()
        cold_lag = await server_lag(session, port)
        warm_start = time.time()
        warm: list[tuple[int, float]] = []
        while time.time() - warm_start < args.list_seconds:
            warm += await round_of_lists()
        warm_end = time.time()
        warm_lag = await server_lag(session, port)
        await prober.stop()
    print(f"## {args.lists} concurrent objectmetrics lists of {cold[0][0] / 1e6:.1f} MB each")
    for label, results, probes, lag in (
        ("cold (first lists)", cold, prober.window(cold_start, warm_start), cold_lag),
        (f"warm ({len(warm) // args.lists} rounds)", warm, prober.window(warm_start, warm_end), warm_lag),
    ):
        times = [r[1] for r in results]
        print(f"{label}: list time {min(times):.2f}-{max(times):.2f} s; /livez meanwhile: "
              f"{probes['probes']:.0f} probes, p50 {probes['p50']:.1f} ms, p99 {probes['p99']:.1f} ms, "
              f"max {probes['max']:.1f} ms, "
              f"failures {probes['failures']:.0f}")
        print(f"  server event-loop lag (5 ms timer, {lag['ticks']} ticks): p50 {lag['p50']:.1f} ms, "
              f"p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms; full collections {lag['gc2']:.0f}, "
              f"longest {lag['gc2_max']:.1f} ms")


async def server_lag(session: Any, port: int) -> dict[str, float]:
    headers = {"X-Remote-User": "bench", "X-Remote-Group": "system:masters"}
    async with session.get(f"https://127.0.0.1:{port}/bench-lag", headers=headers) as resp:
        data: dict[str, float] = await resp.json()
        return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "serve", "probe"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pki", default="")
    parser.add_argument("--objects", type=int, default=0, help="serve mode: Deployments in the store")
    parser.add_argument("--idle", type=int, default=1500)
    parser.add_argument("--slowloris", type=int, default=100)
    parser.add_argument("--connection-rounds", type=int, default=1,
                        help="repeat the connection burst on the same server (one-time vs retained memory)")
    parser.add_argument("--stalled", type=int, default=80)
    parser.add_argument("--stalled-objects", type=int, default=9000, help="5.8 MB of Prometheus text")
    parser.add_argument("--lists", type=int, default=5)
    parser.add_argument("--list-objects", type=int, default=5000, help="7.5 MB objectmetrics lists")
    parser.add_argument("--list-seconds", type=float, default=10.0, help="warm rounds of lists for this long")
    parser.add_argument("--idle-timeout", type=float, default=90.0)
    parser.add_argument("--header-timeout", type=float, default=32.0)
    parser.add_argument("--write-timeout", type=float, default=15.0)
    parser.add_argument("--phases", default="connections,stalled,lists")
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(serve(args))
        return
    if args.mode == "probe":
        probe_main(args)
        return
    phases = set(args.phases.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        pki = Path(tmp)
        make_pki(pki)
        ctx = client_context(pki)
        print(f"# {platform.python_version()} {platform.machine()}, {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f}; /livez probed every 20 ms from a separate process")
        for phase, objects in (
            ("connections", 1000), ("stalled", args.stalled_objects), ("lists", args.list_objects)
        ):
            if phase not in phases:
                continue
            port = free_port()
            flags = [
                "--port", str(port), "--pki", str(pki), "--objects", str(objects),
                "--idle-timeout", str(args.idle_timeout), "--header-timeout", str(args.header_timeout),
                "--write-timeout", str(args.write_timeout),
            ]
            server, size = spawn_server("serve", *flags)
            try:
                if phase == "connections":
                    for _ in range(args.connection_rounds):
                        asyncio.run(phase_connections(args, server.pid, port, ctx, pki))
                elif phase == "stalled":
                    asyncio.run(phase_stalled(args, server.pid, port, pki, size))
                else:
                    asyncio.run(phase_lists(args, port, ctx, pki))
            finally:
                stop(server)
        print(f"# load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
