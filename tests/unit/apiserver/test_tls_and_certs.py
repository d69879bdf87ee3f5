"""Certificates: generation, `panopticon certs`, client-cert verification, TLS reload without restart."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from apiserver.authconfig import AuthConfigSource, AuthOverrides
from certs.generate import new_ca, new_client_cert, new_serving_cert, write_pair
from certs.reload import ReloadingServerTLS
from certs.verify import VerificationError, verify_client_certificate
from tests.unit.apiserver.conftest import MASTERS_HEADERS, Pki, serve

GV = "/apis/metrics.panopticon.io/v1alpha1"
ROOT = Path(__file__).resolve().parents[3]


def _run_certs_command(out: Path) -> subprocess.CompletedProcess[str]:
    argv = ["certs", "--service", "panopticon", "--namespace", "monitoring", "--out", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "apiserver.cli", *argv], capture_output=True, text=True, cwd=ROOT, check=True
    )


def test_certs_command_writes_ca_serving_cert_and_prints_ca_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run_certs_command(out)
    bundle = base64.b64decode(proc.stdout.strip())
    ca = x509.load_pem_x509_certificate(bundle)
    assert ca.subject == x509.load_pem_x509_certificate((out / "ca.crt").read_bytes()).subject
    leaf = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert sans == [
        "panopticon",
        "panopticon.monitoring",
        "panopticon.monitoring.svc",
        "panopticon.monitoring.svc.cluster.local",
    ]
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    leaf.verify_directly_issued_by(ca)
    for key in ("tls.key", "ca.key"):
        assert stat.S_IMODE(os.stat(out / key).st_mode) == 0o600, key
    # Re-running keeps the CA (same caBundle) and renews the serving certificate.
    again = _run_certs_command(out)
    assert again.stdout == proc.stdout
    assert x509.load_pem_x509_certificate((out / "tls.crt").read_bytes()).serial_number != leaf.serial_number


def test_verify_client_certificate_checks_issuer_usage_and_validity() -> None:
    ca, other = new_ca("ca"), new_ca("other")
    client = new_client_cert(ca, common_name="front-proxy-client", organizations=["o1"])
    der = client.certificate.public_bytes(
        encoding=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]
        ).Encoding.DER
    )
    verified = verify_client_certificate(der, [other.certificate, ca.certificate])
    assert verified.common_name == "front-proxy-client" and verified.organizations == ("o1",)
    with pytest.raises(VerificationError, match="unknown authority"):
        verify_client_certificate(der, [other.certificate])
    with pytest.raises(VerificationError, match="expired"):
        verify_client_certificate(der, [ca.certificate], now=dt.datetime.now(dt.UTC) + dt.timedelta(days=400))
    server_only = new_serving_cert(ca, dns_names=["x"])
    sder = server_only.certificate.public_bytes(
        encoding=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]
        ).Encoding.DER
    )
    with pytest.raises(VerificationError, match="key usage"):
        verify_client_certificate(sder, [ca.certificate])
    # A leaf (not a CA) cannot act as the issuer even with a matching name.
    fake_issuer = new_client_cert(ca, common_name="ca")
    with pytest.raises(VerificationError):
        verify_client_certificate(der, [fake_issuer.certificate])


async def _peer_serial(port: int, ca_pem: bytes) -> int:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.check_hostname = False
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der).serial_number


async def test_serving_certificate_reloads_from_disk_without_restart(tmp_path: Path, pki: Pki) -> None:
    ca = new_ca("rotating")
    first = new_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    cert, key = write_pair(tmp_path, "tls", first)
    tls = ReloadingServerTLS(cert_file=cert, key_file=key, poll_interval=0.0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.front)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await _peer_serial(port, ca.cert_pem) == first.certificate.serial_number
        second = new_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
        write_pair(tmp_path, "tls", second)
        os.utime(cert, ns=(1, 1))  # a distinct stamp even within one mtime tick
        assert await _peer_serial(port, ca.cert_pem) == second.certificate.serial_number
        assert tls.reloads == 1
        # A half-written pair (cert without its key) keeps the old pair serving.
        cert.write_bytes(new_serving_cert(ca, dns_names=["localhost"]).cert_pem)
        assert await _peer_serial(port, ca.cert_pem) == second.certificate.serial_number
    finally:
        server.close()
        await server.wait_closed()


async def test_s03_tls_requests_but_does_not_require_client_cert(pki: Pki) -> None:
    result, server = await serve(pki)
    try:
        # Without a certificate the handshake succeeds (the request is anonymous).
        async with result.session() as s, s.get(result.url + "/healthz") as resp:
            assert resp.status == 200
        # With one, the server asked for it and received it (the front-proxy identity is used).
        async with (
            result.proxy_session() as s,
            s.get(result.url + GV + "/metricfamilies", headers=MASTERS_HEADERS) as resp,
        ):
            assert resp.status == 200
    finally:
        await server.stop()
        result.views.close()


async def test_s12_configmap_ca_and_allowed_names_changes_apply_without_restart(pki: Pki) -> None:
    """Rotate the front-proxy CA and the allowed names through the ConfigMap data; no restart."""
    source = AuthConfigSource(AuthOverrides())
    source.update_from_configmap(
        {
            "requestheader-client-ca-file": pki.front_proxy_ca.cert_pem.decode(),
            "requestheader-allowed-names": '["front-proxy-client"]',
        }
    )
    result, server = await serve(pki, settings=source.current)
    source.subscribe(result.authenticator.update)
    source.subscribe(lambda s: result.tls.set_client_ca(s.tls_client_ca_pem))

    async def status_with(pair: object) -> int | str:
        try:
            async with (
                result.session(pair) as s,
                s.get(
                    result.url + GV + "/metricfamilies",  # type: ignore[arg-type]
                    headers=MASTERS_HEADERS,
                ) as resp,
            ):
                return resp.status
        except (aiohttp.ClientError, ssl.SSLError) as exc:
            return type(exc).__name__

    try:
        assert await status_with(pki.front_proxy) == 200
        rotated_ca = new_ca("front-proxy-ca-2")
        rotated = new_client_cert(rotated_ca, common_name="front-proxy-client")
        assert await status_with(rotated) != 200  # unknown CA
        changed = source.update_from_configmap(
            {
                "requestheader-client-ca-file": rotated_ca.cert_pem.decode(),
                "requestheader-allowed-names": '["front-proxy-client"]',
            }
        )
        assert changed
        assert await status_with(rotated) == 200
        assert await status_with(pki.front_proxy) != 200  # old CA no longer trusted
        # Allowed names change: the same certificate is no longer a front proxy.
        source.update_from_configmap(
            {
                "requestheader-client-ca-file": rotated_ca.cert_pem.decode(),
                "requestheader-allowed-names": '["another-proxy"]',
            }
        )
        assert await status_with(rotated) == 401
    finally:
        await server.stop()
        result.views.close()


def test_flags_override_configmap(tmp_path: Path, pki: Pki) -> None:
    ca_file = tmp_path / "rh.crt"
    ca_file.write_bytes(pki.front_proxy_ca.cert_pem)
    overrides = AuthOverrides.from_flags(
        client_ca_file=None, requestheader_ca_file=str(ca_file), allowed_names="a, b"
    )
    source = AuthConfigSource(overrides)
    source.update_from_configmap(
        {
            "requestheader-client-ca-file": new_ca("cm").cert_pem.decode(),
            "requestheader-allowed-names": '["cm-name"]',
            "client-ca-file": pki.client_ca.cert_pem.decode(),
        }
    )
    assert source.current.requestheader_ca_pem == pki.front_proxy_ca.cert_pem
    assert source.current.allowed_names == frozenset({"a", "b"})
    assert source.current.client_ca_pem == pki.client_ca.cert_pem  # not overridden: from the ConfigMap
    assert overrides.complete
