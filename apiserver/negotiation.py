"""Accept-header negotiation for the resource endpoints (docs/design.md, statement 15). Pure.

Media ranges are tried in order of q-value (stable for ties): ``application/json`` with
``as=Table;g=meta.k8s.io;v=v1|v1beta1`` gives a Table, ``as=PartialObjectMetadata[List]`` gives
metadata only (what client-go's metadata informers of the garbage collector and namespace
controller ask for), plain ``application/json``, ``application/*`` and ``*/*`` (or no Accept)
give the object JSON. Only an Accept with nothing we can produce (e.g. protobuf alone) is a 406.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["json", "table", "partial"]


@dataclass(frozen=True, slots=True)
class Negotiated:
    mode: Mode


class NotAcceptable(ValueError):
    pass


def _params(parts: list[str]) -> dict[str, str]:
    out = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _candidate(media: str, params: dict[str, str]) -> Mode | None:
    as_ = params.get("as")
    if media in ("*/*", "application/*") and as_ is None:
        return "json"
    if media != "application/json":
        return None
    if as_ is None:
        return "json"
    if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
        return None
    if as_ == "Table":
        return "table"
    if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
        return "partial"
    return None


def negotiate(accept: str | None) -> Negotiated:
    if not accept or not accept.strip():
        return Negotiated("json")
    ranges: list[tuple[float, int, str, dict[str, str]]] = []
    for index, raw in enumerate(accept.split(",")):
        parts = raw.strip().split(";")
        media = parts[0].strip().lower()
        if not media:
            continue
        params = _params(parts[1:])
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        if q > 0:
            ranges.append((-q, index, media, params))
    for _q, _i, media, params in sorted(ranges):
        mode = _candidate(media, params)
        if mode is not None:
            return Negotiated(mode)
    raise NotAcceptable(
        f"only the following media types are accepted: application/json, "
        f"application/json;as=Table;v=v1;g=meta.k8s.io (got {accept!r})"
    )
