"""A simulated kubelet: a Node whose pods "run", driven only through the real API.

There is no container runtime here, so no real kubelet. What a kubelet does towards the API
server is small and well defined, and this class does exactly that, with a node's identity:

- registers a ``Node`` (as ``system:node:<name>``, group ``system:nodes``, so the kube-apiserver's
  Node authorizer judges every request as it would a real kubelet's), reports it Ready with a
  fresh heartbeat every ``heartbeat`` seconds and renews its ``Lease`` in ``kube-node-lease``
  (without both, the node lifecycle controller marks the node and its pods NotReady after 40 s);
- plays the scheduler for pods that nobody schedules: binds every pending, unbound pod to the
  node through ``pods/binding`` (as the admin, since nodes may not bind);
- sets each bound pod Running with a unique pod IP (``10.244.0.2`` upwards), all containers
  started and the conditions ``PodScheduled``, ``Initialized``, ``ContainersReady`` and
  ``Ready`` True (unless a test marked it NotReady with :meth:`set_ready`);
- finishes graceful deletion: a pod with a ``deletionTimestamp`` is deleted with grace period 0,
  as a kubelet does once its containers stopped.

Nothing runs inside the pods: probes are not executed, images are not pulled, volumes are not
mounted. Readiness is what the test says it is. Everything downstream (Endpoints and
EndpointSlices, StatefulSet ordering, Deployment rollouts, the garbage collector, the HPA) is the
real kube-controller-manager reacting to these status writes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.cluster import KubeCluster

NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
_STRATEGIC = "application/strategic-merge-patch+json"
_MERGE = "application/merge-patch+json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubeletError(RuntimeError):
    """An API call of the simulated kubelet failed."""


class _Api:
    """A tiny JSON-over-HTTPS client with one identity (one connection, re-opened on error)."""

    def __init__(self, *, port: int, ca_file: Path, cert: Path, key: Path) -> None:
        self._port = port
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._context.load_cert_chain(str(cert), str(key))
        self._connection: http.client.HTTPSConnection | None = None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (200, 201),
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPSConnection(
                    "127.0.0.1", self._port, context=self._context, timeout=10
                )
            try:
                headers = {"Accept": "application/json", "User-Agent": "simulated-kubelet"}
                if data is not None:
                    headers["Content-Type"] = content_type
                self._connection.request(method, path, body=data, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            decoded = json.loads(raw) if raw else {}
            if response.status not in ok:
                raise KubeletError(f"{method} {path}: {response.status} {decoded.get('message', raw[:300])}")
            return response.status, decoded
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


class SimulatedKubelet:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(
        self,
        cluster: KubeCluster,
        *,
        node_name: str = "sim-node-0",
        interval: float = 0.25,
        heartbeat: float = 10.0,
        pod_ip_prefix: str = "10.244.0.",
    ) -> None:
        self.cluster = cluster
        self.node_name = node_name
        self.interval = interval
        self.heartbeat = heartbeat
        self._pod_ip_prefix = pod_ip_prefix
        directory = cluster.state_dir / "kubelet"
        directory.mkdir(exist_ok=True)
        node_pair = cluster.issue_client_cert(
            directory, user=f"system:node:{node_name}", groups=("system:nodes",)
        )
        self._node_api = _Api(
            port=cluster.port, ca_file=cluster.ca_file, cert=node_pair.cert, key=node_pair.key
        )
        self._admin_api = _Api(
            port=cluster.port, ca_file=cluster.ca_file, cert=cluster.admin.cert, key=cluster.admin.key
        )
        self._lock = threading.Lock()
        self._not_ready: set[tuple[str, str]] = set()
        self._ips: dict[str, str] = {}  # pod uid -> IP
        self._next_ip = 2
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = 0.0
        self.errors: list[str] = []
        self.status_writes = 0

    # -- test API --------------------------------------------------------------------------------
    def set_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Make the pod's readiness probe pass (default) or fail from now on."""
        with self._lock:
            if ready:
                self._not_ready.discard((namespace, name))
            else:
                self._not_ready.add((namespace, name))

    def pod_ip(self, uid: str) -> str | None:
        with self._lock:
            return self._ips.get(uid)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> SimulatedKubelet:
        self._register()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{self.node_name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._node_api.close()
        self._admin_api.close()

    def __enter__(self) -> SimulatedKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._last_beat >= self.heartbeat:
                    self._beat()
                self._bind_pending()
                self._sync_pods()
            except (KubeletError, OSError, http.client.HTTPException) as error:
                self.errors.append(str(error))
                del self.errors[:-50]
            self._stop.wait(self.interval)

    def _register(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": "sim-zone-a",
                },
            },
            "spec": {},
        }
        self._node_api.call("POST", "/api/v1/nodes", node, ok=(201, 409))
        self._beat()

    def _beat(self) -> None:
        now = _now()
        status = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "simulated kubelet is posting ready status",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    },
                    *(
                        {
                            "type": kind,
                            "status": "False",
                            "reason": f"KubeletHasNo{kind}",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
                    ),
                ],
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                "nodeInfo": {
                    "kubeletVersion": "v1.20.2-simulated",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            }
        }
        self._node_api.call(
            "PATCH", f"/api/v1/nodes/{self.node_name}/status", status, content_type=_STRATEGIC
        )
        self._renew_lease()
        self._last_beat = time.monotonic()

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases"
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": _now_micro(),
        }
        status, _ = self._node_api.call(
            "PATCH", f"{path}/{self.node_name}", {"spec": spec}, content_type=_MERGE, ok=(200, 404)
        )
        if status == 404:
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": NODE_LEASE_NAMESPACE},
                "spec": spec,
            }
            self._node_api.call("POST", path, lease, ok=(201, 409))

    def _list_pods(self, field_selector: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"fieldSelector": field_selector})
        _, pods = self._node_api.call("GET", f"/api/v1/pods?{query}")
        items: list[dict[str, Any]] = pods.get("items") or []
        return items

    def _bind_pending(self) -> None:
        query = urllib.parse.urlencode({"fieldSelector": "spec.nodeName=,status.phase=Pending"})
        _, pods = self._admin_api.call("GET", f"/api/v1/pods?{query}")
        for pod in pods.get("items") or []:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
            }
            self._admin_api.call(
                "POST",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding",
                binding,
                ok=(201, 404, 409),
            )

    def _ip_for(self, uid: str) -> str:
        with self._lock:
            if uid not in self._ips:
                self._ips[uid] = f"{self._pod_ip_prefix}{self._next_ip}"
                self._next_ip += 1
            return self._ips[uid]

    def _sync_pods(self) -> None:
        for pod in self._list_pods(f"spec.nodeName={self.node_name}"):
            meta = pod["metadata"]
            namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
            if meta.get("deletionTimestamp"):
                self._admin_api.call(
                    "DELETE",
                    f"/api/v1/namespaces/{namespace}/pods/{name}",
                    {
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": uid},
                    },
                    ok=(200, 404, 409),
                )
                continue
            with self._lock:
                ready = (namespace, name) not in self._not_ready
            wanted = self._status(pod, ip=self._ip_for(uid), ready=ready)
            if not _status_matches(pod.get("status") or {}, wanted):
                self._node_api.call(
                    "PATCH",
                    f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                    {"status": wanted},
                    content_type=_STRATEGIC,
                    ok=(200, 404, 409),
                )
                self.status_writes += 1

    def _status(self, pod: Mapping[str, Any], *, ip: str, ready: bool) -> dict[str, Any]:
        current = pod.get("status") or {}
        now = _now()
        started = current.get("startTime") or now
        flag = "True" if ready else "False"
        conditions = []
        for kind, value in (
            ("PodScheduled", "True"),
            ("Initialized", "True"),
            ("ContainersReady", flag),
            ("Ready", flag),
        ):
            previous = next((c for c in current.get("conditions") or [] if c.get("type") == kind), None)
            since = previous.get("lastTransitionTime") if previous is not None else None
            changed = previous is None or previous.get("status") != value
            conditions.append(
                {
                    "type": kind,
                    "status": value,
                    "lastProbeTime": None,
                    "lastTransitionTime": now if changed else since,
                }
            )
        containers = []
        for container in pod["spec"]["containers"]:
            containers.append(
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": f"simulated://{container['image']}",
                    "containerID": f"simulated://{pod['metadata']['uid']}/{container['name']}",
                    "ready": ready,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
            )
        return {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "qosClass": current.get("qosClass", "BestEffort"),
            "conditions": conditions,
            "containerStatuses": containers,
        }


def _status_matches(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    if current.get("phase") != wanted["phase"] or current.get("podIP") != wanted["podIP"]:
        return False
    have = {c.get("type"): c.get("status") for c in current.get("conditions") or []}
    if any(have.get(c["type"]) != c["status"] for c in wanted["conditions"]):
        return False
    ready = {c.get("name"): c.get("ready") for c in current.get("containerStatuses") or []}
    return all(ready.get(c["name"]) == c["ready"] for c in wanted["containerStatuses"])


@contextlib.contextmanager
def simulated_kubelet(cluster: KubeCluster, **options: Any) -> Any:
    kubelet = SimulatedKubelet(cluster, **options)
    kubelet.start()
    try:
        yield kubelet
    finally:
        kubelet.stop()
