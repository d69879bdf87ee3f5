"""``panopticon certs``: a CA and a serving certificate for the APIService, and its caBundle.

Writes ``ca.crt``/``ca.key`` and ``tls.crt``/``tls.key`` (keys mode 0600) into ``--out`` and
prints the base64 ``caBundle`` for ``APIService.spec.caBundle`` on stdout (nothing else goes to
stdout, so ``CA_BUNDLE=$(panopticon certs ...)`` works). An existing CA in ``--out`` is reused,
so re-running renews the serving certificate without changing the caBundle.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from certs.generate import KeyPair, new_ca, new_serving_cert, service_dns_names, write_pair


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.days <= 0:
        print("panopticon certs: --days must be positive", file=sys.stderr)
        return 1
    ca_cert, ca_key = out / "ca.crt", out / "ca.key"
    try:
        if ca_cert.exists() and ca_key.exists():
            ca = KeyPair(ca_cert.read_bytes(), ca_key.read_bytes())
            ca.certificate  # noqa: B018 - fail early on a corrupt CA
        else:
            ca = new_ca(f"panopticon-ca@{args.service}.{args.namespace}")
            write_pair(out, "ca", ca)
        serving = new_serving_cert(
            ca, dns_names=service_dns_names(args.service, args.namespace), days=args.days
        )
        write_pair(out, "tls", serving)
    except (OSError, ValueError) as exc:
        print(f"panopticon certs: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out / 'tls.crt'}, {out / 'tls.key'} (CA {ca_cert}); caBundle on stdout", file=sys.stderr)
    print(base64.b64encode(ca.cert_pem).decode())
    return 0
