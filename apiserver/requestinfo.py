"""Request classification: is a request a resource request, and which verb/resource/namespace.

This mirrors the kube-apiserver's RequestInfo resolver (kubernetes/apiserver
``pkg/endpoints/request/requestinfo.go``) because our SubjectAccessReview must use exactly the
attributes the kube-apiserver already authorized: ``/apis/<g>/<v>/<res>[/<name>[/<sub>]]`` and
``/apis/<g>/<v>/namespaces/<ns>/<res>[...]`` are resource requests (GET -> ``get`` with a name,
``list`` without, ``watch`` with ``?watch=1|true`` or a ``/watch/`` prefix); everything else
(``/apis``, ``/apis/<g>/<v>``, ``/openapi/v2``, ``/healthz`` ...) is a non-resource request
whose verb is the lower-cased HTTP method. Pure: no aiohttp types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    path: str
    verb: str
    is_resource: bool
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Classify one request; ``query`` is the decoded query string (first value per key)."""
    segments = [s for s in path.strip("/").split("/") if s]
    non_resource = RequestInfo(path=path, verb=method.lower(), is_resource=False)
    if len(segments) < 3 or segments[0] != "apis":
        return non_resource
    group, version = segments[1], segments[2]
    rest = segments[3:]
    if not rest:
        return non_resource
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    if method.upper() in ("GET", "HEAD"):
        verb = "get"
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        verb, rest = "watch", rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    elif len(rest) == 2 and rest[0] == "namespaces":
        # /apis/g/v/namespaces/<ns> is the namespace object itself.
        namespace = rest[1]
    if not rest:
        return non_resource
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if verb == "get" and not name:
        verb = "watch" if _truthy(query.get("watch")) else "list"
    elif verb == "delete" and not name:
        verb = "deletecollection"
    if verb == "get" and name and _truthy(query.get("watch")):
        verb = "watch"
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
        parts=tuple(rest),
    )
