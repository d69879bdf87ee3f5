"""Certificate generation: a CA, serving certificates for the APIService, client certificates.

The extension API server needs a serving certificate the kube-apiserver trusts through the
APIService ``caBundle``; the aggregator dials ``<service>.<namespace>.svc`` and Go accepts only
SANs, so every name goes into the subjectAltName extension (docs/design.md, "Sources, by
topic": certificates). The same functions mint client certificates (front-proxy, x509 users)
for tests and benchmarks.

Everything here is pure: keys and certificates are built in memory and returned as PEM bytes;
``write_pair`` is the only function touching the disk, and writes private keys with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def service_dns_names(service: str, namespace: str, *, cluster_domain: str = "cluster.local") -> list[str]:
    """The four names a Service is reachable by; the aggregator uses ``<svc>.<ns>.svc``."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    ]


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _validity(days: int, now: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    start = (now or dt.datetime.now(dt.UTC)) - _CLOCK_SKEW
    return start, start + _CLOCK_SKEW + dt.timedelta(days=days)


def new_ca(common_name: str, *, days: int = 3650, now: dt.datetime | None = None) -> KeyPair:
    """A self-signed CA (basicConstraints CA, keyCertSign) with a fresh P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(days, now)
    subject = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def _leaf(
    ca: KeyPair,
    *,
    common_name: str,
    organizations: Sequence[str],
    usage: x509.ObjectIdentifier,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    days: int,
    now: dt.datetime | None,
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, ca_key = ca.certificate, ca.private_key
    not_before, not_after = _validity(days, now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def new_serving_cert(
    ca: KeyPair,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    days: int = 365,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A serverAuth leaf signed by ``ca`` whose SANs are ``dns_names`` + ``ip_addresses``."""
    if not dns_names and not ip_addresses:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    return _leaf(
        ca,
        common_name=(list(dns_names) or list(ip_addresses))[0],
        organizations=(),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        days=days,
        now=now,
    )


def new_client_cert(
    ca: KeyPair,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    days: int = 365,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A clientAuth leaf: Kubernetes reads the user from CN and the groups from O."""
    return _leaf(
        ca,
        common_name=common_name,
        organizations=organizations,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        dns_names=(),
        ip_addresses=(),
        days=days,
        now=now,
    )


def self_signed_serving(
    *, hosts: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1",), days: int = 365
) -> tuple[KeyPair, KeyPair]:
    """(CA, serving pair) for development when no certificate files are given."""
    ca = new_ca("panopticon-self-signed-ca", days=days)
    return ca, new_serving_cert(ca, dns_names=hosts, ip_addresses=ips, days=days)


def write_pair(directory: Path, stem: str, pair: KeyPair) -> tuple[Path, Path]:
    """Write ``<stem>.crt`` (0644) and ``<stem>.key`` (0600, never world-readable even briefly)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(pair.cert_pem)
    os.chmod(cert_path, 0o644)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pair.key_pem)
    finally:
        os.close(fd)
    return cert_path, key_path
