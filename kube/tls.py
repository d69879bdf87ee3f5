"""The TLS client context for a ``ClientConfig``: trust, client certificate, verification.

Its own module (stdlib only) so that a LIST can be started before the process imports its HTTP
client (``kube.earlylist``); ``kube.client`` uses the same function.
"""

from __future__ import annotations

import os
import ssl
import tempfile

from kube.config import ClientConfig


def build_ssl_context(config: ClientConfig) -> ssl.SSLContext | None:
    """The TLS client context for ``config`` (``None`` for a plain ``http://`` server)."""
    if config.server.startswith("http://"):
        return None
    if config.ca_file or config.ca_data:
        ctx = ssl.create_default_context(
            cafile=config.ca_file, cadata=config.ca_data.decode() if config.ca_data else None
        )
    else:
        ctx = ssl.create_default_context()
    if config.insecure_skip_tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.cert_file or config.cert_data:
        if config.cert_data or config.key_data:
            # ssl can only load a key pair from files: write them 0600, load, remove at once.
            with tempfile.TemporaryDirectory(prefix="panopticon-cert-") as tmp:
                cert = config.cert_file or os.path.join(tmp, "tls.crt")
                key = config.key_file or os.path.join(tmp, "tls.key")
                for path, data in ((cert, config.cert_data), (key, config.key_data)):
                    if data is not None:
                        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                        with os.fdopen(fd, "wb") as fh:
                            fh.write(data)
                ctx.load_cert_chain(cert, key)
        else:
            ctx.load_cert_chain(config.cert_file or "", config.key_file)
    return ctx
