"""The grammar of a StoreAPI endpoint address as ``thanos query --endpoint`` takes it.

``[dns+|dnssrv+|dnssrvnoa+]host[:port]``: plain and ``dns+`` addresses need a port, SRV lookups
take the record name alone. The host is a DNS name (SRV record names contain ``_``), an IPv4
address or a bracketed IPv6 address. Copy-paste placeholders such as
``<member-thanos-sidecar-adress>:10901`` fail here instead of making Query log resolver
errors forever.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
SRV_PREFIXES = ("dnssrv+", "dnssrvnoa+")


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return _DNS_NAME.match(host) is not None


def address_problem(address: str) -> str | None:
    """Why Thanos cannot use ``address`` as an endpoint, or ``None`` when it can."""
    rest = address
    srv = False
    for prefix in (*SRV_PREFIXES, "dns+"):
        if rest.startswith(prefix):
            rest, srv = rest.removeprefix(prefix), prefix in SRV_PREFIXES
            break
    host, sep, port = rest.rpartition(":")
    if not sep or (host.endswith(":") and not host.startswith("[")):
        if srv and _valid_host(rest):
            return None
        return f"{address!r}: expected host:port (a DNS name or IP address, then a port)"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"{address!r}: the port must be a number from 1 to 65535"
    if not _valid_host(host):
        return f"{address!r}: {host!r} is not a DNS name or IP address (a placeholder left in?)"
    return None
