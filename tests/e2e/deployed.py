"""Run Panopticon *as deployed*: the built image, the shipped manifests, the in-cluster config.

No OCI runtime can start containers on the build machines (crun is refused ``setrlimit``), so
this module does what the kubelet and the runtime would, with plain Linux tools:

- ``built_image()`` builds (or reuses, keyed by the inputs' hash) the image with
  ``scripts/build-image`` and ``MountedImage`` exposes its root filesystem (``buildah mount``);
- ``apply_deploy()`` applies ``deploy/`` through ``tests/e2e/overlays/loopback`` (1.20 API
  versions, the Service as ``ExternalName: localhost`` because no kube-proxy runs), creates the
  serving-certificate Secret and patches the APIService's caBundle (README's steps) and port;
- ``Replica`` is one "pod": ``unshare --mount --uts`` with the image root bound read-only, a
  tmpfs on ``/tmp`` (the Deployment's emptyDir) and ``/run``, the ServiceAccount token /
  ``ca.crt`` / ``namespace`` files (a TokenRequest token, no admin credential) at
  ``/var/run/secrets/kubernetes.io/serviceaccount``, the Secret's files at the Deployment's
  mount path, the image's ``Env`` plus ``KUBERNETES_SERVICE_HOST``/``PORT``, and
  ``chroot --userspec=65532:65532`` into the image's entrypoint with the Deployment's own args.
  Pods have their own network namespace; these processes share the host's, so the two listen
  addresses in the args move to free loopback ports (``loopback_args``).
- ``TcpBalancer`` stands in for kube-proxy in front of several replicas: one loopback port,
  connections spread round-robin over the backends that accept a TCP connection (a dead
  replica refuses, like an endpoint kube-proxy has dropped).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import KubeCluster, free_port

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "tests" / "e2e" / "overlays" / "loopback"
NAMESPACE = "panopticon"
APISERVICE = "v1alpha1.metrics.panopticon.io"
# Every APIService deploy/ ships (all served by the same port) and its webhook configuration.
APISERVICES = (APISERVICE, "v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io",
               "v1beta1.external.metrics.k8s.io")
WEBHOOKS = "panopticon"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
INSTALL_HINT = "apt-get install -y buildah mmdebstrap (Debian packages), or run scripts/build-image as root"


def built_image() -> str:
    """The image reference ``scripts/build-image`` printed (a cached build returns at once)."""
    if shutil.which("buildah") is None or shutil.which("mmdebstrap") is None:
        pytest.fail(f"buildah/mmdebstrap not found: {INSTALL_HINT}", pytrace=False)
    result = subprocess.run([str(ROOT / "scripts" / "build-image")], capture_output=True, text=True,
                            timeout=1800)
    if result.returncode != 0:
        pytest.fail(f"scripts/build-image failed:\n{result.stderr[-4000:]}", pytrace=False)
    return result.stdout.strip().splitlines()[-1]


@dataclass
class MountedImage:
    """A buildah working container of ``image`` and its mounted root filesystem."""

    image: str
    container: str
    root: Path
    env: dict[str, str]
    entrypoint: list[str]
    user: str

    @classmethod
    @contextlib.contextmanager
    def of(cls, image: str) -> Iterator[MountedImage]:
        container = _run("buildah", "from", "--pull-never", image).strip()
        try:
            root = Path(_run("buildah", "mount", container).strip())
            config = json.loads(_run("buildah", "inspect", "--type", "image", image))["OCIv1"]["config"]
            env = dict(item.split("=", 1) for item in config.get("Env") or [])
            yield cls(image, container, root, env, list(config["Entrypoint"]), config.get("User", ""))
        finally:
            subprocess.run(["buildah", "umount", container], capture_output=True, check=False)
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)

    def host_path(self, path: str) -> Path:
        """Where ``path`` (absolute, inside the image) is on the host, following symlinks in the image
        (``/var/run`` is a link to ``/run`` in Debian)."""
        current = self.root
        parts = [p for p in path.split("/") if p]
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = current / part
            if candidate.is_symlink():
                hops += 1
                assert hops < 40, f"symlink loop resolving {path}"
                target = os.readlink(candidate)
                base = self.root if target.startswith("/") else current
                parts = [p for p in target.split("/") if p] + parts
                current = base
                continue
            current = candidate
        return current


def _run(*args: str, input: str | None = None) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, input=input, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


# --- manifests -----------------------------------------------------------------------------------


@dataclass
class Deployed:
    """What ``apply_deploy`` created: the Deployment as stored, the serving cert's CA."""

    deployment: dict[str, Any]
    ca_pem: bytes
    secret_files: dict[str, bytes]

    @property
    def container(self) -> dict[str, Any]:
        return dict(self.deployment["spec"]["template"]["spec"]["containers"][0])

    def mount_path(self, volume: str) -> str:
        return str(next(m["mountPath"] for m in self.container["volumeMounts"] if m["name"] == volume))


def apply_deploy(cluster: KubeCluster, workdir: Path, *, apiservice_port: int) -> Deployed:
    """``kubectl apply -k`` the loopback overlay of ``deploy/``, with README's certificate steps."""
    cluster.kubectl("apply", "-k", str(OVERLAY))
    for crd in ("metricsconfigurations.metrics.appscode.com", "thanos.monitoring.paodin.io"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    certs = workdir / "certs"
    out = subprocess.run(
        [str(ROOT / "scripts" / "panopticon"), "certs", "--service", "panopticon", "--namespace", NAMESPACE,
         "--out", str(certs)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()
    cluster.kubectl("delete", "secret", "panopticon-serving-cert", "-n", NAMESPACE, "--ignore-not-found")
    cluster.kubectl("create", "secret", "tls", "panopticon-serving-cert", "-n", NAMESPACE,
                    "--cert", str(certs / "tls.crt"), "--key", str(certs / "tls.key"))
    patch = {"spec": {"caBundle": out, "service": {"port": apiservice_port}}}
    for name in APISERVICES:
        cluster.kubectl("patch", "apiservice", name, "--type", "merge", "-p", json.dumps(patch))
    # The webhooks (README: "the same caBundle into both webhooks") on the same loopback port.
    hooks = cluster.get_json("validatingwebhookconfiguration", WEBHOOKS)["webhooks"]
    ops = [op for i in range(len(hooks)) for op in (
        {"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": out},
        {"op": "replace", "path": f"/webhooks/{i}/clientConfig/service/port", "value": apiservice_port},
    )]
    cluster.kubectl("patch", "validatingwebhookconfiguration", WEBHOOKS, "--type", "json",
                    "-p", json.dumps(ops))
    secret = cluster.get_json("secret", "panopticon-serving-cert", "-n", NAMESPACE)
    files = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    deployment = cluster.get_json("deployment", "panopticon", "-n", NAMESPACE)
    return Deployed(deployment=deployment, ca_pem=base64.b64decode(out), secret_files=files)


def remove_apiservice(cluster: KubeCluster) -> None:
    """Unregister the aggregated APIs and the webhooks (other test modules register their own
    servers under these names, and a dangling ``Fail`` webhook would refuse their Thanos objects)."""
    cluster.kubectl("delete", "apiservice", *APISERVICES, "--ignore-not-found")
    cluster.kubectl("delete", "validatingwebhookconfiguration", WEBHOOKS, "--ignore-not-found")


def loopback_args(args: Sequence[str], *, secure_port: int, metrics_port: int) -> list[str]:
    """The Deployment's args with its listen addresses moved to loopback ports (shared host network)."""
    out: list[str] = []
    for arg in args:
        if arg.startswith("--secure-port="):
            out.append(f"--secure-port={secure_port}")
        elif arg.startswith(("--metrics-bind-address=", "--metrics-address=")):
            out.append(f"{arg.split('=', 1)[0]}=127.0.0.1:{metrics_port}")
        else:
            out.append(arg)
    assert f"--secure-port={secure_port}" in out, f"the Deployment has no --secure-port: {args}"
    assert any(a.endswith(f"=127.0.0.1:{metrics_port}") for a in out), f"no metrics address: {args}"
    return [*out, "--bind-address=127.0.0.1"]


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    """A volume's files as the kubelet writes them: world-readable (defaultMode 0644)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644)
    return directory


# --- one replica -----------------------------------------------------------------------------------


_POD_SCRIPT = r"""
set -eu
root=$1; hostname=$2; shift 2
mount --make-rprivate /
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777,size=16m tmpfs "$root/tmp"
mount -t tmpfs -o mode=755,size=1m tmpfs "$root/run"
while [ "$1" != "--" ]; do
  src=$1; dst=$2; shift 2
  mkdir -p "$dst"
  mount --bind "$src" "$dst"
  mount -o remount,bind,ro "$dst"
done
shift
hostname "$hostname"
exec chroot --userspec=65532:65532 "$root" "$@"
"""


@dataclass
class Replica:
    """One Panopticon "pod" from the mounted image (see the module docstring)."""

    name: str
    image: MountedImage
    args: list[str]
    env: dict[str, str]
    volumes: dict[str, Path]  # path in the image -> host directory (mounted read-only)
    secure_port: int
    ca_pem: bytes
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        binds: list[str] = []
        for inside, host in self.volumes.items():
            binds += [str(host), str(self.image.host_path(inside))]
        env_args = [f"{k}={v}" for k, v in self.env.items()]
        command = ["unshare", "--mount", "--uts", "sh", "-c", _POD_SCRIPT, "pod",
                   str(self.image.root), self.name, *binds, "--",
                   "/usr/bin/env", "-i", *env_args, *self.image.entrypoint, *self.args]
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.args)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def ready(self) -> bool:
        """The readinessProbe: GET /readyz over HTTPS (anonymous) returns 200."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        ctx.check_hostname = False
        try:
            with socket.create_connection(("127.0.0.1", self.secure_port), timeout=2) as raw, \
                    ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                return tls.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def pod_volumes(cluster: KubeCluster, deployed: Deployed, workdir: Path) -> dict[str, Path]:
    """The ServiceAccount files (TokenRequest for the shipped SA) and the serving-cert Secret."""
    spec = deployed.deployment["spec"]["template"]["spec"]
    account = spec["serviceAccountName"]
    token = cluster.kubectl("create", "token", account, "-n", NAMESPACE, "--duration=2h").stdout.strip()
    sa = write_files(workdir / "serviceaccount", {
        "token": token.encode(),
        "ca.crt": Path(cluster.ca_file).read_bytes(),
        "namespace": NAMESPACE.encode(),
    })
    cert = write_files(workdir / "serving-cert", deployed.secret_files)
    return {SA_DIR: sa, deployed.mount_path("serving-cert"): cert}


def make_replica(
    cluster: KubeCluster, image: MountedImage, deployed: Deployed, workdir: Path, *, name: str,
    volumes: dict[str, Path], secure_port: int | None = None, extra_args: Sequence[str] = (),
) -> Replica:
    secure_port = secure_port or free_port()
    metrics_port = free_port()
    args = loopback_args(deployed.container["args"], secure_port=secure_port, metrics_port=metrics_port)
    env = {**image.env, "HOSTNAME": name, "KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": str(cluster.port)}
    return Replica(name=name, image=image, args=[*args, *extra_args], env=env, volumes=volumes,
                   secure_port=secure_port, ca_pem=deployed.ca_pem, log=workdir / f"{name}.log")


# --- a kube-proxy stand-in ------------------------------------------------------------------------


@dataclass
class TcpBalancer:
    """A loopback TCP balancer: round-robin over the backends that accept a connection."""

    backends: list[int]
    port: int = field(default_factory=free_port)
    connections: int = 0
    refused: int = 0
    connected: dict[int, int] = field(default_factory=dict)  # connections made per backend port

    def __post_init__(self) -> None:
        self._open: list[tuple[int, socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        # The previous balancer on this port (the APIService's) may still be closing: retry briefly.
        deadline = time.monotonic() + 10
        while True:
            try:
                self._listener = socket.create_server(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._stop = threading.Event()
        self._next = itertools.count()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="tcp-balancer")

    def start(self) -> TcpBalancer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # close() alone leaves a listener that a thread is blocked accept()ing on still bound on
        # Linux; shutdown() wakes the accept first, so the port is free when stop() returns.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def open_connections(self) -> dict[int, int]:
        """Open connections per backend port right now."""
        with self._lock:
            counts: dict[int, int] = {}
            for port, _client, _backend in self._open:
                counts[port] = counts.get(port, 0) + 1
        return counts

    def set_backends(self, ports: Sequence[int]) -> None:
        """Route new connections to ``ports`` only and cut the open ones to any other backend
        (kube-proxy removing an endpoint; the clients reconnect)."""
        self.backends[:] = list(ports)
        with self._lock:
            gone = [(c, b) for port, c, b in self._open if port not in ports]
        for client, backend in gone:
            for sock in (client, backend):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> tuple[int, socket.socket] | None:
        start = next(self._next)
        backends = list(self.backends)
        for i in range(len(backends)):
            port = backends[(start + i) % len(backends)]
            try:
                return port, socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                self.refused += 1
        return None

    def _serve(self, client: socket.socket) -> None:
        self.connections += 1
        connected = self._connect()
        if connected is None:
            client.close()
            return
        port, backend = connected
        self.connected[port] = self.connected.get(port, 0) + 1
        backend.settimeout(None)
        entry = (port, client, backend)
        with self._lock:
            self._open.append(entry)
        pair = [client, backend]
        try:
            while True:
                readable, _, _ = select.select(pair, [], [], 1.0)
                if self._stop.is_set():
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (backend if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._open.remove(entry)
            client.close()
            backend.close()
