"""The global ``--metric-labels-allowlist`` / ``--metric-annotations-allowlist`` flags, with
kube-state-metrics' syntax: ``pods=[k8s-app,app.kubernetes.io/*],deployments=[*],*=[team]``.

Each entry names a resource and the object label (annotation) keys or globs to copy into every
series of the configurations that target it. They are added to the configuration's own
``spec.labelsAllowlist`` / ``spec.annotationsAllowlist`` when it is compiled, so one machinery
(``exporter.objectlabels``) renders, sanitizes (``app.kubernetes.io/name`` ->
``label_app_kubernetes_io_name``, as KSM) and checks them: a key the flag adds that collides with
a configured label is a compile error of that configuration, naming the flag.

A resource names a configuration's ``targetRef`` as kube-state-metrics names its resources: the
plural (``pods``, ``deployments``, ``ingresses``, ``networkpolicies``; guessed from the kind as
Kubernetes does for CRDs: lower case, then ``s``, ``es`` after s/x/z/ch/sh, ``ies`` after a
consonant and ``y``), or the lowercase kind (``pod``, ``endpoints``), optionally qualified with
the group (``deployments.apps``, ``applications.argoproj.io``; the core group is ``core``); ``*``
names every configuration. Parsed once at start-up; the compiled plans carry the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exporter.types import TargetRef

__all__ = ["MetricLabelsAllowlist", "MetricLabelsError", "plural_of"]

LABELS_FLAG = "--metric-labels-allowlist"
ANNOTATIONS_FLAG = "--metric-annotations-allowlist"

_ENTRY = re.compile(r"\s*([^=\[\],\s]+)\s*=\s*\[([^\[\]]*)\]\s*(?:,|$)")


class MetricLabelsError(ValueError):
    """A flag value that does not parse (the message says where and shows the syntax)."""


def plural_of(kind: str) -> str:
    """The plural Kubernetes guesses for a kind (``Ingress`` -> ``ingresses``, ``Policy`` ->
    ``policies``), as kube-state-metrics' resource names and ``kubectl`` spell them."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def _names_of(target: TargetRef) -> frozenset[str]:
    group = target.group or "core"
    kind, plural = target.kind.lower(), plural_of(target.kind)
    return frozenset({"*", kind, plural, f"{kind}.{group}", f"{plural}.{group}"})


def _parse(text: str, flag: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    text = text.strip().removeprefix("=").strip()
    entries: list[tuple[str, tuple[str, ...]]] = []
    position = 0
    while position < len(text):
        match = _ENTRY.match(text, position)
        if match is None:
            raise MetricLabelsError(
                f"{flag}: cannot parse {text[position:]!r} (at character {position + 1}): expected "
                "RESOURCE=[KEY,...],... e.g. pods=[app,app.kubernetes.io/*],deployments=[*]")
        keys = tuple(key.strip() for key in match.group(2).split(",") if key.strip())
        entries.append((match.group(1), keys))
        position = match.end()
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class MetricLabelsAllowlist:
    """The two flags, parsed: (resource, keys) entries in flag order."""

    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()
    annotations: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, *, labels: str = "", annotations: str = "") -> MetricLabelsAllowlist | None:
        """The flags' values (None when both are empty); ``MetricLabelsError`` if one does not parse."""
        parsed = cls(labels=_parse(labels, LABELS_FLAG), annotations=_parse(annotations, ANNOTATIONS_FLAG))
        return parsed if parsed.labels or parsed.annotations else None

    def for_target(self, target: TargetRef) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The label keys and the annotation keys the flags add for configurations of ``target``."""
        names = _names_of(target)
        return (_keys(self.labels, names), _keys(self.annotations, names))


def _keys(entries: tuple[tuple[str, tuple[str, ...]], ...], names: frozenset[str]) -> tuple[str, ...]:
    chosen: list[str] = []
    for resource, keys in entries:
        if resource.lower() in names:
            chosen.extend(key for key in keys if key not in chosen)
    return tuple(chosen)
