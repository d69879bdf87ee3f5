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
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import KubeCluster, free_port
from tests.e2e.deployed import (
    APISERVICE,
    NAMESPACE,
    Deployed,
    MountedImage,
    Replica,
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
        except (subprocess.CalledProcessError, RuntimeError, KeyError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    tail = log.log_tail() if log is not None else ""
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})\n{tail}")


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
