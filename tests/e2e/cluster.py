"""The e2e test cluster: a real etcd and kube-apiserver v1.20.2 on loopback, driven from Python.

``scripts/test-cluster build`` compiles kube-apiserver into the cache; this module starts it.
``KubeCluster.start(state_dir)`` mints the PKI (``cluster_pki``), starts etcd and kube-apiserver
on free 127.0.0.1 ports with RBAC, front-proxy (request-header) authentication, service-account
token signing and a write audit log, waits for ``/readyz`` and writes an admin kubeconfig. The
session fixture in ``conftest.py`` wraps it; ``scripts/test-cluster up|down DIR`` runs it by hand
(``python -m tests.e2e.cluster up DIR``).

By default there is no kube-controller-manager: no garbage collector, no namespace
finalization, no default service accounts. ``KubeCluster.start(..., controller_manager=True)``
or ``cluster.start_controller_manager()`` adds the real one (built from the same source by
``scripts/test-cluster build``), so garbage collection, Endpoints, Deployments, ReplicaSets,
StatefulSets, namespaces and the HPA really run. Pods still need a node: see
``tests/e2e/kubelet.py`` (a simulated kubelet using the real API).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.cluster_pki import Authority, KeyPair, load_authority, new_authority, new_service_account_keys

KUBE_VERSION = "v1.20.2"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
FRONT_PROXY_CLIENT_NAME = "front-proxy-client"
EXTENSION_NAMESPACE = "panopticon-e2e"
_NOT_BUILT = "kube-apiserver not built: run scripts/test-cluster build"
_CM_NOT_BUILT = "kube-controller-manager not built: run scripts/test-cluster build"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
HPA_SYNC_PERIOD = "5s"
_WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


class ClusterError(RuntimeError):
    """The test cluster could not be built, started or used; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("PANOPTICON_CACHE", Path.home() / ".cache" / "panopticon"))


def apiserver_binary() -> Path:
    """The cached kube-apiserver built by ``scripts/test-cluster build``."""
    binary = cache_dir() / "bin" / f"kube-apiserver-{KUBE_VERSION}"
    if not os.access(binary, os.X_OK):
        raise ClusterError(f"{_NOT_BUILT} (looked for {binary})")
    return binary


def controller_manager_binary() -> Path:
    """The cached kube-controller-manager built by ``scripts/test-cluster build``."""
    binary = cache_dir() / "bin" / f"kube-controller-manager-{KUBE_VERSION}"
    if not os.access(binary, os.X_OK):
        raise ClusterError(f"{_CM_NOT_BUILT} (looked for {binary})")
    return binary


def tool(name: str, *, install_hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ClusterError(f"{name} not found on PATH: {install_hint}")
    return found


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free now.

    All sockets stay bound until every port is picked, so the kernel cannot hand out one twice.
    Another process could still take a port before the server binds it; startup failures are
    reported with the server's log, which then names the bind error.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def audit_policy() -> dict[str, Any]:
    """Every write request once (at ResponseComplete) with verb, user, userAgent; reads are not logged."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "verbs": list(_WRITE_VERBS)},
            {"level": "None"},
        ],
    }


def kubeconfig_document(
    *, server: str, ca_file: Path, user: str, credentials: Mapping[str, str]
) -> dict[str, Any]:
    """A single-context kubeconfig; ``credentials`` is the kubeconfig ``user`` entry."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": dict(credentials)}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
        "current-context": "e2e",
    }


def service_name_for(group: str, version: str) -> str:
    """The ExternalName Service name ``register_apiservice`` uses for ``version.group`` (a DNS label)."""
    label = re.sub(r"[^a-z0-9-]+", "-", f"{version}-{group}".lower()).strip("-")
    return label[:63].rstrip("-")


@dataclass(frozen=True)
class APIServiceRegistration:
    """What ``register_apiservice`` created; ``service_dns`` must be a SAN of the serving cert."""

    name: str
    namespace: str
    service: str
    port: int

    @property
    def service_dns(self) -> str:
        return f"{self.service}.{self.namespace}.svc"


@dataclass(frozen=True)
class _Layout:
    """Where everything of one cluster lives inside its state directory."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def users(self) -> Path:
        return self.root / "users"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    def clear(self) -> None:
        """Remove what an earlier, stopped cluster left here (only this layout's own entries)."""
        for directory in (self.pki, self.logs, self.users, self.etcd_data):
            shutil.rmtree(directory, ignore_errors=True)
        for name in ("admin.kubeconfig", "audit-policy.json"):
            (self.root / name).unlink(missing_ok=True)


def _die_with_parent_prefix() -> list[str]:
    """A command prefix that makes the kernel SIGTERM the server when its parent dies.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so it is only used for
    servers started from the main thread (which lives as long as pytest); a server restarted
    from a worker thread (``asyncio.to_thread``) is stopped by the fixture alone. ``setpriv``
    (util-linux, always on Debian) sets it before exec, which avoids a ``preexec_fn`` in a
    threaded process.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "TERM", "--"]


class KubeCluster:
    """A running etcd + kube-apiserver; create with ``KubeCluster.start(state_dir)``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        detach: bool,
        watch_cache_size: int,
        extra_apiserver_args: Sequence[str],
    ) -> None:
        self._layout = _Layout(state_dir)
        self._detach = detach
        self._watch_cache_size = watch_cache_size
        self._extra_apiserver_args = list(extra_apiserver_args)
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._controller_manager: subprocess.Popen[bytes] | None = None
        self.state_dir = state_dir
        self.apiserver_path = apiserver_binary()
        self.etcd_path = tool("etcd", install_hint="apt-get install etcd-server")
        self.kubectl_path = tool(
            "kubectl", install_hint="install kubectl (https://kubernetes.io/docs/tasks/tools/)"
        )
        self.port, self.etcd_port, self.etcd_peer_port = free_ports(3)
        self.server = f"https://127.0.0.1:{self.port}"
        self.etcd_endpoint = f"http://127.0.0.1:{self.etcd_port}"
        self.kubeconfig = state_dir / "admin.kubeconfig"
        self.audit_log = self._layout.logs / "audit.log"
        self.apiserver_log = self._layout.logs / "kube-apiserver.log"
        self.etcd_log = self._layout.logs / "etcd.log"
        self.controller_manager_log = self._layout.logs / "kube-controller-manager.log"
        for directory in (self._layout.pki, self._layout.logs, self._layout.users):
            directory.mkdir(parents=True, exist_ok=True)
        pki = self._layout.pki
        self._cluster_ca = new_authority(pki, name="cluster")
        self._client_ca = new_authority(pki, name="client")
        self._front_proxy_ca = new_authority(pki, name="front-proxy")
        self.serving = self._cluster_ca.issue(
            pki,
            file_stem="apiserver",
            common_name="kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ip_addresses=("127.0.0.1",),
            server=True,
        )
        self.front_proxy_client = self._front_proxy_ca.issue(
            pki, file_stem="front-proxy-client", common_name=FRONT_PROXY_CLIENT_NAME, client=True
        )
        self.admin = self._client_ca.issue(
            pki, file_stem="admin", common_name="e2e-admin", organizations=("system:masters",), client=True
        )
        self.service_account_keys = new_service_account_keys(pki)
        self.ca_file = self._cluster_ca.files.cert
        self.client_ca_file = self._client_ca.files.cert
        self.client_ca_key_file = self._client_ca.files.key
        self.front_proxy_ca_file = self._front_proxy_ca.files.cert
        self.front_proxy_ca_key_file = self._front_proxy_ca.files.key

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        detach: bool = False,
        watch_cache_size: int = 100,
        extra_apiserver_args: Sequence[str] = (),
        timeout: float = 120.0,
        controller_manager: bool = False,
    ) -> KubeCluster:
        """Mint the PKI and start etcd and kube-apiserver; returns once ``/readyz`` is ok.

        ``detach`` leaves the servers running after this process exits (``up``); otherwise they
        die with it. ``watch_cache_size`` is ``--default-watch-cache-size``;
        ``extra_apiserver_args`` are appended to kube-apiserver's command line;
        ``controller_manager`` also starts kube-controller-manager (``start_controller_manager``).
        """
        cluster = cls(
            state_dir,
            detach=detach,
            watch_cache_size=watch_cache_size,
            extra_apiserver_args=extra_apiserver_args,
        )
        try:
            cluster._start_etcd(timeout=timeout)
            cluster._write_static_config()
            cluster._start_apiserver(timeout=timeout)
            if controller_manager:
                cluster.start_controller_manager(timeout=timeout)
        except BaseException:
            cluster.stop()
            raise
        cluster._write_state_file()
        return cluster

    def stop(self) -> None:
        """Stop kube-controller-manager, kube-apiserver, then etcd (state stays in ``state_dir``)."""
        for process in (self._controller_manager, self._apiserver, self._etcd):
            if process is not None:
                _terminate(process)
        self._controller_manager = None
        self._apiserver = None
        self._etcd = None

    @property
    def has_controller_manager(self) -> bool:
        return self._controller_manager is not None and self._controller_manager.poll() is None

    def start_controller_manager(self, *, timeout: float = 120.0) -> None:
        """Start the real kube-controller-manager (idempotent); returns once its controllers act.

        It logs in as ``system:kube-controller-manager`` (client certificate) and, with
        ``--use-service-account-credentials``, runs every controller as its own service account
        in kube-system, so each is authorized by its bootstrap ``system:controller:*`` role
        exactly as in a real cluster. Ready when the service-account controller has created
        ``default/default`` and the token controller its token Secret.
        """
        if self.has_controller_manager:
            return
        binary = controller_manager_binary()
        pair = self._client_ca.issue(
            self._layout.users,
            file_stem="kube-controller-manager",
            common_name=CONTROLLER_MANAGER_USER,
            client=True,
        )
        kubeconfig = self._write_kubeconfig(
            self.state_dir / "controller-manager.kubeconfig",
            user=CONTROLLER_MANAGER_USER,
            credentials={"client-certificate": str(pair.cert), "client-key": str(pair.key)},
        )
        command = [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            "--controllers=*",
            f"--service-account-private-key-file={self.service_account_keys.key}",
            f"--root-ca-file={self.ca_file}",
            "--leader-elect=false",
            "--port=0",
            "--secure-port=0",
            "--use-service-account-credentials",
            f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--v=1",
        ]
        self._controller_manager = self._spawn(command, self.controller_manager_log)
        deadline = time.monotonic() + timeout
        while True:
            if self._controller_manager.poll() is not None:
                code = self._controller_manager.returncode
                self._controller_manager = None
                raise ClusterError(
                    f"kube-controller-manager exited with {code}\n"
                    f"---- {self.controller_manager_log}\n{_tail(self.controller_manager_log, 40)}"
                )
            result = self.kubectl(
                "get", "serviceaccount", "default", "-n", "default", "-o", "json", check=False
            )
            if result.returncode == 0 and json.loads(result.stdout).get("secrets"):
                break
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"kube-controller-manager did not create default/default within {timeout}s\n"
                    f"---- {self.controller_manager_log}\n{_tail(self.controller_manager_log, 40)}"
                )
            time.sleep(0.5)
        self._write_state_file()

    def stop_controller_manager(self) -> None:
        if self._controller_manager is not None:
            _terminate(self._controller_manager)
        self._controller_manager = None

    def restart_apiserver(self, *, timeout: float = 120.0) -> None:
        """Stop and start kube-apiserver on the same port; etcd and all objects stay.

        Open watches break; the new watch cache starts at etcd's current revision, so a watch
        from an older resourceVersion gets 410 Gone.
        """
        if self._apiserver is not None:
            _terminate(self._apiserver)
            self._apiserver = None
        self._start_apiserver(timeout=timeout)
        self._write_state_file()

    def compact_etcd(self) -> int:
        """Compact etcd up to its current revision (through etcd's JSON gateway); returns it.

        Afterwards a watch or consistent list from any older resourceVersion that is not served
        from the watch cache gets 410 Gone.
        """
        header = self._etcd_call("/v3/kv/range", {"key": base64.b64encode(b"\0").decode(), "limit": 1})
        revision = int(header["header"]["revision"])
        self._etcd_call("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def logs_tail(self, *, lines: int = 40) -> str:
        """The end of the kube-apiserver and etcd logs, for failure messages."""
        parts = []
        logs = [self.apiserver_log, self.etcd_log]
        if self.controller_manager_log.exists():
            logs.append(self.controller_manager_log)
        for log in logs:
            parts.append(f"---- {log} (last {lines} lines)\n{_tail(log, lines)}")
        return "\n".join(parts)

    # -- using the cluster -----------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        user_kubeconfig: Path | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster (as admin unless ``user_kubeconfig``)."""
        kubeconfig = user_kubeconfig or self.kubeconfig
        command = [self.kubectl_path, f"--kubeconfig={kubeconfig}", *args]
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        return result

    def apply(self, *objects: Mapping[str, Any]) -> None:
        """``kubectl apply`` the given manifests (as admin)."""
        document = {"apiVersion": "v1", "kind": "List", "items": [dict(obj) for obj in objects]}
        self.kubectl("apply", "-f", "-", input=json.dumps(document))

    def get_json(self, *args: str, user_kubeconfig: Path | None = None) -> Any:
        """``kubectl get ARGS -o json``, decoded."""
        result = self.kubectl("get", *args, "-o", "json", user_kubeconfig=user_kubeconfig)
        return json.loads(result.stdout)

    def ensure_namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def make_user_kubeconfig(self, user: str, groups: Iterable[str] = ()) -> Path:
        """A kubeconfig logging in as ``user`` (member of ``groups``) with a client certificate."""
        stem = _file_stem(user)
        pair = self._client_ca.issue(
            self._layout.users, file_stem=stem, common_name=user, organizations=tuple(groups), client=True
        )
        credentials = {"client-certificate": str(pair.cert), "client-key": str(pair.key)}
        return self._write_kubeconfig(
            self._layout.users / f"{stem}.kubeconfig", user=user, credentials=credentials
        )

    def make_token_kubeconfig(self, name: str, token: str) -> Path:
        """A kubeconfig logging in with a bearer ``token`` (e.g. a service-account token)."""
        return self._write_kubeconfig(
            self._layout.users / f"{_file_stem(name)}.token.kubeconfig",
            user=name,
            credentials={"token": token},
        )

    def service_account_token(self, namespace: str, name: str, *, duration: str = "1h") -> str:
        """Create namespace and service account if missing; return a token (``kubectl create token``)."""
        self.ensure_namespace(namespace)
        self.apply(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
        )
        result = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}")
        return result.stdout.strip()

    def issue_serving_cert(
        self,
        directory: Path,
        *,
        name: str,
        dns_names: Sequence[str],
        ip_addresses: Sequence[str] = ("127.0.0.1",),
    ) -> KeyPair:
        """A serving certificate signed by the cluster CA (``ca_file``), e.g. for an extension server."""
        return self._cluster_ca.issue(
            directory,
            file_stem=_file_stem(name),
            common_name=dns_names[0] if dns_names else name,
            dns_names=tuple(dns_names),
            ip_addresses=tuple(ip_addresses),
            server=True,
        )

    def issue_client_cert(self, directory: Path, *, user: str, groups: Iterable[str] = ()) -> KeyPair:
        """A client certificate signed by the client CA, trusted by ``--client-ca-file``."""
        return self._client_ca.issue(
            directory, file_stem=_file_stem(user), common_name=user, organizations=tuple(groups), client=True
        )

    def issue_front_proxy_cert(
        self, directory: Path, *, common_name: str = FRONT_PROXY_CLIENT_NAME
    ) -> KeyPair:
        """A client certificate signed by the front-proxy CA (what kube-apiserver proxies with)."""
        return self._front_proxy_ca.issue(
            directory, file_stem=_file_stem(common_name), common_name=common_name, client=True
        )

    def register_apiservice(
        self,
        group: str,
        version: str,
        port: int,
        ca_bundle: bytes,
        *,
        namespace: str = EXTENSION_NAMESPACE,
        service: str | None = None,
        group_priority_minimum: int = 1000,
        version_priority: int = 15,
    ) -> APIServiceRegistration:
        """Route ``/apis/<group>/<version>`` to an HTTPS server on 127.0.0.1:``port``.

        Creates ``namespace``, an ExternalName Service (``externalName: localhost``) and the
        APIService pointing at it; kube-apiserver then dials ``localhost:port`` and verifies the
        server certificate against ``ca_bundle`` (PEM) for the name ``<service>.<namespace>.svc``
        (``registration.service_dns``, use ``service_name_for(group, version)`` to know it in
        advance).
        """
        registration = APIServiceRegistration(
            name=f"{version}.{group}",
            namespace=namespace,
            service=service or service_name_for(group, version),
            port=port,
        )
        self.ensure_namespace(namespace)
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": registration.service, "namespace": namespace},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                },
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": registration.name},
                "spec": {
                    "group": group,
                    "version": version,
                    "service": {"namespace": namespace, "name": registration.service, "port": port},
                    "caBundle": base64.b64encode(ca_bundle).decode(),
                    "groupPriorityMinimum": group_priority_minimum,
                    "versionPriority": version_priority,
                },
            },
        )
        return registration

    def unregister_apiservice(self, registration: APIServiceRegistration) -> None:
        """Delete what ``register_apiservice`` created (the namespace stays); missing is fine."""
        self.kubectl("delete", "apiservice", registration.name, "--ignore-not-found")
        self.kubectl(
            "delete", "service", registration.service, "-n", registration.namespace, "--ignore-not-found"
        )

    def wait_apiservice_available(self, name: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until APIService ``name`` is Available=True *and* its discovery path is routed.

        The condition flips before kube-apiserver installs the proxy handler for the group, so a
        request right after it can still get 404; this also waits for ``GET /apis/<g>/<v>`` = 200.
        Returns the APIService object.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        routed = "not tried"
        while time.monotonic() < deadline:
            last = self.get_json("apiservice", name)
            conditions = last.get("status", {}).get("conditions", [])
            available = any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)
            if available:
                spec = last["spec"]
                status, body = self._get(f"/apis/{spec['group']}/{spec['version']}")
                if status == 200:
                    return last
                routed = f"{status} {body[:200]}"
            time.sleep(0.3)
        raise ClusterError(
            f"APIService {name} not Available after {timeout}s: {json.dumps(last.get('status'))}; "
            f"discovery: {routed}\n{self.logs_tail()}"
        )

    def audit_events(self, *, verbs: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Audit events logged so far (only writes are logged), optionally only ``verbs``."""
        wanted = set(verbs) if verbs is not None else None
        events: list[dict[str, Any]] = []
        if not self.audit_log.exists():
            return events
        lines = self.audit_log.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                # kube-apiserver may be writing the last line right now; it is read next time.
                if number == len(lines):
                    break
                raise
            if wanted is None or event.get("verb") in wanted:
                events.append(event)
        return events

    # -- internals -------------------------------------------------------------------------------

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        prefix = [] if self._detach else _die_with_parent_prefix()
        with log.open("ab") as sink:
            return subprocess.Popen(
                [*prefix, *command],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _start_etcd(self, *, timeout: float) -> None:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        command = [
            self.etcd_path,
            "--name=e2e",
            f"--data-dir={self._layout.etcd_data}",
            f"--listen-client-urls={self.etcd_endpoint}",
            f"--advertise-client-urls={self.etcd_endpoint}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=e2e={peer}",
            "--log-level=warn",
            "--logger=zap",
        ]
        self._etcd = self._spawn(command, self.etcd_log)
        deadline = time.monotonic() + timeout
        while True:
            if self._etcd.poll() is not None:
                raise ClusterError(f"etcd exited with {self._etcd.returncode}\n{self.logs_tail()}")
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(f"{self.etcd_endpoint}/health", timeout=2) as response,
            ):
                if json.loads(response.read()).get("health") == "true":
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"etcd not healthy after {timeout}s\n{self.logs_tail()}")
            time.sleep(0.2)

    def _write_static_config(self) -> None:
        (self.state_dir / "audit-policy.json").write_text(json.dumps(audit_policy(), indent=2))
        self._write_kubeconfig(
            self.kubeconfig,
            user="e2e-admin",
            credentials={"client-certificate": str(self.admin.cert), "client-key": str(self.admin.key)},
        )

    def _apiserver_command(self) -> list[str]:
        pki = self._layout.pki
        return [
            str(self.apiserver_path),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--insecure-port=0",
            f"--cert-dir={pki}",
            f"--tls-cert-file={self.serving.cert}",
            f"--tls-private-key-file={self.serving.key}",
            f"--etcd-servers={self.etcd_endpoint}",
            "--authorization-mode=Node,RBAC",
            f"--client-ca-file={self.client_ca_file}",
            f"--requestheader-client-ca-file={self.front_proxy_ca_file}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT_NAME}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.front_proxy_client.cert}",
            f"--proxy-client-key-file={self.front_proxy_client.key}",
            "--enable-aggregator-routing=false",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.service_account_keys.cert}",
            f"--service-account-signing-key-file={self.service_account_keys.key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # 127.0.0.1 is not a valid endpoint address for the `kubernetes` Service; without a
            # reconciler the apiserver does not keep retrying to write it.
            "--endpoint-reconciler-type=none",
            f"--audit-policy-file={self.state_dir / 'audit-policy.json'}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            f"--default-watch-cache-size={self._watch_cache_size}",
            "--profiling=false",
            *self._extra_apiserver_args,
        ]

    def _start_apiserver(self, *, timeout: float) -> None:
        self._apiserver = self._spawn(self._apiserver_command(), self.apiserver_log)
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while True:
            if self._apiserver.poll() is not None:
                raise ClusterError(
                    f"kube-apiserver exited with {self._apiserver.returncode}\n{self.logs_tail()}"
                )
            try:
                status, body = self._get("/readyz")
                if status == 200:
                    break
                last_error = f"/readyz {status}: {body[-500:]}"
            except OSError as error:
                last_error = str(error)
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"kube-apiserver not ready after {timeout}s ({last_error})\n{self.logs_tail()}"
                )
            time.sleep(0.3)
        status, body = self._get("/version")
        version = json.loads(body).get("gitVersion")
        if version != KUBE_VERSION:
            raise ClusterError(f"kube-apiserver reports version {version!r}, expected {KUBE_VERSION}")

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return context

    def _get(self, path: str) -> tuple[int, str]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self._ssl_context(), timeout=5
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()

    def _etcd_call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.etcd_endpoint}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def _write_kubeconfig(self, path: Path, *, user: str, credentials: Mapping[str, str]) -> Path:
        document = kubeconfig_document(
            server=self.server, ca_file=self.ca_file, user=user, credentials=credentials
        )
        path.write_text(json.dumps(document, indent=2))
        path.chmod(0o600)
        return path

    def _write_state_file(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ca_file": str(self.ca_file),
            "etcd_endpoint": self.etcd_endpoint,
            "pids": [p.pid for p in (self._controller_manager, self._apiserver, self._etcd) if p is not None],
        }
        self._layout.state_file.write_text(json.dumps(state, indent=2))


def _terminate(process: subprocess.Popen[bytes], *, grace: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "user"


def stop_detached(state_dir: Path) -> None:
    """Stop the servers that ``up`` left running for ``state_dir``."""
    state_file = _Layout(state_dir).state_file
    if not state_file.exists():
        raise ClusterError(f"no cluster state in {state_dir} (expected {state_file})")
    pids = json.loads(state_file.read_text())["pids"]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    state_file.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def load_client_authority(state_dir: Path) -> Authority:
    """The client CA of a cluster in ``state_dir`` (for tools minting user certs out of process)."""
    pki = _Layout(state_dir).pki
    return load_authority(KeyPair(cert=pki / "client-ca.crt", key=pki / "client-ca.key"), name="client")


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python -m tests.e2e.cluster up|down DIR", file=sys.stderr)
        return 2
    action, directory = argv[0], Path(argv[1]).resolve()
    try:
        if action == "down":
            stop_detached(directory)
            print(f"stopped the cluster in {directory}", file=sys.stderr)
            return 0
        if (directory / "cluster.json").exists():
            raise ClusterError(f"{directory} already holds a running cluster; run `down {directory}` first")
        directory.mkdir(parents=True, exist_ok=True)
        # etcd would refuse its old data directory under new ports; the CA changes anyway.
        _Layout(directory).clear()
        started = time.monotonic()
        cluster = KubeCluster.start(directory, detach=True)
    except ClusterError as error:
        print(f"test-cluster: {error}", file=sys.stderr)
        return 1
    print(f"# kube-apiserver {KUBE_VERSION} at {cluster.server} (ready in {time.monotonic() - started:.1f}s)")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
