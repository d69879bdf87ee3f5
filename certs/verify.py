"""Client-certificate verification against one specific CA bundle, in Python.

The TLS layer loads the *union* of the client CA and the front-proxy (requestheader) CA, so a
completed handshake only proves the peer chains to one of them. Trusting ``X-Remote-*`` headers
requires proof that the certificate was issued by the *requestheader* CA (kubernetes/apiserver
``pkg/authentication/request/x509``), so the authenticator re-verifies the leaf here against
the bundle for each purpose: issuer name + signature, validity window of leaf and issuer, the
issuer being a CA, and the clientAuth extended key usage.

Chains are leaf -> CA (what kube-apiserver's front-proxy and client certificates are). Python
3.11's ``ssl`` exposes only the peer leaf, so intermediates cannot be considered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class VerificationError(Exception):
    """The certificate does not verify for the requested purpose (message says why)."""


@dataclass(frozen=True, slots=True)
class VerifiedClient:
    common_name: str
    organizations: tuple[str, ...]


def load_bundle(pem: bytes) -> tuple[x509.Certificate, ...]:
    """All certificates of a PEM bundle (empty bundle -> empty tuple)."""
    if not pem.strip():
        return ()
    return tuple(x509.load_pem_x509_certificates(pem))


def _valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _allows_client_auth(cert: x509.Certificate) -> bool:
    # As Go's x509.Verify: no EKU extension means "any usage".
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def verify_client_certificate(
    leaf_der: bytes, roots: Sequence[x509.Certificate], *, now: dt.datetime | None = None
) -> VerifiedClient:
    """Verify ``leaf_der`` was issued by one of ``roots`` for client authentication."""
    if not roots:
        raise VerificationError("no certificate authority configured")
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
    except ValueError as exc:
        raise VerificationError(f"unparsable certificate: {exc}") from exc
    moment = now or dt.datetime.now(dt.UTC)
    if not _valid_at(leaf, moment):
        raise VerificationError("x509: certificate has expired or is not yet valid")
    if not _allows_client_auth(leaf):
        raise VerificationError("x509: certificate specifies an incompatible key usage")
    for root in roots:
        if root.subject != leaf.issuer or not _is_ca(root) or not _valid_at(root, moment):
            continue
        try:
            leaf.verify_directly_issued_by(root)
        except (InvalidSignature, ValueError, TypeError):
            continue
        cns = _attr(leaf.subject, NameOID.COMMON_NAME)
        return VerifiedClient(
            common_name=cns[0] if cns else "",
            organizations=tuple(_attr(leaf.subject, NameOID.ORGANIZATION_NAME)),
        )
    raise VerificationError("x509: certificate signed by unknown authority")
