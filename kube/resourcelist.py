"""Lookups in an ``APIResourceList`` (a discovery document): pure functions, no I/O.

``kube.discovery`` resolves kinds with them; ``kube.earlylist`` uses the same lookup before the
process has imported its HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def find_kind(resource_list: Mapping[str, Any], kind: str) -> tuple[str, bool] | None:
    """(plural, namespaced) of ``kind`` in an ``APIResourceList``, subresources excluded."""
    for res in resource_list.get("resources") or ():
        name = str(res.get("name", ""))
        if res.get("kind") == kind and "/" not in name:
            return name, bool(res.get("namespaced", False))
    return None
