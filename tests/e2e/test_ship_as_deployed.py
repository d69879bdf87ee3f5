"""Issue 15: the built image, run as deployed, through the real kube-apiserver.

AC2 (``test_as_deployed``): ``deploy/`` applied for real (via ``tests/e2e/overlays/loopback``),
one replica of the **built image** (``scripts/build-image``) in a read-only chroot as UID 65532
with the shipped ServiceAccount's TokenRequest token and nothing else: the APIService becomes
Available, ``kubectl get mf`` and the Prometheus path work, a ``Thanos`` object is reconciled, a
MetricsConfiguration gets its status, and the log holds no 403 and no traceback.

AC3 (``test_failover``): two replicas behind one address (``TcpBalancer``, the kube-proxy
stand-in); one is killed and restarted while ``kubectl get mf``, a watch and Prometheus' scrape
through the kube-apiserver keep working (at most one retry per call; ``up`` stays 1).

See ``tests/e2e/deployed.py`` for how a "pod" is made without an OCI runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import KubeCluster, free_port
from tests.e2e.deployed import (
    APISERVICE,
    NAMESPACE,
    Deployed,
    MountedImage,
    Replica,
    TcpBalancer,
    apply_deploy,
    built_image,
    make_replica,
    pod_volumes,
    remove_apiservice,
)
from tests.e2e.panopticon_server import CONFIG, FAMILY, GV, deployment
from tests.e2e.thanos_support import condition, thanos_cr

SA_USER = f"system:serviceaccount:{NAMESPACE}:panopticon"


@dataclass
class Shipped:
    cluster: KubeCluster
    image: MountedImage
    deployed: Deployed
    volumes: dict[str, Path]
    workdir: Path
    port: int  # the APIService's port: what the kube-aggregator dials on localhost


@pytest.fixture(scope="module")
def shipped(kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shipped]:
    image = built_image()
    workdir = tmp_path_factory.mktemp("as-deployed")
    port = free_port()
    with MountedImage.of(image) as mounted:
        deployed = apply_deploy(kube_cluster, workdir, apiservice_port=port)
        volumes = pod_volumes(kube_cluster, deployed, workdir)
        try:
            yield Shipped(kube_cluster, mounted, deployed, volumes, workdir, port)
        finally:
            remove_apiservice(kube_cluster)


def _clean_log(replica: Replica) -> None:
    text = replica.log_text()
    bad = [line for line in text.splitlines() if " 403" in line or "Forbidden" in line
           or "forbidden" in line or "Traceback" in line]
    assert not bad, f"{replica.name} log has 403s or tracebacks:\n" + "\n".join(bad[:20])


def _wait(predicate: Any, *, timeout: float, what: str, log: Replica | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (subprocess.CalledProcessError, RuntimeError, KeyError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    tail = log.log_tail() if log is not None else ""
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})\n{tail}")


@pytest.mark.timeout(900)
def test_built_image_is_non_root_without_compilers(shipped: Shipped) -> None:
    image = shipped.image
    assert image.user == "65532:65532"
    assert image.entrypoint == ["/opt/panopticon/bin/panopticon"]
    for tool in ("gcc", "cc", "g++", "make", "pip", "pip3"):
        for directory in ("usr/bin", "usr/local/bin", "opt/panopticon/bin"):
            assert not (image.root / directory / tool).exists(), f"/{directory}/{tool} in the image"
    assert not list(image.root.glob("opt/panopticon/lib/python3*/site-packages/pip"))
    labels = json.loads(subprocess.run(["buildah", "inspect", "--type", "image", image.image],
                                       capture_output=True, text=True, check=True).stdout)
    oci = labels["OCIv1"]["config"]["Labels"]
    assert oci["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert oci["org.opencontainers.image.source"].startswith("https://")
    assert oci["org.opencontainers.image.version"]


@pytest.mark.timeout(900)  # the module's first test may build the image (about 2 minutes)
def test_as_deployed(shipped: Shipped, kube_namespace: str) -> None:
    cluster = shipped.cluster
    replica = make_replica(cluster, shipped.image, shipped.deployed, shipped.workdir, name="panopticon-0",
                           volumes=shipped.volumes, secure_port=shipped.port)
    # The process gets the image's environment plus the in-cluster variables, nothing of ours.
    assert not any(k.startswith("KUBECONFIG") for k in replica.env)
    assert not any("kubeconfig" in a for a in replica.args)
    assert replica.args[0] == "serve" and "--leader-elect" in replica.args
    replica.start()
    try:
        replica.wait_ready()
        with open(f"/proc/{replica.process.pid}/status") as status:  # type: ignore[union-attr]
            uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {"65532"}, uids
        cluster.wait_apiservice_available(APISERVICE, timeout=90)

        cluster.apply(CONFIG)
        cluster.apply(deployment("shop", kube_namespace, 3))

        def config_ready() -> bool:
            cfg = cluster.get_json("metricsconfiguration", CONFIG["metadata"]["name"])
            return condition(cfg, "Ready").get("status") == "True"

        _wait(config_ready, timeout=60, what="MetricsConfiguration Ready status", log=replica)
        _wait(lambda: FAMILY in cluster.kubectl("get", "mf").stdout, timeout=60,
              what="kubectl get mf lists the family", log=replica)
        want = f'{FAMILY}{{namespace="{kube_namespace}",deployment="shop"}} 3'
        _wait(lambda: want in cluster.kubectl("get", "--raw", f"{GV}/prometheus").stdout, timeout=60,
              what="the Prometheus path through the kube-apiserver", log=replica)
        om = cluster.kubectl("get", "om", "-n", kube_namespace).stdout
        assert "shop" in om

        cluster.apply(thanos_cr(kube_namespace, "t", {"query": {"replicas": 1, "stores": [
            {"addresses": ["prometheus-operated:10901"]}]}}))

        def reconciled() -> bool:
            obj = cluster.get_json("thanos", "t", "-n", kube_namespace)
            return condition(obj, "Reconciled").get("status") == "True"

        _wait(reconciled, timeout=90, what="Thanos Reconciled=True", log=replica)
        cluster.get_json("deployment", "t-query", "-n", kube_namespace)

        writers = {e["user"]["username"] for e in cluster.audit_events(verbs={"create", "update", "patch"})
                   if (e.get("objectRef") or {}).get("namespace") == kube_namespace
                   and (e.get("objectRef") or {}).get("resource") in {"deployments", "services", "thanos"}
                   and e.get("userAgent", "").startswith("panopticon")}
        assert writers == {SA_USER}, writers
        status_writes = [e for e in cluster.audit_events(verbs={"update", "patch"})
                         if (e.get("objectRef") or {}).get("resource") == "metricsconfigurations"
                         and (e.get("objectRef") or {}).get("subresource") == "status"]
        assert {e["user"]["username"] for e in status_writes} >= {SA_USER}
    finally:
        replica.stop()
        cluster.kubectl("delete", "metricsconfiguration", CONFIG["metadata"]["name"], "--ignore-not-found")
    _clean_log(replica)


def _prometheus(
    cluster: KubeCluster, workdir: Path, *, interval: str = "1s"
) -> tuple[subprocess.Popen[bytes], int]:
    """The real Prometheus scraping the aggregated path through the kube-apiserver with its own SA."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: apt-get install prometheus (Debian package)", pytrace=False)
    monitoring = f"monitoring-{uuid.uuid4().hex[:6]}"
    token = cluster.service_account_token(monitoring, "prometheus")
    cluster.apply({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"scraper-{monitoring}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "panopticon-metrics-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": monitoring}],
    })
    token_file = workdir / "prometheus-token"
    token_file.write_text(token)
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [{
            "job_name": "panopticon", "scheme": "https", "metrics_path": f"{GV}/prometheus",
            "honor_labels": True, "tls_config": {"ca_file": str(cluster.ca_file)},
            "authorization": {"credentials_file": str(token_file)},
            "static_configs": [{"targets": [cluster.server.removeprefix("https://")]}],
        }],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config_file}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(workdir / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
    )
    return process, port


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


class Prober:
    """``kubectl get mf`` in a loop: a call fails only when it *and* its one retry fail."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster
        self.calls = self.retried = self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _once(self) -> str | None:
        result = self.cluster.kubectl("get", "mf", "--request-timeout=10s", check=False, timeout=30)
        if result.returncode == 0 and FAMILY in result.stdout:
            return None
        return (result.stderr or result.stdout).strip()[-300:]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.calls += 1
            error = self._once()
            if error is not None:
                self.retried += 1
                second = self._once()
                if second is not None:
                    self.failed += 1
                    self.errors.append(f"{error} / retry: {second}")
            time.sleep(0.2)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.mark.timeout(900)
def test_failover(shipped: Shipped, kube_namespace: str) -> None:
    cluster, workdir = shipped.cluster, shipped.workdir
    replicas = [make_replica(cluster, shipped.image, shipped.deployed, workdir, name=f"panopticon-ha-{i}",
                             volumes=shipped.volumes) for i in range(2)]
    balancer = TcpBalancer([r.secure_port for r in replicas], port=shipped.port).start()
    prometheus: subprocess.Popen[bytes] | None = None
    watches: list[subprocess.Popen[str]] = []
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        cluster.apply(CONFIG)
        cluster.apply(deployment("shop", kube_namespace, 2))
        cluster.wait_apiservice_available(APISERVICE, timeout=90)
        _wait(lambda: FAMILY in cluster.kubectl("get", "mf").stdout, timeout=60, what="kubectl get mf",
              log=replicas[0])
        prometheus, prom_port = _prometheus(cluster, workdir)
        _wait(lambda: _query(prom_port, 'up{job="panopticon"} == 1'), timeout=60, what="Prometheus up == 1")
        started = time.monotonic()

        def watch() -> subprocess.Popen[str]:
            process = subprocess.Popen(
                ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "mf", "--watch", "-o", "name"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            watches.append(process)
            return process

        first_watch = watch()
        with Prober(cluster) as prober:
            time.sleep(3)
            # Kill the replica the kube-aggregator is talking to (it keeps one HTTP/2 connection).
            open_now = balancer.open_connections()
            victim = max(replicas, key=lambda r: open_now.get(r.secure_port, 0))
            survivor = next(r for r in replicas if r is not victim)
            assert open_now.get(victim.secure_port, 0) >= 1, open_now
            before = balancer.connected.get(survivor.secure_port, 0)
            victim.kill()
            time.sleep(8)  # the survivor alone serves kubectl, the watch retry and the scrapes
            watch_retried = first_watch.poll() is not None
            if watch_retried:
                # The watch went to the killed replica and ended: one retry must work.
                retry = watch()
                line = retry.stdout.readline() if retry.stdout is not None else ""
                assert FAMILY in line, f"watch retry got {line!r}"
            else:
                # The watch was served by the survivor: it still runs and has listed the family.
                line = first_watch.stdout.readline() if first_watch.stdout is not None else ""
                assert FAMILY in line, f"watch got {line!r}"
            victim.start()
            victim.wait_ready()
            time.sleep(5)
        assert prober.calls >= 10, prober.calls
        assert prober.failed == 0, prober.errors
        window = int(time.monotonic() - started) + 2
        values = _query(prom_port, f'min_over_time(up{{job="panopticon"}}[{window}s])')
        assert values and float(values[0]["value"][1]) == 1.0, values
        samples = _query(prom_port, f'count_over_time(up{{job="panopticon"}}[{window}s])')
        assert float(samples[0]["value"][1]) >= window / 2, samples
        # The traffic really moved: new connections to the survivor after the kill.
        moved = balancer.connected.get(survivor.secure_port, 0) - before
        assert moved >= 1, balancer.connected
        print(f"failover: {prober.calls} kubectl get mf calls, {prober.retried} retried, 0 failed; "
              f"up==1 over {window}s ({samples[0]['value'][1]} scrapes); "
              f"{moved} new connections to the survivor, balancer refused {balancer.refused}; "
              f"watch {'ended and was retried once' if watch_retried else 'kept running'}")
    finally:
        for process in watches:
            process.kill()
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(15)
        for replica in replicas:
            replica.stop()
        balancer.stop()
        cluster.kubectl("delete", "metricsconfiguration", CONFIG["metadata"]["name"], "--ignore-not-found")
    for replica in replicas:
        _clean_log(replica)


PEER_TIMEOUT = 3.0


def _endpoint_slice(replica: Replica) -> dict[str, Any]:
    """What the EndpointSlice controller would write for one ready shard pod of panopticon-peers."""
    return {
        "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",  # 1.20 serves v1beta1
        "metadata": {"name": f"panopticon-peers-{replica.name}", "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": "panopticon-peers"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": replica.name, "namespace": NAMESPACE}}],
        "ports": [{"name": "https", "port": replica.secure_port, "protocol": "TCP"}],
    }


def _scrape(cluster: KubeCluster) -> list[str]:
    return cluster.kubectl("get", "--raw", f"{GV}/prometheus", timeout=60).stdout.splitlines()


def _objectmetrics(cluster: KubeCluster) -> tuple[int, list[tuple[str, str, str]]]:
    """``kubectl get om -A`` (a Table, paged by kubectl) and the objects with their series."""
    table = cluster.kubectl("get", "om", "-A", "--no-headers", timeout=60).stdout.splitlines()
    items = cluster.get_json("om", "-A")["items"]
    keyed = sorted((i["metadata"]["namespace"], i["metadata"]["name"],
                    json.dumps(sorted(json.dumps(s, sort_keys=True) for s in i["series"])))
                   for i in items)
    return len(table), keyed


@pytest.mark.timeout(900)
def test_sharded_union(shipped: Shipped, kube_namespace: str) -> None:
    from tests.e2e.exporter_support import (
        apply_crd,
        create_widgets,
        family_prefix,
        metrics_config,
        unique_group,
        widget,
        widget_crd,
    )

    cluster, workdir = shipped.cluster, shipped.workdir
    group = unique_group()
    apply_crd(cluster, widget_crd(group))
    config = metrics_config(f"shards-{group.split('.')[0]}", group)
    cluster.apply(config)
    namespaces = [f"{kube_namespace}-{i}" for i in range(5)]
    for ns in namespaces:
        cluster.ensure_namespace(ns)
    create_widgets(cluster, [widget(group, namespaces[i % 5], f"w{i}", replicas=i, color=f"c{i % 7}")
                             for i in range(1000)])
    prefix = family_prefix(group)
    full = make_replica(cluster, shipped.image, shipped.deployed, workdir, name="panopticon-full",
                        volumes=shipped.volumes)
    shards = [make_replica(cluster, shipped.image, shipped.deployed, workdir, name=f"panopticon-shard-{i}",
                           volumes=shipped.volumes,
                           extra_args=[f"--shard={i}", "--total-shards=3", "--peer-service=panopticon-peers",
                                       f"--peer-timeout={PEER_TIMEOUT:g}"])
              for i in range(3)]
    balancer = TcpBalancer([full.secure_port], port=shipped.port).start()
    try:
        for replica in [full, *shards]:
            replica.start()
        for replica in [full, *shards]:
            replica.wait_ready()
        cluster.apply(*[_endpoint_slice(s) for s in shards])
        cluster.wait_apiservice_available(APISERVICE, timeout=90)

        def complete() -> list[str]:
            lines = _scrape(cluster)
            return lines if sum(line.startswith(prefix) for line in lines) == 5000 else []

        reference = _wait(complete, timeout=90, what="5000 series from the unsharded replica", log=full)
        reference_rows, reference_om = _objectmetrics(cluster)
        assert reference_rows >= 1000
        own = [line for line in reference if line.startswith(prefix)]
        assert len(own) == 5000

        # Now only the 3 shards answer: the unsharded replica goes away (its connections with it).
        balancer.set_backends([s.secure_port for s in shards])
        full.stop()
        for attempt in range(3):  # round-robin: each shard answers once
            union = _wait(complete, timeout=60, what=f"the union (attempt {attempt})", log=shards[0])
            assert sorted(union) == sorted(reference), "union differs from the unsharded exposition"
            headers = [line for line in union if line.startswith("# TYPE ")]
            assert len(headers) == len(set(headers)), "a family has two TYPE lines"
        rows, om = _objectmetrics(cluster)
        assert (rows, om) == (reference_rows, reference_om)
        for i, s in enumerate(shards):
            assert f"(shard {i} of 3)" in s.log_text()

        # A shard that hangs (SIGSTOP) makes the others fail with 503 within --peer-timeout.
        victim = shards[2]
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGSTOP)
        balancer.set_backends([s.secure_port for s in shards[:2]])  # kube-proxy drops the unready pod
        try:
            started = time.monotonic()
            result = cluster.kubectl("get", "--raw", f"{GV}/prometheus", check=False, timeout=60)
            elapsed = time.monotonic() - started
            assert result.returncode != 0
            assert "ServiceUnavailable" in result.stderr or "503" in result.stderr, result.stderr
            assert "shard(s) 2 of 3" in result.stderr, result.stderr
            assert elapsed < PEER_TIMEOUT + 5, elapsed
            om_result = cluster.kubectl("get", "om", "-A", check=False, timeout=60)
            assert om_result.returncode != 0 and "shard(s) 2 of 3" in om_result.stderr, om_result.stderr
        finally:
            os.kill(victim.process.pid, signal.SIGCONT)
        victim.kill()  # a dead shard: refused at once, same 503
        started = time.monotonic()
        result = cluster.kubectl("get", "--raw", f"{GV}/prometheus", check=False, timeout=60)
        killed_elapsed = time.monotonic() - started
        assert result.returncode != 0 and "shard(s) 2 of 3" in result.stderr, result.stderr
        print(f"sharded union: 3 shards == unsharded ({len(reference)} lines, {len(reference_om)} objects); "
              f"hung shard -> 503 in {elapsed:.1f}s (timeout {PEER_TIMEOUT:g}s), "
              f"killed shard -> 503 in {killed_elapsed:.1f}s")
    finally:
        balancer.stop()
        for replica in [full, *shards]:
            replica.stop()
        for s in shards:
            cluster.kubectl("delete", "endpointslice", f"panopticon-peers-{s.name}", "-n", NAMESPACE,
                            "--ignore-not-found")
        cluster.kubectl("delete", "metricsconfiguration", config["metadata"]["name"], "--ignore-not-found")


@pytest.mark.timeout(900)
def test_namespace_deletion_while_one_replica_is_down(
    shipped: Shipped, kube_controller_manager: KubeCluster
) -> None:
    """The namespace controller needs discovery of every aggregated group (metrics-server #614,
    #1282): with both replicas down deletion waits; with one down it completes."""
    cluster, workdir = shipped.cluster, shipped.workdir
    replicas = [make_replica(cluster, shipped.image, shipped.deployed, workdir, name=f"panopticon-ns-{i}",
                             volumes=shipped.volumes) for i in range(2)]
    balancer = TcpBalancer([r.secure_port for r in replicas], port=shipped.port).start()

    def gone(name: str) -> bool:
        return cluster.kubectl("get", "namespace", name, check=False).returncode != 0

    def discovery_failure(name: str) -> bool:
        ns = cluster.get_json("namespace", name)
        return any(c.get("type") == "NamespaceDeletionDiscoveryFailure" and c.get("status") == "True"
                   for c in (ns.get("status") or {}).get("conditions") or [])

    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        cluster.wait_apiservice_available(APISERVICE, timeout=90)

        # Both down: the aggregated group fails discovery and the namespace stays Terminating.
        for replica in replicas:
            replica.kill()
        stuck = f"ns-stuck-{uuid.uuid4().hex[:6]}"
        cluster.ensure_namespace(stuck)
        cluster.kubectl("create", "configmap", "c", "-n", stuck)
        cluster.kubectl("delete", "namespace", stuck, "--wait=false")
        _wait(lambda: discovery_failure(stuck), timeout=90, what="NamespaceDeletionDiscoveryFailure")
        assert not gone(stuck)

        # One replica back (the other stays down): both deletions complete.
        replicas[1].start()
        replicas[1].wait_ready()
        started = time.monotonic()
        deleted = f"ns-one-down-{uuid.uuid4().hex[:6]}"
        cluster.ensure_namespace(deleted)
        cluster.kubectl("create", "configmap", "c", "-n", deleted)
        cluster.kubectl("delete", "namespace", deleted, "--wait=false")
        _wait(lambda: gone(deleted), timeout=120, what=f"namespace {deleted} deleted", log=replicas[1])
        elapsed = time.monotonic() - started
        _wait(lambda: gone(stuck), timeout=180, what=f"namespace {stuck} deleted after recovery")
        print(f"namespace deletion with one replica down: {elapsed:.1f}s")
    finally:
        for replica in replicas:
            replica.stop()
        balancer.stop()
    _clean_log(replicas[1])
