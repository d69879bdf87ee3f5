"""REST paths of the Kubernetes API, built from a group/version/resource and an optional object.

Core resources live under ``/api/v1``, everything else under ``/apis/<group>/<version>``; a
namespace, a name and a subresource are appended in that order. Pure string building, no I/O.
"""

from __future__ import annotations

from urllib.parse import quote


def group_version_path(*, group: str, version: str) -> str:
    """``/api/v1`` for the core group, ``/apis/<group>/<version>`` otherwise."""
    return f"/api/{version}" if group == "" else f"/apis/{group}/{version}"


def resource_path(
    *,
    group: str,
    version: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The collection path (no ``name``) or the object path of a resource.

    >>> resource_path(group="apps", version="v1", resource="deployments", namespace="ns", name="d")
    '/apis/apps/v1/namespaces/ns/deployments/d'
    """
    if subresource and not name:
        raise ValueError("a subresource needs an object name")
    parts = [group_version_path(group=group, version=version)]
    if namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(resource)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)
