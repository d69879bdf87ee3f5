"""The generated envoy sidecar config in front of a real TLS gRPC server (real Envoy, real grpcio).

The store side requires TLS, a client certificate signed by its client CA and a bearer token in
the ``authorization`` metadata. Query's side is what Thanos Query does: plaintext h2c gRPC to
127.0.0.1. Credentials are laid out like a kubelet Secret volume (``..data`` symlink swap), so
rotation here is exactly what happens in a pod.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from tests.envoy.pki import make_ca, make_leaf
from thanos_operator import envoy

pytestmark = pytest.mark.envoy

METHOD = "/thanos.info.Info/Info"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_secret_volume(directory: Path, files: dict[str, bytes]) -> None:
    """Publish files the way the kubelet's atomic writer does: new dir, then swap ``..data``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f"..{time.time_ns()}"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_bytes(content)
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(stamp.name)
    os.replace(tmp_link, directory / "..data")
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


class TokenCheckingStore:
    """A gRPC server that answers METHOD only for the currently expected bearer token."""

    def __init__(self, *, server_cert: bytes, server_key: bytes, client_ca: bytes, token: str) -> None:
        self.expected_token = token
        self.calls = 0
        self.port = free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            "thanos.info.Info", {"Info": grpc.unary_unary_rpc_method_handler(self._info)}
        )
        self.server.add_generic_rpc_handlers((handler,))
        credentials = grpc.ssl_server_credentials(
            [(server_key, server_cert)], root_certificates=client_ca, require_client_auth=True
        )
        self.server.add_secure_port(f"127.0.0.1:{self.port}", credentials)

    def _info(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        if metadata.get("authorization") != f"Bearer {self.expected_token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        self.calls += 1
        return b"info:" + request


@pytest.fixture
def setup(tmp_path: Path, envoy_bin: str) -> Iterator[dict[str, object]]:
    server_ca, server_ca_key, server_ca_cert = make_ca("store-ca")
    client_ca, client_ca_key, client_ca_cert = make_ca("client-ca")
    store_cert = make_leaf(
        server_ca_key, server_ca_cert, name="store", dns=["store.test"], ips=[], client=False
    )
    client_cert = make_leaf(client_ca_key, client_ca_cert, name="query", dns=[], ips=[], client=True)

    store = TokenCheckingStore(
        server_cert=store_cert.cert, server_key=store_cert.key, client_ca=client_ca.cert, token="token-one"
    )
    store.server.start()

    full = tmp_path / "stores" / "0"
    write_secret_volume(
        full,
        {
            envoy.CA_FILE: server_ca.cert,
            envoy.CERT_FILE: client_cert.cert,
            envoy.KEY_FILE: client_cert.key,
            envoy.TOKEN_FILE: b"token-one",
        },
    )
    no_client_cert = tmp_path / "stores" / "1"
    write_secret_volume(no_client_cert, {envoy.CA_FILE: server_ca.cert, envoy.TOKEN_FILE: b"token-one"})

    base = free_port()
    while any(not _port_free(base + i) for i in range(1, 3)):
        base = free_port()
    common = {"host": "127.0.0.1", "port": store.port}
    endpoints = [
        # 0: everything right (SNI/SAN store.test, mTLS, token).
        envoy.ProxiedEndpoint(
            index=0,
            server_name="store.test",
            credentials_dir=str(full),
            client_cert=True,
            bearer_token=True,
            **common,
        ),  # type: ignore[arg-type]
        # 1: no client certificate.
        envoy.ProxiedEndpoint(
            index=1,
            server_name="store.test",
            credentials_dir=str(no_client_cert),
            client_cert=False,
            bearer_token=True,
            **common,
        ),  # type: ignore[arg-type]
        # 2: certificate name mismatch (the store's certificate is for store.test only).
        envoy.ProxiedEndpoint(
            index=2,
            server_name="other.test",
            credentials_dir=str(full),
            client_cert=True,
            bearer_token=True,
            **common,
        ),  # type: ignore[arg-type]
    ]
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    ready_port = free_port()
    files = envoy.envoy_files(
        endpoints,
        config_dir=str(config_dir),
        node_id="test/t",
        admin_port=free_port(),
        base_port=base,
        ready_port=ready_port,
    )
    for name, text in files.items():
        (config_dir / name).write_text(text)
    log = (tmp_path / "envoy.log").open("wb")
    proc = subprocess.Popen(
        [envoy_bin, "-c", str(config_dir / envoy.BOOTSTRAP_FILE), "--disable-hot-restart", "-l", "info"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90  # listeners warm up after their SDS secrets load; slow under load
        while any(_port_free(base + i) for i in range(3)):
            assert proc.poll() is None, (tmp_path / "envoy.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "envoy listeners did not come up"
            time.sleep(0.1)
        yield {
            "store": store,
            "base": base,
            "full": full,
            "proc": proc,
            "log": tmp_path / "envoy.log",
            "server_ca": server_ca.cert,
            "client_cert": client_cert,
            "ready_port": ready_port,
        }
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        store.server.stop(0)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def call(port: int, payload: bytes = b"ping") -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        result: bytes = channel.unary_unary(METHOD)(payload, timeout=5)
        return result


def call_code(port: int) -> grpc.StatusCode:
    try:
        call(port)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def test_call_through_listener_succeeds_with_tls_client_cert_and_token(setup: dict[str, object]) -> None:
    base = int(setup["base"])  # type: ignore[call-overload]
    assert call(base) == b"info:ping"
    store = setup["store"]
    assert isinstance(store, TokenCheckingStore)
    assert store.calls >= 1


def test_without_client_certificate_the_call_fails(setup: dict[str, object]) -> None:
    base = int(setup["base"])  # type: ignore[call-overload]
    assert call(base) == b"info:ping"  # the same store works with a client certificate
    assert call_code(base + 1) == grpc.StatusCode.UNAVAILABLE


def test_certificate_name_mismatch_fails(setup: dict[str, object]) -> None:
    base = int(setup["base"])  # type: ignore[call-overload]
    assert call_code(base + 2) == grpc.StatusCode.UNAVAILABLE


def test_wrong_token_fails_and_rotating_the_file_is_picked_up_without_restart(
    setup: dict[str, object],
) -> None:
    base = int(setup["base"])  # type: ignore[call-overload]
    store = setup["store"]
    proc = setup["proc"]
    assert isinstance(store, TokenCheckingStore) and isinstance(proc, subprocess.Popen)
    assert call(base) == b"info:ping"

    store.expected_token = "token-two"  # the store rotated its token; envoy still sends the old one
    assert call_code(base) == grpc.StatusCode.UNAUTHENTICATED

    full = setup["full"]
    assert isinstance(full, Path)
    client_cert = setup["client_cert"]
    write_secret_volume(
        full,
        {
            envoy.CA_FILE: setup["server_ca"],
            envoy.CERT_FILE: client_cert.cert,  # type: ignore[attr-defined, dict-item]
            envoy.KEY_FILE: client_cert.key,
            envoy.TOKEN_FILE: b"token-two",  # type: ignore[attr-defined]
        },
    )
    deadline = time.monotonic() + 20
    while call_code(base) != grpc.StatusCode.OK:
        assert time.monotonic() < deadline, "envoy did not pick up the rotated token within 20s"
        time.sleep(0.2)
    assert proc.poll() is None  # the same envoy process, never restarted
    assert call(base, b"again") == b"info:again"


def test_every_call_is_isolated_per_thread(setup: dict[str, object]) -> None:
    """Concurrent calls through one listener all succeed (HTTP/2 multiplexing upstream)."""
    base = int(setup["base"])  # type: ignore[call-overload]
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda i=i: results.append(call(base, b"%d" % i))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == sorted(b"info:%d" % i for i in range(8))


def test_readiness_listener_answers_ready_on_every_address(setup: dict[str, object]) -> None:
    """The kubelet probes the pod IP, not loopback: the /ready listener binds 0.0.0.0."""
    import urllib.error
    import urllib.request

    port = setup["ready_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{envoy.READY_PATH}", timeout=5) as response:
        assert response.status == 200
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    except urllib.error.HTTPError as error:
        assert error.code == 404
    else:
        raise AssertionError("only /ready is served")
